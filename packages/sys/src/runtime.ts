/**
 * Which JavaScript runtime we are on: the one place that asks.
 * @module
 */

/** A runtime anysrc supports. */
export type RuntimeName = "bun" | "deno";

/**
 * Detect the runtime.
 * @example detectRuntime() // "bun"
 * @throws {Error} on any other runtime (Node has no FFI to libc).
 */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  throw new Error("anysrc/sys needs Bun or Deno: this runtime has no FFI to libc");
}
