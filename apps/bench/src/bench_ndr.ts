/**
 * The headline section of `anysrc bench`: for each family, every contender in turn — the strong C
 * relay, its first version, the testbed's own ceiling (the router's kernel forwarding, no relay) and
 * every transport × runtime — measured in one life of its process, in this order:
 * 1. cold: a closed loop started the moment the relay says it listens, its first second;
 * 2. warm: the same closed loop for another second (rate, CPU per datagram);
 * 3. NDR and PDR: binary search over open-loop trials (rate_search.ts);
 * 4. latency: open loop at 50 % and 90 % of the C relay's NDR, the same offered rate for all;
 * 5. new sessions per second: each round trip from a new client port, then to a new remote address.
 * @module
 */
import type { TransportKind } from "@anysrc/relay/extension";
import { ADDRESSES as A, cpuTimes, withFdLimit } from "@anysrc/testbed";
import type { BenchContext } from "./bench_sections.ts";
import { type Contender, counterDelta, kernelDropCounters, relayArgv, type Rig, TPROXY_PORT } from "./bench_runs.ts";
import { type RateSearchResult, searchRates, type TrialOutcome } from "./rate_search.ts";

/** This section's echo servers (pinned to the harness's CPUs), and the port range the server answers on for the new-remote-address run (redirected to them). */
const ECHO_PORT = 7002;
const REMOTE_PORTS = { from: 40000, count: 20000 } as const;
/** Room for the sessions a contender opens (the churn runs stop at CHURN_MAX each). */
const FD_LIMIT = 20_000;
const CHURN_MAX = 8000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Which CPUs run what: the device under test gets the last CPU to itself, the harness (load
 * generators, echo servers, and the kernel work done in their context) the others. Every contender
 * then has exactly one core, and the ceiling is what the harness itself can do on the CPUs it has.
 * On one CPU nothing is pinned.
 */
export function cpuSplit(cpus: number): { harness: string; relay: string } | undefined {
  if (cpus < 2) return undefined;
  return { harness: cpus === 2 ? "0" : `0-${cpus - 2}`, relay: String(cpus - 1) };
}

function pinned(cpus: string | undefined, argv: readonly string[]): string[] {
  return cpus === undefined ? [...argv] : ["taskset", "-c", cpus, ...argv];
}

/** Latency at one offered rate, from every echo's round trip. */
export interface LatencyPoint {
  /** The share of the C relay's NDR this rate is, and the rate (datagrams/s offered). */
  readonly fraction: number;
  readonly rate: number;
  readonly sent: number;
  readonly lost: number;
  /** Echoed more than 20 ms after the last send: the backlog left when the load stopped. */
  readonly late: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
  /** Relay CPU per relayed datagram (each direction one) at this rate; absent for the ceiling. */
  readonly cpuUsPerDatagram?: number;
}

