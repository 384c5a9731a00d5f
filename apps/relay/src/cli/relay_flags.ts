/**
 * Flags shared by `tproxy` and `forward`, and their checks.
 * @module
 */
import type { SocketAddress } from "@anysrc/core";
import { type FlagValues, mergeFlags, readConfig } from "./config_file.ts";
import { parseDuration } from "./durations.ts";
import { checkMetricsAddress, type StatsSettings } from "./relay_runner.ts";
import { addressFlag, byteSizeFlag, intFlag, UsageError } from "./usage_error.ts";
import { isTransportKind, type TransportKind } from "../transport_choice.ts";
import type { IpFieldSettings } from "../ip_field_policy.ts";

/** parseArgs option specs of the shared flags. */
export const SHARED_OPTIONS = {
  transport: { type: "string" },
  fallback: { type: "string" },
  mark: { type: "string" },
  "stats-interval": { type: "string" },
  stats: { type: "string" },
  "log-format": { type: "string" },
  metrics: { type: "string" },
  config: { type: "string" },
  tun: { type: "string" },
  mtu: { type: "string" },
  "socket-buffer": { type: "string" },
  offload: { type: "string" },
  dscp: { type: "string" },
  ecn: { type: "string" },
  ttl: { type: "string" },
  workers: { type: "string" },
} as const;

/**
 * `--dscp keep|clear|N` (default keep), `--ecn keep|clear` (default keep), `--ttl keep|N` (default:
 * the system's): what relayed datagrams carry in their IP header.
 * @example ipFieldFlags("tproxy", { dscp: "46", ttl: "keep" }) // { dscp: 46, ecn: "keep", ttl: "keep" }
 */
export function ipFieldFlags(command: string, v: FlagValues): IpFieldSettings {
  const dscpText = (v.dscp as string | undefined) ?? "keep";
  let dscp: IpFieldSettings["dscp"];
  if (dscpText === "keep" || dscpText === "clear") dscp = dscpText;
  else {
    const n = intFlag(command, "--dscp", dscpText, 0, 63, "keep, clear or a DSCP value 0-63");
    dscp = n!;
  }
  const ecn = (v.ecn as string | undefined) ?? "keep";
  if (ecn !== "keep" && ecn !== "clear") throw new UsageError(command, `--ecn must be keep or clear, got "${ecn}"`);
  const ttlText = v.ttl as string | undefined;
  let ttl: IpFieldSettings["ttl"] = "system";
  if (ttlText === "keep") ttl = "keep";
  else if (ttlText !== undefined) ttl = intFlag(command, "--ttl", ttlText, 1, 255, "keep or a TTL 1-255")!;
  return { dscp, ecn, ttl };
}

/**
 * `--offload on|off` (default on): UDP GRO on the sockets the relay reads, GSO sends (bindsrc,
 * upstream sockets) and TUN virtio-net offloads, wherever the kernel accepts them.
 * @example offloadFlag("tproxy", { offload: "off" }) // false
 */
export function offloadFlag(command: string, v: FlagValues): boolean {
  const text = v.offload ?? "on";
  if (text !== "on" && text !== "off") throw new UsageError(command, `--offload must be on or off, got "${String(text)}"`);
  return text === "on";
}

/**
 * `--socket-buffer BYTES`: the receive buffer of every socket the relay reads from (listeners and
 * upstream sockets), undefined when not given (each class keeps its default). Up to 1 GiB: the
 * kernel doubles the value and keeps it in an int.
 */
export function socketBufferFlag(command: string, v: FlagValues): number | undefined {
  return byteSizeFlag(command, "--socket-buffer", v["socket-buffer"] as string | undefined, 1024, 1 << 30);
}

/**
 * The settings a worker of `--workers N` runs with: its supervisor's flags, but JSON lines for the
 * supervisor to read, stats only when asked (SIGUSR1), no endpoint of its own.
 */
export function workerStats(index: number): StatsSettings {
  return { intervalMs: 0, format: "json", worker: index };
}

/** Resolve `--config` under the command-line flags. */
export function withConfig(command: string, values: FlagValues, options: Record<string, { type: string; multiple?: boolean }>): FlagValues {
  const path = values.config;
  if (typeof path !== "string") return values;
  const known = Object.fromEntries(Object.entries(options).map(([k, o]) => [k, o.multiple === true]));
  return mergeFlags(readConfig(command, path, known), values);
}

/** The transport, fallback, mark, tun and mtu settings. */
export interface TransportFlags {
  readonly kind: TransportKind;
  readonly fallback?: TransportKind;
  readonly mark?: number;
  readonly tun?: string;
  readonly mtu?: number;
  readonly offload: boolean;
}

/** Read {@link TransportFlags} from the flags. */
export function transportFlags(command: string, v: FlagValues): TransportFlags {
  const kind = v.transport;
  if (typeof kind !== "string") throw new UsageError(command, "--transport is required (raw, bindsrc, tun or packet)");
  if (!isTransportKind(kind)) throw new UsageError(command, `--transport must be raw, bindsrc, tun or packet, got "${kind}"`);
  const fb = v.fallback;
  if (fb !== undefined && (typeof fb !== "string" || (fb !== "raw" && fb !== "bindsrc"))) {
    throw new UsageError(command, `--fallback must be raw or bindsrc, got "${fb}"`);
  }
  if (fb === kind) throw new UsageError(command, `--fallback ${fb} is the same as --transport`);
  const mark = intFlag(command, "--mark", v.mark as string | undefined, 0, 0xffffffff);
  const mtu = intFlag(command, "--mtu", v.mtu as string | undefined, 68, 65535);
  return {
    kind,
    offload: offloadFlag(command, v),
    ...(fb !== undefined ? { fallback: fb as TransportKind } : {}),
    ...(mark !== undefined ? { mark } : {}),
    ...(typeof v.tun === "string" ? { tun: v.tun } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
  };
}

/** `--stats-interval`, `--stats`, `--metrics`. */
export function statsFlags(command: string, v: FlagValues): StatsSettings {
  const intervalText = (v["stats-interval"] as string | undefined) ?? "10s";
  const intervalMs = parseDuration(intervalText);
  if (intervalMs === undefined) throw new UsageError(command, `--stats-interval must be a duration like 10s or 500ms, got "${intervalText}"`);
  // --log-format names what --stats always chose: the format of every line, events and stats alike.
  const statsText = v.stats as string | undefined;
  const logText = v["log-format"] as string | undefined;
  if (statsText !== undefined && logText !== undefined && statsText !== logText) {
    throw new UsageError(command, `--stats ${statsText} and --log-format ${logText} disagree: they set the same format`);
  }
  const format = logText ?? statsText ?? "text";
  const flag = logText !== undefined ? "--log-format" : "--stats";
  if (format !== "text" && format !== "json") throw new UsageError(command, `${flag} must be text or json, got "${format}"`);
  let metrics: SocketAddress | undefined;
  if (typeof v.metrics === "string") {
    metrics = addressFlag(command, "--metrics", v.metrics);
    checkMetricsAddress(command, metrics);
  }
  return { intervalMs, format, ...(metrics ? { metrics } : {}) };
}
