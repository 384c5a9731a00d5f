import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, NONE, requirePrivileges, runtimeArgv, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";
import { ANYSRC, startTproxy } from "./start_tproxy.ts";

const PEER = ["node", UDP_PEER];
const KINDS = ["raw", "bindsrc", "tun", "packet"] as const;
/** packet has no offloads yet: the bulk-flow offload cases run for the others. */
const OFFLOAD_KINDS = ["raw", "bindsrc", "tun"] as const;
const PORT = 15000;
const run = requirePrivileges("relay end-to-end suite");
type Json = Record<string, unknown>;

describe.skipIf(!run)("anysrc tproxy and forward end to end (client → router with nft TPROXY → server)", () => {
  let bed: Testbed;
  let bin: Record<string, string>;
  beforeAll(async () => {
    bin = compileC(["udp_echo", "relay_saturate"]);
    bed = createTestbed();
    bed.enableTproxy(PORT);
    // A bulk peer as QUIC servers are: it sends with GSO and reads with GRO (udp_echo.c --gso).
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.udp_echo!, host, "7002", "--gso"]).waitFor((l) => l.ready === true);
    // Echo servers: 7000 echoes; 7100 echoes and also answers from 7101 (a second remote).
    for (const host of [A.server4, A.server6]) {
      await bed.spawn(bed.server, [...PEER, "echo-server", host, "7000"]).waitFor((l) => l.ready === true);
      await bed.spawn(bed.server, [...PEER, "echo-server", host, "7100", "--cone"]).waitFor((l) => l.ready === true);
    }
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  /** Start a relay in the router namespace and wait until it listens. */
  const relay = (runtime: string, args: string[]) => startTproxy(bed, runtime, PORT, args);

  const finalStats = async (p: ReturnType<Testbed["spawn"]>) => {
    await p.stop();
    return p.waitFor((l) => l.event === "final");
  };

  for (const kind of KINDS) {
    for (const runtime of RUNTIMES) {
      for (const [family, server] of [["IPv4", A.server4], ["IPv6", `[${A.server6}]`]] as const) {
        it(`${kind} on ${runtime}, ${family}: 20 000 datagrams over 64 flows, 64–3000 bytes, none lost or corrupted; full cone`, async () => {
          const r = await relay(runtime, ["--transport", kind]);
          const cone = bed.spawn(bed.client, [...PEER, "cone-client", `${server}:7100`, "800"]);
          const replies = (await cone.waitFor((l) => l.done === true)).replies as { from: string; text: string }[];
          // Full cone: the second remote reached the client through the existing mapping, with its own address.
          expect(replies.map((x) => x.from).sort()).toEqual([`${server}:7100`, `${server}:7101`]);
          // Paced at 10 datagrams per ms (10 000/s): the suite shares 2 cores with everything else.
          const flows = bed.spawn(bed.client, [...PEER, "flows", `${server}:7000`, "20000", "64,1200,3000", "64", "10"]);
          const result = await flows.waitFor((l) => l.done === true, 60_000);
          const stats = await finalStats(r);
          // Client and relay views side by side, so a failure shows where a datagram went missing; on a
          // loss, the kernel's own counters of both namespaces too.
          if (result.received !== 20000) {
            for (const ns of [bed.client, bed.router]) {
              const counters = bed.run(ns, ["nstat", "-az"]).split("\n").filter((l) =>
                /Reasm|Rcvbuf|InErrors|Frag|Discards|Drop/.test(l) && !/\s0\s+0\.0$/.test(l)
              );
              console.error(`${ns} kernel counters: ${counters.join(" | ")}`);
            }
          }
          expect({ client: result, relay: stats }).toMatchObject({
            client: { sent: 20000, received: 20000, corrupt: 0, flowsComplete: 64 },
            relay: { received: 20001, forwarded: 20001, replies: 20002, dropped: NONE, transports: { [kind]: { dropped: NONE, errors: NONE } } },
          });
          // 64 flows + the cone client; 64 when a flow's ephemeral port happens to reuse the cone
          // client's (closed by then), whose session is still alive: same client address, same session.
          expect([64, 65]).toContain(stats.sessionsCreated);
        });
      }

      it(`${kind} on ${runtime}: --nat restricted blocks replies from remotes the client never addressed`, async () => {
        const r = await relay(runtime, ["--transport", kind, "--nat", "restricted"]);
        const cone = bed.spawn(bed.client, [...PEER, "cone-client", `${A.server4}:7100`, "800"]);
        const replies = (await cone.waitFor((l) => l.done === true)).replies as { from: string }[];
        expect(replies.map((x) => x.from)).toEqual([`${A.server4}:7100`]);
        const stats = await finalStats(r);
        expect(stats.dropped).toEqual({ "nat-restricted": 1 });
      });
    }
  }

  for (const kind of OFFLOAD_KINDS) {
    for (const runtime of RUNTIMES) {
      for (const [family, server] of [["IPv4", A.server4], ["IPv6", A.server6]] as const) {
        it(`${kind} on ${runtime}, ${family}: a bulk flow (256 in flight, 1200 B) to a GSO server is read coalesced and sent with GSO, none lost; --offload off reads none coalesced`, async () => {
          for (const offload of ["on", "off"] as const) {
            const r = await relay(runtime, ["--transport", kind, "--offload", offload]);
            const load = bed.spawn(bed.client, [bin.relay_saturate!, server, "7002", "1", "256", "1", "1200"]);
            const result = await load.waitFor((l) => typeof l.sent === "number", 30_000);
            const stats = await finalStats(r);
            expect({ offload, lost: result.lost, corrupt: result.corrupt }).toEqual({ offload, lost: 0, corrupt: 0 });
            expect(stats).toMatchObject({
              dropped: NONE,
              unaccounted: { inbound: 0, replies: 0 },
              offloadFallbacks: 0,
              transports: { [kind]: { dropped: NONE, offloadFallbacks: 0 } },
            });
            const t = (stats.transports as Record<string, { coalesced: number }>)[kind]!;
            if (offload === "on") {
              // The server's GSO sends reach the upstream socket whole: several replies per read.
              expect(stats.coalescedReads as number).toBeGreaterThan(0);
              expect((stats.coalescedForwarded as number) + t.coalesced).toBeGreaterThan(0);
              if (kind !== "raw") expect(t.coalesced).toBeGreaterThan(0);
            } else {
              expect({ reads: stats.coalescedReads, forwarded: stats.coalescedForwarded, sent: t.coalesced }).toEqual({ reads: 0, forwarded: 0, sent: 0 });
            }
          }
        });
      }
    }
  }

  for (const runtime of RUNTIMES) {
    it(`${runtime}: a client's GSO burst, diverted by TPROXY, reaches the listener as one coalesced read and goes upstream as one GSO send`, async () => {
      const r = await relay(runtime, ["--transport", "bindsrc"]);
      // The client sends 32 × 1000 B as one UDP_SEGMENT send (the bindsrc transport, bound to its own address).
      const s = bed.spawn(
        bed.client,
        runtimeArgv(runtime, "test/transport/transport_scenarios.ts", ["send-batch", "bindsrc", `${A.client4}:41000`, `${A.server4}:7000`, "1000", "32", "on"]),
      );
      expect(((await s.waitFor((l) => l.done === true)).stats as { coalesced: number }).coalesced).toBe(32);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const stats = await finalStats(r);
      expect(stats).toMatchObject({
        received: 32,
        forwarded: 32,
        repliesReceived: 32,
        replies: 32,
        coalescedReads: 1,
        coalescedDatagrams: 32,
        coalescedForwarded: 32,
        dropped: NONE,
      });
    });
  }

  for (const runtime of RUNTIMES) {
    it(`${runtime}: an upstream GSO send the kernel refuses (route MTU below the segments) falls back; a coalesced read is cut into plain sends; nothing lost`, async () => {
      // 1000 bytes to the server: 1000-byte segments do not fit (EMSGSIZE for GSO); plain ones are fragmented.
      const route = [`${A.server4}/32`, "dev", bed.routerServerLink, "mtu", "lock", "1000"];
      bed.run(bed.router, ["ip", "route", "add", ...route]);
      try {
        const r = await relay(runtime, ["--transport", "bindsrc"]);
        const s = bed.spawn(
          bed.client,
          runtimeArgv(runtime, "test/transport/transport_scenarios.ts", [
            "send-batch",
            "bindsrc",
            `${A.client4}:41001`,
            `${A.server4}:7000`,
            "1000",
            "32",
            "on",
          ]),
        );
        expect(((await s.waitFor((l) => l.done === true)).stats as { coalesced: number }).coalesced).toBe(32);
        await new Promise((resolve) => setTimeout(resolve, 300));
        const stats = await finalStats(r);
        expect(stats).toMatchObject({
          received: 32,
          forwarded: 32,
          repliesReceived: 32,
          replies: 32,
          coalescedReads: 1,
          coalescedForwarded: 0,
          offloadFallbacks: 1,
          dropped: NONE,
        });
        expect(r.lines.filter((l) => l.event === "offload-fallback").map((l) => l.reason)).toEqual([
          "upstream: a GSO send was refused (EMSGSIZE); that session sends plainly",
        ]);
      } finally {
        bed.run(bed.router, ["ip", "route", "del", ...route]);
      }
    });
  }

  for (const runtime of RUNTIMES) {
    it(`${runtime}: text stats per interval and a Prometheus endpoint on loopback`, async () => {
      const port = 9100 + (RUNTIMES.indexOf(runtime) + 1);
      const p = bed.spawn(bed.router, [
        ANYSRC,
        "--runtime",
        runtime,
        "tproxy",
        "--port",
        String(PORT),
        "--transport",
        "raw",
        "--mark",
        "2",
        "--stats",
        "text",
        "--stats-interval",
        "200ms",
        "--metrics",
        `127.0.0.1:${port}`,
      ]);
      await p.waitFor((l) => typeof l.text === "string" && /^time=\S+ event=listening /.test(l.text));
      const flows = bed.spawn(bed.client, [...PEER, "flows", `${A.server4}:7000`, "100", "64", "4", "5"]);
      expect(await flows.waitFor((l) => l.done === true)).toMatchObject({ received: 100 });
      const line = await p.waitFor((l) =>
        typeof l.text === "string" && /^time=\S+ event=stats mode=tproxy received=100 forwarded=100 replies=100 sessions=4 /.test(l.text)
      );
      expect(line.text).toContain(" raw.sent=100 ");
      // logfmt: every field one key=value, nothing nested.
      for (const field of (line.text as string).split(" ")) expect(field).toMatch(/^[a-z_.A-Z0-9-]+=[^=]+$/);
      const fetcher = bed.spawn(bed.router, [
        "node",
        "-e",
        `fetch("http://127.0.0.1:${port}/metrics").then((r) => r.text()).then((t) => console.log(JSON.stringify({ metrics: t })))`,
      ]);
      const metrics = (await fetcher.waitFor((l) => typeof l.metrics === "string")).metrics as string;
      expect(metrics).toContain('anysrc_received_total{mode="tproxy"} 100');
      expect(metrics).toContain('anysrc_transport_sent_total{mode="tproxy",transport="raw"} 100');
      expect(metrics).toContain("# TYPE anysrc_sessions gauge");
      // Every drop reason from the start, the process and the build.
      expect(metrics).toContain('anysrc_dropped_total{mode="tproxy",reason="loop"} 0');
      expect(metrics).toMatch(new RegExp(`anysrc_build_info\\{mode="tproxy",version="0\\.1\\.0",runtime="${runtime}",runtime_version="[^"]+"\\} 1`));
      expect(metrics).toMatch(/\nprocess_resident_memory_bytes [1-9]\d+\n/);
      // Deno reads /proc/self only with --allow-all: it has no open-fds gauge.
      if (runtime !== "deno") expect(metrics).toMatch(/\nprocess_open_fds [1-9]\d*\n/);
      expect(metrics).toMatch(/\nprocess_cpu_seconds_total \d/);
      await p.stop();
      expect(await p.waitFor((l) => typeof l.text === "string" && /^time=\S+ event=final signal=SIGTERM mode=tproxy /.test(l.text))).toBeDefined();
      expect(await p.exited()).toBe(0);
    });

    it(`${runtime}: idle sessions expire, the least recently used is evicted past --max-sessions, ICMP errors are counted`, async () => {
      const r = await relay(runtime, ["--transport", "raw", "--idle-timeout", "1s", "--max-sessions", "4"]);
      // SIGUSR1 prints the stats now (there is no interval here).
      process.kill((await r.waitFor((l) => l.event === "listening")).pid as number, "SIGUSR1");
      expect(await r.waitFor((l) => l.event === "stats")).toMatchObject({ mode: "tproxy", received: 0 });
      const many = bed.spawn(bed.client, [...PEER, "flows", `${A.server4}:7000`, "60", "64", "6", "1"]);
      const flows = await many.waitFor((l) => l.done === true);
      // Nothing listens on 7999: the server answers port unreachable; the session lives on.
      const refused = bed.spawn(bed.client, [...PEER, "cone-client", `${A.server4}:7999`, "300"]);
      await refused.waitFor((l) => l.done === true);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const stats = await finalStats(r);
      // 6 flows cycling over 4 slots: LRU churns. A reply that comes back after its session was evicted
      // finds the upstream socket closed (the point of the cap); every reply the relay read reached its client.
      expect({ forwarded: stats.forwarded, delivered: flows.received, corrupt: flows.corrupt }).toEqual({
        forwarded: 61,
        delivered: stats.replies,
        corrupt: 0,
      });
      expect(flows.received as number).toBeGreaterThan(0);
      expect(stats.sessionsCreated as number).toBeGreaterThanOrEqual(7);
      expect(stats.sessionsEvicted as number).toBeGreaterThanOrEqual(2);
      expect(stats.sessionsExpired as number).toBeGreaterThanOrEqual(1);
      expect(stats.icmpErrors as number).toBeGreaterThanOrEqual(1);
    });

    it(`${runtime}: forward delivers to two receivers with the sender's address and drops a sender outside --allow`, async () => {
      const receivers = [9001, 9002].map((port) =>
        bed.spawn(bed.client, [...PEER, "recv-count", `${A.client4}:${port}`, `${A.server4}:5000`, "50", "100", "8000"])
      );
      for (const x of receivers) await x.waitFor((l) => l.ready === true);
      const f = bed.spawn(bed.router, [
        ANYSRC,
        "--runtime",
        runtime,
        "forward",
        "--listen",
        `0.0.0.0:2055`,
        "--to",
        `${A.client4}:9001`,
        "--to",
        `${A.client4}:9002`,
        "--allow",
        `${A.server4}/32`,
        "--transport",
        "raw",
        "--stats",
        "json",
        "--stats-interval",
        "0",
      ]);
      await f.waitFor((l) => l.event === "listening");
      await bed.spawn(bed.server, [...PEER, "send-from", `${A.server4}:5000`, `${A.routerServerSide4}:2055`, "50", "100"]).exited();
      await bed.spawn(bed.client, [...PEER, "send", `${A.routerClientSide4}:2055`, "5"]).exited();
      for (const x of receivers) expect(await x.waitFor((l) => l.done === true)).toMatchObject({ received: 50, corrupt: 0 });
      await f.stop();
      const stats = await f.waitFor((l) => l.event === "final");
      expect(stats).toMatchObject({ received: 55, forwarded: 50, copies: 100, dropped: { "sender-not-allowed": 5 } });
    });

    it(`${runtime}: forward to the client subnet's broadcast address (SO_BROADCAST) with raw and bindsrc; tun is refused at start`, async () => {
      const broadcast = "198.18.1.255:9003";
      for (const kind of ["raw", "bindsrc"] as const) {
        // Unconnected (a connected socket takes its local address and no longer matches a broadcast).
        const receiver = bed.spawn(bed.client, [...PEER, "recv-any", "0.0.0.0:9003", "50", "8000"]);
        await receiver.waitFor((l) => l.ready === true);
        const f = bed.spawn(bed.router, [
          ANYSRC,
          "--runtime",
          runtime,
          "forward",
          "--listen",
          "0.0.0.0:2056",
          "--to",
          broadcast,
          "--allow",
          `${A.server4}/32`,
          "--transport",
          kind,
          "--stats",
          "json",
          "--stats-interval",
          "0",
        ]);
        expect(await f.waitFor((l) => l.event === "listening")).toMatchObject({ broadcastReceivers: [broadcast] });
        await bed.spawn(bed.server, [...PEER, "many-sources", A.server4, `${A.routerServerSide4}:2056`, "1", "50"]).exited();
        const got = await receiver.waitFor((l) => l.done === true);
        await f.stop();
        const stats = await f.waitFor((l) => l.event === "final");
        // One source, and every payload names its sender's port: the sender's address survived.
        expect({ kind, ...got }).toMatchObject({ kind, received: 50, sources: 1, mismatched: 0 });
        expect(stats).toMatchObject({ copies: 50, dropped: NONE, transports: { [kind]: { dropped: NONE, errors: NONE } } });
      }
      let message = "";
      try {
        bed.run(bed.router, [
          ANYSRC,
          "--runtime",
          runtime,
          "forward",
          "--listen",
          "0.0.0.0:2057",
          "--to",
          broadcast,
          "--allow",
          `${A.server4}/32`,
          "--transport",
          "tun",
        ]);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toContain("--to 198.18.1.255:9003 is a broadcast address: use --transport raw or bindsrc");
    });
  }
});
