/**
 * Which JavaScript runtime we are on: the one place that asks.
 * @module
 */

/** A runtime anysrc supports. */
export type RuntimeName = "bun" | "deno" | "node";

/**
 * Detect the runtime.
 * @example detectRuntime() // "bun"
 * @throws {Error} on any other runtime (no FFI to libc).
 */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Bun?: unknown; Deno?: unknown; process?: { versions?: { node?: string } } };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  if (g.process?.versions?.node !== undefined) return "node";
  throw new Error("anysrc/sys needs Bun, Deno or Node ≥ 26 (--experimental-ffi): this runtime has no FFI to libc");
}

/**
 * Let a timer not keep the process alive (housekeeping timers of caches and queues).
 * @example unrefTimer(setInterval(sweep, 30_000));
 */
export function unrefTimer(timer: unknown): void {
  if (typeof timer === "object" && timer !== null && "unref" in timer && typeof timer.unref === "function") {
    timer.unref();
    return;
  }
  const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
  if (typeof timer === "number" && deno?.unrefTimer) deno.unrefTimer(timer);
}

const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;

/**
 * Let the event loop take one turn (due timers, signal handlers, sockets of the runtime's own), then
 * resume: µs on Bun and Deno (setImmediate), where a 0 ms timer costs 1–2 ms.
 * @example await nextTurn();
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => (immediate ? immediate(resolve) : setTimeout(resolve, 0)));
}
