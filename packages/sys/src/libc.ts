/**
 * libc, opened once per thread through the runtime's adapter, and errno read right after a call.
 * @module
 */
import { errnoName, SystemError } from "@anysrc/core";
import type { LibcAdapter, LibcFunctions } from "./libc_signatures.ts";
import { detectRuntime } from "./runtime.ts";

const LIBC_PATH = "libc.so.6";

async function openLibc(): Promise<LibcAdapter> {
  const runtime = detectRuntime();
  if (runtime === "bun") return (await import("./ffi_bun.ts")).openBunLibc(LIBC_PATH);
  if (runtime === "node") return (await import("./ffi_node.ts")).openNodeLibc(LIBC_PATH);
  return (await import("./ffi_deno.ts")).openDenoLibc(LIBC_PATH);
}

/** The adapter for this thread (each Worker opens its own). */
export const adapter: LibcAdapter = await openLibc();
/** The typed libc functions. */
export const libc: LibcFunctions = adapter.fn;

// errno is thread-local; this thread's slot is at a fixed address, so a typed view over it makes
// reading errno a plain array load instead of an FFI call.
const errnoView = new Int32Array(adapter.memoryAt(libc.__errno_location(), 4));

/**
 * errno of the last failed call on this thread. Read it right after the synchronous call.
 * @example if (libc.bind(fd, sa, len) < 0) console.log(errno())
 */
export function errno(): number {
  return errnoView[0]!;
}

/**
 * The typed error for the call that just failed, errno read now.
 * @example if (libc.bind(fd, sa, n) < 0) throw lastError("bind", fd, "198.19.2.2:7000");
 */
export function lastError(syscall: string, fd?: number, address?: string): SystemError {
  const e = errnoView[0]!;
  return new SystemError({
    syscall,
    errno: e,
    code: errnoName(e),
    ...(fd !== undefined ? { fd } : {}),
    ...(address !== undefined ? { address } : {}),
  });
}

/**
 * Throw the typed error when a call returned a negative value; otherwise return the value.
 * @example const fd = check(libc.socket(2, 2, 0), "socket");
 */
export function check(result: number, syscall: string, fd?: number, address?: string): number {
  if (result < 0) throw lastError(syscall, fd, address);
  return result;
}

/** A NUL-terminated C string in a fresh buffer (set-up path only). */
export function cString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
