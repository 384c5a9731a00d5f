/**
 * `anysrc forward`: samplicator-style replication keeping each sender's address.
 * @module
 */
import { parseArgs } from "node:util";
import { processId, readTextFile } from "../host.ts";
import { AddressError, type Cidr, formatSocketAddress, parseCidr, sameSocketAddress, type SocketAddress } from "@anysrc/core";
import type { FlagValues } from "./config_file.ts";
import { createForwardRoutes, type ForwardRoutes } from "../forward/forward_routes.ts";
import { parseReceiver, parseReceiversFile, type PrefixRule } from "../forward/receivers.ts";
import { DEFAULT_FORWARD_BUFFER, forwardListenerOptions, startForwarder } from "../forward/forwarder.ts";
import { createRelayCounters } from "../relay_stats.ts";
import { logEvent, onReload, openRelayOutput, runUntilSignal } from "./relay_runner.ts";
import { ipFieldFlags, SHARED_OPTIONS, socketBufferFlag, statsFlags, type TransportFlags, transportFlags, withConfig, workerStats } from "./relay_flags.ts";
import { workerRole, workersFlag } from "../workers/worker_role.ts";
import { runRelayService } from "../workers/relay_service.ts";
import { createIpFieldPolicy } from "../ip_field_policy.ts";
import { routeIsBroadcast } from "@anysrc/sys";
import { addressFlag, UsageError } from "./usage_error.ts";

export const FORWARD_USAGE = `Usage: anysrc forward --listen ADDR (--to RECEIVER [--to RECEIVER]… | --receivers FILE) --allow CIDR [--allow CIDR]…
                      --transport raw|bindsrc|tun|packet [--fallback raw|bindsrc] [--mark N]
                      [--stats-interval 10s] [--stats text|json] [--log-format text|json] [--metrics 127.0.0.1:9100] [--config FILE]
                      [--socket-buffer BYTES] [--offload on|off] [--dscp keep|clear|N] [--ecn keep|clear] [--ttl keep|N]
                      [--workers N|auto]

  --listen ADDR    where senders send (e.g. 0.0.0.0:2055 for NetFlow, [::]:514 for syslog)
  --to RECEIVER    a receiver of every allowed sender's datagrams, with the sender's address as
                   source: ADDR[/N][,ttl=T][,plain], e.g. 198.18.7.10:2055, [2001:db8::7]:2055/10
                   /N       one datagram in N (a counter per receiver: the 1st, the N+1th, …)
                   ttl=T    TTL / hop limit of its copies (otherwise --ttl)
                   plain    sent from the forwarder's own address instead of the sender's
                   samplicator's HOST/PORT[/N][,TTL] is accepted too
  --receivers FILE receivers by sender prefix, one line each: PREFIX: RECEIVER…  (# comments;
                   PREFIX 198.18.0.0/15, 198.18.0.0/255.254.0.0 or 2001:db8::/32). A datagram goes
                   to every --to receiver and to those of every prefix containing its sender, each
                   receiver once; a samplicator config file is read as is
  --allow CIDR     senders allowed (required: forward refuses to start without an explicit list);
                   datagrams from other senders are dropped and counted
  --transport T    raw | bindsrc | tun | packet; --fallback, --mark, --stats*, --metrics, --config as for tproxy
  --socket-buffer B  receive buffer of the listening socket (default 4M); what the kernel still
                   drops is counted as kernelDropped.listener
  --offload on|off UDP GRO on the listening socket and GSO sends (bindsrc, tun) where the kernel
                   accepts them (default on); a sender's burst to one receiver leaves as one send
  --dscp, --ecn, --ttl  what copies carry in their IP header, as for tproxy (default: the sender's
                   DSCP and ECN kept, the system's TTL)
  --workers N|auto N forwarder processes behind one port (SO_REUSEPORT); each sender stays on one,
                   so a receiver's /N sampling stays exact per sender; auto: one per CPU, pinned
                   (default 1). SIGHUP reloads every worker

SIGHUP: read --config and --receivers again; the new receivers and --allow apply from the next
datagram (counters of receivers kept), a bad file keeps the running set and logs reload-failed.
SIGINT/SIGTERM: stop reading, flush, print the final counters, exit 0.`;

const OPTIONS = {
  ...SHARED_OPTIONS,
  listen: { type: "string" },
  to: { type: "string", multiple: true },
  receivers: { type: "string" },
  allow: { type: "string", multiple: true },
} as const;

/** Receivers, prefix rules and allowed senders from the flags (and files) as they are now. */
function readRoutes(cmd: string, v: FlagValues, previous?: ForwardRoutes): ForwardRoutes {
  const toTexts = (v.to as string[] | undefined) ?? [];
  const file = typeof v.receivers === "string" ? v.receivers : undefined;
  if (toTexts.length === 0 && file === undefined) throw new UsageError(cmd, "at least one --to receiver (or a --receivers file) is required");
  const always = toTexts.map((t) => {
    try {
      return parseReceiver(t);
    } catch (e) {
      if (e instanceof AddressError) throw new UsageError(cmd, `--to: ${e.message}`);
      throw e;
    }
  });
  let rules: PrefixRule[] = [];
  if (file !== undefined) {
    let text: string;
    try {
      text = readTextFile(file);
    } catch (e) {
      throw new UsageError(cmd, `--receivers ${file}: cannot read: ${(e as Error).message}`);
    }
    try {
      rules = parseReceiversFile(text, file);
    } catch (e) {
      if (e instanceof AddressError) throw new UsageError(cmd, `--receivers ${e.message}`);
      throw e;
    }
  }
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
  return createForwardRoutes(always, rules, allow, previous);
}

