import { describe, expect, it } from "vitest";
import { type Recency, sweepIdle, touchRecency } from "./recency.ts";

type Entry = Recency & { name: string; busy?: boolean };
const entry = (name: string, at: number): Entry => ({ name, lastActive: at, lastTouched: at });
const order = (m: Map<string, Entry>) => [...m.keys()];

describe("recency: LRU order in a Map's insertion order", () => {
  it("a use moves an entry to the recent end only when its last move is over a second old", () => {
    const m = new Map([["a", entry("a", 0)], ["b", entry("b", 0)]]);
    touchRecency(m, "a", m.get("a")!, 500);
    expect(order(m)).toEqual(["a", "b"]); // within the second: the timestamp only
    expect(m.get("a")!.lastActive).toBe(500);
    touchRecency(m, "a", m.get("a")!, 1001);
    expect(order(m)).toEqual(["b", "a"]);
  });

  it("the sweep expires idle entries from the old end and stops at the first recently moved one", () => {
    const m = new Map([["a", entry("a", 0)], ["b", entry("b", 100)], ["c", entry("c", 5000)], ["d", entry("d", 0)]]);
    const expired: string[] = [];
    sweepIdle(m, 6000, 2000, (key) => {
      expired.push(key);
      m.delete(key);
    });
    // d is idle too, but sits behind c, moved recently: it waits for a later sweep (order is kept to within a second).
    expect(expired).toEqual(["a", "b"]);
    expect(order(m)).toEqual(["c", "d"]);
  });

  it("an entry used since its last move, or one `keep` spares, goes to the recent end instead of expiring", () => {
    const used = entry("used", 0);
    used.lastActive = 5500;
    const busy: Entry = { ...entry("busy", 0), busy: true };
    const m = new Map([["used", used], ["busy", busy], ["idle", entry("idle", 0)]]);
    const expired: string[] = [];
    sweepIdle(m, 6000, 2000, (key) => {
      expired.push(key);
      m.delete(key);
    }, (e) => e.busy === true);
    expect(expired).toEqual(["idle"]);
    expect(order(m)).toEqual(["used", "busy"]);
    expect(m.get("busy")!.lastTouched).toBe(6000);
  });
});
