/**
 * What `anysrc bench` measures, from its flags.
 * @module
 */
import type { TransportKind } from "@anysrc/relay/extension";
import type { Runtime } from "@anysrc/testbed";

/** The bench plan. */
export interface BenchPlan {
  readonly quick: boolean;
  /** Every section, every runtime, three repetitions (`--full`). */
  readonly full: boolean;
  readonly transports: readonly TransportKind[];
  readonly runtimes: readonly Runtime[];
  readonly families: readonly (4 | 6)[];
  readonly out: string;
  readonly reps: number;
  /** Datagrams per send-only run. */
  readonly sendCount: number;
  /** End-to-end offered load (datagrams/s from the client) and duration. */
  readonly relayRate: number;
  readonly relaySeconds: number;
  /** Sessions for the memory run. */
  readonly manySessions: number;
  readonly idleSeconds: number;
  /** Which parts run (default all). */
  readonly sections: readonly BenchSection[];
  /** Saturating end to end: datagrams kept in flight, seconds per run, cells. */
  readonly saturateWindow: number;
  readonly saturateSeconds: number;
  /**
   * Seconds of the same load before each measured relay run (paced, saturating, offload): the JIT
   * compiles the path then, as it would early in a long-running service's life; every contender alike.
   */
  readonly warmupSeconds: number;
  /** (flows, payload bytes) per family: 1 and 64 flows × 64 and 1200 B, and 8 flows of 3000 B (fragmented). */
  readonly saturateCells: readonly { readonly flows: number; readonly size: number }[];
  /** perf counts the relay's syscalls for this many seconds of each run of the last repetition (0: not counted). */
  readonly syscallSeconds: number;
  /**
   * Offloads: cells run with `--offload on` and `--offload off` beside the C programs (which have
   * none). "bulk" is one flow of 1200 B, 256 in flight, to a GSO-sending echo server with GRO on the
   * testbed's links; "small" is 64 flows of 64 B to the plain echo server; "send" is send-only.
   */
  readonly offloadCells: readonly { readonly test: "bulk" | "small" | "send"; readonly flows: number; readonly size: number }[];
  /**
   * Forward (samplicator's job): `forwardReceivers` receivers, `forwardSize`-byte datagrams for
   * `forwardSeconds`, offered at a saturating rate (capacity) and at a lossless one (CPU per datagram).
   */
  readonly forwardReceivers: number;
  readonly forwardSize: number;
  readonly forwardSeconds: number;
  readonly forwardRates: { readonly saturating: number; readonly lossless: number };
  /** The headline (ndr) section's cell: flows and payload bytes of its closed and open loops. */
  readonly ndrCell: { readonly flows: number; readonly size: number };
  /** Seconds of each NDR/PDR trial (latency points run 1 s each). */
  readonly trialSeconds: number;
  /** The first version of the C relay runs beside the strong one (its gain, in the same run). */
  readonly basicBaseline: boolean;
}

/** The parts of `anysrc bench`. */
export const BENCH_SECTIONS = ["ndr", "send", "sources", "relay", "saturate", "workers", "offload", "forward", "sessions"] as const;
export type BenchSection = (typeof BENCH_SECTIONS)[number];

/** The plan for quick or full runs. */
export function makePlan(
  o: {
    quick: boolean;
    full: boolean;
    transports: TransportKind[];
    runtimes: Runtime[];
    families: (4 | 6)[];
    out: string;
    sections: BenchSection[];
    /** Repetitions instead of the default (1 quick, 3 full). */
    reps?: number | undefined;
    /** Saturating cells instead of the default five. */
    saturateCells?: { flows: number; size: number }[] | undefined;
    /** Warm-up seconds before each relay run instead of 1 (0: measure from a cold start). */
    warmup?: number | undefined;
  },
): BenchPlan {
  const { reps, saturateCells, warmup, ...rest } = o;
  return {
    ...rest,
    reps: reps ?? (o.full && !o.quick ? 3 : 1),
    sendCount: o.quick ? 50_000 : 200_000,
    relayRate: 20_000,
    relaySeconds: o.quick ? 2 : 4,
    manySessions: 10_000,
    idleSeconds: o.quick ? 2 : 10,
    saturateWindow: 256,
    saturateSeconds: o.quick ? 1.5 : 3,
    warmupSeconds: warmup ?? 1,
    saturateCells: saturateCells ??
      [{ flows: 1, size: 64 }, { flows: 1, size: 1200 }, { flows: 64, size: 64 }, { flows: 64, size: 1200 }, { flows: 8, size: 3000 }],
    syscallSeconds: 1,
    offloadCells: [{ test: "bulk", flows: 1, size: 1200 }, { test: "small", flows: 64, size: 64 }, { test: "send", flows: 1, size: 1200 }],
    forwardReceivers: 3,
    forwardSize: 256,
    forwardSeconds: o.quick ? 2 : 3,
    forwardRates: { saturating: 150_000, lossless: 15_000 },
    ndrCell: { flows: 64, size: 64 },
    trialSeconds: o.quick ? 0.5 : 1,
    basicBaseline: true,
  };
}
