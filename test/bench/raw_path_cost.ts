/**
 * What the kernel charges per spoofed datagram on each way to emit one, side by side in one run:
 * `raw_path_cost.c` sends the same 256-byte IPv4 datagram (the server's address as source) from the
 * router to a C sink in the client namespace through IPPROTO_RAW (the raw transport's path and
 * samplicator's), a SOCK_RAW/IPPROTO_UDP socket with the source in IP_PKTINFO (the kernel builds
 * the IP header), and AF_PACKET to the client's MAC (no IP layer). Interleaved repetitions; the
 * sink is connected to the spoofed source, so a datagram that lost its source counts as lost.
 * Run as root: `npm run profile:raw-path -w test -- [--count 1000000] [--reps 3]`
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { ADDRESSES as A, compileC, createTestbed, requirePrivileges } from "@anysrc/testbed";

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: { count: { type: "string", default: "1000000" }, reps: { type: "string", default: "3" } },
});
if (!requirePrivileges("raw path cost")) process.exit(0);
const MODES = ["hdrincl", "pktinfo", "packet"] as const;
const bin = compileC(["raw_path_cost", "udp_sink"]);
const bed = createTestbed();
const costs: Record<string, number[]> = { hdrincl: [], pktinfo: [], packet: [] };
try {
  const mac = bed.run(bed.client, ["cat", "/sys/class/net/c0/address"]).trim();
  for (let rep = 0; rep < Number(values.reps); rep++) {
    for (const mode of MODES) {
      const sink = bed.spawn(bed.client, [bin.udp_sink!, A.client4, "9000", "30", A.server4, "5000"]);
      await sink.waitFor((l) => l.ready === true);
      const argv = [bin.raw_path_cost!, mode, A.server4, A.client4, "9000", values.count, bed.routerClientLink, mac];
      const r = JSON.parse(bed.run(bed.router, argv)) as { sent: number; cpu_us_per_datagram: number };
      const got = await sink.waitFor((l) => typeof l.received === "number", 30_000);
      if (got.received !== r.sent) throw new Error(`${mode}: sent ${r.sent}, the sink got ${got.received} from ${A.server4}`);
      costs[mode]!.push(r.cpu_us_per_datagram);
    }
  }
} finally {
  await bed.destroy();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = median(costs.hdrincl!);
console.log(`| path | sender CPU µs per datagram (median of ${values.reps}) | ÷ IPPROTO_RAW | runs |`);
console.log("|---|---:|---:|---|");
for (const mode of MODES) {
  const xs = costs[mode]!;
  console.log(`| ${mode} | ${median(xs).toFixed(2)} | ${(median(xs) / base).toFixed(2)} | ${xs.map((x) => x.toFixed(2)).join(", ")} |`);
}
