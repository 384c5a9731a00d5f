/** @anysrc/transport-raw — UDP with any source through one IPPROTO_RAW socket per family. @module */
export * from "./raw_transport.ts";
// The building blocks the packet transport shares: the emit step (its own destinations) and the route MTUs.
export { createRawEmit, type FamilySocket, type RawEmitContext } from "./raw_emit.ts";
export { createRouteMtus, type RouteMtus } from "./route_mtus.ts";
