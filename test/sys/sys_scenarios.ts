/**
 * The sys conformance scenarios, one program run under Bun and under Deno inside a test namespace.
 * Prints JSON lines: `{"ready":true,…}` once set up, then results. Usage:
 *   echo ADDR COUNT              batched echo (recvmmsg → sendmmsg, payload not copied) of COUNT datagrams
 *   gather-echo ADDR1 ADDR2 COUNT  two sockets gather into one ring (recvmmsg at an offset) during a
 *                                poll round; at its end (afterRound) every datagram is echoed from its
 *                                socket, msg_name pointing at the sender's sockaddr in the ring
 *   tproxy PORT COUNT            TPROXY listeners (v4 + v6): report each datagram's original destination
 *   transparent-send SRC DST N   IP_TRANSPARENT socket bound to a foreign SRC sends N datagrams to DST
 *   tun NAME                     TUN device: read one UDP datagram per family, write a reply packet back
 *   eaddrinuse ADDR              bind ADDR twice: report the typed error
 *   idle SECONDS                 poller armed on 4 idle sockets for SECONDS, then unregister and exit
 *   budget ADDR COUNT            COUNT datagrams queued on a socket before it is registered; its handler
 *                                reads 2 per dispatch, spends 1 ms, and asks for the rest with again():
 *                                all are read, and timers run meanwhile
 *   mapped ADDR                  a receive ring of 32 × 64 KiB (allocateNativeMemory): resident set before and
 *                                after, a 60 000-byte datagram read into it whole; under Bun, whether
 *                                the mapping is gone once the ring is collected
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import {
  ALL_CHECKSUMS,
  buildUdpPacket,
  formatSocketAddress,
  parseIpv4,
  parseIpv6,
  parseSocketAddress,
  parseUdp,
  type SocketAddress,
  socketAddress,
  SystemError,
} from "@anysrc/core";
import {
  adapter,
  bindSocket,
  closeFd,
  createRecvRing,
  createSendRing,
  getInterfaceMtu,
  getPoller,
  interfaceIndex,
  libc,
  localAddress,
  openTun,
  openUdpSocket,
  releaseFreeMemory,
  sendTo,
  setInterfaceMtu,
  setInterfaceUp,
  trimAfterBursts,
} from "@anysrc/sys";

const out = (o: Record<string, unknown>) => console.log(JSON.stringify({ runtime: adapter.runtime, ...o }));
const [mode, ...args] = process.argv.slice(2);
const READ = { readable: true, writable: false };

function echo(addrText: string, count: number): void {
  const addr = parseSocketAddress(addrText);
  const fd = openUdpSocket({ family: addr.family, receiveBuffer: 4 << 20 });
  bindSocket(fd, addr);
  const rx = createRecvRing({ slots: 32, slotSize: 2048 });
  const tx = createSendRing({ slots: 32 });
  let received = 0;
  let largestBatch = 0;
  let sendErrors = 0;
  getPoller().add(fd, READ, () => {
    for (;;) {
      const n = rx.receive(fd);
      if (n === 0) break;
      largestBatch = Math.max(largestBatch, n);
      for (let i = 0; i < n; i++) {
        tx.setDestination(i, rx.source(i)!);
        tx.setSingle(i, rx.payloadAddress(i), rx.length(i)); // the received bytes, sent from where they lie
      }
      for (let sent = 0; sent < n;) {
        const k = tx.send(fd, sent, n - sent);
        if (k < 0) {
          sendErrors++;
          break;
        }
        sent += k;
      }
      received += n;
    }
    if (received >= count) {
      getPoller().remove(fd);
      closeFd(fd);
      const { wakeups, busyPolls } = getPoller().stats;
      out({ done: true, received, largestBatch, sendErrors, wakeups, busyPolls });
    }
  });
  out({ ready: true, address: formatSocketAddress(localAddress(fd)) });
}

function gatherEcho(aText: string, bText: string, count: number): void {
  const fds = [aText, bText].map((t) => {
    const a = parseSocketAddress(t);
    const fd = openUdpSocket({ family: a.family, receiveBuffer: 4 << 20 });
    bindSocket(fd, a);
    return fd;
  });
  const rx = createRecvRing({ slots: 32, slotSize: 2048 });
  const tx = createSendRing({ slots: 32 });
  const from = new Int32Array(32); // the socket each slot came in on
  let fill = 0;
  let received = 0;
  let mixedRounds = 0;
  let sendErrors = 0;
  const flush = () => {
    // Echo the gathered slots, one sendmmsg per run of the same socket.
    for (let i = 0; i < fill; i++) {
      tx.setDestinationAt(i, rx.baseAddress + rx.sourceOffset(i), 32 /* room for either sockaddr: the kernel reads by family */);
      tx.setSingle(i, rx.payloadAddress(i), rx.length(i));
    }
    if (fill > 0 && from.subarray(0, fill).some((fd) => fd !== from[0])) mixedRounds++;
    for (let i = 0; i < fill;) {
      let j = i;
      while (j < fill && from[j] === from[i]) j++;
      for (let sent = i; sent < j;) {
        const k = tx.send(from[i]!, sent, j - sent);
        if (k < 0) {
          sendErrors++;
          break;
        }
        sent += k;
      }
      i = j;
    }
    fill = 0;
    if (received >= count) {
      stop();
      for (const fd of fds) {
        getPoller().remove(fd);
        closeFd(fd);
      }
      out({ done: true, received, mixedRounds, sendErrors });
    }
  };
  const stop = getPoller().afterRound(flush);
  const onReady = (_events: number, fd: number) => {
    for (;;) {
      if (fill === rx.slots) flush();
      const want = rx.slots - fill;
      const n = rx.receive(fd, fill, want);
      for (let i = fill; i < fill + n; i++) from[i] = fd;
      fill += n;
      received += n;
      if (n < want) break;
    }
  };
  for (const fd of fds) getPoller().add(fd, READ, onReady, fd);
  out({ ready: true });
}

