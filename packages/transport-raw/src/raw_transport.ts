/**
 * The raw backend: one IPPROTO_RAW socket per family; every IP and UDP header is ours (built by
 * @anysrc/core into a per-message header slot), the payload goes out from where it lies as a second
 * iovec, and up to `batch` datagrams leave in one sendmmsg. IP_HDRINCL never fragments (it fails with
 * EMSGSIZE above the MTU), so datagrams larger than the MTU are fragmented here — without a copy:
 * each fragment is its headers in a slot and its slice of the payload where it lies.
 * @module
 */
import {
  countReported,
  createPacketFields,
  createTransportStats,
  type Datagram,
  RAW_SOCKET_CHECKSUMS,
  type Transport,
  UDP_FRAGMENT_HEADER_MAX,
} from "@anysrc/core";
import { closeFd, createQueuedTransport, createRecvRing, createSendRing, getInterfaceMtu, openRawSocket, queuedErrorKind, type RecvRing } from "@anysrc/sys";
import { createRawEmit, type FamilySocket } from "./raw_emit.ts";
import { createRouteMtus } from "./route_mtus.ts";

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

/**
 * Open a raw transport. Sockets are opened on first use of each family. Needs CAP_NET_RAW.
 * @example const t = createRawTransport({ mtu: 1500 }); t.send({ src, dst, payload });
 */
export function createRawTransport(options: RawTransportOptions = {}): RawTransport {
  const fixedMtu = options.mtu ?? (options.device ? getInterfaceMtu(options.device) : undefined);
  const mtus = createRouteMtus(fixedMtu);
  const batch = options.batch ?? 32;
  const stats = createTransportStats();
  const sockets: (FamilySocket | undefined)[] = [undefined, undefined];
  let errorRing: RecvRing | undefined;
  const emit = createRawEmit({
    ring: createSendRing({ slots: batch, headerSize: UDP_FRAGMENT_HEADER_MAX }),
    batch,
    // IPv4 packets leave with DF clear (an ICMP "fragmentation needed" would go to the spoofed source,
    // not to us), so any hop may fragment them: each gets an ID unique per destination (RFC 6864), as
    // the kernel gives its own, and a fragment train shares one.
    fields: createPacketFields(options.ttl ?? 64, RAW_SOCKET_CHECKSUMS),
    mtus,
    stats,
    // What the kernel queued on the socket (IP_RECVERR: a local EMSGSIZE with the MTU), counted by kind.
    takeErrors(fd) {
      errorRing ??= createRecvRing({ slots: 8, slotSize: 256 });
      errorRing.receiveErrors(fd, (e) => countReported(stats, queuedErrorKind(e)));
    },
  });
  let lastExpiry = 0;

  const socketFor = (d: Datagram): FamilySocket => {
    const family = d.src.family;
    // Once per batch is enough for the MTU clock; the first datagram of each group comes here.
    const now = Date.now();
    if (now !== lastExpiry) mtus.expire(lastExpiry = now);
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
      s = { fd, family };
      sockets[index] = s;
    }
    return s;
  };

  const engine = createQueuedTransport<FamilySocket>({
    kind: "raw",
    label: "raw transport",
    stats,
    queueLimit: options.queueLimit ?? 4096,
    closeTimeoutMs: options.closeTimeoutMs ?? 2000,
    // One socket per family: a batch is at most two runs.
    sameLane: (a, b) => a.src.family === b.src.family,
    laneFor: socketFor,
    emit,
    release() {
      for (const s of sockets) if (s) closeFd(s.fd);
    },
  });
  return { ...engine.transport, kind: "raw", mtu: fixedMtu };
}
