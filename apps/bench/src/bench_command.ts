/**
 * `anysrc bench`: raw vs bindsrc vs tun, Bun vs Deno, against C baselines, side by side in one run,
 * inside a namespace testbed it builds and removes. Writes results.json, report.md and chart.svg.
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import type { TransportKind } from "@anysrc/relay/extension";
import { ADDRESSES as A, canCountSyscalls, compileC, createTestbed, missingPrivileges, type Runtime, RUNTIMES } from "@anysrc/testbed";
import { BENCH_SECTIONS, type BenchPlan, makePlan } from "./bench_plan.ts";
import { type BenchResults, chartSvg, findings, resultTables } from "./bench_report.ts";
import {
  ANYSRC,
  type Contender,
  forwardOnce,
  idleOnce,
  manySessionsOnce,
  relayOnce,
  saturateOnce,
  sendOnce,
  TPROXY_PORT,
  writeV2rayConfig,
} from "./bench_runs.ts";
import { exitProcess, onSignal, processId, TRANSPORT_KINDS, UsageError, writeStderr } from "@anysrc/relay/extension";

export const BENCH_USAGE = `Usage: anysrc bench [--quick] [--transports raw,bindsrc,tun] [--runtimes bun,deno,node] [--families 4,6]
                    [--sections send,sources,relay,saturate,offload,forward,sessions] [--out DIR]

  --quick        one repetition, shorter runs
  --transports   which transports (default all three)
  --runtimes     which runtimes run anysrc (default bun,deno,node)
  --families     IP families (default 4,6)
  --sections     which parts (default all): send-only, many sources, paced relay, saturating relay
                 (closed loop, 256 in flight, 1 and 64 flows, 64 and 1200 B), offloads (--offload on
                 and off: a bulk flow to a GSO echo server with GRO on the links, 64 small flows,
                 send-only 1200 B), forward (3 receivers, 256 B, beside a C forwarder of
                 samplicator's design: capacity at a saturating rate, CPU at a lossless one), sessions + idle
  --out DIR      where results.json, report.md and chart.svg go (default bench-out)

Needs root (network namespaces, TPROXY, TUN), nft and cc; installs nftables/gcc with apt-get when
missing. Builds its own namespace testbed and removes it at the end, on Ctrl-C or on failure.`;

function listFlag<T extends string>(cmd: string, flag: string, text: string | undefined, all: readonly T[]): T[] {
  if (text === undefined) return [...all];
  const items = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!(all as readonly string[]).includes(i)) throw new UsageError(cmd, `${flag}: "${i}" is not one of ${all.join(", ")}`);
  if (items.length === 0) throw new UsageError(cmd, `${flag} is empty`);
  return items as T[];
}

/** Install a Debian package when its command is missing; say so, or say exactly what to run. */
function ensureTool(command: string, pkg: string): void {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return;
  } catch {
    // Missing: install below.
  }
  console.error(`anysrc bench: \`${command}\` is missing; installing ${pkg} with apt-get`);
  try {
    execFileSync("sh", ["-c", `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`], { stdio: "inherit" });
  } catch {
    throw new Error(`cannot install ${pkg}; run: apt-get install -y ${pkg}`);
  }
}

