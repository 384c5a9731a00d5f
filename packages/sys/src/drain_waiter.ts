/**
 * What a transport's `close()` waits on: its queues emptying (they drain as the poller reports the
 * socket writable), or a timeout, whichever comes first.
 * @module
 */

/** One pending wait at a time. */
export interface DrainWaiter {
  /** Resolve once `drained()` is called or `timeoutMs` passed; at once when nothing is pending. */
  wait(pending: boolean, timeoutMs: number): Promise<void>;
  /** The queues are empty now. */
  drained(): void;
}

/**
 * Create a waiter.
 * @example const drain = createDrainWaiter(); await drain.wait(queue.length > 0, 2000);
 */
export function createDrainWaiter(): DrainWaiter {
  let release: (() => void) | undefined;
  return {
    wait(pending, timeoutMs) {
      if (!pending) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          release = undefined;
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        release = done;
      });
    },
    drained() {
      release?.();
    },
  };
}
