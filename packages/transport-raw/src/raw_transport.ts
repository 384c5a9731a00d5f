/**
 * The raw backend: one IPPROTO_RAW socket per family; every IP and UDP header is ours (built by
 * @anysrc/core into a per-message header slot), the payload goes out from where it lies as a second
 * iovec, and up to `batch` datagrams leave in one sendmmsg. IP_HDRINCL never fragments (it fails with
 * EMSGSIZE above the MTU), so datagrams larger than the MTU are fragmented here — without a copy:
 * each fragment is its headers in a slot and its slice of the payload where it lies.
 * @module
 */
import {
  addressKeyOf,
  buildUdpHeaders,
  buildUdpPacket,
  countDrop,
  countError,
  countReported,
  createPacketFields,
  createSendQueue,
  createTransportStats,
  type Datagram,
  errnoName,
  fragmentPacket,
  RAW_SOCKET_CHECKSUMS,
  sendOneThrough,
  type SocketAddress,
  SystemError,
  type Transport,
  TransportError,
  type TransportStats,
  UDP_FRAGMENT_HEADER_MAX,
  udpChecksumFor,
  udpFragmentCount,
  udpHeadersLength,
  validateDatagram,
  writeUdpFragment,
} from "@anysrc/core";
import {
  closeFd,
  createDrainWaiter,
  createRecvRing,
  createSendRing,
  getInterfaceMtu,
  getPoller,
  linux,
  openRawSocket,
  queuedErrorKind,
  type RecvRing,
  routeMtu,
  WRITABLE,
} from "@anysrc/sys";

/** Options of the raw transport. */
export interface RawTransportOptions {
  /**
   * Largest packet sent unfragmented. Default: `device`'s MTU when a device is given, else the MTU of
   * the route to each destination (asked of the kernel once per destination and remembered), else 1500.
   */
  readonly mtu?: number;
  /** SO_MARK on the raw sockets. */
  readonly mark?: number;
  /** SO_SNDBUF in bytes. */
  readonly sendBuffer?: number;
  /** SO_BINDTODEVICE: send only through this interface. */
  readonly device?: string;
  /** Datagrams per sendmmsg; default 32. */
  readonly batch?: number;
  /** Datagrams held while the socket is not writable; past it they are dropped ("queue-full"). Default 4096. */
  readonly queueLimit?: number;
  /** SO_BROADCAST: allow broadcast destinations (a forwarder's receiver on 255.255.255.255 or a subnet's broadcast). */
  readonly broadcast?: boolean;
  /** TTL / hop limit of emitted packets; default 64. */
  readonly ttl?: number;
  /** How long `close()` waits for queued datagrams to drain; default 2000 ms. */
  readonly closeTimeoutMs?: number;
}

/** A raw transport (the common contract plus the fixed MTU it fragments at, if one was set). */
export interface RawTransport extends Transport {
  readonly kind: "raw";
  /** The fixed MTU, or undefined when it follows each destination's route. */
  readonly mtu: number | undefined;
}

/** Route MTUs remembered per destination IP; past this many the cache starts over. */
const MAX_ROUTE_MTUS = 65536;
/** How long a learned route MTU is trusted before the kernel is asked again (its own PMTU entries expire after 600 s). */
const MTU_RECHECK_MS = 30_000;

interface FamilySocket {
  readonly fd: number;
  readonly family: 4 | 6;
  waiting: boolean;
}

/**
 * Open a raw transport. Sockets are opened on first use of each family. Needs CAP_NET_RAW.
 * @example const t = createRawTransport({ mtu: 1500 }); t.send({ src, dst, payload });
 */
