/**
 * The packages as users get them: `npm pack` each one, install the tarballs into an empty directory
 * outside the clone, then import them by name from a script (examples/spoof.ts) under Bun, Deno and
 * Node and run the installed CLI, in namespaces. The receiver checks the spoofed source.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADDRESSES as A, createTestbed, NONE, REPO_ROOT, requirePrivileges, type Runtime, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";

const PACKAGES = [
  "packages/core",
  "packages/sys",
  "packages/transport-raw",
  "packages/transport-bindsrc",
  "packages/transport-tun",
  "packages/transport-packet",
  "apps/relay",
];
const run = requirePrivileges("package suite");
let port = 44000;

/** How a user runs a script that imports the installed packages (no clone flags, no workspace config). */
function scriptArgv(runtime: Runtime, script: string, args: readonly string[]): string[] {
  const bin = `${REPO_ROOT}node_modules/.bin/${runtime}`;
  if (runtime === "deno") return [bin, "run", "--quiet", "--allow-ffi", script, ...args];
  if (runtime === "node") return [bin, "--experimental-ffi", "--disable-warning=ExperimentalWarning", script, ...args];
  return [bin, script, ...args];
}

describe.skipIf(!run)("packed tarballs installed outside the clone", () => {
  let bed: Testbed;
  let dir: string;
  let app: string;
  const tun = `aspkg${process.pid % 10000}`;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "anysrc-pack-"));
    const tarballs = join(dir, "tarballs");
    app = join(dir, "app");
    execFileSync("mkdir", ["-p", tarballs, app]);
    // prepack builds dist/ from the sources, as a publish would.
    for (const p of PACKAGES) execFileSync("npm", ["pack", "--silent", "-w", p, "--pack-destination", tarballs], { cwd: REPO_ROOT, stdio: "pipe" });
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "user-app", private: true, type: "module" }));
    const files = readdirSync(tarballs).map((f) => join(tarballs, f));
    execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", ...files], { cwd: app, stdio: "pipe" });
    copyFileSync(`${REPO_ROOT}examples/spoof.ts`, join(app, "spoof.ts"));
    bed = createTestbed();
    bed.run(bed.router, ["ip", "tuntap", "add", "dev", tun, "mode", "tun"]);
    bed.run(bed.router, ["sysctl", "-qw", `net.ipv4.conf.${tun}.rp_filter=0`]);
  }, 240_000);
  afterAll(async () => {
    await bed?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the tarballs carry dist/ JavaScript and declarations, and no tests", () => {
    for (const name of ["core", "sys", "transport-raw", "transport-bindsrc", "transport-tun", "transport-packet"]) {
      const root = join(app, "node_modules", "@anysrc", name);
      expect(existsSync(join(root, "dist", "mod.js")), name).toBe(true);
      expect(existsSync(join(root, "dist", "mod.d.ts")), name).toBe(true);
      expect(readdirSync(join(root, "src")).filter((f) => f.endsWith(".test.ts")), name).toEqual([]);
    }
  });

  for (const name of ["core", "sys", "transport-raw", "transport-bindsrc", "transport-tun", "transport-packet"]) {
    it(`the example in packages/${name}/README.md runs as written against the installed package`, () => {
      const readme = readFileSync(`${REPO_ROOT}packages/${name}/README.md`, "utf8");
      const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(code, "a ts code block").toBeTruthy();
      const file = join(app, `readme_${name}.ts`);
      writeFileSync(file, code!);
      for (const runtime of RUNTIMES) bed.run(bed.router, scriptArgv(runtime, file, []));
    });
  }

  for (const runtime of RUNTIMES) {
    for (const transport of ["raw", "bindsrc", "tun", "packet"] as const) {
      for (const [family, src, client] of [["IPv4", `${A.server4}:7000`, A.client4], ["IPv6", `[${A.server6}]:7000`, `[${A.client6}]`]] as const) {
        it(`${runtime}: a script importing @anysrc/transport-${transport} by name sends an ${family} datagram from the spoofed source`, async () => {
          const dst = `${client}:${++port}`;
          const receiver = bed.spawn(bed.client, ["node", UDP_PEER, "recv-log", dst, "1", "10000"]);
          await receiver.waitFor((l) => l.ready === true);
          const out = bed.run(bed.router, scriptArgv(runtime, join(app, "spoof.ts"), [transport, src, dst, tun]));
          expect(JSON.parse(out)).toEqual({ kind: transport, sent: 1, dropped: {} });
          expect(await receiver.waitFor((l) => "from" in l)).toEqual({ from: src, payload: "7000: hello" });
        });
      }
    }

    it(`${runtime}: the installed CLI (node_modules/.bin/anysrc) sends 200 datagrams from the spoofed source`, async () => {
      const src = `${A.server4}:7000`;
      const dst = `${A.client4}:${++port}`;
      const receiver = bed.spawn(bed.client, ["node", UDP_PEER, "recv-count", dst, src, "200", "600", "10000"]);
      await receiver.waitFor((l) => l.ready === true);
      // Runtimes from PATH, as a user who installed them would have them; nothing from the clone.
      const path = `${REPO_ROOT}node_modules/.bin:${process.env.PATH ?? ""}`;
      const out = bed.run(bed.router, [
        "env",
        `PATH=${path}`,
        join(app, "node_modules", ".bin", "anysrc"),
        "--runtime",
        runtime,
        "send",
        "--transport",
        "raw",
        "--src",
        src,
        "--dst",
        dst,
        "--count",
        "200",
        "--size",
        "600",
      ]);
      expect(JSON.parse(out)).toMatchObject({ runtime, sent: 200, dropped: NONE });
      expect(await receiver.waitFor((l) => l.done === true)).toMatchObject({ received: 200, corrupt: 0 });
    });
  }
});
