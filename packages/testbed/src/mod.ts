/**
 * @anysrc/testbed — network namespaces (client ⇄ router ⇄ server) with TPROXY, JSON-line child
 * processes, the Node UDP peer, C baselines compiled on demand, and small statistics. Used by the
 * suites in test/ and by `anysrc bench`. Runs under Node, Bun and Deno (node:child_process).
 * @module
 */
export * from "./c_programs.ts";
export * from "./matchers.ts";
export * from "./child.ts";
export * from "./payload_pattern.ts";
export * from "./privileges.ts";
export * from "./process_probe.ts";
export * from "./runtimes.ts";
export * from "./stats.ts";
export * from "./syscall_count.ts";
export * from "./testbed.ts";
