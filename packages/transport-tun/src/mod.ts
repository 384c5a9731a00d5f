/** @anysrc/transport-tun — UDP with any source as IP packets written to a TUN device. @module */
export * from "./tun_transport.ts";
