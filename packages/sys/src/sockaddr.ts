/**
 * struct sockaddr_in / sockaddr_in6 ⇄ SocketAddress, in caller-owned memory.
 * @module
 */
import { addressKeyOf, arenaCopy, createByteArena, isV4MappedAt, type SocketAddress } from "@anysrc/core";
import { AF_INET, AF_INET6 } from "./linux_constants.ts";
import { detectRuntime } from "./runtime.ts";

/** sizeof(struct sockaddr_in). */
export const SOCKADDR_IN_SIZE = 16;
/** sizeof(struct sockaddr_in6). */
export const SOCKADDR_IN6_SIZE = 28;
/** Room for either, rounded to 8 for the next struct. */
export const SOCKADDR_STORAGE_SIZE = 32;

/**
 * Write `addr` as a sockaddr at `out[offset]`; returns its length (16 or 28). `port` overrides the
 * address's port (IPv6 raw sockets need 0 there: the kernel reads sin6_port as a protocol).
 * @example const len = encodeSockaddr(parseSocketAddress("198.18.1.2:53"), buf, 0);
 */
export function encodeSockaddr(addr: SocketAddress, out: Uint8Array, offset: number, port = addr.port): number {
  const o = offset;
  const ip = addr.ip;
  if (addr.family === 4) {
    out[o] = AF_INET; // sa_family_t is host order (little-endian)
    out[o + 1] = 0;
    out[o + 2] = port >>> 8;
    out[o + 3] = port & 0xff;
    out[o + 4] = ip[0]!;
    out[o + 5] = ip[1]!;
    out[o + 6] = ip[2]!;
    out[o + 7] = ip[3]!;
    for (let i = 8; i < 16; i++) out[o + i] = 0;
    return SOCKADDR_IN_SIZE;
  }
  out[o] = AF_INET6;
  out[o + 1] = 0;
  out[o + 2] = port >>> 8;
  out[o + 3] = port & 0xff;
  for (let i = 4; i < 8; i++) out[o + i] = 0; // flowinfo
  for (let i = 0; i < 16; i++) out[o + 8 + i] = ip[i]!;
  for (let i = 24; i < 28; i++) out[o + i] = 0; // scope id
  return SOCKADDR_IN6_SIZE;
}

// Decoded addresses are the ones kept (sessions, remotes, bound sources). On V8 (Deno, Node) a small
// typed array of its own costs ~300 B more than a view of a shared chunk (@anysrc/core byte_arena);
// Bun keeps small typed arrays in its heap, where a plain copy is the smaller (~125 B against ~150).
const arena = detectRuntime() === "bun" ? undefined : createByteArena();
const keep = (bytes: Uint8Array, start: number, end: number): Uint8Array => arena ? arenaCopy(arena, bytes, start, end) : bytes.slice(start, end);

/**
 * Read a sockaddr_in or sockaddr_in6 at `bytes[offset]` (IPv4-mapped IPv6 comes back as IPv4) into
 * a record of its own: its `ip` is a copy that may be kept. Returns undefined for other families.
 * @example decodeSockaddr(ring, nameOffset)?.port
 */
export function decodeSockaddr(bytes: Uint8Array, offset: number): SocketAddress | undefined {
  const family = bytes[offset]! | (bytes[offset + 1]! << 8);
  const port = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
  if (family === AF_INET) return { family: 4, ip: keep(bytes, offset + 4, offset + 8), port };
  if (family !== AF_INET6) return undefined;
  if (isV4MappedAt(bytes, offset + 8)) return { family: 4, ip: keep(bytes, offset + 20, offset + 24), port };
  return { family: 6, ip: keep(bytes, offset + 8, offset + 24), port };
}

/** sockaddr length for a family. */
export function sockaddrLength(family: 4 | 6): number {
  return family === 4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE;
}

/**
 * The address key (`addressKey` of @anysrc/core) of the sockaddr at `bytes[offset]`, read in place:
 * per-datagram lookups by sender build no record.
 * @example sessions.get(sockaddrKey(ring.memory, ring.sourceOffset(i)))
 */
export function sockaddrKey(bytes: Uint8Array, offset: number): number {
  const port = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
  return bytes[offset] === AF_INET ? addressKeyOf(bytes, offset + 4, 4, port) : addressKeyOf(bytes, offset + 8, 16, port);
}

/** True when the sockaddr at `bytes[offset]` is `a` (family, address and port). */
export function sockaddrIs(bytes: Uint8Array, offset: number, a: SocketAddress): boolean {
  if ((bytes[offset] === AF_INET) !== (a.family === 4)) return false;
  if (((bytes[offset + 2]! << 8) | bytes[offset + 3]!) !== a.port) return false;
  const ipAt = a.family === 4 ? offset + 4 : offset + 8;
  for (let i = 0; i < a.ip.length; i++) if (bytes[ipAt + i] !== a.ip[i]) return false;
  return true;
}
