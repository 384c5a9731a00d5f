/**
 * Where each destination's frames go, without the routing layer: the kernel is asked once per
 * destination over rtnetlink (the route with the sender's mark → output device, gateway or
 * on-link, MTU; the device's link type; the next hop's neighbour entry → hardware address) and the
 * answer is kept as a ready sockaddr_ll. A route, neighbour or link notification forgets everything
 * at once, so a neighbour's new MAC, a route moved to another device or a device going down counts
 * from the next datagram. A destination the kernel must handle itself — its next hop not resolved
 * yet, a route that is not unicast — has no next hop here: the transport sends it through the raw
 * socket, which makes the kernel resolve it, and asks again shortly.
 * @module
 */
import { addressKeyOf, sameIp, type SocketAddress } from "@anysrc/core";
import {
  adapter,
  ARPHRD_NONE,
  encodeLinkAddress,
  getPoller,
  type LinkAnswer,
  NUD_USABLE,
  openRouteMonitor,
  openRouteQueries,
  READABLE,
  type RouteQueries,
  RTN_UNICAST,
  SOCKADDR_LL_SIZE,
} from "@anysrc/sys";

/** A destination's next hop: its sockaddr_ll (native address, in the cache's slab) and the MTU to fragment at. */
export interface NextHop {
  readonly ip: Uint8Array;
  readonly address: number;
  readonly mtu: number;
}

/** What the cache has done, for stats and tests. */
export interface NextHopStats {
  /** Route (and neighbour) queries made. */
  lookups: number;
  /** Times a change notification emptied the cache. */
  invalidations: number;
}

/** The next-hop cache. */
export interface NextHops {
  /** `dst`'s next hop, or undefined: the kernel must route this one (not resolved yet, not unicast, no route). */
  of(dst: SocketAddress): NextHop | undefined;
  /**
   * The hop `dst` had before the last invalidation: for a datagram grouped under a next hop and sent
   * after the cache was emptied (it waited in a queue), rather than a hop the kernel may now refuse.
   */
  previous(dst: SocketAddress): NextHop | undefined;
  /** Forget everything now. */
  clear(): void;
  readonly stats: NextHopStats;
  close(): void;
}

/** Bytes per sockaddr_ll in the slab: its 20, kept 8-aligned. */
const SLOT_BYTES = (SOCKADDR_LL_SIZE + 7) & ~7;
/** Destinations per slab; past it the cache starts over. */
const SLAB_ENTRIES = 4096;
/** How soon a destination without a usable next hop is asked again: the raw send meanwhile makes the kernel resolve it. */
const RETRY_MS = 50;
/** A link-layer address-less device (tun, WireGuard) has none to give. */
const NO_ADDRESS = new Uint8Array(0);

/** One generation of the cache: entries and the slab their sockaddr_ll's live in (one large buffer: stable native addresses). */
interface Generation {
  readonly hops: Map<number, NextHop | number>;
  readonly slab: Uint8Array;
  readonly base: number;
  used: number;
}

const newGeneration = (): Generation => {
  const slab = new Uint8Array(SLAB_ENTRIES * SLOT_BYTES);
  return { hops: new Map(), slab, base: adapter.addressOf(slab), used: 0 };
};

/**
 * Open the cache: a netlink socket for queries, one subscribed to changes (on the poller).
 * @example const hops = createNextHops(2); hops.of(parseSocketAddress("198.18.1.2:9"))?.mtu // 1500
 */
export function createNextHops(mark: number | undefined): NextHops {
  const queries = openRouteQueries();
  const monitor = openRouteMonitor();
  const links = new Map<number, LinkAnswer | undefined>();
  const stats: NextHopStats = { lookups: 0, invalidations: 0 };
  let current = newGeneration();
  let before = newGeneration();
  // The last two destination records asked about, remembered by identity: a session's replies share
  // one, and the engine's grouping asks about a group's first datagram and each other one in turn.
  let lastDst: SocketAddress | undefined;
  let lastHop: NextHop | undefined;
  let priorDst: SocketAddress | undefined;
  let priorHop: NextHop | undefined;
  const clear = () => {
    before = current;
    current = newGeneration();
    links.clear();
    lastDst = priorDst = undefined;
    stats.invalidations++;
  };
  const poller = getPoller();
  poller.add(monitor.fd, READABLE, () => {
    if (monitor.drain()) clear();
  });
  const find = (g: Generation, dst: SocketAddress, key: number): NextHop | number | undefined => {
    const hit = g.hops.get(key);
    if (hit === undefined || typeof hit === "number") return hit;
    return sameIp(hit.ip, dst.ip) ? hit : undefined;
  };
  const resolve = (dst: SocketAddress, key: number): NextHop | undefined => {
    stats.lookups++;
    const hop = askKernel(queries, links, dst, mark);
    if (!hop) {
      current.hops.set(key, Date.now() + RETRY_MS);
      return undefined;
    }
    if (current.used === SLAB_ENTRIES) clear();
    const at = current.used++ * SLOT_BYTES;
    encodeLinkAddress(current.slab, at, hop.index, dst.family, hop.hardware);
    // A copy: a destination's bytes may live in a chunk its owner reuses later.
    const entry: NextHop = { ip: dst.ip.slice(), address: current.base + at, mtu: hop.mtu };
    current.hops.set(key, entry);
    return entry;
  };
  return {
    of(dst) {
      if (dst === lastDst) return lastHop;
      if (dst === priorDst) return priorHop;
      const key = addressKeyOf(dst.ip, 0, dst.family === 4 ? 4 : 16, 0);
      let hit = find(current, dst, key);
      if (typeof hit === "number") {
        if (Date.now() < hit) return undefined;
        hit = undefined;
      }
      const hop = hit ?? resolve(dst, key);
      // Only a hop is remembered by identity: an unresolved destination must be asked again later.
      if (hop) {
        priorDst = lastDst;
        priorHop = lastHop;
        lastDst = dst;
        lastHop = hop;
      }
      return hop;
    },
    previous(dst) {
      const hit = find(before, dst, addressKeyOf(dst.ip, 0, dst.family === 4 ? 4 : 16, 0));
      return typeof hit === "number" ? undefined : hit;
    },
    clear,
    stats,
    close() {
      poller.remove(monitor.fd);
      monitor.close();
      queries.close();
    },
  };
}

/** The kernel's answer for `dst`: device, next hop's hardware address, MTU; undefined when it must route it itself. */
function askKernel(
  queries: RouteQueries,
  links: Map<number, LinkAnswer | undefined>,
  dst: SocketAddress,
  mark: number | undefined,
): { index: number; hardware: Uint8Array; mtu: number } | undefined {
  const route = queries.route(dst, mark);
  if (!route || route.type !== RTN_UNICAST) return undefined;
  let link = links.get(route.outputIndex);
  if (!links.has(route.outputIndex)) links.set(route.outputIndex, link = queries.link(route.outputIndex));
  if (!link) return undefined;
  const mtu = route.mtu ?? link.mtu;
  if (link.type === ARPHRD_NONE || link.address.length === 0) return { index: route.outputIndex, hardware: NO_ADDRESS, mtu };
  const via = route.gateway ?? { family: dst.family, ip: dst.ip };
  const n = queries.neighbour(via.family, route.outputIndex, via.ip);
  if (!n || !(n.state & NUD_USABLE) || !n.address || n.address.length === 0) return undefined;
  return { index: route.outputIndex, hardware: n.address, mtu };
}
