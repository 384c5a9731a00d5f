/**
 * The one table of libc functions anysrc calls, in runtime-neutral types. The Bun and Deno adapters
 * turn it into the same typed functions.
 *
 * Types: `i32`/`u32` C ints; `usize` a size_t or a pointer passed as a plain number (x86-64 user
 * addresses fit in 2^53); `buf` a TypedArray whose bytes are passed by pointer; `pointer` a returned
 * pointer, converted to a number. ssize_t results are declared `i32`: every count here is below 2^31
 * and -1 keeps its low 32 bits, so no BigInt ever appears on the hot path. `null` is a pointer
 * argument that is always NULL.
 *
 * Hot-path calls take no `usize` argument: Deno's fast FFI path represents 64-bit integers as
 * BigInt, and a plain number there costs ~170 ns instead of ~8 ns (denoland/deno#23983) and keeps
 * deoptimizing the calling function ("not a BigInt"). So recvmmsg/sendmmsg take their vectors as
 * `buf` views and byte counts travel inside iovecs (writev) rather than as size_t arguments.
 * @module
 */

/** A neutral parameter or result type. */
export type NeutralType = "i32" | "u32" | "usize" | "buf" | "pointer" | "null" | "void";

/** One C function: parameter types and result type. */
export interface Signature {
  readonly args: readonly NeutralType[];
  readonly returns: NeutralType;
}

export const LIBC_SIGNATURES = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "buf", "u32"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "buf", "buf"], returns: "i32" },
  bind: { args: ["i32", "buf", "u32"], returns: "i32" },
  connect: { args: ["i32", "buf", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "buf", "buf"], returns: "i32" },
  sendto: { args: ["i32", "buf", "usize", "i32", "buf", "u32"], returns: "i32" },
  sendmsg: { args: ["i32", "usize", "i32"], returns: "i32" },
  sendmmsg: { args: ["i32", "buf", "u32", "i32"], returns: "i32" },
  recvfrom: { args: ["i32", "buf", "usize", "i32", "buf", "buf"], returns: "i32" },
  recvmsg: { args: ["i32", "usize", "i32"], returns: "i32" },
  recvmmsg: { args: ["i32", "buf", "u32", "i32", "null"], returns: "i32" },
  read: { args: ["i32", "buf", "usize"], returns: "i32" },
  write: { args: ["i32", "buf", "usize"], returns: "i32" },
  writev: { args: ["i32", "buf", "i32"], returns: "i32" },
  open: { args: ["buf", "i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  getrusage: { args: ["i32", "buf"], returns: "i32" },
  // The third argument is a pointer (ifreq) for some requests and a plain value for others
  // (TUNSETOFFLOAD's flags): a number either way, addresses from adapter.addressOf. Set-up path only.
  ioctl: { args: ["i32", "usize", "usize"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
  epoll_create1: { args: ["i32"], returns: "i32" },
  epoll_ctl: { args: ["i32", "i32", "i32", "buf"], returns: "i32" },
  epoll_wait: { args: ["i32", "buf", "i32", "i32"], returns: "i32" },
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  if_nametoindex: { args: ["buf"], returns: "u32" },
  clock_gettime: { args: ["i32", "buf"], returns: "i32" },
  __errno_location: { args: [], returns: "pointer" },
  // Set-up path only (ring memory): the usize arguments are a length and an offset of 0.
  mmap: { args: ["null", "usize", "i32", "i32", "i32", "usize"], returns: "pointer" },
  munmap: { args: ["usize", "usize"], returns: "i32" },
  // glibc: free heap memory back to the kernel (the argument is a padding of 0). Housekeeping only.
  malloc_trim: { args: ["usize"], returns: "i32" },
  // The calling thread's CPU mask (pid 0), or a process's main thread's. Set-up path only.
  sched_getaffinity: { args: ["i32", "usize", "buf"], returns: "i32" },
  sched_setaffinity: { args: ["i32", "usize", "buf"], returns: "i32" },
} as const satisfies Record<string, Signature>;

type JsType<T extends NeutralType> = T extends "buf" ? Uint8Array | Int32Array | Uint32Array : T extends "void" ? void : T extends "null" ? null : number;
type JsArgs<A extends readonly NeutralType[]> = { [K in keyof A]: A[K] extends NeutralType ? JsType<A[K]> : never };

/** The typed functions an adapter produces from {@link LIBC_SIGNATURES}. */
export type LibcFunctions = {
  readonly [K in keyof typeof LIBC_SIGNATURES]: (
    ...args: JsArgs<(typeof LIBC_SIGNATURES)[K]["args"]>
  ) => JsType<(typeof LIBC_SIGNATURES)[K]["returns"]>;
};

/** The part of a Web Worker the poller uses. */
export interface WorkerLike {
  onmessage: ((e: { data: unknown }) => void) | null;
  postMessage(m: unknown): void;
  terminate(): void;
}

/** What each runtime adapter provides besides the functions. */
export interface LibcAdapter {
  readonly runtime: "bun" | "deno" | "node";
  readonly fn: LibcFunctions;
  /** Address of a TypedArray's first byte (its byteOffset included), as a number. */
  addressOf(view: Uint8Array | Int32Array | Uint32Array): number;
  /** An ArrayBuffer over `length` bytes of native memory at `address` (no copy). */
  memoryAt(address: number, length: number): ArrayBuffer;
  /**
   * epoll_wait(epfd, events, maxEvents, -1) on a native thread of the runtime's own, resolving on the
   * JS thread: where the runtime has one (Deno's nonblocking FFI), the poller waits through it instead
   * of a Worker, whose second JS isolate costs ~12 MiB. A negative result is a failure whose errno
   * stayed on the other thread.
   */
  readonly epollWaitOffThread?: (epfd: number, events: Uint8Array, maxEvents: number) => Promise<number>;
  /** Start the module at `url` as a Worker, where the runtime's Worker is not the Web one (Node). */
  readonly startWorker?: (url: string) => WorkerLike;
}
