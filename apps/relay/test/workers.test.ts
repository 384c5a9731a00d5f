import { describe, expect, it } from "vitest";
import { parseWorkerRole, workerEnvValue, workersFlag } from "../src/workers/worker_role.ts";
import { countersOfSnapshot, sumSnapshots } from "../src/workers/worker_stats.ts";
import { createRelayCounters, prometheusTextOf, statsSnapshot, unaccounted } from "../src/relay_stats.ts";
import { UsageError } from "../src/cli/usage_error.ts";

describe("worker role and --workers", () => {
  it("a worker reads back the index, count and fds its supervisor wrote", () => {
    expect(parseWorkerRole(workerEnvValue(1, 2, [3, 4]))).toEqual({ index: 1, count: 2, listenerFds: [3, 4] });
    expect(parseWorkerRole(undefined)).toBeUndefined();
    expect(parseWorkerRole("")).toBeUndefined();
  });

  it("a malformed or out-of-range ANYSRC_WORKER is refused, not guessed at", () => {
    for (const bad of ["2/2:3", "0/2", "a/b:c", "0/2:3,"]) expect(() => parseWorkerRole(bad)).toThrow(/INDEX\/COUNT:FD/);
  });

  it("--workers: absent is 1, auto is every allowed CPU (pinned), a number is unpinned, anything else a usage error", () => {
    expect(workersFlag("tproxy", {})).toEqual({ count: 1 });
    expect(workersFlag("tproxy", { workers: "auto" }, () => [2, 5])).toEqual({ count: 2, cpus: [2, 5] });
    expect(workersFlag("tproxy", { workers: "4" })).toEqual({ count: 4 });
    for (const bad of ["0", "-1", "two", "1025", "1.5"]) expect(() => workersFlag("tproxy", { workers: bad })).toThrow(UsageError);
  });
});

describe("the service's counters are the sum of its workers'", () => {
  const worker = (received: number, drops: number, receiver: number) => {
    const c = createRelayCounters();
    c.received = received;
    c.forwarded = received - drops;
    c.dropped["upstream-busy"] = drops;
    c.sessionsCreated = 3;
    c.receivers = [{ receiver: "198.18.7.10:2055/10", copies: receiver, sampledOut: 9 * receiver, bytes: 100 * receiver, icmpUnreachable: 0, errors: 0 }];
    const transport = {
      kind: "raw",
      stats: {
        sent: received,
        bytes: 0,
        batches: 1,
        fragments: 0,
        coalesced: 0,
        offloadFallbacks: 0,
        queued: 0,
        dropped: {},
        errors: { ENOBUFS: 1 },
        reported: {},
      },
    };
    return { worker: 0, time: "t", event: "stats", process: { residentBytes: 1 }, ...statsSnapshot("forward", c, [transport]) };
  };

  it("every counter adds up, receivers by name, and the accounting identities hold for the sum", () => {
    const sum = sumSnapshots([worker(10, 1, 1), worker(30, 0, 3)]);
    expect(sum).toMatchObject({
      mode: "forward",
      received: 40,
      forwarded: 39,
      sessionsCreated: 6,
      dropped: { "upstream-busy": 1 },
      unaccounted: { inbound: 0, replies: 0 },
      transports: { raw: { sent: 40, errors: { ENOBUFS: 2 } } },
      receivers: [{ receiver: "198.18.7.10:2055/10", copies: 4, sampledOut: 36 }],
    });
    expect(sum).not.toHaveProperty("process");
    expect(sum).not.toHaveProperty("worker");
    expect(unaccounted(countersOfSnapshot(sum).counters)).toEqual({ inbound: 0, replies: 0 });
  });

  it('/metrics shows each family once, with the sum under worker="all" and each worker under its index', () => {
    const [a, b] = [worker(10, 1, 1), worker(30, 0, 3)];
    const sets = [
      { labels: { worker: "all" }, ...countersOfSnapshot(sumSnapshots([a, b])) },
      { labels: { worker: "0" }, ...countersOfSnapshot(a) },
      { labels: { worker: "1" }, ...countersOfSnapshot(b) },
    ];
    const text = prometheusTextOf("forward", sets);
    expect(text.match(/^# TYPE anysrc_received_total counter$/gm)).toHaveLength(1);
    expect(text).toContain('anysrc_received_total{mode="forward",worker="all"} 40');
    expect(text).toContain('anysrc_received_total{mode="forward",worker="0"} 10');
    expect(text).toContain('anysrc_received_total{mode="forward",worker="1"} 30');
    expect(text).toContain('anysrc_receiver_copies_total{mode="forward",worker="all",receiver="198.18.7.10:2055/10"} 4');
  });
});
