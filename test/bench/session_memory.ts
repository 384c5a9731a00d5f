/**
 * Where a relay's memory with many sessions goes: starts one relay (anysrc under Bun or Deno, or the
 * C relay) in the namespace testbed, opens N sessions with the paced generator (`relay_load.c`, one
 * datagram per session), then prints the relay's RSS split (anonymous, file-backed) right after the
 * load and again after each pause, so that a figure read while garbage waits for collection shows as
 * such. `--cli PATH` runs another checkout's launcher (a before/after from one script); `--heap`
 * (Bun) adds the JavaScript heap's own size at each stage (JSC heapStats, written by a preload
 * every 500 ms), which tells live objects from allocator pages and uncollected garbage.
 * Run as root: `npm run profile:memory -w test -- --relay bun [--sessions 10000] [--cli PATH] [--pauses 1,3] [--heap]`
 * @module
 */
import process from "node:process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ADDRESSES as A, compileC, createTestbed, memoryMiB, requirePrivileges, withFdLimit } from "@anysrc/testbed";
import { PROFILE_PORT, RELAY_CHOICE_OPTIONS, relayArgv } from "./relay_argv.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    ...RELAY_CHOICE_OPTIONS,
    sessions: { type: "string", default: "10000" },
    pauses: { type: "string", default: "1,3" },
    smaps: { type: "string" },
    heap: { type: "boolean", default: false },
  },
});
if (!requirePrivileges("session memory")) process.exit(0);
const sessions = Number(values.sessions);
const bin = compileC(["udp_echo", "relay_load", "tproxy_relay"]);
const bed = createTestbed();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The relay's resident set in MiB, split as /proc/PID/status splits it. */
function rss(pid: number): Record<string, number> {
  const m = memoryMiB(pid);
  return { rss: m.current, anon: m.anon, file: m.file, hwm: m.peak };
}
const show = (label: string, m: Record<string, number>) =>
  console.log(`${label}: ${Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")} MiB${heapNote()}`);
// --heap: a preload in the relay's Bun writes its heap statistics where this script reads them.
const heapDir = values.heap ? mkdtempSync(join(tmpdir(), "anysrc-heap-")) : undefined;
const heapEnv: Record<string, string> = {};
if (heapDir) {
  writeFileSync(
    join(heapDir, "preload.mjs"),
    `import { heapStats } from "bun:jsc";
import { writeFileSync } from "node:fs";
setInterval(() => {
  const s = heapStats();
  writeFileSync(${JSON.stringify(join(heapDir, "heap.json"))}, JSON.stringify({ heap: s.heapSize, extra: s.extraMemorySize, objects: s.objectCount }));
}, 500).unref();
`,
  );
  heapEnv.BUN_OPTIONS = `--preload ${join(heapDir, "preload.mjs")}`;
}
/** The relay's JS heap as its preload last wrote it (sampled every 500 ms). */
const heapNote = () => {
  const file = heapDir && join(heapDir, "heap.json");
  if (!file || !existsSync(file)) return "";
  const h = JSON.parse(readFileSync(file, "utf8")) as { heap: number; extra: number; objects: number };
  return `; JS heap ${(h.heap / 2 ** 20).toFixed(2)} MiB, ${h.objects} objects, extra ${(h.extra / 2 ** 20).toFixed(2)} MiB`;
};
let stage = 0;
/** With --smaps DIR, the relay's /proc/PID/smaps at each stage, for a mapping-by-mapping diff. */
const keepSmaps = (pid: number) => {
  if (values.smaps) writeFileSync(`${values.smaps}/smaps-${stage++}`, readFileSync(`/proc/${pid}/smaps`, "utf8"));
};

try {
  bed.enableTproxy(PROFILE_PORT);
  await bed.spawn(bed.server, [bin.udp_echo!, A.server4, "7000"]).waitFor((l) => l.ready === true);
  const raise = (argv: string[]) => withFdLimit(sessions + 1024, argv);
  const argv = relayArgv(values.relay, values.transport, values.cli, bin.tproxy_relay!);
  const relay = bed.spawn(bed.router, raise(argv), heapEnv);
  await relay.waitFor((l) => l.event === "listening" || l.ready === true, 30_000);
  await sleep(300);
  show("idle", rss(relay.pid));
  keepSmaps(relay.pid);
  const load = bed.spawn(bed.client, raise([bin.relay_load!, A.server4, "7000", String(sessions), String(sessions), "1", "64", "3"]));
  const r = await load.waitFor((l) => typeof l.sent === "number", 60_000);
  show(`${sessions} sessions (received ${r.received})`, rss(relay.pid));
  let waited = 0;
  for (const s of values.pauses.split(",").map(Number)) {
    await sleep((s - waited) * 1000);
    waited = s;
    show(`after ${s} s`, rss(relay.pid));
    keepSmaps(relay.pid);
  }
  await relay.stop();
} finally {
  await bed.destroy();
  if (heapDir) rmSync(heapDir, { recursive: true, force: true });
}
