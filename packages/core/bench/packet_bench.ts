/**
 * Header + checksum cost per packet, 64 B and 1200 B, IPv4 and IPv6, on whichever runtime runs it
 * (`bun bench/packet_bench.ts`, `deno run bench/packet_bench.ts`). Side by side in the same run: a
 * byte-wise DataView checksum (the approach the 32-bit word sum replaces), as a ratio.
 * @module
 */
import {
  ALL_CHECKSUMS,
  buildUdpHeaders,
  buildUdpPacket,
  parseSocketAddress,
  RAW_SOCKET_CHECKSUMS,
  type SocketAddress,
  type UdpPacketOptions,
} from "../src/mod.ts";

// The runtime's name and version from the Web-standard navigator ("Bun/1.4.5", "Deno/2.9.6"): core asks no runtime API.
const runtime = ((globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? "unknown").replace("/", " ").toLowerCase();

/** Reference: the DataView.getUint16 loop, to show what the word-sum fast path is worth. */
function dataViewChecksum(view: DataView, start: number, end: number, initial: number): number {
  let s = initial;
  let i = start;
  for (; i + 1 < end; i += 2) s += view.getUint16(i);
  if (i < end) s += view.getUint8(i) << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

// Each loop calls the function under test directly, as a transport's send loop does; one batch is
// 32 packets (one sendmmsg), and the payload's first byte changes so nothing can be hoisted.
const BATCH = 32;

function rawPath(n: number, out: Uint8Array, src: SocketAddress, dst: SocketAddress, payload: Uint8Array, o: UdpPacketOptions): number {
  let x = 0;
  for (let i = 0; i < n; i++) {
    payload[0] = i;
    x ^= buildUdpHeaders(out, (i % BATCH) * 64, src, dst, payload, o);
  }
  return x;
}

function tunPath(n: number, out: Uint8Array, stride: number, src: SocketAddress, dst: SocketAddress, payload: Uint8Array, o: UdpPacketOptions): number {
  let x = 0;
  for (let i = 0; i < n; i++) {
    payload[0] = i;
    x ^= buildUdpPacket(out, (i % BATCH) * stride, src, dst, payload, o);
  }
  return x;
}

function dataViewPath(n: number, view: DataView, payload: Uint8Array, size: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) {
    payload[0] = i;
    x ^= dataViewChecksum(view, 0, size, 17 + 8 + size);
  }
  return x;
}

let sink = 0;

/** Median ns per packet over 15 rounds. */
function measure(run: (n: number) => number, n: number): number {
  sink ^= run(n); // warm-up
  const samples: number[] = [];
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    sink ^= run(n);
    samples.push(((performance.now() - t0) * 1e6) / n);
  }
  samples.sort((a, b) => a - b);
  return samples[7]!;
}

const cases = [
  ["IPv4", "198.19.2.2:7000", "198.18.1.2:40000"],
  ["IPv6", "[2001:db8:2::2]:7000", "[2001:db8:1::2]:40000"],
] as const;

console.log(`# @anysrc/core packet build on ${runtime}: ns per packet, median of 15 rounds`);
console.log(
  "| family | payload | headers + checksums (raw path) | whole packet, every checksum (tun path) | byte-wise DataView UDP checksum | DataView checksum alone ÷ whole raw path |",
);
console.log("|---|---:|---:|---:|---:|---:|");
for (const [family, s, d] of cases) {
  const src = parseSocketAddress(s);
  const dst = parseSocketAddress(d);
  const raw: UdpPacketOptions = { checksums: RAW_SOCKET_CHECKSUMS, ttl: 64 };
  const tun: UdpPacketOptions = { checksums: ALL_CHECKSUMS, ttl: 64 };
  for (const size of [64, 1200]) {
    // 4-byte aligned buffers, reused: the way the transports hold them.
    const headers = new Uint8Array(64 * BATCH);
    const payload = new Uint8Array(size).map((_, i) => i & 0xff);
    const stride = (48 + size + 3) & ~3;
    const packets = new Uint8Array(stride * BATCH);
    const view = new DataView(payload.buffer);
    const n = size > 100 ? 200_000 : 1_000_000;
    const rawNs = measure((k) => rawPath(k, headers, src, dst, payload, raw), n);
    const tunNs = measure((k) => tunPath(k, packets, stride, src, dst, payload, tun), n);
    const dvNs = measure((k) => dataViewPath(k, view, payload, size), n);
    console.log(`| ${family} | ${size} B | ${rawNs.toFixed(1)} | ${tunNs.toFixed(1)} | ${dvNs.toFixed(1)} | ${(dvNs / rawNs).toFixed(2)}× |`);
  }
}
if (sink === 0.5) console.log(sink);
