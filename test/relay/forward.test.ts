/**
 * `anysrc forward` beyond plain fan-out: 1-in-N sampling, a TTL and `plain` per receiver, receivers
 * chosen by sender prefix, SIGHUP reload under load, an unreachable receiver, and 9000 / 65 507-byte
 * IPv6 datagrams. Senders in the client namespace (two addresses per family), the forwarder in the
 * router's, receivers (udp_record.c: sequence numbers, sources, TTLs) in the server's.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, NONE, requirePrivileges, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";
import { ANYSRC } from "./start_tproxy.ts";

const PEER = ["node", UDP_PEER];
const run = requirePrivileges("forward suite");
type Json = Record<string, unknown>;
type Record_ = { received: number; duplicates: number; corrupt: number; seqs: number[]; sources: string[]; ttls: number[]; sizes: number[] };
type ReceiverCounts = { receiver: string; copies: number; sampledOut: number; bytes: number; icmpUnreachable: number; errors: number };

/** A second sender address on the client's link, per family. */
const ALIAS4 = "198.18.1.77";
const ALIAS6 = "2001:db8:1::77";

describe.skipIf(!run)("anysrc forward: sampling, per-receiver TTL and plain, prefixes, reload (client senders → router → server receivers)", () => {
  let bed: Testbed;
  let bin: Record<string, string>;
  let dir: string;
  let port = 9300;
  beforeAll(() => {
    bin = compileC(["udp_record", "udp_flood", "udp_sink"]);
    bed = createTestbed();
    bed.run(bed.client, ["ip", "addr", "add", `${ALIAS4}/24`, "dev", "c0"]);
    bed.run(bed.client, ["ip", "-6", "addr", "add", `${ALIAS6}/64`, "dev", "c0", "nodad"]);
    dir = mkdtempSync(join(tmpdir(), "anysrc-forward-"));
  });
  afterAll(async () => {
    await bed?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A recording receiver on the server; `expect` datagrams end it early. */
  const receiver = async (host: string, expectCount: number, timeoutMs = 15_000) => {
    const p = port++;
    const child = bed.spawn(bed.server, [bin.udp_record!, host, String(p), String(expectCount), String(timeoutMs)]);
    await child.waitFor((l) => l.ready === true);
    const at = host.includes(":") ? `[${host}]:${p}` : `${host}:${p}`;
    return { at, done: async () => (await child.waitFor((l) => l.done === true, timeoutMs + 5000)) as unknown as Record_ };
  };
  const forward = async (runtime: string, listen: string, args: string[]) => {
    const f = bed.spawn(bed.router, [ANYSRC, "--runtime", runtime, "forward", "--listen", listen, "--stats", "json", "--stats-interval", "0", ...args]);
    const listening = await f.waitFor((l) => l.event === "listening" || l.event === "error", 20_000);
    if (listening.event !== "listening") throw new Error(`forward did not start: ${JSON.stringify(listening)} ${f.stderr()}`);
    return { f, pid: listening.pid as number };
  };
  const final = async (f: ReturnType<Testbed["spawn"]>) => {
    await f.stop();
    return f.waitFor((l) => l.event === "final");
  };
  /** `count` datagrams of `size` bytes from `from` (address:port) to the forwarder, 2 ms apart. */
  const send = (from: string, to: string, count: number, size: number) =>
    bed.spawn(bed.client, [...PEER, "send-from", from, to, String(count), String(size)]).exited(120_000);
  const counts = (stats: Json, name: string) => (stats.receivers as ReceiverCounts[]).find((r) => r.receiver === name);

  for (const runtime of RUNTIMES) {
    for (const kind of ["raw", "bindsrc", "packet"] as const) {
      it(`${kind} on ${runtime}: /10 gets exactly every tenth datagram, ttl=7 arrives with TTL 7, plain arrives from the forwarder's own address`, async () => {
        const tenth = await receiver(A.server4, 100);
        const ttl = await receiver(A.server4, 1000);
        const plain = await receiver(A.server4, 1000);
        const { f } = await forward(runtime, "0.0.0.0:2055", [
          "--to",
          `${tenth.at}/10`,
          "--to",
          `${ttl.at},ttl=7`,
          "--to",
          `${plain.at},plain`,
          "--allow",
          "198.18.0.0/15",
          "--transport",
          kind,
        ]);
        await send(`${A.client4}:5000`, `${A.routerClientSide4}:2055`, 1000, 200);
        const [t, l, p] = [await tenth.done(), await ttl.done(), await plain.done()];
        const stats = await final(f);
        expect(t).toMatchObject({ received: 100, duplicates: 0, corrupt: 0, sources: [`${A.client4}:5000`] });
        expect(t.seqs.every((s) => s % 10 === 0)).toBe(true);
        expect(l).toMatchObject({ received: 1000, corrupt: 0, ttls: [7], sources: [`${A.client4}:5000`] });
        expect(p).toMatchObject({ received: 1000, corrupt: 0 });
        expect(p.sources).toHaveLength(1);
        expect(p.sources[0]!.startsWith(`${A.routerServerSide4}:`)).toBe(true);
        expect(counts(stats, `${tenth.at}/10`)).toMatchObject({ copies: 100, sampledOut: 900, bytes: 100 * 200, errors: 0 });
        expect(counts(stats, `${ttl.at},ttl=7`)).toMatchObject({ copies: 1000, sampledOut: 0 });
        expect(counts(stats, `${plain.at},plain`)).toMatchObject({ copies: 1000, errors: 0 });
        expect(stats).toMatchObject({ received: 1000, forwarded: 1000, copies: 2100, dropped: NONE, unaccounted: { inbound: 0 } });
      });
    }

    it(`${runtime}: receivers by sender prefix (CIDR, samplicator's netmask form, IPv6) get only their senders' datagrams, each receiver once`, async () => {
      const [a4, b4, both4] = [await receiver(A.server4, 200), await receiver(A.server4, 200), await receiver(A.server4, 400)];
      const [a6, both6] = [await receiver(A.server6, 200), await receiver(A.server6, 400)];
      const file = join(dir, `receivers-${runtime}.conf`);
      // both4 is named under two prefixes that contain client4: it still gets one copy.
      const b4Samplicator = b4.at.replace(":", "/");
      writeFileSync(
        file,
        [
          "# anysrc syntax and samplicator's, side by side",
          `${A.client4}/32: ${a4.at} ${both4.at}`,
          `${ALIAS4}/255.255.255.255: ${b4Samplicator}`,
          `198.18.1.0/24: ${both4.at}`,
          `${A.client6}/128: ${a6.at}`,
          `2001:db8:1::/64: ${both6.at}`,
          "",
        ].join("\n"),
      );
      const v4 = await forward(runtime, "0.0.0.0:2055", ["--receivers", file, "--allow", "198.18.0.0/15", "--transport", "raw"]);
      await Promise.all([send(`${A.client4}:5001`, `${A.routerClientSide4}:2055`, 200, 100), send(`${ALIAS4}:5002`, `${A.routerClientSide4}:2055`, 200, 100)]);
      const s4 = await final(v4.f);
      const v6 = await forward(runtime, "[::]:2055", ["--receivers", file, "--allow", "2001:db8::/32", "--transport", "bindsrc"]);
      await Promise.all([
        send(`[${A.client6}]:5001`, `[${A.routerClientSide6}]:2055`, 200, 100),
        send(`[${ALIAS6}]:5002`, `[${A.routerClientSide6}]:2055`, 200, 100),
      ]);
      const s6 = await final(v6.f);
      expect(await a4.done()).toMatchObject({ received: 200, duplicates: 0, sources: [`${A.client4}:5001`] });
      expect(await b4.done()).toMatchObject({ received: 200, duplicates: 0, sources: [`${ALIAS4}:5002`] });
      const both = await both4.done();
      expect(both).toMatchObject({ received: 400, duplicates: 200 /* two senders, same sequence numbers */ });
      expect([...both.sources].sort()).toEqual([`${A.client4}:5001`, `${ALIAS4}:5002`]);
      expect(await a6.done()).toMatchObject({ received: 200, sources: [`[${A.client6}]:5001`] });
      expect([...(await both6.done()).sources].sort()).toEqual([`[${A.client6}]:5001`, `[${ALIAS6}]:5002`]);
      expect(s4).toMatchObject({ received: 400, forwarded: 400, copies: 800, dropped: NONE });
      expect(s6).toMatchObject({ received: 400, forwarded: 400, copies: 600, dropped: NONE });
    });

    it(`${runtime}: SIGHUP swaps the receivers under load — a receiver in every set loses nothing, an added one gets a contiguous run, a bad file keeps the set`, async () => {
      const steady = await receiver(A.server4, 3000, 30_000);
      const byPrefix = await receiver(A.server4, 3000, 30_000);
      const added = await receiver(A.server4, 3000, 12_000);
      const file = join(dir, `reload-${runtime}.conf`);
      writeFileSync(file, `198.18.1.0/24: ${byPrefix.at}\n`);
      const { f, pid } = await forward(runtime, "0.0.0.0:2055", ["--to", steady.at, "--receivers", file, "--allow", "198.18.0.0/15", "--transport", "bindsrc"]);
      const sending = send(`${A.client4}:5003`, `${A.routerClientSide4}:2055`, 3000, 300);
      const hup = async (text: string, event: string) => {
        await new Promise((r) => setTimeout(r, 1500));
        writeFileSync(file, text);
        process.kill(pid, "SIGHUP");
        return f.waitFor((l) => l.event === event && !(l as { seen?: boolean }).seen).then((l) => Object.assign(l, { seen: true }));
      };
      await hup(`198.18.1.0/24: ${byPrefix.at} ${added.at}\n`, "reloaded");
      const failed = await hup("198.18.1.0/24 without a colon\n", "reload-failed");
      expect(failed.error).toContain(`${file}:1`);
      await hup(`198.18.1.0/24: ${byPrefix.at}\n`, "reloaded");
      await sending;
      const [s, b, a] = [await steady.done(), await byPrefix.done(), await added.done()];
      const stats = await final(f);
      expect(s).toMatchObject({ received: 3000, duplicates: 0, corrupt: 0 });
      expect(b).toMatchObject({ received: 3000, duplicates: 0, corrupt: 0 });
      // Added at the first reload, removed at the third: one unbroken run of the sequence.
      expect(a.received).toBeGreaterThan(100);
      expect(a.seqs[a.seqs.length - 1]! - a.seqs[0]! + 1).toBe(a.received);
      expect(stats).toMatchObject({ received: 3000, forwarded: 3000, copies: 6000 + a.received, dropped: NONE, unaccounted: { inbound: 0 } });
    });

    it(`${runtime}: an unreachable receiver (nothing listening: ICMP port unreachable) leaves the others lossless, and a plain one counts its ICMP errors`, async () => {
      const good = await receiver(A.server4, 1000);
      const closed = `${A.server4}:9299`;
      const { f } = await forward(runtime, "0.0.0.0:2055", [
        "--to",
        closed,
        "--to",
        `${closed},plain`,
        "--to",
        good.at,
        "--allow",
        "198.18.0.0/15",
        "--transport",
        "bindsrc",
      ]);
      await send(`${A.client4}:5004`, `${A.routerClientSide4}:2055`, 1000, 100);
      const g = await good.done();
      const stats = await final(f);
      expect(g).toMatchObject({ received: 1000, duplicates: 0, corrupt: 0 });
      expect(counts(stats, good.at)).toMatchObject({ copies: 1000, errors: 0 });
      expect(counts(stats, `${closed},plain`)!.icmpUnreachable).toBeGreaterThan(0);
      expect(stats).toMatchObject({ received: 1000, forwarded: 1000, dropped: NONE, unaccounted: { inbound: 0 } });
    });

    it(`${runtime}: flooded beyond what it can read, the forwarder still answers /metrics during the flood and counts what the kernel dropped`, async () => {
      const metricsPort = 9120 + RUNTIMES.indexOf(runtime);
      const sinkPort = port++;
      const sink = bed.spawn(bed.server, [bin.udp_sink!, A.server4, String(sinkPort), "30"]);
      await sink.waitFor((l) => l.ready === true);
      const { f } = await forward(runtime, "0.0.0.0:2056", [
        "--to",
        `${A.server4}:${sinkPort}`,
        "--allow",
        "198.18.0.0/15",
        "--transport",
        "raw",
        "--metrics",
        `127.0.0.1:${metricsPort}`,
      ]);
      // As fast as the C sender goes, in batches of 32: more than any forwarder here can read.
      const flood = bed.spawn(bed.client, [bin.udp_flood!, A.routerClientSide4, "2056", "8", "0", "256", "32"]);
      let floodOver = false;
      const floodDone = flood.waitFor((l) => typeof l.sent === "number", 30_000).then((r) => {
        floodOver = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 1500));
      const fetcher = bed.spawn(bed.router, [
        "node",
        "-e",
        `fetch("http://127.0.0.1:${metricsPort}/metrics").then((r) => r.text()).then((t) => console.log(JSON.stringify({ metrics: t })))`,
      ]);
      const metrics = (await fetcher.waitFor((l) => typeof l.metrics === "string", 6_000)).metrics as string;
      const answeredDuringFlood = !floodOver;
      await floodDone;
      const stats = await final(f);
      expect(answeredDuringFlood).toBe(true);
      expect(metrics).toMatch(/anysrc_kernel_dropped_total\{mode="forward",socket="listener"\} \d+/);
      // The socket never drained: the kernel dropped on it, and those drops are counted.
      expect((stats.kernelDropped as { listener: number }).listener).toBeGreaterThan(0);
      expect(stats).toMatchObject({ forwarded: stats.received, copies: stats.received, dropped: NONE, unaccounted: { inbound: 0 } });
    });

    for (const kind of ["raw", "bindsrc", "tun"] as const) {
      it(`${kind} on ${runtime}: 9000- and 65 507-byte IPv6 datagrams arrive whole with the sender's address`, async () => {
        const r = await receiver(A.server6, 30, 20_000);
        const { f } = await forward(runtime, "[::]:2055", [
          "--to",
          r.at,
          "--allow",
          "2001:db8::/32",
          "--transport",
          kind,
          "--tun",
          `asfw${process.pid % 1000}`,
        ]);
        await send(`[${A.client6}]:5005`, `[${A.routerClientSide6}]:2055`, 20, 9000);
        await send(`[${A.client6}]:5005`, `[${A.routerClientSide6}]:2055`, 10, 65507);
        const got = await r.done();
        const stats = await final(f);
        expect(got).toMatchObject({ received: 30, corrupt: 0, sources: [`[${A.client6}]:5005`] });
        expect([...got.sizes].sort((x, y) => x - y)).toEqual([9000, 65507]);
        expect(stats).toMatchObject({ received: 30, forwarded: 30, copies: 30, dropped: NONE });
      });
    }
  }
});
