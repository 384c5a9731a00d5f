import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, createTestbed, NONE, REPO_ROOT, requirePrivileges, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";

const PEER = ["node", UDP_PEER];
const ANYSRC = `${REPO_ROOT}apps/relay/bin/anysrc`;
const run = requirePrivileges("anysrc send suite");
let port = 43000;

describe.skipIf(!run)("anysrc send", () => {
  let bed: Testbed;
  const tun = `assend${process.pid % 10000}`;
  beforeAll(() => {
    bed = createTestbed();
    // A persistent device the command attaches to, configured the way the README tells users to.
    bed.run(bed.router, ["ip", "tuntap", "add", "dev", tun, "mode", "tun"]);
    bed.run(bed.router, ["sysctl", "-qw", `net.ipv4.conf.${tun}.rp_filter=0`]);
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  for (const transport of ["raw", "bindsrc", "tun", "packet"] as const) {
    for (const runtime of RUNTIMES) {
      for (const [family, src, client] of [["IPv4", `${A.server4}:7000`, A.client4], ["IPv6", `[${A.server6}]:7000`, `[${A.client6}]`]] as const) {
        it(`--transport ${transport} --runtime ${runtime} delivers 500 paced ${family} datagrams from the spoofed source`, async () => {
          const dst = `${client}:${++port}`;
          const receiver = bed.spawn(bed.client, [...PEER, "recv-count", dst, src, "500", "1200", "10000"]);
          await receiver.waitFor((l) => l.ready === true);
          const sender = bed.spawn(bed.router, [
            ANYSRC,
            "--runtime",
            runtime,
            "send",
            "--transport",
            transport,
            "--src",
            src,
            "--dst",
            dst,
            "--count",
            "500",
            "--size",
            "1200",
            "--rate",
            "20000",
            "--tun",
            tun,
          ]);
          const line = await sender.waitFor((l) => typeof l.pps === "number");
          expect(line).toMatchObject({ transport, runtime, sent: 500, errors: NONE, dropped: NONE });
          expect(Object.keys(line)).toEqual(expect.arrayContaining(["transport", "runtime", "sent", "errors", "seconds", "pps"]));
          expect(await sender.exited()).toBe(0);
          expect(await receiver.waitFor((l) => l.done === true)).toMatchObject({ received: 500, corrupt: 0 });
        });
      }
    }
  }

  it("--sources K spreads datagrams over K source ports and still batches", async () => {
    const sender = bed.spawn(bed.router, [
      ANYSRC,
      "send",
      "--transport",
      "bindsrc",
      "--src",
      `${A.server4}:7000`,
      "--dst",
      `${A.client4}:9`,
      "--count",
      "3200",
      "--size",
      "64",
      "--sources",
      "4",
    ]);
    const line = await sender.waitFor((l) => typeof l.pps === "number");
    expect(line).toMatchObject({ sent: 3200, sources: 4, batches: 400 }); // 4 sockets × one sendmmsg per batch of 32
  });

  it("a source owned by a local service is counted and the exit status says so", async () => {
    const holder = bed.spawn(bed.router, [...PEER, "recv-count", `${A.routerServerSide4}:5353`, `${A.client4}:1`, "1", "1", "4000"]);
    await holder.waitFor((l) => l.ready === true);
    const sender = bed.spawn(bed.router, [
      ANYSRC,
      "send",
      "--transport",
      "bindsrc",
      "--src",
      `${A.routerServerSide4}:5353`,
      "--dst",
      `${A.client4}:9`,
      "--count",
      "10",
      "--size",
      "8",
    ]);
    const code = await sender.exited();
    expect(code).toBe(1);
    expect(sender.stderr()).toContain("bind 198.19.2.1:5353: EADDRINUSE (address already in use)");
  });

  it("bad flags exit 2 with the usage", async () => {
    const p = bed.spawn(bed.router, [
      ANYSRC,
      "send",
      "--transport",
      "carrier-pigeon",
      "--src",
      "1.2.3.4:5",
      "--dst",
      "1.2.3.4:6",
      "--count",
      "1",
      "--size",
      "1",
    ]);
    expect(await p.exited()).toBe(2);
    expect(p.stderr()).toContain('--transport must be raw, bindsrc, tun or packet, got "carrier-pigeon"');
  });
});
