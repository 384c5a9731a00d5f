import { compileC, spawnJson } from "@anysrc/testbed";
import { afterAll, describe, expect, it } from "vitest";
import { searchRates } from "../src/rate_search.ts";

// The NDR search end to end on loopback (no privileges): the real open-loop generator against an
// echo server whose capacity is known, a token bucket of 10 000 datagrams/s charged at each
// datagram's kernel arrival time. The search must land within 2 % of that limit.
const LIMIT = 10_000;
// 20 ms of tokens: the generator's catch-up bursts fit; 2 s trials make the depth worth 1 % of the rate.
const DEPTH = 200;
const TRIAL_SECONDS = 2;
const PORT = 47_123;

const bin = compileC(["relay_openloop", "rate_limited_echo"]);
const echo = spawnJson([bin.rate_limited_echo!, "127.0.0.1", String(PORT), String(LIMIT), String(DEPTH)]);
afterAll(() => echo.stop());

describe("NDR search against a receiver of known capacity", () => {
  it(`finds the limit of a ${LIMIT}/s token-bucket echo within 2 %`, async () => {
    await echo.waitFor((l) => l.ready === true);
    const r = await searchRates(async (rate) => {
      const load = spawnJson([bin.relay_openloop!, "127.0.0.1", String(PORT), "8", String(rate), String(TRIAL_SECONDS), "64"]);
      const line = await load.waitFor((l) => typeof l.sent === "number", 30_000);
      return { sent: line.sent as number, lost: (line.lost as number) + (line.corrupt as number), late: line.late as number, offered: line.offered as number };
    }, { start: 15_000, floor: 1000, precision: 0.02, pdrLoss: 0.001, maxTrials: 12 });
    const detail = JSON.stringify(r.trials.map((t) => [t.rate, t.lost, t.late, Math.round(t.offered)]));
    expect(r.converged, detail).toBe(true);
    expect(Math.abs(r.ndr - LIMIT) / LIMIT, `NDR ${r.ndr}; trials ${detail}`).toBeLessThanOrEqual(0.02);
    expect(r.harnessLimited).toBe(false);
  });
});
