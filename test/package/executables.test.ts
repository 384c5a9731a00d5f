/**
 * `npm run compile`'s single-file executables, each copied alone into an empty directory: the relay
 * installs its own diversion (--rules) in a testbed that has none and relays IPv4 and IPv6 echoes
 * losslessly over every transport; `send`, `rules show` and `packet build` work from there too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADDRESSES as A, compileC, createTestbed, NONE, REPO_ROOT, requirePrivileges, type Testbed, UDP_PEER } from "@anysrc/testbed";
import { startTproxyWith } from "../relay/start_tproxy.ts";

const PORT = 15000;
const run = requirePrivileges("single-file executables suite");

describe.skipIf(!run)("dist/anysrc and dist/anysrc-deno, alone in an empty directory", () => {
  let bed: Testbed;
  let dir: string;
  let exes: Record<string, string[]>;
  const tun = `asexe${process.pid % 10000}`;

  beforeAll(async () => {
    execFileSync("bash", [`${REPO_ROOT}tools/compile.sh`], { cwd: REPO_ROOT, stdio: "pipe" });
    dir = mkdtempSync(join(tmpdir(), "anysrc-exe-"));
    const alone = join(dir, "bin");
    execFileSync("mkdir", ["-p", alone]);
    for (const f of ["anysrc", "anysrc-deno"]) copyFileSync(`${REPO_ROOT}dist/${f}`, join(alone, f));
    execFileSync("chmod", ["+x", join(alone, "anysrc"), join(alone, "anysrc-deno")]);
    expect(readdirSync(alone).sort()).toEqual(["anysrc", "anysrc-deno"]);
    // A PATH with no runtime on it, and (for the self-extracting form) a cache of the test's own.
    const env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", `HOME=${dir}`];
    exes = { "dist/anysrc": [...env, join(alone, "anysrc")], "dist/anysrc-deno": [...env, join(alone, "anysrc-deno")] };
    const echo = compileC(["udp_echo"]).udp_echo!;
    bed = createTestbed({ diversion: false });
    for (const host of [A.server4, A.server6]) await bed.spawn(bed.server, [echo, host, "7000"]).waitFor((l) => l.ready === true);
    bed.run(bed.router, ["ip", "tuntap", "add", "dev", tun, "mode", "tun"]);
    bed.run(bed.router, ["sysctl", "-qw", `net.ipv4.conf.${tun}.rp_filter=0`]);
  }, 240_000);
  afterAll(async () => {
    await bed?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const echoes = (server: string) => {
    const flows = bed.spawn(bed.client, ["node", UDP_PEER, "flows", `${server}:7000`, "2000", "64,1200", "16", "10"]);
    return flows.waitFor((l) => l.done === true, 60_000);
  };

  for (const exe of ["dist/anysrc", "dist/anysrc-deno"]) {
    for (const transport of ["raw", "bindsrc", "tun"] as const) {
      it(`${exe} tproxy --transport ${transport} --rules: 2000 IPv4 and 2000 IPv6 echoes, none lost, and no rule left behind`, async () => {
        const r = await startTproxyWith(bed, exes[exe]!, PORT, ["--transport", transport, "--rules", bed.routerClientLink]);
        try {
          for (const server of [A.server4, `[${A.server6}]`]) expect(await echoes(server)).toMatchObject({ received: 2000, corrupt: 0 });
        } finally {
          await r.stop();
        }
        expect(await r.waitFor((l) => l.event === "final")).toMatchObject({ received: 4000, forwarded: 4000, replies: 4000, dropped: NONE });
        expect(await r.waitFor((l) => l.event === "rules-down")).toMatchObject({ table: true });
        expect(bed.run(bed.router, ["nft", "list", "tables"]).split("\n")).not.toContain("table inet anysrc");
      });
    }

    it(`${exe}: send (tun), rules show and packet build`, async () => {
      const src = `${A.server4}:7000`;
      const dst = `${A.client4}:${PORT + 1}`;
      const receiver = bed.spawn(bed.client, ["node", UDP_PEER, "recv-count", dst, src, "300", "500", "10000"]);
      await receiver.waitFor((l) => l.ready === true);
      const sent = bed.run(bed.router, [
        ...exes[exe]!,
        "send",
        "--transport",
        "tun",
        "--tun",
        tun,
        "--src",
        src,
        "--dst",
        dst,
        "--count",
        "300",
        "--size",
        "500",
      ]);
      expect(JSON.parse(sent)).toMatchObject({ sent: 300, dropped: NONE });
      expect(await receiver.waitFor((l) => l.done === true)).toMatchObject({ received: 300, corrupt: 0 });
      const rules = bed.run(bed.router, [...exes[exe]!, "rules", "show", "--port", String(PORT), "--iface", bed.routerClientLink, "--format", "nft"]);
      bed.run(bed.router, ["nft", "-c", "-f", "-"], rules);
      const hex = bed.run(bed.router, [...exes[exe]!, "packet", "build", "--src", "198.18.0.1:5", "--dst", "198.18.0.2:6", "--payload-hex", "6869"]);
      expect(hex.trim()).toBe("4500001e000000004011eea7c6120001c612000200050006000a0b3e6869");
    });
  }
});
