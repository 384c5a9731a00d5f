/**
 * The packet transport addresses frames itself, so it must follow the network as the kernel would:
 * the receiver's MAC changes, its route moves to another link — under load, delivery resumes within
 * a second and everything sent is accounted for; and it must frame for devices other than the
 * plain veths: a TUN device (no link-layer address) and a device stacked on another (a macvlan: this
 * machine's kernel is built without VLAN support, CONFIG_VLAN_8021Q; a VLAN device frames through
 * the same dev_hard_header path).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, createTestbed, requirePrivileges, runtimeArgv, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";

const SCENARIOS = "test/transport/transport_scenarios.ts";
const PEER = ["node", UDP_PEER];
const run = requirePrivileges("packet transport path suite");
let port = 43000;
type Sent = { stats: { sent: number; dropped: Record<string, number>; viaRaw: number } };

describe.skipIf(!run)("packet transport: next hops follow the network; TUN and stacked-device egress", () => {
  let bed: Testbed;
  beforeAll(() => {
    bed = createTestbed();
    // A second link between router and client, for the route to move to; the client accepts its
    // own address on either link (no reverse-path filtering there).
    bed.run(bed.router, ["ip", "link", "add", "rc2", "type", "veth", "peer", "name", "c2", "netns", bed.client]);
    bed.run(bed.router, ["ip", "link", "set", "rc2", "up"]);
    bed.run(bed.client, ["ip", "link", "set", "c2", "up"]);
    bed.run(bed.client, [
      "sysctl",
      "-qw",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
      "net.ipv4.conf.c2.rp_filter=0",
      "net.ipv4.conf.c0.rp_filter=0",
    ]);
    // A device stacked on the client link (its own MAC), and a subnet reached through it.
    bed.run(bed.router, ["ip", "link", "add", "rcm", "link", bed.routerClientLink, "type", "macvlan", "mode", "bridge"]);
    bed.run(bed.router, ["ip", "addr", "add", "198.18.5.1/24", "dev", "rcm"]);
    bed.run(bed.router, ["ip", "link", "set", "rcm", "up"]);
    bed.run(bed.client, ["ip", "addr", "add", "198.18.5.2/24", "dev", "c0"]);
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  for (const runtime of RUNTIMES) {
    it(
      `${runtime}: under load the receiver's MAC changes, then its route moves to a second link — delivery resumes each time, every datagram accounted for`,
      async () => {
        const count = 6000;
        const dst = `${A.client4}:${++port}`;
        const src = `${A.server4}:7000`;
        const receiver = bed.spawn(bed.client, [...PEER, "recv-sizes", dst, src, "64", String(count), "10000"]);
        await receiver.waitFor((l) => l.ready === true);
        // 2 datagrams per ms: about 3 s once the runtime has started.
        const sender = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["send", "packet", src, dst, "64", String(count), "2"]));
        await sender.waitFor((l) => l.ready === true, 30_000);
        await sleep(500);
        // The receiver's MAC changes; the router's (permanent) entry for it is removed, as a failed
        // neighbour would be: the transport must learn the new address through the kernel.
        bed.run(bed.client, ["ip", "link", "set", "c0", "address", "02:00:00:00:a5:01"]);
        bed.run(bed.router, ["ip", "neigh", "del", A.client4, "dev", bed.routerClientLink]);
        await sleep(700);
        // The route to the receiver moves to the second link (the client takes its address there too).
        const framesOnSecondLink = () =>
          (JSON.parse(bed.run(bed.router, ["ip", "-j", "-s", "link", "show", "rc2"])) as { stats64: { tx: { packets: number } } }[])[0]!.stats64.tx.packets;
        const before = framesOnSecondLink();
        bed.run(bed.router, ["ip", "route", "add", `${A.client4}/32`, "dev", "rc2"]);
        const sent = (await sender.waitFor((l) => l.done === true, 60_000)) as unknown as Sent;
        const got = (await receiver.waitFor((l) => l.done === true, 30_000)) as { perSize: Record<string, number>; missing: number[] };
        const moved = framesOnSecondLink() - before;
        bed.run(bed.router, ["ip", "route", "del", `${A.client4}/32`, "dev", "rc2"]);
        const detail = `viaRaw ${sent.stats.viaRaw}, received ${got.perSize["64"]}, missing ${got.missing.slice(0, 10).join(",")} … ${
          got.missing.slice(-5).join(",")
        }`;
        expect(sent.stats.sent).toBe(count);
        expect(sent.stats.dropped).toEqual({});
        // The kernel resolved the new neighbours while the transport sent through the raw socket.
        expect(sent.stats.viaRaw).toBeGreaterThan(0);
        // What went to the old MAC before its entry went (a few ms) is all that may be missing: one
        // short run of sequence numbers, and nothing around the route's move or after it.
        expect(got.perSize["64"], detail).toBeGreaterThanOrEqual(count - 100);
        expect(got.missing.length === 0 || got.missing.at(-1)! - got.missing[0]! < 200, detail).toBe(true);
        // After the move the frames left through the second link.
        expect(moved).toBeGreaterThan(1000);
      },
      60_000,
    );
  }

  for (const runtime of RUNTIMES) {
    it(`${runtime}: frames for a TUN device (no link-layer address) and through a stacked device (macvlan) arrive whole`, async () => {
      const tun = `aspk${process.pid % 1000}${runtime[0]}`;
      const reader = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["tun-receive", tun, "20"]));
      await reader.waitFor((l) => l.ready === true);
      bed.run(bed.router, ["ip", "route", "add", "198.18.213.0/24", "dev", tun]);
      const toTun = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["send", "packet", `${A.server4}:7000`, "198.18.213.7:5000", "64,3000", "10", "5"]));
      const sentTun = (await toTun.waitFor((l) => l.done === true, 30_000)) as unknown as Sent;
      const read = (await reader.waitFor((l) => l.done === true, 30_000)).got as { src: string; size: number; intact: boolean }[];
      expect(sentTun.stats.viaRaw).toBe(0);
      expect(read).toHaveLength(20);
      expect(read.every((g) => g.src === `${A.server4}:7000` && g.intact)).toBe(true);

      const dst = `198.18.5.2:${++port}`;
      const receiver = bed.spawn(bed.client, [...PEER, "recv-sizes", dst, `${A.server4}:7000`, "64,1200,3000", "50", "10000"]);
      await receiver.waitFor((l) => l.ready === true);
      const toStacked = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["send", "packet", `${A.server4}:7000`, dst, "64,1200,3000", "50", "5"]));
      const sentStacked = (await toStacked.waitFor((l) => l.done === true, 30_000)) as unknown as Sent;
      const got = await receiver.waitFor((l) => l.done === true, 20_000);
      expect(got).toMatchObject({ perSize: { "64": 50, "1200": 50, "3000": 50 }, corrupt: 0, unexpected: 0 });
      // The stacked device's neighbour was unresolved at first: at most the first datagrams went the kernel's way.
      expect(sentStacked.stats.viaRaw).toBeLessThan(150);
    }, 60_000);
  }
});
