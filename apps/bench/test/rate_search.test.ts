import { describe, expect, it } from "vitest";
import { searchRates, type TrialOutcome } from "../src/rate_search.ts";

const options = { start: 100_000, floor: 1000, precision: 0.02, pdrLoss: 0.001, maxTrials: 20 };

/** A device that delivers up to `capacity`/s and loses the rest; the generator offers up to `generatorMax`. */
function device(capacity: number, generatorMax = Number.POSITIVE_INFINITY): (rate: number) => Promise<TrialOutcome> {
  return (rate) => {
    const offered = Math.min(rate, generatorMax);
    const lost = Math.max(0, Math.round(offered - capacity));
    return Promise.resolve({ sent: Math.round(offered), lost, late: 0, offered });
  };
}

describe("searchRates", () => {
  it("brackets a hard capacity to within the precision, from above and from below the start", async () => {
    for (const capacity of [37_000, 99_000, 150_000, 260_000]) {
      const r = await searchRates(device(capacity), options);
      expect(r.converged).toBe(true);
      expect(r.ndr).toBeLessThanOrEqual(capacity);
      expect(r.ndr).toBeGreaterThanOrEqual(capacity / 1.02);
      expect(r.ndrFailedAt! / r.ndr).toBeLessThanOrEqual(1.02);
      expect(r.harnessLimited).toBe(false);
    }
  });

  it("finds a PDR above the NDR when loss starts small", async () => {
    // Loss of 0.05 % from 50 000/s, then everything past 60 000/s.
    const trial = (rate: number): Promise<TrialOutcome> => {
      const lost = rate <= 50_000 ? 0 : rate <= 60_000 ? Math.ceil(rate * 0.0005) : Math.round(rate - 60_000 + rate * 0.0005);
      return Promise.resolve({ sent: rate, lost, late: 0, offered: rate });
    };
    const r = await searchRates(trial, options);
    expect(r.ndr).toBeGreaterThanOrEqual(50_000 / 1.02);
    expect(r.ndr).toBeLessThanOrEqual(50_000);
    expect(r.pdr).toBeGreaterThanOrEqual(60_000 / 1.02);
    expect(r.pdr).toBeLessThanOrEqual(60_000);
    // Every trial the PDR phase needed came after the NDR phase closed, and the NDR trials were reused.
    expect(r.trials.length).toBeLessThan(20);
  });

  it("fails a trial that left a backlog, as it fails one that lost", async () => {
    const trial = (rate: number): Promise<TrialOutcome> => Promise.resolve({ sent: rate, lost: 0, late: rate > 80_000 ? 10 : 0, offered: rate });
    const r = await searchRates(trial, options);
    expect(r.ndr).toBeLessThanOrEqual(80_000);
    expect(r.ndr).toBeGreaterThanOrEqual(80_000 / 1.02);
  });

  it("says the harness was the limit when the generator cannot offer the rate above the NDR", async () => {
    const r = await searchRates(device(500_000, 120_000), options);
    expect(r.harnessLimited).toBe(true);
    expect(r.ndr).toBeLessThanOrEqual(120_000 / 0.98);
    const fine = await searchRates(device(90_000, 120_000), options);
    expect(fine.harnessLimited).toBe(false);
  });

  it("never lets a pass outvote a loss: one lossy trial caps the NDR below it", async () => {
    let calls = 0;
    // The device could do 200 000/s, but the first trial (at the start rate) lost one datagram.
    const trial = (rate: number): Promise<TrialOutcome> => {
      calls++;
      return Promise.resolve({ sent: rate, lost: calls === 1 || rate > 200_000 ? 1 : 0, late: 0, offered: rate });
    };
    const r = await searchRates(trial, { ...options, start: 100_000 });
    expect(r.ndr).toBeLessThan(100_000);
    expect(r.ndr).toBeGreaterThanOrEqual(100_000 / 1.02);
  });

  it("reports 0 when even the floor loses, within the trial budget", async () => {
    const r = await searchRates(device(0), { ...options, maxTrials: 12 });
    expect(r.ndr).toBe(0);
    expect(r.trials.length).toBeLessThanOrEqual(12);
    expect(r.trials.every((t) => t.lost > 0)).toBe(true);
  });
});
