/**
 * IPv4/IPv6 fragment reassembly with bounded memory and a timeout. Overlapping fragments discard the
 * whole datagram (RFC 5722 for IPv6; applied to IPv4 too, as overlaps only serve evasion), exact
 * duplicates are ignored.
 * @module
 */
import { finishChecksum, sumBytes } from "./checksum.ts";
import { sameIp } from "./address.ts";
import { WireError } from "./errors.ts";
import { parseIpv4 } from "./ipv4.ts";
import { IPV6_FRAGMENT_HEADER_LENGTH, IPV6_HEADER_LENGTH, parseIpv6 } from "./ipv6.ts";

/** Limits of a {@link Reassembler}. */
export interface ReassemblerOptions {
  /** Fragment bytes held across all pending datagrams; the oldest datagram is evicted past it. Default 4 MiB. */
  readonly maxBytes?: number;
  /** Pending datagrams at once; default 1024. */
  readonly maxDatagrams?: number;
  /** How long an incomplete datagram waits for its fragments; default 30 000 ms (RFC 791 suggests 15 s+). */
  readonly timeoutMs?: number;
}

/** What happened to fragments, by outcome. */
export interface ReassemblyStats {
  reassembled: number;
  timedOut: number;
  overlapping: number;
  evicted: number;
  invalid: number;
  duplicates: number;
}

/** Collects fragments and hands back whole packets. */
export interface Reassembler {
  /**
   * Offer an IP packet. Returns it unchanged when it is not a fragment, the reassembled packet when
   * this fragment completes one, otherwise undefined (held, or dropped and counted).
   * @throws {WireError} when the packet itself cannot be parsed.
   */
  push(packet: Uint8Array, nowMs: number): Uint8Array | undefined;
  /** Drop datagrams older than the timeout. `push` calls it too. */
  expire(nowMs: number): void;
  /** Bytes currently held. */
  readonly pendingBytes: number;
  readonly pendingDatagrams: number;
  readonly stats: Readonly<ReassemblyStats>;
}

interface Piece {
  readonly offset: number;
  readonly data: Uint8Array;
}

interface Pending {
  readonly created: number;
  readonly pieces: Piece[];
  /** Header bytes of the offset-0 fragment, once seen (IPv4 header / IPv6 unfragmentable part). */
  head?: Uint8Array;
  /** IPv6: offset inside `head` of the Next Header byte that named the Fragment header. */
  nextFieldAt?: number;
  /** IPv6: the protocol after the Fragment header. */
  innerNext?: number;
  /** Data length, known once the last fragment arrived. */
  total?: number;
  received: number;
  /** Poisoned by an overlap: later fragments are dropped until it expires. */
  poisoned: boolean;
}

const hexOf = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A reassembler's state: its limits, what it holds, what it counted. */
interface Reassembly {
  readonly maxBytes: number;
  readonly maxDatagrams: number;
  readonly timeoutMs: number;
  /** Map keeps insertion order: the first entry is always the oldest, which makes expiry and eviction O(1). */
  readonly pending: Map<string, Pending>;
  readonly stats: ReassemblyStats;
  bytes: number;
}

/**
 * Create a reassembler. Keys are (src, dst, protocol, id) for IPv4 and (src, dst, id) for IPv6.
 * @example
 * const r = createReassembler({ timeoutMs: 30_000 });
 * for (const f of fragments) whole = r.push(f, Date.now()) ?? whole;
 */
export function createReassembler(options: ReassemblerOptions = {}): Reassembler {
  const r: Reassembly = {
    maxBytes: options.maxBytes ?? 4 * 1024 * 1024,
    maxDatagrams: options.maxDatagrams ?? 1024,
    timeoutMs: options.timeoutMs ?? 30_000,
    pending: new Map(),
    stats: { reassembled: 0, timedOut: 0, overlapping: 0, evicted: 0, invalid: 0, duplicates: 0 },
    bytes: 0,
  };
  return {
    push: (packet, now) => push(r, packet, now),
    expire: (now) => expire(r, now),
    get pendingBytes() {
      return r.bytes;
    },
    get pendingDatagrams() {
      return r.pending.size;
    },
    stats: r.stats,
  };
}

function push(r: Reassembly, packet: Uint8Array, now: number): Uint8Array | undefined {
  expire(r, now);
  const version = (packet[0] ?? 0) >>> 4;
  if (version === 4) return pushIpv4(r, packet, now);
  if (version === 6) return pushIpv6(r, packet, now);
  throw new WireError("bad-version", `not an IP packet: version ${version}`);
}

function pushIpv4(r: Reassembly, packet: Uint8Array, now: number): Uint8Array | undefined {
  const ip = parseIpv4(packet);
  const h = ip.header;
  if (!h.moreFragments && h.fragmentOffset === 0) return packet.subarray(0, ip.totalLength);
  const key = `4 ${hexOf(h.src)} ${hexOf(h.dst)} ${h.protocol} ${h.identification}`;
  const p = entry(r, key, now);
  if (!admit(r, key, p, h.fragmentOffset, ip.payload, h.moreFragments, 65535 - ip.headerLength)) return undefined;
  if (h.fragmentOffset === 0) p.head = packet.slice(0, ip.headerLength);
  if (p.total === undefined || p.received !== p.total || !p.head) return undefined;
  const head = p.head;
  const data = joinData(p);
  release(r, key, p);
  const out = new Uint8Array(head.length + data.length);
  out.set(head, 0);
  out.set(data, head.length);
  out[2] = out.length >>> 8;
  out[3] = out.length & 0xff;
  out[6] = out[6]! & 0x40; // Keep DF, clear MF and the offset.
  out[7] = 0;
  out[10] = 0;
  out[11] = 0;
  const c = finishChecksum(sumBytes(out, 0, head.length));
  out[10] = c >>> 8;
  out[11] = c & 0xff;
  r.stats.reassembled++;
  return out;
}

