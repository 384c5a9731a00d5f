#!/usr/bin/env node
// The far end of the namespace tests, on Node's own UDP stack (independent of anysrc's FFI code).
// Connected sockets only receive from their peer, so a wrong source address shows up as loss.
// Prints one JSON line per event on stdout.
//   echo-client DST COUNT SIZE [PER] [PAUSES]   send COUNT datagrams, expect each echoed back intact; after
//                                              every PER datagrams a pause of the next of PAUSES (ms, comma list)
//   send DST COUNT [SIZE]                      send COUNT datagrams "i:<n>" from one ephemeral port
//   recv-connected LOCAL PEER COUNT TIMEOUT_MS receive COUNT datagrams from exactly PEER
//   ping-pong DST TIMEOUT_MS                   send one datagram to DST, expect a reply from DST
//   recv-sizes LOCAL PEER SIZES COUNT TIMEOUT_MS   expect COUNT datagrams of each size (comma list)
//                                              from exactly PEER, every byte verified (payload_pattern.ts)
//   echo-server HOST PORT[,PORT…]             echo every datagram back from the socket it arrived on;
//                                              with --cone, also answer from PORT+1 ("second remote")
//   burst-echo HOST PORT COPIES DELAY_MS        answer each datagram, DELAY_MS later, with COPIES copies
//                                              of it sent back to back (to overflow a receiver on purpose);
//                                              says when one arrived
//   flows DST COUNT SIZES FLOWS PER_MS [PORT]   FLOWS connected sockets to DST send COUNT datagrams in all,
//                                              sizes cycling; every echo verified (payload_pattern.ts);
//                                              with PORT, flow f sends from port PORT+f (perFlow: echoes each)
//   send-from LOCAL DST COUNT SIZE              send COUNT datagrams in `anysrc send`'s pattern from LOCAL
//   send-pattern DST SIZE                       send one datagram of SIZE in the payload_pattern.ts pattern
//   cone-client DST WAIT_MS                     unconnected socket: send "hello" to DST, report who answered
//   recv-count LOCAL PEER COUNT SIZE TIMEOUT_MS   expect COUNT datagrams of SIZE from exactly PEER in
//                                              `anysrc send`'s pattern (seq in bytes 0–3, then i & 0xff)
//   echo-sizes DST SIZES TIMEOUT_MS             one connected socket: each size in turn (0 and 65507
//                                              allowed), wait for its echo, compare every byte
//   sequential-clients DST N TIMEOUT_MS         N fresh sockets one after another: send, await the reply
//   many-sources HOST DST SOURCES PER_SOURCE    SOURCES sockets on HOST send PER_SOURCE datagrams each
//                                              to DST, round-robin, payload "<port>:<i>"
//   recv-log LOCAL COUNT TIMEOUT_MS             one line per datagram: its source and its payload as text
//   recv-any LOCAL COUNT TIMEOUT_MS             count datagrams from anyone; report distinct sources,
//                                              payloads that disagree with their sender ("<port>:<i>")
//                                              and each source's i values (perSource)
import dgram from "node:dgram";

