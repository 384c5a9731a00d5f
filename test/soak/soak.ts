/**
 * Soak: the relay for a long run (default 10 minutes) at half its measured capacity, in the
 * namespace testbed. Capacity is measured first, on this machine: a 5 s calibration at 20 000
 * datagrams/s gives the relay's CPU per relayed datagram, and one core's worth of it is the
 * capacity. Then the C load generator offers half of that (64 connected flows, every echo verified)
 * while RSS, fds and CPU are sampled every 30 s. Passes (exit 0) on zero loss, zero corruption, a
 * flat fd count, flat RSS (last third vs first third within 10 % + 4 MiB) and final counters that
 * account for every datagram.
 *
 * Run as root: `npm run soak -w test -- [--minutes 10] [--runtime bun|deno] [--transport raw|bindsrc|tun]`.
 * @module
 */
import process from "node:process";
import { ADDRESSES as A, compileC, cpuSeconds, createTestbed, memoryMiB, openFds, REPO_ROOT, requirePrivileges } from "@anysrc/testbed";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const MINUTES = Number(flag("--minutes", "10"));
const RUNTIME = flag("--runtime", "bun");
const TRANSPORT = flag("--transport", "raw");
const PORT = 15300;
const SAMPLE_S = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!requirePrivileges("soak")) process.exit(0);
const bin = compileC(["relay_load", "udp_echo"]);
const bed = createTestbed();
process.on("SIGINT", () => void bed.destroy().then(() => process.exit(130)));

type Sample = { t: number; rssMiB: number; fds: number; cpuPct: number };

try {
  bed.enableTproxy(PORT);
  await bed.spawn(bed.server, [bin.udp_echo!, A.server4, "7000"]).waitFor((l) => l.ready === true);
  const startRelay = async () => {
    const p = bed.spawn(bed.router, [
      `${REPO_ROOT}apps/relay/bin/anysrc`,
      "--runtime",
      RUNTIME,
      "tproxy",
      "--port",
      String(PORT),
      "--transport",
      TRANSPORT,
      "--mark",
      "2",
      "--tun",
      `assoak${process.pid % 1000}`,
      "--stats",
      "json",
      "--stats-interval",
      "0",
    ]);
    const pid = (await p.waitFor((l) => l.event === "listening", 30_000)).pid as number;
    await sleep(300);
    return { p, pid };
  };

  // Calibration, on a relay of its own (its sessions must not show up in the soak's fd count): CPU
  // per relayed datagram at 20 000 round trips/s, hence capacity on one core.
  const probe = await startRelay();
  const cpu0 = cpuSeconds(probe.pid);
  const cal = await bed.spawn(bed.client, [bin.relay_load!, A.server4, "7000", "64", "20000", "5", "256"]).waitFor((l) => typeof l.sent === "number", 60_000);
  const usPerDatagram = ((cpuSeconds(probe.pid) - cpu0) * 1e6) / (2 * (cal.received as number));
  await probe.p.stop();
  await probe.p.exited(10_000);
  const capacity = Math.floor(1e6 / (2 * usPerDatagram)); // round trips/s one core can relay
  const rate = Math.floor(capacity / 2);
  console.error(
    `soak: ${RUNTIME}/${TRANSPORT}: ${
      usPerDatagram.toFixed(1)
    } µs per relayed datagram → capacity ${capacity} round trips/s; offering ${rate}/s for ${MINUTES} min`,
  );

  const { p: relay, pid } = await startRelay();
  const seconds = MINUTES * 60;
  const load = bed.spawn(bed.client, [bin.relay_load!, A.server4, "7000", "64", String(rate), String(seconds), "256"]);
  const samples: Sample[] = [];
  const started = Date.now();
  let lastCpu = cpuSeconds(pid);
  let lastAt = started;
  while (Date.now() - started < seconds * 1000) {
    await sleep(Math.min(SAMPLE_S * 1000, seconds * 1000 - (Date.now() - started) + 10));
    const now = Date.now();
    const cpu = cpuSeconds(pid);
    samples.push({
      t: Math.round((now - started) / 1000),
      rssMiB: memoryMiB(pid).current,
      fds: openFds(pid),
      cpuPct: (100 * (cpu - lastCpu)) / ((now - lastAt) / 1000),
    });
    console.error(
      `soak: t=${samples.at(-1)!.t}s rss=${samples.at(-1)!.rssMiB.toFixed(1)} MiB fds=${samples.at(-1)!.fds} cpu=${samples.at(-1)!.cpuPct.toFixed(0)}%`,
    );
    lastCpu = cpu;
    lastAt = now;
  }
  const result = await load.waitFor((l) => typeof l.sent === "number", 60_000);
  await relay.stop();
  const final = await relay.waitFor((l) => l.event === "final", 30_000);

  const third = Math.max(1, Math.floor(samples.length / 3));
  const mean = (xs: Sample[]) => xs.reduce((a, x) => a + x.rssMiB, 0) / xs.length;
  const early = mean(samples.slice(0, third));
  const late = mean(samples.slice(-third));
  const fdsFlat = samples.every((x) => x.fds === samples[0]!.fds);
  const rssFlat = late <= early * 1.1 + 4;
  const unaccounted = final.unaccounted as { inbound: number; replies: number };
  const summary = {
    runtime: RUNTIME,
    transport: TRANSPORT,
    minutes: MINUTES,
    usPerDatagram: Number(usPerDatagram.toFixed(1)),
    capacity,
    rate,
    sent: result.sent,
    received: result.received,
    lost: result.lost,
    corrupt: result.corrupt,
    p50Us: result.p50_us,
    p99Us: result.p99_us,
    rssMiB: { first: samples[0]?.rssMiB, early: Number(early.toFixed(1)), late: Number(late.toFixed(1)), max: Math.max(...samples.map((x) => x.rssMiB)) },
    fds: { first: samples[0]?.fds, max: Math.max(...samples.map((x) => x.fds)) },
    cpuPct: Number((samples.reduce((a, x) => a + x.cpuPct, 0) / samples.length).toFixed(1)),
    relay: { received: final.received, forwarded: final.forwarded, replies: final.replies, dropped: final.dropped, unaccounted },
    pass: result.lost === 0 && result.corrupt === 0 && fdsFlat && rssFlat && unaccounted.inbound === 0 && unaccounted.replies === 0,
    samples,
  };
  console.log(JSON.stringify(summary));
  process.exitCode = summary.pass ? 0 : 1;
} finally {
  await bed.destroy();
}