class Progress {
  private done = 0;
  private readonly total: number;
  constructor(total: number) {
    this.total = total;
  }
  step(what: string): void {
    this.done++;
    const width = 28;
    const filled = Math.round((this.done / this.total) * width);
    writeStderr(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${this.done}/${this.total} ${what}`.padEnd(110).slice(0, 130));
  }
  end(): void {
    writeStderr("\n");
  }
}

/** Run `anysrc bench`; returns the exit status. */
export async function benchCommand(args: string[]): Promise<number> {
  const cmd = "bench";
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      quick: { type: "boolean" },
      transports: { type: "string" },
      runtimes: { type: "string" },
      families: { type: "string" },
      sections: { type: "string" },
      out: { type: "string" },
    },
  });
  const plan: BenchPlan = makePlan({
    quick: values.quick ?? false,
    transports: listFlag<TransportKind>(cmd, "--transports", values.transports, TRANSPORT_KINDS),
    runtimes: listFlag<Runtime>(cmd, "--runtimes", values.runtimes, RUNTIMES),
    families: listFlag(cmd, "--families", values.families, ["4", "6"] as const).map((f) => (f === "4" ? 4 : 6)),
    out: values.out ?? "bench-out",
    sections: listFlag(cmd, "--sections", values.sections, BENCH_SECTIONS),
  });
  const wants = (section: (typeof BENCH_SECTIONS)[number]) => plan.sections.includes(section);
  ensureTool("nft", "nftables");
  ensureTool("cc", "gcc libc6-dev");
  const missing = missingPrivileges();
  if (missing) throw new Error(`anysrc bench needs root and the testbed tools: ${missing}`);

  const bin = compileC(["send_baseline", "udp_sink", "udp_echo", "relay_load", "relay_saturate", "tproxy_relay", "udp_flood", "forward_baseline"]);
  const countSyscalls = wants("saturate") && plan.syscallSeconds > 0 && (await canCountSyscalls());
  const v2ray = (() => {
    try {
      execFileSync("sh", ["-c", "command -v v2ray"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();
  const bed = createTestbed();
  const interrupted = () => {
    writeStderr("\nanysrc bench: interrupted; removing the testbed\n");
    void bed.destroy().then(() => exitProcess(130));
  };
  onSignal("SIGINT", interrupted);
  onSignal("SIGTERM", interrupted);
  const tun = `asbench${processId() % 10000}`;
  const results: BenchResults = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: execFileSync("uname", ["-r"], { encoding: "utf8" }).trim(),
      date: new Date().toISOString(),
    },
    plan,
    send: [],
    manySources: [],
    fewSources: [],
    relay: [],
    saturate: [],
    offload: [],
    forward: [],
    sessions: [],
    idle: [],
    peers: {
      v2ray: v2ray
        ? "present: dokodemo-door inbounds in TPROXY mode, freedom outbound with the same mark (config in results: v2ray.json)"
        : "absent on this machine (apt-get install v2ray to include it)",
    },
  };
  const who: Contender[] = ["c", ...plan.runtimes];
  const sendCells = plan.transports.length * plan.families.length * 2;
  const relayCells = plan.transports.length * plan.families.length;
  const sourceKinds = plan.transports.filter((t) => t !== "tun");
  const manySourceRuns = plan.runtimes.length * sourceKinds.length + plan.reps * sourceKinds.length * plan.families.length * who.length;
  const saturateCells = plan.families.length * plan.saturateCells.length;
  const total = (wants("send") ? plan.reps * sendCells * who.length : 0) + (wants("relay") ? plan.reps * relayCells * who.length : 0) +
    (wants("relay") && v2ray ? plan.reps * plan.families.length : 0) + (wants("sources") ? manySourceRuns : 0) + (wants("sessions") ? 2 * who.length : 0) +
    (wants("saturate") ? plan.reps * saturateCells * (1 + plan.runtimes.length * plan.transports.length) : 0) +
    (wants("offload")
      ? plan.reps * plan.families.length * (plan.offloadCells.length * (1 + 2 * plan.runtimes.length * plan.transports.length) + plan.transports.length - 1)
      : 0) +
    (wants("forward") ? plan.reps * plan.families.length * 2 * (1 + plan.runtimes.length * plan.transports.length) : 0);
  mkdirSync(plan.out, { recursive: true });
  const v2rayConfig = v2ray ? writeV2rayConfig(`${plan.out}/v2ray.json`) : undefined;
  const progress = new Progress(total);
  let port = 20000;
  try {
    bed.run(bed.router, ["ip", "tuntap", "add", "dev", tun, "mode", "tun"]);
    bed.run(bed.router, ["ip", "link", "set", tun, "up"]);
    bed.run(bed.router, ["sysctl", "-qw", `net.ipv4.conf.${tun}.rp_filter=0`]);
    bed.enableTproxy(TPROXY_PORT);
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.udp_echo!, host, "7000"]).waitFor((l) => l.ready === true);

    // 1. Send-only, interleaved C, bun, deno within each cell and repetition.
    for (let rep = 0; rep < plan.reps && wants("send"); rep++) {
      for (const kind of plan.transports) {
        for (const family of plan.families) {
          for (const size of [64, 1200]) {
            const row: Partial<Record<Contender, number>> = {};
            for (const w of who) {
              const r = await sendOnce(bed, bin, w, kind, family, size, plan.sendCount, tun, ++port);
              row[w] = r.pps;
              let cell = results.send.find((s) => s.kind === kind && s.family === family && s.size === size && s.who === w);
              if (!cell) results.send.push(cell = { kind, family, size, who: w, runs: [], ratios: [] });
              cell.runs.push(r);
              progress.step(`send-only ${kind} IPv${family} ${size} B ${w}: ${Math.round(r.pps / 1000)}k/s`);
            }
            for (const w of who) {
              results.send.find((s) => s.kind === kind && s.family === family && s.size === size && s.who === w)!.ratios.push(row[w]! / row.c!);
            }
          }
        }
      }
    }
    // 1b. Many sources: where raw and bindsrc part ways.
    for (const w of plan.runtimes) {
      for (const kind of ["raw", "bindsrc"] as const) {
        if (!plan.transports.includes(kind) || !wants("sources")) continue;
        const p = bed.spawn(bed.router, [
          "sh",
          "-c",
          'ulimit -n $(( $(ulimit -Hn) < 8192 ? $(ulimit -Hn) : 8192 )) && exec "$@"',
          "sh",
          ANYSRC,
          "--runtime",
          w,
          "send",
          "--transport",
          kind,
          "--src",
          `${A.server4}:20000`,
          "--dst",
          `${A.client4}:9`,
          "--count",
          String(plan.sendCount),
          "--size",
          "64",
          "--sources",
          "1000",
        ]);
        const line = await p.waitFor((l) => typeof l.pps === "number", 120_000);
        results.manySources.push({ kind, who: w, pps: line.pps as number, sources: 1000 });
        progress.step(`1000 sources ${kind} ${w}: ${Math.round((line.pps as number) / 1000)}k/s`);
      }
    }
    // 1c. A few sources (16), against the C sender of the same variant with as many, interleaved.
    for (let rep = 0; rep < plan.reps && wants("sources"); rep++) {
      for (const kind of sourceKinds) {
        for (const family of plan.families) {
          let c = 0;
          for (const w of who) {
            const r = await sendOnce(bed, bin, w, kind, family, 64, plan.sendCount, tun, ++port, 16);
            if (w === "c") c = r.pps;
            let cell = results.fewSources.find((x) => x.kind === kind && x.family === family && x.who === w);
            if (!cell) results.fewSources.push(cell = { kind, family, who: w, sources: 16, runs: [], ratios: [] });
            cell.runs.push(r);
            cell.ratios.push(r.pps / c);
            progress.step(`16 sources ${kind} IPv${family} ${w}: ${Math.round(r.pps / 1000)}k/s`);
          }
        }
      }
    }
    // 2. End to end, interleaved C relay, bun, deno.
    for (let rep = 0; rep < plan.reps && wants("relay"); rep++) {
      for (const kind of plan.transports) {
        for (const family of plan.families) {
          const row: Partial<Record<Contender, { cpu: number; rate: number }>> = {};
          for (const w of who) {
            const cellKind = w === "c" ? "raw" : kind;
            // The C relay is raw-only: run it once per family and repetition, reuse for every transport's ratio.
            let r = w === "c" ? results.relay.find((x) => x.who === "c" && x.family === family)?.runs[rep] : undefined;
            if (!r) r = await relayOnce(bed, bin, w, kind, family, plan.relayRate, plan.relaySeconds, tun);
            row[w] = { cpu: r.cpuUsPerDatagram, rate: r.datagramsPerSecond };
            let cell = results.relay.find((x) => x.kind === cellKind && x.family === family && x.who === w);
            if (!cell) results.relay.push(cell = { kind: cellKind, family, who: w, runs: [], cpuRatios: [], rateRatios: [] });
            if (cell.runs.length <= rep) cell.runs.push(r);
            progress.step(`relay ${w === "c" ? "C" : `${kind} ${w}`} IPv${family}: ${r.cpuUsPerDatagram.toFixed(1)} µs/datagram, lost ${r.lost}`);
          }
          for (const w of plan.runtimes) {
            const cell = results.relay.find((x) => x.kind === kind && x.family === family && x.who === w)!;
            cell.cpuRatios.push(row[w]!.cpu / row.c!.cpu);
            cell.rateRatios.push(row[w]!.rate / row.c!.rate);
          }
        }
      }
    }
    for (const c of results.relay.filter((x) => x.who === "c")) if (c.cpuRatios.length === 0) c.cpuRatios.push(1);
    // 2b. The peer, when installed: v2ray's dokodemo-door doing the same job, once per family and repetition.
    if (v2rayConfig && wants("relay")) {
      for (let rep = 0; rep < plan.reps; rep++) {
        for (const family of plan.families) {
          const r = await relayOnce(bed, bin, "v2ray", "bindsrc", family, plan.relayRate, plan.relaySeconds, tun, v2rayConfig);
          let cell = results.relay.find((x) => x.who === "v2ray" && x.family === family);
          if (!cell) results.relay.push(cell = { kind: "dokodemo-door", family, who: "v2ray", runs: [], cpuRatios: [], rateRatios: [] });
          cell.runs.push(r);
          const c = results.relay.find((x) => x.who === "c" && x.family === family)?.runs[rep];
          if (c) cell.cpuRatios.push(r.cpuUsPerDatagram / c.cpuUsPerDatagram);
          progress.step(`relay v2ray IPv${family}: ${r.cpuUsPerDatagram.toFixed(1)} µs/datagram, lost ${r.lost}`);
        }
      }
    }
    // 2c. Saturating end to end: closed loop, unpaced; the C relay and every transport × runtime in
    // each repetition of each cell. perf counts syscalls during the last repetition.
    for (let rep = 0; rep < plan.reps && wants("saturate"); rep++) {
      const counting = countSyscalls && rep === plan.reps - 1 ? plan.syscallSeconds : 0;
      for (const family of plan.families) {
        for (const { flows, size } of plan.saturateCells) {
          const cell = { family, flows, size };
          // The C relay does not fragment: above the MTU it has nothing to compare with (its raw sends fail with EMSGSIZE).
          const withC = size <= 1400;
          const runs: [Contender, TransportKind][] = [
            ...(withC ? [["c", "raw"] as [Contender, TransportKind]] : []),
            ...plan.runtimes.flatMap((w) => plan.transports.map((t): [Contender, TransportKind] => [w, t])),
          ];
          let c: number | undefined;
          for (const [w, kind] of runs) {
            const r = await saturateOnce(bed, bin, w, kind, cell, plan.saturateWindow, plan.saturateSeconds, tun, counting);
            let row = results.saturate.find((x) => x.kind === kind && x.who === w && x.family === family && x.flows === flows && x.size === size);
            if (!row) results.saturate.push(row = { kind, who: w, family, flows, size, runs: [], rateRatios: [], cpuRatios: [] });
            row.runs.push(r);
            const cpu = r.userUsPerDatagram + r.systemUsPerDatagram;
            if (w === "c") c = rep;
            const base = results.saturate.find((x) => x.who === "c" && x.family === family && x.flows === flows && x.size === size)?.runs[rep];
            if (base && c === rep) {
              row.rateRatios.push(r.datagramsPerSecond / base.datagramsPerSecond);
              row.cpuRatios.push(cpu / (base.userUsPerDatagram + base.systemUsPerDatagram));
            }
            progress.step(
              `saturate ${w === "c" ? "C" : `${kind} ${w}`} IPv${family} ${flows} flows ${size} B: ${
                Math.round(r.datagramsPerSecond / 1000)
              }k/s, lost ${r.lost}`,
            );
          }
        }
      }
    }
    // 2d. Offloads: every transport × runtime with --offload on and off beside the C program of the
    // same cell, interleaved per repetition. The bulk cell's echo server (port 7001) sends with GSO
    // and reads with GRO, and the testbed's veths run GRO, for the length of the section only.
    if (wants("offload")) {
      for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.udp_echo!, host, "7001", "--gso"]).waitFor((l) => l.ready === true);
      bed.setGro(true);
      try {
        for (let rep = 0; rep < plan.reps; rep++) {
          for (const family of plan.families) {
            for (const cell of plan.offloadCells) {
              // Relay cells: the C relay once, then every transport × runtime. Send-only: per transport,
              // the C sender of the same variant (sendmmsg; tun: one write per packet) before anysrc's.
              const ours = (t: TransportKind) =>
                plan.runtimes.flatMap((w) => (["on", "off"] as const).map((o): [Contender, TransportKind, "on" | "off"] => [w, t, o]));
              const runs: [Contender, TransportKind, "on" | "off" | "none"][] = cell.test === "send"
                ? plan.transports.flatMap((t) => [["c", t, "none"] as [Contender, TransportKind, "none"], ...ours(t)])
                : [["c", "raw", "none"], ...plan.transports.flatMap(ours)];
              let base = 0;
              for (const [w, kind, offload] of runs) {
                let rate: number;
                let lost = 0;
                let coalescedIn: number | undefined;
                let coalescedOut: number | undefined;
                let kernelDrops: Record<string, number> = {};
                if (cell.test === "send") {
                  // The C sender of the same variant: sendmmsg of plain datagrams (for raw as well: it has no GSO).
                  const r = await sendOnce(bed, bin, w, kind, family, cell.size, plan.sendCount, tun, ++port, 1, offload === "off" ? "off" : "on");
                  rate = r.pps;
                  lost = r.count - r.delivered;
                } else {
                  const r = await saturateOnce(
                    bed,
                    bin,
                    w,
                    kind,
                    { family, flows: cell.flows, size: cell.size },
                    plan.saturateWindow,
                    plan.saturateSeconds,
                    tun,
                    0,
                    {
                      serverPort: cell.test === "bulk" ? 7001 : 7000,
                      offload: offload === "off" ? "off" : "on",
                    },
                  );
                  rate = r.datagramsPerSecond;
                  lost = r.lost;
                  coalescedIn = r.coalescedIn;
                  coalescedOut = r.coalescedOut;
                  kernelDrops = r.kernelDrops;
                }
                if (w === "c") base = rate;
                const label = w === "c" ? "c" : w;
                let row = results.offload.find((x) =>
                  x.test === cell.test && x.who === label && x.kind === kind && x.offload === offload && x.family === family
                );
                if (!row) {
                  results.offload.push(
                    row = {
                      test: cell.test,
                      kind,
                      who: label,
                      offload,
                      family,
                      flows: cell.flows,
                      size: cell.size,
                      rates: [],
                      ratios: [],
                      lost: 0,
                      coalescedIn: [],
                      coalescedOut: [],
                      kernelDrops: {},
                    },
                  );
                }
                row.rates.push(rate);
                row.ratios.push(base > 0 ? rate / base : Number.NaN);
                row.lost += lost;
                for (const [name, v] of Object.entries(kernelDrops)) row.kernelDrops[name] = (row.kernelDrops[name] ?? 0) + v;
                if (coalescedIn !== undefined) row.coalescedIn.push(coalescedIn);
                if (coalescedOut !== undefined) row.coalescedOut.push(coalescedOut);
                progress.step(`offload ${cell.test} ${w === "c" ? "C" : `${kind} ${w} ${offload}`} IPv${family}: ${Math.round(rate / 1000)}k/s, lost ${lost}`);
              }
            }
          }
        }
      } finally {
        bed.setGro(false);
      }
    }
    // 2e. Forward: the C forwarder of samplicator's design, then every transport × runtime, at a
    // saturating offered rate (copies delivered) and at a lossless one (CPU per datagram).
    for (let rep = 0; rep < plan.reps && wants("forward"); rep++) {
      for (const family of plan.families) {
        for (const rate of ["saturating", "lossless"] as const) {
          const runs: [Contender, TransportKind][] = [
            ["c", "raw"],
            ...plan.runtimes.flatMap((w) => plan.transports.map((t): [Contender, TransportKind] => [w, t])),
          ];
          let base: { copies: number; cpu: number } | undefined;
          for (const [w, kind] of runs) {
            const r = await forwardOnce(bed, bin, w, kind, family, plan.forwardRates[rate], plan.forwardSeconds, plan.forwardSize, plan.forwardReceivers, tun);
            if (w === "c") base = { copies: r.copiesPerSecond, cpu: r.cpuUsPerDatagram };
            let row = results.forward.find((x) => x.kind === kind && x.who === w && x.family === family && x.rate === rate);
            if (!row) results.forward.push(row = { kind, who: w, family, rate, runs: [], copyRatios: [], cpuRatios: [] });
            row.runs.push(r);
            if (base) {
              row.copyRatios.push(r.copiesPerSecond / base.copies);
              row.cpuRatios.push(r.cpuUsPerDatagram / base.cpu);
            }
            progress.step(
              `forward ${rate} ${w === "c" ? "C" : `${kind} ${w}`} IPv${family}: ${Math.round(r.copiesPerSecond / 1000)}k copies/s, ${
                r.cpuUsPerDatagram.toFixed(1)
              } µs/datagram, lost ${r.lost}`,
            );
          }
        }
      }
    }
    // 3. Memory with many sessions, and idle cost.
    for (const w of who) {
      if (!wants("sessions")) break;
      const m = await manySessionsOnce(bed, bin, w, plan.manySessions, tun);
      results.sessions.push({ who: w, sessions: plan.manySessions, ...m });
      progress.step(`${plan.manySessions} sessions ${w}: ${m.rssMiB.toFixed(1)} MiB`);
      const idle = await idleOnce(bed, bin, w, plan.idleSeconds, tun);
      results.idle.push({ who: w, cpuPercent: idle });
      progress.step(`idle ${w}: ${idle.toFixed(2)} % CPU`);
    }
    progress.end();
  } finally {
    await bed.destroy();
  }

  const tables = resultTables(results);
  const command = `anysrc bench${plan.quick ? " --quick" : ""}`;
  const report = `# anysrc bench report

Command: \`${command}\` (as root, from the repository: \`npm run bench${plan.quick ? " -- --quick" : ""}\`)
Machine: ${results.machine.cpus} × ${results.machine.cpuModel}, ${results.machine.memoryGiB} GiB, Linux ${results.machine.kernel}; ${results.machine.date}.
Repetitions: ${plan.reps}, interleaved (C, ${plan.runtimes.join(", ")} within each cell); ratios are taken within a repetition, then the median.
Load generators: paced, \`relay_load.c\` (64 connected sockets in the client namespace, every echo verified byte for byte, RTT from a CLOCK_MONOTONIC stamp) offers ${plan.relayRate} datagrams/s, well below its own ceiling; saturating, \`relay_saturate.c\` keeps ${plan.saturateWindow} datagrams in flight over 1, 8 or 64 connected sockets, unpaced (each echo lets the next one go), every echo verified. Echo server: \`udp_echo.c\` (recvmmsg/sendmmsg).
Baselines: \`send_baseline.c\` (the same variant per transport) and \`tproxy_relay.c\` (single-threaded C relay of the same design: TPROXY listeners, one upstream socket per client, replies through IPPROTO_RAW with headers built per datagram).
Peers: v2ray dokodemo-door — ${results.peers.v2ray}.
CPU per relayed datagram counts every thread of the relay process (/proc), each direction (client→server, server→client) as one datagram.

![ratio to C](chart.svg)

${tables}

## What the numbers say

${findings(results)}
`;
  writeFileSync(`${plan.out}/results.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${plan.out}/report.md`, report);
  writeFileSync(`${plan.out}/chart.svg`, chartSvg(results));
  console.log(tables);
  console.log(`\nwrote ${plan.out}/results.json, ${plan.out}/report.md, ${plan.out}/chart.svg`);
  return 0;
}
