/**
 * The packet backend: spoofed datagrams as frames through one AF_PACKET socket (SOCK_DGRAM: the
 * kernel writes the link-layer header from each message's sockaddr_ll), past the routing,
 * netfilter and qdisc layers (PACKET_QDISC_BYPASS) — the cheapest way into a device the kernel
 * offers a program that builds its own IP headers. Every header and checksum is ours (the raw
 * backend's emit step, with the next hop's sockaddr_ll as each message's destination and the IPv4
 * header checksum computed, which nobody fills on this path), up to `batch` frames per sendmmsg,
 * fragmented here above the MTU. Next hops come from rtnetlink (next_hops.ts); a datagram whose
 * next hop is not known goes through a raw socket instead (counted as `viaRaw`): never lost, never
 * queued waiting for a neighbour.
 *
 * What it skips (use raw where it matters): netfilter OUTPUT/POSTROUTING (no SNAT, no conntrack
 * entry), policy routing beyond what the route query with the mark returns, the qdisc (no tc
 * shaping; packet taps do not see bypassed frames).
 * @module
 */
import { ALL_CHECKSUMS, countReported, createPacketFields, createTransportStats, type Datagram, type Transport, UDP_FRAGMENT_HEADER_MAX } from "@anysrc/core";
import {
  closeFd,
  createQueuedTransport,
  createRecvRing,
  createSendRing,
  openPacketSocket,
  openRawSocket,
  queuedErrorKind,
  type RecvRing,
  SOCKADDR_LL_SIZE,
} from "@anysrc/sys";
import { createRawEmit, createRouteMtus, type FamilySocket, type RouteMtus } from "@anysrc/transport-raw";
import { createNextHops, type NextHops, type NextHopStats } from "./next_hops.ts";

/** Options of the packet transport. */
export interface PacketTransportOptions {
  /** The mark routes are looked up with (SO_MARK of the raw sockets too): the relay's upstream mark. */
  readonly mark?: number;
  /** SO_SNDBUF in bytes. */
  readonly sendBuffer?: number;
  /** Datagrams per sendmmsg; default 32. */
  readonly batch?: number;
  /** Datagrams held while a socket is not writable; past it they are dropped ("queue-full"). Default 4096. */
  readonly queueLimit?: number;
  /** SO_BROADCAST on the raw sockets (broadcast destinations always go through them). */
  readonly broadcast?: boolean;
  /** TTL / hop limit of emitted packets; default 64. */
  readonly ttl?: number;
  readonly closeTimeoutMs?: number;
  /** PACKET_QDISC_BYPASS; default true. */
  readonly qdiscBypass?: boolean;
}

/** The packet transport: the contract, plus what its next-hop cache did. */
export interface PacketTransport extends Transport {
  readonly kind: "packet";
  /** Datagrams sent through the raw socket because their next hop was not known (yet). */
  readonly viaRaw: number;
  /** Route queries made and cache invalidations by change notifications. */
  readonly nextHops: Readonly<NextHopStats>;
  /** The kernel granted PACKET_QDISC_BYPASS. */
  readonly qdiscBypass: boolean;
}

/** A lane: the AF_PACKET socket for one family's frames, or that family's raw socket (`kernel`: the kernel routes). */
interface PacketLane extends FamilySocket {
  readonly kernel: boolean;
}

/** The MTU of each destination as its next hop says (raw's route MTUs for what the kernel routes). */
function nextHopMtus(hops: NextHops, fallback: RouteMtus): RouteMtus {
  return {
    of: (dst) => hops.of(dst)?.mtu ?? hops.previous(dst)?.mtu ?? fallback.of(dst),
    expire: (now) => fallback.expire(now),
    relearn(dst) {
      const before = hops.of(dst)?.mtu ?? 0;
      hops.clear();
      return (hops.of(dst)?.mtu ?? before) < before;
    },
  };
}

/**
 * Open a packet transport. Sockets open on first use. Needs CAP_NET_RAW.
 * @example const t = createPacketTransport({ mark: 2 }); t.send({ src, dst, payload });
 */
