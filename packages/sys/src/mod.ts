/**
 * @anysrc/sys — libc over FFI for Bun and Deno: sockets and their options, batched receive/send with
 * control messages, TUN devices, errno as typed errors, and the poller.
 * @module
 */
export { adapter, check, errno, lastError, libc } from "./libc.ts";
export type { LibcAdapter, LibcFunctions, NeutralType, Signature } from "./libc_signatures.ts";
export { LIBC_SIGNATURES } from "./libc_signatures.ts";
export * as linux from "./linux_constants.ts";
export * from "./capabilities.ts";
export * from "./clock.ts";
export * from "./cpu_affinity.ts";
export * from "./drain_waiter.ts";
export * from "./free_memory.ts";
export * from "./gather_write.ts";
export * from "./mapped_memory.ts";
export * from "./netlink_route.ts";
export * from "./poller.ts";
export * from "./queued_transport.ts";
export * from "./recv_ring.ts";
export * from "./runtime.ts";
export * from "./send_ring.ts";
export * from "./service_notify.ts";
export * from "./sockaddr.ts";
export * from "./socket.ts";
export * from "./tun.ts";
