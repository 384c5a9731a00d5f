/**
 * `anysrc bench`: raw vs bindsrc vs tun, Bun vs Deno, against C baselines, side by side in one run,
 * inside a namespace testbed it builds and removes. Writes results.json, report.md and chart.svg.
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import type { TransportKind } from "@anysrc/relay/extension";
import { ADDRESSES as A, canCountSyscalls, compileC, createTestbed, missingPrivileges, type Runtime, RUNTIMES } from "@anysrc/testbed";
import { BENCH_SECTIONS, type BenchPlan, makePlan } from "./bench_plan.ts";
import { type BenchResults, ratioRows, reportMarkdown, RESULTS_SCHEMA_VERSION } from "./bench_report.ts";
import { ndrCharts, ratioChart, renderPng, renderSvg } from "./bench_charts.ts";
import { TPROXY_PORT, writeV2rayConfig } from "./bench_runs.ts";
import { cpuSplit, ndrSection } from "./bench_ndr.ts";
import { workersCells, workersRuns, workersSection } from "./bench_workers.ts";
import { compareResults, loadResults } from "./bench_compare.ts";
import {
  type BenchContext,
  forwardSection,
  offloadSection,
  relaySection,
  saturateSection,
  sendSection,
  sessionsSection,
  sourcesSection,
} from "./bench_sections.ts";
import { exitProcess, onSignal, processId, TRANSPORT_KINDS, UsageError, writeStderr } from "@anysrc/relay/extension";

export const BENCH_USAGE = `Usage: anysrc bench [--full] [--quick] [--transports raw,bindsrc,tun] [--runtimes bun,deno,node] [--families 4,6]
                    [--sections ndr,send,sources,relay,saturate,workers,offload,forward,sessions] [--out DIR]
                    [--reps N] [--saturate-cells FLOWSxBYTES,…] [--warmup SECONDS]
       anysrc bench compare A B     two runs side by side (results.json files or --out directories)
       anysrc bench report DIR      report.md and the charts again from DIR/results.json

  (no flags)     the headline run, about 5 minutes: section ndr, Bun and Deno, one repetition
  --full         every section, Bun, Deno and Node, 3 repetitions (about an hour)
  --quick        shorter runs of whatever sections run (1 repetition)
  --transports   which transports (default all three)
  --runtimes     which runtimes run anysrc (default bun,deno; bun,deno,node with --full)
  --families     IP families (default 4,6)
  --sections     which parts (default ndr; all with --full): ndr = per contender (the strong C relay,
                 its first version, the testbed's own ceiling with no relay, every transport ×
                 runtime) the cold first second, the warm rate and CPU, NDR and PDR by binary search
                 over open-loop trials, latency percentiles at 50 % and 90 % of the C relay's NDR,
                 new sessions per second (new client port; new remote address); then send-only,
                 many sources, paced relay, saturating relay
                 (closed loop, 256 in flight, 1 and 64 flows, 64 and 1200 B), workers (the
                 saturating 64-flow cells, and 1-flow with --full, with --workers N (N = CPUs) against one
                 worker: scaling, CPU, memory, the per-core cost model), offloads (--offload on
                 and off: a bulk flow to a GSO echo server with GRO on the links, 64 small flows,
                 send-only 1200 B), forward (3 receivers, 256 B, beside a C forwarder of
                 samplicator's design: capacity at a saturating rate, CPU at a lossless one), sessions + idle
  --out DIR      where results.json, report.md and the charts go (default bench-out)
  --reps N       repetitions (default 1; 3 with --full)
  --saturate-cells FLOWSxBYTES,…  the saturating cells (default 1x64,1x1200,64x64,64x1200,8x3000)
  --warmup S     seconds of the same load before each measured relay run, paced, saturating and
                 offload, every contender alike (default 1; 0 measures from a cold start, JIT
                 compiles included); the forward section warms each forwarder up at 15 000/s for
                 as long

Needs root (network namespaces, TPROXY, TUN), nft and cc; installs nftables/gcc with apt-get when
missing. Builds its own namespace testbed and removes it at the end, on Ctrl-C or on failure.`;

function listFlag<T extends string>(cmd: string, flag: string, text: string | undefined, all: readonly T[]): T[] {
  if (text === undefined) return [...all];
  const items = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!(all as readonly string[]).includes(i)) throw new UsageError(cmd, `${flag}: "${i}" is not one of ${all.join(", ")}`);
  if (items.length === 0) throw new UsageError(cmd, `${flag} is empty`);
  return items as T[];
}

/** Install a Debian package when its command is missing; say so, or say exactly what to run. */
function ensureTool(command: string, pkg: string): void {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return;
  } catch {
    // Missing: install below.
  }
  console.error(`anysrc bench: \`${command}\` is missing; installing ${pkg} with apt-get`);
  try {
    execFileSync("sh", ["-c", `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`], { stdio: "inherit" });
  } catch {
    throw new Error(`cannot install ${pkg}; run: apt-get install -y ${pkg}`);
  }
}

