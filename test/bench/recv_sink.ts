/**
 * The anysrc receive path under test: poller (epoll Worker + Atomics) + recvmmsg ring, counting
 * datagrams and the wake-up latency from the sender's CLOCK_MONOTONIC stamp, like c/udp_sink.c.
 * usage: recv_sink.ts BIND_ADDR SECONDS   (the window starts at the first datagram)
 * @module
 */
import process from "node:process";
import { parseSocketAddress } from "@anysrc/core";
import { bindSocket, closeFd, createRecvRing, getPoller, monotonicNs, openUdpSocket } from "@anysrc/sys";

const addr = parseSocketAddress(process.argv[2]!);
const seconds = Number(process.argv[3]);
const fd = openUdpSocket({ family: addr.family, receiveBuffer: 4 << 20 });
bindSocket(fd, addr);
const ring = createRecvRing({ slots: 32, slotSize: 2048 });
const stamps = new DataView(ring.memory.buffer);
const latencies = new Uint32Array(2_000_000);
let count = 0;
let received = 0;
let first = 0;
let end = Infinity;
let finished = false;
let cpu0 = 0;
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function finish(): void {
  if (finished) return;
  finished = true;
  getPoller().remove(fd);
  closeFd(fd);
  const cpu = cpuSeconds() - cpu0;
  const lat = latencies.subarray(0, count).sort();
  console.log(JSON.stringify({
    received,
    seconds: (monotonicNs() - first) / 1e9,
    cpu_s: cpu,
    p50_us: lat[Math.floor(count / 2)] ?? 0,
    p99_us: lat[Math.floor((count * 99) / 100)] ?? 0,
    wakeups: getPoller().stats.wakeups,
  }));
}

getPoller().add(fd, { readable: true, writable: false }, () => {
  for (;;) {
    const n = ring.receive(fd);
    if (n === 0) break;
    const now = monotonicNs();
    if (first === 0) {
      first = now;
      end = now + seconds * 1e9;
      cpu0 = cpuSeconds();
      setTimeout(finish, seconds * 1000 + 200); // in case the traffic stops before the window ends
    }
    if (now >= end) return finish();
    for (let i = 0; i < n; i++) {
      const at = ring.slotViews[i]!.byteOffset + ring.headroom;
      const sent = stamps.getUint32(at, true) + stamps.getUint32(at + 4, true) * 0x100000000;
      if (count < latencies.length && now > sent) latencies[count++] = (now - sent) / 1000;
    }
    received += n;
  }
});
console.log(JSON.stringify({ ready: true }));
