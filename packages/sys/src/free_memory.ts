/**
 * Memory the process freed, given back. V8 (Deno, Node) allocates its native side — compiler zones
 * while the JIT works, array buffer records, module data — from glibc malloc, which keeps freed
 * memory for reuse. After a burst (10 000 new sessions, and the JIT compiling the paths they take)
 * a Deno relay held ~3.5 MiB of such free memory that `malloc_trim(0)` returned at once (65.9 →
 * 62.4 MiB RSS). Bun allocates through its own allocators and measured no change, so it is left alone.
 * @module
 */
import { adapter, libc } from "./libc.ts";
import { unrefTimer } from "./runtime.ts";

/** Where a trim can return anything (see the module comment). */
const TRIM_PAYS = adapter.runtime !== "bun";

/**
 * Give the C allocator's free memory back to the kernel (glibc `malloc_trim(0)`); true when some
 * was. A no-op under Bun.
 * @example releaseFreeMemory();
 */
export function releaseFreeMemory(): boolean {
  return TRIM_PAYS && libc.malloc_trim(0) === 1;
}

/** When {@link trimAfterBursts} looks and what it does. */
export interface TrimPolicy {
  /** How often the activity count is read. */
  readonly periodMs?: number;
  /** Longest time between trims while the count never stops moving. */
  readonly longestWaitMs?: number;
  /** What a trim does (tests count the calls). */
  readonly trim?: () => void;
}

/**
 * Release free memory each time a burst of activity settles: every `periodMs` (1 s), `activity()`
 * is read (a count that moves while memory is allocated and freed, such as sessions created plus
 * closed), and memory is trimmed when the count moved during the tick before but not during this
 * one. Under change that never pauses, every `longestWaitMs` (30 s) instead. Returns the stop function.
 * @example const stop = trimAfterBursts(() => c.sessionsCreated + c.sessionsExpired);
 */
export function trimAfterBursts(activity: () => number, policy: TrimPolicy = {}): () => void {
  const { periodMs = 1000, longestWaitMs = 30_000, trim = releaseFreeMemory } = policy;
  if (!TRIM_PAYS && policy.trim === undefined) return () => {};
  let last = activity();
  let moved = false;
  let trimmedAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const count = activity();
    const moving = count !== last;
    last = count;
    if ((moved && !moving) || (moving && now - trimmedAt >= longestWaitMs)) {
      trim();
      trimmedAt = now;
    }
    moved = moving;
  }, periodMs);
  unrefTimer(timer);
  return () => clearInterval(timer);
}
