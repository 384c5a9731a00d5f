/**
 * Send-only benchmark: `anysrc send` per transport on Bun and Deno against a C sender of the same
 * variant (c/send_baseline.c: raw sendmmsg, bindsrc sendmmsg, tun write), side by side, repetitions
 * interleaved, ratio to C within each repetition. IPv4 and IPv6, 64 and 1200 bytes. Spoofed source
 * 198.19.2.2:7000 (or [2001:db8:2::2]:7000) from the router namespace to the client namespace, where
 * an nft rule drops the datagrams on arrival.
 * Run as root: `bun test/bench/send_bench.ts [--reps N] [--count N] [--quick]`.
 * @module
 */
import process from "node:process";
import { ADDRESSES as A, compileC, createTestbed, median, REPO_ROOT, requirePrivileges, type Runtime, RUNTIMES, summary } from "@anysrc/testbed";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const quick = argv.includes("--quick");
const REPS = flag("--reps", quick ? 1 : 3);
const COUNT = flag("--count", quick ? 50_000 : 200_000);
const KINDS = ["raw", "bindsrc", "tun"] as const;
type Kind = (typeof KINDS)[number];
type Sender = "c" | Runtime;

if (!requirePrivileges("send benchmark")) process.exit(0);
const bin = compileC(["send_baseline"]);
const bed = createTestbed();
process.on("SIGINT", () => { void bed.destroy().then(() => process.exit(130)); });
const TUN = `asbt${process.pid % 100000}`;

try {
  bed.run(bed.client, ["nft", "-f", "-"], "table inet sink {\n chain pre {\n type filter hook prerouting priority -300; policy accept;\n udp dport 9 drop\n }\n}\n");
  bed.run(bed.router, ["ip", "tuntap", "add", "dev", TUN, "mode", "tun"]);
  bed.run(bed.router, ["ip", "link", "set", TUN, "up"]);
  bed.run(bed.router, ["sysctl", "-qw", `net.ipv4.conf.${TUN}.rp_filter=0`]);

  const results: { kind: Kind; family: 4 | 6; size: number; sender: Sender; pps: number[]; ratio: number[] }[] = [];
  const cell = (kind: Kind, family: 4 | 6, size: number, sender: Sender) => {
    let r = results.find((x) => x.kind === kind && x.family === family && x.size === size && x.sender === sender);
    if (!r) results.push((r = { kind, family, size, sender, pps: [], ratio: [] }));
    return r;
  };
  const total = REPS * KINDS.length * 2 * 2;
  let done = 0;
  for (let rep = 0; rep < REPS; rep++) {
    for (const kind of KINDS) {
      for (const family of [4, 6] as const) {
        for (const size of [64, 1200]) {
          const src = family === 4 ? A.server4 : A.server6;
          const dst = family === 4 ? A.client4 : A.client6;
          const row: Partial<Record<Sender, number>> = {};
          for (const sender of ["c", ...RUNTIMES] as Sender[]) {
            const args = sender === "c"
              ? [bin.send_baseline!, kind, src, "7000", dst, "9", String(COUNT), String(size), "32", TUN]
              : [`${REPO_ROOT}apps/relay/bin/anysrc`, "--runtime", sender, "send", "--transport", kind, "--src", family === 4 ? `${src}:7000` : `[${src}]:7000`,
                "--dst", family === 4 ? `${dst}:9` : `[${dst}]:9`, "--count", String(COUNT), "--size", String(size), "--batch", "32", "--tun", TUN];
            const p = bed.spawn(bed.router, args);
            const line = await p.waitFor((l) => typeof l.pps === "number", 120_000);
            await p.exited();
            if ((line.sent as number) !== COUNT) throw new Error(`${sender} ${kind} sent ${line.sent} of ${COUNT}`);
            row[sender] = line.pps as number;
            cell(kind, family, size, sender).pps.push(line.pps as number);
          }
          for (const sender of ["c", ...RUNTIMES] as Sender[]) cell(kind, family, size, sender).ratio.push(row[sender]! / row.c!);
          done++;
          process.stderr.write(`\r[${"#".repeat(Math.round((done / total) * 30)).padEnd(30)}] ${done}/${total} ${kind} IPv${family} ${size} B: C ${Math.round(row.c! / 1000)}k, bun ${Math.round(row.bun! / 1000)}k, deno ${Math.round(row.deno! / 1000)}k   `);
        }
      }
    }
  }
  process.stderr.write("\n");
  const k = (x: number) => `${(x / 1000).toFixed(0)}k`;
  console.log(`# Send-only: ${COUNT} datagrams per run, ${REPS} interleaved repetitions, batch 32; datagrams/s median (min–max)`);
  console.log("| transport | family | payload | C | bun | bun ÷ C | deno | deno ÷ C |");
  console.log("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const kind of KINDS) for (const family of [4, 6] as const) for (const size of [64, 1200]) {
    const c = cell(kind, family, size, "c"), b = cell(kind, family, size, "bun"), d = cell(kind, family, size, "deno");
    console.log(`| ${kind} | IPv${family} | ${size} B | ${summary(c.pps, k)} | ${summary(b.pps, k)} | ${median(b.ratio).toFixed(2)} | ${summary(d.pps, k)} | ${median(d.ratio).toFixed(2)} |`);
  }
} finally {
  await bed.destroy();
}