export function createPacketTransport(options: PacketTransportOptions = {}): PacketTransport {
  const batch = options.batch ?? 32;
  // viaRaw rides in the stats record, so a relay's stats lines and sums carry it like any counter.
  const stats = Object.assign(createTransportStats(), { viaRaw: 0 });
  const hops = createNextHops(options.mark);
  const routeMtus = createRouteMtus(undefined);
  let errorRing: RecvRing | undefined;
  const takeErrors = (fd: number) => {
    errorRing ??= createRecvRing({ slots: 8, slotSize: 256 });
    errorRing.receiveErrors(fd, (e) => countReported(stats, queuedErrorKind(e)));
  };
  // One ID sequence per destination for both paths (a fragment train must not share its ID with
  // another): the raw socket rewrites the IPv4 header checksum computed here, which costs nothing else.
  const common = { batch, stats, takeErrors, fields: createPacketFields(options.ttl ?? 64, ALL_CHECKSUMS) };
  const framed = createRawEmit({
    ...common,
    ring: createSendRing({ slots: batch, headerSize: UDP_FRAGMENT_HEADER_MAX }),
    mtus: nextHopMtus(hops, routeMtus),
    // A datagram grouped under a next hop keeps it if the cache was emptied while it waited in a queue.
    destination: (ring, m, d) => ring.setDestinationAt(m, (hops.of(d.dst) ?? hops.previous(d.dst))?.address ?? 0, SOCKADDR_LL_SIZE),
  });
  const routed = createRawEmit({
    ...common,
    ring: createSendRing({ slots: batch, headerSize: UDP_FRAGMENT_HEADER_MAX }),
    mtus: routeMtus,
  });
  const lanes = createLanes(options, hops);
  const engine = createQueuedTransport<PacketLane>({
    kind: "packet",
    label: "packet transport",
    stats,
    queueLimit: options.queueLimit ?? 4096,
    closeTimeoutMs: options.closeTimeoutMs ?? 2000,
    sameLane: (a, b) => a.src.family === b.src.family && (hops.of(a.dst) === undefined) === (hops.of(b.dst) === undefined),
    laneFor: lanes.laneFor,
    emit(lane, run, from) {
      if (!lane.kernel) return framed(lane, run, from);
      const done = routed(lane, run, from);
      stats.viaRaw += done - from;
      return done;
    },
    release() {
      hops.close();
      lanes.close();
    },
  });
  return {
    ...engine.transport,
    kind: "packet",
    get viaRaw() {
      return stats.viaRaw;
    },
    nextHops: hops.stats,
    get qdiscBypass() {
      return lanes.qdiscBypass;
    },
  };
}

/**
 * The four lanes, each opened on first use: the AF_PACKET socket (one for both families' frames) and
 * a raw socket per family for what the kernel must route.
 */
function createLanes(options: PacketTransportOptions, hops: NextHops): { laneFor(d: Datagram): PacketLane; close(): void; readonly qdiscBypass: boolean } {
  const lanes: (PacketLane | undefined)[] = [undefined, undefined, undefined, undefined];
  const sendBuffer = options.sendBuffer !== undefined ? { sendBuffer: options.sendBuffer } : {};
  let packetFd = -1;
  let bypass = false;
  const openFd = (family: 4 | 6, kernel: boolean): number => {
    if (kernel) {
      return openRawSocket({
        family,
        ...(options.mark !== undefined ? { mark: options.mark } : {}),
        ...sendBuffer,
        receiveErrors: true,
        broadcast: options.broadcast === true,
      });
    }
    if (packetFd < 0) {
      const opened = openPacketSocket({ qdiscBypass: options.qdiscBypass !== false, ...sendBuffer });
      packetFd = opened.fd;
      bypass = opened.qdiscBypass;
    }
    return packetFd;
  };
  return {
    laneFor(d) {
      const family = d.src.family;
      const kernel = hops.of(d.dst) === undefined;
      const index = (family === 4 ? 0 : 1) + (kernel ? 2 : 0);
      return lanes[index] ??= { fd: openFd(family, kernel), family, kernel };
    },
    close() {
      const closed = new Set<number>();
      for (const l of lanes) {
        if (l && !closed.has(l.fd)) {
          closed.add(l.fd);
          closeFd(l.fd);
        }
      }
    },
    get qdiscBypass() {
      return bypass;
    },
  };
}
