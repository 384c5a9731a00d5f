/**
 * What the namespace suites need from the machine, checked up front with a clear message.
 * @module
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import process from "node:process";

/** Set to 1 to skip suites that need root, namespaces, nft or /dev/net/tun (the skip is printed). */
export const SKIP_VARIABLE = "ANYSRC_SKIP_PRIVILEGED";

function has(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Why the testbed cannot run here, or undefined when it can. */
export function missingPrivileges(): string | undefined {
  if (process.getuid?.() !== 0) return "not running as root (network namespaces, TPROXY and TUN need CAP_NET_ADMIN)";
  if (!has("ip")) return "the `ip` command is missing: apt-get install iproute2";
  if (!has("nft")) return "the `nft` command is missing: apt-get install nftables";
  try {
    accessSync("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch {
    return "/dev/net/tun is missing or not accessible";
  }
  return undefined;
}

/**
 * For a suite's top: true when it should run; false (with a printed line) when the environment asks
 * to skip; throws with the reason otherwise, so a missing privilege is a failure, never a silent pass.
 */
export function requirePrivileges(suite: string): boolean {
  const why = missingPrivileges();
  if (!why) return true;
  if (process.env[SKIP_VARIABLE] === "1") {
    console.log(`SKIPPED ${suite}: ${why} (${SKIP_VARIABLE}=1)`);
    return false;
  }
  throw new Error(`${suite} cannot run: ${why}. Run as root, or set ${SKIP_VARIABLE}=1 to skip it explicitly.`);
}
