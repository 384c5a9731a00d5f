/**
 * Decoded remote addresses by key, shared by every session of a relay: 10 000 clients of one server
 * need one record for it, not 10 000, and a record that is the same object lets the transports
 * compare addresses by identity.
 * @module
 */
import { sameSocketAddress, type SocketAddress } from "@anysrc/core";
import { decodeSockaddr, sockaddrIs } from "@anysrc/sys";

/** Most remote records remembered; past it the cache starts over (the records are only a cache). */
const MAX_REMOTES = 65536;

/** Records by key; lookups confirm the address (IPv6 keys are hashes). */
export interface RemoteRecords {
  /** The record of the sockaddr at `bytes[offset]`, whose key is `key`. */
  at(bytes: Uint8Array, offset: number, key: number): SocketAddress;
  /** The shared record equal to `a`. */
  of(a: SocketAddress, key: number): SocketAddress;
}

/**
 * Create the shared remote records.
 * @example const remote = createRemoteRecords(); const dst = remote.at(ring.memory, dstAt, sockaddrKey(ring.memory, dstAt));
 */
export function createRemoteRecords(): RemoteRecords {
  const records = new Map<number, SocketAddress>();
  const store = (key: number, a: SocketAddress) => {
    if (records.size >= MAX_REMOTES) records.clear();
    records.set(key, a);
    return a;
  };
  return {
    at(bytes, offset, key) {
      const r = records.get(key);
      return r !== undefined && sockaddrIs(bytes, offset, r) ? r : store(key, decodeSockaddr(bytes, offset)!);
    },
    of(a, key) {
      const r = records.get(key);
      return r !== undefined && sameSocketAddress(r, a) ? r : store(key, a);
    },
  };
}
