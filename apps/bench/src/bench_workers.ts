/**
 * `--sections workers`: what `--workers` buys. The saturating cells (closed loop, unpaced) with one
 * worker and with one per CPU (`--workers N`, N = the CPUs), every transport × runtime, beside the strong C
 * relay and the testbed's ceiling in the same repetition: relayed datagrams/s, CPU per datagram (the
 * supervisor and every worker), scaling (N workers ÷ 1), memory, and the per-core cost model —
 * relay CPU and testbed CPU per datagram, both measured — with what it predicts for bigger machines.
 * @module
 */
import { cpus } from "node:os";
import { median, medianOfFinite, summary } from "@anysrc/testbed";
import type { TransportKind } from "@anysrc/relay/extension";
import { ceilingOnce, type Contender, saturateOnce, type SaturateResult } from "./bench_runs.ts";
import type { BenchContext } from "./bench_sections.ts";
import type { BenchResults } from "./bench_report.ts";

/** One row: a contender in one cell with one worker count, every repetition. */
export interface WorkersRow {
  readonly kind: string;
  /** "ceiling": the testbed with no relay. */
  readonly who: Contender | "ceiling";
  readonly family: number;
  readonly flows: number;
  readonly size: number;
  /** Relay processes doing the work (the C relay and one-worker anysrc: 1; the ceiling: 0). */
  readonly workers: number;
  readonly runs: SaturateResult[];
  /** Per repetition, for N workers: datagrams/s ÷ the same contender's with one worker. */
  readonly scaling: number[];
  /** Per repetition, for N workers: CPU per datagram ÷ the same contender's with one worker. */
  readonly cpuScaling: number[];
}

/** The cells: 64 flows (a client per worker is what spreads) at 64 and 1200 B; one flow too with --full (it cannot spread). */
export function workersCells(full: boolean): { flows: number; size: number }[] {
  return [...(full ? [{ flows: 1, size: 64 }, { flows: 1, size: 1200 }] : []), { flows: 64, size: 64 }, { flows: 64, size: 1200 }];
}

/** Progress steps of the section: per cell, the ceiling and C together, then one per contender (its 1 and N worker runs). */
export function workersRuns(reps: number, families: number, cells: number, ours: number): number {
  return reps * families * cells * (1 + ours);
}

/** The section: every cell, every repetition, interleaved (ceiling, C, then each contender with 1 and N workers). */
export async function workersSection(ctx: BenchContext): Promise<void> {
  const { plan, results, progress } = ctx;
  // As many workers as CPUs, unpinned like the harness: on a machine the load generator and echo server
  // share, the scheduler places them all (`auto` would pin each worker to a CPU the harness also needs).
  const many = String(cpus().length);
  const rows = results.workers;
  if (!rows) throw new Error("bench results made without a workers list");
  const rowOf = (who: WorkersRow["who"], kind: string, cell: { family: number; flows: number; size: number }, workers: number) => {
    let row = rows.find((x) =>
      x.who === who && x.kind === kind && x.family === cell.family && x.flows === cell.flows && x.size === cell.size && x.workers === workers
    );
    if (!row) rows.push(row = { who, kind, ...cell, workers, runs: [], scaling: [], cpuScaling: [] });
    return row;
  };
  const run = { window: plan.saturateWindow, seconds: plan.saturateSeconds, warmupSeconds: plan.warmupSeconds };
  const says = (r: SaturateResult) => `${Math.round(r.datagramsPerSecond / 1000)}k/s, lost ${r.lost}`;
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const family of plan.families) {
      for (const { flows, size } of workersCells(plan.full)) {
        const cell = { family, flows, size };
        const ceiling = await ceilingOnce(ctx, cell, run);
        rowOf("ceiling", "kernel", cell, 0).runs.push(ceiling);
        const c = await saturateOnce(ctx, "c", "raw", cell, run);
        rowOf("c", "raw", cell, 1).runs.push(c);
        progress.step(`workers IPv${family} ${flows}x${size}: ceiling ${says(ceiling)}, C ${says(c)}`);
        for (const who of plan.runtimes) {
          for (const kind of plan.transports as readonly TransportKind[]) {
            const one = await saturateOnce(ctx, who, kind, cell, run);
            const all = await saturateOnce(ctx, who, kind, cell, { ...run, workers: many });
            rowOf(who, kind, cell, 1).runs.push(one);
            const row = rowOf(who, kind, cell, Number(many));
            row.runs.push(all);
            row.scaling.push(all.datagramsPerSecond / one.datagramsPerSecond);
            row.cpuScaling.push(cpuPerDatagram(all) / cpuPerDatagram(one));
            progress.step(`workers ${kind} ${who} IPv${family} ${flows}x${size}: 1 worker ${says(one)}; ${many} workers ${says(all)}`);
          }
        }
      }
    }
  }
}

const cpuPerDatagram = (r: SaturateResult) => r.userUsPerDatagram + r.systemUsPerDatagram;
const k = (x: number) => `${(x / 1000).toFixed(0)}k`;
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");

