/**
 * Ethernet II frames (IEEE 802.3 with an EtherType): record, parse/emit.
 * @module
 */
import { WireError } from "./errors.ts";

/** Length of an Ethernet II header. */
export const ETHERNET_HEADER_LENGTH = 14;
/** EtherTypes this library names. */
export const EtherType = { Ipv4: 0x0800, Arp: 0x0806, Ipv6: 0x86dd } as const;

/** An Ethernet II header; MAC addresses are 6 bytes each. */
export interface EthernetHeader {
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly etherType: number;
}

/**
 * Parse an Ethernet II frame (without FCS).
 * @example parseEthernet(frame).header.etherType === EtherType.Ipv4
 * @throws {WireError} fewer than 14 bytes, or an 802.3 length instead of an EtherType.
 */
export function parseEthernet(bytes: Uint8Array): { header: EthernetHeader; payload: Uint8Array } {
  if (bytes.length < ETHERNET_HEADER_LENGTH) {
    throw new WireError("truncated", `truncated Ethernet header: ${bytes.length} of ${ETHERNET_HEADER_LENGTH} bytes`);
  }
  const etherType = (bytes[12]! << 8) | bytes[13]!;
  if (etherType < 0x0600) throw new WireError("bad-version", `802.3 length field ${etherType}, not an Ethernet II EtherType`);
  return {
    header: { dst: bytes.slice(0, 6), src: bytes.slice(6, 12), etherType },
    payload: bytes.subarray(ETHERNET_HEADER_LENGTH),
  };
}

/** Write an Ethernet II header; returns 14. */
export function emitEthernet(h: EthernetHeader, out: Uint8Array, offset: number): number {
  out.set(h.dst.subarray(0, 6), offset);
  out.set(h.src.subarray(0, 6), offset + 6);
  out[offset + 12] = h.etherType >>> 8;
  out[offset + 13] = h.etherType & 0xff;
  return ETHERNET_HEADER_LENGTH;
}

/** Format a MAC address as `02:00:00:00:00:01`. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}
