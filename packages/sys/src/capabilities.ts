/**
 * The process's effective Linux capabilities, read once from /proc/self/status, so a command can
 * name a missing one at start instead of failing on its first packet.
 * @module
 */
import type { CapabilityName } from "@anysrc/core";
import { cString, libc } from "./libc.ts";
import { O_CLOEXEC } from "./linux_constants.ts";

/** Bit numbers from linux/capability.h. */
const BITS: Record<CapabilityName, bigint> = { CAP_NET_BIND_SERVICE: 10n, CAP_NET_ADMIN: 12n, CAP_NET_RAW: 13n };

/**
 * The effective capability set as a bit mask (CapEff), or undefined where /proc is unavailable.
 * @example (effectiveCapabilities()! >> 13n) & 1n // 1n with CAP_NET_RAW
 */
export function effectiveCapabilities(): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readProcFile("/proc/self/status") ?? "");
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/** A /proc file's text, or undefined. libc rather than a runtime file API: /proc files report size 0, which some readers trust. */
/**
 * A small /proc or /sys file through libc (open, read): Deno asks for --allow-all to read /proc with
 * its own API, and a sysctl check must not need that. Undefined when it cannot be opened.
 * @example readProcFile("/proc/sys/net/ipv4/ipfrag_max_dist") // "64\n"
 */
export function readProcFile(path: string): string | undefined {
  const fd = libc.open(cString(path), O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  const buf = new Uint8Array(8192);
  let n = 0;
  for (let r = 1; r > 0 && n < buf.length; n += Math.max(r, 0)) r = libc.read(fd, buf.subarray(n), buf.length - n);
  libc.close(fd);
  return new TextDecoder().decode(buf.subarray(0, n));
}

/**
 * The first port an unprivileged socket may bind in this network namespace
 * (net.ipv4.ip_unprivileged_port_start, 1024 by default; it covers IPv6 too). Below it, bind needs
 * CAP_NET_BIND_SERVICE — IP_TRANSPARENT does not lift that.
 * @example unprivilegedPortStart() // 1024
 */
export function unprivilegedPortStart(): number {
  const n = Number.parseInt(readProcFile("/proc/sys/net/ipv4/ip_unprivileged_port_start") ?? "", 10);
  return Number.isFinite(n) ? n : 1024;
}

/**
 * True when the process has `cap` in its effective set (also when it cannot tell: the syscall
 * will then say).
 * @example hasCapability("CAP_NET_RAW")
 */
export function hasCapability(cap: CapabilityName, mask: bigint | undefined = effectiveCapabilities()): boolean {
  return mask === undefined || ((mask >> BITS[cap]) & 1n) === 1n;
}
