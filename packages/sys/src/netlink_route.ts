/**
 * rtnetlink without helper processes: where the kernel would send a datagram (RTM_GETROUTE with the
 * sender's mark: output device, gateway or on-link, MTU, route type), the link-layer address of the
 * next hop (RTM_GETNEIGH), a device's link type and MTU (RTM_GETLINK), and a monitor of route,
 * neighbour and link changes (RTNLGRP_* multicast) so that what was learned can be forgotten the
 * moment it stops being true. What the packet transport needs to address frames itself.
 * @module
 */
import type { SocketAddress } from "@anysrc/core";
import { check, errno, libc } from "./libc.ts";
import { AF_INET, AF_INET6, EAGAIN, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, SOL_SOCKET } from "./linux_constants.ts";

const SO_RCVTIMEO = 20;

const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 1;
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
const RTM_NEWNEIGH = 28;
const RTM_GETNEIGH = 30;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_METRICS = 8;
const RTA_MARK = 16;
const RTA_VIA = 18;
const RTAX_MTU = 2;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const IFLA_ADDRESS = 1;
const IFLA_MTU = 4;
/** RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE. */
const MONITOR_GROUPS = 0x1 | 0x4 | 0x40 | 0x400;

/** Route types (rtm_type) a datagram can be framed for; anything else goes the kernel's way. */
export const RTN_UNICAST = 1;
/** ARPHRD_NONE: a device without link-layer addresses (tun, WireGuard). */
export const ARPHRD_NONE = 0xfffe;
/** Neighbour states whose link-layer address is usable (REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT). */
export const NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;

/** Where the kernel's routing sends a destination. */
export interface RouteAnswer {
  /** rtm_type: RTN_UNICAST for a datagram that leaves through a device. */
  readonly type: number;
  readonly outputIndex: number;
  /** The next hop's address when the route has a gateway; undefined when the destination is on-link. */
  readonly gateway?: { readonly family: 4 | 6; readonly ip: Uint8Array };
  /** The route's MTU metric, when it has one (otherwise the device's). */
  readonly mtu?: number;
}

/** A device's link type (ARPHRD_*), MTU and hardware address. */
export interface LinkAnswer {
  readonly type: number;
  readonly mtu: number;
  readonly address: Uint8Array;
}

/** A neighbour entry: its NUD state and link-layer address. */
export interface NeighbourAnswer {
  readonly state: number;
  readonly address?: Uint8Array;
}

/** One netlink socket for queries: a request, then its answer read at once (the kernel answers GETs before sendto returns). */
export interface RouteQueries {
  route(dst: SocketAddress, mark: number | undefined): RouteAnswer | undefined;
  neighbour(family: 4 | 6, index: number, ip: Uint8Array): NeighbourAnswer | undefined;
  link(index: number): LinkAnswer | undefined;
  close(): void;
}

/** A request buffer: nlmsghdr, then the family message, then attributes, each 4-aligned. */
function request(type: number, body: number, attributes: readonly (readonly [number, Uint8Array])[]): Uint8Array {
  const size = 16 + body + attributes.reduce((a, [, v]) => a + ((4 + v.length + 3) & ~3), 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, size, true);
  view.setUint16(4, type, true);
  view.setUint16(6, NLM_F_REQUEST, true);
  view.setUint32(8, ++sequence, true);
  let at = 16 + body;
  for (const [kind, value] of attributes) {
    view.setUint16(at, 4 + value.length, true);
    view.setUint16(at + 2, kind, true);
    out.set(value, at + 4);
    at += (4 + value.length + 3) & ~3;
  }
  return out;
}
let sequence = 0;

/** The attributes of one message from `from` to `end`, by type (the last one of a type wins). */
function attributesOf(bytes: Uint8Array, from: number, end: number): Map<number, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<number, Uint8Array>();
  for (let at = from; at + 4 <= end;) {
    const length = view.getUint16(at, true);
    if (length < 4 || at + length > end) break;
    out.set(view.getUint16(at + 2, true) & 0x3fff, bytes.subarray(at + 4, at + length));
    at += (length + 3) & ~3;
  }
  return out;
}

const u32 = (value: number) => new Uint8Array(new Uint32Array([value]).buffer);
const readU32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);

/**
 * Open the query socket.
 * @example const q = openRouteQueries(); q.route(parseSocketAddress("198.18.1.2:9"), 2) // { type: 1, outputIndex: 3, … }
 */
