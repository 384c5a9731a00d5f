/** @anysrc/transport-raw — UDP with any source through one IPPROTO_RAW socket per family. @module */
export * from "./raw_transport.ts";
