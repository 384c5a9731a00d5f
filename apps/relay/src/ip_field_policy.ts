/**
 * What a relayed datagram's IP header carries on: its TOS byte / traffic class (DSCP + ECN) and its
 * TTL. By default both directions keep the class as it arrived (QUIC's ECN validation, the DSCP of
 * games and VoIP survive the relay) and leave the TTL to the system, as a proxy does; operators can
 * re-mark DSCP, clear ECN, or decrement the TTL like a router.
 * @module
 */

/** The settings behind `--dscp`, `--ecn` and `--ttl`. */
export interface IpFieldSettings {
  /** keep: as received; clear: 0; a number: that DSCP (0–63). ECN is separate. */
  readonly dscp: "keep" | "clear" | number;
  readonly ecn: "keep" | "clear";
  /** system: the socket's or transport's default; keep: received − 1 (a router's rule); a number: that TTL. */
  readonly ttl: "system" | "keep" | number;
}

/** The defaults: the class kept, the TTL the system's. */
export const DEFAULT_IP_FIELDS: IpFieldSettings = { dscp: "keep", ecn: "keep", ttl: "system" };

/** The per-datagram decisions, cheap enough for the receive loops. */
export interface IpFieldPolicy {
  /** The relay's sockets must read each datagram's class (IP_RECVTOS / IPV6_RECVTCLASS). */
  readonly readsClass: boolean;
  /** They must read its TTL (IP_RECVTTL / IPV6_RECVHOPLIMIT): `--ttl keep`. */
  readonly readsTtl: boolean;
  /** The class to send with, given the one received (-1 when unknown, taken as 0). */
  classOf(received: number): number;
  /**
   * The TTL to send with, given the one received (-1 when unknown): -1 leaves the default, 0 means
   * the datagram has expired (received with TTL 1 under `--ttl keep`) and must be dropped.
   */
  ttlOf(received: number): number;
}

/**
 * The policy for `settings`: the class through a 256-entry table, the TTL rule as a closure.
 * @example createIpFieldPolicy({ dscp: "clear", ecn: "keep", ttl: "keep" }).classOf(0xb9) // 0x01
 */
export function createIpFieldPolicy(settings: IpFieldSettings = DEFAULT_IP_FIELDS): IpFieldPolicy {
  const table = new Uint8Array(256);
  for (let tos = 0; tos < 256; tos++) {
    const dscp = settings.dscp === "keep" ? tos >>> 2 : settings.dscp === "clear" ? 0 : settings.dscp;
    const ecn = settings.ecn === "keep" ? tos & 3 : 0;
    table[tos] = (dscp << 2) | ecn;
  }
  const fixedClass = settings.dscp !== "keep" && settings.ecn === "clear";
  const ttl = settings.ttl;
  return {
    readsClass: !fixedClass,
    readsTtl: ttl === "keep",
    classOf: (received) => table[received < 0 ? 0 : received]!,
    ttlOf: ttl === "system" ? () => -1 : ttl === "keep" ? (received) => (received < 0 ? -1 : received - 1) : () => ttl,
  };
}
