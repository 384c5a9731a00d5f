import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, RUNTIMES } from "./run_cli.ts";

const dir = mkdtempSync(join(tmpdir(), "anysrc-cli-"));
const badConfig = join(dir, "bad.json");
writeFileSync(badConfig, JSON.stringify({ port: 15000, transport: "raw", colour: "blue" }));
const notJson = join(dir, "not.json");
writeFileSync(notJson, "port = 15000");
const badReceivers = join(dir, "bad-receivers.conf");
writeFileSync(badReceivers, "# fine\n198.18.0.0/15:\n");

describe.each(RUNTIMES)("relay commands refuse bad flags and config with exit 2 (%s)", (runtime) => {
  it.each([
    [["tproxy", "--transport", "raw"], "--port is required"],
    [["tproxy", "--port", "15000", "--transport", "nope"], '--transport must be raw, bindsrc, tun or packet, got "nope"'],
    [["tproxy", "--port", "15000"], "--transport is required"],
    [["tproxy", "--port", "99999", "--transport", "raw"], "--port must be 1-65535, got 99999"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--nat", "symmetric"], '--nat must be full or restricted, got "symmetric"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--fallback", "raw"], "--fallback raw is the same as --transport"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--fallback", "tun"], '--fallback must be raw or bindsrc, got "tun"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--idle-timeout", "soon"], '--idle-timeout must be a duration like 120s, got "soon"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--metrics", "0.0.0.0:9100"], "--metrics must be a loopback address"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--stats", "xml"], '--stats must be text or json, got "xml"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--log-format", "xml"], '--log-format must be text or json, got "xml"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--log-format", "json", "--stats", "text"], "--stats text and --log-format json disagree"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--listen", "300.1.1.1"], '--listen: Cannot parse address "300.1.1.1"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--bogus"], "Unknown option '--bogus'"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--socket-buffer", "lots"], '--socket-buffer must be a byte count like 8388608 or 8M, got "lots"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--socket-buffer", "2G"], "--socket-buffer must be 1024-1073741824 bytes, got 2G"],
    [
      ["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9", "--allow", "198.18.0.0/15", "--transport", "raw", "--socket-buffer", "1.5M"],
      "--socket-buffer must be a byte count",
    ],
    [["tproxy", "--port", "15000", "--transport", "raw", "--workers", "0"], '--workers must be auto or a whole number 1-1024, got "0"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--workers", "many"], '--workers must be auto or a whole number 1-1024, got "many"'],
    [
      ["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9", "--allow", "198.18.0.0/15", "--transport", "raw", "--workers", "1.5"],
      '--workers must be auto or a whole number 1-1024, got "1.5"',
    ],
    [["tproxy", "--config", badConfig], `--config ${badConfig}: unknown setting "colour"`],
    [["tproxy", "--config", notJson], `--config ${notJson}: not valid JSON`],
    [["tproxy", "--config", join(dir, "missing.json")], "cannot read"],
    [["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9", "--transport", "raw"], "refusing to start without --allow"],
    [["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9", "--allow", "198.18.0.0/40", "--transport", "raw"], 'Cannot parse network "198.18.0.0/40"'],
    [
      ["forward", "--listen", "0.0.0.0:2055", "--allow", "198.18.0.0/15", "--transport", "raw"],
      "at least one --to receiver (or a --receivers file) is required",
    ],
    [
      ["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9/0", "--allow", "198.18.0.0/15", "--transport", "raw"],
      '--to: Cannot parse receiver "198.18.1.2:9/0": the sampling rate N must be 1-1000000',
    ],
    [["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9,ttl=999", "--allow", "198.18.0.0/15", "--transport", "raw"], "ttl must be 1-255"],
    [
      ["forward", "--listen", "0.0.0.0:2055", "--receivers", badReceivers, "--allow", "198.18.0.0/15", "--transport", "raw"],
      `--receivers ${badReceivers}:2: no receivers for 198.18.0.0/15`,
    ],
    [["forward", "--listen", "0.0.0.0:2055", "--receivers", join(dir, "missing.conf"), "--allow", "198.18.0.0/15", "--transport", "raw"], "--receivers"],
    [["rules", "--port", "15000", "--iface", "eth1"], "expected one of up, down, show"],
    [["rules", "up", "--port", "15000"], "--iface is required"],
    [["rules", "up", "--port", "15000", "--iface", "eth1; reboot"], '--iface must be an interface name, got "eth1; reboot"'],
    [["rules", "show", "--port", "15000", "--iface", "eth1", "--families", "4,5"], '--families must be 4, 6 or 4,6, got "4,5"'],
    [["rules", "show", "--port", "15000", "--iface", "eth1", "--local", "--relay-mark", "1"], "--relay-mark must differ from --mark (1)"],
    [["rules", "show", "--port", "15000", "--iface", "eth1", "--format", "yaml"], '--format must be sh, nft, ip4 or ip6, got "yaml"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--rules", "eth1", "--mark", "1"], "--mark 1 is the diversion's mark"],
    [["bench", "--reps", "0"], '--reps: "0" is not a whole number from 1 to 50'],
    [["bench", "--saturate-cells", "64x64,64by1200"], '--saturate-cells: "64by1200" is not FLOWSxBYTES'],
    [["bench", "--warmup", "soon"], '--warmup: "soon" is not a number of seconds from 0 to 60'],
  ])("%j → %s", (args, message) => {
    const r = runCli(runtime, args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("Usage: anysrc");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