/**
 * Progress on stderr: on a terminal one line rewritten in place (steps, elapsed, estimated remaining
 * from the pace so far, what just finished); piped, one line per step with the elapsed time.
 */
function createProgress(total: number, tty: boolean): { step(what: string): void } {
  let done = 0;
  const start = performance.now();
  const clock = (s: number) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  return {
    step(what) {
      done++;
      const elapsed = (performance.now() - start) / 1000;
      const left = done < total ? ` ~${clock((elapsed / done) * (total - done))} left` : "";
      if (tty) writeStderr(`\r[${done}/${total} ${clock(elapsed)}${left}] ${what}`.padEnd(120).slice(0, 140));
      else writeStderr(`[${done}/${total} ${clock(elapsed)}] ${what}\n`);
    },
  };
}

/** The plan the flags ask for. */
function planOf(args: string[]): BenchPlan {
  const cmd = "bench";
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      quick: { type: "boolean" },
      full: { type: "boolean" },
      transports: { type: "string" },
      runtimes: { type: "string" },
      families: { type: "string" },
      sections: { type: "string" },
      out: { type: "string" },
      reps: { type: "string" },
      "saturate-cells": { type: "string" },
      warmup: { type: "string" },
    },
  });
  const full = values.full ?? false;
  return makePlan({
    quick: values.quick ?? false,
    full,
    transports: listFlag<TransportKind>(cmd, "--transports", values.transports, TRANSPORT_KINDS),
    runtimes: listFlag<Runtime>(cmd, "--runtimes", values.runtimes ?? (full ? undefined : "bun,deno"), RUNTIMES),
    families: listFlag(cmd, "--families", values.families, ["4", "6"] as const).map((f) => (f === "4" ? 4 : 6)),
    out: values.out ?? "bench-out",
    sections: listFlag(cmd, "--sections", values.sections ?? (full ? undefined : "ndr"), BENCH_SECTIONS),
    reps: values.reps === undefined ? undefined : repsOf(cmd, values.reps),
    saturateCells: values["saturate-cells"] === undefined ? undefined : saturateCellsOf(cmd, values["saturate-cells"]),
    warmup: values.warmup === undefined ? undefined : warmupOf(cmd, values.warmup),
  });
}

function repsOf(cmd: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 50) throw new UsageError(cmd, `--reps: "${text}" is not a whole number from 1 to 50`);
  return n;
}

function warmupOf(cmd: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < 0 || n > 60) throw new UsageError(cmd, `--warmup: "${text}" is not a number of seconds from 0 to 60`);
  return n;
}

