/**
 * Where a saturated relay's time goes: runs one relay (C, or anysrc under Bun or Deno) in the
 * namespace testbed under the closed-loop generator (`relay_saturate.c`, 256 in flight), then
 * reports per relayed datagram: CPU user / system, syscalls by name (perf tracepoints), context
 * switches (wake-ups), and with `--record` the hottest symbols of a `perf record` (kernel, libc, and
 * JIT code named through the runtimes' perf maps: Deno `--perf-basic-prof`, Bun
 * `BUN_JSC_logJITCodeForPerf`).
 * With `--rate N`, the paced generator (`relay_load.c`, N datagrams/s offered) instead; `--cli PATH`
 * runs another checkout's launcher (a before/after comparison from one script).
 * Run as root: `npm run profile -w test -- --relay deno --transport raw --flows 64 --size 64 [--family 6] [--seconds 4] [--rate 20000] [--record]`
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
  requirePrivileges,
  threadReport,
  threadTimes,
} from "@anysrc/testbed";
import { jscOptionsFromEnv, PROFILE_PORT, RELAY_CHOICE_OPTIONS, relayArgv } from "./relay_argv.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    ...RELAY_CHOICE_OPTIONS,
    flows: { type: "string", default: "64" },
    size: { type: "string", default: "64" },
    family: { type: "string", default: "4" },
    seconds: { type: "string", default: "4" },
    record: { type: "boolean", default: false },
    top: { type: "string", default: "40" },
    rate: { type: "string" },
  },
});
if (!requirePrivileges("relay profile")) process.exit(0);
const who = values.relay;
const seconds = Number(values.seconds);
const bin = compileC(["udp_echo", "relay_saturate", "relay_load", "tproxy_relay"]);
const bed = createTestbed();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
try {
  bed.enableTproxy(PROFILE_PORT);
  for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.udp_echo!, host, "7000"]).waitFor((l) => l.ready === true);
  const argv = relayArgv(who, values.transport, values.cli, bin.tproxy_relay!);
  const env: Record<string, string> = values.record ? { ...PERF_JIT_ENV } : {};
  if (process.env.DENO_V8_FLAGS) env.DENO_V8_FLAGS = process.env.DENO_V8_FLAGS;
  Object.assign(env, jscOptionsFromEnv());
  const relay = bed.spawn(bed.router, argv, env);
  await relay.waitFor((l) => l.event === "listening", 30_000);
  await sleep(300);
  const server = values.family === "6" ? A.server6 : A.server4;
  const load = bed.spawn(
    bed.client,
    values.rate === undefined
      ? [bin.relay_saturate!, server, "7000", values.flows, "256", String(seconds), values.size]
      : [bin.relay_load!, server, "7000", values.flows, values.rate, String(seconds), values.size],
  );
  await sleep(500); // the loop fills, the JIT warms
  const t0 = threadTimes(relay.pid);
  const c0 = cpuTimes(relay.pid);
  const window = Math.max(1, seconds - 1.5);
  // Either a sampled profile or a syscall count over the window.
  let calls: Record<string, number> = {};
  if (values.record) recordProfile(relay.pid, window, "/tmp/anysrc-relay.perf");
  else calls = await countSyscalls(relay.pid, window);
  const c1 = cpuTimes(relay.pid);
  const t1 = threadTimes(relay.pid);
  const r = await load.waitFor((l) => typeof l.sent === "number", (seconds + 30) * 1000);
  const relayedPerSecond = (2 * (r.received as number)) / seconds;
  const relayed = relayedPerSecond * window;
  console.log(JSON.stringify({ relay: who, transport: values.transport, family: values.family, flows: values.flows, size: values.size, load: r }));
  console.log(
    `relayed ${Math.round(relayedPerSecond)} datagrams/s; per relayed datagram over ${window} s: user ${
      ((c1.user - c0.user) * 1e6 / relayed).toFixed(2)
    } µs, system ${((c1.system - c0.system) * 1e6 / relayed).toFixed(2)} µs`,
  );
  for (const line of threadReport(t0, t1, relayed, window)) console.log(line);

  await relay.stop();
  if (process.env.PROFILE_STDERR) console.log(relay.stderr(), relay.lines.map((l) => (typeof l.text === "string" ? l.text : JSON.stringify(l))).join("\n"));
  if (values.record) {
    console.log(hottestSymbols("/tmp/anysrc-relay.perf", Number(values.top)));
  } else {
    for (const [name, value] of Object.entries(calls)) {
      if (value > 0) console.log(`  ${name === "total" ? "all syscalls" : name}: ${(value / relayed).toFixed(3)} per datagram`);
    }
  }
} finally {
  await bed.destroy();
}
