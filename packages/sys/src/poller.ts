/**
 * Readiness without busy-waiting and without holding up the event loop. While the process is idle,
 * something other than the JS thread waits in epoll_wait over every registered fd (edge-triggered,
 * EPOLLET): on Bun a Worker, which wakes the main thread via Atomics.notify; on Deno a nonblocking
 * FFI call, which Deno runs on a thread of its own (no second JS isolate: ~12 MiB less). From then on
 * the main thread waits in epoll_wait itself (LINGER_MS at a time, giving the event loop a turn every
 * SLICE_MS) and hands epoll back once nothing arrived for LINGER_MS. Under load that spares two
 * thread switches per wake-up: on a VM a switch costs several µs, more than relaying a datagram in
 * JS. Each ready fd's handler is called once per poll, however often epoll reported it, and drains
 * it. Edge-triggered, because then a ready fd costs no re-arming syscall: a handler that drained its
 * socket (a short recvmmsg batch is proof) hears again as soon as anything new arrives. With no
 * registration left the idle waiter is stopped, so nothing keeps the process alive.
 * @module
 */
import { errnoName, SystemError } from "@anysrc/core";
import { adapter, check, errno, lastError, libc } from "./libc.ts";
import { nextTurn } from "./runtime.ts";
import type { WorkerLike } from "./libc_signatures.ts";
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EINTR,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
} from "./linux_constants.ts";
import { CONTROL_INTS, FAILED, MAX_EVENTS, OWNER, type PollerStart, type PollerWorkerMessage, SEQ, SLOT_AT, STOP, WORKER } from "./poller_protocol.ts";

/** Which readiness a registration wants. */
export interface Interest {
  readonly readable: boolean;
  readonly writable: boolean;
}

/**
 * Receive batches a handler reads from one fd per dispatch before it stops and calls `again(fd)`:
 * 16 × 32 datagrams is ~2 ms of a flood on this machine, so a socket that never drains still lets
 * the other fds, timers and signals have their turn.
 */
export const READ_BATCHES_PER_DISPATCH = 16;

/** Bits of a ready event, as handed to a handler. */
export const Ready = { readable: EPOLLIN, writable: EPOLLOUT, error: EPOLLERR, hangup: EPOLLHUP } as const;

/** Interest in reading only, and in writing only: shared, so a registration allocates none. */
export const READABLE: Interest = Object.freeze({ readable: true, writable: false });
export const WRITABLE: Interest = Object.freeze({ readable: false, writable: true });

/**
 * Called with the ready event bits and the registration's context; must drain the fd (until
 * EAGAIN, or a short batch) before returning: edge-triggered readiness is not reported again for
 * data already waiting.
 */
export type ReadyHandler<T = undefined> = (events: number, context: T) => void;

/** Counters of the poller, for stats and tests. */
export interface PollerStats {
  /** Idle-to-busy wake-ups: the idle waiter (Worker, or Deno's off-thread call) reported ready fds. */
  wakeups: number;
  /** epoll_wait calls of the main thread's own that found ready fds (while busy: no Worker involved). */
  busyPolls: number;
  /** Handler calls. */
  dispatches: number;
  /** Handlers that threw (the error went to onError; the fd stays registered). */
  handlerErrors: number;
}

/** The process-wide poller. */
export interface Poller {
  /**
   * Register `fd`; `onReady(events, context)` runs on the main thread whenever it is ready. One
   * handler shared by many fds, each with its own context (what epoll calls data), spares a closure
   * per fd: ~100 B each, which 10 000 sessions notice.
   */
  add<T = undefined>(fd: number, interest: Interest, onReady: ReadyHandler<T>, context?: T): void;
  /** Change what `fd` waits for (e.g. add writable while sends are queued). */
  modify(fd: number, interest: Interest): void;
  /** Unregister `fd` (before closing it). The last removal stops the idle waiter. */
  remove(fd: number): void;
  readonly registered: number;
  readonly stats: Readonly<PollerStats>;
  /**
   * Run `f` after each round of dispatches (every handler of one epoll_wait's ready fds has run):
   * where work gathered across fds — replies of many sessions bound for one socket — is sent on
   * together. Returns a function that unregisters it.
   * @example const off = getPoller().afterRound(() => flushReplies());
   */
  afterRound(f: () => void): () => void;
  /**
   * Dispatch `fd` again next round, as if epoll had reported it readable: for a handler that stopped
   * before draining it because its budget for one dispatch was spent (edge-triggered epoll would not
   * report the data already waiting). So a socket that never drains (a flood) cannot keep timers,
   * signals and the metrics endpoint from their turn.
   * @example if (batches === BUDGET) getPoller().again(fd);
   */
  again(fd: number): void;
  /** Where handler exceptions go; default: one line on stderr. */
  onError: (error: unknown, fd: number) => void;
}

