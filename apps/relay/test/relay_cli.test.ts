import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RUNTIMES, runCli } from "./run_cli.ts";

const dir = mkdtempSync(join(tmpdir(), "anysrc-cli-"));
const badConfig = join(dir, "bad.json");
writeFileSync(badConfig, JSON.stringify({ port: 15000, transport: "raw", colour: "blue" }));
const notJson = join(dir, "not.json");
writeFileSync(notJson, "port = 15000");

describe.each(RUNTIMES)("relay commands refuse bad flags and config with exit 2 (%s)", (runtime) => {
  it.each([
    [["tproxy", "--transport", "raw"], "--port is required"],
    [["tproxy", "--port", "15000", "--transport", "nope"], '--transport must be raw, bindsrc or tun, got "nope"'],
    [["tproxy", "--port", "15000"], "--transport is required"],
    [["tproxy", "--port", "99999", "--transport", "raw"], "--port must be 1-65535, got 99999"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--nat", "symmetric"], '--nat must be full or restricted, got "symmetric"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--fallback", "raw"], "--fallback raw is the same as --transport"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--fallback", "tun"], '--fallback must be raw or bindsrc, got "tun"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--idle-timeout", "soon"], '--idle-timeout must be a duration like 120s, got "soon"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--metrics", "0.0.0.0:9100"], "--metrics must be a loopback address"],
    [["tproxy", "--port", "15000", "--transport", "raw", "--stats", "xml"], '--stats must be text or json, got "xml"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--listen", "300.1.1.1"], '--listen: Cannot parse address "300.1.1.1"'],
    [["tproxy", "--port", "15000", "--transport", "raw", "--bogus"], "Unknown option '--bogus'"],
    [["tproxy", "--config", badConfig], `--config ${badConfig}: unknown setting "colour"`],
    [["tproxy", "--config", notJson], `--config ${notJson}: not valid JSON`],
    [["tproxy", "--config", join(dir, "missing.json")], "cannot read"],
    [["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9", "--transport", "raw"], "refusing to start without --allow"],
    [["forward", "--listen", "0.0.0.0:2055", "--to", "198.18.1.2:9", "--allow", "198.18.0.0/40", "--transport", "raw"], 'Cannot parse network "198.18.0.0/40"'],
    [["forward", "--listen", "0.0.0.0:2055", "--allow", "198.18.0.0/15", "--transport", "raw"], "at least one --to receiver is required"],
  ])("%j → %s", (args, message) => {
    const r = runCli(runtime, args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("Usage: anysrc");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
