/**
 * UDP and raw sockets: creation with the options a transparent proxy needs, bind/connect, simple
 * send/receive. Everything is non-blocking; readiness comes from the {@link Poller}.
 * @module
 */
import { formatSocketAddress, type SocketAddress, SystemError } from "@anysrc/core";
import { check, cString, errno, lastError, libc } from "./libc.ts";
import {
  AF_INET,
  AF_INET6,
  EACCES,
  EAGAIN,
  F_SETFD,
  FD_CLOEXEC,
  IP_FREEBIND,
  IP_MTU,
  IP_NODEFRAG,
  IP_RECVERR,
  IP_RECVORIGDSTADDR,
  IP_RECVTOS,
  IP_RECVTTL,
  IP_TRANSPARENT,
  IPPROTO_RAW,
  IPPROTO_UDP,
  IPV6_FREEBIND,
  IPV6_MTU,
  IPV6_RECVERR,
  IPV6_RECVHOPLIMIT,
  IPV6_RECVORIGDSTADDR,
  IPV6_RECVTCLASS,
  IPV6_TRANSPARENT,
  IPV6_V6ONLY,
  SK_MEMINFO_DROPS,
  SK_MEMINFO_VARS,
  SO_BINDTODEVICE,
  SO_BROADCAST,
  SO_MARK,
  SO_MEMINFO,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_RXQ_OVFL,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  SOL_UDP,
  UDP_GRO,
} from "./linux_constants.ts";
import { decodeSockaddr, encodeSockaddr, SOCKADDR_STORAGE_SIZE } from "./sockaddr.ts";

/** Options of a UDP socket. Defaults: non-blocking, close-on-exec, nothing else. */
export interface UdpSocketOptions {
  readonly family: 4 | 6;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: bind foreign addresses, receive TPROXY'd traffic (CAP_NET_ADMIN). */
  readonly transparent?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND: bind addresses not (yet) on any interface. */
  readonly freebind?: boolean;
  readonly reuseAddress?: boolean;
  readonly reusePort?: boolean;
  /** SO_MARK, so policy routing and nft rules can tell these packets apart (CAP_NET_ADMIN). */
  readonly mark?: number;
  /** SO_SNDBUF / SO_RCVBUF in bytes (the FORCE variants are tried first, as root may exceed rmem_max). */
  readonly sendBuffer?: number;
  readonly receiveBuffer?: number;
  /** IPv6 sockets only: refuse IPv4-mapped traffic. Default true, so v4 and v6 listeners can coexist. */
  readonly v6Only?: boolean;
  /** Deliver IP_ORIGDSTADDR / IPV6_ORIGDSTADDR with each datagram (TPROXY listeners). */
  readonly receiveOriginalDestination?: boolean;
  /** SO_BINDTODEVICE. */
  readonly device?: string;
  /** IP_RECVERR / IPV6_RECVERR: report ICMP errors (port unreachable → ECONNREFUSED) on unconnected sockets. */
  readonly receiveErrors?: boolean;
  /**
   * SO_RXQ_OVFL: each datagram carries the socket's running count of datagrams the kernel dropped
   * (receive buffer full), read with {@link RecvRing.dropCount}.
   */
  readonly receiveDropCount?: boolean;
  /** IP_RECVTOS / IPV6_RECVTCLASS: each datagram carries its TOS byte / traffic class ({@link RecvRing.trafficClass}). */
  readonly receiveTrafficClass?: boolean;
  /** IP_RECVTTL / IPV6_RECVHOPLIMIT: each datagram carries its TTL / hop limit ({@link RecvRing.hopLimit}). */
  readonly receiveHopLimit?: boolean;
  /** SO_BROADCAST: allow sending to broadcast addresses (without it, EACCES). */
  readonly broadcast?: boolean;
}