const [mode, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const split = (text) => {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`bad address ${text}`);
  return { host: m[1], port: Number(m[2]), type: m[1].includes(":") ? "udp6" : "udp4" };
};
const pattern = (seq, size) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seq * 7 + i) & 0xff;
  if (size >= 4) b.writeUInt32BE(seq, 0);
  return b;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A load generator must not lose its own datagrams: when the kernel refuses one (ENOBUFS while a
// device queue is full, EAGAIN), retry it shortly instead of letting it vanish. Counted.
let sendRetries = 0;
const sendWithRetry = (socket, buf, port, host, attempt = 0) => {
  const retry = (err) => {
    if (!err) return;
    if (attempt >= 100) {
      console.error(`udp_peer: send failed for good: ${err.message}`);
      return;
    }
    sendRetries++;
    setTimeout(() => sendWithRetry(socket, buf, port, host, attempt + 1), 1);
  };
  if (port === undefined) socket.send(buf, retry);
  else socket.send(buf, port, host, retry);
};

async function echoClient(dst, count, size, perMs, pausesMs) {
  const d = split(dst);
  const s = dgram.createSocket({ type: d.type, recvBufferSize: 4 << 20 });
  await new Promise((r) => s.connect(d.port, d.host, r));
  const seen = new Set();
  let corrupt = 0;
  s.on("message", (msg) => {
    const seq = msg.length >= 4 ? msg.readUInt32BE(0) : -1;
    if (!pattern(seq, size).equals(msg)) corrupt++;
    else seen.add(seq);
  });
  for (let i = 0; i < count; i++) {
    s.send(pattern(i, size));
    if ((i + 1) % perMs === 0) await sleep(pausesMs[((i + 1) / perMs - 1) % pausesMs.length]);
  }
  const deadline = Date.now() + 5000;
  while (seen.size < count && Date.now() < deadline) await sleep(20);
  out({ done: true, sent: count, received: seen.size, corrupt });
  s.close();
}

async function send(dst, count, size) {
  const d = split(dst);
  const s = dgram.createSocket(d.type);
  await new Promise((r) => s.bind(0, r));
  for (let i = 0; i < count; i++) {
    const body = Buffer.from(`i:${i}`);
    s.send(size ? Buffer.concat([body, Buffer.alloc(Math.max(0, size - body.length))]) : body, d.port, d.host);
    await sleep(2);
  }
  out({ done: true, sent: count, local: s.address() });
  await sleep(50);
  s.close();
}

async function recvConnected(local, peer, count, timeoutMs) {
  const l = split(local);
  const p = split(peer);
  const s = dgram.createSocket(l.type);
  await new Promise((r) => s.bind(l.port, l.host, r));
  await new Promise((r) => s.connect(p.port, p.host, r));
  const payloads = [];
  s.on("message", (msg, rinfo) => payloads.push({ text: msg.toString("latin1"), from: `${rinfo.address}:${rinfo.port}` }));
  out({ ready: true });
  const deadline = Date.now() + timeoutMs;
  while (payloads.length < count && Date.now() < deadline) await sleep(10);
  out({ done: true, received: payloads.length, payloads });
  s.close();
}

async function pingPong(dst, timeoutMs) {
  const d = split(dst);
  const s = dgram.createSocket(d.type);
  await new Promise((r) => s.connect(d.port, d.host, r));
  let reply;
  s.on("message", (msg) => (reply = msg.toString("latin1")));
  const deadline = Date.now() + timeoutMs;
  while (reply === undefined && Date.now() < deadline) {
    s.send(Buffer.from("ping"));
    await sleep(100);
  }
  out({ done: true, reply: reply ?? null, local: s.address() });
  s.close();
}

// Mirror of payload_pattern.ts.
const verify = (msg) => {
  const size = msg.length;
  for (let i = size >= 4 ? 4 : 0; i < size; i++) if (msg[i] !== ((i * 31 + size) & 0xff)) return -1;
  return size >= 4 ? msg.readUInt32BE(0) : 0;
};

async function recvSizes(local, peer, sizesText, count, timeoutMs) {
  const l = split(local);
  const p = split(peer);
  const sizes = sizesText.split(",").map(Number);
  const s = dgram.createSocket({ type: l.type, recvBufferSize: 32 << 20 });
  await new Promise((r) => s.bind(l.port, l.host, r));
  await new Promise((r) => s.connect(p.port, p.host, r));
  const seen = new Map(sizes.map((z) => [z, new Set()]));
  let corrupt = 0, unexpected = 0, duplicates = 0;
  s.on("message", (msg) => {
    const set = seen.get(msg.length);
    if (!set) {
      unexpected++;
      return;
    }
    const seq = verify(msg);
    if (seq < 0) {
      corrupt++;
      return;
    }
    const key = msg.length >= 4 ? seq : set.size;
    if (set.has(key)) duplicates++;
    set.add(key);
  });
  out({ ready: true });
  const total = () => [...seen.values()].reduce((a, x) => a + x.size, 0);
  const deadline = Date.now() + timeoutMs;
  while (total() < count * sizes.length && Date.now() < deadline) await sleep(10);
  await sleep(100); // late duplicates
  // Which sequence numbers never came (sizes of 4 bytes and more carry theirs), the first 500.
  const missing = [];
  for (const [z, set] of seen) for (let q = 0; z >= 4 && q < count && missing.length < 500; q++) if (!set.has(q)) missing.push(q);
  out({ done: true, perSize: Object.fromEntries([...seen].map(([z, set]) => [z, set.size])), corrupt, unexpected, duplicates, missing });
  s.close();
}

async function recvCount(local, peer, count, size, timeoutMs) {
  const l = split(local);
  const p = split(peer);
  const s = dgram.createSocket({ type: l.type, recvBufferSize: 32 << 20 });
  await new Promise((r) => s.bind(l.port, l.host, r));
  await new Promise((r) => s.connect(p.port, p.host, r));
  const seqs = new Set();
  let corrupt = 0;
  s.on("message", (msg) => {
    let ok = msg.length === size;
    for (let i = 4; ok && i < size; i++) if (msg[i] !== (i & 0xff)) ok = false;
    if (!ok) {
      corrupt++;
      return;
    }
    seqs.add(size >= 4 ? msg.readUInt32BE(0) : seqs.size);
  });
  out({ ready: true });
  const deadline = Date.now() + timeoutMs;
  while (seqs.size < count && Date.now() < deadline) await sleep(10);
  out({ done: true, received: seqs.size, corrupt });
  s.close();
}

async function burstEcho(host, port, copies, delayMs) {
  const s = dgram.createSocket({ type: host.includes(":") ? "udp6" : "udp4", sendBufferSize: 16 << 20 });
  await new Promise((r) => s.bind(port, host, r));
  s.on("message", (msg, rinfo) => {
    out({ received: msg.length, from: `${rinfo.address}:${rinfo.port}` });
    setTimeout(() => {
      for (let i = 0; i < copies; i++) sendWithRetry(s, msg, rinfo.port, rinfo.address);
      out({ burst: copies, to: `${rinfo.address}:${rinfo.port}` });
    }, delayMs);
  });
  out({ ready: true });
  await new Promise(() => {});
}

async function echoServer(host, portsText, cone) {
  const type = host.includes(":") ? "udp6" : "udp4";
  const sockets = [];
  for (const port of portsText.split(",").map(Number)) {
    const s = dgram.createSocket({ type, recvBufferSize: 16 << 20, sendBufferSize: 16 << 20 });
    await new Promise((r) => s.bind(port, host, r));
    let second;
    if (cone) {
      second = dgram.createSocket(type);
      await new Promise((r) => second.bind(port + 1, host, r));
      sockets.push(second);
    }
    s.on("message", (msg, rinfo) => {
      sendWithRetry(s, msg, rinfo.port, rinfo.address);
      // A second remote that the client never addressed writes to the same mapping.
      if (second) second.send(Buffer.from(`from ${port + 1}`), rinfo.port, rinfo.address);
    });
    sockets.push(s);
  }
  out({ ready: true });
  await new Promise(() => {});
}

async function flows(dst, count, sizesText, nflows, perMs, basePort) {
  const d = split(dst);
  const sizes = sizesText.split(",").map(Number);
  const socks = [];
  const seen = [];
  let corrupt = 0;
  for (let f = 0; f < nflows; f++) {
    const s = dgram.createSocket({ type: d.type, recvBufferSize: 4 << 20 });
    if (basePort) await new Promise((r) => s.bind(basePort + f, r));
    await new Promise((r) => s.connect(d.port, d.host, r));
    const got = new Set();
    s.on("message", (msg) => {
      const seq = verify(msg); // sizes here are ≥ 4, so every datagram carries its sequence number
      if (seq < 0 || !sizes.includes(msg.length)) corrupt++;
      else got.add(seq);
    });
    socks.push(s);
    seen.push(got);
  }
  const body = (seq, size) => {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (i * 31 + size) & 0xff;
    if (size >= 4) b.writeUInt32BE(seq, 0);
    return b;
  };
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    sendWithRetry(socks[i % nflows], body(i, sizes[i % sizes.length]));
    if ((i + 1) % perMs === 0) await sleep(1);
  }
  const total = () => seen.reduce((a, x) => a + x.size, 0);
  const deadline = Date.now() + 5000;
  while (total() < count && Date.now() < deadline) await sleep(20);
  out({
    done: true,
    sent: count,
    received: total(),
    corrupt,
    sendRetries,
    seconds: (Date.now() - t0) / 1000,
    flowsComplete: seen.filter((x, f) => x.size === Math.ceil((count - f) / nflows)).length,
    ...(basePort ? { perFlow: seen.map((x, f) => ({ port: basePort + f, sent: Math.ceil((count - f) / nflows), received: x.size })) } : {}),
  });
  for (const s of socks) s.close();
}

