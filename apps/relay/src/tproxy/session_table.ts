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
   * the cap or when the process is out of descriptors (and replacing a colliding key). The session
   * keeps `client.ip` as it is: an address decoded for it (decodeSockaddr), not a view of a ring.
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

/** The table's sessions, limits and sweep timer. */
interface TableState {
  readonly o: SessionTableOptions;
  /** Map order ≈ recency (see @anysrc/core recency): the front is the least recently used. */
  readonly sessions: Map<number, Session>;
  readonly poller: ReturnType<typeof getPoller>;
  readonly socketOptions: ReturnType<typeof upstreamSocketOptions>;
  /** Out of descriptors, the oldest session gives its socket up (while there is one). */
  readonly makeRoom: (code: string) => boolean;
  idleTimeoutMs: number;
  maxSessions: number;
  timer: ReturnType<typeof setInterval> | undefined;
  /** UDP_GRO still asked for (cleared when the kernel refuses it). */
  gro: boolean;
}

/**
 * Create the table.
 * @example const table = createSessionTable({ idleTimeoutMs: 120_000, maxSessions: 65536, … });
 */
export function createSessionTable(o: SessionTableOptions): SessionTable {
  const st: TableState = {
    o,
    sessions: new Map(),
    poller: getPoller(),
    socketOptions: upstreamSocketOptions(o),
    makeRoom: (code) => {
      if (st.sessions.size === 0) return false;
      o.onOutOfDescriptors(code);
      evictOldest(st);
      return true;
    },
    idleTimeoutMs: o.idleTimeoutMs,
    maxSessions: o.maxSessions,
    timer: undefined,
    gro: o.gro === true,
  };
  startSweeping(st);
  const sessions = st.sessions;
  return {
    lookup: (key) => sessions.get(key),
    touch: (s, now) => touchRecency(sessions, s.key, s, now),
    create: (client, key, now) => createSession(st, client, key, now),
    get size() {
      return sessions.size;
    },
    setLimits(idle, max) {
      st.maxSessions = max;
      while (sessions.size > st.maxSessions) evictOldest(st);
      if (idle === st.idleTimeoutMs) return;
      st.idleTimeoutMs = idle;
      startSweeping(st);
    },
    forEach(f) {
      for (const s of sessions.values()) f(s);
    },
    close() {
      clearInterval(st.timer);
      for (const s of [...sessions.values()]) release(st, s);
    },
  };
}

function release(st: TableState, s: Session): void {
  st.o.onClosing?.(s);
  st.sessions.delete(s.key);
  st.poller.remove(s.fd);
  closeFd(s.fd);
}

function evictOldest(st: TableState): void {
  release(st, st.sessions.values().next().value as Session);
  st.o.onEvicted();
}

/** (Re)start the idle sweep at a period that suits the idle timeout. */
function startSweeping(st: TableState): void {
  if (st.timer !== undefined) clearInterval(st.timer);
  const sweep = () =>
    sweepIdle(st.sessions, Date.now(), st.idleTimeoutMs, (_key, s) => {
      release(st, s);
      st.o.onExpired();
    });
  st.timer = setInterval(sweep, Math.max(100, Math.min(st.idleTimeoutMs / 4, 5000)));
  unrefTimer(st.timer);
}

function upstreamSocketOptions(o: SessionTableOptions) {
  return {
    receiveErrors: true,
    receiveDropCount: true,
    receiveTrafficClass: o.readClass === true,
    receiveHopLimit: o.readTtl === true,
    ...(o.mark !== undefined ? { mark: o.mark } : {}),
    ...(o.receiveBuffer !== undefined ? { receiveBuffer: o.receiveBuffer } : {}),
  } as const;
}

function createSession(st: TableState, client: SocketAddress, key: number, now: number): Session {
  const { o, sessions } = st;
  const found = sessions.get(key);
  if (found) release(st, found); // an IPv6 key collision: the newcomer takes the slot
  if (sessions.size >= st.maxSessions) evictOldest(st);
  const fd = openUdpSocketMakingRoom({ family: client.family, ...st.socketOptions }, st.makeRoom);
  if (st.gro) {
    const e = enableUdpGro(fd);
    if (e !== 0) {
      st.gro = false;
      o.onGroRefused?.(errnoName(e));
    }
  }
  const s: Session = {
    family: client.family,
    ip: client.ip,
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
  st.poller.add(fd, READABLE, o.onUpstreamReadable, s);
  sessions.set(key, s);
  return s;
}
