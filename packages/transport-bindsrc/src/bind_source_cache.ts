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

/**
 * Create the cache.
 * @example const cache = createBindSourceCache({ onReadable, onWritable });
 */
export function createBindSourceCache(options: BindSourceCacheOptions): BindSourceCache {
  const capacity = options.capacity ?? 1024;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  // Map order ≈ recency (see @anysrc/core recency): the first entry is the least recently used.
  const sockets = new Map<number, SourceSocket>();
  const failures = new Map<number, { until: number; error: SystemError }>();
  const stats: BindSourceCacheStats = { open: 0, opened: 0, evicted: 0, evictedForFds: 0, expired: 0, bindFailures: 0 };
  const poller = getPoller();

  const release = (key: number, s: SourceSocket) => {
    sockets.delete(key);
    options.onClose?.(s);
    poller.remove(s.fd);
    closeFd(s.fd);
    stats.open = sockets.size;
  };

  const sweep = () => {
    const now = Date.now();
    // Sockets with queued sends wait for writability, not for expiry.
    sweepIdle(sockets, now, idleMs, (key, s) => {
      stats.expired++;
      release(key, s);
    }, (s) => s.waiting);
    for (const [key, f] of failures) if (f.until <= now) failures.delete(key);
  };
  const timer = setInterval(sweep, Math.max(250, Math.min(idleMs / 2, 30_000)));
  unrefTimer(timer);

  /** Close the least recently used socket that has nothing queued; false when there is none. */
  const evictOne = (): boolean => {
    for (const [key, s] of sockets) {
      if (s.waiting) continue;
      stats.evicted++;
      release(key, s);
      return true;
    }
    return false;
  };

  const socketOptions = {
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

  // Out of descriptors (a low `ulimit -n`), the least recently used idle socket makes room.
  const makeRoom = (code: string) => {
    if (!evictOne()) return false;
    stats.evictedForFds++;
    options.onRecovered?.(code);
    return true;
  };

  const onReady = (events: number, s: SourceSocket) => {
    if (events & Ready.error) options.onError(s);
    if (events & Ready.writable) options.onWritable(s);
    if (events & Ready.readable) options.onReadable(s);
  };

  const open = (source: SocketAddress, key: number, now: number): SourceSocket => {
    const failed = failures.get(key);
    if (failed && failed.until > now) throw failed.error;
    // Make room first, so the cap is never exceeded, even for a moment.
    if (sockets.size >= capacity) evictOne();
    const fd = openUdpSocketMakingRoom({ family: source.family, ...socketOptions }, makeRoom);
    try {
      bindSocket(fd, source);
    } catch (e) {
      closeFd(fd);
      if (e instanceof SystemError) {
        stats.bindFailures++;
        failures.set(key, { until: now + 1000, error: e });
      }
      throw e;
    }
    const s: SourceSocket = { fd, source, lastActive: now, lastTouched: now, waiting: false, gso: true };
    poller.add(fd, READABLE, onReady, s);
    sockets.set(key, s);
    stats.opened++;
    stats.open = sockets.size;
    return s;
  };

  return {
    acquire(source, now) {
      const key = addressKey(source);
      const s = sockets.get(key);
      if (s && sameSocketAddress(s.source, source)) {
        touchRecency(sockets, key, s, now);
        return s;
      }
      if (s) release(key, s); // a hash collision (IPv6): the newcomer takes the slot
      return open(source, key, now);
    },
    setWaiting(s, waiting) {
      if (s.waiting === waiting) return;
      s.waiting = waiting;
      poller.modify(s.fd, { readable: true, writable: waiting });
    },
    stats,
    close() {
      clearInterval(timer);
      for (const [key, s] of [...sockets]) release(key, s);
      failures.clear();
    },
  };
}