function tproxy(port: number, count: number): void {
  const seen: Record<string, unknown>[] = [];
  // The decoded records themselves, read again once the ring has been reused: a kept address is a copy.
  const kept: { text: string; address: SocketAddress }[] = [];
  const rx = createRecvRing({ slots: 16, slotSize: 2048 });
  const fds = ([4, 6] as const).map((family) => {
    const fd = openUdpSocket({ family, transparent: true, receiveOriginalDestination: true, reuseAddress: true });
    bindSocket(fd, parseSocketAddress(family === 4 ? `0.0.0.0:${port}` : `[::]:${port}`));
    return fd;
  });
  for (const fd of fds) {
    getPoller().add(fd, READ, () => {
      for (let n = rx.receive(fd); n > 0; n = rx.receive(fd)) {
        for (let i = 0; i < n; i++) {
          const dst = rx.originalDestination(i);
          const from = rx.source(i)!;
          kept.push({ text: formatSocketAddress(from), address: from });
          seen.push({
            from: formatSocketAddress(from),
            origDst: dst ? formatSocketAddress(dst) : null,
            payload: new TextDecoder().decode(rx.payload(i)),
          });
        }
      }
      if (seen.length >= count) {
        for (const f of fds) {
          getPoller().remove(f);
          closeFd(f);
        }
        out({ done: true, seen, keptIntact: kept.every((k) => formatSocketAddress(k.address) === k.text) });
      }
    });
  }
  out({ ready: true });
}

function transparentSend(srcText: string, dstText: string, count: number): void {
  const src = parseSocketAddress(srcText);
  const dst = parseSocketAddress(dstText);
  const fd = openUdpSocket({ family: src.family, transparent: true, freebind: true, reuseAddress: true });
  bindSocket(fd, src);
  let sent = 0;
  const timer = setInterval(() => {
    if (sendTo(fd, new TextEncoder().encode(`reply ${sent} from ${srcText}`), dst)) sent++;
    if (sent >= count) {
      clearInterval(timer);
      closeFd(fd);
      out({ done: true, sent, bound: srcText });
    }
  }, 20);
  out({ ready: true });
}