export function createRawTransport(options: RawTransportOptions = {}): RawTransport {
  const fixedMtu = options.mtu ?? (options.device ? getInterfaceMtu(options.device) : undefined);
  const routeMtus = new Map<number, number>();
  // Consecutive datagrams mostly share a destination record (a session's replies): the last answer
  // is remembered by identity, sparing a key hash and a Map lookup per datagram.
  let lastDst: SocketAddress | undefined;
  let lastMtu = 0;
  // Learned MTUs are forgotten every MTU_RECHECK_MS (an MTU that grew back is found again), and one
  // is asked again at once when the kernel refuses a packet as too big (EMSGSIZE: the route shrank).
  let mtusSince = Date.now();
  const keyOfIp = (dst: SocketAddress) => addressKeyOf(dst.ip, 0, dst.family === 4 ? 4 : 16, 0);
  const mtuFor = (dst: SocketAddress): number => {
    if (fixedMtu !== undefined) return fixedMtu;
    if (dst === lastDst) return lastMtu;
    const key = keyOfIp(dst);
    let m = routeMtus.get(key);
    if (m === undefined) {
      if (routeMtus.size >= MAX_ROUTE_MTUS) routeMtus.clear();
      m = routeMtu(dst) ?? 1500;
      routeMtus.set(key, m);
    }
    lastDst = dst;
    lastMtu = m;
    return m;
  };
  const expireMtus = (now: number) => {
    if (now - mtusSince < MTU_RECHECK_MS) return;
    mtusSince = now;
    routeMtus.clear();
    lastDst = undefined;
  };
  /** Ask the kernel again for `dst`'s MTU after an EMSGSIZE; true when it is now smaller (worth a retry). */
  const relearnMtu = (dst: SocketAddress): boolean => {
    if (fixedMtu !== undefined) return false;
    const before = mtuFor(dst);
    routeMtus.delete(keyOfIp(dst));
    lastDst = undefined;
    return mtuFor(dst) < before;
  };
  let errorRing: RecvRing | undefined;
  /** Read what the kernel queued on `fd` (IP_RECVERR: a local EMSGSIZE with the MTU), counted by kind. */
  const takeErrors = (fd: number) => {
    errorRing ??= createRecvRing({ slots: 8, slotSize: 256 });
    errorRing.receiveErrors(fd, (e) => countReported(stats, queuedErrorKind(e)));
  };
  const batch = options.batch ?? 32;
  const stats: TransportStats = createTransportStats();
  const queue = createSendQueue(options.queueLimit ?? 4096);
  const ring = createSendRing({ slots: batch, headerSize: UDP_FRAGMENT_HEADER_MAX });
  const poller = getPoller();
  // IPv4 packets leave with DF clear (an ICMP "fragmentation needed" would go to the spoofed source,
  // not to us), so any hop may fragment them: each gets an ID unique per destination (RFC 6864), as
  // the kernel gives its own, and a fragment train shares one.
  const fields = createPacketFields(options.ttl ?? 64, RAW_SOCKET_CHECKSUMS);
  let scratch = new Uint8Array(0);
  const sockets: (FamilySocket | undefined)[] = [undefined, undefined];
  let closed = false;
  const drain = createDrainWaiter();

  const socketFor = (family: 4 | 6): FamilySocket => {
    const index = family === 4 ? 0 : 1;
    let s = sockets[index];
    if (!s) {
      const fd = openRawSocket({
        family,
        ...(options.mark !== undefined ? { mark: options.mark } : {}),
        ...(options.sendBuffer !== undefined ? { sendBuffer: options.sendBuffer } : {}),
        ...(options.device !== undefined ? { device: options.device } : {}),
        receiveErrors: true,
        broadcast: options.broadcast === true,
      });
      s = { fd, family, waiting: false };
      sockets[index] = s;
    }
    return s;
  };

  /** Fragments of a datagram as whole packets (header checksum left to the kernel): the tiny-MTU path only. */
  const fragmentsOf = (d: Datagram, mtu: number): Uint8Array[] => {
    const need = udpHeadersLength(d.src.family) + d.payload.length;
    if (scratch.length < need) scratch = new Uint8Array(need);
    const f = fields.of(d);
    const n = buildUdpPacket(scratch, 0, d.src, d.dst, d.payload, f);
    return fragmentPacket(scratch.subarray(0, n), mtu, f.identification, "zero");
  };

  // Per ring fill, reused: which datagram each message belongs to; a fragment's payload slice.
  const owners: number[] = [];
  const slice = new Int32Array(2);

  /**
   * Emit `ds[from..]` now; returns the index of the first datagram not handed to the kernel
   * (ds.length when all were), stopping at EAGAIN/ENOBUFS.
   */
  const emit = (ds: readonly Datagram[], from: number): number => {
    let i = from;
    while (i < ds.length) {
      const family = ds[i]!.src.family;
      const s = socketFor(family);
      let m = 0;
      owners.length = 0;
      let j = i;
      // Fill the ring with consecutive datagrams of one family (one socket per sendmmsg).
      while (j < ds.length && m < batch && ds[j]!.src.family === family) {
        const d = ds[j]!;
        const mtu = mtuFor(d.dst);
        if (udpHeadersLength(family) + d.payload.length <= mtu) {
          const h = buildUdpHeaders(ring.headers[m]!, 0, d.src, d.dst, d.payload, fields.of(d));
          // sin6_port must be 0 on IPv6 raw sockets: the kernel reads it as a protocol number.
          ring.setDestination(m, d.dst, 0);
          ring.setHeaderAndPayload(m, h, ring.addressOf(d.payload), d.payload.length);
          owners[m++] = j++;
          continue;
        }
        const count = udpFragmentCount(family, d.payload.length, mtu);
        if (m > 0 && m + count > batch) break; // its own sendmmsg next time round
        if (count > batch) {
          // More fragments than ring slots (tiny MTU): send this one datagram in several calls.
          const r = sendLarge(s, d, fragmentsOf(d, mtu));
          if (r === "wait") return j;
          j++;
          if (m === 0) i = j;
          break;
        }
        // Each fragment: its headers in the slot, then its slice of the payload where it lies.
        const f = fields.of(d);
        const sum = udpChecksumFor(d.src, d.dst, d.payload);
        const at = ring.addressOf(d.payload);
        for (let k = 0; k < count; k++) {
          const h = writeUdpFragment(ring.headers[m]!, 0, d.src, d.dst, d.payload, f, mtu, k, f.identification, sum, slice);
          ring.setDestination(m, d.dst, 0);
          ring.setHeaderAndPayload(m, h, at + slice[0]!, slice[1]! - slice[0]!);
          owners[m++] = j;
        }
        j++;
      }
      if (m === 0) continue;
      const n = ring.send(s.fd, 0, m);
      if (n === m) {
        account(ds, owners, 0, m);
        i = j;
        continue;
      }
      if (n > 0) {
        // Partial: everything before the first unsent message's datagram went out whole.
        const firstUnsent = owners[n]!;
        let whole = 0;
        while (whole < n && owners[whole]! < firstUnsent) whole++;
        account(ds, owners, 0, whole);
        i = firstUnsent;
        continue;
      }
      const e = -n;
      countError(stats, errnoName(e));
      if (e === linux.EAGAIN || e === linux.ENOBUFS) return owners[0]!;
      if (e === linux.EMSGSIZE) {
        takeErrors(s.fd);
        // The route's MTU shrank under us (a device's MTU lowered): fragment to the new one and go again.
        if (relearnMtu(ds[owners[0]!]!.dst)) {
          i = owners[0]!;
          continue;
        }
      }
      // Any other error belongs to the first message's datagram: drop it, go on with the rest.
      countDrop(stats, "send-error");
      i = owners[0]! + 1;
    }
    return ds.length;
  };

  const sendLarge = (s: FamilySocket, d: Datagram, frags: Uint8Array[]): "sent" | "wait" | "dropped" => {
    for (let k = 0; k < frags.length;) {
      const m = Math.min(batch, frags.length - k);
      for (let x = 0; x < m; x++) {
        ring.setDestination(x, d.dst, 0);
        ring.setSingle(x, ring.addressOf(frags[k + x]!), frags[k + x]!.length);
      }
      const n = ring.send(s.fd, 0, m);
      if (n > 0) {
        k += n;
        stats.batches++;
        continue;
      }
      countError(stats, errnoName(-n));
      if (-n === linux.EAGAIN || -n === linux.ENOBUFS) return "wait";
      countDrop(stats, "send-error");
      return "dropped";
    }
    stats.sent++;
    stats.bytes += d.payload.length;
    stats.fragments += frags.length;
    return "sent";
  };

  const account = (ds: readonly Datagram[], owners: readonly number[], from: number, to: number) => {
    stats.batches++;
    let last = -1;
    for (let k = from; k < to; k++) {
      const o = owners[k]!;
      if (o === last) {
        stats.fragments++;
        continue;
      }
      if (k + 1 < to && owners[k + 1] === o) stats.fragments++;
      last = o;
      stats.sent++;
      stats.bytes += ds[o]!.payload.length;
    }
  };

  const onWritable = () => {
    while (queue.length > 0) {
      const chunk = queue.head(batch);
      const done = emit(chunk, 0);
      queue.drop(done);
      stats.queued = queue.length;
      if (done < chunk.length) return; // still not writable: stay registered
    }
    for (const s of sockets) {
      if (s?.waiting) {
        s.waiting = false;
        poller.remove(s.fd);
      }
    }
    drain.drained();
  };

  const waitForWritable = (family: 4 | 6) => {
    const s = socketFor(family);
    if (s.waiting) return;
    s.waiting = true;
    poller.add(s.fd, WRITABLE, onWritable);
  };

  const enqueue = (ds: readonly Datagram[], from: number) => {
    for (let k = from; k < ds.length; k++) {
      if (!queue.push(ds[k]!)) countDrop(stats, "queue-full");
      else waitForWritable(ds[k]!.src.family);
    }
    stats.queued = queue.length;
  };

  const sendBatch = (ds: readonly Datagram[]) => {
    if (closed) throw new TransportError("closed", "raw transport is closed");
    for (const d of ds) validateDatagram(d);
    expireMtus(Date.now());
    // Open each family's socket up front (a cheap array check once they exist): a failure (EPERM
    // without CAP_NET_RAW, EMFILE) then drops the whole batch, counted, before anything is sent.
    for (const d of ds) {
      if (sockets[d.src.family === 4 ? 0 : 1]) continue;
      try {
        socketFor(d.src.family);
      } catch (e) {
        if (!(e instanceof SystemError)) throw e;
        countError(stats, e.code);
        countDrop(stats, "send-error", ds.length);
        throw e;
      }
    }
    if (queue.length > 0) return enqueue(ds, 0); // keep order behind what is already waiting
    const done = emit(ds, 0);
    if (done < ds.length) enqueue(ds, done);
  };

  return {
    kind: "raw",
    mtu: fixedMtu,
    stats,
    send: sendOneThrough(sendBatch),
    sendBatch,
    async close() {
      if (closed) return;
      closed = true;
      await drain.wait(queue.length > 0, options.closeTimeoutMs ?? 2000);
      const left = queue.clear();
      if (left > 0) countDrop(stats, "closed", left);
      stats.queued = 0;
      for (const s of sockets) {
        if (!s) continue;
        if (s.waiting) poller.remove(s.fd);
        closeFd(s.fd);
      }
    },
  };
}