/** The section's report: the table, the scaling summary, memory per worker and the cost model. */
export function workersReport(r: BenchResults): string {
  const rows = r.workers ?? [];
  if (rows.length === 0) return "";
  const lines = [
    `### Workers: one process per CPU (\`--workers N\`, unpinned) against one, saturating closed loop (${r.plan.saturateWindow} in flight, ${r.plan.saturateSeconds} s after ${r.plan.warmupSeconds} s of warm-up)`,
    "",
    "The relay, the load generator and the echo server share this machine's CPUs: nothing is pinned. CPU counts the supervisor and every worker; testbed CPU is the machine's busy time less the relay's (generator, echo server, the kernel forwarding between namespaces), per relayed datagram. Scaling is N workers ÷ 1 worker of the same contender in the same repetition.",
    "",
    "| family | flows | payload | relay | transport | workers | relayed/s | scaling | CPU µs / datagram | CPU scaling | testbed µs / datagram | RSS MiB | lost |",
    "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const x of rows) {
    const cpu = median(x.runs.map(cpuPerDatagram));
    lines.push(
      `| IPv${x.family} | ${x.flows} | ${x.size} B | ${x.who} | ${x.kind} | ${x.workers || "–"} | ${summary(x.runs.map((y) => y.datagramsPerSecond), k)} | ${
        x.scaling.length ? f2(medianOfFinite(x.scaling)) : "–"
      } | ${Number.isFinite(cpu) ? f1(cpu) : "–"} | ${x.cpuScaling.length ? f2(medianOfFinite(x.cpuScaling)) : "–"} | ${
        f1(median(x.runs.map((y) => y.testbedUsPerDatagram ?? Number.NaN)))
      } | ${x.who === "ceiling" ? "–" : f1(median(x.runs.map((y) => y.rssMiB ?? Number.NaN)))} | ${x.runs.reduce((a, y) => a + y.lost, 0)} |`,
    );
  }
  lines.push("", ...costModel(r, rows));
  return lines.join("\n");
}

/**
 * The per-core cost model: relay CPU per datagram with one worker (r) and testbed CPU per datagram
 * (h), both measured above. On a gateway whose traffic comes from outside, N cores relay about N ÷ r
 * datagrams/s if workers scale linearly (they share no state: separate sockets, sessions, queues);
 * on this testbed the harness shares the cores, so the ceiling is N ÷ (r + h).
 */
function costModel(r: BenchResults, rows: readonly WorkersRow[]): string[] {
  const out = [
    "Per-core cost model (64-flow cells, medians): r = relay CPU per datagram with one worker, h = testbed CPU per datagram. Predicted datagrams/s: a gateway with N cores for the relay, N ÷ r (workers share nothing, so they add up until the NIC or its queues do not); this testbed, where the harness shares the cores, N ÷ (r + h).",
    "",
    "| relay | transport | r µs | h µs | here, N ÷ (r + h) | measured, N workers | 4 cores N ÷ r | 8 | 16 | RSS one worker MiB | supervisor | each worker |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const n = Number(r.machine.cpus ?? 2);
  for (const who of ["c", ...r.plan.runtimes] as const) {
    for (const kind of who === "c" ? ["raw"] : r.plan.transports) {
      const one = rows.filter((x) => x.who === who && x.kind === kind && x.flows === 64 && x.workers === 1);
      const many = rows.filter((x) => x.who === who && x.kind === kind && x.flows === 64 && x.workers > 1);
      if (!one.length) continue;
      const rUs = median(one.flatMap((x) => x.runs.map(cpuPerDatagram)));
      const hUs = median(one.flatMap((x) => x.runs.map((y) => y.testbedUsPerDatagram ?? Number.NaN)));
      const measured = many.length ? median(many.flatMap((x) => x.runs.map((y) => y.datagramsPerSecond))) : Number.NaN;
      const rss = (xs: readonly WorkersRow[], of: (y: SaturateResult) => number) => (xs.length ? median(xs.flatMap((x) => x.runs.map(of))) : Number.NaN);
      const single = rss(one, (y) => y.rssMiB ?? Number.NaN);
      const supervisor = rss(many, (y) => y.mainRssMiB ?? Number.NaN);
      const eachWorker = rss(many, (y) => ((y.rssMiB ?? Number.NaN) - (y.mainRssMiB ?? Number.NaN)) / n);
      // The C relay is one process with no reuseport group of its own: no prediction past one core.
      const per = (cores: number) => (who === "c" ? "–" : k((cores * 1e6) / rUs));
      const ours = (x: number) => (who === "c" ? "–" : f1(x));
      out.push(
        `| ${who} | ${kind} | ${f2(rUs)} | ${f2(hUs)} | ${k((n * 1e6) / (rUs + hUs))} | ${Number.isFinite(measured) ? k(measured) : "–"} | ${per(4)} | ${
          per(8)
        } | ${per(16)} | ${f1(single)} | ${ours(supervisor)} | ${ours(eachWorker)} |`,
      );
    }
  }
  return out;
}
