/**
 * Receive benchmark (issue: sys poller): datagrams/s drained by poller + recvmmsg on Bun and Deno
 * against a C recvmmsg receiver, in one run, repetitions interleaved (C, bun, deno, C, …), ratios taken
 * within each repetition; then wake-up latency at a paced rate; then the idle cost of an armed poller.
 * Run as root: `npm run bench:recv -w test` (or `bun test/bench/recv_bench.ts [--reps N] [--seconds S]`).
 * @module
 */
import process from "node:process";
import { ADDRESSES as A, compileC, cpuSeconds, createTestbed, median, requirePrivileges, type Runtime, runtimeArgv, RUNTIMES, summary } from "@anysrc/testbed";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const REPS = flag("--reps", 5);
const SECONDS = flag("--seconds", 2);
const PACED_PPS = 2000;

if (!requirePrivileges("receive benchmark")) process.exit(0);
const bin = compileC(["udp_flood", "udp_sink"]);
const bed = createTestbed();
const cleanup = () => void bed.destroy();
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

type Receiver = "c" | Runtime;
const RECEIVERS: Receiver[] = ["c", ...RUNTIMES];
let port = 30000;

async function once(receiver: Receiver, rate: number): Promise<{ pps: number; p50: number; p99: number; sent: number; received: number; cpuNs: number }> {
  port++;
  const bind = `${A.routerClientSide4}:${port}`;
  const sink = receiver === "c"
    ? bed.spawn(bed.router, [bin.udp_sink!, A.routerClientSide4, String(port), String(SECONDS)])
    : bed.spawn(bed.router, runtimeArgv(receiver, "test/bench/recv_sink.ts", [bind, String(SECONDS)]));
  await sink.waitFor((l) => l.ready === true);
  const flood = bed.spawn(bed.client, [bin.udp_flood!, A.routerClientSide4, String(port), String(SECONDS + 0.5), String(rate), "64", "32"]);
  const sent = await flood.waitFor((l) => typeof l.sent === "number", (SECONDS + 10) * 1000);
  const r = await sink.waitFor((l) => typeof l.received === "number", (SECONDS + 10) * 1000);
  await sink.exited();
  return {
    pps: (r.received as number) / (r.seconds as number),
    p50: r.p50_us as number,
    p99: r.p99_us as number,
    sent: sent.sent as number,
    received: r.received as number,
    cpuNs: ((r.cpu_s as number) * 1e9) / (r.received as number),
  };
}

try {
  const flood: Record<Receiver, number[]> = { c: [], bun: [], deno: [], node: [] };
  const offered: Record<Receiver, number[]> = { c: [], bun: [], deno: [], node: [] };
  const cpuNs: Record<Receiver, number[]> = { c: [], bun: [], deno: [], node: [] };
  const cpuRatio: Record<Receiver, number[]> = { c: [], bun: [], deno: [], node: [] };
  const ratio: Record<Receiver, number[]> = { c: [], bun: [], deno: [], node: [] };
  const p50: Record<Receiver, number[]> = { c: [], bun: [], deno: [], node: [] };
  const p99: Record<Receiver, number[]> = { c: [], bun: [], deno: [], node: [] };
  for (let rep = 1; rep <= REPS; rep++) {
    const row: Partial<Record<Receiver, number>> = {};
    const cost: Partial<Record<Receiver, number>> = {};
    for (const r of RECEIVERS) {
      const x = await once(r, 0);
      row[r] = x.pps;
      flood[r].push(x.pps);
      offered[r].push(x.sent / (SECONDS + 0.5));
      cpuNs[r].push(x.cpuNs);
      cost[r] = x.cpuNs;
      process.stderr.write(`\rrep ${rep}/${REPS} flood ${r}: ${Math.round(x.pps)} datagrams/s        `);
    }
    for (const r of RECEIVERS) ratio[r].push(row[r]! / row.c!);
    for (const r of RECEIVERS) cpuRatio[r].push(cost[r]! / cost.c!);
    for (const r of RECEIVERS) {
      const x = await once(r, PACED_PPS);
      p50[r].push(x.p50);
      p99[r].push(x.p99);
      process.stderr.write(`\rrep ${rep}/${REPS} paced ${r}: p50 ${x.p50} µs p99 ${x.p99} µs         `);
    }
  }
  process.stderr.write("\n");
  const idle: Record<string, number> = {};
  for (const runtime of RUNTIMES) {
    const p = bed.spawn(bed.router, runtimeArgv(runtime, "test/sys/sys_scenarios.ts", ["idle", "11"]));
    await p.waitFor((l) => l.ready === true);
    await new Promise((r) => setTimeout(r, 500));
    const before = cpuSeconds(p.pid);
    await new Promise((r) => setTimeout(r, 10_000));
    idle[runtime] = ((cpuSeconds(p.pid) - before) / 10) * 100;
    await p.exited(5000);
  }
  const k = (x: number) => `${(x / 1000).toFixed(0)}k`;
  console.log(`\n# Receive path: ${REPS} interleaved repetitions, ${SECONDS} s each, 64-byte datagrams, 32 per recvmmsg`);
  console.log(
    "| receiver | flood: offered/s | drained/s | ratio to C (same rep) | CPU ns per datagram | CPU vs C (same rep) | paced 2 kpps: wake-up p50 µs | p99 µs |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of RECEIVERS) {
    const name = r === "c" ? "C recvmmsg (blocking)" : `${r} poller + recvmmsg`;
    console.log(
      `| ${name} | ${summary(offered[r], k)} | ${summary(flood[r], k)} | ${summary(ratio[r], (x) => x.toFixed(2))} | ${
        summary(cpuNs[r], (x) => x.toFixed(0))
      } | ${summary(cpuRatio[r], (x) => x.toFixed(2))} | ${median(p50[r])} | ${median(p99[r])} |`,
    );
  }
  console.log(
    `\nIdle cost, poller armed on 4 sockets, no traffic, CPU over 10 s: ${RUNTIMES.map((r) => `${r} ${idle[r]!.toFixed(2)} %`).join(", ")} of one core.`,
  );
} finally {
  await bed.destroy();
}
