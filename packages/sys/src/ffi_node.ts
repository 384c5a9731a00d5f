/**
 * Node adapter: {@link LIBC_SIGNATURES} through `node:ffi` (Node ≥ 26, `--experimental-ffi`). Only
 * this file touches node:ffi and node:worker_threads.
 * @module
 */
import { bufferAddresses } from "./buffer_addresses.ts";
import { LIBC_SIGNATURES, type LibcAdapter, type LibcFunctions, type NeutralType, type WorkerLike } from "./libc_signatures.ts";

// The parts of node:ffi and node:worker_threads used here, typed locally: @types/node has node:ffi,
// but Deno's type check knows no such built-in module and fails on an `import type` of it.
interface NodeFfi {
  dlopen(path: string, symbols: Record<string, { return: string; arguments: string[] }>): { functions: Record<string, (...a: unknown[]) => unknown> };
  getRawPointer(view: ArrayBufferView): bigint;
  toArrayBuffer(pointer: bigint, length: number, copy: boolean): ArrayBuffer;
}
interface NodeWorker {
  postMessage(m: unknown): void;
  on(event: "message", f: (data: unknown) => void): void;
  terminate(): Promise<number>;
}
interface NodeWorkerThreads {
  Worker: new (code: string, options: { eval: true; workerData: string }) => NodeWorker;
}
interface NodeProcess {
  getBuiltinModule(id: string): unknown;
}

// size_t travels as u64, which node:ffi takes only as a BigInt: those arguments are converted.
const NODE_TYPES: Record<NeutralType, string> = { i32: "i32", u32: "u32", usize: "u64", buf: "pointer", pointer: "pointer", null: "pointer", void: "void" };

// A Worker of node:worker_threads speaks through parentPort; the poller's worker module expects the
// Web Worker globals (onmessage, postMessage). This bootstrap gives it those, then loads it.
const WORKER_BOOTSTRAP = `
const { parentPort, workerData } = require("node:worker_threads");
globalThis.postMessage = (m) => parentPort.postMessage(m);
parentPort.on("message", (data) => globalThis.onmessage?.({ data }));
import(workerData);
`;

/** Open libc with Node's FFI. */
export function openNodeLibc(path: string): LibcAdapter {
  const proc = (globalThis as unknown as { process: NodeProcess }).process;
  const ffi = proc.getBuiltinModule("node:ffi") as NodeFfi;
  const threads = proc.getBuiltinModule("node:worker_threads") as NodeWorkerThreads;
  const defs: Record<string, { return: string; arguments: string[] }> = {};
  for (const [name, sig] of Object.entries(LIBC_SIGNATURES)) {
    defs[name] = { return: NODE_TYPES[sig.returns], arguments: sig.args.map((t) => NODE_TYPES[t]) };
  }
  const raw = ffi.dlopen(path, defs).functions;
  const fn: Record<string, (...a: unknown[]) => unknown> = {};
  for (const [name, sig] of Object.entries(LIBC_SIGNATURES)) {
    const f = raw[name]!;
    const wide = sig.args.flatMap((t, i) => (t === "usize" ? [i] : []));
    const pointerResult = sig.returns === "pointer";
    if (wide.length === 0 && !pointerResult) fn[name] = f;
    else if (pointerResult) {
      fn[name] = (...a: unknown[]) => {
        for (const i of wide) a[i] = BigInt(a[i] as number);
        return Number(f(...a) as bigint);
      };
    } else if (wide.length === 1) {
      const at = wide[0]!;
      fn[name] = (...a: unknown[]) => {
        a[at] = BigInt(a[at] as number);
        return f(...a);
      };
    } else {
      fn[name] = (...a: unknown[]) => {
        for (const i of wide) a[i] = BigInt(a[i] as number);
        return f(...a);
      };
    }
  }
  return {
    runtime: "node",
    fn: fn as unknown as LibcFunctions,
    // getRawPointer is a native call per view: once per buffer instead.
    addressOf: bufferAddresses((buffer) => Number(ffi.getRawPointer(new Uint8Array(buffer)))),
    memoryAt: (address, length) => ffi.toArrayBuffer(BigInt(address), length, false),
    startWorker(url: string): WorkerLike {
      const w = new threads.Worker(WORKER_BOOTSTRAP, { eval: true, workerData: url });
      const like: WorkerLike = {
        onmessage: null,
        postMessage: (m) => w.postMessage(m),
        terminate: () => void w.terminate(),
      };
      w.on("message", (data) => like.onmessage?.({ data }));
      return like;
    },
  };
}
