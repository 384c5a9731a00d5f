/**
 * `anysrc send`: emit N datagrams from a spoofed source through a chosen transport and report one
 * JSON line. A user tool (test a firewall or a collector) and the send-only benchmark.
 * @module
 */
import { parseArgs } from "node:util";
import { type Datagram, maxUdpPayload, type SocketAddress, socketAddress, type Transport } from "@anysrc/core";
import { monotonicNs } from "@anysrc/sys";
import { requirePrivileges } from "../capability_check.ts";
import { isTransportKind, openTransport, type TransportKind } from "../transport_choice.ts";
import { offloadFlag } from "./relay_flags.ts";
import { addressFlag, intFlag, UsageError } from "./usage_error.ts";

export const SEND_USAGE = `Usage: anysrc send --transport raw|bindsrc|tun|packet --src ADDR --dst ADDR --count N --size S
                   [--batch B] [--sources K] [--rate PPS] [--tun NAME] [--mtu N] [--mark N] [--offload on|off]

  --transport T   raw | bindsrc | tun | packet (AF_PACKET frames past routing, netfilter and qdisc)
  --src ADDR      source to spoof, e.g. 198.19.2.2:7000 (with --sources K: K ports from this one)
  --dst ADDR      destination, same family
  --count N       datagrams to send
  --size S        payload bytes (0 up to 65507 for IPv4, 65527 for IPv6)
  --batch B       datagrams per sendBatch / sendmmsg (default 32)
  --sources K     K distinct source ports, round-robin (default 1)
  --rate PPS      pace to PPS datagrams per second (default: as fast as the kernel takes them)
  --tun NAME      TUN device for --transport tun (default anysrc0; created if absent)
  --mtu N         fragment above N bytes (raw, tun)
  --mark N        SO_MARK on the sockets (raw, bindsrc)
  --offload on|off  GSO: a batch to one destination leaves as one send the kernel cuts (bindsrc
                  UDP_SEGMENT, tun virtio-net super-packets; default on; raw has none)

Prints {"transport","runtime","sent","errors","seconds","pps",…}; exit 0 when every datagram was
handed to the kernel, 1 otherwise.`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What `anysrc send` was asked to do. */
interface SendPlan {
  readonly kind: TransportKind;
  readonly src: SocketAddress;
  readonly dst: SocketAddress;
  readonly count: number;
  readonly size: number;
  readonly batch: number;
  readonly sources: number;
  readonly rate: number | undefined;
  readonly mtu: number | undefined;
  readonly mark: number | undefined;
  readonly tun: string | undefined;
  readonly offload: boolean;
}

/** One batch slot: a payload buffer and a datagram record, reused so that the loop allocates nothing. */
type Slot = { src: SocketAddress; readonly dst: SocketAddress; readonly payload: Uint8Array; readonly view: DataView };

/** Run `anysrc send`; returns the exit status. */
export async function sendCommand(args: string[], runtime: string, print: (line: string) => void): Promise<number> {
  const plan = parseSendArgs(args);
  const { kind, batch, offload, mtu, mark, tun, count } = plan;
  requirePrivileges({ transports: [kind], mark: mark !== undefined });
  const transport = openTransport(kind, {
    batch,
    offload,
    onOffloadFallback: (reason) => console.error(`anysrc send: ${reason}`),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(mark !== undefined ? { mark } : {}),
    ...(tun !== undefined ? { tun } : {}),
  });
  const start = monotonicNs();
  await sendAll(transport, plan, start);
  await transport.close();
  const seconds = (monotonicNs() - start) / 1e9;
  const s = transport.stats;
  print(JSON.stringify({
    transport: kind,
    runtime,
    sent: s.sent,
    errors: s.errors,
    seconds: Number(seconds.toFixed(6)),
    pps: Math.round(s.sent / seconds),
    count,
    size: plan.size,
    batch,
    sources: plan.sources,
    fragments: s.fragments,
    batches: s.batches,
    dropped: s.dropped,
    offload,
    coalesced: s.coalesced,
    offloadFallbacks: s.offloadFallbacks,
  }));
  return s.sent === count ? 0 : 1;
}

