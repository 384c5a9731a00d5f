/**
 * UDP sockets bound to foreign source addresses (IP_TRANSPARENT), cached per source: least recently
 * used first out past the cap, closed after an idle timeout. Never one socket per packet: a socket
 * bound to a server's address also receives that server's later client traffic (TPROXY assigns it
 * to the best matching transparent socket), so sockets must live long enough to be read.
 * @module
 */
import { addressKey, type Recency, sameSocketAddress, type SocketAddress, sweepIdle, SystemError, touchRecency } from "@anysrc/core";
import { bindSocket, closeFd, getPoller, openUdpSocketMakingRoom, READABLE, Ready, unrefTimer } from "@anysrc/sys";

/** One cached socket. */
export interface SourceSocket extends Recency {
  readonly fd: number;
  readonly source: SocketAddress;
  /** Set while the socket waits for writability (queued sends). */
  waiting: boolean;
  /** GSO sends (UDP_SEGMENT) allowed on it; cleared for good when the kernel refuses one. */
  gso: boolean;
}

/** Options of the cache. */
export interface BindSourceCacheOptions {
  /** Most sockets open at once; default 1024. */
  readonly capacity?: number;
  /** Close sockets unused for this long; default 60 000 ms. */
  readonly idleTimeoutMs?: number;
  readonly mark?: number;
  readonly sendBuffer?: number;
  /** SO_BROADCAST on every socket. */
  readonly broadcast?: boolean;
  /** Called when the socket for `source` is ready to read (datagrams sent to that foreign address). */
  readonly onReadable: (socket: SourceSocket) => void;
  /** Called when the socket has errors queued (IP_RECVERR): they must be read, or it stays ready. */
  readonly onError: (socket: SourceSocket) => void;
  /** Called when a socket waiting for writability can send again. */
  readonly onWritable: (socket: SourceSocket) => void;
  /** Called before a socket is closed (eviction, expiry, close). */
  readonly onClose?: (socket: SourceSocket) => void;
  /** Called with the errno name of a failure the cache recovered from (EMFILE: evicted and retried). */
  readonly onRecovered?: (code: string) => void;
}

/** Counters of the cache. */
export interface BindSourceCacheStats {
  open: number;
  opened: number;
  evicted: number;
  /** Of `evicted`: sockets closed because the process ran out of file descriptors (EMFILE/ENFILE). */
  evictedForFds: number;
  expired: number;
  bindFailures: number;
}

/** The cache. */
export interface BindSourceCache {
  /**
   * The socket bound to `source`, opening it on a miss.
   * @throws {SystemError} bind failures (EADDRINUSE when a local service owns the address), typed
   * and naming the address; failures are remembered for a second so a flood of datagrams from one
   * unusable source costs no syscalls.
   */
  acquire(source: SocketAddress, now: number): SourceSocket;
  /** Re-arm interest after queue changes. */
  setWaiting(socket: SourceSocket, waiting: boolean): void;
  readonly stats: Readonly<BindSourceCacheStats>;
  /** Close every socket. */
  close(): void;
}

/** The cache's settings, sockets and counters. */
interface CacheState {
  readonly options: BindSourceCacheOptions;
  readonly capacity: number;
  readonly idleMs: number;
  /** Map order ≈ recency (see @anysrc/core recency): the first entry is the least recently used. */
  readonly sockets: Map<number, SourceSocket>;
  /** Sources whose bind failed lately, and why. */
  readonly failures: Map<number, { until: number; error: SystemError }>;
  readonly stats: BindSourceCacheStats;
  readonly poller: ReturnType<typeof getPoller>;
  readonly socketOptions: ReturnType<typeof socketOptionsOf>;
  readonly onReady: (events: number, s: SourceSocket) => void;
  /** Out of descriptors (a low `ulimit -n`), the least recently used idle socket makes room. */
  readonly makeRoom: (code: string) => boolean;
}

/**
 * Create the cache.
 * @example const cache = createBindSourceCache({ onReadable, onWritable });
 */
