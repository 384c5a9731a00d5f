/**
 * Transport conformance scenarios, one program run under Bun and Deno in the router namespace.
 *   send KIND SRC DST SIZES COUNT PACE [TUN]   COUNT datagrams of each size (comma list), PACE per ms
 *   send-batch KIND SRC DST SIZES COUNT OFFLOAD [TUN]
 *                                              COUNT datagrams of each size, in order, handed over in
 *                                              one sendBatch (on|off: GSO runs where sizes allow;
 *                                              refuse: tun asks TUNSETOFFLOAD for a flag no kernel
 *                                              knows, as an old kernel meets USO, and must fall back)
 *   bad-input KIND [TUN]                       every kind of bad input, then one good datagram
 *   tun-receive TUN COUNT                      receive COUNT datagrams routed into the device (reassembled)
 *   capture-ids - SRC_IP COUNT TIMEOUT_MS      capture IPv4 packets from SRC_IP on every interface (an
 *                                              AF_PACKET socket, decoded with @anysrc/core) until COUNT
 *                                              datagrams (whole or fragment trains) were seen; report
 *                                              how their IDs repeat
 * KIND is raw | bindsrc | tun | packet. Prints JSON lines.
 * @module
 */
import process from "node:process";
import { type Datagram, formatSocketAddress, parseIp, parseIpv4, parseSocketAddress, sameIp, SystemError, type Transport, TransportError } from "@anysrc/core";
import { adapter, bindSocket, lastError, libc, linux, openUdpSocket, receiveFrom, setIntOption } from "@anysrc/sys";
import { createBindSourceTransport } from "@anysrc/transport-bindsrc";
import { createRawTransport } from "@anysrc/transport-raw";
import { createTunTransport } from "@anysrc/transport-tun";
import { createPacketTransport } from "@anysrc/transport-packet";
import { fillPattern } from "@anysrc/testbed";

const out = (o: Record<string, unknown>) => console.log(JSON.stringify({ runtime: adapter.runtime, ...o }));
const [mode, kind, ...args] = process.argv.slice(2);

// A TUN_F_ bit no kernel defines: TUNSETOFFLOAD refuses the whole request with EINVAL.
const UNKNOWN_TUN_FLAG = 0x10000000;

