/**
 * Bun adapter: {@link LIBC_SIGNATURES} through `bun:ffi`. Only this file touches bun:ffi.
 * @module
 */
import type * as BunFfi from "bun:ffi";
import { LIBC_SIGNATURES, type LibcAdapter, type LibcFunctions, type NeutralType } from "./libc_signatures.ts";

const BUN_TYPES: Record<NeutralType, BunFfi.FFITypeOrString> = {
  i32: "i32",
  u32: "u32",
  usize: "usize",
  buf: "ptr",
  pointer: "ptr",
  null: "ptr",
  void: "void",
};

/** Bun's `process`, which hands out its built-in modules synchronously. */
interface BunProcess {
  getBuiltinModule(id: "bun:ffi"): typeof BunFfi;
}

/** Open libc with Bun's FFI. */
export function openBunLibc(path: string): LibcAdapter {
  // Through getBuiltinModule rather than an import, so Deno and JSR never try to resolve "bun:ffi".
  const ffi = (globalThis as unknown as { process: BunProcess }).process.getBuiltinModule("bun:ffi");
  const defs: Record<string, BunFfi.FFIFunction> = {};
  for (const [name, sig] of Object.entries(LIBC_SIGNATURES)) {
    defs[name] = { args: sig.args.map((t) => BUN_TYPES[t]), returns: BUN_TYPES[sig.returns] };
  }
  const lib = ffi.dlopen(path, defs);
  return {
    runtime: "bun",
    fn: lib.symbols as unknown as LibcFunctions,
    addressOf: (view) => ffi.ptr(view),
    memoryAt: (address, length) => ffi.toArrayBuffer(address as BunFfi.Pointer, 0, length),
  };
}
