/**
 * Deno adapter: {@link LIBC_SIGNATURES} through `Deno.dlopen`. Only this file calls Deno's FFI.
 * Needs `--allow-ffi` (no unstable flag on Deno 2.9).
 * @module
 */
import { bufferAddresses } from "./buffer_addresses.ts";
import { LIBC_SIGNATURES, type LibcAdapter, type LibcFunctions, type NeutralType } from "./libc_signatures.ts";

// The parts of the Deno namespace used here, typed locally so tsc needs no Deno types.
type PointerObject = object;
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, { name?: string; parameters: string[]; result: string; nonblocking?: boolean }>): { symbols: Record<string, (...a: unknown[]) => unknown> };
  UnsafePointer: { of(view: ArrayBufferView): PointerObject | null; value(p: PointerObject | null): number | bigint; create(v: bigint): PointerObject | null };
  UnsafePointerView: { getArrayBuffer(p: PointerObject, length: number): ArrayBuffer };
}

const DENO_TYPES: Record<NeutralType, string> = { i32: "i32", u32: "u32", usize: "usize", buf: "buffer", pointer: "pointer", null: "pointer", void: "void" };

/** Open libc with Deno's FFI. */
export function openDenoLibc(path: string): LibcAdapter {
  const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const defs: Record<string, { name?: string; parameters: string[]; result: string; nonblocking?: boolean }> = {};
  for (const [name, sig] of Object.entries(LIBC_SIGNATURES)) {
    defs[name] = { parameters: sig.args.map((t) => DENO_TYPES[t]), result: DENO_TYPES[sig.returns] };
  }
  // The same epoll_wait, run by Deno on a blocking-pool thread: the poller's idle wait.
  defs.epoll_wait_off_thread = { ...defs.epoll_wait!, name: "epoll_wait", nonblocking: true };
  const lib = deno.dlopen(path, defs);
  const waitOffThread = lib.symbols.epoll_wait_off_thread! as (epfd: number, events: Uint8Array, max: number, timeout: number) => Promise<number>;
  const fn = { ...lib.symbols } as Record<string, (...a: unknown[]) => unknown>;
  // Pointer results arrive as pointer objects; the neutral contract is a number.
  const errnoLocation = lib.symbols.__errno_location!;
  fn.__errno_location = () => Number(deno.UnsafePointer.value(errnoLocation() as PointerObject));
  return {
    runtime: "deno",
    fn: fn as unknown as LibcFunctions,
    // UnsafePointer.of allocates a pointer object per call: once per buffer instead.
    addressOf: bufferAddresses((buffer) => Number(deno.UnsafePointer.value(deno.UnsafePointer.of(new Uint8Array(buffer))))),
    memoryAt: (address, length) => deno.UnsafePointerView.getArrayBuffer(deno.UnsafePointer.create(BigInt(address))!, length),
    epollWaitOffThread: (epfd, events, maxEvents) => waitOffThread(epfd, events, maxEvents, -1),
  };
}