function parseSendArgs(args: string[]): SendPlan {
  const cmd = "send";
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      transport: { type: "string" },
      src: { type: "string" },
      dst: { type: "string" },
      count: { type: "string" },
      size: { type: "string" },
      batch: { type: "string" },
      sources: { type: "string" },
      rate: { type: "string" },
      tun: { type: "string" },
      mtu: { type: "string" },
      mark: { type: "string" },
      offload: { type: "string" },
    },
  });
  const offload = offloadFlag(cmd, values);
  const kind = values.transport;
  if (kind === undefined) throw new UsageError(cmd, "--transport is required");
  if (!isTransportKind(kind)) throw new UsageError(cmd, `--transport must be raw, bindsrc, tun or packet, got "${kind}"`);
  const src = addressFlag(cmd, "--src", values.src);
  const dst = addressFlag(cmd, "--dst", values.dst);
  if (src.family !== dst.family) throw new UsageError(cmd, `--src ${values.src} and --dst ${values.dst} are different IP families`);
  const count = intFlag(cmd, "--count", values.count, 1, 1e9);
  if (count === undefined) throw new UsageError(cmd, "--count is required");
  const size = intFlag(cmd, "--size", values.size, 0, maxUdpPayload(src.family));
  if (size === undefined) throw new UsageError(cmd, "--size is required");
  return {
    kind,
    src,
    dst,
    count,
    size,
    batch: intFlag(cmd, "--batch", values.batch, 1, 1024) ?? 32,
    sources: intFlag(cmd, "--sources", values.sources, 1, 65536 - src.port) ?? 1,
    rate: intFlag(cmd, "--rate", values.rate, 1, 1e9),
    mtu: intFlag(cmd, "--mtu", values.mtu, src.family === 4 ? 68 : 1280, 65535),
    mark: intFlag(cmd, "--mark", values.mark, 0, 0xffffffff),
    tun: values.tun,
    offload,
  };
}

/** `batch` slots over one buffer; bytes 0–3 of each payload carry the sequence number. */
function sendSlots(p: SendPlan): Slot[] {
  const { size, batch, src, dst } = p;
  const stride = (size + 7) & ~7;
  const memory = new ArrayBuffer(Math.max(8, stride * batch));
  return Array.from({ length: batch }, (_, k) => {
    const payload = new Uint8Array(memory, stride * k, size);
    for (let i = 0; i < size; i++) payload[i] = i & 0xff;
    return { src, dst, payload, view: new DataView(memory, payload.byteOffset, Math.max(4, size)) };
  });
}

/** `count` datagrams, a batch at a time, waiting for the queue to drain and for the pace. */
async function sendAll(transport: Transport, p: SendPlan, start: number): Promise<void> {
  const { count, batch, size, sources, rate } = p;
  const srcs = Array.from({ length: sources }, (_, k) => socketAddress(p.src.ip, p.src.port + k));
  const slots = sendSlots(p);
  const datagrams: Datagram[] = [];
  for (let seq = 0; seq < count;) {
    const n = Math.min(batch, count - seq);
    datagrams.length = n;
    for (let k = 0; k < n; k++) {
      const slot = slots[k]!;
      if (size >= 4) slot.view.setUint32(0, seq + k);
      slot.src = srcs[(seq + k) % sources]!;
      datagrams[k] = slot;
    }
    transport.sendBatch(datagrams);
    seq += n;
    // Back-pressure: wait for the queue to drain instead of letting it overflow.
    while (transport.stats.queued > 0) await sleep(1);
    if (rate !== undefined) {
      const due = start + (seq / rate) * 1e9;
      const ahead = (due - monotonicNs()) / 1e6;
      if (ahead >= 1) await sleep(Math.floor(ahead));
    }
  }
}
