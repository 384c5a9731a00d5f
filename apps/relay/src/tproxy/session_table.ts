/**
 * TPROXY sessions: one upstream UDP socket per client address (endpoint-independent mapping, so a
 * game or STUN client sees a full-cone NAT), idle expiry, and a cap with least-recently-used eviction.
 * @module
 */
import { errnoName, type Recency, type SocketAddress, sweepIdle, touchRecency } from "@anysrc/core";
import { closeFd, enableUdpGro, getPoller, openUdpSocketMakingRoom, READABLE, type ReadyHandler, unrefTimer } from "@anysrc/sys";
import type { ReplyPath } from "./reply_path.ts";

/**
 * One client's mapping. A session is its client's address (family, ip, port) plus what the relay
 * keeps for it: one record per client rather than two, since 10 000 clients make 10 000 of them.
 */
export interface Session extends SocketAddress, Recency {
  readonly key: number;
  /** The upstream socket (a client talks to destinations of its own family). */
  readonly fd: number;
  /** Keys of remotes this client sent to (what `--nat restricted` admits replies from); only kept in that mode. */
  contacted: Set<number> | undefined;
  /** The upstream socket's kernel drop count as last seen (SO_RXQ_OVFL). */
  drops: number;
  /** The remote this client last sent to, and its key: most datagrams each way concern it. */
  remote: SocketAddress | undefined;
  remoteKey: number;
  /** The relay's bookkeeping while it lays out one receive batch: this session's datagrams in it, and where its run starts. */
  batchCount: number;
  batchStart: number;
  /** GSO sends upstream allowed; cleared for good when the kernel refuses one. */
  gso: boolean;
  /** Where this session's replies go: the poller hands the session to {@link SessionTableOptions.onUpstreamReadable}, which finds its relay here. */
  readonly replies: ReplyPath;
}

/** Options of the table. */
export interface SessionTableOptions {
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly mark?: number;
  /** SO_RCVBUF(FORCE) of each upstream socket, bytes. */
  readonly receiveBuffer?: number;
  /** Registered with the poller for every upstream socket, the session as its context. */
  readonly onUpstreamReadable: ReadyHandler<Session>;
  /** The reply path every session of this table belongs to. */
  readonly replies: ReplyPath;
  readonly onExpired: () => void;
  readonly onEvicted: () => void;
  /** Out of file descriptors (EMFILE/ENFILE, a low `ulimit -n`): a session was evicted to make room. */
  readonly onOutOfDescriptors: (code: string) => void;
  /** Called just before a session's socket closes (expired, evicted, replaced or table closed): last reads of it. */
  readonly onClosing?: (s: Session) => void;
  /** UDP_GRO on every upstream socket (replies of a bulk flow read in coalesced batches). */
  readonly gro?: boolean;
  /** The kernel refused UDP_GRO (errno name): the table stops asking. */
  readonly onGroRefused?: (code: string) => void;
  /** Upstream sockets read each reply's class / TTL (IP_RECVTOS, IP_RECVTTL and their IPv6 twins). */
  readonly readClass?: boolean;
  readonly readTtl?: boolean;
}

/** The sessions of one relay, by key. */
export interface SessionTable {
  /** The session stored under `key`, if any; the caller confirms it is the same client. */
  lookup(key: number): Session | undefined;
  /** Mark a session active now (moves it toward the recent end of the LRU order). */
  touch(s: Session, now: number): void;
  /**
   * Create the session of `client` and its upstream socket, evicting the least recently used one past
   * the cap or when the process is out of descriptors (and replacing a colliding key).
   * @throws {SystemError} when the upstream socket cannot be opened even so.
   */
  create(client: SocketAddress, key: number, now: number): Session;
  readonly size: number;
  /**
   * New limits from now on (a reload): sessions idle longer than `idleTimeoutMs` go at the next
   * sweep; above `maxSessions` the least recently used are evicted at once.
   */
  setLimits(idleTimeoutMs: number, maxSessions: number): void;
  /** Visit every session (not on the per-datagram path). */
  forEach(f: (s: Session) => void): void;
  close(): void;
}

/**
 * Create the table.
 * @example const table = createSessionTable({ idleTimeoutMs: 120_000, maxSessions: 65536, … });
 */
export function createSessionTable(o: SessionTableOptions): SessionTable {
  // Map order ≈ recency (see @anysrc/core recency): the front is the least recently used.
  const sessions = new Map<number, Session>();
  const poller = getPoller();

  const release = (s: Session) => {
    o.onClosing?.(s);
    sessions.delete(s.key);
    poller.remove(s.fd);
    closeFd(s.fd);
  };

  let idleTimeoutMs = o.idleTimeoutMs;
  let maxSessions = o.maxSessions;
  const sweep = () =>
    sweepIdle(sessions, Date.now(), idleTimeoutMs, (_key, s) => {
      release(s);
      o.onExpired();
    });
  const startSweeping = () => {
    const t = setInterval(sweep, Math.max(100, Math.min(idleTimeoutMs / 4, 5000)));
    unrefTimer(t);
    return t;
  };
  let timer = startSweeping();

  const evictOldest = () => {
    release(sessions.values().next().value as Session);
    o.onEvicted();
  };
  const socketOptions = {
    receiveErrors: true,
    receiveDropCount: true,
    receiveTrafficClass: o.readClass === true,
    receiveHopLimit: o.readTtl === true,
    ...(o.mark !== undefined ? { mark: o.mark } : {}),
    ...(o.receiveBuffer !== undefined ? { receiveBuffer: o.receiveBuffer } : {}),
  } as const;
  // Out of descriptors, the oldest session gives its socket up (while there is one).
  const makeRoom = (code: string) => {
    if (sessions.size === 0) return false;
    o.onOutOfDescriptors(code);
    evictOldest();
    return true;
  };

  let gro = o.gro === true;

  return {
    lookup: (key) => sessions.get(key),
    touch: (s, now) => touchRecency(sessions, s.key, s, now),
    create(client, key, now) {
      const found = sessions.get(key);
      if (found) release(found); // an IPv6 key collision: the newcomer takes the slot
      if (sessions.size >= maxSessions) evictOldest();
      const fd = openUdpSocketMakingRoom({ family: client.family, ...socketOptions }, makeRoom);
      if (gro) {
        const e = enableUdpGro(fd);
        if (e !== 0) {
          gro = false;
          o.onGroRefused?.(errnoName(e));
        }
      }
      const s: Session = {
        family: client.family,
        ip: client.ip.slice(),
        port: client.port,
        key,
        fd,
        lastActive: now,
        lastTouched: now,
        contacted: undefined,
        drops: 0,
        remote: undefined,
        remoteKey: 0,
        batchCount: 0,
        batchStart: 0,
        gso: true,
        replies: o.replies,
      };
      poller.add(fd, READABLE, o.onUpstreamReadable, s);
      sessions.set(key, s);
      return s;
    },
    get size() {
      return sessions.size;
    },
    setLimits(idle, max) {
      maxSessions = max;
      while (sessions.size > maxSessions) evictOldest();
      if (idle === idleTimeoutMs) return;
      idleTimeoutMs = idle;
      clearInterval(timer);
      timer = startSweeping();
    },
    forEach(f) {
      for (const s of sessions.values()) f(s);
    },
    close() {
      clearInterval(timer);
      for (const s of [...sessions.values()]) release(s);
    },
  };
}
