import { describe, expect, it } from "vitest";
import { countKernelDrops, createRelayCounters, logfmtValue, prometheusText, statsLine, statsSnapshot, unaccounted } from "../src/relay_stats.ts";
import { byteSizeFlag, UsageError } from "../src/cli/usage_error.ts";

describe("kernel drop counters", () => {
  it("count each socket's increase once, by class, whatever order the readings come in", () => {
    const c = createRelayCounters();
    const listener = { drops: 0 };
    const session = { drops: 0 };
    countKernelDrops(c, "listener", listener, 0); // no drops yet: no cmsg, reads as 0
    countKernelDrops(c, "listener", listener, 5);
    countKernelDrops(c, "listener", listener, 5); // the same running count on the next datagram
    countKernelDrops(c, "upstream", session, 3);
    countKernelDrops(c, "upstream", session, 2); // an older reading (an earlier slot) adds nothing
    countKernelDrops(c, "upstream", session, 7);
    expect(c.kernelDropped).toEqual({ listener: 5, upstream: 7 });
    expect(listener.drops).toBe(5);
    expect(session.drops).toBe(7);
  });

  it("leave the accounting identities alone: a kernel drop never reached `received`", () => {
    const c = createRelayCounters();
    c.received = 10;
    c.forwarded = 10;
    countKernelDrops(c, "listener", { drops: 0 }, 4);
    expect(unaccounted(c)).toEqual({ inbound: 0, replies: 0 });
  });

  it("appear in the text line, the JSON snapshot and the Prometheus exposition", () => {
    const c = createRelayCounters();
    countKernelDrops(c, "listener", { drops: 0 }, 2);
    countKernelDrops(c, "upstream", { drops: 0 }, 9);
    const line = statsLine("tproxy", c, [], "event=stats", new Date("2026-12-02T17:00:00Z"));
    expect(line).toMatch(/^time=2026-12-02T17:00:00.000Z event=stats mode=tproxy received=0 /);
    expect(line).toContain(" kernel_dropped.listener=2 kernel_dropped.upstream=9 ");
    expect(line).toContain(" dropped=0 ");
    expect(statsSnapshot("tproxy", c, []).kernelDropped).toEqual({ listener: 2, upstream: 9 });
    const text = prometheusText("tproxy", c, []);
    expect(text).toContain("# TYPE anysrc_kernel_dropped_total counter");
    expect(text).toContain('anysrc_kernel_dropped_total{mode="tproxy",socket="listener"} 2');
    expect(text).toContain('anysrc_kernel_dropped_total{mode="tproxy",socket="upstream"} 9');
  });
});

describe("byte-count flags", () => {
  it.each([
    ["8388608", 8388608],
    ["8M", 8 << 20],
    ["512K", 512 << 10],
    ["512k", 512 << 10],
    ["1G", 1 << 30],
    ["4KiB", 4096],
  ])("%s is %d bytes", (text, bytes) => {
    expect(byteSizeFlag("tproxy", "--socket-buffer", text, 1024, 1 << 30)).toBe(bytes);
  });

  it.each(["", "8 M", "-1", "1.5M", "0x100", "8T", "M"])("%j is refused with a UsageError naming the flag", (text) => {
    expect(() => byteSizeFlag("tproxy", "--socket-buffer", text, 1024, 1 << 30)).toThrow(UsageError);
    expect(() => byteSizeFlag("tproxy", "--socket-buffer", text, 1024, 1 << 30)).toThrow(/--socket-buffer/);
  });

  it("refuses values out of range, quoting them", () => {
    expect(() => byteSizeFlag("tproxy", "--socket-buffer", "512", 1024, 1 << 30)).toThrow("--socket-buffer must be 1024-1073741824 bytes, got 512");
    expect(byteSizeFlag("tproxy", "--socket-buffer", undefined, 1024, 1 << 30)).toBeUndefined();
  });
});

describe("logfmtValue", () => {
  it("leaves plain tokens bare and quotes the rest, so a value never holds a bare = or space", () => {
    expect(logfmtValue("198.18.1.2:53")).toBe("198.18.1.2:53");
    expect(logfmtValue("[2001:db8::1]:53")).toBe("[2001:db8::1]:53");
    expect(logfmtValue(42)).toBe("42");
    expect(logfmtValue("a b")).toBe('"a b"');
    expect(logfmtValue("k=v")).toBe('"k=v"');
    expect(logfmtValue(["0.0.0.0:15000"])).toBe('"[\\"0.0.0.0:15000\\"]"');
  });
});

describe("transport series in /metrics", () => {
  it("the packet transport's viaRaw count is a series of its own; other transports have none", () => {
    const stats = { sent: 5, bytes: 0, batches: 1, fragments: 0, coalesced: 0, offloadFallbacks: 0, queued: 0, dropped: {}, errors: {}, reported: {} };
    const text = prometheusText("tproxy", createRelayCounters(), [{ kind: "packet", stats: { ...stats, viaRaw: 3 } as typeof stats }, { kind: "raw", stats }]);
    expect(text).toContain('anysrc_transport_via_raw_total{mode="tproxy",transport="packet"} 3');
    expect(text).not.toContain('anysrc_transport_via_raw_total{mode="tproxy",transport="raw"}');
  });
});
