/**
 * `anysrc bench` output: the terminal table, report.md, chart.svg and results.json.
 * @module
 */
import { workersReport, type WorkersRow } from "./bench_workers.ts";
import { median, medianOfFinite, summary } from "@anysrc/testbed";
import type { BenchPlan } from "./bench_plan.ts";
import type { NdrRow } from "./bench_ndr.ts";
import { HARNESS_MARGIN, ndrTables } from "./ndr_report.ts";
import type { Contender, ForwardResult, RelayResult, SaturateResult, SendResult } from "./bench_runs.ts";

/** results.json's layout version (docs/BENCH-RESULTS.md): 2 added the headline section (`ndr`). */
export const RESULTS_SCHEMA_VERSION = 2;

/** Everything measured, as written to results.json (docs/BENCH-RESULTS.md describes every field). */
export interface BenchResults {
  /** Absent in runs before version 2. */
  readonly schemaVersion?: number;
  readonly machine: Record<string, string | number>;
  readonly plan: BenchPlan;
  /** The headline section (bench_ndr.ts). */
  readonly ndr: NdrRow[];
  readonly send: { kind: string; family: number; size: number; who: Contender; runs: SendResult[]; ratios: number[] }[];
  readonly manySources: { kind: string; who: Contender; pps: number; sources: number }[];
  readonly fewSources: { kind: string; family: number; who: Contender; sources: number; runs: SendResult[]; ratios: number[] }[];
  readonly relay: { kind: string; family: number; who: Contender; runs: RelayResult[]; cpuRatios: number[]; rateRatios: number[] }[];
  readonly saturate: {
    kind: string;
    /** "ceiling": the testbed without a relay (kind "kernel"). */
    who: Contender | "ceiling";
    family: number;
    flows: number;
    size: number;
    runs: SaturateResult[];
    rateRatios: number[];
    cpuRatios: number[];
  }[];
  readonly offload: {
    test: "bulk" | "small" | "send";
    kind: string;
    who: Contender;
    offload: "on" | "off" | "none";
    family: number;
    flows: number;
    size: number;
    rates: number[];
    ratios: number[];
    lost: number;
    coalescedIn: number[];
    coalescedOut: number[];
    kernelDrops: Record<string, number>;
  }[];
  readonly forward: {
    kind: string;
    who: Contender;
    family: number;
    rate: "saturating" | "lossless";
    runs: ForwardResult[];
    copyRatios: number[];
    cpuRatios: number[];
  }[];
  /** `--sections workers` (absent in runs before it existed). */
  readonly workers?: WorkersRow[];
  readonly sessions: { who: Contender; rssMiB: number; settledRssMiB?: number; fds: number; received: number; sessions: number }[];
  readonly idle: { who: Contender; cpuPercent: number }[];
  readonly peers: Record<string, string>;
}

const k = (x: number) => `${(x / 1000).toFixed(0)}k`;
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

/** The offload cells: anysrc with offloads on and off beside the C programs of the same job, same repetition. */
function offloadTable(r: BenchResults): string {
  const title: Record<string, string> = {
    bulk: "bulk: 1 flow, 1200 B, 256 in flight; the echo server sends with GSO and reads with GRO (as QUIC servers do); GRO on the testbed's veths",
    small: "many small flows: 64 flows, 64 B, 256 in flight, plain echo server",
    send: "send-only: 1200 B to one destination, batch 32, source-checking sink",
  };
  const pct = (xs: number[]) => (xs.length ? `${Math.round(median(xs) * 100)} %` : "–");
  const lines = [
    "### Offloads (`--offload on|off`): datagrams/s, median (min–max); ratio to the C program of the same cell (no offloads), same repetition",
    "",
  ];
  lines.push(
    "| cell | family | who | transport | offload | datagrams/s | ÷ C | read coalesced | sent coalesced | lost | kernel drops |",
    "|---|---|---|---|---|---:|---:|---:|---:|---:|---|",
  );
  for (const x of r.offload) {
    const drops = Object.entries(x.kernelDrops).map(([n, v]) => `${n} ${v}`).join(", ") || "0";
    lines.push(
      `| ${x.test} | IPv${x.family} | ${x.who} | ${x.kind} | ${x.offload} | ${summary(x.rates, k)} | ${x.who === "c" ? "1.00" : f2(median(x.ratios))} | ${
        pct(x.coalescedIn)
      } | ${pct(x.coalescedOut)} | ${x.lost} | ${drops} |`,
    );
  }
  lines.push("", ...Object.entries(title).filter(([t]) => r.offload.some((x) => x.test === t)).map(([, text]) => `- ${text}`));
  return lines.join("\n");
}

