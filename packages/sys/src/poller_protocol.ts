/**
 * The shared-memory protocol between the poller (main thread) and its epoll Worker: indices into one
 * Int32Array over a SharedArrayBuffer. The Worker publishes batches of ready fds into a ring of
 * BATCH_SLOTS slots and goes straight back to epoll_wait; it only waits when the main thread is a
 * whole ring behind. (Edge-triggered: an fd can appear in several published batches while the main
 * thread is behind; the main thread folds them into one dispatch.)
 * @module
 */

/** Batches published by the Worker (monotonic). */
export const SEQ = 0;
/** Batches the main thread has copied out (monotonic). */
export const READ = 1;
/** Non-zero while the Worker sleeps waiting for READ to move (the ring was full). */
export const WAITING = 2;
/** Non-zero: the worker must exit. */
export const STOP = 3;
/** errno when the worker's epoll_wait failed for good. */
export const FAILED = 4;
/** Most ready fds per batch. */
export const MAX_EVENTS = 256;
/** Batches the ring holds. */
export const BATCH_SLOTS = 8;
/** Int32s per slot: a count, then (fd, events) pairs. */
export const SLOT_INTS = 1 + 2 * MAX_EVENTS;
/** First slot. */
export const SLOTS_AT = 8;
/** Int32 slots in the control block. */
export const CONTROL_INTS = SLOTS_AT + BATCH_SLOTS * SLOT_INTS;

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
