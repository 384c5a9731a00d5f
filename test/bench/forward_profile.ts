/**
 * Where a forwarder's time goes: runs one forwarder (the C one of samplicator's design, or `anysrc
 * forward` under Bun, Deno or Node) in the namespace testbed with 3 receivers, a C sender offering
 * `--rate` datagrams/s of `--size` bytes, and reports per datagram read: CPU user / system, wake-ups
 * per thread, syscalls by name (perf tracepoints), and with `--record` the hottest symbols of a
 * `perf record` (JIT code named through the runtimes' perf maps).
 * `PROFILE_FINAL=1` prints anysrc's final counters too, `PROFILE_STDERR=1` the forwarder's stderr,
 * and `PROFILE_BUN_JSC_<option>=value` sets a JSC option in the forwarder's Bun (e.g. reportCompileTimes).
 * Run as root: `npm run profile:forward -w test -- --forwarder bun --transport raw --rate 15000 [--family 6] [--seconds 4] [--record]`
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  ADDRESSES as A,
  compileC,
  countSyscalls,
  cpuTimes,
  createTestbed,
  hottestSymbols,
  PERF_JIT_ENV,
  recordProfile,
  REPO_ROOT,
  requirePrivileges,
  threadReport,
  threadTimes,
} from "@anysrc/testbed";
import { jscOptionsFromEnv } from "./relay_argv.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    forwarder: { type: "string", default: "bun" },
    transport: { type: "string", default: "raw" },
    rate: { type: "string", default: "15000" },
    size: { type: "string", default: "256" },
    family: { type: "string", default: "4" },
    seconds: { type: "string", default: "4" },
    record: { type: "boolean", default: false },
    top: { type: "string", default: "40" },
  },
});
if (!requirePrivileges("forward profile")) process.exit(0);
const who = values.forwarder;
const seconds = Number(values.seconds);
const v6 = values.family === "6";
const bin = compileC(["udp_flood", "udp_sink", "forward_baseline"]);
const bed = createTestbed();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
try {
  const receiver = v6 ? A.client6 : A.client4;
  const listen = v6 ? A.routerServerSide6 : A.routerServerSide4;
  const sinks = [0, 1, 2].map((i) => bed.spawn(bed.client, [bin.udp_sink!, receiver, String(9500 + i), String(seconds + 10)]));
  for (const s of sinks) await s.waitFor((l) => l.ready === true);
  const at = (ip: string, port: number) => (v6 ? `[${ip}]:${port}` : `${ip}:${port}`);
  const argv = who === "c" ? [bin.forward_baseline!, listen, "2055", ...[0, 1, 2].flatMap((i) => [receiver, String(9500 + i)])] : [
    `${REPO_ROOT}apps/relay/bin/anysrc`,
    "--runtime",
    who,
    "forward",
    "--listen",
    at(listen, 2055),
    ...[0, 1, 2].flatMap((i) => ["--to", at(receiver, 9500 + i)]),
    "--allow",
    v6 ? "2001:db8:2::/64" : "198.19.2.0/24",
    "--transport",
    values.transport,
    "--stats",
    "json",
    "--stats-interval",
    "0",
  ];
  const env: Record<string, string> = { ...(values.record ? PERF_JIT_ENV : {}), ...jscOptionsFromEnv() };
  const forwarder = bed.spawn(bed.router, argv, env);
  await forwarder.waitFor((l) => l.ready === true || l.event === "listening", 30_000);
  await sleep(300);
  const load = bed.spawn(bed.server, [bin.udp_flood!, listen, "2055", String(seconds), values.rate, values.size, "8"]);
  await sleep(500);
  const t0 = threadTimes(forwarder.pid);
  const c0 = cpuTimes(forwarder.pid);
  const window = Math.max(1, seconds - 1.5);
  let calls: Record<string, number> = {};
  if (values.record) recordProfile(forwarder.pid, window, "/tmp/anysrc-forward.perf");
  else calls = await countSyscalls(forwarder.pid, window);
  const c1 = cpuTimes(forwarder.pid);
  const t1 = threadTimes(forwarder.pid);
  const r = await load.waitFor((l) => typeof l.sent === "number", (seconds + 30) * 1000);
  const perSecond = (r.sent as number) / seconds;
  const datagrams = perSecond * window;
  let delivered = 0;
  for (const s of sinks) delivered += (await s.waitFor((l) => typeof l.received === "number", 30_000)).received as number;
  console.log(
    JSON.stringify({ forwarder: who, transport: values.transport, family: values.family, rate: values.rate, size: values.size, sent: r.sent, delivered }),
  );
  console.log(
    `read ${Math.round(perSecond)} datagrams/s; per datagram over ${window} s: user ${((c1.user - c0.user) * 1e6 / datagrams).toFixed(2)} µs, system ${
      ((c1.system - c0.system) * 1e6 / datagrams).toFixed(2)
    } µs`,
  );
  for (const line of threadReport(t0, t1, datagrams, window)) console.log(line);

  await forwarder.stop();
  // anysrc's final counters: what was read, copied, dropped by reason, and the transport's errors.
  const final = forwarder.lines.find((l) => l.event === "final");
  if (final && process.env.PROFILE_FINAL) console.log(JSON.stringify(final));
  if (process.env.PROFILE_STDERR) console.log(forwarder.stderr());
  if (values.record) {
    console.log(hottestSymbols("/tmp/anysrc-forward.perf", Number(values.top)));
  } else {
    for (const [name, value] of Object.entries(calls)) {
      if (value > 0) console.log(`  ${name === "total" ? "all syscalls" : name}: ${(value / datagrams).toFixed(3)} per datagram`);
    }
  }
} finally {
  await bed.destroy();
}