/** Run `anysrc forward` until a signal; returns the exit status. */
export async function forwardCommand(args: string[]): Promise<number> {
  const cmd = "forward";
  const parsed = parseArgs({ args, strict: true, options: OPTIONS });
  const v = withConfig(cmd, parsed.values, OPTIONS);
  if (typeof v.listen !== "string") throw new UsageError(cmd, "--listen is required");
  const listen = addressFlag(cmd, "--listen", v.listen);
  const routes = readRoutes(cmd, v);
  const transport = transportFlags(cmd, v);
  const ipFields = ipFieldFlags(cmd, v);
  const [workers, role] = [workersFlag(cmd, v), workerRole()];
  const stats = role ? workerStats(role.index) : statsFlags(cmd, v);
  const receiveBuffer = socketBufferFlag(cmd, v) ?? DEFAULT_FORWARD_BUFFER;
  const broadcastReceivers = broadcastReceiversFor(cmd, routes, transport);
  if (!role && workers.count > 1) {
    const fields = createIpFieldPolicy(ipFields);
    const listenerOptions = () => forwardListenerOptions(listen.family, receiveBuffer, fields);
    return runRelayService({ mode: cmd, args, workers, stats, transport, transparentListeners: false, listen: [listen], listenerOptions });
  }
  const counters = createRelayCounters();
  const multiQueue = role !== undefined && role.count > 1;
  const { outbound, shutdown } = openRelayOutput(transport, stats, counters, {
    transparentListeners: false,
    broadcast: broadcastReceivers.length > 0,
    multiQueue,
  });
  let forwarder: ReturnType<typeof startForwarder>;
  try {
    forwarder = startForwarder({
      listen,
      routes,
      outbound,
      counters,
      receiveBuffer,
      offload: transport.offload,
      ipFields: createIpFieldPolicy(ipFields),
      ...(transport.mark !== undefined ? { mark: transport.mark } : {}),
      onOffloadFallback: (reason) => logEvent(stats.format, "offload-fallback", { reason }),
      ...(role ? { inheritedListener: role.listenerFds[0]! } : {}),
    });
  } catch (e) {
    await Promise.all(outbound.transports.map((t) => t.close()));
    throw e;
  }
  reloadRoutesOnHangup(cmd, parsed.values, stats.format, routes, broadcastReceivers, forwarder);
  const announce = () =>
    logEvent(stats.format, "listening", {
      pid: processId(),
      mode: "forward",
      listen: formatSocketAddress(listen),
      to: routes.receivers.map((r) => r.spec.name),
      allow: v.allow,
      receiversFile: v.receivers,
      transport: transport.kind,
      offload: transport.offload,
      ipFields,
      broadcastReceivers: broadcastReceivers.map(formatSocketAddress),
    });
  return runUntilSignal(
    "forward",
    counters,
    outbound.transports,
    stats,
    () => forwarder.stopListening(),
    () => {},
    shutdown,
    () => forwarder.refreshKernelDrops(),
    announce,
  );
}

/**
 * SIGHUP: read the config and receivers files again; the new set applies from the next receive
 * batch. A bad file keeps the set that runs, and says why.
 */
function reloadRoutesOnHangup(
  cmd: string,
  cliValues: FlagValues,
  format: "text" | "json",
  routes: ForwardRoutes,
  broadcastReceivers: readonly SocketAddress[],
  forwarder: ReturnType<typeof startForwarder>,
): void {
  let current = routes;
  onReload(format, "keeping the receivers that run", () => {
    const next = readRoutes(cmd, withConfig(cmd, cliValues, OPTIONS), current);
    const added = broadcastsOf(next).filter((b) => !broadcastReceivers.some((o) => sameSocketAddress(o, b)));
    if (added.length > 0) {
      throw new UsageError(cmd, `${formatSocketAddress(added[0]!)} is a broadcast address, which needs a restart (SO_BROADCAST is set at start)`);
    }
    forwarder.setRoutes(next);
    current = next;
    return { receivers: next.receivers.map((r) => r.spec.name) };
  });
}

/**
 * The broadcast receivers (255.255.255.255, a subnet's broadcast): they need SO_BROADCAST on the
 * sending sockets, and a TUN packet to one is never forwarded by the kernel, so tun cannot serve them.
 */
function broadcastReceiversFor(cmd: string, routes: ForwardRoutes, transport: TransportFlags): SocketAddress[] {
  const found = broadcastsOf(routes);
  if (found.length > 0 && (transport.kind === "tun" || transport.fallback === "tun")) {
    throw new UsageError(
      cmd,
      `--to ${
        formatSocketAddress(found[0]!)
      } is a broadcast address: use --transport raw or bindsrc (the kernel does not forward a TUN packet to a broadcast address)`,
    );
  }
  return found;
}

/** Receivers whose address the kernel routes as broadcast. */
function broadcastsOf(routes: ForwardRoutes): SocketAddress[] {
  return routes.receivers.map((r) => r.spec.address).filter(routeIsBroadcast);
}
