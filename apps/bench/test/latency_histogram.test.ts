import { execFileSync } from "node:child_process";
import { compileC } from "@anysrc/testbed";
import { describe, expect, it } from "vitest";

// The load generator's log-bucket histogram (packages/testbed/c/latency_histogram.h), fed known
// distributions through `relay_openloop --histogram`, against exact nearest-rank quantiles.
const bin = compileC(["relay_openloop"]);

/** Deterministic uniform [0, 1) (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function histogram(values: readonly number[]): Record<string, number> {
  const out = execFileSync(bin.relay_openloop!, ["--histogram"], { input: values.join("\n"), encoding: "utf8", maxBuffer: 1 << 20 });
  return JSON.parse(out) as Record<string, number>;
}

/** The value of rank ceil(q × n) in sorted order. */
function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

function expectQuantiles(values: number[]): void {
  const h = histogram(values);
  const sorted = [...values].sort((a, b) => a - b);
  expect(h.count).toBe(values.length);
  for (const [key, q] of [["p50_ns", 0.5], ["p90_ns", 0.9], ["p99_ns", 0.99], ["p999_ns", 0.999]] as const) {
    const exact = exactQuantile(sorted, q);
    // A bucket is at most 1/64 of its lower bound wide, and the report is its middle.
    expect(Math.abs(h[key]! - exact), `${key}: ${h[key]} against ${exact}`).toBeLessThanOrEqual(exact / 64 + 1);
  }
  expect(h.max_ns).toBe(sorted.at(-1));
  expect(h.mean_ns).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 2);
}

describe("latency histogram", () => {
  it("matches the quantiles of an exponential distribution (mean 50 µs) within a bucket", () => {
    const next = random(1);
    expectQuantiles(Array.from({ length: 200_000 }, () => Math.floor(-Math.log(1 - next()) * 50_000)));
  });

  it("is exact below 128 ns", () => {
    const values = Array.from({ length: 10_000 }, (_, i) => i % 100);
    const h = histogram(values);
    const sorted = [...values].sort((a, b) => a - b);
    expect(h.p50_ns).toBe(exactQuantile(sorted, 0.5));
    expect(h.p99_ns).toBe(exactQuantile(sorted, 0.99));
  });

  it("puts a 1 % tail of 50 ms in p99.9 and max, not in p99", () => {
    const next = random(7);
    const values = Array.from(
      { length: 100_000 },
      (_, i) => (i % 100 === 0 ? 50_000_000 + Math.floor(next() * 1_000_000) : 100_000 + Math.floor(next() * 20_000)),
    );
    expectQuantiles(values);
    const h = histogram(values);
    expect(h.p99_ns).toBeLessThan(200_000);
    expect(h.p999_ns).toBeGreaterThan(49_000_000);
  });
});
