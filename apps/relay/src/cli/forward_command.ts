/**
 * `anysrc forward`: samplicator-style replication keeping each sender's address.
 * @module
 */
import { parseArgs } from "node:util";
import { processId } from "../host.ts";
import { AddressError, type Cidr, formatSocketAddress, parseCidr } from "@anysrc/core";
import { DEFAULT_FORWARD_BUFFER, startForwarder } from "../forward/forwarder.ts";
import { createRelayCounters } from "../relay_stats.ts";
import { logEvent, openRelayOutput, runUntilSignal } from "./relay_runner.ts";
import { SHARED_OPTIONS, ipFieldFlags, socketBufferFlag, statsFlags, transportFlags, withConfig } from "./relay_flags.ts";
import { createIpFieldPolicy } from "../ip_field_policy.ts";
import { routeIsBroadcast } from "@anysrc/sys";
import { UsageError, addressFlag } from "./usage_error.ts";

export const FORWARD_USAGE = `Usage: anysrc forward --listen ADDR --to ADDR [--to ADDR]… --allow CIDR [--allow CIDR]…
                      --transport raw|bindsrc|tun [--fallback raw|bindsrc] [--mark N]
                      [--stats-interval 10s] [--stats text|json] [--metrics 127.0.0.1:9100] [--config FILE]
                      [--socket-buffer BYTES] [--offload on|off] [--dscp keep|clear|N] [--ecn keep|clear] [--ttl keep|N]

  --listen ADDR    where senders send (e.g. 0.0.0.0:2055 for NetFlow, [::]:514 for syslog)
  --to ADDR        a receiver; every datagram goes to each, with the sender's address as source
  --allow CIDR     senders allowed (required: forward refuses to start without an explicit list);
                   datagrams from other senders are dropped and counted
  --transport T    raw | bindsrc | tun; --fallback, --mark, --stats*, --metrics, --config as for tproxy
  --socket-buffer B  receive buffer of the listening socket (default 4M); what the kernel still
                   drops is counted as kernelDropped.listener
  --offload on|off UDP GRO on the listening socket and GSO sends (bindsrc, tun) where the kernel
                   accepts them (default on); a sender's burst to one receiver leaves as one send
  --dscp, --ecn, --ttl  what copies carry in their IP header, as for tproxy (default: the sender's
                   DSCP and ECN kept, the system's TTL)

SIGINT/SIGTERM: stop reading, flush, print the final counters, exit 0.`;

const OPTIONS = {
  ...SHARED_OPTIONS,
  listen: { type: "string" },
  to: { type: "string", multiple: true },
  allow: { type: "string", multiple: true },
} as const;

/** Run `anysrc forward` until a signal; returns the exit status. */
export async function forwardCommand(args: string[]): Promise<number> {
  const cmd = "forward";
  const parsed = parseArgs({ args, strict: true, options: OPTIONS });
  const v = withConfig(cmd, parsed.values, OPTIONS);
  if (typeof v.listen !== "string") throw new UsageError(cmd, "--listen is required");
  const listen = addressFlag(cmd, "--listen", v.listen);
  const toTexts = v.to as string[] | undefined;
  if (!toTexts || toTexts.length === 0) throw new UsageError(cmd, "at least one --to receiver is required");
  const receivers = toTexts.map((t) => addressFlag(cmd, "--to", t));
  const allowTexts = v.allow as string[] | undefined;
  if (!allowTexts || allowTexts.length === 0) {
    throw new UsageError(cmd, "refusing to start without --allow: list the sender networks to forward (e.g. --allow 198.18.0.0/15)");
  }
  const allow: Cidr[] = allowTexts.map((t) => {
    try {
      return parseCidr(t);
    } catch (e) {
      if (e instanceof AddressError) throw new UsageError(cmd, `--allow: ${e.message}`);
      throw e;
    }
  });
  const transport = transportFlags(cmd, v);
  const ipFields = ipFieldFlags(cmd, v);
  const stats = statsFlags(cmd, v);
  const receiveBuffer = socketBufferFlag(cmd, v) ?? DEFAULT_FORWARD_BUFFER;
  // A broadcast receiver (255.255.255.255, a subnet's broadcast) needs SO_BROADCAST on the sending
  // sockets; a TUN packet to one is never forwarded by the kernel, so tun cannot serve it.
  const broadcastReceivers = receivers.filter(routeIsBroadcast);
  if (broadcastReceivers.length > 0 && (transport.kind === "tun" || transport.fallback === "tun")) {
    throw new UsageError(cmd, `--to ${formatSocketAddress(broadcastReceivers[0]!)} is a broadcast address: use --transport raw or bindsrc (the kernel does not forward a TUN packet to a broadcast address)`);
  }
  const counters = createRelayCounters();
  const { emitter, shutdown } = openRelayOutput(transport, stats, counters, { transparentListeners: false, broadcast: broadcastReceivers.length > 0 });
  let forwarder: ReturnType<typeof startForwarder>;
  try {
    forwarder = startForwarder({
      listen, receivers, allow, emitter, counters, receiveBuffer, offload: transport.offload, ipFields: createIpFieldPolicy(ipFields),
      onOffloadFallback: (reason) => logEvent(stats.format, "offload-fallback", { reason }),
    });
  } catch (e) {
    await Promise.all(emitter.transports.map((t) => t.close()));
    throw e;
  }
  logEvent(stats.format, "listening", { pid: processId(), mode: "forward", listen: formatSocketAddress(listen), to: receivers.map(formatSocketAddress), allow: allowTexts, transport: transport.kind, offload: transport.offload, ipFields, broadcastReceivers: broadcastReceivers.map(formatSocketAddress) });
  return runUntilSignal("forward", counters, emitter.transports, stats, () => forwarder.stopListening(), () => {}, shutdown, () => forwarder.refreshKernelDrops());
}
