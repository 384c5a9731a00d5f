/**
 * Vitest global setup: when the run ends — however its suites ended, a worker that crashed included —
 * remove every testbed namespace whose creating process is gone, after ending the processes still
 * inside it (by PID, as `ip netns pids` names them). Devices made inside a namespace (veths, TUNs)
 * go with it. A suite's own `afterAll` does this for the runs that end normally; this is for the rest.
 * @module
 */
import { execFileSync } from "node:child_process";

/** A testbed namespace: `as<creator pid>x<n>` then c, r or s (packages/testbed/src/testbed.ts). */
const TESTBED_NAMESPACE = /^as(\d+)x\d+[crs]$/;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Remove the namespaces left by testbed creators that are gone; returns their names. */
export function removeLeftoverNamespaces(): string[] {
  let listing: string;
  try {
    listing = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  } catch {
    return []; // no ip(8), or not root: nothing of ours can exist
  }
  const removed: string[] = [];
  for (const name of listing.split("\n").map((l) => l.split(" ")[0]!).filter(Boolean)) {
    const m = TESTBED_NAMESPACE.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    for (const pid of execFileSync("ip", ["netns", "pids", name], { encoding: "utf8" }).split("\n").map(Number).filter((p) => p > 0)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* ended meanwhile */ }
    }
    execFileSync("ip", ["netns", "del", name]);
    removed.push(name);
  }
  return removed;
}

/** The global setup: nothing before the run; the sweep after it. */
export default function setup(): () => void {
  return () => {
    const removed = removeLeftoverNamespaces();
    if (removed.length) console.error(`removed ${removed.length} namespaces left by crashed suites: ${removed.join(" ")}`);
  };
}
