/**
 * `anysrc packet decode` under mutated and random input: every case ends as JSON (exit 0) or as the
 * one-line typed error (exit 1) — never an internal error, a crash or a hang. In-process for the
 * 100 000 cases (FC_RUNS); a handful of them also through the real CLI on Bun and Deno.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ALL_CHECKSUMS, buildUdpPacket, toHex } from "@anysrc/core";
import { DECODE_USAGE, packetDecode } from "../src/cli/packet_command.ts";
import { failureOf } from "../src/cli/failure.ts";
import { runCli, RUNTIMES } from "./run_cli.ts";

const RUNS = Number(process.env.FC_RUNS ?? 100_000);

/** A valid IPv4 or IPv6 UDP packet as hex. */
const validHex = fc
  .record({ v6: fc.boolean(), payload: fc.uint8Array({ maxLength: 64 }) })
  .map(({ v6, payload }) => {
    const src = v6
      ? { family: 6 as const, ip: new Uint8Array([0x20, 1, 0xd, 0xb8, ...Array(11).fill(0), 2]), port: 7000 }
      : { family: 4 as const, ip: new Uint8Array([198, 19, 2, 2]), port: 7000 };
    const dst = { ...src, ip: src.ip.slice(), port: 40000 };
    dst.ip[dst.ip.length - 1] = 3;
    const buf = new Uint8Array((v6 ? 48 : 28) + payload.length);
    buildUdpPacket(buf, 0, src, dst, payload, { checksums: ALL_CHECKSUMS });
    return toHex(buf);
  });

/** Hex text mangled: digits replaced, cut, doubled, non-hex characters spliced in. */
const mangledHex = fc.tuple(
  validHex,
  fc.array(fc.tuple(fc.nat(), fc.constantFrom("0", "f", "", "g", " ", "00", "ffff", "-", "\u00e9")), { maxLength: 6 }),
  fc.nat(),
)
  .map(([hex, edits, cut]) => {
    let s = hex;
    for (const [at, text] of edits) {
      const i = at % (s.length + 1);
      s = s.slice(0, i) + text + s.slice(i + 1);
    }
    return cut % 4 === 0 ? s.slice(0, cut % (s.length + 1)) : s;
  });

/** Argument vectors: the mangled packet, sometimes with --ethernet, stray flags or extra positionals. */
const argv = fc.tuple(fc.oneof(mangledHex, fc.string({ maxLength: 40 })), fc.subarray(["--ethernet", "--bogus", "extra", "--", "-x"]))
  .map(([hex, extra]) => [...extra.slice(0, 1), hex, ...extra.slice(1)]);

function runDecode(args: string[]): { status: number; internal: boolean; output: string } {
  try {
    return { status: 0, internal: false, output: packetDecode(args) };
  } catch (e) {
    const f = failureOf("packet decode", DECODE_USAGE, e);
    return { status: f.status, internal: f.internal, output: f.message };
  }
}

describe(`anysrc packet decode fuzzing (${RUNS} cases)`, () => {
  it("prints JSON or a typed one-line error, never an internal error", () => {
    const seen = [0, 0, 0];
    fc.assert(
      fc.property(argv, (args) => {
        // A hang shows as the test's own timeout: no wall-clock limit per case on a busy runner.
        const r = runDecode(args);
        expect(r.internal, r.output).toBe(false);
        if (r.status === 0) expect(typeof JSON.parse(r.output)).toBe("object");
        if (r.status === 1) expect(r.output.trim().split("\n")).toHaveLength(1);
        seen[r.status]!++;
      }),
      { numRuns: RUNS },
    );
    // Every outcome is exercised: decoded, bad input, bad usage.
    if (RUNS >= 1000) { for (const n of seen) expect(n).toBeGreaterThan(RUNS / 100); }
  });

  it("the real CLI agrees on both runtimes for a sample of mangled packets", () => {
    const sample = fc.sample(mangledHex, { numRuns: 8, seed: 7 });
    for (const hex of sample) {
      const expected = runDecode([hex]);
      for (const rt of RUNTIMES) {
        const r = runCli(rt, ["packet", "decode", hex]);
        expect(r.status, `${rt}: ${hex}`).toBe(expected.status);
        if (r.status === 1) expect(r.stderr).toBe(expected.output);
      }
    }
  });
});
