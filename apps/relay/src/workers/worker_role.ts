/**
 * What a worker process is told by its supervisor, and how `--workers` is read. A worker is the
 * same command started again with `ANYSRC_WORKER=INDEX/COUNT:FD,FD…` in its environment: its index,
 * how many there are, and the listening sockets the supervisor opened for it (one per listen
 * address, in order, already bound in their SO_REUSEPORT groups).
 * @module
 */
import { allowedCpus } from "@anysrc/sys";
import { envVar } from "../host.ts";
import type { FlagValues } from "../cli/config_file.ts";
import { UsageError } from "../cli/usage_error.ts";

/** A worker's place in the service. */
export interface WorkerRole {
  readonly index: number;
  readonly count: number;
  /** The listening sockets to read from instead of opening its own, in `--listen` order. */
  readonly listenerFds: readonly number[];
}

/** The environment variable a supervisor sets for each worker. */
export const WORKER_ENV = "ANYSRC_WORKER";

/**
 * The text of {@link WORKER_ENV} for worker `index` of `count`.
 * @example workerEnvValue(1, 2, [3, 4]) // "1/2:3,4"
 */
export function workerEnvValue(index: number, count: number, fds: readonly number[]): string {
  return `${index}/${count}:${fds.join(",")}`;
}

/**
 * This process's role, when a supervisor started it; undefined for a relay started by a user.
 * @example parseWorkerRole("1/2:3,4") // { index: 1, count: 2, listenerFds: [3, 4] }
 */
export function parseWorkerRole(text: string | undefined): WorkerRole | undefined {
  if (text === undefined || text === "") return undefined;
  const m = /^(\d+)\/(\d+):(\d+(?:,\d+)*)$/.exec(text);
  if (!m || Number(m[1]) >= Number(m[2])) throw new Error(`${WORKER_ENV}="${text}" is not INDEX/COUNT:FD[,FD…] (set by a supervisor, not by hand)`);
  return { index: Number(m[1]), count: Number(m[2]), listenerFds: m[3]!.split(",").map(Number) };
}

/** {@link parseWorkerRole} of this process's environment. */
export function workerRole(): WorkerRole | undefined {
  return parseWorkerRole(envVar(WORKER_ENV));
}

/** `--workers N|auto`, read. */
export interface WorkerCount {
  readonly count: number;
  /** With `auto`: the CPUs this process may run on, worker i pinned to `cpus[i]`. */
  readonly cpus?: readonly number[];
}

/** Most workers one service runs: one per CPU of the largest machines, with room. */
const MAX_WORKERS = 1024;

/**
 * `--workers N|auto` (default 1): how many processes share the listening port. `auto` is one per CPU
 * this process may run on (sched_getaffinity: `taskset` and cgroup cpusets count), each pinned to it.
 * @example workersFlag("tproxy", { workers: "auto" }) // { count: 2, cpus: [0, 1] } on two CPUs
 */
export function workersFlag(command: string, v: FlagValues, cpus: () => number[] = allowedCpus): WorkerCount {
  const text = v.workers;
  if (text === undefined) return { count: 1 };
  if (text === "auto") {
    const allowed = cpus();
    return { count: allowed.length, cpus: allowed };
  }
  if (typeof text !== "string" || !/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_WORKERS) {
    throw new UsageError(command, `--workers must be auto or a whole number 1-${MAX_WORKERS}, got "${String(text)}"`);
  }
  return { count: Number(text) };
}
