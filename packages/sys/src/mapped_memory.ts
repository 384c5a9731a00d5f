/**
 * Large buffers straight from the kernel: an anonymous private mapping seen as an ArrayBuffer.
 * A runtime zero-fills every new ArrayBuffer. Bun's allocator (libpas) hands back pages an earlier
 * buffer used, and that fill then makes the whole buffer resident. A receive ring of 32 slots of
 * 64 KiB is 2 MiB, of which a relay of small datagrams touches one page per slot. Bun's idle relay
 * held those 2 MiB in most runs. A fresh mapping is zero already and costs only the pages the
 * kernel or the relay actually write. V8 (Deno, Node) gets buffers this large from calloc, which
 * maps fresh pages itself. There the mapping measured no smaller, and Deno's raw relay ran about
 * 1.5 % slower over it (6 alternating rounds), so it is used under Bun only. The mapping never
 * moves, so the addresses handed to the kernel stay valid. It is unmapped when the buffer is
 * garbage-collected: only a synchronous call can hand the kernel a pointer into it, and such a
 * call keeps the buffer reachable.
 * @module
 */
import { adapter, libc } from "./libc.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./linux_constants.ts";
/** Below this a mapping's page rounding and syscalls cost more than the fill they save. */
export const MAPPED_MEMORY_MIN_BYTES = 256 << 10;
/** Where the runtime's own large buffers can come back resident (see the module comment). */
const MAPPING_PAYS = adapter.runtime === "bun";

const unmapper = new FinalizationRegistry<{ address: number; length: number }>((m) => {
  libc.munmap(m.address, m.length);
});

/**
 * `bytes` of zeroed memory for long-lived native structures, resident only where written: under
 * Bun a fresh anonymous mapping for large sizes, otherwise (small sizes, other runtimes, mmap
 * failing) an ordinary ArrayBuffer.
 * @example const ring = new Uint8Array(allocateNativeMemory(32 * 65536)); // 2 MiB, a few KiB resident
 */
export function allocateNativeMemory(bytes: number): ArrayBuffer {
  if (bytes < MAPPED_MEMORY_MIN_BYTES || !MAPPING_PAYS) return new ArrayBuffer(bytes);
  const address = libc.mmap(null, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // MAP_FAILED is (void *)-1: as a number, 2^64 - 1 rounded; NULL never comes back from it.
  if (address <= 0 || address >= 2 ** 63) return new ArrayBuffer(bytes);
  const buffer = adapter.memoryAt(address, bytes);
  unmapper.register(buffer, { address, length: bytes });
  return buffer;
}