interface Registration {
  readonly fd: number;
  interest: Interest;
  readonly onReady: ReadyHandler<unknown>;
  readonly context: unknown;
  /** Event bits gathered for the next dispatch (0: not queued). */
  pending: number;
  /** In `carried`: to be dispatched next round without an epoll report. */
  carried: boolean;
}

const EPOLL_EVENT_SIZE = 12;
/**
 * How long the main thread, once busy, waits in epoll_wait itself before it hands epoll back to the
 * Worker and returns to the event loop. A datagram arriving within it costs one thread switch (the
 * main thread's) instead of three (Worker wakes, main wakes, Worker sleeps again). Real traffic comes
 * in bursts with millisecond gaps: relay at 20 000 round trips/s, µs per datagram for a linger of
 * 0 / 1 / 3 / 5 / 10 ms: Deno 18.8 / 13.1 / 11.6 / 10.6 / 11.1, Bun 17.3 / 12.7 / 10.3 / 9.8 / 9.4.
 * The price is the event loop's latency under load: at most SLICE_MS + LINGER_MS.
 */
const LINGER_MS = 5;
// The worker module beside this one: its source when run from `src/` (and in a compiled executable,
// which names its entry points by their sources), its build when run from `dist/`.
const POLLER_WORKER = import.meta.url.endsWith(".js") ? "./poller_worker.js" : "./poller_worker.ts";
/** Longest stretch of busy polling before the event loop gets a turn (timers, signals, metrics). */
const SLICE_MS = 10;
const eventBytes = new Uint8Array(EPOLL_EVENT_SIZE);
const eventView = new DataView(eventBytes.buffer);

function control(epfd: number, op: number, fd: number, interest: Interest | undefined): number {
  const bits = interest ? (interest.readable ? EPOLLIN : 0) | (interest.writable ? EPOLLOUT : 0) | EPOLLET : 0;
  eventView.setUint32(0, bits, true);
  eventView.setInt32(4, fd, true);
  eventView.setInt32(8, 0, true);
  return libc.epoll_ctl(epfd, op, fd, eventBytes);
}

/** The poller's state: one record, so that its parts can be module-level functions. */
interface PollerState {
  readonly registrations: Map<number, Registration>;
  readonly stats: PollerStats;
  epollFd: number;
  wakeFd: number;
  running: boolean;
  worker: WorkerLike | undefined;
  shared: Int32Array | undefined;
  /** Bumped by every start and stop: a pump of an earlier generation stops at its next check. */
  generation: number;
  /** Registrations reported in this round, each once. */
  queued: Registration[];
  /** Registrations whose handler asked to run again (`again`) next round. */
  carried: Registration[];
  roundEnds: (() => void)[];
  onError: (error: unknown, fd: number) => void;
}

function createPoller(): Poller {
  const p: PollerState = {
    registrations: new Map(),
    stats: { wakeups: 0, busyPolls: 0, dispatches: 0, handlerErrors: 0 },
    epollFd: -1,
    wakeFd: -1,
    running: false,
    worker: undefined,
    shared: undefined,
    generation: 0,
    queued: [],
    carried: [],
    roundEnds: [],
    onError(error, fd) {
      const message = error instanceof Error ? error.message : String(error);
      console.error(`anysrc poller: handler for fd ${fd} failed: ${message}`);
    },
  };
  return {
    add<T>(fd: number, interest: Interest, onReady: ReadyHandler<T>, context?: T) {
      if (p.registrations.has(fd)) throw new RangeError(`poller: fd ${fd} is already registered`);
      if (!p.running) start(p);
      const reg: Registration = { fd, interest, onReady: onReady as ReadyHandler<unknown>, context, pending: 0, carried: false };
      if (control(p.epollFd, EPOLL_CTL_ADD, fd, interest) < 0) {
        const error = lastError("epoll_ctl ADD", fd);
        if (p.registrations.size === 0) stop(p);
        throw error;
      }
      p.registrations.set(fd, reg);
    },
    modify(fd, interest) {
      const reg = p.registrations.get(fd);
      if (!reg) throw new RangeError(`poller: fd ${fd} is not registered`);
      if (reg.interest.readable === interest.readable && reg.interest.writable === interest.writable) return;
      reg.interest = interest;
      // MOD re-evaluates readiness: an fd already writable reports it at once.
      check(control(p.epollFd, EPOLL_CTL_MOD, fd, interest), "epoll_ctl MOD", fd);
    },
    remove(fd) {
      if (!p.registrations.delete(fd)) return;
      // ENOENT/EBADF here only mean the fd is already gone; nothing else is possible for DEL.
      control(p.epollFd, EPOLL_CTL_DEL, fd, undefined);
      if (p.registrations.size === 0) stop(p);
    },
    get registered() {
      return p.registrations.size;
    },
    stats: p.stats,
    afterRound(f) {
      p.roundEnds = [...p.roundEnds, f];
      return () => {
        p.roundEnds = p.roundEnds.filter((g) => g !== f);
      };
    },
    again(fd) {
      const reg = p.registrations.get(fd);
      if (!reg || reg.carried) return;
      reg.carried = true;
      p.carried.push(reg);
    },
    get onError() {
      return p.onError;
    },
    set onError(f) {
      p.onError = f;
    },
  };
}