/** The forward cells: anysrc beside the C forwarder of samplicator's design, same repetition. */
function forwardTable(r: BenchResults): string {
  const p = r.plan;
  const lines = [
    `### Forward: ${p.forwardReceivers} receivers, ${p.forwardSize} B, ${p.forwardSeconds} s per run; copies delivered per second at ${p.forwardRates.saturating} datagrams/s offered (saturating), CPU per datagram at ${p.forwardRates.lossless}/s (lossless); ratios to the C forwarder (one recvfrom, one raw sendto per copy), same repetition`,
    "",
    "| forwarder | transport | family | copies/s (saturating) | ÷ C | lost copies (saturating) | CPU µs per datagram (lossless) | of it user | ÷ C | lost copies (lossless) |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const cells = r.forward.filter((x) => x.rate === "saturating");
  for (const sat of cells) {
    const low = r.forward.find((x) => x.rate === "lossless" && x.who === sat.who && x.kind === sat.kind && x.family === sat.family);
    const c = sat.who === "c";
    lines.push(
      `| ${sat.who} | ${sat.kind} | IPv${sat.family} | ${summary(sat.runs.map((y) => y.copiesPerSecond), k)} | ${c ? "1.00" : f2(median(sat.copyRatios))} | ${
        sat.runs.reduce((a, y) => a + y.lost, 0)
      } | ${low ? summary(low.runs.map((y) => y.cpuUsPerDatagram), f1) : "–"} | ${low ? f1(median(low.runs.map((y) => y.userUsPerDatagram))) : "–"} | ${
        low ? (c ? "1.00" : f2(median(low.cpuRatios))) : "–"
      } | ${low ? low.runs.reduce((a, y) => a + y.lost, 0) : "–"} |`,
    );
  }
  return lines.join("\n");
}

/** Markdown tables of every phase. */
export function resultTables(r: BenchResults): string {
  const lines: string[] = [];
  if (r.send.length) {
    lines.push("### Send-only: datagrams/s handed to the kernel, median (min–max); ratio to the C sender of the same variant, same repetition", "");
    lines.push("| transport | family | payload | sender | datagrams/s | ÷ C | delivered (source-checked) |", "|---|---|---:|---|---:|---:|---:|");
  }
  for (const s of r.send) {
    const delivered = s.runs.reduce((a, x) => a + x.delivered, 0) / s.runs.reduce((a, x) => a + x.count, 0);
    lines.push(
      `| ${s.kind} | IPv${s.family} | ${s.size} B | ${s.who} | ${summary(s.runs.map((x) => x.pps), k)} | ${s.who === "c" ? "1.00" : f2(median(s.ratios))} | ${
        (delivered * 100).toFixed(1)
      } % |`,
    );
  }
  if (r.manySources.length) {
    lines.push("", "### Many sources: 1000 distinct source ports, 64 B, round-robin (`anysrc send --sources 1000`)", "");
    lines.push("| transport | runtime | datagrams/s | sockets used |", "|---|---|---:|---:|");
    for (const m of r.manySources) lines.push(`| ${m.kind} | ${m.who} | ${k(m.pps)} | ${m.kind === "bindsrc" ? m.sources : 1} |`);
  }
  if (r.fewSources.length) {
    lines.push(
      "",
      `### A few sources: ${r.fewSources[0]!.sources} source ports round-robin, 64 B, batch 32 (\`anysrc send --sources ${
        r.fewSources[0]!.sources
      }\`), against the C sender of the same variant with as many, to an unconnected sink`,
      "",
    );
    lines.push("| transport | family | sender | datagrams/s | ÷ C | delivered (any source) |", "|---|---|---|---:|---:|---:|");
    for (const x of r.fewSources) {
      const delivered = x.runs.reduce((a, y) => a + y.delivered, 0) / x.runs.reduce((a, y) => a + y.count, 0);
      lines.push(
        `| ${x.kind} | IPv${x.family} | ${x.who} | ${summary(x.runs.map((y) => y.pps), k)} | ${f2(median(x.ratios))} | ${(delivered * 100).toFixed(1)} % |`,
      );
    }
  }
  if (r.relay.length) {
    lines.push(
      "",
      `### End to end: TPROXY relay, ${r.plan.relayRate} datagrams/s offered over 64 flows for ${r.plan.relaySeconds} s after ${
        r.plan.warmupSeconds ?? 0
      } s of the same load (warm-up, every contender), 256-byte payloads, echoed by the server`,
      "",
    );
    lines.push(
      "| relay | transport | family | CPU µs per relayed datagram | ÷ C | relayed datagrams/s | RTT p50 µs | RTT p99 µs | lost | peak RSS MiB | fds |",
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
  }
  for (const x of r.relay) {
    const runs = x.runs;
    lines.push(
      `| ${x.who} | ${x.kind} | IPv${x.family} | ${summary(runs.map((y) => y.cpuUsPerDatagram), f1)} | ${x.who === "c" ? "1.00" : f2(median(x.cpuRatios))} | ${
        k(median(runs.map((y) => y.datagramsPerSecond)))
      } | ${median(runs.map((y) => y.p50Us))} | ${median(runs.map((y) => y.p99Us))} | ${runs.reduce((a, y) => a + y.lost + y.corrupt, 0)} | ${
        f1(Math.max(...runs.map((y) => y.peakRssMiB)))
      } | ${Math.max(...runs.map((y) => y.fds))} |`,
    );
  }
  if (r.saturate.length) lines.push("", saturateTable(r));
  if (r.workers?.length) lines.push("", workersReport(r));
  if (r.offload.length) lines.push("", offloadTable(r));
  if (r.forward.length) lines.push("", forwardTable(r));
  if (r.sessions.length) {
    lines.push("", `### Memory with ${r.sessions[0]!.sessions} sessions (raw transport, IPv4), and idle cost`, "");
    lines.push("| relay | RSS MiB with sessions | 2 s later | fds | idle CPU % of a core |", "|---|---:|---:|---:|---:|");
  }
  for (const s of r.sessions) {
    const idle = r.idle.find((i) => i.who === s.who);
    const settled = s.settledRssMiB === undefined ? "–" : f1(s.settledRssMiB);
    lines.push(`| ${s.who} | ${f1(s.rssMiB)} | ${settled} | ${s.fds} | ${idle ? f2(idle.cpuPercent) : "–"} |`);
  }
  return lines.join("\n");
}

/** The median of the ratios that are not void (a C run that lost makes its ratio NaN); "void" when none is left. */
const ratio = (xs: readonly number[]) => (xs.some((x) => Number.isFinite(x)) ? f2(medianOfFinite(xs)) : xs.length ? "void" : "–");

/** The saturating table: one row per cell and contender, medians over the repetitions. */
function saturateTable(r: BenchResults): string {
  const lines: string[] = [];
  const p = r.plan;
  lines.push(
    `### Saturating end to end: closed loop, ${p.saturateWindow} datagrams in flight, unpaced, ${p.saturateSeconds} s per run after ${
      p.warmupSeconds ?? 0
    } s of the same load (warm-up, every contender), echoed by the server`,
    "",
  );
  lines.push(
    "Relayed datagrams/s count both directions; CPU is per relayed datagram, user + system (every thread of the relay); syscalls per relayed datagram counted with perf in the last repetition. Lost: datagrams never echoed, all repetitions; kernel drops: nstat drop counters of the client, router and server namespaces, their links' drop counters and the machine's softnet backlog drops, those that moved. The C relay does not fragment, so the 3000-byte cells have no ratio. The ceiling row is the same closed loop with no relay (the router forwarding in its kernel), in the same repetition; a contender within 15 % of it is flagged harness-bound.",
    "",
  );
  lines.push(
    "| family | flows | payload | relay | transport | relayed/s | ÷ C | CPU µs user + sys | CPU ÷ C | syscalls / datagram | RTT p50 / p99 µs | lost | kernel drops |",
    "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
  );
  for (const x of r.saturate) {
    const user = median(x.runs.map((y) => y.userUsPerDatagram));
    const sys = median(x.runs.map((y) => y.systemUsPerDatagram));
    const counted = x.runs.find((y) => y.syscalls)?.syscalls;
    const calls = counted
      ? `${f2(counted.total)} (${
        Object.entries(counted.byName).filter(([, v]) => v >= 0.01).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([n, v]) => `${n} ${f2(v)}`).join(", ")
      })`
      : "–";
    const drops: Record<string, number> = {};
    for (const y of x.runs) for (const [k2, v] of Object.entries(y.kernelDrops)) drops[k2] = (drops[k2] ?? 0) + v;
    const dropText = Object.entries(drops).map(([k2, v]) => `${k2} ${v}`).join(", ") || "0";
    const lost = x.runs.reduce((a, y) => a + y.lost, 0);
    const voided = x.rateRatios.filter((v) => Number.isNaN(v)).length;
    const ceiling = r.saturate.find((y) => y.who === "ceiling" && y.family === x.family && y.flows === x.flows && y.size === x.size);
    const nearCeiling = x.who !== "ceiling" && ceiling !== undefined &&
      median(x.runs.map((y) => y.datagramsPerSecond)) >= (1 - HARNESS_MARGIN) * median(ceiling.runs.map((y) => y.datagramsPerSecond));
    const voidNote = `${voided ? ` (${voided} void: C lost)` : ""}${nearCeiling ? " (harness-bound: within 15 % of the ceiling)" : ""}`;
    lines.push(
      `| IPv${x.family} | ${x.flows} | ${x.size} B | ${x.who} | ${x.who === "c" ? "raw" : x.kind} | ${summary(x.runs.map((y) => y.datagramsPerSecond), k)} | ${
        x.who === "c" ? "1.00" : `${ratio(x.rateRatios)}${voidNote}`
      } | ${f1(user + sys)} (${f1(user)} + ${f1(sys)}) | ${x.who === "c" ? "1.00" : ratio(x.cpuRatios)} | ${calls} | ${median(x.runs.map((y) => y.p50Us))} / ${
        median(x.runs.map((y) => y.p99Us))
      } | ${lost} | ${dropText} |`,
    );
  }
  lines.push("", "Summary per transport × runtime over every saturating cell (median cell, worst cell):", "");
  lines.push(
    "| relay | transport | relayed ÷ C, median cell | worst cell | CPU ÷ C, median cell | worst cell | lost (all cells) |",
    "|---|---|---:|---:|---:|---:|---:|",
  );
  for (const who of p.runtimes) {
    for (const kind of p.transports) {
      const cells = r.saturate.filter((x) => x.who === who && x.kind === kind && x.rateRatios.some((v) => Number.isFinite(v)));
      if (!cells.length) continue;
      const rates = cells.map((x) => medianOfFinite(x.rateRatios));
      const cpus = cells.map((x) => medianOfFinite(x.cpuRatios));
      lines.push(
        `| ${who} | ${kind} | ${f2(median(rates))} | ${f2(Math.min(...rates))} | ${f2(median(cpus))} | ${f2(Math.max(...cpus))} | ${
          cells.reduce((a, x) => a + x.runs.reduce((b, y) => b + y.lost, 0), 0)
        } |`,
      );
    }
  }
  return lines.join("\n");
}

/** The ratio to C per transport × runtime: send-only, paced relay (C CPU ÷ ours) and saturated relay, higher is better on each. */
export function ratioRows(r: BenchResults): { contender: string; measure: string; ratio: number }[] {
  const rows: { contender: string; measure: string; ratio: number }[] = [];
  for (const kind of r.plan.transports) {
    for (const who of r.plan.runtimes) {
      const contender = `${kind} · ${who}`;
      const sendRatios = r.send.filter((s) => s.kind === kind && s.who === who).flatMap((s) => s.ratios);
      // End to end: C CPU ÷ ours, so that higher is better on every bar.
      const relayRatios = r.relay.filter((x) => x.kind === kind && x.who === who).flatMap((x) => x.cpuRatios.map((c) => 1 / c));
      // Saturating: the median cell's relayed datagrams/s ÷ C.
      const saturateRatios = r.saturate.filter((x) => x.kind === kind && x.who === who && x.rateRatios.length).map((x) => median(x.rateRatios));
      for (
        const [measure, xs] of [["send-only: datagrams/s ÷ C sender", sendRatios], ["paced relay: C CPU ÷ anysrc CPU", relayRatios], [
          "saturated relay: datagrams/s ÷ C",
          saturateRatios,
        ]] as const
      ) {
        const v = xs.filter((x) => Number.isFinite(x));
        if (v.length) rows.push({ contender, measure, ratio: median(v) });
      }
    }
  }
  return rows;
}

/** The answer to "when is raw better than bindsrc, when is tun, what does each cost" from the numbers. */
export function findings(r: BenchResults): string {
  const out: string[] = [];
  const sendMedian = (kind: string, who: string, size: number) => {
    const cells = r.send.filter((s) => s.kind === kind && s.who === who && s.size === size);
    return cells.length ? median(cells.flatMap((c) => c.runs.map((x) => x.pps))) : Number.NaN;
  };
  const relayCpu = (kind: string, who: string) => {
    const cells = r.relay.filter((x) => x.kind === kind && x.who === who);
    return cells.length ? median(cells.flatMap((c) => c.runs.map((x) => x.cpuUsPerDatagram))) : Number.NaN;
  };
  for (const who of r.plan.runtimes) {
    if (!r.send.length || !r.relay.length) break;
    const parts = r.plan.transports.map((kind) =>
      `${kind} ${k(sendMedian(kind, who, 64))}/s at 64 B, ${k(sendMedian(kind, who, 1200))}/s at 1200 B, ${f1(relayCpu(kind, who))} µs CPU per relayed datagram`
    );
    out.push(`- **${who}:** ${parts.join("; ")}.`);
  }
  const saturated = r.plan.runtimes.flatMap((who) =>
    r.plan.transports.map((kind) => {
      const cells = r.saturate.filter((x) => x.who === who && x.kind === kind && x.rateRatios.length).map((x) => median(x.rateRatios));
      return cells.length ? `${kind} ${who} ${f2(median(cells))} (worst ${f2(Math.min(...cells))})` : "";
    })
  ).filter(Boolean);
  if (saturated.length) {
    const lost = r.saturate.filter((x) => (r.plan.runtimes as readonly string[]).includes(x.who)).reduce(
      (a, x) => a + x.runs.reduce((b, y) => b + y.lost, 0),
      0,
    );
    out.push(
      `- **Saturated (closed loop, ${r.plan.saturateWindow} in flight), relayed datagrams/s ÷ the C relay, median cell:** ${
        saturated.join("; ")
      }. Datagrams lost by anysrc in all saturating runs: ${lost}.`,
    );
  }
  const bulk = r.offload.filter((x) => x.test === "bulk" && x.offload === "on");
  if (bulk.length) {
    const cells = bulk.map((x) => `${x.kind} ${x.who} IPv${x.family} ${f2(median(x.ratios))}`);
    const lost = r.offload.filter((x) => (r.plan.runtimes as readonly string[]).includes(x.who)).reduce((a, x) => a + x.lost, 0);
    out.push(`- **Bulk flow with offloads, relayed datagrams/s ÷ the C relay:** ${cells.join("; ")}. Datagrams lost by anysrc in all offload cells: ${lost}.`);
  }
  const c = r.relay.filter((x) => x.who === "c");
  if (c.length) {
    out.push(`- **C relay of the same design:** ${f1(median(c.flatMap((x) => x.runs.map((y) => y.cpuUsPerDatagram))))} µs CPU per relayed datagram.`);
  }
  const v = r.relay.filter((x) => x.who === "v2ray");
  if (r.relay.length) {
    out.push(
      v.length
        ? `- **v2ray dokodemo-door (TPROXY):** ${f1(median(v.flatMap((x) => x.runs.map((y) => y.cpuUsPerDatagram))))} µs CPU per relayed datagram.`
        : `- **v2ray dokodemo-door:** absent on this machine, not compared.`,
    );
  }
  const many = r.manySources;
  if (many.length) {
    const get = (kind: string, who: string) => many.find((m) => m.kind === kind && m.who === who)?.pps ?? Number.NaN;
    out.push(
      `- **Many sources (1000 source ports):** raw keeps 1 socket and ${
        r.plan.runtimes.map((w) => `${k(get("raw", w))}/s on ${w}`).join(", ")
      }; bindsrc needs 1000 sockets (1000 fds, one bind each, one sendmmsg per source per batch) and reaches ${
        r.plan.runtimes.map((w) => `${k(get("bindsrc", w))}/s on ${w}`).join(", ")
      }.`,
    );
  }
  out.push(
    "- **When raw wins:** many distinct sources (one fd total, one sendmmsg per batch whatever the mix of sources), sources that a local service owns (bindsrc gets EADDRINUSE there; raw does not care), and no risk of a bound socket capturing later client traffic. It pays for building headers and checksums in TypeScript (tens of ns per packet) and for fragmenting itself above the MTU.",
    "- **When bindsrc wins:** few, long-lived sources (a relay in front of a handful of servers): the kernel fills checksums, fragments, applies PMTU, and a batch to one source is a plain sendmmsg with no header building. Its cost grows with the number of sources (fds, bind per new source, LRU churn past the cap).",
    "- **When tun fits:** when the packets should be routed rather than sent (policy routing, forwarding to other hosts, an intercept that also receives): one write per packet (no batching), every checksum ours, forwarding and rp_filter settings needed on the host, TTL drops by one.",
  );
  return out.join("\n");
}

/** How the headline section measures, for report.md and BENCHMARKS.md. */
export function ndrMethod(p: BenchPlan): string {
  return [
    `Headline section (\`ndr\`): for each family, every contender in one life of its process — the strong C relay (\`tproxy_relay.c\`), its first version (\`tproxy_relay_basic.c\`), the testbed's own ceiling (the router forwarding UDP in its kernel, no relay, no TPROXY rule) and each transport × runtime. The relay gets the last CPU to itself (\`taskset\`), the load generators and echo servers the others: every contender has one core, and the ceiling is what the harness does on the CPUs it has.`,
    `1. **Cold**: a closed loop (\`relay_saturate.c\`, 256 in flight, ${p.ndrCell.flows} flows × ${p.ndrCell.size} B) started the moment the relay prints that it listens; its first second. 2. **Warm**: the same loop for another second (rate, CPU per relayed datagram from /proc). 3. **NDR / PDR**: binary search over open-loop trials of ${p.trialSeconds} s (\`relay_openloop.c\`: paced in 50 µs ticks, never waiting for echoes), from the warm rate, to within 2 %; a trial fails on a lost datagram (PDR: more than 0.1 %), on a backlog (an echo more than 20 ms after the last send: past its capacity a relay with megabyte buffers queues rather than drops in a short trial), or when the generator falls 2 % short of the rate. The warm-up before the first trial is the two closed-loop seconds above: long enough for Bun's and Deno's JITs at these rates (BENCHMARKS.md history: the cold/warm A/B). 4. **Latency**: 1 s open loops at 50 % and 90 % of the C relay's NDR — the same offered rate for every contender — every echo's round trip in a log-bucket histogram (1/64 relative precision; max exact). 5. **New sessions**: 64 round trips in flight, each from a new client port (\`session_churn.c client\`), then each to a new remote address (\`remote\`: the server answers a range of ports).`,
    `A contender whose NDR is within 15 % of the ceiling's is flagged harness-bound. A C run that lost datagrams makes the ratios to it void. Kernel drop counters (nstat, link and softnet drops) that moved during each contender's block are in results.json.`,
  ].join("\n\n");
}

/** report.md: what ran, the tables, the charts, what the numbers say. */
export function reportMarkdown(r: BenchResults, charts: readonly string[]): string {
  const p = r.plan;
  const flags = [p.full ? " --full" : "", p.quick ? " --quick" : ""].join("");
  return `# anysrc bench report

Command: \`anysrc bench${flags}\` (as root, from the repository: \`npm run bench${flags ? ` --${flags}` : ""}\`); sections ${p.sections.join(", ")}; runtimes ${
    p.runtimes.join(", ")
  }; transports ${p.transports.join(", ")}; IPv${p.families.join(" and IPv")}.
Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}; ${r.machine.date}.
Repetitions: ${p.reps}, interleaved (every contender within each cell and repetition); ratios are taken within a repetition, then the median.

${charts.map((name) => `![${name}](${name}.png)`).join("\n")}

${r.ndr.length ? `## Headline: NDR, cold start, latency, new sessions\n\n${ndrMethod(p)}\n\n${ndrTables(r.ndr)}\n` : ""}
${
    resultTables(r).trim()
      ? `## Other sections\n\nLoad generators: paced, \`relay_load.c\` (64 connected sockets, every echo verified byte for byte) offers ${p.relayRate} datagrams/s; saturating, \`relay_saturate.c\` keeps ${p.saturateWindow} datagrams in flight over 1, 8 or 64 connected sockets, unpaced. Baselines: \`send_baseline.c\` (the same variant per transport), \`tproxy_relay.c\` (the strong C relay) and \`forward_baseline.c\`. CPU per relayed datagram counts every thread of the relay process (/proc), each direction as one datagram. Peers: v2ray dokodemo-door — ${r.peers.v2ray}.\n\n${
        resultTables(r)
      }\n\n## What the numbers say\n\n${findings(r)}\n`
      : ""
  }`;
}
