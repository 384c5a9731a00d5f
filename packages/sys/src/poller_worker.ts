/**
 * The poller's Worker: while the main thread is idle, blocks in epoll_wait over every registered fd
 * (edge-triggered), publishes the ready ones through shared memory, hands epoll to the main thread
 * and wakes it (Atomics.notify); then sleeps until the main thread hands epoll back. It never reads
 * sockets.
 * @module
 */
import { errno, libc } from "./libc.ts";
import { EINTR } from "./linux_constants.ts";
import { FAILED, MAIN, MAX_EVENTS, OWNER, type PollerStart, type PollerWorkerMessage, SEQ, SLOT_AT, STOP } from "./poller_protocol.ts";

// epoll_event is packed on x86-64: u32 events @0, u64 data @4, 12 bytes each.
const EPOLL_EVENT_SIZE = 12;

function run(start: PollerStart): number {
  const control = new Int32Array(start.control);
  const events = new Uint8Array(EPOLL_EVENT_SIZE * MAX_EVENTS);
  const view = new DataView(events.buffer);
  for (;;) {
    // While the main thread owns epoll (it is busy and polls it itself), sleep.
    while (Atomics.load(control, OWNER) === MAIN) {
      if (Atomics.load(control, STOP) !== 0) return 0;
      Atomics.wait(control, OWNER, MAIN);
    }
    if (Atomics.load(control, STOP) !== 0) return 0;
    const n = libc.epoll_wait(start.epollFd, events, MAX_EVENTS, -1);
    if (Atomics.load(control, STOP) !== 0) return 0;
    if (n < 0) {
      const e = errno();
      if (e === EINTR) continue;
      return e;
    }
    let count = 0;
    for (let i = 0; i < n; i++) {
      const fd = view.getInt32(i * EPOLL_EVENT_SIZE + 4, true);
      if (fd === start.wakeFd) continue;
      control[SLOT_AT + 1 + 2 * count] = fd;
      control[SLOT_AT + 2 + 2 * count] = view.getUint32(i * EPOLL_EVENT_SIZE, true);
      count++;
    }
    if (count === 0) continue;
    control[SLOT_AT] = count;
    // Hand epoll to the main thread before waking it: from now on it polls, we sleep.
    Atomics.store(control, OWNER, MAIN);
    Atomics.add(control, SEQ, 1);
    Atomics.notify(control, SEQ);
  }
}

interface WorkerScope {
  onmessage: ((e: { data: PollerStart }) => void) | null;
  postMessage(m: PollerWorkerMessage): void;
}
const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (e) => {
  const failed = run(e.data);
  if (failed !== 0) {
    // Wake the main thread so it sees the failure instead of waiting forever.
    const control = new Int32Array(e.data.control);
    Atomics.store(control, FAILED, failed);
    Atomics.add(control, SEQ, 1);
    Atomics.notify(control, SEQ);
  }
  scope.postMessage({ stopped: true, errno: failed });
};
scope.postMessage({ ready: true });
