/**
 * The process's effective Linux capabilities, read once from /proc/self/status, so a command can
 * name a missing one at start instead of failing on its first packet.
 * @module
 */
import type { CapabilityName } from "@anysrc/core";
import { cString, libc } from "./libc.ts";
import { O_CLOEXEC } from "./linux_constants.ts";

/** Bit numbers from linux/capability.h. */
const BITS: Record<CapabilityName, bigint> = { CAP_NET_ADMIN: 12n, CAP_NET_RAW: 13n };

/**
 * The effective capability set as a bit mask (CapEff), or undefined where /proc is unavailable.
 * @example (effectiveCapabilities()! >> 13n) & 1n // 1n with CAP_NET_RAW
 */
export function effectiveCapabilities(): bigint | undefined {
  // libc rather than a runtime file API: /proc files report size 0, which some readers trust.
  const fd = libc.open(cString("/proc/self/status"), O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  const buf = new Uint8Array(8192);
  let n = 0;
  for (let r = 1; r > 0 && n < buf.length; n += Math.max(r, 0)) r = libc.read(fd, buf.subarray(n), buf.length - n);
  libc.close(fd);
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(new TextDecoder().decode(buf.subarray(0, n)));
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/**
 * True when the process has `cap` in its effective set (also when it cannot tell: the syscall
 * will then say).
 * @example hasCapability("CAP_NET_RAW")
 */
export function hasCapability(cap: CapabilityName, mask = effectiveCapabilities()): boolean {
  return mask === undefined || ((mask >> BITS[cap]) & 1n) === 1n;
}