/** Open epoll and the wake eventfd, and start the idle waiter: Deno's off-thread call, or a Worker. */
function start(p: PollerState): void {
  p.epollFd = check(libc.epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
  p.wakeFd = check(libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), "eventfd");
  check(control(p.epollFd, EPOLL_CTL_ADD, p.wakeFd, READABLE), "epoll_ctl ADD", p.wakeFd);
  p.running = true;
  const mine = ++p.generation;
  if (adapter.epollWaitOffThread) {
    void pumpOffThread(p, adapter.epollWaitOffThread, p.epollFd, p.wakeFd, mine);
    return;
  }
  const sab = new SharedArrayBuffer(CONTROL_INTS * 4);
  p.shared = new Int32Array(sab);
  const url = new URL(POLLER_WORKER, import.meta.url).href;
  const w: WorkerLike = adapter.startWorker ? adapter.startWorker(url) : (new Worker(url, { type: "module" }) as unknown as WorkerLike);
  const started: PollerStart = { control: sab, epollFd: p.epollFd, wakeFd: p.wakeFd };
  w.onmessage = (e) => {
    if ("ready" in (e.data as PollerWorkerMessage)) w.postMessage(started);
  };
  p.worker = w;
  void pump(p, p.shared, mine);
}

/** The last fd left: stop the idle waiter and close epoll once it has let go. */
function stop(p: PollerState): void {
  if (!p.running) return;
  p.running = false;
  p.generation++;
  const w = p.worker;
  const s = p.shared;
  p.worker = undefined;
  p.shared = undefined;
  if (s) {
    Atomics.store(s, STOP, 1);
    Atomics.notify(s, OWNER); // a Worker asleep while we owned epoll
    Atomics.notify(s, SEQ); // releases our own waitAsync
  }
  // Wake epoll_wait: eventfd counts are 8-byte host-order integers.
  const one = new Uint8Array(8);
  one[0] = 1;
  libc.write(p.wakeFd, one, 8);
  const ep = p.epollFd;
  const wake = p.wakeFd;
  p.epollFd = -1;
  p.wakeFd = -1;
  // The off-thread pump closes its fds once its epoll_wait returned. A Worker: close them once it
  // has left epoll_wait (it reports back), then end it. (A late "ready" means it never started;
  // "stopped" that it left epoll_wait. Either way it is idle.)
  if (w) {
    w.onmessage = () => {
      w.terminate();
      libc.close(ep);
      libc.close(wake);
    };
  }
}

/** Most consecutive failed off-thread waits (EINTR from a signal, say) before the poller gives up. */
const MAX_WAIT_FAILURES = 100;

/** The idle wait without a Worker: epoll_wait on the runtime's own thread, then poll while busy. */
async function pumpOffThread(p: PollerState, wait: NonNullable<typeof adapter.epollWaitOffThread>, ep: number, wake: number, mine: number): Promise<void> {
  // Its own buffer: a wait left pending by a stop may still be written while a new one polls.
  const events = new Uint8Array(EPOLL_EVENT_SIZE * MAX_EVENTS);
  const view = new DataView(events.buffer);
  let failures = 0;
  try {
    while (p.generation === mine) {
      const n = await wait(ep, events, MAX_EVENTS);
      if (p.generation !== mine) return;
      if (n < 0) {
        // errno stayed on the other thread: only a run of failures is worth reporting.
        if (++failures >= MAX_WAIT_FAILURES) {
          p.onError(new SystemError({ syscall: "epoll_wait", errno: 0, code: "UNKNOWN" }), ep);
          return;
        }
        continue;
      }
      failures = 0;
      p.stats.wakeups++;
      dispatchAll(p, gatherEvents(p, view, n));
      await pollWhileBusy(p, mine);
    }
  } finally {
    if (p.generation !== mine) {
      libc.close(ep);
      libc.close(wake);
    }
  }
}

