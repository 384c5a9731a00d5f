/**
 * The headline section's tables: per family, every contender beside the C relay and the ceiling.
 * Ratios are taken within a repetition, then the median; a ratio to a C run that lost datagrams is
 * void (printed as such, never divided), and a contender within 15 % of the ceiling is flagged as
 * harness-bound (the testbed, not the contender, may be what stopped it).
 * @module
 */
import { contenderLabel } from "./bench_charts.ts";
import type { NdrRep, NdrRow } from "./bench_ndr.ts";
import { medianOfFinite } from "@anysrc/testbed";

/** Within this share of the ceiling's rate a contender's figure may be the harness's limit. */
export const HARNESS_MARGIN = 0.15;

const k = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(x < 10_000 ? 1 : 0)}k` : "–");
const ratio = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const us = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(0)} ms` : x >= 1000 ? `${(x / 1000).toFixed(1)} ms` : `${Math.round(x)} µs`);

/** Per-repetition ratios of `pick(row)` to `pick(base)`; NaN where the base's run lost datagrams (void). */
function ratios(row: NdrRow, base: NdrRow | undefined, pick: (r: NdrRep) => number | undefined, baseLost: (r: NdrRep) => number): number[] {
  if (!base) return [];
  return row.reps.map((rep, i) => {
    const b = base.reps[i];
    const x = pick(rep);
    const y = b ? pick(b) : undefined;
    if (!b || x === undefined || y === undefined || y <= 0 || baseLost(b) > 0) return Number.NaN;
    return x / y;
  });
}

/** A "min–max" or single value of `xs`, formatted. */
function spread(xs: readonly number[], fmt: (x: number) => string): string {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return "–";
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return v.length === 1 || fmt(lo) === fmt(hi) ? fmt(medianOfFinite(v)) : `${fmt(medianOfFinite(v))} (${fmt(lo)}–${fmt(hi)})`;
}

/** The C relay lost datagrams in a closed-loop run of this repetition: ratios to it are void. */
const cLost = (r: NdrRep) => (r.cold?.lost ?? 0) + r.warm.lost;

/** Markdown tables of the headline section, one block per family. */
export function ndrTables(rows: readonly NdrRow[]): string {
  const out: string[] = [];
  for (const family of [...new Set(rows.map((r) => r.family))]) {
    const inFamily = rows.filter((r) => r.family === family);
    const c = inFamily.find((r) => r.who === "c");
    const ceiling = inFamily.find((r) => r.who === "ceiling");
    const cell = inFamily[0]!;
    out.push(
      `### IPv${family}: ${cell.flows} flows × ${cell.size} B — rates in round trips (datagrams offered by the client) per second, each relayed there and back`,
      "",
      "| contender | cold 1st s | warm | cold ÷ C cold | warm ÷ C | CPU µs/datagram (warm) | ÷ C | NDR | ÷ C | PDR | lost (closed loops) | note |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    );
    for (const row of inFamily) {
      const isC = row.who === "c";
      const cold = row.reps.map((r) => r.cold?.roundTripsPerSecond ?? Number.NaN);
      const warm = row.reps.map((r) => r.warm.roundTripsPerSecond);
      const cpu = row.reps.map((r) => r.warm.cpuUsPerDatagram ?? Number.NaN);
      const ndr = row.reps.map((r) => r.search.ndr);
      const lost = row.reps.reduce((a, r) => a + (r.cold?.lost ?? 0) + r.warm.lost, 0);
      const vs = (pick: (r: NdrRep) => number | undefined) => (isC ? "1.00" : ratio(medianOfFinite(ratios(row, c, pick, cLost))));
      const notes: string[] = [];
      if (isC && lost > 0) notes.push(`C lost ${lost}: ratios to it void`);
      if (row.who !== "ceiling" && ceiling) {
        const near = ratios(row, ceiling, (r) => r.search.ndr, () => 0).some((x) => x >= 1 - HARNESS_MARGIN);
        if (near) notes.push("harness-bound: NDR within 15 % of the ceiling");
      }
      if (row.reps.some((r) => r.search.harnessLimited)) notes.push("harness-bound: the generator could not offer the rate above the NDR");
      if (row.reps.some((r) => !r.search.converged)) notes.push("search did not converge");
      out.push(
        `| ${contenderLabel(row)} | ${spread(cold, k)} | ${spread(warm, k)} | ${row.who === "ceiling" ? "–" : vs((r) => r.cold?.roundTripsPerSecond)} | ${
          vs((r) => r.warm.roundTripsPerSecond)
        } | ${spread(cpu, (x) => x.toFixed(2))} | ${row.who === "ceiling" ? "–" : vs((r) => r.warm.cpuUsPerDatagram)} | ${spread(ndr, k)} | ${
          vs((r) => r.search.ndr)
        } | ${spread(row.reps.map((r) => r.search.pdr), k)} | ${lost} | ${notes.join("; ")} |`,
      );
    }
    out.push("", latencyTable(inFamily), "", churnTable(inFamily), "");
  }
  return out.join("\n");
}

/** Latency at 50 % and 90 % of the C relay's NDR: the same offered rate for every contender. */
function latencyTable(rows: readonly NdrRow[]): string {
  const lines = [
    "| contender | load | offered/s | p50 | p90 | p99 | p99.9 | max | lost | backlog at end | CPU µs/datagram |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    for (const fraction of [0.5, 0.9]) {
      const points = row.reps.flatMap((r) => r.latency.filter((l) => l.fraction === fraction));
      if (points.length === 0) continue;
      const m = (pick: (p: (typeof points)[number]) => number) => medianOfFinite(points.map(pick));
      lines.push(
        `| ${contenderLabel(row)} | ${Math.round(fraction * 100)} % | ${k(m((p) => p.rate))} | ${us(m((p) => p.p50Us))} | ${us(m((p) => p.p90Us))} | ${
          us(m((p) => p.p99Us))
        } | ${us(m((p) => p.p999Us))} | ${us(Math.max(...points.map((p) => p.maxUs)))} | ${points.reduce((a, p) => a + p.lost, 0)} | ${
          points.reduce((a, p) => a + p.late, 0)
        } | ${Number.isFinite(m((p) => p.cpuUsPerDatagram ?? Number.NaN)) ? m((p) => p.cpuUsPerDatagram ?? Number.NaN).toFixed(2) : "–"} |`,
      );
    }
  }
  return lines.join("\n");
}

/** New sessions per second: a new client port each round trip, and a new remote address each. */
function churnTable(rows: readonly NdrRow[]): string {
  const lines = [
    "| contender | new client port: sessions/s | p99 | lost | new remote address: round trips/s | p99 | lost |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const client = row.reps.map((r) => r.churnClient);
    const remote = row.reps.map((r) => r.churnRemote);
    lines.push(
      `| ${contenderLabel(row)} | ${spread(client.map((x) => x.perSecond), k)} | ${us(medianOfFinite(client.map((x) => x.p99Us)))} | ${
        client.reduce((a, x) => a + x.lost, 0)
      } | ${spread(remote.map((x) => x.perSecond), k)} | ${us(medianOfFinite(remote.map((x) => x.p99Us)))} | ${remote.reduce((a, x) => a + x.lost, 0)} |`,
    );
  }
  return lines.join("\n");
}
