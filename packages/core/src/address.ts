/**
 * Socket addresses as plain records over raw address bytes, so the hot path never parses text.
 * @module
 */
import { AddressError } from "./errors.ts";

/** IP version of an address. */
export type Family = 4 | 6;

/**
 * An IP address and UDP port. `ip` holds 4 bytes (family 4) or 16 bytes (family 6), network order.
 * IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are always normalised to family 4.
 */
export interface SocketAddress {
  readonly family: Family;
  readonly ip: Uint8Array;
  readonly port: number;
}

/**
 * Parse an IPv4 dotted quad or an IPv6 address (RFC 4291 text forms) into bytes.
 * @example parseIp("198.18.1.2") // Uint8Array [198, 18, 1, 2]
 */
export function parseIp(text: string): Uint8Array {
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const v6 = parseIpv6(text);
  if (v6) return v6;
  throw new AddressError(`Cannot parse IP address "${text}"`);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    // Leading zeros are refused: inet_aton reads them as octal, a classic source of confusion.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const groups: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        groups.push(parseInt(p, 16));
      }
    }
    return groups;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** True when 16 address bytes are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isV4Mapped(ip: Uint8Array): boolean {
  return ip.length === 16 && isV4MappedAt(ip, 0);
}

/**
 * True when the 16 bytes at `bytes[at]` are an IPv4-mapped IPv6 address (::ffff:a.b.c.d), read in
 * place (a sockaddr_in6 in a receive ring).
 * @example isV4MappedAt(ring.memory, nameAt + 8)
 */
export function isV4MappedAt(bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < 10; i++) if (bytes[at + i] !== 0) return false;
  return bytes[at + 10] === 0xff && bytes[at + 11] === 0xff;
}

/**
 * True when `ip` can be one host's own address: not unspecified, not multicast, not the IPv4
 * limited broadcast or the reserved 240.0.0.0/4. A reply carrying anything else as source is a lie.
 * @example isUnicast(parseIp("224.0.0.1")) // false
 */
export function isUnicast(ip: Uint8Array): boolean {
  if (ip.length === 4) return ip[0]! < 224 && (ip[0]! | ip[1]! | ip[2]! | ip[3]!) !== 0;
  if (ip[0] === 0xff) return false;
  for (let i = 0; i < 16; i++) if (ip[i] !== 0) return true;
  return false;
}

/**
 * Format address bytes as text: dotted quad, or RFC 5952 canonical IPv6 (lowercase, longest zero run
 * compressed, mapped addresses as `::ffff:1.2.3.4`).
 * @example formatIp(new Uint8Array([198, 18, 1, 2])) // "198.18.1.2"
 */
export function formatIp(ip: Uint8Array): string {
  if (ip.length === 4) return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`;
  if (ip.length !== 16) throw new AddressError(`IP address must be 4 or 16 bytes, got ${ip.length}`);
  if (isV4Mapped(ip)) return `::ffff:${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((ip[2 * i]! << 8) | ip[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/**
 * Build a socket address from IP bytes and a port, normalising IPv4-mapped IPv6 to IPv4.
 * @example socketAddress(new Uint8Array([127, 0, 0, 1]), 53)
 */
export function socketAddress(ip: Uint8Array, port: number): SocketAddress {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AddressError(`Port ${port} out of range 0-65535`);
  }
  if (ip.length === 4) return { family: 4, ip, port };
  if (ip.length !== 16) throw new AddressError(`IP address must be 4 or 16 bytes, got ${ip.length}`);
  if (isV4Mapped(ip)) return { family: 4, ip: ip.slice(12, 16), port };
  return { family: 6, ip, port };
}

/**
 * Parse `198.18.1.2:53` or `[2001:db8::1]:53`. `[::ffff:1.2.3.4]:53` becomes the IPv4 address.
 * @example parseSocketAddress("[2001:db8::1]:53").family // 6
 */
export function parseSocketAddress(text: string): SocketAddress {
  const fail = (why: string): never => {
    throw new AddressError(`Cannot parse address "${text}": ${why}`);
  };
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) fail("missing ']'");
    host = text.slice(1, close);
    if (text[close + 1] !== ":") fail("expected ':PORT' after ']'");
    portText = text.slice(close + 2);
    if (parseIpv6(host) === undefined) fail(`"${host}" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) fail("missing ':PORT'");
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) fail("IPv6 addresses must be written in brackets, e.g. [2001:db8::1]:53");
    if (parseIpv4(host) === undefined) fail(`"${host}" is not an IPv4 address`);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) fail(portText === "" ? "missing port" : `port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) fail("port out of range");
  return socketAddress(parseIp(host), port);
}

/**
 * Format a socket address as `1.2.3.4:53` or `[2001:db8::1]:53`.
 * @example formatSocketAddress(parseSocketAddress("198.18.1.2:53")) // "198.18.1.2:53"
 */
export function formatSocketAddress(a: SocketAddress): string {
  return a.family === 4 ? `${formatIp(a.ip)}:${a.port}` : `[${formatIp(a.ip)}]:${a.port}`;
}

/** True when both addresses have the same family, IP bytes and port. */
export function sameSocketAddress(a: SocketAddress, b: SocketAddress): boolean {
  return a.port === b.port && sameIp(a.ip, b.ip);
}

/**
 * True when two IP addresses (or any two byte strings) are equal.
 * @example sameIp(parseIp("198.18.1.2"), parseIp("198.18.1.2")) // true
 */
export function sameIp(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An IP network: address bytes and prefix length. */
export interface Cidr {
  readonly family: Family;
  readonly ip: Uint8Array;
  readonly prefix: number;
}

/**
 * Parse `198.18.0.0/15` or `2001:db8::/32` (a bare address means a single host).
 * @example parseCidr("198.18.0.0/15").prefix // 15
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const host = slash < 0 ? text : text.slice(0, slash);
  let ip: Uint8Array;
  try {
    ip = parseIp(host);
  } catch {
    throw new AddressError(`Cannot parse network "${text}": "${host}" is not an IP address`);
  }
  const max = ip.length * 8;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    throw new AddressError(`Cannot parse network "${text}": prefix must be 0-${max}`);
  }
  const family: Family = ip.length === 4 ? 4 : 6;
  return { family, ip, prefix: Number(prefixText) };
}

/**
 * True when `ip` (4 or 16 bytes; mapped IPv6 counts as IPv4) lies inside the network.
 * @example cidrContains(parseCidr("198.18.0.0/15"), parseIp("198.19.2.2")) // true
 */
export function cidrContains(net: Cidr, ip: Uint8Array): boolean {
  const bytes = ip.length === 16 && net.family === 4 && isV4Mapped(ip) ? ip.subarray(12) : ip;
  if (bytes.length !== net.ip.length) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== net.ip[i]) return false;
  const rest = net.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((bytes[full]! ^ net.ip[full]!) & mask) === 0;
}