export function openRouteQueries(): RouteQueries {
  const fd = check(libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), "socket", undefined, "netlink route");
  // The kernel answers a GET before sendto returns; a second is there so a lost answer cannot hang us.
  const timeout = new Uint8Array(16);
  timeout[0] = 1;
  libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, 16);
  const answer = new Uint8Array(16384);
  const none = new Uint8Array(0);
  const none32 = new Uint32Array(1);
  /** Send `req` and return the first answer of `wanted` type (offset of its body), undefined on an error answer. */
  const ask = (req: Uint8Array, wanted: number): { at: number; end: number } | undefined => {
    if (libc.sendto(fd, req, req.length, 0, none, 0) < 0) return undefined;
    const seq = new DataView(req.buffer).getUint32(8, true);
    for (;;) {
      const n = libc.recvfrom(fd, answer, answer.length, 0, none, none32);
      if (n < 0) return undefined; // EAGAIN after SO_RCVTIMEO: no answer came
      const view = new DataView(answer.buffer, 0, n);
      for (let at = 0; at + 16 <= n;) {
        const length = view.getUint32(at, true);
        const type = view.getUint16(at + 4, true);
        if (length < 16 || at + length > n) break;
        if (view.getUint32(at + 8, true) === seq) {
          if (type === NLMSG_ERROR || type === NLMSG_DONE) return undefined;
          if (type === wanted) return { at: at + 16, end: at + length };
        }
        at += (length + 3) & ~3;
      }
    }
  };
  return {
    route(dst, mark) {
      const family = dst.family === 4 ? AF_INET : AF_INET6;
      const body = new Uint8Array(12);
      body[0] = family;
      body[1] = dst.family === 4 ? 32 : 128;
      const attrs: [number, Uint8Array][] = [[RTA_DST, dst.ip]];
      if (mark !== undefined) attrs.push([RTA_MARK, u32(mark)]);
      const req = request(RTM_GETROUTE, 12, attrs);
      req.set(body, 16);
      const got = ask(req, RTM_NEWROUTE);
      if (!got) return undefined;
      const a = attributesOf(answer, got.at + 12, got.end);
      const oif = a.get(RTA_OIF);
      if (!oif) return undefined;
      const type = answer[got.at + 7]!;
      const gw = a.get(RTA_GATEWAY);
      const via = a.get(RTA_VIA);
      let gateway: RouteAnswer["gateway"];
      if (gw) gateway = { family: dst.family, ip: gw.slice() };
      else if (via && via.length >= 2) {
        const viaFamily = via[0]! | (via[1]! << 8);
        gateway = { family: viaFamily === AF_INET ? 4 : 6, ip: via.slice(2) };
      }
      const metrics = a.get(RTA_METRICS);
      const mtuAttr = metrics ? attributesOf(metrics, 0, metrics.length).get(RTAX_MTU) : undefined;
      return { type, outputIndex: readU32(oif), ...(gateway ? { gateway } : {}), ...(mtuAttr ? { mtu: readU32(mtuAttr) } : {}) };
    },
    neighbour(family, index, ip) {
      const req = request(RTM_GETNEIGH, 12, [[NDA_DST, ip]]);
      req[16] = family === 4 ? AF_INET : AF_INET6;
      new DataView(req.buffer).setInt32(20, index, true);
      const got = ask(req, RTM_NEWNEIGH);
      if (!got) return undefined;
      const state = new DataView(answer.buffer).getUint16(got.at + 8, true);
      const ll = attributesOf(answer, got.at + 12, got.end).get(NDA_LLADDR);
      return { state, ...(ll ? { address: ll.slice() } : {}) };
    },
    link(index) {
      const req = request(RTM_GETLINK, 16, []);
      new DataView(req.buffer).setInt32(20, index, true);
      const got = ask(req, RTM_NEWLINK);
      if (!got) return undefined;
      const view = new DataView(answer.buffer);
      const a = attributesOf(answer, got.at + 16, got.end);
      const mtu = a.get(IFLA_MTU);
      return { type: view.getUint16(got.at + 2, true), mtu: mtu ? readU32(mtu) : 1500, address: a.get(IFLA_ADDRESS)?.slice() ?? none };
    },
    close: () => void libc.close(fd),
  };
}

/**
 * A non-blocking netlink socket subscribed to link, neighbour and IPv4/IPv6 route changes: readable
 * whenever one happens. `drain` reads what is queued and says whether anything was (or the socket
 * overflowed, which means changes were missed: treat it as a change too).
 * @example const m = openRouteMonitor(); poller.add(m.fd, READABLE, () => { if (m.drain()) cache.clear(); });
 */
export function openRouteMonitor(): { readonly fd: number; drain(): boolean; close(): void } {
  const fd = check(libc.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE), "socket", undefined, "netlink monitor");
  const address = new Uint8Array(12);
  address[0] = AF_NETLINK;
  new DataView(address.buffer).setUint32(8, MONITOR_GROUPS, true);
  if (libc.bind(fd, address, 12) < 0) {
    libc.close(fd);
    check(-1, "bind", fd, "netlink route groups");
  }
  const buffer = new Uint8Array(65536);
  const none = new Uint8Array(0);
  const none32 = new Uint32Array(1);
  return {
    fd,
    drain() {
      let changed = false;
      for (;;) {
        const n = libc.recvfrom(fd, buffer, buffer.length, 0, none, none32);
        if (n > 0) {
          changed = true;
          continue;
        }
        // EAGAIN: drained; ENOBUFS: the socket overflowed and changes were lost — a change too.
        if (n < 0 && errno() !== EAGAIN) changed = true;
        return changed;
      }
    },
    close: () => void libc.close(fd),
  };
}