async function coneClient(dst, waitMs) {
  const d = split(dst);
  const s = dgram.createSocket(d.type);
  await new Promise((r) => s.bind(0, r));
  const replies = [];
  s.on(
    "message",
    (msg, rinfo) =>
      replies.push({ from: d.type === "udp6" ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`, text: msg.toString("latin1") }),
  );
  s.send(Buffer.from("hello"), d.port, d.host);
  await sleep(waitMs);
  out({ done: true, replies });
  s.close();
}

async function sendFrom(local, dst, count, size) {
  const l = split(local);
  const d = split(dst);
  const s = dgram.createSocket(l.type);
  await new Promise((r) => s.bind(l.port, l.host, r));
  for (let i = 0; i < count; i++) {
    const b = Buffer.alloc(size);
    for (let k = 0; k < size; k++) b[k] = k & 0xff;
    if (size >= 4) b.writeUInt32BE(i, 0);
    s.send(b, d.port, d.host);
    await sleep(2);
  }
  await sleep(50);
  out({ done: true, sent: count });
  s.close();
}

async function sendPattern(dst, size) {
  const d = split(dst);
  const s = dgram.createSocket(d.type);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + size) & 0xff;
  await new Promise((r) => s.send(b, d.port, d.host, r));
  out({ done: true });
  s.close();
}

async function echoSizes(dst, sizesText, timeoutMs) {
  const d = split(dst);
  const s = dgram.createSocket({ type: d.type, recvBufferSize: 4 << 20 });
  await new Promise((r) => s.connect(d.port, d.host, r));
  const results = [];
  for (const size of sizesText.split(",").map(Number)) {
    const body = pattern(size, size);
    const reply = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      s.once("message", (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
    sendWithRetry(s, body);
    const msg = await reply;
    results.push({ size, echoed: msg !== undefined, intact: msg !== undefined && body.equals(msg) });
  }
  out({ done: true, results });
  s.close();
}

async function sequentialClients(dst, n, timeoutMs) {
  const d = split(dst);
  let replied = 0;
  for (let i = 0; i < n; i++) {
    const s = dgram.createSocket(d.type);
    await new Promise((r) => s.connect(d.port, d.host, r));
    const got = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      s.once("message", (msg) => {
        clearTimeout(timer);
        resolve(msg.toString() === `client ${i}`);
      });
    });
    s.send(Buffer.from(`client ${i}`));
    if (await got) replied++;
    s.close();
  }
  out({ done: true, clients: n, replied });
}

async function manySources(host, dst, nsources, perSource) {
  const d = split(dst);
  const socks = [];
  for (let i = 0; i < nsources; i++) {
    const s = dgram.createSocket(d.type);
    await new Promise((r) => s.bind(0, host, r));
    socks.push(s);
  }
  for (let k = 0; k < perSource; k++) {
    for (const s of socks) sendWithRetry(s, Buffer.from(`${s.address().port}:${k}`), d.port, d.host);
    await sleep(5);
  }
  await sleep(50);
  out({ done: true, sent: nsources * perSource, sendRetries });
  for (const s of socks) s.close();
}

async function recvLog(local, count, timeoutMs) {
  const l = split(local);
  const s = dgram.createSocket(l.type);
  await new Promise((r) => s.bind(l.port, l.host, r));
  out({ ready: true });
  let received = 0;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    s.on("message", (msg, rinfo) => {
      out({ from: rinfo.family === "IPv6" ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`, payload: msg.toString() });
      if (++received >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  out({ done: true, received });
  s.close();
}

async function recvAny(local, count, timeoutMs) {
  const l = split(local);
  const s = dgram.createSocket({ type: l.type, recvBufferSize: 8 << 20 });
  await new Promise((r) => s.bind(l.port, l.host, r));
  out({ ready: true });
  let received = 0;
  let mismatched = 0;
  const sources = new Set();
  const perSource = {};
  const done = new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    s.on("message", (msg, rinfo) => {
      received++;
      const from = `${rinfo.address}:${rinfo.port}`;
      sources.add(from);
      (perSource[from] ??= []).push(Number(msg.toString().split(":")[1]));
      // The sender wrote its own port: a datagram relayed with any other source shows here.
      if (!msg.toString().startsWith(`${rinfo.port}:`)) mismatched++;
      if (received >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await done;
  await sleep(100); // anything beyond COUNT is a duplicate, and counted
  out({ done: true, received, sources: sources.size, mismatched, perSource });
  s.close();
}

switch (mode) {
  case "echo-sizes":
    await echoSizes(args[0], args[1], Number(args[2]));
    break;
  case "sequential-clients":
    await sequentialClients(args[0], Number(args[1]), Number(args[2]));
    break;
  case "many-sources":
    await manySources(args[0], args[1], Number(args[2]), Number(args[3]));
    break;
  case "recv-log":
    await recvLog(args[0], Number(args[1]), Number(args[2]));
    break;
  case "recv-any":
    await recvAny(args[0], Number(args[1]), Number(args[2]));
    break;
  case "send-pattern":
    await sendPattern(args[0], Number(args[1]));
    break;
  case "send-from":
    await sendFrom(args[0], args[1], Number(args[2]), Number(args[3]));
    break;
  case "echo-server":
    await echoServer(args[0], args[1], args[2] === "--cone");
    break;
  case "burst-echo":
    await burstEcho(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
    break;
  case "flows":
    await flows(args[0], Number(args[1]), args[2], Number(args[3]), Number(args[4] ?? 20), args[5] ? Number(args[5]) : undefined);
    break;
  case "cone-client":
    await coneClient(args[0], Number(args[1]));
    break;
  case "recv-count":
    await recvCount(args[0], args[1], Number(args[2]), Number(args[3]), Number(args[4]));
    break;
  case "recv-sizes":
    await recvSizes(args[0], args[1], args[2], Number(args[3]), Number(args[4]));
    break;
  case "echo-client":
    await echoClient(args[0], Number(args[1]), Number(args[2]), Number(args[3] ?? 50), (args[4] ?? "1").split(",").map(Number));
    break;
  case "send":
    await send(args[0], Number(args[1]), Number(args[2] ?? 0));
    break;
  case "recv-connected":
    await recvConnected(args[0], args[1], Number(args[2]), Number(args[3]));
    break;
  case "ping-pong":
    await pingPong(args[0], Number(args[1]));
    break;
  default:
    console.error(`udp_peer: unknown mode ${mode}`);
    process.exit(2);
}
