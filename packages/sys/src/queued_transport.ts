/**
 * The lifecycle every backend shares, in one place: validation, the closed and stopped states,
 * grouping a batch by the lane it leaves through (a family's raw socket, a source's bound socket,
 * the TUN device), a bounded queue per lane while the kernel says EAGAIN, waiting for the lane to
 * become writable and draining it then, and `close()` that waits for the queues before releasing.
 * A backend supplies only how a run of datagrams reaches the wire ({@link BackendSteps.emit}).
 * @module
 */
import {
  countDrop,
  countError,
  createSendQueue,
  type Datagram,
  type DropReason,
  sendOneThrough,
  type SendQueue,
  SystemError,
  type Transport,
  TransportError,
  type TransportStats,
  validateDatagram,
} from "@anysrc/core";
import { createDrainWaiter } from "./drain_waiter.ts";
import { getPoller, WRITABLE } from "./poller.ts";

/** A path to the kernel that can say "not now": a socket or a device. */
export interface Lane {
  readonly fd: number;
}

/** What a backend brings to {@link createQueuedTransport}. */
export interface BackendSteps<L extends Lane> {
  /** "raw", "bindsrc", "tun", …: the transport's kind. */
  readonly kind: string;
  /** How errors name the transport, e.g. "tun transport anysrc0". */
  readonly label: string;
  readonly stats: TransportStats;
  /** Datagrams held per lane while it is not writable; past it they are dropped ("queue-full"). */
  readonly queueLimit: number;
  /** How long `close()` waits for the queues to drain. */
  readonly closeTimeoutMs: number;
  /** True when `a` and `b` leave through the same lane; checked before any lane is opened. */
  sameLane(a: Datagram, b: Datagram): boolean;
  /** The lane of a group whose first datagram is `d`, opened if need be; throws a SystemError when it cannot be. */
  laneFor(d: Datagram): L;
  /** Why a group is dropped when its lane could not be opened; default "send-error". */
  dropReasonFor?(e: SystemError): DropReason;
  /**
   * Put `run[from..]` (all of one lane) on the wire: the index of the first datagram not handed to
   * the kernel (run.length when all were), stopping where the lane would block (EAGAIN, ENOBUFS).
   */
  emit(lane: L, run: readonly Datagram[], from: number): number;
  /**
   * Start or stop waiting for `lane` to become writable, calling {@link QueuedTransport.flush} when
   * it is. Default: the poller, writable interest only (a backend whose fd the poller also reads
   * for it keeps one registration of its own).
   */
  watchWritable?(lane: L, on: boolean): void;
  /** Close the backend's sockets or device, once the queues have drained (or the wait ran out). */
  release(): void;
}

/** The engine's handle: the finished Transport, and what the backend's callbacks call. */
export interface QueuedTransport<L extends Lane> {
  readonly transport: Transport;
  /** `lane` is writable: send what waits on it. */
  flush(lane: L): void;
  /** Stop for good (a device that vanished): every queued datagram dropped as `reason`, later sends throw `error`. */
  stop(error: TransportError, reason: DropReason): void;
  /** `lane` is gone (its socket closed by a cache): what waited on it is dropped as "closed". */
  forget(lane: L): void;
  readonly stopped: TransportError | undefined;
}

/** The engine's state: one record per transport, which the functions below work on. */
interface Engine<L extends Lane> {
  readonly steps: BackendSteps<L>;
  readonly stats: TransportStats;
  readonly queues: Map<L, SendQueue>;
  readonly drain: ReturnType<typeof createDrainWaiter>;
  readonly watch: (lane: L, on: boolean) => void;
  closed: boolean;
  stopped: { error: TransportError; reason: DropReason } | undefined;
  // Per batch, reused: which datagrams are grouped already, and one lane's datagrams at a time.
  readonly taken: boolean[];
  readonly group: Datagram[];
  /** The first lane that could not be opened in this send (its group dropped): thrown once the rest went. */
  failure: SystemError | undefined;
}

/**
 * Wrap a backend's emit step in the shared lifecycle.
 * @example const engine = createQueuedTransport({ kind: "raw", label: "raw transport", stats, …, emit, release });
 */
