/**
 * The transport a command runs on, chosen at run time by name: the one place the relay app turns
 * `--transport raw|bindsrc|tun|packet` into a backend.
 * @module
 */
import type { Datagram, Transport } from "@anysrc/core";
import { createBindSourceTransport } from "@anysrc/transport-bindsrc";
import { createRawTransport } from "@anysrc/transport-raw";
import { createTunTransport } from "@anysrc/transport-tun";
import { createPacketTransport } from "@anysrc/transport-packet";

/** The backends this CLI knows by name (core's TransportKind is open: any backend names itself). */
export const TRANSPORT_KINDS = ["raw", "bindsrc", "tun", "packet"] as const;
/** One of {@link TRANSPORT_KINDS}. */
export type TransportKind = (typeof TRANSPORT_KINDS)[number];

/** Settings any backend may use; each takes what applies to it. */
export interface TransportSettings {
  readonly mark?: number;
  readonly mtu?: number;
  /** TUN device name (tun); default "anysrc0". */
  readonly tun?: string;
  readonly batch?: number;
  readonly sendBuffer?: number;
  /** bindsrc: datagrams that arrive on a bound source socket. */
  readonly onReceive?: (d: Datagram) => void;
  /** GSO sends (bindsrc) and virtio-net offloads (tun); default on. raw has none. */
  readonly offload?: boolean;
  /** Told once per transport when the kernel refuses an offload and it goes back to plain sends. */
  readonly onOffloadFallback?: (reason: string) => void;
  /** SO_BROADCAST (raw, bindsrc): a forwarder with a broadcast receiver. */
  readonly broadcast?: boolean;
  /** tun: attach one queue of a multi-queue device (a worker of `--workers N`). */
  readonly multiQueue?: boolean;
}

/** True for a known transport name. */
export function isTransportKind(text: string): text is TransportKind {
  return (TRANSPORT_KINDS as readonly string[]).includes(text);
}

/**
 * Open the named backend.
 * @example const t = openTransport("raw", { mark: 1 });
 */
export function openTransport(kind: TransportKind, s: TransportSettings): Transport {
  const mark = s.mark !== undefined ? { mark: s.mark } : {};
  const batch = s.batch !== undefined ? { batch: s.batch } : {};
  const sendBuffer = s.sendBuffer !== undefined ? { sendBuffer: s.sendBuffer } : {};
  const offload = { offload: s.offload !== false, ...(s.onOffloadFallback ? { onOffloadFallback: s.onOffloadFallback } : {}) };
  switch (kind) {
    case "raw":
      return createRawTransport({ ...mark, ...batch, ...sendBuffer, broadcast: s.broadcast === true, ...(s.mtu !== undefined ? { mtu: s.mtu } : {}) });
    case "bindsrc":
      return createBindSourceTransport({
        ...mark,
        ...batch,
        ...sendBuffer,
        ...offload,
        broadcast: s.broadcast === true,
        ...(s.onReceive ? { onReceive: s.onReceive } : {}),
      });
    case "packet":
      return createPacketTransport({ ...mark, ...batch, ...sendBuffer, broadcast: s.broadcast === true });
    case "tun":
      return createTunTransport({ name: s.tun ?? "anysrc0", ...offload, multiQueue: s.multiQueue === true, ...(s.mtu !== undefined ? { mtu: s.mtu } : {}) });
  }
}
