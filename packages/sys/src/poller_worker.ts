/**
 * The poller's Worker: blocks in epoll_wait over every registered fd (edge-triggered) and publishes
 * the ready ones to the main thread through shared memory + Atomics.notify. It never reads sockets.
 * @module
 */
import { errno, libc } from "./libc.ts";
import { EINTR } from "./linux_constants.ts";
import { BATCH_SLOTS, FAILED, MAX_EVENTS, type PollerStart, type PollerWorkerMessage, READ, SEQ, SLOTS_AT, SLOT_INTS, STOP, WAITING } from "./poller_protocol.ts";

// epoll_event is packed on x86-64: u32 events @0, u64 data @4, 12 bytes each.
const EPOLL_EVENT_SIZE = 12;

function run(start: PollerStart): number {
  const control = new Int32Array(start.control);
  const events = new Uint8Array(EPOLL_EVENT_SIZE * MAX_EVENTS);
  const view = new DataView(events.buffer);
  let seq = 0;
  for (;;) {
    const n = libc.epoll_wait(start.epollFd, events, MAX_EVENTS, -1);
    if (Atomics.load(control, STOP) !== 0) return 0;
    if (n < 0) {
      const e = errno();
      if (e === EINTR) continue;
      return e;
    }
    // A free slot: only when the main thread is a whole ring behind does the Worker wait.
    for (;;) {
      const read = Atomics.load(control, READ);
      if (seq - read < BATCH_SLOTS || Atomics.load(control, STOP) !== 0) break;
      Atomics.store(control, WAITING, 1);
      if (Atomics.load(control, READ) === read) Atomics.wait(control, READ, read);
      Atomics.store(control, WAITING, 0);
    }
    if (Atomics.load(control, STOP) !== 0) return 0;
    const slot = SLOTS_AT + (seq % BATCH_SLOTS) * SLOT_INTS;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const fd = view.getInt32(i * EPOLL_EVENT_SIZE + 4, true);
      if (fd === start.wakeFd) continue;
      control[slot + 1 + 2 * count] = fd;
      control[slot + 2 + 2 * count] = view.getUint32(i * EPOLL_EVENT_SIZE, true);
      count++;
    }
    if (count === 0) continue;
    control[slot] = count;
    seq++;
    Atomics.store(control, SEQ, seq);
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
