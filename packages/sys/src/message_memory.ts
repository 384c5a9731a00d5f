/**
 * The memory layout shared by the recvmmsg and sendmmsg rings: one ArrayBuffer holding, in order,
 * every struct mmsghdr, each message's iovecs, its sockaddr, its control buffer, then a data slot per
 * message. The pointers between them are written once (the ring never moves).
 * @module
 */
import { adapter } from "./libc.ts";
import { allocateNativeMemory } from "./mapped_memory.ts";
import { SOCKADDR_STORAGE_SIZE } from "./sockaddr.ts";

// x86-64 glibc layouts: struct mmsghdr is a msghdr (56 B) + msg_len (4 B) padded to 64; struct iovec is 16 B.
export const MMSGHDR_SIZE = 64;
export const IOVEC_SIZE = 16;

/** Per message, bytes of each region. */
export interface MessageSizes {
  readonly slots: number;
  readonly iovBytes: number;
  readonly controlBytes: number;
  readonly slotBytes: number;
}

/** A laid-out ring: the memory, its views, the native address of byte 0, and where each region starts. */
export interface MessageMemory {
  readonly memory: Uint8Array;
  readonly words: Uint32Array;
  readonly base: number;
  readonly put64: (byteOffset: number, value: number) => void;
  readonly iovAt: number;
  readonly nameAt: number;
  readonly controlAt: number;
  readonly slotAt: number;
  /** One view per starting message: recvmmsg and sendmmsg take their vector as a buffer (see libc_signatures.ts). */
  readonly vectors: readonly Uint8Array[];
}

/**
 * Allocate the regions and point each message's msg_name, msg_iov (one iovec) and msg_control at
 * its own; lengths and iovec contents are the ring's to write.
 * @example const m = layOutMessages({ slots: 32, iovBytes: IOVEC_SIZE, controlBytes: 192, slotBytes: 2048 });
 */
export function layOutMessages(s: MessageSizes): MessageMemory {
  const { slots } = s;
  const iovAt = slots * MMSGHDR_SIZE;
  const nameAt = iovAt + slots * s.iovBytes;
  const controlAt = nameAt + slots * SOCKADDR_STORAGE_SIZE;
  const slotAt = controlAt + slots * s.controlBytes;
  // A receive ring of large slots is mostly never written: only the pages that are should be resident.
  const memory = new Uint8Array(allocateNativeMemory(slotAt + slots * s.slotBytes));
  const words = new Uint32Array(memory.buffer);
  const base = adapter.addressOf(memory);
  const put64 = u64Writer(words);
  for (let i = 0; i < slots; i++) {
    const h = i * MMSGHDR_SIZE;
    put64(h + 0, base + nameAt + i * SOCKADDR_STORAGE_SIZE); // msg_name
    put64(h + 16, base + iovAt + i * s.iovBytes); // msg_iov
    put64(h + 24, 1); // msg_iovlen
    put64(h + 32, base + controlAt + i * s.controlBytes); // msg_control
  }
  const vectors = Array.from({ length: slots }, (_, i) => memory.subarray(i * MMSGHDR_SIZE, slots * MMSGHDR_SIZE));
  return { memory, words, base, put64, iovAt, nameAt, controlAt, slotAt, vectors };
}

/**
 * A writer of little-endian u64 fields (pointers, size_t) through a 32-bit view: a JS number holds
 * any address x86-64 hands out.
 * @example const put64 = u64Writer(words); put64(16, base + iovAt) // msg_iov
 */
export function u64Writer(words: Uint32Array): (byteOffset: number, value: number) => void {
  return (byteOffset, value) => {
    words[byteOffset >>> 2] = value % 0x100000000;
    words[(byteOffset >>> 2) + 1] = Math.floor(value / 0x100000000);
  };
}
