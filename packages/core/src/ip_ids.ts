/**
 * IPv4 identification for packets we build ourselves (raw and tun). They leave with DF clear, so any
 * hop may fragment them, and RFC 6864 then asks that no two datagrams to one destination share an
 * ID within the reassembly timeout. Like the kernel's `ip_idents`, counters live in hashed buckets
 * keyed by destination: each destination (and the few that share its bucket) counts on from a
 * random start, so IDs repeat for a destination only after 65 536 packets to its bucket.
 * @module
 */
import type { ChecksumPolicy, IpFields, UdpPacketOptions } from "./packet.ts";
import type { Datagram } from "./transport.ts";

/** A source of IPv4 IDs per destination. */
export interface Ipv4Ids {
  /**
   * The next ID for `dst` (4 address bytes), reserving `count` consecutive IDs — a GSO super-packet's
   * segments take ID, ID + 1, … from the kernel. Never 0: a raw socket would replace an ID of 0 with
   * one of its own, out of our sequence.
   */
  next(dst: Uint8Array, count?: number): number;
}

/**
 * Per-destination counters in `buckets` (a power of two) hashed buckets.
 * @example const ids = createIpv4Ids(); writeIpv4Header(..., ids.next(dst.ip), ...)
 */
export function createIpv4Ids(buckets = 4096, random: () => number = Math.random): Ipv4Ids {
  const mask = buckets - 1;
  if (buckets < 2 || (buckets & mask) !== 0) throw new RangeError(`IPv4 ID buckets must be a power of two, got ${buckets}`);
  const shift = 32 - Math.log2(buckets);
  const counters = new Uint16Array(buckets);
  for (let i = 0; i < buckets; i++) counters[i] = Math.floor(random() * 0x10000);
  // A random multiplier per instance, so which destinations share a bucket cannot be chosen from outside.
  const salt = (Math.floor(random() * 0x7fffffff) | 1) >>> 0;
  return {
    next(dst, count = 1) {
      const h = Math.imul(((dst[0]! << 24) | (dst[1]! << 16) | (dst[2]! << 8) | dst[3]!) ^ salt, 0x9e3779b1) >>> shift;
      const b = h & mask;
      let id = counters[b]!;
      if (id === 0 || id + count - 1 > 0xffff) id = 1; // 0 stays unused; a run never wraps through it
      counters[b] = id + count;
      return id;
    },
  };
}

/** The header fields of each packet a transport builds, from its datagram. */
export interface PacketFields {
  /**
   * The options to build `d`'s packet with: its class and TTL (or the default TTL), and a fresh ID —
   * `idCount` consecutive ones for a GSO super-packet; a fragment train takes one for all its
   * fragments. The record is reused: use it before the next call.
   */
  of(d: Datagram, idCount?: number): UdpPacketOptions & IpFields;
}

/**
 * Per-packet fields for a raw or tun transport: IPv4 IDs per destination ({@link createIpv4Ids}),
 * IPv6 fragment IDs counting on from a random start.
 * @example const fields = createPacketFields(64, RAW_SOCKET_CHECKSUMS); buildUdpHeaders(slot, 0, d.src, d.dst, d.payload, fields.of(d));
 */
export function createPacketFields(defaultTtl: number, checksums: ChecksumPolicy): PacketFields {
  const ids = createIpv4Ids();
  let id6 = 1 + Math.floor(Math.random() * 0xfffffffe);
  const f: { checksums: ChecksumPolicy; ttl: number; tos: number; identification: number } = { checksums, ttl: defaultTtl, tos: 0, identification: 0 };
  return {
    of(d, idCount = 1) {
      f.tos = d.tos ?? 0;
      f.ttl = d.ttl ?? defaultTtl;
      if (d.src.family === 4) f.identification = ids.next(d.dst.ip, idCount);
      else {
        id6 = (id6 % 0xffffffff) + 1;
        f.identification = id6;
      }
      return f;
    },
  };
}
