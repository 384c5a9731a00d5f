/**
 * What `tproxy` and `forward` do with `--workers N` (N > 1) instead of relaying themselves: check
 * privileges, open what the workers share (their listeners, a multi-queue TUN device), and run the
 * supervisor over them.
 * @module
 */
import type { SocketAddress } from "@anysrc/core";
import type { UdpSocketOptions } from "@anysrc/sys";
import { checkRelayPrivileges, type StatsSettings } from "../cli/relay_runner.ts";
import type { TransportFlags } from "../cli/relay_flags.ts";
import { superviseWorkers } from "./supervisor.ts";
import type { WorkerCount } from "./worker_role.ts";
import { holdTunQueue, openWorkerListeners } from "./worker_sockets.ts";

/** A relay command to run as a service of workers. */
export interface RelayService {
  readonly mode: "tproxy" | "forward";
  /** The command's arguments, handed to every worker as they are. */
  readonly args: readonly string[];
  readonly workers: WorkerCount;
  readonly stats: StatsSettings;
  readonly transport: TransportFlags;
  readonly transparentListeners: boolean;
  readonly listen: readonly SocketAddress[];
  /** The options of a listener of `addr` as the relay opens it (the workers set them again on theirs). */
  readonly listenerOptions: (addr: SocketAddress) => UdpSocketOptions;
}

/**
 * Run `s` as one service of `s.workers.count` worker processes until it stops; resolves with its exit status.
 * @example return runRelayService({ mode: "forward", args, workers, stats, transport, transparentListeners: false, listen: [listen], listenerOptions });
 */
export function runRelayService(s: RelayService): Promise<number> {
  const { transport } = s;
  checkRelayPrivileges(transport, s.transparentListeners);
  const release = transport.kind === "tun" ? holdTunQueue(s.mode, transport.tun ?? "anysrc0", transport.offload, s.workers.count) : undefined;
  let listeners: number[][];
  try {
    listeners = openWorkerListeners(s.workers.count, s.listen, s.listenerOptions);
  } catch (e) {
    release?.();
    throw e;
  }
  return superviseWorkers({ mode: s.mode, args: s.args, workers: s.workers, stats: s.stats, listeners, ...(release ? { release } : {}), listening: {} });
}