type FamilyOption = readonly [level: number, name: number, what: string];
/** Boolean socket flags that exist once per family. */
type FamilyFlag = "transparent" | "freebind" | "receiveOriginalDestination" | "receiveErrors" | "receiveTrafficClass" | "receiveHopLimit";
const FAMILY_FLAGS: readonly (readonly [FamilyFlag, FamilyOption, FamilyOption])[] = [
  ["transparent", [SOL_IP, IP_TRANSPARENT, "IP_TRANSPARENT"], [SOL_IPV6, IPV6_TRANSPARENT, "IPV6_TRANSPARENT"]],
  ["freebind", [SOL_IP, IP_FREEBIND, "IP_FREEBIND"], [SOL_IPV6, IPV6_FREEBIND, "IPV6_FREEBIND"]],
  ["receiveOriginalDestination", [SOL_IP, IP_RECVORIGDSTADDR, "IP_RECVORIGDSTADDR"], [SOL_IPV6, IPV6_RECVORIGDSTADDR, "IPV6_RECVORIGDSTADDR"]],
  ["receiveErrors", [SOL_IP, IP_RECVERR, "IP_RECVERR"], [SOL_IPV6, IPV6_RECVERR, "IPV6_RECVERR"]],
  ["receiveTrafficClass", [SOL_IP, IP_RECVTOS, "IP_RECVTOS"], [SOL_IPV6, IPV6_RECVTCLASS, "IPV6_RECVTCLASS"]],
  ["receiveHopLimit", [SOL_IP, IP_RECVTTL, "IP_RECVTTL"], [SOL_IPV6, IPV6_RECVHOPLIMIT, "IPV6_RECVHOPLIMIT"]],
];

const intValue = new Int32Array(1);
const intBytes = new Uint8Array(intValue.buffer);
const scratchAddress = new Uint8Array(SOCKADDR_STORAGE_SIZE);
const scratchLength = new Uint32Array(1);

/**
 * setsockopt with an int value.
 * @example setIntOption(fd, SOL_SOCKET, SO_MARK, 1, "SO_MARK");
 */
export function setIntOption(fd: number, level: number, name: number, value: number, what: string): void {
  intValue[0] = value;
  check(libc.setsockopt(fd, level, name, intBytes, 4), `setsockopt ${what}`, fd);
}

/** getsockopt of an int value. */
export function getIntOption(fd: number, level: number, name: number, what: string): number {
  scratchLength[0] = 4;
  check(libc.getsockopt(fd, level, name, intBytes, scratchLength), `getsockopt ${what}`, fd);
  return intValue[0]!;
}

function setBuffer(fd: number, force: number, plain: number, bytes: number, what: string): void {
  intValue[0] = bytes;
  if (libc.setsockopt(fd, SOL_SOCKET, force, intBytes, 4) === 0) return;
  setIntOption(fd, SOL_SOCKET, plain, bytes, what);
}

function applyCommon(fd: number, o: { mark?: number; sendBuffer?: number; receiveBuffer?: number; device?: string }): void {
  if (o.mark !== undefined) setIntOption(fd, SOL_SOCKET, SO_MARK, o.mark, "SO_MARK");
  if (o.sendBuffer !== undefined) setBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, o.sendBuffer, "SO_SNDBUF");
  if (o.receiveBuffer !== undefined) setBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, o.receiveBuffer, "SO_RCVBUF");
  if (o.device !== undefined) {
    const name = cString(o.device);
    check(libc.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length), "setsockopt SO_BINDTODEVICE", fd, o.device);
  }
}

/** Run `setup` on a fresh fd; close it if setup throws, so a failed option never leaks an fd. */
function withFd(fd: number, setup: () => void): number {
  try {
    setup();
    return fd;
  } catch (e) {
    libc.close(fd);
    throw e;
  }
}

/**
 * Open a non-blocking UDP socket with the given options.
 * @example const fd = openUdpSocket({ family: 4, transparent: true, receiveOriginalDestination: true });
 */
export function openUdpSocket(o: UdpSocketOptions): number {
  const domain = o.family === 4 ? AF_INET : AF_INET6;
  const fd = check(libc.socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP), "socket");
  return withFd(fd, () => {
    // Only before bind: the kernel refuses IPV6_V6ONLY on a bound socket (EINVAL).
    if (o.family === 6) setIntOption(fd, SOL_IPV6, IPV6_V6ONLY, o.v6Only === false ? 0 : 1, "IPV6_V6ONLY");
    configureUdpSocket(fd, o);
  });
}

/**
 * Set `o`'s options on a UDP socket already open — one a worker inherited from its supervisor, whose
 * settings it may read differently than when the socket was opened. Options are only ever turned on;
 * `v6Only` is left as the socket was opened (the kernel fixes it at bind).
 * @example configureUdpSocket(inheritedFd, { family: 4, receiveOriginalDestination: true, receiveBuffer: 16 << 20 });
 */
