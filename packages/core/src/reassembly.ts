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

/**
 * Create a reassembler. Keys are (src, dst, protocol, id) for IPv4 and (src, dst, id) for IPv6.
 * @example
 * const r = createReassembler({ timeoutMs: 30_000 });
 * for (const f of fragments) whole = r.push(f, Date.now()) ?? whole;
 */
export function createReassembler(options: ReassemblerOptions = {}): Reassembler {
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  const maxDatagrams = options.maxDatagrams ?? 1024;
  const timeoutMs = options.timeoutMs ?? 30_000;
  // Map keeps insertion order: the first entry is always the oldest, which makes expiry and eviction O(1).
  const pending = new Map<string, Pending>();
  const stats: ReassemblyStats = { reassembled: 0, timedOut: 0, overlapping: 0, evicted: 0, invalid: 0, duplicates: 0 };
  let bytes = 0;

  const freePieces = (p: Pending) => {
    for (const piece of p.pieces) bytes -= piece.data.length;
    p.pieces.length = 0;
  };
  const release = (key: string, p: Pending) => {
    pending.delete(key);
    freePieces(p);
  };

  const expire = (now: number) => {
    for (const [key, p] of pending) {
      if (now - p.created < timeoutMs) break;
      if (!p.poisoned && p.received > 0) stats.timedOut++;
      release(key, p);
    }
  };

  const admit = (key: string, p: Pending, offset: number, data: Uint8Array, more: boolean, limit: number): boolean => {
    if (p.poisoned) {
      stats.overlapping++;
      return false;
    }
    const end = offset + data.length;
    if ((more && data.length % 8 !== 0) || end > limit || (p.total !== undefined && (end > p.total || (!more && end !== p.total)))) {
      stats.invalid++;
      release(key, p);
      return false;
    }
    for (const piece of p.pieces) {
      const pEnd = piece.offset + piece.data.length;
      if (offset < pEnd && piece.offset < end) {
        if (piece.offset === offset && sameIp(piece.data, data)) {
          stats.duplicates++;
          return false;
        }
        stats.overlapping++;
        // Keep the entry as a tombstone so the rest of this datagram is dropped too, until it expires.
        freePieces(p);
        p.poisoned = true;
        return false;
      }
    }
    if (!more) {
      for (const piece of p.pieces) {
        if (piece.offset + piece.data.length > end) {
          stats.invalid++;
          release(key, p);
          return false;
        }
      }
      p.total = end;
    }
    while (bytes + data.length > maxBytes && pending.size > 0) {
      const [oldKey, old] = pending.entries().next().value as [string, Pending];
      stats.evicted++;
      release(oldKey, old);
      if (oldKey === key) return false;
    }
    const copy = data.slice();
    p.pieces.push({ offset, data: copy });
    p.received += copy.length;
    bytes += copy.length;
    return true;
  };

  const entry = (key: string, now: number): Pending => {
    let p = pending.get(key);
    if (!p) {
      if (pending.size >= maxDatagrams) {
        const [oldKey, old] = pending.entries().next().value as [string, Pending];
        stats.evicted++;
        release(oldKey, old);
      }
      p = { created: now, pieces: [], received: 0, poisoned: false };
      pending.set(key, p);
    }
    return p;
  };

  const joinData = (p: Pending): Uint8Array => {
    const data = new Uint8Array(p.total!);
    for (const piece of p.pieces) data.set(piece.data, piece.offset);
    return data;
  };

  const push = (packet: Uint8Array, now: number): Uint8Array | undefined => {
    expire(now);
    const version = (packet[0] ?? 0) >>> 4;
    if (version === 4) {
      const ip = parseIpv4(packet);
      const h = ip.header;
      if (!h.moreFragments && h.fragmentOffset === 0) return packet.subarray(0, ip.totalLength);
      const key = `4 ${hexOf(h.src)} ${hexOf(h.dst)} ${h.protocol} ${h.identification}`;
      const p = entry(key, now);
      if (!admit(key, p, h.fragmentOffset, ip.payload, h.moreFragments, 65535 - ip.headerLength)) return undefined;
      if (h.fragmentOffset === 0) p.head = packet.slice(0, ip.headerLength);
      if (p.total === undefined || p.received !== p.total || !p.head) return undefined;
      const head = p.head;
      const data = joinData(p);
      release(key, p);
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
      stats.reassembled++;
      return out;
    }
    if (version === 6) {
      const ip = parseIpv6(packet);
      const frag = ip.fragment;
      if (!frag || ip.fragmentHeaderOffset === undefined) return packet.subarray(0, ip.totalLength);
      // An atomic fragment (offset 0, no more) is a whole packet in a Fragment header (RFC 6946).
      const key = `6 ${hexOf(ip.header.src)} ${hexOf(ip.header.dst)} ${frag.identification}`;
      const dataStart = ip.fragmentHeaderOffset + IPV6_FRAGMENT_HEADER_LENGTH;
      const data = packet.subarray(dataStart, ip.totalLength);
      const p = entry(key, now);
      if (!admit(key, p, frag.fragmentOffset, data, frag.moreFragments, 65535 - (ip.fragmentHeaderOffset - IPV6_HEADER_LENGTH))) {
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
      release(key, p);
      const out = new Uint8Array(head.length + joined.length);
      out.set(head, 0);
      out.set(joined, head.length);
      out[nextFieldAt] = innerNext;
      const payloadLength = out.length - IPV6_HEADER_LENGTH;
      if (payloadLength > 0xffff) {
        stats.invalid++;
        return undefined;
      }
      out[4] = payloadLength >>> 8;
      out[5] = payloadLength & 0xff;
      stats.reassembled++;
      return out;
    }
    throw new WireError("bad-version", `not an IP packet: version ${version}`);
  };

  return {
    push,
    expire,
    get pendingBytes() {
      return bytes;
    },
    get pendingDatagrams() {
      return pending.size;
    },
    stats,
  };
}