/** `64x64,1x1200` → cells of (flows, payload bytes). */
function saturateCellsOf(cmd: string, text: string): { flows: number; size: number }[] {
  const cells = text.split(",").map((s) => s.trim()).filter(Boolean).map((item) => {
    const m = /^(\d+)x(\d+)$/.exec(item);
    const flows = m ? Number(m[1]) : 0;
    const size = m ? Number(m[2]) : 0;
    if (!m || flows < 1 || flows > 1024 || size < 1 || size > 65_507) {
      throw new UsageError(cmd, `--saturate-cells: "${item}" is not FLOWSxBYTES (flows 1–1024, bytes 1–65507), e.g. 64x1200`);
    }
    return { flows, size };
  });
  if (cells.length === 0) throw new UsageError(cmd, "--saturate-cells is empty");
  return cells;
}

/** How many runs the plan makes, for the progress bar. */
function totalRuns(plan: BenchPlan, v2ray: boolean): number {
  const wants = (section: (typeof BENCH_SECTIONS)[number]) => plan.sections.includes(section);
  const who = 1 + plan.runtimes.length;
  const sendCells = plan.transports.length * plan.families.length * 2;
  const relayCells = plan.transports.length * plan.families.length;
  const sourceKinds = plan.transports.filter((t) => t !== "tun").length;
  const manySourceRuns = plan.runtimes.length * sourceKinds + plan.reps * sourceKinds * plan.families.length * who;
  // The C relays run only in cells they can relay without fragmenting (bench_sections.ts saturateSection).
  const withC = plan.saturateCells.filter((c) => c.size <= 1400).length;
  const ours = plan.runtimes.length * plan.transports.length;
  const ndrBlocks = plan.reps * plan.families.length * (2 + (plan.basicBaseline ? 1 : 0) + ours);
  return (wants("ndr") ? 3 * ndrBlocks : 0) + (wants("send") ? plan.reps * sendCells * who : 0) + (wants("relay") ? plan.reps * relayCells * who : 0) +
    (wants("relay") && v2ray ? plan.reps * plan.families.length : 0) + (wants("sources") ? manySourceRuns : 0) + (wants("sessions") ? 2 * who : 0) +
    (wants("saturate") ? plan.reps * plan.families.length * (plan.saturateCells.length * (1 + ours) + withC * (plan.basicBaseline ? 2 : 1)) : 0) +
    (wants("offload") ? plan.reps * plan.families.length * (plan.offloadCells.length * (1 + 2 * ours) + plan.transports.length - 1) : 0) +
    (wants("forward") ? plan.reps * plan.families.length * 2 * (1 + ours) : 0) +
    (wants("workers") ? workersRuns(plan.reps, plan.families.length, workersCells(plan.full).length, ours) : 0);
}

/** Empty results for `plan`, with the machine they are measured on. */
function emptyResults(plan: BenchPlan, v2ray: boolean): BenchResults {
  return {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: execFileSync("uname", ["-r"], { encoding: "utf8" }).trim(),
      date: new Date().toISOString(),
    },
    plan,
    ndr: [],
    send: [],
    manySources: [],
    fewSources: [],
    relay: [],
    saturate: [],
    workers: [],
    offload: [],
    forward: [],
    sessions: [],
    idle: [],
    peers: {
      v2ray: v2ray
        ? "present: dokodemo-door inbounds in TPROXY mode, freedom outbound with the same mark (config in results: v2ray.json)"
        : "absent on this machine (apt-get install v2ray to include it)",
    },
  };
}

const SECTIONS: Record<(typeof BENCH_SECTIONS)[number], (ctx: BenchContext) => Promise<void>> = {
  ndr: ndrSection,
  send: sendSection,
  sources: sourcesSection,
  relay: relaySection,
  saturate: saturateSection,
  workers: workersSection,
  offload: offloadSection,
  forward: forwardSection,
  sessions: sessionsSection,
};

