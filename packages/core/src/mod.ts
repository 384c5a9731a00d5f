/**
 * @anysrc/core — addresses, wire formats, checksums, fragmentation and the Transport contract.
 * Pure TypeScript: no runtime API is touched here.
 * @module
 */
export * from "./address.ts";
export * from "./address_key.ts";
export * from "./byte_arena.ts";
export * from "./checksum.ts";
export * from "./decode.ts";
export * from "./errors.ts";
export * from "./ethernet.ts";
export * from "./fragment.ts";
export * from "./udp_fragments.ts";
export * from "./udp_gso.ts";
export * from "./hex.ts";
export * from "./icmp.ts";
export * from "./ip_ids.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./packet.ts";
export * from "./prefix_table.ts";
export * from "./reassembly.ts";
export * from "./recency.ts";
export * from "./send_queue.ts";
export * from "./transport.ts";
export * from "./udp.ts";