export function configureUdpSocket(fd: number, o: UdpSocketOptions): void {
  if (o.reuseAddress) setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
  if (o.reusePort) setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
  // Each flag has an IPv4 and an IPv6 option; an IPv6 socket consults only the IPv6 one.
  for (const [wanted, v4, v6] of FAMILY_FLAGS) {
    if (!o[wanted]) continue;
    const [level, name, what] = o.family === 4 ? v4 : v6;
    setIntOption(fd, level, name, 1, what);
  }
  if (o.receiveDropCount) setIntOption(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL");
  if (o.broadcast) setIntOption(fd, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST");
  applyCommon(fd, o);
}

/**
 * Whether `fd` survives exec (FD_CLOEXEC cleared) — how a supervisor hands a socket to a worker on
 * runtimes whose spawn cannot map extra descriptors (Deno). Every fd anysrc opens starts close-on-exec.
 * @example setInheritable(fd, true); spawn(…); setInheritable(fd, false);
 */
export function setInheritable(fd: number, inheritable: boolean): void {
  check(libc.fcntl(fd, F_SETFD, inheritable ? 0 : FD_CLOEXEC), "fcntl F_SETFD", fd);
}

const meminfo = new Uint32Array(SK_MEMINFO_VARS);
const meminfoLength = new Uint32Array([SK_MEMINFO_VARS * 4]);

/**
 * Datagrams the kernel has dropped on this socket so far (SO_MEMINFO's drop count: receive buffer
 * full, and the like) — what SO_RXQ_OVFL reports too, but also for drops after the last datagram
 * read, so it is what a socket's final count comes from. -1 when the kernel will not say.
 * @example socketDropCount(fd) // 0
 */
export function socketDropCount(fd: number): number {
  meminfoLength[0] = SK_MEMINFO_VARS * 4;
  if (libc.getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, meminfoLength) < 0 || meminfoLength[0]! <= SK_MEMINFO_DROPS * 4) return -1;
  return meminfo[SK_MEMINFO_DROPS]!;
}

/**
 * UDP_GRO on: the kernel may hand this socket several datagrams of one flow as one read (a GRO
 * super-packet), its segment size in a SOL_UDP/UDP_GRO cmsg ({@link RecvRing.segmentSize}). Returns
 * 0, or the errno when the kernel refuses (ENOPROTOOPT before Linux 5.0).
 * @example enableUdpGro(fd) // 0
 */
export function enableUdpGro(fd: number): number {
  intValue[0] = 1;
  return libc.setsockopt(fd, SOL_UDP, UDP_GRO, intBytes, 4) < 0 ? errno() : 0;
}

/** The receive buffer the kernel granted (SO_RCVBUF reads back twice the accounted size asked for). */
export function receiveBufferSize(fd: number): number {
  return getIntOption(fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
}

/**
 * {@link openUdpSocket} for a pool of sockets under a descriptor limit (a low `ulimit -n`): on
 * EMFILE/ENFILE, `makeRoom` is asked to close one of the pool's sockets (it returns false when it
 * has none to give) and the open is retried.
 * @example const fd = openUdpSocketMakingRoom({ family: 4 }, (code) => evictOldest(code));
 */
export function openUdpSocketMakingRoom(o: UdpSocketOptions, makeRoom: (code: "EMFILE" | "ENFILE") => boolean): number {
  for (;;) {
    try {
      return openUdpSocket(o);
    } catch (e) {
      if (!(e instanceof SystemError) || (e.code !== "EMFILE" && e.code !== "ENFILE") || !makeRoom(e.code)) throw e;
    }
  }
}

/** Options of a raw sending socket. */
export interface RawSocketOptions {
  readonly family: 4 | 6;
  readonly mark?: number;
  readonly sendBuffer?: number;
  readonly device?: string;
  /**
   * IP_RECVERR / IPV6_RECVERR: report errors of the emit path — ENOBUFS from a full device queue is
   * returned by send instead of being swallowed, and local EMSGSIZE is queued with the MTU ({@link RecvRing.receiveErrors}).
   */
  readonly receiveErrors?: boolean;
  /** SO_BROADCAST: packets to broadcast addresses allowed (without it, EACCES). */
  readonly broadcast?: boolean;
}

/**
 * Open a non-blocking `IPPROTO_RAW` socket: we write the whole IP header (IP_HDRINCL is implied for
 * IPv4; for IPv6, IPPROTO_RAW means the same). Needs CAP_NET_RAW.
 * @example const fd = openRawSocket({ family: 4 });
 */
export function openRawSocket(o: RawSocketOptions): number {
  const domain = o.family === 4 ? AF_INET : AF_INET6;
  const fd = check(libc.socket(domain, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW), "socket", undefined, `raw IPv${o.family}`);
  return withFd(fd, () => {
    // Fragments we build ourselves must leave as they are. Where nf_defrag is loaded (TPROXY, socket
    // matches, conntrack) the kernel would otherwise reassemble them at LOCAL_OUT and fragment them
    // again, and the reassembly can fail: its per-source-IP distance check (ipfrag_max_dist, IPv4
    // only) counts the remote's own incoming fragments, which share our spoofed source address, and
    // one sendmmsg of 32 fragmented replies is more than its 64. IPv6 has neither the check nor the option.
    if (o.family === 4) setIntOption(fd, SOL_IP, IP_NODEFRAG, 1, "IP_NODEFRAG");
    if (o.receiveErrors) {
      if (o.family === 4) setIntOption(fd, SOL_IP, IP_RECVERR, 1, "IP_RECVERR");
      else setIntOption(fd, SOL_IPV6, IPV6_RECVERR, 1, "IPV6_RECVERR");
    }
    if (o.broadcast) setIntOption(fd, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST");
    applyCommon(fd, o);
  });
}

/**
 * Bind to an address (with `transparent`, a foreign one).
 * @throws {SystemError} e.g. `bind 198.19.2.2:7000: EADDRINUSE (address already in use)`.
 */
export function bindSocket(fd: number, addr: SocketAddress): void {
  const len = encodeSockaddr(addr, scratchAddress, 0);
  if (libc.bind(fd, scratchAddress, len) < 0) throw lastError("bind", fd, formatSocketAddress(addr));
}

/** Connect a UDP socket: the kernel then filters on the peer and send needs no address. */
export function connectSocket(fd: number, addr: SocketAddress): void {
  const len = encodeSockaddr(addr, scratchAddress, 0);
  if (libc.connect(fd, scratchAddress, len) < 0) throw lastError("connect", fd, formatSocketAddress(addr));
}

/** The address a socket is bound to (getsockname). */
export function localAddress(fd: number): SocketAddress {
  scratchLength[0] = SOCKADDR_STORAGE_SIZE;
  check(libc.getsockname(fd, scratchAddress, scratchLength), "getsockname", fd);
  const a = decodeSockaddr(scratchAddress, 0);
  if (!a) throw new RangeError(`getsockname fd ${fd}: not an IP socket`);
  return a;
}

/** Close a descriptor; EBADF and friends are reported, never silently ignored. */
export function closeFd(fd: number): void {
  check(libc.close(fd), "close", fd);
}

/**
 * Send one datagram (to `dst`, or to the connected peer when omitted). Returns false on EAGAIN /
 * ENOBUFS (the caller queues); throws other errors.
 * @example sendTo(fd, payload, parseSocketAddress("198.18.1.2:40000"))
 */
export function sendTo(fd: number, payload: Uint8Array, dst?: SocketAddress): boolean {
  const len = dst ? encodeSockaddr(dst, scratchAddress, 0) : 0;
  const n = libc.sendto(fd, payload, payload.length, 0, scratchAddress, len);
  if (n >= 0) return true;
  const e = errno();
  if (e === EAGAIN || e === 105) return false;
  throw lastError("sendto", fd, dst ? formatSocketAddress(dst) : undefined);
}

/**
 * Receive one datagram into `buf` without blocking; undefined when nothing is waiting.
 * @example const got = receiveFrom(fd, buf); if (got) console.log(got.length, got.source);
 */
export function receiveFrom(fd: number, buf: Uint8Array): { length: number; source: SocketAddress | undefined } | undefined {
  scratchLength[0] = SOCKADDR_STORAGE_SIZE;
  const n = libc.recvfrom(fd, buf, buf.length, 0x40, /* MSG_DONTWAIT */ scratchAddress, scratchLength);
  if (n < 0) {
    if (errno() === EAGAIN) return undefined;
    throw lastError("recvfrom", fd);
  }
  return { length: n, source: decodeSockaddr(scratchAddress, 0) };
}

/**
 * True when `dst` is a broadcast address here (255.255.255.255, or a directed broadcast of a local
 * subnet): the kernel refuses to connect a socket without SO_BROADCAST to it (EACCES). IPv6 has no
 * broadcast. Sending there needs {@link UdpSocketOptions.broadcast} on the sending socket.
 * @example routeIsBroadcast(parseSocketAddress("198.18.1.255:514")) // true on a /24
 */
export function routeIsBroadcast(dst: SocketAddress): boolean {
  if (dst.family !== 4) return false;
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return false;
  try {
    const len = encodeSockaddr(dst, scratchAddress, 0, dst.port === 0 ? 9 : dst.port);
    return libc.connect(fd, scratchAddress, len) < 0 && errno() === EACCES;
  } finally {
    libc.close(fd);
  }
}

/**
 * MTU of the route to `dst` (the egress interface's, or a learned path MTU), asked of the kernel with
 * a connected UDP socket and IP_MTU / IPV6_MTU; undefined when there is no route.
 * @example routeMtu(parseSocketAddress("198.18.1.2:9")) // 1500
 */
export function routeMtu(dst: SocketAddress): number | undefined {
  const fd = libc.socket(dst.family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return undefined;
  try {
    const len = encodeSockaddr(dst, scratchAddress, 0, dst.port === 0 ? 9 : dst.port);
    if (libc.connect(fd, scratchAddress, len) < 0) return undefined;
    scratchLength[0] = 4;
    const r = dst.family === 4
      ? libc.getsockopt(fd, SOL_IP, IP_MTU, intBytes, scratchLength)
      : libc.getsockopt(fd, SOL_IPV6, IPV6_MTU, intBytes, scratchLength);
    return r < 0 ? undefined : intValue[0];
  } finally {
    libc.close(fd);
  }
}

/** AF_PACKET and the SOL_PACKET option that skips the device's qdisc. */
const AF_PACKET = 17;
const SOL_PACKET = 263;
const PACKET_QDISC_BYPASS = 20;
/** Bytes of a sockaddr_ll. */
export const SOCKADDR_LL_SIZE = 20;

/**
 * Open a non-blocking AF_PACKET SOCK_DGRAM socket for sending only (protocol 0: it receives
 * nothing): each frame is an IP packet, and the kernel writes the link-layer header from the
 * destination's sockaddr_ll ({@link encodeLinkAddress}). With `qdiscBypass`, PACKET_QDISC_BYPASS:
 * frames go straight to the driver, past the qdisc (no tc shaping, no taps). Needs CAP_NET_RAW.
 * Returns the fd and whether the bypass was granted.
 * @example const { fd } = openPacketSocket({ qdiscBypass: true });
 */
export function openPacketSocket(o: { readonly qdiscBypass: boolean; readonly sendBuffer?: number }): { fd: number; qdiscBypass: boolean } {
  const fd = check(libc.socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), "socket", undefined, "AF_PACKET");
  let bypass = false;
  withFd(fd, () => {
    if (o.qdiscBypass) {
      intValue[0] = 1;
      bypass = libc.setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, intBytes, 4) === 0;
    }
    applyCommon(fd, o);
  });
  return { fd, qdiscBypass: bypass };
}

/**
 * Write a sockaddr_ll at `out[at..at + 20)`: device `index`, EtherType of IPv`family`, and the next
 * hop's hardware address (empty for a device without link-layer addresses). Returns its length.
 * @example encodeLinkAddress(slot, 0, 3, 4, mac) // 20
 */
export function encodeLinkAddress(out: Uint8Array, at: number, index: number, family: 4 | 6, hardware: Uint8Array): number {
  out.fill(0, at, at + SOCKADDR_LL_SIZE);
  out[at] = AF_PACKET;
  // sll_protocol, network order: ETH_P_IP 0x0800, ETH_P_IPV6 0x86DD.
  out[at + 2] = family === 4 ? 0x08 : 0x86;
  out[at + 3] = family === 4 ? 0x00 : 0xdd;
  new DataView(out.buffer, out.byteOffset).setInt32(at + 4, index, true);
  const halen = Math.min(8, hardware.length);
  out[at + 11] = halen;
  out.set(hardware.subarray(0, halen), at + 12);
  return SOCKADDR_LL_SIZE;
}
