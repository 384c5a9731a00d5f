import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, NONE, requirePrivileges, RUNTIMES, type Testbed } from "@anysrc/testbed";
import { startTproxy } from "./start_tproxy.ts";

const PORT = 15200;
const run = requirePrivileges("emit-path errors suite");
type Json = Record<string, unknown>;
type TransportStats = { fragments: number; errors: Record<string, number>; reported: Record<string, number>; dropped: Record<string, number> };

describe.skipIf(!run)("the emit path under a shrinking MTU and a full device queue (client → TPROXY router → server)", () => {
  let bed: Testbed;
  let bin: Record<string, string>;
  let far: { ns: string; serverFarLink: string };
  beforeAll(async () => {
    bin = compileC(["udp_echo", "relay_saturate"]);
    bed = createTestbed();
    bed.enableTproxy(PORT);
    far = bed.addFarHost();
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.udp_echo!, host, "7400"]).waitFor((l) => l.ready === true);
    for (const host of [A.far4, A.far6]) await bed.spawn(far.ns, [bin.udp_echo!, host, "7400"]).waitFor((l) => l.ready === true);
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  const relay = (runtime: string, args: string[]) => startTproxy(bed, runtime, PORT, args);

  /** A closed loop of 1300-byte echoes, 16 in flight, for `seconds`: what came back. */
  const load = (server: string, seconds: number) => {
    const p = bed.spawn(bed.client, [bin.relay_saturate!, server, "7400", "1", "16", String(seconds), "1300"]);
    return p.waitFor((l) => typeof l.sent === "number", 30_000);
  };

  // tun over IPv6 is left out: a forwarded IPv6 packet over the path MTU is dropped by the router and
  // its Packet Too Big goes to the packet's source — the spoofed server address — not to the relay.
  const CASES = [["raw", "IPv4"], ["raw", "IPv6"], ["bindsrc", "IPv4"], ["bindsrc", "IPv6"], ["tun", "IPv4"]] as const;
  for (const [kind, family] of CASES) {
    for (const runtime of RUNTIMES) {
      it(`${kind} on ${runtime}, ${family}: the path MTU drops from 1500 to 1280 under a running relay; 1300-byte replies keep arriving, none lost`, async () => {
        const server = family === "IPv4" ? A.server4 : A.server6;
        const r = await relay(runtime, ["--transport", kind]);
        const phases: Json[] = [];
        try {
          phases.push(await load(server, 1));
          bed.setPathMtu(1280);
          phases.push(await load(server, 2));
          bed.setPathMtu(1500);
          phases.push(await load(server, 1));
        } finally {
          bed.setPathMtu(1500);
          await r.stop();
        }
        const stats = await r.waitFor((l) => l.event === "final");
        expect(phases.map((p) => ({ lost: p.lost, corrupt: p.corrupt }))).toEqual([0, 1, 2].map(() => ({ lost: 0, corrupt: 0 })));
        expect(stats).toMatchObject({ dropped: NONE, unaccounted: { inbound: 0, replies: 0 } });
        const t = (stats.transports as Record<string, TransportStats>)[kind]!;
        expect(t.dropped).toEqual({});
        if (kind === "raw") {
          // The raw socket refused the first too-big packet (EMSGSIZE, and its error-queue entry); the
          // transport asked the route again and fragmented from then on.
          expect(t.reported["local-EMSGSIZE"]).toBeGreaterThan(0);
          expect(t.fragments).toBeGreaterThan(0);
        }
      });
    }
  }

  for (const runtime of RUNTIMES) {
    for (const family of ["IPv4", "IPv6"] as const) {
      it(`${runtime}, ${family}: a middle hop's MTU drops to 1280 under a running relay; its ICMP error is read and counted by kind, and delivery recovers with nothing lost after`, async () => {
        const host = family === "IPv4" ? A.far4 : A.far6;
        const setFarMtu = (mtu: number) => {
          bed.run(bed.server, ["ip", "link", "set", "dev", far.serverFarLink, "mtu", String(mtu)]);
          bed.run(far.ns, ["ip", "link", "set", "dev", "f0", "mtu", String(mtu)]);
        };
        // The router keeps a learned path MTU for 10 minutes: each case starts from none.
        for (const v of ["-4", "-6"]) bed.run(bed.router, ["ip", v, "route", "flush", "cache"]);
        const r = await relay(runtime, ["--transport", "bindsrc"]);
        const phases: Json[] = [];
        try {
          await load(host, 1); // neighbours resolved, PMTU state as it is
          phases.push(await load(host, 1));
          setFarMtu(1280);
          // Upstream 1300-byte datagrams leave with DF (the kernel's default, path MTU discovery): the
          // server, a middle hop now, drops the first ones and answers with ICMP; the kernel learns the
          // path MTU and fragments from then on. Only the datagrams in flight at the change may be lost.
          phases.push(await load(host, 2));
          phases.push(await load(host, 1));
        } finally {
          setFarMtu(1500);
          await r.stop();
        }
        const stats = await r.waitFor((l) => l.event === "final");
        expect(phases[0]).toMatchObject({ lost: 0, corrupt: 0 });
        expect(phases[1]!.lost as number).toBeLessThanOrEqual(16);
        expect(phases[2]).toMatchObject({ lost: 0, corrupt: 0 });
        const kindName = family === "IPv4" ? "icmp-frag-needed" : "icmp6-packet-too-big";
        expect((stats.icmpErrorKinds as Record<string, number>)[kindName]).toBeGreaterThan(0);
        expect(stats).toMatchObject({ unaccounted: { inbound: 0, replies: 0 } });
      });
    }
  }

  for (const kind of ["raw", "bindsrc"] as const) {
    for (const runtime of RUNTIMES) {
      it(`${kind} on ${runtime}: a rate-limited device queue (tbf, 8 KiB) makes sends fail with ENOBUFS; counted, retried, none lost`, async () => {
        const r = await relay(runtime, ["--transport", kind]);
        bed.run(bed.router, ["tc", "qdisc", "add", "dev", bed.routerClientLink, "root", "tbf", "rate", "20mbit", "burst", "4kb", "limit", "8kb"]);
        let result: Json;
        try {
          const p = bed.spawn(bed.client, [bin.relay_saturate!, A.server4, "7400", "16", "256", "1", "64"]);
          result = await p.waitFor((l) => typeof l.sent === "number", 30_000);
        } finally {
          bed.run(bed.router, ["tc", "qdisc", "del", "dev", bed.routerClientLink, "root"]);
          await r.stop();
        }
        const stats = await r.waitFor((l) => l.event === "final");
        const t = (stats.transports as Record<string, TransportStats>)[kind]!;
        // Without IP_RECVERR the kernel swallows ENOBUFS (the datagram silently gone, only SndbufErrors counts it).
        expect(t.errors.ENOBUFS ?? 0).toBeGreaterThan(0);
        expect({ lost: result.lost, corrupt: result.corrupt, dropped: t.dropped }).toEqual({ lost: 0, corrupt: 0, dropped: {} });
      });
    }
  }
});