function pushIpv6(r: Reassembly, packet: Uint8Array, now: number): Uint8Array | undefined {
  const ip = parseIpv6(packet);
  const frag = ip.fragment;
  if (!frag || ip.fragmentHeaderOffset === undefined) return packet.subarray(0, ip.totalLength);
  // An atomic fragment (offset 0, no more) is a whole packet in a Fragment header (RFC 6946).
  const key = `6 ${hexOf(ip.header.src)} ${hexOf(ip.header.dst)} ${frag.identification}`;
  const dataStart = ip.fragmentHeaderOffset + IPV6_FRAGMENT_HEADER_LENGTH;
  const data = packet.subarray(dataStart, ip.totalLength);
  const p = entry(r, key, now);
  if (!admit(r, key, p, frag.fragmentOffset, data, frag.moreFragments, 65535 - (ip.fragmentHeaderOffset - IPV6_HEADER_LENGTH))) {
    return undefined;
  }
  if (frag.fragmentOffset === 0) {
    p.head = packet.slice(0, ip.fragmentHeaderOffset);
    const before = ip.extensions.filter((e) => e.offset < ip.fragmentHeaderOffset!);
    p.nextFieldAt = before.length === 0 ? 6 : before[before.length - 1]!.offset;
    p.innerNext = frag.nextHeader;
  }
  if (p.total === undefined || p.received !== p.total || !p.head) return undefined;
  const head = p.head;
  const joined = joinData(p);
  const nextFieldAt = p.nextFieldAt!;
  const innerNext = p.innerNext!;
  release(r, key, p);
  const out = new Uint8Array(head.length + joined.length);
  out.set(head, 0);
  out.set(joined, head.length);
  out[nextFieldAt] = innerNext;
  const payloadLength = out.length - IPV6_HEADER_LENGTH;
  if (payloadLength > 0xffff) {
    r.stats.invalid++;
    return undefined;
  }
  out[4] = payloadLength >>> 8;
  out[5] = payloadLength & 0xff;
  r.stats.reassembled++;
  return out;
}

function freePieces(r: Reassembly, p: Pending): void {
  for (const piece of p.pieces) r.bytes -= piece.data.length;
  p.pieces.length = 0;
}

function release(r: Reassembly, key: string, p: Pending): void {
  r.pending.delete(key);
  freePieces(r, p);
}

function evictOldest(r: Reassembly): string {
  const [oldKey, old] = r.pending.entries().next().value as [string, Pending];
  r.stats.evicted++;
  release(r, oldKey, old);
  return oldKey;
}

function expire(r: Reassembly, now: number): void {
  for (const [key, p] of r.pending) {
    if (now - p.created < r.timeoutMs) break;
    if (!p.poisoned && p.received > 0) r.stats.timedOut++;
    release(r, key, p);
  }
}

function entry(r: Reassembly, key: string, now: number): Pending {
  let p = r.pending.get(key);
  if (!p) {
    if (r.pending.size >= r.maxDatagrams) evictOldest(r);
    p = { created: now, pieces: [], received: 0, poisoned: false };
    r.pending.set(key, p);
  }
  return p;
}

/** Hold fragment data [offset, offset + data.length) of `p`; false when it was dropped (and counted). */
function admit(r: Reassembly, key: string, p: Pending, offset: number, data: Uint8Array, more: boolean, limit: number): boolean {
  const stats = r.stats;
  if (p.poisoned) {
    stats.overlapping++;
    return false;
  }
  const end = offset + data.length;
  if ((more && data.length % 8 !== 0) || end > limit || (p.total !== undefined && (end > p.total || (!more && end !== p.total)))) {
    stats.invalid++;
    release(r, key, p);
    return false;
  }
  const overlap = findOverlap(p, offset, data);
  if (overlap === "duplicate") {
    stats.duplicates++;
    return false;
  }
  if (overlap === "overlap") {
    stats.overlapping++;
    // Keep the entry as a tombstone so the rest of this datagram is dropped too, until it expires.
    freePieces(r, p);
    p.poisoned = true;
    return false;
  }
  if (!more) {
    if (p.pieces.some((piece) => piece.offset + piece.data.length > end)) {
      stats.invalid++;
      release(r, key, p);
      return false;
    }
    p.total = end;
  }
  while (r.bytes + data.length > r.maxBytes && r.pending.size > 0) {
    if (evictOldest(r) === key) return false;
  }
  const copy = data.slice();
  p.pieces.push({ offset, data: copy });
  p.received += copy.length;
  r.bytes += copy.length;
  return true;
}

/** Whether data at `offset` overlaps a held piece: not at all, as an exact duplicate, or otherwise. */
function findOverlap(p: Pending, offset: number, data: Uint8Array): "none" | "duplicate" | "overlap" {
  const end = offset + data.length;
  for (const piece of p.pieces) {
    const pEnd = piece.offset + piece.data.length;
    if (offset < pEnd && piece.offset < end) return piece.offset === offset && sameIp(piece.data, data) ? "duplicate" : "overlap";
  }
  return "none";
}

function joinData(p: Pending): Uint8Array {
  const data = new Uint8Array(p.total!);
  for (const piece of p.pieces) data.set(piece.data, piece.offset);
  return data;
}