function tun(name: string): void {
  const dev = openTun(name);
  setInterfaceMtu(dev.name, 1400);
  setInterfaceUp(dev.name);
  const slot = new Uint8Array(2048);
  const reply = new Uint8Array(2048);
  const handled: Record<string, unknown>[] = [];
  getPoller().add(dev.fd, READ, () => {
    for (;;) {
      const n = libc.read(dev.fd, slot, slot.length);
      if (n <= 0) break;
      const packet = slot.subarray(0, n);
      const version = packet[0]! >> 4;
      const ip = version === 4 ? parseIpv4(packet) : parseIpv6(packet);
      const upper = version === 4 ? (ip as ReturnType<typeof parseIpv4>).header.protocol : (ip as ReturnType<typeof parseIpv6>).upperProtocol;
      if (upper !== 17) continue; // router solicitations and the like
      const udp = parseUdp(ip.payload, ip.header.src, ip.header.dst);
      const from = socketAddress(ip.header.src, udp.header.srcPort);
      const to = socketAddress(ip.header.dst, udp.header.dstPort);
      const text = `pong ${new TextDecoder().decode(udp.payload)}`;
      // The reply is a whole packet written into the TUN: every checksum is ours.
      const len = buildUdpPacket(reply, 0, to, from, new TextEncoder().encode(text), { checksums: ALL_CHECKSUMS });
      const w = libc.write(dev.fd, reply, len);
      handled.push({ from: formatSocketAddress(from), to: formatSocketAddress(to), udpChecksumValid: udp.checksumValid, wrote: w });
      if (handled.length === 2) {
        getPoller().remove(dev.fd);
        closeFd(dev.fd);
        out({ done: true, handled });
      }
    }
  });
  out({ ready: true, name: dev.name, mtu: getInterfaceMtu(dev.name), index: interfaceIndex(dev.name) });
}

function eaddrinuse(addrText: string): void {
  const addr = parseSocketAddress(addrText);
  const a = openUdpSocket({ family: addr.family });
  bindSocket(a, addr);
  const b = openUdpSocket({ family: addr.family });
  try {
    bindSocket(b, addr);
    out({ done: true, error: null });
  } catch (e) {
    if (!(e instanceof SystemError)) throw e;
    out({ done: true, error: { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, address: e.address, message: e.message } });
  }
  closeFd(a);
  closeFd(b);
}

function idle(seconds: number): void {
  const fds = [4, 4, 6, 6].map((family) => {
    const fd = openUdpSocket({ family: family as 4 | 6 });
    bindSocket(fd, parseSocketAddress(family === 4 ? "127.0.0.1:0" : "[::1]:0"));
    getPoller().add(fd, READ, () => out({ unexpected: fd }));
    return fd;
  });
  out({ ready: true, registered: getPoller().registered });
  setTimeout(() => {
    for (const fd of fds) {
      getPoller().remove(fd);
      closeFd(fd);
    }
    out({ done: true, registered: getPoller().registered, wakeups: getPoller().stats.wakeups });
    // Nothing else keeps the process alive: it must exit by itself now.
  }, seconds * 1000);
}

