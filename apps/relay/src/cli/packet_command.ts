/**
 * `anysrc packet build|decode`: the wire library from the command line.
 * @module
 */
import { parseArgs } from "node:util";
import {
  ALL_CHECKSUMS,
  buildUdpPacket,
  decodePacket,
  fragmentPacket,
  IPV4_MIN_MTU,
  IPV6_MIN_MTU,
  maxUdpPayload,
  parseHex,
  toHex,
  udpHeadersLength,
} from "@anysrc/core";
import { addressFlag, intFlag, UsageError } from "./usage_error.ts";

export const PACKET_USAGE = `Usage: anysrc packet <build|decode> [options]

  build    write an IPv4 or IPv6 + UDP packet (and its fragments) as hex, one per line
  decode   describe every layer of a hex packet as JSON

Run "anysrc packet build --help" or "anysrc packet decode --help" for their options.`;

export const BUILD_USAGE = `Usage: anysrc packet build --src ADDR --dst ADDR (--payload-hex HEX | --payload-size N)
                          [--ttl N] [--tos N] [--id N] [--mtu N]

  --src ADDR          source, e.g. 198.19.2.2:7000 or [2001:db8:2::2]:7000
  --dst ADDR          destination, same family as --src
  --payload-hex HEX   payload bytes as hex
  --payload-size N    payload of N bytes, byte i = i % 256
  --ttl N             TTL / hop limit (default 64)
  --tos N             IPv4 TOS byte / IPv6 traffic class (default 0)
  --id N              IPv4 identification / IPv6 fragment identification (default 0)
  --mtu N             fragment packets larger than N bytes

Prints each IP packet as lowercase hex, one per line, every checksum filled.
Example: anysrc packet build --src 198.19.2.2:7000 --dst 198.18.1.2:40000 --payload-hex 68656c6c6f`;

export const DECODE_USAGE = `Usage: anysrc packet decode [--ethernet] HEX

  --ethernet   HEX is an Ethernet II frame, not an IP packet

Prints one JSON document describing every layer. Exit 1 when the packet is malformed.
Example: anysrc packet decode 45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f`;

/**
 * Run `packet build`; returns the lines to print.
 * @example packetBuild(["--src", "198.19.2.2:7000", "--dst", "198.18.1.2:40000", "--payload-hex", "68656c6c6f"])
 */
export function packetBuild(args: string[]): string[] {
  const cmd = "packet build";
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      src: { type: "string" },
      dst: { type: "string" },
      "payload-hex": { type: "string" },
      "payload-size": { type: "string" },
      ttl: { type: "string" },
      tos: { type: "string" },
      id: { type: "string" },
      mtu: { type: "string" },
    },
  });
  const src = addressFlag(cmd, "--src", values.src);
  const dst = addressFlag(cmd, "--dst", values.dst);
  if (src.family !== dst.family) throw new UsageError(cmd, `--src ${values.src} and --dst ${values.dst} are different IP families`);
  const hexText = values["payload-hex"];
  const sizeText = values["payload-size"];
  if ((hexText === undefined) === (sizeText === undefined)) throw new UsageError(cmd, "give exactly one of --payload-hex and --payload-size");
  const max = maxUdpPayload(src.family);
  let payload: Uint8Array;
  if (hexText !== undefined) {
    try {
      payload = parseHex(hexText);
    } catch (e) {
      throw new UsageError(cmd, `--payload-hex: ${(e as Error).message}`);
    }
    if (payload.length > max) throw new UsageError(cmd, `--payload-hex: ${payload.length} bytes exceed the IPv${src.family} maximum ${max}`);
  } else {
    const size = intFlag(cmd, "--payload-size", sizeText, 0, max)!;
    payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = i & 0xff;
  }
  const ttl = intFlag(cmd, "--ttl", values.ttl, 0, 255) ?? 64;
  const tos = intFlag(cmd, "--tos", values.tos, 0, 255) ?? 0;
  const id = intFlag(cmd, "--id", values.id, 0, src.family === 4 ? 0xffff : 0xffffffff) ?? 0;
  const minMtu = src.family === 4 ? IPV4_MIN_MTU : IPV6_MIN_MTU;
  const mtu = intFlag(cmd, "--mtu", values.mtu, minMtu, 65535);
  const buf = new Uint8Array(udpHeadersLength(src.family) + payload.length);
  const n = buildUdpPacket(buf, 0, src, dst, payload, { checksums: ALL_CHECKSUMS, ttl, tos, identification: src.family === 4 ? id : 0 });
  const packets = mtu === undefined ? [buf.subarray(0, n)] : fragmentPacket(buf.subarray(0, n), mtu, id);
  return packets.map(toHex);
}

/**
 * Run `packet decode`; returns the JSON text to print.
 * @example packetDecode(["45000021…"])
 */
export function packetDecode(args: string[]): string {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { ethernet: { type: "boolean" } } });
  if (positionals.length !== 1) throw new UsageError("packet decode", `expected one HEX argument, got ${positionals.length}`);
  // Malformed hex or packets are bad input (exit 1), not bad usage: WireError propagates.
  return JSON.stringify(decodePacket(parseHex(positionals[0]!), { ethernet: values.ethernet ?? false }), null, 2);
}
