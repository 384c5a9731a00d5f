/**
 * The no-drop rate (NDR) and partial-drop rate (PDR) of a device under test, by binary search over
 * trials of an open-loop load (RFC 2544 §26.1's throughput; FD.io CSIT's NDR/PDR pair). Pure: the
 * trial is a function the caller supplies, so the search runs the same against a relay in the testbed
 * and against a rate-limited receiver in a test.
 * @module
 */

/** What one trial at a requested rate gave. */
export interface TrialOutcome {
  /** Datagrams sent, lost (not echoed, or corrupt), and echoed later than the trial's latency bound. */
  readonly sent: number;
  readonly lost: number;
  readonly late: number;
  /** The rate the generator achieved (datagrams/s); below the requested one when it could not keep up. */
  readonly offered: number;
}

/** A trial as the search recorded it. */
export interface TrialRecord extends TrialOutcome {
  readonly rate: number;
  /** (lost + late) ÷ sent. */
  readonly lossRatio: number;
  /** The generator fell more than `offerTolerance` short of the rate: the harness's limit, not the device's. */
  readonly underOffered: boolean;
}

/** How the search goes. */
export interface RateSearchOptions {
  /** First rate tried (a good guess: the closed-loop rate), and the lowest rate worth trying. */
  readonly start: number;
  readonly floor: number;
  /** Stop when the bracket [passing, failing] is this narrow, relative (0.02: 2 %). */
  readonly precision: number;
  /** Loss ratio a PDR trial may have (0.001: 0.1 %). */
  readonly pdrLoss: number;
  /** At most this many trials in all. */
  readonly maxTrials: number;
  /** A trial whose achieved rate is below rate × (1 − offerTolerance) fails as under-offered (default 0.02). */
  readonly offerTolerance?: number;
}

/** The search's answer: each rate is the highest requested rate that passed (0 when none did). */
export interface RateSearchResult {
  readonly ndr: number;
  readonly pdr: number;
  /** The lowest rate that failed each criterion (undefined: none failed within the trials). */
  readonly ndrFailedAt: number | undefined;
  readonly pdrFailedAt: number | undefined;
  /** Both brackets closed to `precision`. */
  readonly converged: boolean;
  /** The trial that bounds the NDR from above failed because the generator could not offer its rate: the NDR is the harness's. */
  readonly harnessLimited: boolean;
  readonly trials: readonly TrialRecord[];
}

/** The bracket for one criterion, from every trial so far. */
function bracket(trials: readonly TrialRecord[], passes: (t: TrialRecord) => boolean): { pass: number; fail: number | undefined } {
  let pass = 0;
  let fail: number | undefined;
  for (const t of trials) {
    if (passes(t)) pass = Math.max(pass, t.rate);
    else fail = fail === undefined ? t.rate : Math.min(fail, t.rate);
  }
  // A pass above a failure (noise): the failure wins, as a loss at a lower rate is real.
  if (fail !== undefined && pass >= fail) pass = Math.max(0, ...trials.filter((t) => passes(t) && t.rate < fail!).map((t) => t.rate));
  return { pass, fail };
}

/** The next rate to try for one criterion, or undefined when its bracket is closed. */
function nextRate(b: { pass: number; fail: number | undefined }, o: RateSearchOptions): number | undefined {
  if (b.fail === undefined) return b.pass === 0 ? o.start : b.pass * 1.5;
  if (b.pass === 0) return b.fail / 2 >= o.floor ? b.fail / 2 : b.fail > o.floor ? o.floor : undefined;
  if (b.fail / b.pass <= 1 + o.precision) return undefined;
  return Math.sqrt(b.pass * b.fail);
}

/**
 * Search NDR first, then PDR from the trials already made (a trial that passes NDR passes PDR too).
 * @example const r = await searchRates((rate) => openLoopTrial(rate), { start: 300_000, floor: 1000, precision: 0.02, pdrLoss: 0.001, maxTrials: 16 });
 */
export async function searchRates(trial: (rate: number) => Promise<TrialOutcome>, o: RateSearchOptions): Promise<RateSearchResult> {
  const tolerance = o.offerTolerance ?? 0.02;
  const trials: TrialRecord[] = [];
  const ndrPasses = (t: TrialRecord) => !t.underOffered && t.lost === 0 && t.late === 0;
  const pdrPasses = (t: TrialRecord) => !t.underOffered && t.lossRatio <= o.pdrLoss;
  for (const passes of [ndrPasses, pdrPasses]) {
    while (trials.length < o.maxTrials) {
      const rate = nextRate(bracket(trials, passes), o);
      if (rate === undefined) break;
      const r = Math.round(rate);
      const out = await trial(r);
      trials.push({ ...out, rate: r, lossRatio: out.sent > 0 ? (out.lost + out.late) / out.sent : 1, underOffered: out.offered < r * (1 - tolerance) });
    }
  }
  const ndr = bracket(trials, ndrPasses);
  const pdr = bracket(trials, pdrPasses);
  const closed = (b: { pass: number; fail: number | undefined }) =>
    b.fail !== undefined && (b.pass === 0 ? b.fail <= o.floor : b.fail / b.pass <= 1 + o.precision);
  return {
    ndr: ndr.pass,
    pdr: pdr.pass,
    ndrFailedAt: ndr.fail,
    pdrFailedAt: pdr.fail,
    converged: closed(ndr) && closed(pdr),
    harnessLimited: trials.some((t) => t.underOffered && t.rate === ndr.fail),
    trials,
  };
}