function budget(addrText: string, count: number): void {
  const addr = parseSocketAddress(addrText);
  const fd = openUdpSocket({ family: addr.family, receiveBuffer: 4 << 20 });
  bindSocket(fd, addr);
  const bound = localAddress(fd);
  const sender = openUdpSocket({ family: addr.family });
  const payload = new Uint8Array(64);
  let queued = 0;
  for (let i = 0; i < count; i++) if (sendTo(sender, payload, bound)) queued++;
  closeFd(sender);
  const rx = createRecvRing({ slots: 2, slotSize: 2048 });
  let read = 0;
  let dispatches = 0;
  let ticks = 0;
  let done = false;
  const tick = () => {
    if (done) return;
    ticks++;
    setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  const finish = (timedOut: boolean) => {
    if (done) return;
    done = true;
    getPoller().remove(fd);
    closeFd(fd);
    out({ done: true, queued, read, dispatches, ticks, timedOut });
  };
  const deadline = setTimeout(() => finish(true), 10_000);
  getPoller().add(fd, READ, () => {
    dispatches++;
    const n = rx.receive(fd);
    read += n;
    // A handler with a tiny budget: busy for 1 ms, then it yields though data is still waiting.
    for (const until = Date.now() + 1; Date.now() < until;);
    if (read >= queued) {
      clearTimeout(deadline);
      finish(false);
    } else if (n === rx.slots) getPoller().again(fd);
  });
  out({ ready: true });
}

/** Kilobytes of anonymous memory this process has resident. */
function rssAnonKiB(): number {
  return Number(/RssAnon:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? -1);
}

/** Whether some mapping of this process (/proc/self/maps) holds `address`. */
function mappedAt(address: number): boolean {
  return readFileSync("/proc/self/maps", "utf8").split("\n").some((l) => {
    const [from, to] = (l.split(" ")[0] ?? "").split("-").map((h) => parseInt(h, 16));
    return from !== undefined && to !== undefined && from <= address && address < to;
  });
}

async function mapped(addrText: string): Promise<void> {
  const addr = parseSocketAddress(addrText);
  const fd = openUdpSocket({ family: addr.family, receiveBuffer: 1 << 20 });
  bindSocket(fd, addr);
  const bound = localAddress(fd);
  const before = rssAnonKiB();
  let ring: ReturnType<typeof createRecvRing> | undefined = createRecvRing({ slots: 32, slotSize: 65536 });
  const allocatedKiB = rssAnonKiB() - before;
  const base = adapter.addressOf(ring.memory);
  const sender = openUdpSocket({ family: addr.family });
  const payload = new Uint8Array(60000).map((_, i) => (i * 7) & 0xff);
  sendTo(sender, payload, bound);
  closeFd(sender);
  const n = ring.receive(fd);
  const got = n === 1 ? ring.datagram(0, 0) : new Uint8Array(0);
  const whole = got.length === payload.length && got.every((b, i) => b === payload[i]);
  closeFd(fd);
  const bytes = ring.memory.byteLength;
  const mappedBefore = mappedAt(base);
  ring = undefined;
  const gc = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun?.gc;
  let unmapped: boolean | null = null;
  if (gc) {
    // FinalizationRegistry callbacks run after a collection, on a later turn of the event loop.
    for (let i = 0; i < 20 && unmapped !== true; i++) {
      gc(true);
      await new Promise((r) => setTimeout(r, 10));
      unmapped = !mappedAt(base);
    }
  }
  out({ done: true, bytes, allocatedKiB, received: n, whole, pageAligned: base % 4096 === 0, mappedBefore, unmapped });
}

/**
 * trimAfterBursts' timing with a counter for activity: a burst then quiet (one trim as it settles),
 * then change that never pauses (a trim every longestWaitMs), then stopped (no more). And one real
 * malloc_trim through the binding table.
 */
async function trim(): Promise<void> {
  const t0 = Date.now();
  const trims: number[] = [];
  let count = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const stop = trimAfterBursts(() => count, { periodMs: 20, longestWaitMs: 200, trim: () => trims.push(Date.now() - t0) });
  const bump = (ms: number) => {
    const timer = setInterval(() => count++, 5);
    return sleep(ms).then(() => clearInterval(timer));
  };
  await bump(100);
  await sleep(200);
  const afterBurst = trims.length;
  await bump(700);
  const whileChanging = trims.length - afterBurst;
  stop();
  const atStop = trims.length;
  await sleep(100);
  out({ done: true, afterBurst, whileChanging, afterStop: trims.length - atStop, released: typeof releaseFreeMemory() });
}

switch (mode) {
  case "trim":
    await trim();
    break;
  case "mapped":
    await mapped(args[0]!);
    break;
  case "budget":
    budget(args[0]!, Number(args[1]));
    break;
  case "echo":
    echo(args[0]!, Number(args[1]));
    break;
  case "gather-echo":
    gatherEcho(args[0]!, args[1]!, Number(args[2]));
    break;
  case "tproxy":
    tproxy(Number(args[0]), Number(args[1]));
    break;
  case "transparent-send":
    transparentSend(args[0]!, args[1]!, Number(args[2]));
    break;
  case "tun":
    tun(args[0]!);
    break;
  case "eaddrinuse":
    eaddrinuse(args[0]!);
    break;
  case "idle":
    idle(Number(args[0]));
    break;
  default:
    console.error(`sys_scenarios: unknown mode ${mode}`);
    process.exit(2);
}
