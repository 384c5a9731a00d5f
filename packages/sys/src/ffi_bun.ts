/**
 * Bun adapter: {@link LIBC_SIGNATURES} through `bun:ffi`. Only this file touches bun:ffi.
 * @module
 */
import { LIBC_SIGNATURES, type LibcAdapter, type LibcFunctions, type NeutralType } from "./libc_signatures.ts";

// The parts of bun:ffi used here, typed locally so neither tsc nor Deno needs bun-types.
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, (...a: unknown[]) => unknown> };
  ptr(view: ArrayBufferView): number;
  toArrayBuffer(address: number, offset: number, length: number): ArrayBuffer;
}

const BUN_TYPES: Record<NeutralType, string> = { i32: "i32", u32: "u32", usize: "usize", buf: "ptr", pointer: "ptr", null: "ptr", void: "void" };

/** Open libc with Bun's FFI. */
export async function openBunLibc(path: string): Promise<LibcAdapter> {
  // A non-literal specifier so Deno never tries to resolve "bun:ffi".
  const specifier = ["bun", "ffi"].join(":");
  const ffi = (await import(specifier)) as BunFfi;
  const defs: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, sig] of Object.entries(LIBC_SIGNATURES)) {
    defs[name] = { args: sig.args.map((t) => BUN_TYPES[t]), returns: BUN_TYPES[sig.returns] };
  }
  const lib = ffi.dlopen(path, defs);
  return {
    runtime: "bun",
    fn: lib.symbols as unknown as LibcFunctions,
    addressOf: (view) => ffi.ptr(view),
    memoryAt: (address, length) => ffi.toArrayBuffer(address, 0, length),
  };
}
