/**
 * Deno adapter: {@link LIBC_SIGNATURES} through `Deno.dlopen`. Only this file calls Deno's FFI.
 * Needs `--allow-ffi` (no unstable flag on Deno 2.9).
 * @module
 */
import { bufferAddresses } from "./buffer_addresses.ts";
import { LIBC_SIGNATURES, type LibcAdapter, type LibcFunctions, type NeutralType } from "./libc_signatures.ts";

const DENO_TYPES: Record<NeutralType, Deno.NativeType | "void"> = {
  i32: "i32",
  u32: "u32",
  usize: "usize",
  buf: "buffer",
  pointer: "pointer",
  null: "pointer",
  void: "void",
};

/** Open libc with Deno's FFI. */
export function openDenoLibc(path: string): LibcAdapter {
  const deno = globalThis.Deno;
  const defs: Record<string, Deno.ForeignFunction> = {};
  for (const [name, sig] of Object.entries(LIBC_SIGNATURES)) {
    defs[name] = { parameters: sig.args.map((t) => DENO_TYPES[t] as Deno.NativeType), result: DENO_TYPES[sig.returns] };
  }
  // The same epoll_wait, run by Deno on a blocking-pool thread: the poller's idle wait.
  defs.epoll_wait_off_thread = { ...defs.epoll_wait!, name: "epoll_wait", nonblocking: true };
  const lib = deno.dlopen(path, defs);
  const waitOffThread = lib.symbols.epoll_wait_off_thread! as (epfd: number, events: Uint8Array, max: number, timeout: number) => Promise<number>;
  const fn = { ...lib.symbols } as Record<string, (...a: unknown[]) => unknown>;
  // Pointer results arrive as pointer objects (null for NULL); the neutral contract is a number.
  for (const [name, sig] of Object.entries(LIBC_SIGNATURES)) {
    if (sig.returns !== "pointer") continue;
    const f = fn[name]!;
    fn[name] = (...a: unknown[]) => Number(deno.UnsafePointer.value(f(...a) as Deno.PointerValue));
  }
  return {
    runtime: "deno",
    fn: fn as unknown as LibcFunctions,
    // UnsafePointer.of allocates a pointer object per call: once per buffer instead. It takes shared
    // memory too (the poller's control block), which Deno's types leave out.
    addressOf: bufferAddresses((buffer) => Number(deno.UnsafePointer.value(deno.UnsafePointer.of(new Uint8Array(buffer as ArrayBuffer))))),
    memoryAt: (address, length) => deno.UnsafePointerView.getArrayBuffer(deno.UnsafePointer.create(BigInt(address))!, length),
    epollWaitOffThread: (epfd, events, maxEvents) => waitOffThread(epfd, events, maxEvents, -1),
  };
}
