/**
 * Decode every layer of a packet into a JSON-ready description: what `anysrc packet decode` prints.
 * Strict: length fields must agree with the bytes given.
 * @module
 */
import { formatIp } from "./address.ts";
import { EtherType, formatMac, parseEthernet } from "./ethernet.ts";
import { WireError } from "./errors.ts";
import { toHex } from "./hex.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type ParsedIcmp, parseIcmp } from "./icmp.ts";
import { parseIpv4 } from "./ipv4.ts";
import { NextHeader, parseIpv6 } from "./ipv6.ts";
import { IPPROTO_UDP, parseUdp } from "./udp.ts";

/** A JSON value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const EXTENSION_NAMES: Record<number, string> = {
  [NextHeader.HopByHop]: "hop-by-hop",
  [NextHeader.Routing]: "routing",
  [NextHeader.Fragment]: "fragment",
  [NextHeader.DestinationOptions]: "destination-options",
  [NextHeader.Auth]: "authentication",
};

const hex16 = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;

function describeUdp(bytes: Uint8Array, src: Uint8Array, dst: Uint8Array): Json {
  const udp = parseUdp(bytes, src, dst);
  return {
    srcPort: udp.header.srcPort,
    dstPort: udp.header.dstPort,
    length: udp.header.length,
    checksum: hex16(udp.header.checksum),
    checksumValid: udp.checksumValid,
    payloadLength: udp.payload.length,
    payload: toHex(udp.payload),
  };
}

function describeIcmp(icmp: ParsedIcmp): Json {
  const m = icmp.message;
  const base = { type: icmp.type, code: icmp.code, checksum: hex16(icmp.checksum), checksumValid: icmp.checksumValid };
  switch (m.kind) {
    case "echo-request":
    case "echo-reply":
      return { ...base, kind: m.kind, identifier: m.identifier, sequence: m.sequence, data: toHex(m.data) };
    case "destination-unreachable":
      return { ...base, kind: m.kind, nextHopMtu: m.nextHopMtu, quoted: toHex(m.quoted) };
    case "packet-too-big":
      return { ...base, kind: m.kind, mtu: m.mtu, quoted: toHex(m.quoted) };
    case "other":
      return { ...base, kind: m.kind, body: toHex(m.body) };
  }
}

function decodeIp(bytes: Uint8Array): { [key: string]: Json } {
  if (bytes.length === 0) throw new WireError("truncated", "empty packet");
  const version = bytes[0]! >>> 4;
  if (version === 4) {
    const ip = parseIpv4(bytes);
    if (ip.totalLength !== bytes.length) {
      throw new WireError("length-mismatch", `IPv4 total length ${ip.totalLength} disagrees with the ${bytes.length} bytes given`);
    }
    const h = ip.header;
    const out: { [key: string]: Json } = {
      ipv4: {
        version: 4,
        headerLength: ip.headerLength,
        dscp: h.dscp,
        ecn: h.ecn,
        totalLength: ip.totalLength,
        identification: h.identification,
        dontFragment: h.dontFragment,
        moreFragments: h.moreFragments,
        fragmentOffset: h.fragmentOffset,
        ttl: h.ttl,
        protocol: h.protocol,
        checksum: hex16((bytes[10]! << 8) | bytes[11]!),
        checksumValid: ip.checksumValid,
        src: formatIp(h.src),
        dst: formatIp(h.dst),
        options: toHex(h.options),
      },
    };
    if (h.moreFragments || h.fragmentOffset !== 0) {
      out.fragmentData = { length: ip.payload.length, note: "upper layer not decoded in a fragment; reassemble first" };
    } else if (h.protocol === IPPROTO_UDP) {
      out.udp = describeUdp(ip.payload, h.src, h.dst);
    } else if (h.protocol === IPPROTO_ICMP) {
      out.icmp = describeIcmp(parseIcmp(ip.payload, 4));
    } else {
      out.payload = { protocol: h.protocol, length: ip.payload.length, data: toHex(ip.payload) };
    }
    return out;
  }
  if (version === 6) {
    const ip = parseIpv6(bytes);
    if (ip.totalLength !== bytes.length) {
      throw new WireError("length-mismatch", `IPv6 payload length ${ip.header.payloadLength} disagrees with the ${bytes.length - 40} bytes after the header`);
    }
    const h = ip.header;
    const out: { [key: string]: Json } = {
      ipv6: {
        version: 6,
        trafficClass: h.trafficClass,
        flowLabel: h.flowLabel,
        payloadLength: h.payloadLength,
        nextHeader: h.nextHeader,
        hopLimit: h.hopLimit,
        src: formatIp(h.src),
        dst: formatIp(h.dst),
        extensions: ip.extensions.map((e) => ({ type: e.type, name: EXTENSION_NAMES[e.type] ?? "unknown", offset: e.offset, length: e.length })),
        upperProtocol: ip.upperProtocol,
      },
    };
    if (ip.fragment) {
      const f = ip.fragment;
      out.fragment = { nextHeader: f.nextHeader, fragmentOffset: f.fragmentOffset, moreFragments: f.moreFragments, identification: f.identification };
    }
    if (ip.fragment && (ip.fragment.moreFragments || ip.fragment.fragmentOffset !== 0)) {
      out.fragmentData = { length: ip.payload.length, note: "upper layer not decoded in a fragment; reassemble first" };
    } else if (ip.upperProtocol === IPPROTO_UDP) {
      out.udp = describeUdp(ip.payload, h.src, h.dst);
    } else if (ip.upperProtocol === IPPROTO_ICMPV6) {
      out.icmpv6 = describeIcmp(parseIcmp(ip.payload, 6, h.src, h.dst));
    } else {
      out.payload = { protocol: ip.upperProtocol, length: ip.payload.length, data: toHex(ip.payload) };
    }
    return out;
  }
  throw new WireError("bad-version", `not an IP packet: version ${version}`);
}

/**
 * Describe every layer of an IP packet (or an Ethernet II frame with `ethernet: true`).
 * @example decodePacket(parseHex("4500…")).udp
 * @throws {WireError} on any malformed or disagreeing layer.
 */
export function decodePacket(bytes: Uint8Array, options: { ethernet?: boolean } = {}): { [key: string]: Json } {
  if (!options.ethernet) return decodeIp(bytes);
  const eth = parseEthernet(bytes);
  const link: Json = { dst: formatMac(eth.header.dst), src: formatMac(eth.header.src), etherType: hex16(eth.header.etherType) };
  if (eth.header.etherType !== EtherType.Ipv4 && eth.header.etherType !== EtherType.Ipv6) {
    return { ethernet: link, payload: { length: eth.payload.length, data: toHex(eth.payload) } };
  }
  // Frames shorter than 60 bytes are padded on the wire: trim to the IP packet's own length.
  let payload = eth.payload;
  if (eth.header.etherType === EtherType.Ipv4 && payload.length >= 4) payload = payload.subarray(0, Math.min(payload.length, (payload[2]! << 8) | payload[3]!));
  if (eth.header.etherType === EtherType.Ipv6 && payload.length >= 6) {
    payload = payload.subarray(0, Math.min(payload.length, 40 + ((payload[4]! << 8) | payload[5]!)));
  }
  return { ethernet: link, ...decodeIp(payload) };
}
