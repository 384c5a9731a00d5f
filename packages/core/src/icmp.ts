/**
 * ICMPv4 (RFC 792) and ICMPv6 (RFC 4443): echo, destination unreachable (with the quoted packet),
 * packet too big; anything else kept as type/code/body.
 * @module
 */
import { finishChecksum, pseudoHeaderSum, sumBytes } from "./checksum.ts";
import { WireError } from "./errors.ts";

/** IP protocol numbers of ICMP for IPv4 and IPv6. */
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;

/** An ICMP message as a record; `version` says which of ICMPv4/ICMPv6 numbering applies. */
export type IcmpMessage =
  | { readonly kind: "echo-request" | "echo-reply"; readonly identifier: number; readonly sequence: number; readonly data: Uint8Array }
  | { readonly kind: "destination-unreachable"; readonly code: number; readonly nextHopMtu: number; readonly quoted: Uint8Array }
  | { readonly kind: "packet-too-big"; readonly mtu: number; readonly quoted: Uint8Array }
  | { readonly kind: "other"; readonly type: number; readonly code: number; readonly body: Uint8Array };

/** A parsed ICMP message with its checksum status (null for ICMPv6 without the pseudo-header). */
export interface ParsedIcmp {
  readonly version: 4 | 6;
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  readonly checksumValid: boolean | null;
  readonly message: IcmpMessage;
}

const TYPES = {
  4: { echoRequest: 8, echoReply: 0, unreachable: 3, tooBig: -1 },
  6: { echoRequest: 128, echoReply: 129, unreachable: 1, tooBig: 2 },
} as const;

/**
 * Parse an ICMPv4 or ICMPv6 message (the whole IP payload). ICMPv6 needs the addresses to verify its
 * checksum, which covers a pseudo-header.
 * @example parseIcmp(ip.payload, 4).message.kind // "destination-unreachable"
 * @throws {WireError} fewer than 8 bytes.
 */
export function parseIcmp(bytes: Uint8Array, version: 4 | 6, src?: Uint8Array, dst?: Uint8Array): ParsedIcmp {
  if (bytes.length < 8) throw new WireError("truncated", `truncated ICMP${version === 6 ? "v6" : ""} header: ${bytes.length} of 8 bytes`);
  const type = bytes[0]!;
  const code = bytes[1]!;
  const checksum = (bytes[2]! << 8) | bytes[3]!;
  const u16 = (at: number) => (bytes[at]! << 8) | bytes[at + 1]!;
  let checksumValid: boolean | null = null;
  if (version === 4) checksumValid = finishChecksum(sumBytes(bytes, 0, bytes.length)) === 0;
  else if (src && dst) checksumValid = finishChecksum(pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, bytes.length) + sumBytes(bytes, 0, bytes.length)) === 0;
  const t = TYPES[version];
  let message: IcmpMessage;
  if (type === t.echoRequest || type === t.echoReply) {
    message = { kind: type === t.echoRequest ? "echo-request" : "echo-reply", identifier: u16(4), sequence: u16(6), data: bytes.slice(8) };
  } else if (type === t.unreachable) {
    // RFC 1191: ICMPv4 "fragmentation needed" carries the next-hop MTU in the low 16 bits.
    message = { kind: "destination-unreachable", code, nextHopMtu: version === 4 ? u16(6) : 0, quoted: bytes.slice(8) };
  } else if (type === t.tooBig) {
    message = { kind: "packet-too-big", mtu: ((u16(4) << 16) | u16(6)) >>> 0, quoted: bytes.slice(8) };
  } else {
    message = { kind: "other", type, code, body: bytes.slice(4) };
  }
  return { version, type, code, checksum, checksumValid, message };
}

/** Bytes {@link emitIcmp} writes for this message. */
export function icmpLength(m: IcmpMessage): number {
  switch (m.kind) {
    case "echo-request":
    case "echo-reply":
      return 8 + m.data.length;
    case "destination-unreachable":
    case "packet-too-big":
      return 8 + m.quoted.length;
    case "other":
      return 4 + m.body.length;
  }
}

/**
 * Write an ICMP message with its checksum; ICMPv6 requires `src`/`dst` for the pseudo-header.
 * Returns the length written.
 * @example emitIcmp({ kind: "echo-request", identifier: 1, sequence: 1, data }, 4, buf, 20)
 */
export function emitIcmp(m: IcmpMessage, version: 4 | 6, out: Uint8Array, offset: number, src?: Uint8Array, dst?: Uint8Array): number {
  const t = TYPES[version];
  const o = offset;
  const len = icmpLength(m);
  const put16 = (at: number, v: number) => {
    out[o + at] = (v >>> 8) & 0xff;
    out[o + at + 1] = v & 0xff;
  };
  out.fill(0, o, o + 8);
  switch (m.kind) {
    case "echo-request":
    case "echo-reply":
      out[o] = m.kind === "echo-request" ? t.echoRequest : t.echoReply;
      put16(4, m.identifier);
      put16(6, m.sequence);
      out.set(m.data, o + 8);
      break;
    case "destination-unreachable":
      out[o] = t.unreachable;
      out[o + 1] = m.code;
      if (version === 4) put16(6, m.nextHopMtu);
      out.set(m.quoted, o + 8);
      break;
    case "packet-too-big":
      if (version === 4) throw new WireError("bad-version", "packet-too-big exists only in ICMPv6; use destination-unreachable code 4");
      out[o] = t.tooBig;
      put16(4, m.mtu >>> 16);
      put16(6, m.mtu & 0xffff);
      out.set(m.quoted, o + 8);
      break;
    case "other":
      out[o] = m.type;
      out[o + 1] = m.code;
      out.set(m.body, o + 4);
      break;
  }
  let sum = sumBytes(out, o, o + len);
  if (version === 6) {
    if (!src || !dst) throw new WireError("bad-version", "ICMPv6 checksum needs the source and destination addresses");
    sum += pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, len);
  }
  put16(2, finishChecksum(sum));
  return len;
}
