#!/usr/bin/env node
// The npm registry this project is built against does not carry every platform build of the `deno`
// and `turbo` packages (e.g. @deno/darwin-arm64 is a 404), so `npm install` writes a lockfile without
// them and `npm ci` then refuses it as out of sync. This adds a stub entry, marked optional and
// restricted to its os/cpu, for each optional platform dependency missing from package-lock.json; npm
// skips them on Linux x86-64. Run it after any `npm install` that rewrites the lockfile.
import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const platform = (name) => {
  const os = /darwin/.test(name)
    ? "darwin"
    : /win32|windows/.test(name)
    ? "win32"
    : /freebsd/.test(name)
    ? "freebsd"
    : /android/.test(name)
    ? "android"
    : "linux";
  const cpu = /arm64|aarch64/.test(name) ? "arm64" : "x64";
  return { os: [os], cpu: [cpu] };
};
let added = 0;
for (const entry of Object.values({ ...lock.packages })) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const where = `node_modules/${dep}`;
    if (lock.packages[where]) continue;
    lock.packages[where] = { version, dev: entry.dev ?? undefined, optional: true, ...platform(dep) };
    added++;
  }
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} optional platform entries`);