/** The Worker's side of the idle wait: take what it published, dispatch, poll while busy, hand epoll back. */
async function pump(p: PollerState, s: Int32Array, mine: number): Promise<void> {
  let read = 0;
  while (p.generation === mine) {
    const published = Atomics.load(s, SEQ);
    if (published === read) {
      const wait = Atomics.waitAsync(s, SEQ, published);
      if (wait.async) await wait.value;
      continue;
    }
    read = published;
    if (p.generation !== mine) return;
    const failed = Atomics.load(s, FAILED);
    if (failed !== 0) {
      p.onError(new SystemError({ syscall: "epoll_wait", errno: failed, code: errnoName(failed) }), p.epollFd);
      return;
    }
    p.stats.wakeups++;
    let count = 0;
    for (let i = 0, n = s[SLOT_AT]!; i < n; i++) count = gather(p, count, s[SLOT_AT + 1 + 2 * i]!, s[SLOT_AT + 2 + 2 * i]!);
    dispatchAll(p, count);
    // The Worker handed epoll over: poll it here while traffic keeps coming, then hand it back.
    await pollWhileBusy(p, mine);
    if (p.generation !== mine) return;
    Atomics.store(s, OWNER, WORKER);
    Atomics.notify(s, OWNER);
  }
}

const busyEvents = new Uint8Array(EPOLL_EVENT_SIZE * MAX_EVENTS);
const busyView = new DataView(busyEvents.buffer);

/**
 * Wait in epoll_wait on the main thread until nothing arrives for LINGER_MS (and nothing is carried
 * over), yielding every SLICE_MS.
 */
async function pollWhileBusy(p: PollerState, mine: number): Promise<void> {
  let sliceStart = Date.now();
  while (p.generation === mine) {
    // Work carried over: look for more without waiting, then run both.
    const n = libc.epoll_wait(p.epollFd, busyEvents, MAX_EVENTS, p.carried.length > 0 ? 0 : LINGER_MS);
    if (n < 0 && errno() === EINTR) continue;
    // Idle (0), or epoll failed: the idle waiter's own epoll_wait reports a lasting failure.
    if (n < 0 || (n === 0 && p.carried.length === 0)) return;
    p.stats.busyPolls++;
    dispatchAll(p, gatherCarried(p, gatherEvents(p, busyView, n)));
    if (Date.now() - sliceStart >= SLICE_MS) {
      await nextTurn();
      sliceStart = Date.now();
    }
  }
}

/** Queue the registrations of `n` packed epoll_events (u32 events @0, fd @4); returns how many. */
function gatherEvents(p: PollerState, view: DataView, n: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) count = gather(p, count, view.getInt32(i * EPOLL_EVENT_SIZE + 4, true), view.getUint32(i * EPOLL_EVENT_SIZE, true));
  return count;
}

/** Queue the registrations carried over from the last round after `count` others; returns the new queue length. */
function gatherCarried(p: PollerState, count: number): number {
  if (p.carried.length === 0) return count;
  const carried = p.carried;
  p.carried = [];
  for (const reg of carried) {
    reg.carried = false;
    if (p.registrations.get(reg.fd) !== reg) continue; // unregistered since
    if (reg.pending === 0) p.queued[count++] = reg;
    reg.pending |= EPOLLIN;
  }
  return count;
}

/** Queue `fd`'s registration once however often it was reported; returns the new queue length. */
function gather(p: PollerState, count: number, fd: number, events: number): number {
  const reg = p.registrations.get(fd);
  if (!reg) return count; // the wake eventfd, or unregistered since
  if (reg.pending === 0) p.queued[count++] = reg;
  reg.pending |= events;
  return count;
}

/** Run the handlers of a round's `count` queued registrations, then the round-end hooks. */
function dispatchAll(p: PollerState, count: number): void {
  for (let i = 0; i < count; i++) dispatch(p, p.queued[i]!);
  if (p.queued.length > 4096) p.queued = [];
  for (const f of p.roundEnds) {
    try {
      f();
    } catch (e) {
      p.stats.handlerErrors++;
      p.onError(e, -1);
    }
  }
}

function dispatch(p: PollerState, reg: Registration): void {
  const events = reg.pending;
  reg.pending = 0;
  // Unregistered (or replaced by a new fd of the same number) since it was queued: not for it.
  if (p.registrations.get(reg.fd) !== reg) return;
  p.stats.dispatches++;
  try {
    reg.onReady(events, reg.context);
  } catch (e) {
    p.stats.handlerErrors++;
    p.onError(e, reg.fd);
  }
}

let instance: Poller | undefined;

/**
 * The process-wide poller, created on first use.
 * @example getPoller().add(fd, READABLE, () => drain(fd));
 */
export function getPoller(): Poller {
  instance ??= createPoller();
  return instance;
}