export function createBindSourceCache(options: BindSourceCacheOptions): BindSourceCache {
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const st: CacheState = {
    options,
    capacity: options.capacity ?? 1024,
    idleMs,
    sockets: new Map(),
    failures: new Map(),
    stats: { open: 0, opened: 0, evicted: 0, evictedForFds: 0, expired: 0, bindFailures: 0 },
    poller: getPoller(),
    socketOptions: socketOptionsOf(options),
    onReady: (events, s) => {
      if (events & Ready.error) options.onError(s);
      if (events & Ready.writable) options.onWritable(s);
      if (events & Ready.readable) options.onReadable(s);
    },
    makeRoom: (code) => {
      if (!evictOne(st)) return false;
      st.stats.evictedForFds++;
      options.onRecovered?.(code);
      return true;
    },
  };
  const timer = setInterval(() => sweep(st), Math.max(250, Math.min(idleMs / 2, 30_000)));
  unrefTimer(timer);
  return {
    acquire(source, now) {
      const key = addressKey(source);
      const s = st.sockets.get(key);
      if (s && sameSocketAddress(s.source, source)) {
        touchRecency(st.sockets, key, s, now);
        return s;
      }
      if (s) release(st, key, s); // a hash collision (IPv6): the newcomer takes the slot
      return open(st, source, key, now);
    },
    setWaiting(s, waiting) {
      if (s.waiting === waiting) return;
      s.waiting = waiting;
      st.poller.modify(s.fd, { readable: true, writable: waiting });
    },
    stats: st.stats,
    close() {
      clearInterval(timer);
      for (const [key, s] of [...st.sockets]) release(st, key, s);
      st.failures.clear();
    },
  };
}

function release(st: CacheState, key: number, s: SourceSocket): void {
  st.sockets.delete(key);
  st.options.onClose?.(s);
  st.poller.remove(s.fd);
  closeFd(s.fd);
  st.stats.open = st.sockets.size;
}

function sweep(st: CacheState): void {
  const now = Date.now();
  // Sockets with queued sends wait for writability, not for expiry.
  sweepIdle(st.sockets, now, st.idleMs, (key, s) => {
    st.stats.expired++;
    release(st, key, s);
  }, (s) => s.waiting);
  for (const [key, f] of st.failures) if (f.until <= now) st.failures.delete(key);
}

/** Close the least recently used socket that has nothing queued; false when there is none. */
function evictOne(st: CacheState): boolean {
  for (const [key, s] of st.sockets) {
    if (s.waiting) continue;
    st.stats.evicted++;
    release(st, key, s);
    return true;
  }
  return false;
}

function socketOptionsOf(options: BindSourceCacheOptions) {
  return {
    transparent: true,
    freebind: true,
    reuseAddress: true,
    // Errors of the emit path become visible: ENOBUFS from a full device queue is returned by
    // sendmmsg (the transport queues and retries) instead of being swallowed, ICMP errors are queued.
    receiveErrors: true,
    broadcast: options.broadcast === true,
    ...(options.mark !== undefined ? { mark: options.mark } : {}),
    ...(options.sendBuffer !== undefined ? { sendBuffer: options.sendBuffer } : {}),
  } as const;
}

function open(st: CacheState, source: SocketAddress, key: number, now: number): SourceSocket {
  const failed = st.failures.get(key);
  if (failed && failed.until > now) throw failed.error;
  // Make room first, so the cap is never exceeded, even for a moment.
  if (st.sockets.size >= st.capacity) evictOne(st);
  const fd = openUdpSocketMakingRoom({ family: source.family, ...st.socketOptions }, st.makeRoom);
  try {
    bindSocket(fd, source);
  } catch (e) {
    closeFd(fd);
    if (e instanceof SystemError) {
      st.stats.bindFailures++;
      st.failures.set(key, { until: now + 1000, error: e });
    }
    throw e;
  }
  const s: SourceSocket = { fd, source, lastActive: now, lastTouched: now, waiting: false, gso: true };
  st.poller.add(fd, READABLE, st.onReady, s);
  st.sockets.set(key, s);
  st.stats.opened++;
  st.stats.open = st.sockets.size;
  return s;
}
