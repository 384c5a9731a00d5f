/**
 * Capabilities are checked at start, before any socket exists: each command, with one capability
 * dropped from its bounding set, names the one it misses and exits 1 (Bun, Deno and Node).
 * @module
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { requirePrivileges } from "@anysrc/testbed";
import { ANYSRC } from "./start_tproxy.ts";

const RUNTIMES = ["bun", "deno", "node"] as const;
const LAUNCHER = ANYSRC;

// Capabilities are checked at start, before any socket exists: drop them from the bounding set
// (setpriv, as root) and the command must name the one it misses, exit 1, and open nothing.
const canDrop = requirePrivileges("capability checks");
describe.skipIf(!canDrop).each(RUNTIMES)("relay commands name a missing capability at start (%s)", (runtime) => {
  const tproxy = ["tproxy", "--port", "15999", "--listen", "127.0.0.1"];
  it.each([
    [["-net_raw,-net_admin"], [...tproxy, "--transport", "raw"], "--transport raw (an IPPROTO_RAW socket) needs CAP_NET_RAW"],
    [
      ["-net_raw,-net_admin"],
      [...tproxy, "--transport", "bindsrc"],
      "--transport bindsrc (IP_TRANSPARENT sockets bound to foreign addresses) needs CAP_NET_ADMIN",
    ],
    [["-net_raw,-net_admin"], [...tproxy, "--transport", "tun"], "--transport tun (creating and configuring a TUN device) needs CAP_NET_ADMIN"],
    [["-net_admin"], [...tproxy, "--transport", "raw", "--mark", "2"], "--mark (SO_MARK) needs CAP_NET_ADMIN"],
    [
      ["-net_bind_service"],
      [...tproxy, "--transport", "bindsrc"],
      "--transport bindsrc replying from ports below 1024 (DNS, NTP, syslog: IP_TRANSPARENT does not lift the privileged-port rule; or add --fallback raw) needs CAP_NET_BIND_SERVICE",
    ],
    [
      ["-net_raw"],
      ["send", "--transport", "raw", "--src", "198.18.0.1:1", "--dst", "127.0.0.1:9", "--count", "1", "--size", "1"],
      "--transport raw (an IPPROTO_RAW socket) needs CAP_NET_RAW",
    ],
    [
      ["-net_raw,-net_admin"],
      ["forward", "--listen", "127.0.0.1:2099", "--to", "127.0.0.1:9", "--allow", "127.0.0.0/8", "--transport", "bindsrc"],
      "needs CAP_NET_ADMIN",
    ],
  ])("without %s: %j", (drop, args, message) => {
    const r = spawnSync("setpriv", ["--bounding-set", drop[0]!, LAUNCHER, "--runtime", runtime, ...args], { encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
