/**
 * The shared-memory protocol between the poller (main thread) and its epoll Worker: indices into one
 * Int32Array over a SharedArrayBuffer.
 * @module
 */

/** Incremented by the worker each time it publishes a batch of ready fds. */
export const SEQ = 0;
/** Number of (fd, events) pairs in the batch. */
export const COUNT = 1;
/** Set by the main thread to the SEQ it has consumed; the worker waits for it before epoll_wait again. */
export const ACK = 2;
/** Non-zero: the worker must exit. */
export const STOP = 3;
/** errno when the worker's epoll_wait failed for good. */
export const FAILED = 4;
/** First (fd, events) pair. */
export const EVENTS = 8;
/** Most ready fds published per batch. */
export const MAX_EVENTS = 256;
/** Int32 slots in the control block. */
export const CONTROL_INTS = EVENTS + 2 * MAX_EVENTS;

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
