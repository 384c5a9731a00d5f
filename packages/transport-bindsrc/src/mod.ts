/** @anysrc/transport-bindsrc — UDP with any source through IP_TRANSPARENT sockets bound per source. @module */
export * from "./bind_source_cache.ts";
export * from "./bindsrc_transport.ts";