/** Run `anysrc bench`; returns the exit status. */
export async function benchCommand(args: string[]): Promise<number> {
  if (args[0] === "compare") {
    if (args.length !== 3) throw new UsageError("bench", "compare takes two results: anysrc bench compare A B (results.json files or --out directories)");
    console.log(compareResults(loadResults(args[1]!), loadResults(args[2]!), [args[1]!, args[2]!]));
    return 0;
  }
  if (args[0] === "report") {
    if (args.length !== 2) throw new UsageError("bench", "report takes one --out directory: anysrc bench report DIR");
    const results = loadResults(args[1]!);
    await writeReport({ ...results.plan, out: args[1]! }, results);
    return 0;
  }
  const plan = planOf(args);
  ensureTool("nft", "nftables");
  ensureTool("cc", "gcc libc6-dev");
  const missing = missingPrivileges();
  if (missing) throw new Error(`anysrc bench needs root and the testbed tools: ${missing}`);
  const bin = compileC([
    "send_baseline",
    "udp_sink",
    "udp_echo",
    "relay_load",
    "relay_saturate",
    "tproxy_relay",
    "udp_flood",
    "forward_baseline",
    "tproxy_relay_basic",
    "relay_openloop",
    "session_churn",
  ]);
  const countSyscalls = plan.sections.includes("saturate") && plan.syscallSeconds > 0 && (await canCountSyscalls());
  const v2ray = hasCommand("v2ray");
  const bed = createTestbed();
  const interrupted = () => {
    writeStderr("\nanysrc bench: interrupted; removing the testbed\n");
    void bed.destroy().then(() => exitProcess(130));
  };
  onSignal("SIGINT", interrupted);
  onSignal("SIGTERM", interrupted);
  mkdirSync(plan.out, { recursive: true });
  const ctx: BenchContext = {
    bed,
    bin,
    plan,
    results: emptyResults(plan, v2ray),
    progress: createProgress(totalRuns(plan, v2ray), process.stderr.isTTY === true),
    tun: `asbench${processId() % 10000}`,
    who: ["c", ...plan.runtimes],
    countSyscalls,
    v2rayConfig: v2ray ? writeV2rayConfig(`${plan.out}/v2ray.json`) : undefined,
    port: 20000,
    split: cpuSplit(cpus().length),
  };
  try {
    // Multi-queue: one relay attaches one queue, `--workers N` one per worker.
    bed.run(bed.router, ["ip", "tuntap", "add", "dev", ctx.tun, "mode", "tun", "multi_queue"]);
    bed.run(bed.router, ["ip", "link", "set", ctx.tun, "up"]);
    bed.run(bed.router, ["sysctl", "-qw", `net.ipv4.conf.${ctx.tun}.rp_filter=0`]);
    bed.enableTproxy(TPROXY_PORT);
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.udp_echo!, host, "7000"]).waitFor((l) => l.ready === true);
    for (const section of BENCH_SECTIONS) if (plan.sections.includes(section)) await SECTIONS[section](ctx);
    writeStderr("\n"); // past the progress bar
  } finally {
    await bed.destroy();
  }
  await writeReport(plan, ctx.results);
  return 0;
}

function hasCommand(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** results.json, report.md and the charts (SVG and PNG) in `plan.out`; the tables on stdout. */
async function writeReport(plan: BenchPlan, results: BenchResults): Promise<void> {
  const ratios = ratioRows(results);
  const charts = [...(results.ndr.length ? ndrCharts(results.ndr) : []), ...(ratios.length ? [ratioChart(ratios)] : [])];
  for (const chart of charts) {
    const svg = await renderSvg(chart.spec);
    writeFileSync(`${plan.out}/${chart.name}.svg`, svg);
    writeFileSync(`${plan.out}/${chart.name}.png`, renderPng(svg));
  }
  const report = reportMarkdown(results, charts.map((c) => c.name));
  writeFileSync(`${plan.out}/results.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${plan.out}/report.md`, report);
  console.log(report);
  console.log(`\nwrote ${plan.out}/results.json, ${plan.out}/report.md, ${charts.map((c) => `${plan.out}/${c.name}.{svg,png}`).join(", ")}`);
}
