import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, NONE, requirePrivileges, RUNTIMES, type Testbed } from "@anysrc/testbed";
import { ANYSRC, startTproxy } from "./start_tproxy.ts";

const KINDS = ["raw", "bindsrc", "tun", "packet"] as const;
const PORT = 15100;
const run = requirePrivileges("wire fidelity suite");

// DSCP EF, EF+ECT(0), EF+CE, AF11, AF21+ECT(0), AF41+ECT(1), ECT(0) alone, ECT(1) alone.
const SENT = [0xb8, 0xba, 0xbb, 0x28, 0x4a, 0x89, 0x02, 0x01];
// What the server is asked to answer each with: a different class, so each direction is checked on its own.
const WANTED = SENT.map((_, k) => SENT[(k + 3) % SENT.length]!);
const clearDscp = (tos: number) => tos & 3;

interface Result {
  sent: number;
  serverTos: number;
  serverTtl: number;
  wanted: number;
  replyTos: number;
  replyTtl: number;
}

describe.skipIf(!run)("wire fidelity: DSCP/ECN and TTL through anysrc tproxy (client → TPROXY router → server)", () => {
  let bed: Testbed;
  let bin: Record<string, string>;
  beforeAll(async () => {
    bin = compileC(["tos_peer"]);
    bed = createTestbed();
    bed.enableTproxy(PORT);
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.tos_peer!, "server", host, "7300"]).waitFor((l) => l.ready === true);
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  const relay = (runtime: string, args: string[]) => startTproxy(bed, runtime, PORT, args);

  const exchange = (server: string, ttl: number, sent = SENT, wanted = WANTED): (Result | null)[] => {
    const out = bed.run(bed.client, [bin.tos_peer!, "client", server, "7300", sent.join(","), String(ttl), wanted.join(",")]);
    return (JSON.parse(out) as { results: (Result | null)[] }).results;
  };

  for (const kind of KINDS) {
    for (const runtime of RUNTIMES) {
      it(`${kind} on ${runtime}: the 8 TOS values arrive unchanged both ways, IPv4 and IPv6`, async () => {
        const r = await relay(runtime, ["--transport", kind]);
        try {
          for (const server of [A.server4, A.server6]) {
            const results = exchange(server, 64);
            expect({ server, seen: results.map((x) => x && [x.serverTos, x.replyTos]) }).toEqual({ server, seen: SENT.map((tos, k) => [tos, WANTED[k]]) });
          }
        } finally {
          await r.stop();
        }
        const stats = await r.waitFor((l) => l.event === "final");
        expect(stats).toMatchObject({ dropped: NONE, unaccounted: { inbound: 0, replies: 0 } });
      });

      it(`${kind} on ${runtime}: --dscp clear keeps ECN, --ttl keep decrements, TTL 1 is dropped and counted`, async () => {
        const r = await relay(runtime, ["--transport", kind, "--dscp", "clear", "--ttl", "keep"]);
        try {
          for (const server of [A.server4, A.server6]) {
            const results = exchange(server, 64);
            // The TPROXY'd datagram is delivered to the relay with TTL 64 and leaves with 63; the reply
            // reaches the relay with 64 and leaves with 63 — and a tun packet is routed once more by the kernel.
            const replyTtl = kind === "tun" ? 62 : 63;
            expect({ server, seen: results.map((x) => x && [x.serverTos, x.serverTtl, x.replyTos, x.replyTtl]) })
              .toEqual({ server, seen: SENT.map((tos, k) => [clearDscp(tos), 63, clearDscp(WANTED[k]!), replyTtl]) });
            // TTL 1 would be 0 after this hop: dropped, as a router drops it.
            expect(exchange(server, 1, SENT.slice(0, 2), WANTED.slice(0, 2))).toEqual([null, null]);
          }
        } finally {
          await r.stop();
        }
        const stats = await r.waitFor((l) => l.event === "final");
        expect(stats).toMatchObject({ dropped: { "ttl-expired": 4 }, unaccounted: { inbound: 0, replies: 0 } });
      });
    }
  }

  it("refuses bad values with a usage error naming the flag", () => {
    for (const [flag, value] of [["--dscp", "64"], ["--dscp", "af41"], ["--ecn", "drop"], ["--ttl", "0"], ["--ttl", "256"]] as const) {
      let message = "";
      try {
        bed.run(bed.router, [ANYSRC, "tproxy", "--port", String(PORT), "--transport", "raw", flag, value]);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(new RegExp(`${flag} must be`));
    }
  });
});
