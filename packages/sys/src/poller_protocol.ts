/**
 * The shared-memory protocol between the poller (main thread) and its epoll Worker: indices into one
 * Int32Array over a SharedArrayBuffer. One side at a time waits in epoll_wait, named by OWNER. The
 * Worker waits while the main thread is idle, publishes one batch of ready fds, hands epoll over and
 * wakes the main thread; the main thread then polls epoll itself for as long as traffic keeps coming
 * and hands it back once it has been idle for a moment. Under load the Worker so stays asleep, and a
 * datagram costs no thread switch but the main thread's own.
 * @module
 */

/** Batches published by the Worker (monotonic). */
export const SEQ = 0;
/** Who may wait in epoll_wait: WORKER or MAIN. */
export const OWNER = 1;
/** Non-zero: the worker must exit. */
export const STOP = 2;
/** errno when the worker's epoll_wait failed for good. */
export const FAILED = 3;
/** OWNER values. */
export const WORKER = 0;
export const MAIN = 1;
/** Most ready fds per batch. */
export const MAX_EVENTS = 256;
/** The batch: a count, then (fd, events) pairs. */
export const SLOT_AT = 4;
/** Int32 slots in the control block. */
export const CONTROL_INTS = SLOT_AT + 1 + 2 * MAX_EVENTS;

/** What the main thread sends the worker to start it. */
export interface PollerStart {
  readonly control: SharedArrayBuffer;
  readonly epollFd: number;
  readonly wakeFd: number;
}

/**
 * Messages from the worker: `ready` once its handler is installed (Bun drops messages that arrive
 * while a worker's module is still in top-level await, so the start message waits for this), then
 * `stopped` when it left its loop.
 */
export type PollerWorkerMessage = { readonly ready: true } | { readonly stopped: true; readonly errno: number };
