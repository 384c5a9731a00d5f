/**
 * The sections of `anysrc bench`, each a function of the run's context: every cell interleaves the
 * C program and every runtime within a repetition, so ratios compare like with like.
 * @module
 */
import type { TransportKind } from "@anysrc/relay/extension";
import { ADDRESSES as A, type Testbed } from "@anysrc/testbed";
import type { BenchPlan } from "./bench_plan.ts";
import type { BenchResults } from "./bench_report.ts";
import { ANYSRC, ceilingOnce, type Contender, forwardOnce, idleOnce, manySessionsOnce, relayOnce, saturateOnce, sendOnce } from "./bench_runs.ts";

/** What every section works with. */
export interface BenchContext {
  readonly bed: Testbed;
  /** The C programs by name (compileC). */
  readonly bin: Record<string, string>;
  readonly plan: BenchPlan;
  readonly results: BenchResults;
  readonly progress: { step(what: string): void };
  /** The TUN device the tun transport writes to. */
  readonly tun: string;
  /** The C program, then each runtime. */
  readonly who: Contender[];
  /** Perf can count syscalls (the saturate section's last repetition does). */
  readonly countSyscalls: boolean;
  /** v2ray's config when v2ray is installed (the relay section runs it as a peer). */
  readonly v2rayConfig: string | undefined;
  /** CPUs for the harness and the relay in the ndr section (undefined: one CPU, nothing pinned). */
  readonly split: { readonly harness: string; readonly relay: string } | undefined;
  /** The last port a run used; each run takes the next. */
  port: number;
}

