import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, cpuSeconds, createTestbed, requirePrivileges, runtimeArgv, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";

const SCENARIOS = "test/sys/sys_scenarios.ts";
const PEER = ["node", UDP_PEER];
const run = requirePrivileges("sys conformance suite");

describe.skipIf(!run)("sys on real sockets in network namespaces", () => {
  let bed: Testbed;
  beforeAll(() => {
    bed = createTestbed();
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  describe.each(RUNTIMES)("under %s", (runtime) => {
    const scenario = (ns: string, args: string[]) => bed.spawn(ns, runtimeArgv(runtime, SCENARIOS, args));
    const peer = (ns: string, args: string[]) => bed.spawn(ns, [...PEER, ...args]);

    for (const [family, host] of [["IPv4", A.routerClientSide4], ["IPv6", `[${A.routerClientSide6}]`]] as const) {
      it(`echoes 2000 ${family} datagrams through recvmmsg/sendmmsg batches`, async () => {
        const port = 20000 + Math.floor(Math.random() * 10000);
        const server = scenario(bed.router, ["echo", `${host}:${port}`, "2000"]);
        await server.waitFor((l) => l.ready === true);
        const client = peer(bed.client, ["echo-client", `${host}:${port}`, "2000", "600", "20"]);
        const result = await client.waitFor((l) => l.done === true);
        expect(result).toMatchObject({ sent: 2000, received: 2000, corrupt: 0 });
        const done = await server.waitFor((l) => l.done === true);
        expect(done).toMatchObject({ received: 2000, sendErrors: 0 });
        expect(done.largestBatch as number).toBeGreaterThan(1); // batches really happened
        expect(await server.exited()).toBe(0);
      });
    }

    it("gathers two sockets' datagrams in one ring (recvmmsg at an offset) and echoes them after the poll round", async () => {
      const port = 20000 + Math.floor(Math.random() * 10000);
      const server = scenario(bed.router, ["gather-echo", `${A.routerClientSide4}:${port}`, `[${A.routerClientSide6}]:${port}`, "4000"]);
      await server.waitFor((l) => l.ready === true);
      const clients = [
        peer(bed.client, ["echo-client", `${A.routerClientSide4}:${port}`, "2000", "600", "20"]),
        peer(bed.client, ["echo-client", `[${A.routerClientSide6}]:${port}`, "2000", "1200", "20"]),
      ];
      for (const c of clients) expect(await c.waitFor((l) => l.done === true)).toMatchObject({ sent: 2000, received: 2000, corrupt: 0 });
      const done = await server.waitFor((l) => l.done === true);
      expect(done).toMatchObject({ received: 4000, sendErrors: 0 });
      expect(await server.exited()).toBe(0);
    });

    it("hands epoll between the Worker and the main thread across bursts and pauses without losing one", async () => {
      const port = 20000 + Math.floor(Math.random() * 10000);
      const server = scenario(bed.router, ["echo", `${A.routerClientSide4}:${port}`, "2000"]);
      await server.waitFor((l) => l.ready === true);
      // 40 bursts of 50 datagrams, 20 ms apart: longer than the main thread lingers in epoll_wait, so
      // each burst is announced by the Worker. Within a burst, groups of 10 come 1 ms apart, so that
      // however late the wake-up (Node's is the slowest), the main thread polls the rest itself.
      const client = peer(bed.client, ["echo-client", `${A.routerClientSide4}:${port}`, "2000", "200", "10", "1,1,1,1,20"]);
      expect(await client.waitFor((l) => l.done === true)).toMatchObject({ sent: 2000, received: 2000, corrupt: 0 });
      const done = await server.waitFor((l) => l.done === true);
      expect(done).toMatchObject({ received: 2000, sendErrors: 0 });
      expect(done.wakeups as number).toBeGreaterThanOrEqual(20); // the Worker took epoll back after pauses
      expect(done.busyPolls as number).toBeGreaterThan(0); // the main thread polled epoll itself
      expect(await server.exited()).toBe(0);
    });

    it("TPROXY listeners receive IPv4 and IPv6 datagrams with their original destination", async () => {
      const port = 15000 + Math.floor(Math.random() * 1000);
      bed.enableTproxy(port);
      try {
        const listener = scenario(bed.router, ["tproxy", String(port), "6"]);
        await listener.waitFor((l) => l.ready === true);
        const c4 = peer(bed.client, ["send", `${A.server4}:7000`, "3"]);
        const c6 = peer(bed.client, ["send", `[${A.server6}]:7001`, "3"]);
        await Promise.all([c4.exited(), c6.exited()]);
        const done = await listener.waitFor((l) => l.done === true);
        const seen = done.seen as { from: string; origDst: string; payload: string }[];
        expect(seen.filter((s) => s.origDst === `${A.server4}:7000`)).toHaveLength(3);
        expect(seen.filter((s) => s.origDst === `[${A.server6}]:7001`)).toHaveLength(3);
        expect(seen.every((s) => s.from.startsWith(A.client4) || s.from.startsWith(`[${A.client6}]`))).toBe(true);
        expect(done.keptIntact).toBe(true); // decoded sources are copies, not views of the reused ring
        expect(await listener.exited()).toBe(0);
      } finally {
        bed.disableTproxy();
      }
    });

    for (
      const [family, foreign, client] of [
        ["IPv4", `${A.server4}:7000`, `${A.client4}:40000`],
        ["IPv6", `[${A.server6}]:7000`, `[${A.client6}]:40000`],
      ] as const
    ) {
      it(`an IP_TRANSPARENT socket bound to foreign ${family} ${foreign} reaches a client connected to exactly that address`, async () => {
        const receiver = peer(bed.client, ["recv-connected", client, foreign, "5", "5000"]);
        await receiver.waitFor((l) => l.ready === true);
        const sender = scenario(bed.router, ["transparent-send", foreign, client, "5"]);
        expect(await sender.waitFor((l) => l.done === true)).toMatchObject({ sent: 5 });
        const got = await receiver.waitFor((l) => l.done === true);
        expect(got.received).toBe(5);
        const host = foreign.replace(/^\[|\]:\d+$|:\d+$/g, "").replace(/\]$/, "");
        expect((got.payloads as { from: string }[]).every((p) => p.from === `${host}:7000`)).toBe(true);
      });
    }

    it("creates a TUN device, reads packets routed into it and writes packets the kernel delivers", async () => {
      const name = `astun${process.pid % 10000}${runtime[0]}`;
      const dev = scenario(bed.router, ["tun", name]);
      const ready = await dev.waitFor((l) => l.ready === true);
      expect(ready).toMatchObject({ name, mtu: 1400 });
      bed.run(bed.router, ["sysctl", "-qw", `net.ipv4.conf.${name}.rp_filter=0`]);
      bed.run(bed.router, ["ip", "route", "add", "198.18.200.0/24", "dev", name]);
      bed.run(bed.router, ["ip", "-6", "route", "add", "2001:db8:200::/64", "dev", name]);
      const p4 = peer(bed.router, ["ping-pong", "198.18.200.9:9", "5000"]);
      const p6 = peer(bed.router, ["ping-pong", "[2001:db8:200::9]:9", "5000"]);
      expect(await p4.waitFor((l) => l.done === true)).toMatchObject({ reply: "pong ping" });
      expect(await p6.waitFor((l) => l.done === true)).toMatchObject({ reply: "pong ping" });
      const done = await dev.waitFor((l) => l.done === true);
      expect((done.handled as { udpChecksumValid: boolean }[]).every((h) => h.udpChecksumValid)).toBe(true);
      expect(await dev.exited()).toBe(0);
      // The device was not persistent: closing its fd removed it.
      expect(() => bed.run(bed.router, ["ip", "link", "show", name])).toThrow();
    });

    it("maps errno to a typed EADDRINUSE error naming the address", async () => {
      const addr = `${A.routerServerSide4}:7777`;
      const r = scenario(bed.router, ["eaddrinuse", addr]);
      const done = await r.waitFor((l) => l.done === true);
      expect(done.error).toEqual({
        name: "SystemError",
        code: "EADDRINUSE",
        errno: 98,
        syscall: "bind",
        address: addr,
        message: `bind ${addr}: EADDRINUSE (address already in use)`,
      });
    });

    it("a handler that stops before draining its socket (again) is dispatched until it has read everything, and timers run meanwhile", async () => {
      const r = scenario(bed.router, ["budget", `${A.routerClientSide4}:0`, "100"]);
      const done = await r.waitFor((l) => l.done === true, 20_000);
      expect(done.timedOut).toBe(false);
      expect(done.queued).toBe(100);
      expect(done.read).toBe(100);
      expect(done.dispatches).toBe(50);
      // 50 dispatches of 1 ms each: with a turn for the event loop every 10 ms, timers fire between them.
      expect(done.ticks as number).toBeGreaterThanOrEqual(2);
    });

    it("a receive ring of large slots is resident only where written, reads whole datagrams, and (Bun: its own mapping) is unmapped once collected", async () => {
      const r = scenario(bed.router, ["mapped", `${A.routerClientSide4}:0`]);
      const done = await r.waitFor((l) => l.done === true, 20_000);
      expect(done).toMatchObject({ received: 1, whole: true, mappedBefore: true });
      expect(done.bytes as number).toBeGreaterThan(32 * 65536);
      // 2 MiB of ring: zero-filled on recycled pages it could cost all of it; fresh pages, a few.
      expect(done.allocatedKiB as number).toBeLessThan(512);
      if (runtime === "bun") expect(done).toMatchObject({ pageAligned: true, unmapped: true });
    });

    it("trims freed memory once as a burst settles, every longestWaitMs while change never pauses, and not after stop", async () => {
      const r = scenario(bed.router, ["trim"]);
      const done = await r.waitFor((l) => l.done === true, 20_000);
      expect(done.afterBurst).toBe(1);
      // 700 ms of change, the last trim ~200 ms before it began: one at about 0, 200, 400 and 600 ms (±a tick).
      expect(done.whileChanging as number).toBeGreaterThanOrEqual(2);
      expect(done.whileChanging as number).toBeLessThanOrEqual(5);
      expect(done).toMatchObject({ afterStop: 0, released: "boolean" });
    });

    it("an armed poller costs no CPU while idle and lets the process exit after the last fd is removed", async () => {
      const r = scenario(bed.router, ["idle", "4"]);
      await r.waitFor((l) => l.ready === true);
      await new Promise((resolve) => setTimeout(resolve, 500)); // let start-up work settle
      const before = cpuSeconds(r.pid);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const used = cpuSeconds(r.pid) - before;
      // 3 s idle: a busy-wait would burn ~3 s; even a 1 ms timer poll costs tens of ms. Wide margin.
      expect(used).toBeLessThan(0.1);
      const done = await r.waitFor((l) => l.done === true);
      expect(done).toMatchObject({ registered: 0, wakeups: 0 });
      expect(await r.exited(5000)).toBe(0);
    });
  });
});
