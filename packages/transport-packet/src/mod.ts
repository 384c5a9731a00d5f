/** @anysrc/transport-packet — UDP with any source as frames through AF_PACKET, next hops from rtnetlink. @module */
export * from "./packet_transport.ts";
export { createNextHops, type NextHop, type NextHops, type NextHopStats } from "./next_hops.ts";
