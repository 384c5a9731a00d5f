/**
 * `anysrc bench compare A B`: two recorded runs side by side — per contender and family, the
 * headline figures of A and B and B ÷ A; then, for the older sections, the median ratio to C per
 * contender in each run.
 * @module
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { contenderLabel } from "./bench_charts.ts";
import type { NdrRep, NdrRow } from "./bench_ndr.ts";
import type { BenchResults } from "./bench_report.ts";
import { medianOfFinite } from "@anysrc/testbed";

/** results.json from a file or from a directory that holds one. */
export function loadResults(path: string): BenchResults {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, "results.json") : path;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`cannot read bench results from ${file}: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || !("plan" in parsed) || !("machine" in parsed)) {
    throw new Error(`${file} is not an anysrc bench results.json (no "plan" and "machine")`);
  }
  // Runs older than the headline section have no "ndr": read them as having none.
  const r = parsed as BenchResults & { ndr?: NdrRow[] };
  return { ...r, ndr: r.ndr ?? [] };
}

const k = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(x < 10_000 ? 1 : 0)}k` : "–");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");

/** The headline figures compared, one row per metric. */
const METRICS: readonly [string, (r: NdrRep) => number | undefined, (x: number) => string][] = [
  ["NDR", (r) => r.search.ndr, k],
  ["PDR", (r) => r.search.pdr, k],
  ["warm round trips/s", (r) => r.warm.roundTripsPerSecond, k],
  ["cold first s", (r) => r.cold?.roundTripsPerSecond, k],
  ["CPU µs/datagram", (r) => r.warm.cpuUsPerDatagram, f2],
  ["p99 at 90 % (µs)", (r) => r.latency.find((l) => l.fraction === 0.9)?.p99Us, (x) => x.toFixed(0)],
  ["new sessions/s", (r) => r.churnClient.perSecond, k],
];

/** A markdown comparison of two runs. */
export function compareResults(a: BenchResults, b: BenchResults, names: readonly [string, string] = ["A", "B"]): string {
  const out = [
    `# anysrc bench compare`,
    "",
    `- ${names[0]}: ${a.machine.date} (${a.plan.sections.join(", ")})`,
    `- ${names[1]}: ${b.machine.date} (${b.plan.sections.join(", ")})`,
    "",
  ];
  const rows = b.ndr.filter((row) => a.ndr.some((x) => x.who === row.who && x.kind === row.kind && x.family === row.family));
  if (rows.length) {
    out.push("## Headline", "", `| contender | family | metric | ${names[0]} | ${names[1]} | ${names[1]} ÷ ${names[0]} |`, "|---|---|---|---:|---:|---:|");
    for (const row of rows) {
      const before = a.ndr.find((x) => x.who === row.who && x.kind === row.kind && x.family === row.family)!;
      for (const [metric, pick, fmt] of METRICS) {
        const x = medianOfFinite(before.reps.map((r) => pick(r) ?? Number.NaN));
        const y = medianOfFinite(row.reps.map((r) => pick(r) ?? Number.NaN));
        if (!Number.isFinite(x) && !Number.isFinite(y)) continue;
        out.push(`| ${contenderLabel(row)} | IPv${row.family} | ${metric} | ${fmt(x)} | ${fmt(y)} | ${f2(y / x)} |`);
      }
    }
    out.push("");
  }
  const sections = ["send", "relay", "saturate", "forward"] as const;
  const ratioOf = (r: BenchResults, section: (typeof sections)[number], key: string) => {
    const list =
      (r[section] as readonly { who: string; kind: string; ratios?: number[]; rateRatios?: number[]; copyRatios?: number[]; cpuRatios?: number[] }[]) ?? [];
    return medianOfFinite(list.filter((x) => `${x.kind} · ${x.who}` === key).flatMap((x) => x.ratios ?? x.rateRatios ?? x.copyRatios ?? x.cpuRatios ?? []));
  };
  const keys = [
    ...new Set(
      sections.flatMap((s) => ((b[s] ?? []) as readonly { who: string; kind: string }[]).filter((x) => x.who !== "c").map((x) => `${x.kind} · ${x.who}`)),
    ),
  ];
  const lines = keys.flatMap((key) =>
    sections.map((s) => [key, s, ratioOf(a, s, key), ratioOf(b, s, key)] as const).filter(([, , x, y]) => Number.isFinite(x) || Number.isFinite(y))
  );
  if (lines.length) {
    out.push(
      "## Ratios to C (median over cells and runs; relay: CPU; others: rate)",
      "",
      `| contender | section | ${names[0]} | ${names[1]} |`,
      "|---|---|---:|---:|",
    );
    for (const [key, s, x, y] of lines) out.push(`| ${key} | ${s} | ${f2(x)} | ${f2(y)} |`);
  }
  return out.join("\n");
}
