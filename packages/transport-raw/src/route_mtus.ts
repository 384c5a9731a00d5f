/**
 * The MTU each destination's route has, asked of the kernel once and remembered: the raw socket
 * never fragments (IP_HDRINCL fails with EMSGSIZE above the MTU), so the transport must know where
 * to cut. Learned MTUs are forgotten every MTU_RECHECK_MS (an MTU that grew back is found again),
 * and one is asked again at once when the kernel refuses a packet as too big (the route shrank).
 * @module
 */
import { addressKeyOf, type SocketAddress } from "@anysrc/core";
import { routeMtu } from "@anysrc/sys";

/** Route MTUs remembered per destination IP; past this many the cache starts over. */
const MAX_ROUTE_MTUS = 65536;
/** How long a learned route MTU is trusted before the kernel is asked again (its own PMTU entries expire after 600 s). */
const MTU_RECHECK_MS = 30_000;

/** MTUs by destination. */
export interface RouteMtus {
  /** The MTU to fragment `dst`'s datagrams at. */
  of(dst: SocketAddress): number;
  /** Forget what is older than MTU_RECHECK_MS; call once per batch. */
  expire(now: number): void;
  /** Ask again for `dst` after an EMSGSIZE; true when it is now smaller (worth a retry). */
  relearn(dst: SocketAddress): boolean;
}

/**
 * MTUs from the kernel's routes, or `fixed` for every destination.
 * @example const mtus = createRouteMtus(undefined); mtus.of(parseSocketAddress("198.18.1.2:9")) // 1500
 */
export function createRouteMtus(fixed: number | undefined): RouteMtus {
  const known = new Map<number, number>();
  // Consecutive datagrams mostly share a destination record (a session's replies): the last answer
  // is remembered by identity, sparing a key hash and a Map lookup per datagram.
  let lastDst: SocketAddress | undefined;
  let lastMtu = 0;
  let since = Date.now();
  const keyOf = (dst: SocketAddress) => addressKeyOf(dst.ip, 0, dst.family === 4 ? 4 : 16, 0);
  const of = (dst: SocketAddress): number => {
    if (fixed !== undefined) return fixed;
    if (dst === lastDst) return lastMtu;
    const key = keyOf(dst);
    let m = known.get(key);
    if (m === undefined) {
      if (known.size >= MAX_ROUTE_MTUS) known.clear();
      m = routeMtu(dst) ?? 1500;
      known.set(key, m);
    }
    lastDst = dst;
    lastMtu = m;
    return m;
  };
  return {
    of,
    expire(now) {
      if (now - since < MTU_RECHECK_MS) return;
      since = now;
      known.clear();
      lastDst = undefined;
    },
    relearn(dst) {
      if (fixed !== undefined) return false;
      const before = of(dst);
      known.delete(keyOf(dst));
      lastDst = undefined;
      return of(dst) < before;
    },
  };
}