function open(kindName: string, tun: string | undefined, offload: "on" | "off" | "refuse" = "on"): Transport {
  const onOffloadFallback = (reason: string) => out({ fallback: reason });
  if (kindName === "raw") return createRawTransport();
  if (kindName === "packet") return createPacketTransport();
  if (kindName === "bindsrc") return createBindSourceTransport({ offload: offload !== "off", onOffloadFallback });
  if (kindName === "tun") {
    return createTunTransport({
      name: tun ?? "astun0",
      mtu: 1500,
      offload: offload !== "off",
      onOffloadFallback,
      ...(offload === "refuse" ? { offloadFlags: linux.TUN_F_CSUM | linux.TUN_F_USO4 | linux.TUN_F_USO6 | UNKNOWN_TUN_FLAG } : {}),
    });
  }
  throw new Error(`unknown transport ${kindName}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(srcText: string, dstText: string, sizesText: string, count: number, pace: number, tun?: string) {
  const t = open(kind!, tun);
  const src = parseSocketAddress(srcText);
  const dst = parseSocketAddress(dstText);
  out({ ready: true });
  await sleep(200); // the receiver is already listening; let a TUN device's link settle
  const buf = new Uint8Array(65536);
  let n = 0;
  for (const size of sizesText.split(",").map(Number)) {
    for (let seq = 0; seq < count; seq++) {
      fillPattern(buf, seq, size);
      t.send({ src, dst, payload: buf.subarray(0, size) });
      if (++n % pace === 0) await sleep(1);
    }
  }
  await t.close();
  out({ done: true, stats: t.stats });
}

async function sendBatch(srcText: string, dstText: string, sizesText: string, count: number, offload: "on" | "off" | "refuse", tun?: string) {
  const t = open(kind!, tun, offload);
  const src = parseSocketAddress(srcText);
  const dst = parseSocketAddress(dstText);
  out({ ready: true });
  await sleep(200);
  const batch: Datagram[] = [];
  for (const size of sizesText.split(",").map(Number)) {
    for (let seq = 0; seq < count; seq++) {
      const payload = new Uint8Array(size);
      fillPattern(payload, seq, size);
      batch.push({ src, dst, payload });
    }
  }
  t.sendBatch(batch);
  await t.close();
  out({ done: true, stats: t.stats });
}

async function badInput(tun?: string) {
  const t = open(kind!, tun);
  const v4 = parseSocketAddress("198.19.2.2:7000");
  const v6 = parseSocketAddress("[2001:db8:2::2]:7000");
  const client = parseSocketAddress("198.18.1.2:40100");
  const cases: [string, Datagram][] = [
    ["mixed families", { src: v6, dst: client, payload: new Uint8Array(4) }],
    ["payload over the maximum", { src: v4, dst: client, payload: new Uint8Array(65508) }],
    ["IPv6 payload over the maximum", { src: v6, dst: parseSocketAddress("[2001:db8:1::2]:40100"), payload: new Uint8Array(65528) }],
    ["destination port 0", { src: v4, dst: parseSocketAddress("198.18.1.2:0"), payload: new Uint8Array(4) }],
  ];
  const results: Record<string, unknown>[] = [];
  for (const [name, d] of cases) {
    try {
      t.send(d);
      results.push({ name, error: null });
    } catch (e) {
      results.push({ name, error: (e as Error).name, kind: e instanceof TransportError ? e.kind : undefined, message: (e as Error).message });
    }
  }
  const sentBefore = t.stats.sent;
  // A missing device (raw), an impossible device name (tun) or a source owned by a local service
  // (bindsrc) is refused with a typed error.
  let unusable: Record<string, unknown> | null = null;
  try {
    if (kind === "raw") createRawTransport({ device: "nosuchdev0" });
    else if (kind === "tun") createTunTransport({ name: "x".repeat(20) });
    else if (kind === "bindsrc") {
      // A local service owns 198.19.2.1:22222: the bind-source backend cannot use it as a source.
      const service = openUdpSocket({ family: 4 });
      bindSocket(service, parseSocketAddress("198.19.2.1:22222"));
      t.send({ src: parseSocketAddress("198.19.2.1:22222"), dst: client, payload: new Uint8Array(1) });
    }
  } catch (e) {
    unusable = { error: (e as Error).name, code: e instanceof SystemError ? e.code : undefined, message: (e as Error).message };
  }
  // The process keeps going: a good datagram still goes out.
  t.send({ src: v4, dst: client, payload: new TextEncoder().encode("still alive") });
  await t.close();
  out({ done: true, results, sentBefore, sentAfter: t.stats.sent, unusable, stats: t.stats });
}

async function tunReceive(name: string, count: number) {
  const t = createTunTransport({ name, mtu: 1400 });
  const it = t.receive();
  out({ ready: true });
  const got: Record<string, unknown>[] = [];
  while (got.length < count) {
    const r = await it.next();
    if (r.done) break;
    const d = r.value;
    let intact = true;
    for (let i = 4; i < d.payload.length; i++) if (d.payload[i] !== ((i * 31 + d.payload.length) & 0xff)) intact = false;
    got.push({ src: formatSocketAddress(d.src), dst: formatSocketAddress(d.dst), size: d.payload.length, intact });
  }
  await it.return?.();
  await t.close();
  out({ done: true, got, received: t.received });
}

/** IPv4 IDs as they arrive: unfragmented packets and fragment trains from `srcIp`, parsed with our own decoder. */
async function captureIds(srcIp: string, count: number, timeoutMs: number) {
  // AF_PACKET, SOCK_DGRAM: the IP packet without its link header; ETH_P_IP in network order.
  const fd = libc.socket(17, linux.SOCK_DGRAM | linux.SOCK_NONBLOCK | linux.SOCK_CLOEXEC, 0x0008);
  if (fd < 0) throw lastError("socket AF_PACKET");
  setIntOption(fd, linux.SOL_SOCKET, linux.SO_RCVBUFFORCE, 256 << 20, "SO_RCVBUFFORCE");
  const src = parseIp(srcIp);
  const buf = new Uint8Array(new ArrayBuffer(65536));
  const wholeIds: number[] = [];
  const trains = new Map<number, { offsets: number[]; last: boolean }>();
  let dontFragment = 0;
  out({ ready: true });
  const deadline = Date.now() + timeoutMs;
  let lastFragments = 0;
  while (wholeIds.length + lastFragments < count && Date.now() < deadline) {
    const got = receiveFrom(fd, buf);
    if (!got) {
      await sleep(1);
      continue;
    }
    const ip = parseIpv4(buf.subarray(0, got.length));
    if (ip.header.protocol !== 17 || !sameIp(ip.header.src, src)) continue;
    if (ip.header.dontFragment) dontFragment++;
    if (!ip.header.moreFragments && ip.header.fragmentOffset === 0) {
      wholeIds.push(ip.header.identification);
      continue;
    }
    let train = trains.get(ip.header.identification);
    if (!train) trains.set(ip.header.identification, train = { offsets: [], last: false });
    train.offsets.push(ip.header.fragmentOffset);
    if (!ip.header.moreFragments) {
      train.last = true;
      lastFragments++;
    }
  }
  libc.close(fd);
  const wholeSet = new Set(wholeIds);
  out({
    done: true,
    whole: wholeIds.length,
    wholeDistinct: wholeSet.size,
    zeroIds: wholeIds.filter((id) => id === 0).length,
    dontFragment,
    trains: trains.size,
    // Every train complete (a first and a last fragment, offsets distinct) and none sharing an ID with a whole packet.
    trainsComplete: [...trains.values()].filter((t) => t.last && t.offsets.includes(0) && new Set(t.offsets).size === t.offsets.length).length,
    trainIdsAlsoWhole: [...trains.keys()].filter((id) => wholeSet.has(id)).length,
  });
}

if (mode === "capture-ids") await captureIds(args[0]!, Number(args[1]), Number(args[2]));
else if (mode === "tun-receive") await tunReceive(kind!, Number(args[0]));
else if (mode === "send") await send(args[0]!, args[1]!, args[2]!, Number(args[3]), Number(args[4]), args[5]);
else if (mode === "send-batch") await sendBatch(args[0]!, args[1]!, args[2]!, Number(args[3]), args[4] as "on" | "off" | "refuse", args[5]);
else if (mode === "bad-input") await badInput(args[0]);
else {
  console.error(`transport_scenarios: unknown mode ${mode}`);
  process.exit(2);
}