/** 1. Send-only, interleaved C, bun, deno within each cell and repetition. */
export async function sendSection(ctx: BenchContext): Promise<void> {
  const { plan, results, progress, who } = ctx;
  // 1. Send-only, interleaved C, bun, deno within each cell and repetition.
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const kind of plan.transports) {
      for (const family of plan.families) {
        for (const size of [64, 1200]) {
          const row: Partial<Record<Contender, number>> = {};
          for (const w of who) {
            const r = await sendOnce(ctx, w, kind, { family, size, count: plan.sendCount, port: ++ctx.port });
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
}

/** 1b–1c. Many sources (1000, where raw and bindsrc part ways), then a few (16) against the C sender of the same variant with as many. */
export async function sourcesSection(ctx: BenchContext): Promise<void> {
  const { bed, plan, results, progress, who } = ctx;
  const sourceKinds = plan.transports.filter((t) => t !== "tun");
  // 1b. Many sources: where raw and bindsrc part ways.
  for (const w of plan.runtimes) {
    for (const kind of ["raw", "bindsrc"] as const) {
      if (!plan.transports.includes(kind)) continue;
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
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const kind of sourceKinds) {
      for (const family of plan.families) {
        let c = 0;
        for (const w of who) {
          const r = await sendOnce(ctx, w, kind, { family, size: 64, count: plan.sendCount, port: ++ctx.port, sources: 16 });
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
}

/** 2. The paced relay end to end, interleaved C relay and every runtime; v2ray beside them when installed. */
export async function relaySection(ctx: BenchContext): Promise<void> {
  const { plan, results, progress, who, v2rayConfig } = ctx;
  // 2. End to end, interleaved C relay, bun, deno.
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const kind of plan.transports) {
      for (const family of plan.families) {
        const row: Partial<Record<Contender, { cpu: number; rate: number }>> = {};
        for (const w of who) {
          const cellKind = w === "c" ? "raw" : kind;
          // The C relay is raw-only: run it once per family and repetition, reuse for every transport's ratio.
          let r = w === "c" ? results.relay.find((x) => x.who === "c" && x.family === family)?.runs[rep] : undefined;
          if (!r) r = await relayOnce(ctx, w, kind, { family, rate: plan.relayRate, seconds: plan.relaySeconds, warmupSeconds: plan.warmupSeconds });
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
  if (v2rayConfig) {
    for (let rep = 0; rep < plan.reps; rep++) {
      for (const family of plan.families) {
        const r = await relayOnce(ctx, "v2ray", "bindsrc", {
          family,
          rate: plan.relayRate,
          seconds: plan.relaySeconds,
          warmupSeconds: plan.warmupSeconds,
          v2rayConfig,
        });
        let cell = results.relay.find((x) => x.who === "v2ray" && x.family === family);
        if (!cell) results.relay.push(cell = { kind: "dokodemo-door", family, who: "v2ray", runs: [], cpuRatios: [], rateRatios: [] });
        cell.runs.push(r);
        const c = results.relay.find((x) => x.who === "c" && x.family === family)?.runs[rep];
        if (c) cell.cpuRatios.push(r.cpuUsPerDatagram / c.cpuUsPerDatagram);
        progress.step(`relay v2ray IPv${family}: ${r.cpuUsPerDatagram.toFixed(1)} µs/datagram, lost ${r.lost}`);
      }
    }
  }
}

/** 2c. The saturated relay: closed loop, unpaced; the C relay and every transport × runtime in each repetition of each cell. */
export async function saturateSection(ctx: BenchContext): Promise<void> {
  const { plan, results, progress, countSyscalls } = ctx;
  // 2c. Saturating end to end: closed loop, unpaced; the C relay and every transport × runtime in
  // each repetition of each cell. perf counts syscalls during the last repetition.
  for (let rep = 0; rep < plan.reps; rep++) {
    const counting = countSyscalls && rep === plan.reps - 1 ? plan.syscallSeconds : 0;
    for (const family of plan.families) {
      for (const { flows, size } of plan.saturateCells) {
        const cell = { family, flows, size };
        // The C relay does not fragment: above the MTU it has nothing to compare with (its raw sends fail with EMSGSIZE).
        const withC = size <= 1400;
        const runs: [Contender, TransportKind][] = [
          ...(withC ? [["c", "raw"] as [Contender, TransportKind]] : []),
          ...(withC && plan.basicBaseline ? [["c-basic", "raw"] as [Contender, TransportKind]] : []),
          ...plan.runtimes.flatMap((w) => plan.transports.map((t): [Contender, TransportKind] => [w, t])),
        ];
        let c: number | undefined;
        const run = { window: plan.saturateWindow, seconds: plan.saturateSeconds, warmupSeconds: plan.warmupSeconds };
        // The testbed's own ceiling in the same repetition: a contender near it may be measuring the harness.
        const ceiling = await ceilingOnce(ctx, cell, run);
        let ceilingRow = results.saturate.find((x) => x.who === "ceiling" && x.family === family && x.flows === flows && x.size === size);
        if (!ceilingRow) results.saturate.push(ceilingRow = { kind: "kernel", who: "ceiling", family, flows, size, runs: [], rateRatios: [], cpuRatios: [] });
        ceilingRow.runs.push(ceiling);
        progress.step(`saturate ceiling IPv${family} ${flows} flows ${size} B: ${Math.round(ceiling.datagramsPerSecond / 1000)}k/s, lost ${ceiling.lost}`);
        for (const [w, kind] of runs) {
          const r = await saturateOnce(ctx, w, kind, cell, { ...run, syscallSeconds: counting });
          let row = results.saturate.find((x) => x.kind === kind && x.who === w && x.family === family && x.flows === flows && x.size === size);
          if (!row) results.saturate.push(row = { kind, who: w, family, flows, size, runs: [], rateRatios: [], cpuRatios: [] });
          row.runs.push(r);
          const cpu = r.userUsPerDatagram + r.systemUsPerDatagram;
          if (w === "c") c = rep;
          const base = results.saturate.find((x) => x.who === "c" && x.family === family && x.flows === flows && x.size === size)?.runs[rep];
          if (base && c === rep) {
            // A C run that lost datagrams stalled its window: its rate is a stall rate, and the ratio void (NaN, printed as such).
            const voided = base.lost > 0;
            row.rateRatios.push(voided ? Number.NaN : r.datagramsPerSecond / base.datagramsPerSecond);
            row.cpuRatios.push(voided ? Number.NaN : cpu / (base.userUsPerDatagram + base.systemUsPerDatagram));
          }
          progress.step(
            `saturate ${w === "c" ? "C" : w === "c-basic" ? "C first version" : `${kind} ${w}`} IPv${family} ${flows} flows ${size} B: ${
              Math.round(r.datagramsPerSecond / 1000)
            }k/s, lost ${r.lost}`,
          );
        }
        const base = results.saturate.find((x) => x.who === "c" && x.family === family && x.flows === flows && x.size === size)?.runs[rep];
        if (base) ceilingRow.rateRatios.push(base.lost > 0 ? Number.NaN : ceiling.datagramsPerSecond / base.datagramsPerSecond);
      }
    }
  }
}

/** 2d. Offloads on and off beside the C program of the same cell. */
export async function offloadSection(ctx: BenchContext): Promise<void> {
  const { bed, bin, plan, results, progress } = ctx;
  // 2d. Offloads: every transport × runtime with --offload on and off beside the C program of the
  // same cell, interleaved per repetition. The bulk cell's echo server (port 7001) sends with GSO
  // and reads with GRO, and the testbed's veths run GRO, for the length of the section only.
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
          // packet has no offloads yet: --offload changes nothing there.
          const offloading = plan.transports.filter((t) => t !== "packet");
          const runs: [Contender, TransportKind, "on" | "off" | "none"][] = cell.test === "send"
            ? offloading.flatMap((t) => [["c", t, "none"] as [Contender, TransportKind, "none"], ...ours(t)])
            : [["c", "raw", "none"], ...offloading.flatMap(ours)];
          let base = 0;
          for (const [w, kind, offload] of runs) {
            const { rate, lost, coalescedIn, coalescedOut, kernelDrops } = await offloadRun(ctx, cell, family, w, kind, offload);
            if (w === "c") base = rate;
            const label = w === "c" ? "c" : w;
            let row = results.offload.find((x) => x.test === cell.test && x.who === label && x.kind === kind && x.offload === offload && x.family === family);
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

/** One offload run: the send-only cell through `sendOnce`, the relay cells through `saturateOnce`. */
async function offloadRun(
  ctx: BenchContext,
  cell: BenchPlan["offloadCells"][number],
  family: 4 | 6,
  w: Contender,
  kind: TransportKind,
  offload: "on" | "off" | "none",
): Promise<{ rate: number; lost: number; coalescedIn?: number | undefined; coalescedOut?: number | undefined; kernelDrops: Record<string, number> }> {
  const { plan } = ctx;
  if (cell.test === "send") {
    // The C sender of the same variant: sendmmsg of plain datagrams (for raw as well: it has no GSO).
    const r = await sendOnce(ctx, w, kind, { family, size: cell.size, count: plan.sendCount, port: ++ctx.port, offload: offload === "off" ? "off" : "on" });
    return { rate: r.pps, lost: r.count - r.delivered, kernelDrops: {} };
  }
  const r = await saturateOnce(ctx, w, kind, { family, flows: cell.flows, size: cell.size }, {
    window: plan.saturateWindow,
    seconds: plan.saturateSeconds,
    warmupSeconds: plan.warmupSeconds,
    serverPort: cell.test === "bulk" ? 7001 : 7000,
    offload: offload === "off" ? "off" : "on",
  });
  return { rate: r.datagramsPerSecond, lost: r.lost, coalescedIn: r.coalescedIn, coalescedOut: r.coalescedOut, kernelDrops: r.kernelDrops };
}

/** 2e. Forward beside the C forwarder of samplicator's design. */
export async function forwardSection(ctx: BenchContext): Promise<void> {
  const { plan, results, progress } = ctx;
  // 2e. Forward: the C forwarder of samplicator's design, then every transport × runtime, at a
  // saturating offered rate (copies delivered) and at a lossless one (CPU per datagram).
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const family of plan.families) {
      for (const rate of ["saturating", "lossless"] as const) {
        const runs: [Contender, TransportKind][] = [
          ["c", "raw"],
          ...plan.runtimes.flatMap((w) => plan.transports.map((t): [Contender, TransportKind] => [w, t])),
        ];
        let base: { copies: number; cpu: number } | undefined;
        for (const [w, kind] of runs) {
          const r = await forwardOnce(ctx, w, kind, {
            family,
            rate: plan.forwardRates[rate],
            seconds: plan.forwardSeconds,
            size: plan.forwardSize,
            receivers: plan.forwardReceivers,
            warmSeconds: plan.warmupSeconds,
          });
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
}

/** 3. Memory with many sessions, and idle cost. */
export async function sessionsSection(ctx: BenchContext): Promise<void> {
  const { plan, results, progress, who } = ctx;
  // 3. Memory with many sessions, and idle cost.
  for (const w of who) {
    const m = await manySessionsOnce(ctx, w, plan.manySessions);
    results.sessions.push({ who: w, sessions: plan.manySessions, ...m });
    progress.step(`${plan.manySessions} sessions ${w}: ${m.rssMiB.toFixed(1)} MiB, ${m.settledRssMiB.toFixed(1)} MiB 2 s later`);
    const idle = await idleOnce(ctx, w, plan.idleSeconds);
    results.idle.push({ who: w, cpuPercent: idle });
    progress.step(`idle ${w}: ${idle.toFixed(2)} % CPU`);
  }
}
