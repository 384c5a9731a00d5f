#!/usr/bin/env node
// Two sets of `anysrc bench --out DIR` results side by side: per relay × transport, the median over
// every cell and run of the ratios to C (saturating relayed/s and CPU, paced CPU), and datagrams lost.
// Usage: node tools/bench_compare.mjs --before DIR[,DIR…] --after DIR[,DIR…]
import { readFileSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
const dirs = (flag) => {
  const i = args.indexOf(flag);
  if (i < 0 || !args[i + 1]) throw new Error(`usage: bench_compare.mjs --before DIR[,DIR…] --after DIR[,DIR…] (missing ${flag})`);
  return args[i + 1].split(",");
};
const load = (list) => list.map((d) => JSON.parse(readFileSync(join(d, "results.json"), "utf8")));
const before = load(dirs("--before"));
const after = load(dirs("--after"));

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

/** Per "who kind": the values `pick` takes from every row of `section` in every result set. */
function collect(sets, section, pick) {
  const out = new Map();
  for (const r of sets) {
    for (const row of r[section] ?? []) {
      const key = `${row.who} ${row.kind}`;
      if (!out.has(key)) out.set(key, []);
      out.get(key).push(...pick(row));
    }
  }
  return out;
}

const lost = (row) => [row.runs.reduce((a, run) => a + (run.lost ?? 0), 0)];
const sum = (xs) => (xs ?? []).reduce((a, b) => a + b, 0);
const table = (title, columns, rows) => {
  console.log(`| ${title} | ${columns.join(" | ")} |`);
  console.log(`|---|${columns.map(() => "---:").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  console.log();
};

const satRate = [collect(before, "saturate", (r) => r.rateRatios ?? []), collect(after, "saturate", (r) => r.rateRatios ?? [])];
const satCpu = [collect(before, "saturate", (r) => r.cpuRatios ?? []), collect(after, "saturate", (r) => r.cpuRatios ?? [])];
const satLost = [collect(before, "saturate", lost), collect(after, "saturate", lost)];
const keys = [...new Set([...satRate[0].keys(), ...satRate[1].keys()])].filter((k) => !k.startsWith("c ")).sort();
table(
  "saturating relay",
  ["before: relayed ÷ C (median)", "after", "before: CPU ÷ C (median)", "after", "lost before / after"],
  keys.map((k) => [
    k,
    fmt(median(satRate[0].get(k) ?? [])),
    fmt(median(satRate[1].get(k) ?? [])),
    fmt(median(satCpu[0].get(k) ?? [])),
    fmt(median(satCpu[1].get(k) ?? [])),
    `${sum(satLost[0].get(k))} / ${sum(satLost[1].get(k))}`,
  ]),
);

const pacedUs = [collect(before, "relay", (r) => r.runs.map((x) => x.cpuUsPerDatagram)), collect(after, "relay", (r) => r.runs.map((x) => x.cpuUsPerDatagram))];
const pacedCpu = [collect(before, "relay", (r) => r.cpuRatios ?? []), collect(after, "relay", (r) => r.cpuRatios ?? [])];
const pacedLost = [collect(before, "relay", lost), collect(after, "relay", lost)];
const pacedKeys = [...new Set([...pacedUs[0].keys(), ...pacedUs[1].keys()])].sort();
table(
  "paced relay",
  ["before: µs/datagram (median)", "after", "before: CPU ÷ C", "after", "lost before / after"],
  pacedKeys.map((k) => [
    k,
    fmt(median(pacedUs[0].get(k) ?? []), 1),
    fmt(median(pacedUs[1].get(k) ?? []), 1),
    k.startsWith("c ") ? "–" : fmt(median(pacedCpu[0].get(k) ?? [])),
    k.startsWith("c ") ? "–" : fmt(median(pacedCpu[1].get(k) ?? [])),
    `${sum(pacedLost[0].get(k))} / ${sum(pacedLost[1].get(k))}`,
  ]),
);
