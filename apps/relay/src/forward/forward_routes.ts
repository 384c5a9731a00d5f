/**
 * The forwarder's receiver set as it runs: every receiver once, with its sampling counter and its
 * counters, and for each sender the receivers it goes to (`--to` ones plus those of every prefix
 * that contains it). A reload builds a new set that keeps the state of receivers it still has.
 * @module
 */
import { type Cidr, cidrContains, createPrefixTable, type SocketAddress } from "@anysrc/core";
import type { ReceiverCounters } from "../relay_stats.ts";
import type { PrefixRule, ReceiverSpec } from "./receivers.ts";

/** A receiver while running. */
export interface ReceiverState {
  readonly spec: ReceiverSpec;
  /** Datagrams offered so far: the 1-in-N counter. */
  seen: number;
  readonly counters: ReceiverCounters;
}

/** Receivers and who goes where. */
export interface ForwardRoutes {
  /** Every receiver once; a sender's targets are indices into it. */
  readonly receivers: readonly ReceiverState[];
  /** True when some receiver samples (N > 1): datagrams are then counted copy by copy. */
  readonly sampling: boolean;
  /** True when `sender` is inside an `--allow` network. */
  allows(sender: SocketAddress): boolean;
  /** Indices of `sender`'s receivers of its own family, each once, in configuration order. */
  targetsOf(sender: SocketAddress): Int32Array;
}

/**
 * Build the set from `--to` receivers, prefix rules and the allowed senders; receivers `previous`
 * also had (same canonical name) keep their counters and sampling position.
 * @example const routes = createForwardRoutes([parseReceiver("198.18.7.10:2055")], [], [parseCidr("198.18.0.0/15")]);
 */
export function createForwardRoutes(
  always: readonly ReceiverSpec[],
  rules: readonly PrefixRule[],
  allow: readonly Cidr[],
  previous?: ForwardRoutes,
): ForwardRoutes {
  const kept = new Map((previous?.receivers ?? []).map((r) => [r.spec.name, r]));
  const receivers: ReceiverState[] = [];
  const indexOf = new Map<string, number>();
  const intern = (spec: ReceiverSpec): number => {
    let i = indexOf.get(spec.name);
    if (i === undefined) {
      i = receivers.length;
      receivers.push(
        kept.get(spec.name) ?? {
          spec,
          seen: 0,
          counters: { receiver: spec.name, copies: 0, sampledOut: 0, bytes: 0, icmpUnreachable: 0, errors: 0 },
        },
      );
      indexOf.set(spec.name, i);
    }
    return i;
  };
  const everyone = always.map(intern);
  const table = createPrefixTable<number>();
  for (const rule of rules) for (const spec of rule.receivers) table.add(rule.prefix, intern(spec));
  return {
    receivers,
    sampling: receivers.some((r) => r.spec.every > 1),
    allows: (sender) => allow.some((net) => cidrContains(net, sender.ip)),
    targetsOf(sender) {
      const all = new Set([...everyone, ...table.matching(sender.ip)]);
      return Int32Array.from([...all].filter((i) => receivers[i]!.spec.address.family === sender.family));
    },
  };
}
