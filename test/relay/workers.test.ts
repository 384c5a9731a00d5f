/**
 * `--workers 2`: one service, two relay processes behind one port. Affinity (every client's
 * datagrams reach one worker: sessions = clients), /metrics sums equal to the per-worker series,
 * SIGHUP reaching every worker, a worker killed with SIGKILL under load (the other worker's clients
 * lose nothing; it comes back and serves), SIGTERM flushing every worker — for every transport on
 * Bun, Deno and Node; forward's /10 sampling exact per sender across workers.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, type JsonChild, requirePrivileges, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";
import { ANYSRC, startTproxy } from "./start_tproxy.ts";

const PEER = ["node", UDP_PEER];
const KINDS = ["raw", "bindsrc", "tun", "packet"] as const;
const PORT = 15000;
const run = requirePrivileges("workers suite");
type Json = Record<string, unknown>;
type WorkerStats = Json & { worker: number; sessionsCreated: number; received: number; forwarded: number; replies: number };
type PerFlow = { port: number; sent: number; received: number };

/** "0-2,5" → [0, 1, 2, 5] (the kernel's cpu list format). */
const expandCpuList = (text: string) =>
  text.split(",").flatMap((part) => {
    const [from, to] = part.split("-").map(Number);
    return Array.from({ length: (to ?? from!) - from! + 1 }, (_, i) => from! + i);
  });