/** New sessions per second: completed round trips each of which was new to the relay. */
export interface ChurnResult {
  readonly perSecond: number;
  readonly completed: number;
  readonly lost: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

/** A closed-loop second: round trips per second, what was lost, relay CPU per relayed datagram. */
export interface LoopResult {
  readonly roundTripsPerSecond: number;
  readonly lost: number;
  readonly cpuUsPerDatagram?: number;
}

/** One repetition of one contender in one family. */
export interface NdrRep {
  /** From spawning the relay to its "listening" line. */
  readonly readyMs?: number;
  readonly cold?: LoopResult;
  readonly warm: LoopResult;
  /** NDR/PDR in datagrams/s offered by the client (each relayed there and back). */
  readonly search: RateSearchResult;
  readonly latency: readonly LatencyPoint[];
  readonly churnClient: ChurnResult;
  readonly churnRemote: ChurnResult;
  /** Kernel drop counters that moved while this contender ran (overload trials lose by design). */
  readonly kernelDrops: Record<string, number>;
}

/** A contender's row: every repetition. `kind` is "kernel" for the ceiling. */
export interface NdrRow {
  readonly who: Contender | "ceiling";
  readonly kind: TransportKind | "kernel";
  readonly family: 4 | 6;
  readonly flows: number;
  readonly size: number;
  readonly reps: NdrRep[];
}

/** One open-loop trial at `rate` for `seconds`. */
async function openLoop(rig: Rig, family: 4 | 6, flows: number, size: number, rate: number, seconds: number): Promise<Record<string, number>> {
  const { bed, bin } = rig;
  const server = family === 4 ? A.server4 : A.server6;
  const p = bed.spawn(
    bed.client,
    pinned(rig.split?.harness, [bin.relay_openloop!, server, String(ECHO_PORT), String(flows), String(rate), String(seconds), String(size)]),
  );
  return (await p.waitFor((l) => typeof l.sent === "number", (seconds + 30) * 1000)) as Record<string, number>;
}

/** A closed loop of 256 in flight for `seconds` (relay_saturate), with the relay's CPU meanwhile. */
async function closedLoop(rig: Rig, pid: number | undefined, family: 4 | 6, flows: number, size: number, seconds: number): Promise<LoopResult> {
  const { bed, bin } = rig;
  const server = family === 4 ? A.server4 : A.server6;
  const cpu0 = pid === undefined ? undefined : cpuTimes(pid);
  const p = bed.spawn(
    bed.client,
    pinned(rig.split?.harness, [bin.relay_saturate!, server, String(ECHO_PORT), String(flows), "256", String(seconds), String(size)]),
  );
  const r = (await p.waitFor((l) => typeof l.sent === "number", (seconds + 30) * 1000)) as Record<string, number>;
  const received = r.received!;
  const out: LoopResult = { roundTripsPerSecond: received / seconds, lost: r.lost! + r.corrupt! };
  if (pid === undefined || cpu0 === undefined) return out;
  const cpu1 = cpuTimes(pid);
  return { ...out, cpuUsPerDatagram: received > 0 ? ((cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1e6) / (2 * received) : Number.NaN };
}

/** Round trips each new to the relay: a new client port each (`client`) or a new remote address each (`remote`). */
async function churn(rig: Rig, family: 4 | 6, mode: "client" | "remote", seconds: number): Promise<ChurnResult> {
  const { bed, bin } = rig;
  const server = family === 4 ? A.server4 : A.server6;
  const port = mode === "client" ? ECHO_PORT : REMOTE_PORTS.from;
  const p = bed.spawn(bed.client, pinned(rig.split?.harness, [bin.session_churn!, server, String(port), "64", String(seconds), "64", mode, String(CHURN_MAX)]));
  const r = (await p.waitFor((l) => typeof l.completed === "number", (seconds + 30) * 1000)) as Record<string, number>;
  return { perSecond: r.perSecond!, completed: r.completed!, lost: r.lost! + r.corrupt!, p50Us: r.p50_us!, p99Us: r.p99_us! };
}

/** What a contender block measures, from the plan. */
interface BlockPlan {
  readonly family: 4 | 6;
  readonly flows: number;
  readonly size: number;
  readonly trialSeconds: number;
  /** The C relay's NDR in this family and repetition (latency rates are fractions of it); undefined while C runs. */
  readonly cNdr: number | undefined;
}

/**
 * One contender's whole block in one life of its process. The ceiling has no process: the router
 * forwards in its kernel for the length of the block.
 */
async function contenderBlock(ctx: BenchContext, who: Contender | "ceiling", kind: TransportKind, p: BlockPlan): Promise<NdrRep> {
  const { bed, bin, tun, progress } = ctx;
  const label = who === "ceiling" ? "ceiling" : who === "c" || who === "c-basic" ? `C${who === "c-basic" ? " basic" : ""}` : `${kind} ${who}`;
  const drops0 = kernelDropCounters(bed);
  const t0 = performance.now();
  const relay = who === "ceiling"
    ? undefined
    : bed.spawn(bed.router, pinned(ctx.split?.relay, withFdLimit(FD_LIMIT, relayArgv(bin, who, kind, tun, undefined))));
  if (!relay) {
    bed.disableTproxy();
    bed.forwardUdp(true);
  }
  try {
    let readyMs: number | undefined;
    if (relay) {
      await relay.waitFor((l) => l.event === "listening", 30_000);
      readyMs = performance.now() - t0;
    }
    const pid = relay?.pid;
    const cold = relay ? await closedLoop(ctx, pid, p.family, p.flows, p.size, 1) : undefined;
    const warm = await closedLoop(ctx, pid, p.family, p.flows, p.size, 1);
    progress.step(`ndr IPv${p.family} ${label}: cold ${fmtK(cold?.roundTripsPerSecond)}, warm ${fmtK(warm.roundTripsPerSecond)} round trips/s`);
    const search = await searchRates(async (rate): Promise<TrialOutcome> => {
      const r = await openLoop(ctx, p.family, p.flows, p.size, rate, p.trialSeconds);
      const lost = r.lost! + r.corrupt!;
      // Let an overloaded relay drain its queues before the next trial.
      if (lost + r.late! > 0) await sleep(300);
      return { sent: r.sent!, lost, late: r.late!, offered: r.offered! };
    }, { start: Math.max(1000, warm.roundTripsPerSecond), floor: 1000, precision: 0.02, pdrLoss: 0.001, maxTrials: 14 });
    progress.step(`ndr IPv${p.family} ${label}: NDR ${fmtK(search.ndr)}, PDR ${fmtK(search.pdr)} (${search.trials.length} trials)`);
    const cNdr = p.cNdr ?? search.ndr;
    const latency: LatencyPoint[] = [];
    for (const fraction of [0.5, 0.9]) {
      const rate = Math.max(1000, Math.round(cNdr * fraction));
      const cpu0 = pid === undefined ? undefined : cpuTimes(pid);
      const r = await openLoop(ctx, p.family, p.flows, p.size, rate, 1);
      const cpu1 = pid === undefined ? undefined : cpuTimes(pid);
      const relayed = 2 * r.received!;
      latency.push({
        fraction,
        rate,
        sent: r.sent!,
        lost: r.lost! + r.corrupt!,
        late: r.late!,
        p50Us: r.p50_us!,
        p90Us: r.p90_us!,
        p99Us: r.p99_us!,
        p999Us: r.p999_us!,
        maxUs: r.max_us!,
        ...(cpu0 && cpu1 && relayed > 0 ? { cpuUsPerDatagram: ((cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1e6) / relayed } : {}),
      });
    }
    const churnClient = await churn(ctx, p.family, "client", 1);
    const churnRemote = await churn(ctx, p.family, "remote", 1);
    progress.step(
      `ndr IPv${p.family} ${label}: p99 ${latency.map((l) => `${l.p99Us.toFixed(0)} µs`).join(" / ")}; new sessions ${
        fmtK(churnClient.perSecond)
      }/s, new remotes ${fmtK(churnRemote.perSecond)}/s`,
    );
    const kernelDrops = counterDelta(drops0, kernelDropCounters(bed));
    return {
      ...(readyMs === undefined ? {} : { readyMs }),
      ...(cold ? { cold } : {}),
      warm,
      search,
      latency,
      churnClient,
      churnRemote,
      kernelDrops,
    };
  } finally {
    if (relay) await relay.stop();
    else {
      bed.forwardUdp(false);
      bed.enableTproxy(TPROXY_PORT);
    }
  }
}

function fmtK(n: number | undefined): string {
  return n === undefined ? "–" : `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
}

/** Who runs in the headline section, in order: C first (its NDR sets the latency rates), then the rest. */
export function ndrContenders(ctx: BenchContext): [Contender | "ceiling", TransportKind][] {
  const { plan } = ctx;
  return [
    ["c", "raw"],
    ...(plan.basicBaseline ? [["c-basic", "raw"] as [Contender, TransportKind]] : []),
    ["ceiling", "raw"],
    ...plan.runtimes.flatMap((w) => plan.transports.map((t): [Contender, TransportKind] => [w, t])),
  ];
}

/** The headline section: every contender × family, `plan.reps` times, interleaved within a repetition. */
export async function ndrSection(ctx: BenchContext): Promise<void> {
  const { bed, bin, plan, results } = ctx;
  for (const host of [A.server4, A.server6]) {
    await bed.spawn(bed.server, pinned(ctx.split?.harness, [bin.udp_echo!, host, String(ECHO_PORT)])).waitFor((l) => l.ready === true);
  }
  bed.redirectServerPorts(REMOTE_PORTS.from, REMOTE_PORTS.count, ECHO_PORT);
  const { flows, size } = plan.ndrCell;
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const family of plan.families) {
      let cNdr: number | undefined;
      for (const [who, kind] of ndrContenders(ctx)) {
        const r = await contenderBlock(ctx, who, kind, { family, flows, size, trialSeconds: plan.trialSeconds, cNdr });
        if (who === "c") cNdr = r.search.ndr;
        const rowKind = who === "ceiling" ? "kernel" : kind;
        let row = results.ndr.find((x) => x.who === who && x.kind === rowKind && x.family === family);
        if (!row) results.ndr.push(row = { who, kind: rowKind, family, flows, size, reps: [] });
        row.reps.push(r);
      }
    }
  }
}
