/**
 * `anysrc bench` output: the terminal table, report.md, chart.svg and results.json.
 * @module
 */
import { median, summary } from "@anysrc/testbed";
import type { BenchPlan } from "./bench_plan.ts";
import type { Contender, ForwardResult, RelayResult, SaturateResult, SendResult } from "./bench_runs.ts";

/** Everything measured, as written to results.json. */
export interface BenchResults {
  readonly machine: Record<string, string | number>;
  readonly plan: BenchPlan;
  readonly send: { kind: string; family: number; size: number; who: Contender; runs: SendResult[]; ratios: number[] }[];
  readonly manySources: { kind: string; who: Contender; pps: number; sources: number }[];
  readonly fewSources: { kind: string; family: number; who: Contender; sources: number; runs: SendResult[]; ratios: number[] }[];
  readonly relay: { kind: string; family: number; who: Contender; runs: RelayResult[]; cpuRatios: number[]; rateRatios: number[] }[];
  readonly saturate: {
    kind: string;
    who: Contender;
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

const ratio = (xs: readonly number[]) => (xs.length ? f2(median(xs)) : "–");

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
    "Relayed datagrams/s count both directions; CPU is per relayed datagram, user + system (every thread of the relay); syscalls per relayed datagram counted with perf in the last repetition. Lost: datagrams never echoed, all repetitions; kernel drops: nstat drop counters of the client, router and server namespaces, their links' drop counters and the machine's softnet backlog drops, those that moved. The C relay does not fragment, so the 3000-byte cells have no ratio.",
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
    lines.push(
      `| IPv${x.family} | ${x.flows} | ${x.size} B | ${x.who} | ${x.who === "c" ? "raw" : x.kind} | ${summary(x.runs.map((y) => y.datagramsPerSecond), k)} | ${
        x.who === "c" ? "1.00" : ratio(x.rateRatios)
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
      const cells = r.saturate.filter((x) => x.who === who && x.kind === kind && x.rateRatios.length);
      if (!cells.length) continue;
      const rates = cells.map((x) => median(x.rateRatios));
      const cpus = cells.map((x) => median(x.cpuRatios));
      lines.push(
        `| ${who} | ${kind} | ${f2(median(rates))} | ${f2(Math.min(...rates))} | ${f2(median(cpus))} | ${f2(Math.max(...cpus))} | ${
          cells.reduce((a, x) => a + x.runs.reduce((b, y) => b + y.lost, 0), 0)
        } |`,
      );
    }
  }
  return lines.join("\n");
}

/** Grouped horizontal bars: the ratio to C per transport × runtime, send-only and end to end. */
export function chartSvg(r: BenchResults): string {
  const rows: { label: string; send: number; relay: number; saturate: number }[] = [];
  for (const kind of r.plan.transports) {
    for (const who of r.plan.runtimes) {
      const sendRatios = r.send.filter((s) => s.kind === kind && s.who === who).flatMap((s) => s.ratios);
      const relayCells = r.relay.filter((x) => x.kind === kind && x.who === who);
      // End to end: C CPU ÷ ours, so that higher is better on both bars.
      const relayRatios = relayCells.flatMap((x) => x.cpuRatios.map((c) => 1 / c));
      // Saturating: the median cell's relayed datagrams/s ÷ C.
      const saturateRatios = r.saturate.filter((x) => x.kind === kind && x.who === who && x.rateRatios.length).map((x) => median(x.rateRatios));
      rows.push({
        label: `${kind} · ${who}`,
        send: sendRatios.length ? median(sendRatios) : 0,
        relay: relayRatios.length ? median(relayRatios) : 0,
        saturate: saturateRatios.length ? median(saturateRatios) : 0,
      });
    }
  }
  const width = 760, left = 150, barH = 14, gap = 10, top = 56;
  const bars = 3;
  const height = top + rows.length * (bars * barH + gap) + 50;
  const max = Math.max(1.2, ...rows.flatMap((x) => [x.send, x.relay, x.saturate]));
  const x = (v: number) => left + (v / max) * (width - left - 60);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">anysrc vs C, same run (1.0 = as fast / as cheap as C; higher is better)</text>`);
  parts.push(`<rect x="${left}" y="30" width="12" height="12" fill="#4c78a8"/><text x="${left + 16}" y="40">send-only: datagrams/s ÷ C sender</text>`);
  parts.push(`<rect x="${left + 200}" y="30" width="12" height="12" fill="#f58518"/><text x="${left + 216}" y="40">paced relay: C CPU ÷ anysrc CPU</text>`);
  parts.push(`<rect x="${left + 400}" y="30" width="12" height="12" fill="#54a24b"/><text x="${left + 416}" y="40">saturated relay: datagrams/s ÷ C</text>`);
  rows.forEach((row, i) => {
    const y = top + i * (bars * barH + gap);
    parts.push(`<text x="${left - 8}" y="${y + 1.5 * barH + 4}" text-anchor="end">${row.label}</text>`);
    ([[row.send, "#4c78a8"], [row.relay, "#f58518"], [row.saturate, "#54a24b"]] as const).forEach(([v, color], b) => {
      parts.push(`<rect x="${left}" y="${y + b * barH}" width="${Math.max(0, x(v) - left)}" height="${barH - 1}" fill="${color}"/>`);
      parts.push(`<text x="${x(v) + 4}" y="${y + (b + 1) * barH - 3}">${v ? f2(v) : "–"}</text>`);
    });
  });
  const axisY = top + rows.length * (bars * barH + gap) + 5;
  for (const t of [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5].filter((v) => v <= max)) {
    parts.push(
      `<line x1="${x(t)}" y1="${top - 4}" x2="${x(t)}" y2="${axisY}" stroke="${t === 1 ? "#333" : "#ddd"}" stroke-dasharray="${t === 1 ? "4 3" : ""}"/>`,
    );
    parts.push(`<text x="${x(t)}" y="${axisY + 14}" text-anchor="middle">${t}</text>`);
  }
  parts.push("</svg>");
  return parts.join("\n");
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
    const lost = r.saturate.filter((x) => x.who !== "c").reduce((a, x) => a + x.runs.reduce((b, y) => b + y.lost, 0), 0);
    out.push(
      `- **Saturated (closed loop, ${r.plan.saturateWindow} in flight), relayed datagrams/s ÷ the C relay, median cell:** ${
        saturated.join("; ")
      }. Datagrams lost by anysrc in all saturating runs: ${lost}.`,
    );
  }
  const bulk = r.offload.filter((x) => x.test === "bulk" && x.offload === "on");
  if (bulk.length) {
    const cells = bulk.map((x) => `${x.kind} ${x.who} IPv${x.family} ${f2(median(x.ratios))}`);
    const lost = r.offload.filter((x) => x.who !== "c").reduce((a, x) => a + x.lost, 0);
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