describe.skipIf(!run)("--workers 2: one service, a client always on one worker (client → router with nft TPROXY → server)", () => {
  let bed: Testbed;
  let dir: string;
  let metricsPort = 9500;
  let clientPort = 41000;
  let bin: Record<string, string>;
  beforeAll(async () => {
    bin = compileC(["udp_record"]);
    bed = createTestbed();
    bed.enableTproxy(PORT);
    dir = mkdtempSync(join(tmpdir(), "anysrc-workers-"));
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [...PEER, "echo-server", host, "7000"]).waitFor((l) => l.ready === true);
  });
  afterAll(async () => {
    await bed?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The service's counters now: SIGUSR1 to the supervisor, its next stats line. */
  const statsNow = async (r: JsonChild): Promise<Json & { workers: WorkerStats[] }> => {
    const before = r.lines.filter((l) => l.event === "stats").length;
    process.kill(r.pid, "SIGUSR1");
    let n = 0;
    return (await r.waitFor((l) => l.event === "stats" && ++n > before, 10_000)) as Json & { workers: WorkerStats[] };
  };
  const flows = (server: string, count: number, nflows: number, base?: number) =>
    bed.spawn(bed.client, [...PEER, "flows", `${server}:7000`, String(count), "64,1200", String(nflows), "10", ...(base ? [String(base)] : [])])
      .waitFor((l) => l.done === true, 60_000);
  /** Which worker holds the session of client port `port`: one datagram from it, and whose sessionsCreated moved. */
  const ownerOf = async (r: JsonChild, port: number, before: WorkerStats[]) => {
    await bed.spawn(bed.client, [...PEER, "send-from", `${A.client4}:${port}`, `${A.server4}:7000`, "1", "64"]).exited(10_000);
    await new Promise((done) => setTimeout(done, 50));
    const after = (await statsNow(r)).workers;
    const moved = after.filter((w) => w.sessionsCreated !== before.find((b) => b.worker === w.worker)?.sessionsCreated);
    expect(moved).toHaveLength(1);
    return { owner: moved[0]!.worker, after };
  };
  const metric = (text: string, name: string, worker: string) =>
    Number(new RegExp(`^anysrc_${name}\\{mode="tproxy",worker="${worker}"\\} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);

  for (const kind of KINDS) {
    for (const runtime of RUNTIMES) {
      it(`${kind} on ${runtime}: affinity, /metrics sums, SIGHUP in each worker, kill -9 of one under load, SIGTERM flushes both`, async () => {
        const config = join(dir, `relay-${kind}-${runtime}.json`);
        writeFileSync(config, JSON.stringify({ "idle-timeout": "120s" }));
        const metricsAt = `127.0.0.1:${metricsPort++}`;
        const r = await startTproxy(bed, runtime, PORT, ["--transport", kind, "--workers", "2", "--config", config, "--metrics", metricsAt]);
        const listening = r.lines.find((l) => l.event === "listening") as Json & { workers: { worker: number; pid: number }[] };
        expect(listening.workers).toHaveLength(2);

        // Affinity: 64 IPv4 and 64 IPv6 clients, each with its own port; a client split between the
        // workers would hold a session in each.
        const [v4, v6] = await Promise.all([flows(A.server4, 4000, 64), flows(`[${A.server6}]`, 4000, 64)]);
        expect([v4, v6]).toMatchObject([{ received: 4000, corrupt: 0 }, { received: 4000, corrupt: 0 }]);
        const s = await statsNow(r);
        expect(s).toMatchObject({ sessionsCreated: 128, received: 8000, forwarded: 8000, replies: 8000, unaccounted: { inbound: 0, replies: 0 } });
        expect(s.workers).toHaveLength(2);
        for (const w of s.workers) expect(w.sessionsCreated).toBeGreaterThan(0);
        expect(s.workers.reduce((a, w) => a + w.received, 0)).toBe(8000);

        // /metrics: one endpoint, the sum and each worker.
        const text = bed.run(bed.router, ["curl", "-sf", `http://${metricsAt}/metrics`]);
        for (const name of ["received_total", "forwarded_total", "replies_total", "sessions_created_total"]) {
          expect(metric(text, name, "all")).toBe(metric(text, name, "0") + metric(text, name, "1"));
        }
        expect(metric(text, "received_total", "all")).toBe(8000);
        expect(text).toMatch(/^anysrc_worker_up\{mode="tproxy",worker="1"\} 1$/m);

        // SIGHUP: every worker reads the config again.
        writeFileSync(config, JSON.stringify({ "idle-timeout": "30s" }));
        process.kill(r.pid, "SIGHUP");
        for (const worker of [0, 1]) await r.waitFor((l) => l.event === "reloaded" && l.worker === worker && l.idleTimeoutMs === 30_000, 10_000);

        // Which worker holds which of 8 client ports; then kill the one holding the first.
        const base = clientPort;
        clientPort += 8;
        let known = (await statsNow(r)).workers;
        const owners = new Map<number, number>();
        for (let port = base; port < base + 8; port++) {
          const o = await ownerOf(r, port, known);
          owners.set(port, o.owner);
          known = o.after;
        }
        const victim = owners.get(base)!;
        const victimPid = listening.workers.find((w) => w.worker === victim)!.pid;
        const load = flows(A.server4, 8000, 8, base);
        await new Promise((done) => setTimeout(done, 300));
        process.kill(victimPid, "SIGKILL");
        await r.waitFor((l) => l.event === "worker-restarted" && l.worker === victim, 20_000);
        const perFlow = (await load).perFlow as PerFlow[];
        for (const f of perFlow) {
          if (owners.get(f.port) !== victim) expect(f, `client port ${f.port} of the surviving worker`).toMatchObject({ received: f.sent });
        }
        // The restarted worker serves its clients again: the same ports, every echo back.
        expect(await flows(A.server4, 800, 8, base)).toMatchObject({ received: 800, corrupt: 0 });
        // It read its predecessor's socket, so it got exactly its predecessor's clients: nobody moved.
        const reborn = (await statsNow(r)).workers.find((w) => w.worker === victim)!;
        expect(reborn.sessionsCreated).toBe([...owners.values()].filter((o) => o === victim).length);

        // SIGTERM: both flush and print their final counters; the service exits 0 with their sum.
        await r.stop();
        expect(await r.exited()).toBe(0);
        const final = await r.waitFor((l) => l.event === "final");
        expect(final).toMatchObject({ signal: "SIGTERM", unaccounted: { inbound: 0, replies: 0 } });
        expect(final.workers).toHaveLength(2);
      }, 90_000);
    }
  }

  it("--workers auto starts one worker per allowed CPU, each pinned to its own", async () => {
    const r = await startTproxy(bed, "bun", PORT, ["--transport", "raw", "--workers", "auto"]);
    const listening = r.lines.find((l) => l.event === "listening") as Json & { workers: { worker: number; pid: number; cpu: number }[] };
    const cpus = readFileSync("/proc/self/status", "utf8").match(/^Cpus_allowed_list:\s*(\S+)$/m)![1]!;
    expect(listening.workers.map((w) => w.cpu)).toEqual(expandCpuList(cpus));
    for (const w of listening.workers) {
      expect(readFileSync(`/proc/${w.pid}/status`, "utf8")).toMatch(new RegExp(`^Cpus_allowed_list:\\s*${w.cpu}$`, "m"));
    }
    await r.stop();
    expect(await r.exited()).toBe(0);
  });

  it("--workers 2 with a pre-made single-queue TUN device is a clear error at start (exit 2)", async () => {
    const name = `asq${process.pid % 1000}`;
    bed.run(bed.router, ["ip", "tuntap", "add", name, "mode", "tun"]);
    try {
      const r = bed.spawn(bed.router, [ANYSRC, "--runtime", "bun", "tproxy", "--port", String(PORT), "--transport", "tun", "--tun", name, "--workers", "2"]);
      expect(await r.exited()).toBe(2);
      expect(r.stderr()).toContain(`${name} exists without IFF_MULTI_QUEUE`);
    } finally {
      bed.run(bed.router, ["ip", "tuntap", "del", name, "mode", "tun"]);
    }
  });

  for (const runtime of RUNTIMES) {
    it(`forward on ${runtime}: with --workers 2 each sender stays on one worker, so /10 is exact per sender`, async () => {
      const rec = bed.spawn(bed.server, [bin.udp_record!, A.server4, "2100", "40", "15000"]);
      await rec.waitFor((l) => l.ready === true);
      const f = bed.spawn(bed.router, [
        ...[ANYSRC, "--runtime", runtime, "forward", "--listen", "0.0.0.0:2055", "--to", `${A.server4}:2100/10`, "--allow", "198.18.0.0/15"],
        ...["--transport", "raw", "--workers", "2", "--stats", "json", "--stats-interval", "0"],
      ]);
      await f.waitFor((l) => l.event === "listening", 30_000);
      // Four senders one after another, 100 datagrams each (seq 0–99). A worker's sampling counter
      // is then at a multiple of 10 whenever a sender starts, so a sender kept on one worker has
      // exactly seq 0, 10, …, 90 copied; one split between two workers would show other seqs.
      for (let i = 0; i < 4; i++) {
        await bed.spawn(bed.client, [...PEER, "send-from", `${A.client4}:${5100 + i}`, `${A.routerClientSide4}:2055`, "100", "64"]).exited(30_000);
      }
      const got = await rec.waitFor((l) => l.done === true, 20_000) as Json & { seqs: number[]; sources: string[] };
      await f.stop();
      const final = await f.waitFor((l) => l.event === "final") as Json & { workers: WorkerStats[] };
      // udp_record counts a seq seen before as a duplicate: each of the four senders repeats the ten seqs.
      expect(got).toMatchObject({ received: 40, duplicates: 30, corrupt: 0 });
      expect(got.sources).toHaveLength(4);
      // The distinct seqs copied: a split sender would add seqs that are not multiples of 10.
      expect([...got.seqs].sort((x, y) => x - y)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
      expect(final).toMatchObject({ received: 400, forwarded: 40, unaccounted: { inbound: 0 } });
      expect(final.dropped).toEqual({ "sampled-out": 360 });
      expect(final.workers).toHaveLength(2);
    }, 60_000);
  }
});