export function createQueuedTransport<L extends Lane>(steps: BackendSteps<L>): QueuedTransport<L> {
  const poller = getPoller();
  const onWritable = (_events: number, lane: L) => flush(e, lane);
  const e: Engine<L> = {
    steps,
    stats: steps.stats,
    queues: new Map(),
    drain: createDrainWaiter(),
    watch: steps.watchWritable ?? ((lane, on) => (on ? poller.add(lane.fd, WRITABLE, onWritable, lane) : poller.remove(lane.fd))),
    closed: false,
    stopped: undefined,
    taken: [],
    group: [],
    failure: undefined,
  };
  const sendBatch = (ds: readonly Datagram[]) => send(e, ds);
  const transport: Transport = {
    kind: steps.kind,
    stats: e.stats,
    send: sendOneThrough(sendBatch),
    sendBatch,
    async close() {
      if (e.closed) return;
      e.closed = true;
      await e.drain.wait(e.queues.size > 0, steps.closeTimeoutMs);
      clearQueues(e, "closed");
      steps.release();
    },
  };
  return {
    transport,
    flush: (lane) => flush(e, lane),
    stop(error, reason) {
      e.stopped = { error, reason };
      clearQueues(e, reason);
      e.drain.drained();
    },
    forget(lane) {
      const q = e.queues.get(lane);
      if (!q) return;
      const left = q.clear();
      if (left > 0) countDrop(e.stats, "closed", left);
      e.stats.queued -= left;
      e.queues.delete(lane);
      if (e.queues.size === 0) e.drain.drained();
    },
    get stopped() {
      return e.stopped?.error;
    },
  };
}

function send<L extends Lane>(e: Engine<L>, ds: readonly Datagram[]): void {
  if (e.closed) throw new TransportError("closed", `${e.steps.label} is closed`);
  for (const d of ds) validateDatagram(d);
  if (e.stopped) {
    countDrop(e.stats, e.stopped.reason, ds.length);
    throw e.stopped.error;
  }
  if (ds.length === 0) return;
  e.failure = undefined;
  let one = true;
  for (let i = 1; i < ds.length && one; i++) one = e.steps.sameLane(ds[0]!, ds[i]!);
  if (one) {
    const lane = openLane(e, ds[0]!, ds.length);
    if (lane) sendRun(e, lane, ds);
  } else sendGroups(e, ds);
  if (e.failure) throw e.failure;
}

/**
 * One group per lane, in first-appearance order (order within a lane kept): one emit each, even
 * when lanes alternate datagram by datagram. Each group's lane is opened just before it is used,
 * so an eviction (a cap, or out of descriptors) can only close a lane already done with.
 */
function sendGroups<L extends Lane>(e: Engine<L>, ds: readonly Datagram[]): void {
  const { taken, group } = e;
  taken.length = ds.length;
  taken.fill(false);
  for (let i = 0; i < ds.length; i++) {
    if (taken[i]) continue;
    group.length = 0;
    for (let j = i; j < ds.length; j++) {
      if (taken[j] || !e.steps.sameLane(ds[i]!, ds[j]!)) continue;
      group.push(ds[j]!);
      taken[j] = true;
    }
    const lane = openLane(e, ds[i]!, group.length);
    if (lane) sendRun(e, lane, group);
  }
  group.length = 0;
}

/** The lane of `d`'s group of `n`, or undefined with the group counted as dropped and the error kept. */
function openLane<L extends Lane>(e: Engine<L>, d: Datagram, n: number): L | undefined {
  try {
    return e.steps.laneFor(d);
  } catch (error) {
    if (!(error instanceof SystemError)) throw error;
    countError(e.stats, error.code);
    countDrop(e.stats, e.steps.dropReasonFor?.(error) ?? "send-error", n);
    e.failure ??= error;
    return undefined;
  }
}

function sendRun<L extends Lane>(e: Engine<L>, lane: L, run: readonly Datagram[]): void {
  // Behind what already waits on this lane, to keep its order.
  const done = e.queues.has(lane) ? 0 : e.steps.emit(lane, run, 0);
  if (e.stopped) {
    countDrop(e.stats, e.stopped.reason, run.length - done);
    throw e.stopped.error;
  }
  if (done < run.length) enqueue(e, lane, run, done);
}

function enqueue<L extends Lane>(e: Engine<L>, lane: L, run: readonly Datagram[], from: number): void {
  let q = e.queues.get(lane);
  if (!q) {
    q = createSendQueue(e.steps.queueLimit);
    e.queues.set(lane, q);
    e.watch(lane, true);
  }
  for (let k = from; k < run.length; k++) {
    if (q.push(run[k]!)) e.stats.queued++;
    else countDrop(e.stats, "queue-full");
  }
}

/** `lane` is writable: send what waits on it, and stop watching once nothing does. */
function flush<L extends Lane>(e: Engine<L>, lane: L): void {
  const q = e.queues.get(lane);
  while (q && q.length > 0 && !e.stopped) {
    const chunk = q.head(64);
    const done = e.steps.emit(lane, chunk, 0);
    if (e.stopped) return; // stop() counted the queue, this chunk included
    q.drop(done);
    e.stats.queued -= done;
    if (done < chunk.length) return; // still blocked: stay watched
  }
  e.queues.delete(lane);
  e.watch(lane, false);
  if (e.queues.size === 0) e.drain.drained();
}

function clearQueues<L extends Lane>(e: Engine<L>, reason: DropReason): void {
  for (const [lane, q] of e.queues) {
    const left = q.clear();
    if (left > 0) countDrop(e.stats, reason, left);
    e.watch(lane, false);
  }
  e.queues.clear();
  e.stats.queued = 0;
}
