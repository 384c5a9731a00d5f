import { describe, expect, it } from "vitest";
import { createReassembler, decodePacket, parseHex } from "@anysrc/core";
import { runCli, RUNTIMES } from "./run_cli.ts";

const V4 = ["--src", "198.19.2.2:7000", "--dst", "198.18.1.2:40000"];
const V6 = ["--src", "[2001:db8:2::2]:7000", "--dst", "[2001:db8:1::2]:40000"];

/** Run under both runtimes, require byte-identical output, return the Bun result. */
function both(args: string[]) {
  const [bun, ...others] = RUNTIMES.map((rt) => runCli(rt, args));
  for (const other of others) expect(other).toEqual(bun);
  return bun!;
}

describe("anysrc packet (bun, deno and node give identical output)", () => {
  it("builds one valid IPv4/UDP packet", () => {
    const r = both(["packet", "build", ...V4, "--payload-hex", "68656c6c6f"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f\n");
    expect(decodePacket(parseHex(r.stdout.trim()))).toMatchObject({ ipv4: { checksumValid: true }, udp: { checksumValid: true, payload: "68656c6c6f" } });
  });

  it("builds one valid IPv6/UDP packet", () => {
    const r = both(["packet", "build", ...V6, "--payload-hex", "68656c6c6f"]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(decodePacket(parseHex(lines[0]!))).toMatchObject({ ipv6: { src: "2001:db8:2::2", hopLimit: 64 }, udp: { dstPort: 40000, checksumValid: true } });
  });

  for (const [family, addrs, count] of [["IPv4", V4, 3], ["IPv6", V6, 3]] as const) {
    it(`prints ${count} ${family} fragments for 3000 bytes at MTU 1500 that reassemble to the original`, () => {
      const whole = both(["packet", "build", ...addrs, "--payload-size", "3000", "--id", "4242"]);
      const frags = both(["packet", "build", ...addrs, "--payload-size", "3000", "--id", "4242", "--mtu", "1500"]);
      const lines = frags.stdout.trim().split("\n");
      expect(lines).toHaveLength(count);
      expect(lines.every((l) => l.length / 2 <= 1500)).toBe(true);
      const r = createReassembler();
      const out = lines.reverse().map((l) => r.push(parseHex(l), 0)).filter((x) => x !== undefined);
      expect(out).toHaveLength(1);
      expect(Buffer.from(out[0]!).toString("hex")).toBe(whole.stdout.trim());
    });
  }

  it("sets TTL, TOS and ID", () => {
    const r = both(["packet", "build", ...V4, "--payload-size", "4", "--ttl", "3", "--tos", "184", "--id", "0x1234"]);
    expect(decodePacket(parseHex(r.stdout.trim()))).toMatchObject({ ipv4: { ttl: 3, dscp: 46, ecn: 0, identification: 0x1234, checksumValid: true } });
  });

  it("decodes a packet to one JSON document", () => {
    const r = both(["packet", "decode", "45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ipv4: { src: "198.19.2.2" }, udp: { srcPort: 7000, checksumValid: true } });
  });

  it.each([
    [["packet", "decode", "abc"], "odd-length hex: 3 digits"],
    [["packet", "decode", "450000140000000040110000c6130202c6120102"], "truncated UDP header: 0 of 8 bytes"],
    [["packet", "decode", "4400001400000000401100000000000000000000"], "IPv4 IHL 4 is below the minimum 5"],
    [["packet", "decode", "4500002100000000"], "truncated IPv4 header: 8 of 20 bytes"],
    [["packet", "decode", "45000030000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f"], "IPv4 total length 48 exceeds the 33 bytes given"],
    [["packet", "decode", "60000000000863" + "00".repeat(41)], "unknown IPv6 next header 99 at offset 40"],
  ])("bad input %j exits 1 with one line: %s", (args, message) => {
    const r = both(args);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`${message}\n`);
  });

  it.each([
    [["packet", "build", ...V4, "--payload-hex", "00", "--bogus"], "Unknown option '--bogus'"],
    [["packet", "build", ...V4], "give exactly one of --payload-hex and --payload-size"],
    [["packet", "build", "--src", "198.19.2.2:7000", "--dst", "[2001:db8::1]:1", "--payload-size", "1"], "different IP families"],
    [["packet", "build", ...V4, "--payload-size", "1", "--ttl", "300"], "--ttl must be 0-255, got 300"],
    [["packet", "build", ...V6, "--payload-size", "1", "--mtu", "1000"], "--mtu must be 1280-65535, got 1000"],
    [["packet", "build", ...V4, "--payload-size", "65508"], "--payload-size must be 0-65507, got 65508"],
    [["packet", "decode"], "expected one HEX argument, got 0"],
    [["frobnicate"], 'unknown command "frobnicate"'],
  ])("bad flags %j exit 2 with the usage", (args, message) => {
    const r = both(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("Usage: anysrc");
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("has --help for the CLI and each subcommand", () => {
    for (const args of [["--help"], ["packet", "--help"], ["packet", "build", "--help"], ["packet", "decode", "--help"]]) {
      const r = both(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^Usage: anysrc/);
    }
  });

  it("rejects an unknown runtime with exit 2", () => {
    const r = runCli("python" as "bun", ["--help"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown runtime "python"');
  });
});
