/**
 * `anysrc rules` and `anysrc tproxy --rules` in a testbed with no diversion of its own: the relay
 * only sees traffic because the command installed the nft table and the policy routing, and after
 * `down` (or the relay's exit) nothing of it is left.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, NONE, requirePrivileges, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";
import { ANYSRC, startTproxy } from "./start_tproxy.ts";

const PEER = ["node", UDP_PEER];
const PORT = 15000;
const run = requirePrivileges("rules suite");

describe.skipIf(!run)("anysrc rules: the diversion installed, used and removed (client → router → server, no diversion set up)", () => {
  let bed: Testbed;
  beforeAll(async () => {
    const bin = compileC(["udp_echo"]);
    bed = createTestbed({ diversion: false });
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [bin.udp_echo!, host, "7000"]).waitFor((l) => l.ready === true);
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  /** Routes of table 100 ("" when the kernel has no such table yet). */
  const routesOf = (family: string) => {
    try {
      return bed.run(bed.router, ["ip", family, "route", "show", "table", "100"]).trim();
    } catch (e) {
      if ((e as Error).message.includes("FIB table does not exist")) return "";
      throw e;
    }
  };
  /** What of ours is in the router: the nft table, fwmark rules, routes of table 100, per family. */
  const leftovers = () => ({
    table: bed.run(bed.router, ["nft", "list", "tables"]).split("\n").includes("table inet anysrc"),
    rules4: bed.run(bed.router, ["ip", "-4", "rule"]).split("\n").filter((l) => l.includes("fwmark")).length,
    rules6: bed.run(bed.router, ["ip", "-6", "rule"]).split("\n").filter((l) => l.includes("fwmark")).length,
    routes4: routesOf("-4"),
    routes6: routesOf("-6"),
  });
  const none = { table: false, rules4: 0, rules6: 0, routes4: "", routes6: "" };
  /** 2000 echoes over 16 flows, 64 and 1200 B, through whatever relays them. */
  const echoes = (server: string) => {
    const flows = bed.spawn(bed.client, [...PEER, "flows", `${server}:7000`, "2000", "64,1200", "16", "10"]);
    return flows.waitFor((l) => l.done === true, 60_000);
  };
  const relay = (runtime: string, args: string[]) => startTproxy(bed, runtime, PORT, args);

  it("show prints what nft -c and ip accept, and up twice leaves one copy", () => {
    const args = ["rules", "show", "--port", String(PORT), "--iface", bed.routerClientLink, "--local"];
    const nft = bed.run(bed.router, [ANYSRC, ...args, "--format", "nft"]);
    bed.run(bed.router, ["nft", "-c", "-f", "-"], nft);
    expect(nft).toContain(`iifname "${bed.routerClientLink}" meta nfproto ipv4 meta l4proto udp tproxy ip to :${PORT} meta mark set 1 accept`);
    expect(nft).toContain("meta mark 2 return");
    expect(bed.run(bed.router, [ANYSRC, ...args, "--format", "ip6"]).trim().split("\n")).toEqual([
      "rule add fwmark 1 lookup 100",
      "route replace local ::/0 dev lo table 100",
    ]);
    const up = ["rules", "up", "--port", String(PORT), "--iface", bed.routerClientLink];
    bed.run(bed.router, [ANYSRC, ...up]);
    bed.run(bed.router, [ANYSRC, ...up]);
    expect(leftovers()).toMatchObject({ table: true, rules4: 1, rules6: 1 });
    expect(JSON.parse(bed.run(bed.router, [ANYSRC, "rules", "down", "--port", String(PORT), "--iface", bed.routerClientLink]))).toEqual({
      event: "rules-down",
      table: true,
      rules: 2,
      routes: 2,
    });
    expect(leftovers()).toEqual(none);
  });

  for (const runtime of RUNTIMES) {
    it(`${runtime}: without rules nothing is relayed; after rules up the relay carries IPv4 and IPv6 losslessly; rules down leaves nothing`, async () => {
      expect(leftovers()).toEqual(none);
      const r = await relay(runtime, ["--transport", "raw"]);
      try {
        // No diversion yet: the router drops forwarded UDP, so without the relay nothing comes back.
        const lost = bed.spawn(bed.client, [...PEER, "flows", `${A.server4}:7000`, "50", "64", "1", "10"]);
        expect(await lost.waitFor((l) => l.done === true, 30_000)).toMatchObject({ received: 0 });
        bed.run(bed.router, [ANYSRC, "--runtime", runtime, "rules", "up", "--port", String(PORT), "--iface", bed.routerClientLink]);
        for (const server of [A.server4, `[${A.server6}]`]) expect(await echoes(server)).toMatchObject({ received: 2000, corrupt: 0 });
      } finally {
        await r.stop();
      }
      const stats = await r.waitFor((l) => l.event === "final");
      expect(stats).toMatchObject({ received: 4000, forwarded: 4000, replies: 4000, dropped: NONE });
      bed.run(bed.router, [ANYSRC, "--runtime", runtime, "rules", "down", "--port", String(PORT), "--iface", bed.routerClientLink]);
      expect(leftovers()).toEqual(none);
    });

    it(`${runtime}: tproxy --rules installs the diversion at start and removes it at exit`, async () => {
      const r = await relay(runtime, ["--transport", "raw", "--rules", bed.routerClientLink]);
      try {
        expect(leftovers()).toMatchObject({ table: true, rules4: 1, rules6: 1 });
        for (const server of [A.server4, `[${A.server6}]`]) expect(await echoes(server)).toMatchObject({ received: 2000, corrupt: 0 });
      } finally {
        await r.stop();
      }
      expect(await r.waitFor((l) => l.event === "rules-down")).toMatchObject({ table: true, rules: 2, routes: 2 });
      expect(leftovers()).toEqual(none);
    });
  }
});
