/**
 * Values keyed by IP networks, looked up by address: a binary trie per family, so a lookup costs at
 * most one step per address bit whatever the number of networks (a forwarder's receivers by sender
 * prefix, samplicator's config file).
 * @module
 */
import type { Cidr } from "./address.ts";
import { isV4Mapped } from "./address.ts";

/** Networks and their values. */
export interface PrefixTable<T> {
  /** Add `value` under `net` (several values may share a network). */
  add(net: Cidr, value: T): void;
  /**
   * The values of every network that contains `ip`, shortest prefix first (4 or 16 bytes; an
   * IPv4-mapped IPv6 address counts as IPv4).
   */
  matching(ip: Uint8Array): T[];
  /** The values of the longest network that contains `ip`, or none. */
  longest(ip: Uint8Array): readonly T[];
  /** Number of networks held. */
  readonly size: number;
}

interface TrieNode<T> {
  zero?: TrieNode<T>;
  one?: TrieNode<T>;
  values?: T[];
}

const bitAt = (ip: Uint8Array, i: number): number => (ip[i >>> 3]! >>> (7 - (i & 7))) & 1;

/**
 * An empty table.
 * @example const t = createPrefixTable<string>(); t.add(parseCidr("198.18.0.0/15"), "a"); t.matching(parseIp("198.18.1.2")) // ["a"]
 */
export function createPrefixTable<T>(): PrefixTable<T> {
  const roots: Record<4 | 6, TrieNode<T>> = { 4: {}, 6: {} };
  let size = 0;
  const walk = (ip: Uint8Array, visit: (values: T[]) => void) => {
    const bytes = ip.length === 16 && isV4Mapped(ip) ? ip.subarray(12) : ip;
    let node: TrieNode<T> | undefined = roots[bytes.length === 4 ? 4 : 6];
    for (let i = 0, bits = bytes.length * 8; node; i++) {
      if (node.values) visit(node.values);
      if (i === bits) break;
      node = bitAt(bytes, i) === 0 ? node.zero : node.one;
    }
  };
  return {
    add(net, value) {
      let node = roots[net.family];
      for (let i = 0; i < net.prefix; i++) {
        if (bitAt(net.ip, i) === 0) node = node.zero ??= {};
        else node = node.one ??= {};
      }
      if (!node.values) {
        node.values = [];
        size++;
      }
      node.values.push(value);
    },
    matching(ip) {
      const out: T[] = [];
      walk(ip, (values) => out.push(...values));
      return out;
    },
    longest(ip) {
      let last: readonly T[] = [];
      walk(ip, (values) => (last = values));
      return last;
    },
    get size() {
      return size;
    },
  };
}
