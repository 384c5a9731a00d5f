/**
 * Counters of several workers as one service: each worker prints its counters as a JSON stats line
 * (`statsSnapshot`), the supervisor adds them up. Every counter is a sum over workers, so the
 * accounting identities of one relay (`unaccounted` = 0) hold for the sum as they do for each.
 * @module
 */
import type { TransportStats } from "@anysrc/core";
import type { RelayCounters, TransportView } from "../relay_stats.ts";

/** A worker's stats line as parsed JSON: `statsSnapshot` plus `event`, `time`, `worker`, `process`. */
export type WorkerSnapshot = Readonly<Record<string, unknown>>;

/** Fields of a stats line that describe the line, not the counters. */
const NOT_COUNTERS = new Set(["event", "time", "worker", "process", "signal", "poller"]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Sum of values found under one key: numbers added, objects by key, receiver lists by receiver name, anything else the first seen. */
function sumValues(values: readonly unknown[]): unknown {
  const present = values.filter((v) => v !== undefined);
  if (present.every((v) => typeof v === "number")) return (present as number[]).reduce((a, b) => a + b, 0);
  if (present.every(isRecord)) return sumRecords(present);
  if (present.every(Array.isArray)) {
    const byName = new Map<string, Record<string, unknown>[]>();
    for (const r of (present as unknown[][]).flat()) {
      if (!isRecord(r)) continue;
      const name = String(r.receiver);
      byName.set(name, [...(byName.get(name) ?? []), r]);
    }
    return [...byName.values()].map(sumRecords);
  }
  return present[0];
}

function sumRecords(records: readonly Readonly<Record<string, unknown>>[]): Record<string, unknown> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(keys.map((k) => [k, sumValues(records.map((r) => r[k]))]));
}

/**
 * The service's counters: every worker's added up (`mode` and names kept, line fields dropped).
 * @example sumSnapshots([{ mode: "tproxy", received: 3 }, { mode: "tproxy", received: 4 }]) // { mode: "tproxy", received: 7 }
 */
export function sumSnapshots(snapshots: readonly WorkerSnapshot[]): Record<string, unknown> {
  const counters = snapshots.map((s) => Object.fromEntries(Object.entries(s).filter(([k]) => !NOT_COUNTERS.has(k))));
  return sumRecords(counters);
}

/** A snapshot read back as counters and transports, for the text line and /metrics. */
export function countersOfSnapshot(s: Readonly<Record<string, unknown>>): { counters: RelayCounters; transports: TransportView[] } {
  const transports = isRecord(s.transports) ? Object.entries(s.transports).map(([kind, stats]) => ({ kind, stats: stats as TransportStats })) : [];
  return { counters: s as unknown as RelayCounters, transports };
}
