/**
 * The relay under a service manager: with `$NOTIFY_SOCKET` set (a fake systemd, notify_sink.c), it
 * says READY=1 with its own MAINPID once it listens, RELOADING=1 / READY=1 around a forward reload,
 * and STOPPING=1 when it stops.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, NONE, requirePrivileges, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";
import { ANYSRC, startTproxy } from "./start_tproxy.ts";

const run = requirePrivileges("service suite");

describe.skipIf(!run)("anysrc as a Type=notify service (sd_notify to $NOTIFY_SOCKET)", () => {
  let bed: Testbed;
  let bin: Record<string, string>;
  let dir: string;
  let n = 0;
  beforeAll(async () => {
    bin = compileC(["notify_sink", "udp_echo"]);
    bed = createTestbed();
    bed.enableTproxy(15200);
    await bed.spawn(bed.server, [bin.udp_echo!, A.server4, "7000"]).waitFor((l) => l.ready === true);
    dir = mkdtempSync(join(tmpdir(), "anysrc-notify-"));
  });
  afterAll(async () => {
    await bed?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fake systemd socket (a filesystem path: reachable from the router's network namespace). */
  const fakeSystemd = async () => {
    const path = join(dir, `notify-${n++}.sock`);
    const sink = bed.spawn(bed.router, [bin.notify_sink!, path, "60"]);
    await sink.waitFor((l) => l.ready === true);
    return {
      path,
      sink,
      message: (match: RegExp) => sink.waitFor((l) => typeof l.message === "string" && match.test(l.message)).then((l) => l.message as string),
    };
  };

  for (const runtime of RUNTIMES) {
    it(`${runtime}: tproxy says READY=1 with its MAINPID once listening and STOPPING=1 at SIGTERM`, async () => {
      const systemd = await fakeSystemd();
      const relay = bed.spawn(bed.router, [
        ANYSRC,
        "--runtime",
        runtime,
        "tproxy",
        "--port",
        "15200",
        "--transport",
        "raw",
        "--mark",
        "2",
        "--stats",
        "json",
        "--stats-interval",
        "0",
      ], {
        NOTIFY_SOCKET: systemd.path,
      });
      const listening = await relay.waitFor((l) => l.event === "listening", 30_000);
      expect(await systemd.message(/^READY=1\n/)).toContain(`\nMAINPID=${listening.pid as number}\n`);
      await relay.stop();
      expect(await systemd.message(/^STOPPING=1/)).toContain("STATUS=stopping (SIGTERM)");
      expect(await relay.exited()).toBe(0);
    });

    it(`${runtime}: forward says RELOADING=1 then READY=1 around a SIGHUP reload`, async () => {
      const systemd = await fakeSystemd();
      const file = join(dir, `receivers-${runtime}.conf`);
      writeFileSync(file, `198.18.1.0/24: ${A.server4}:9400\n`);
      const f = bed.spawn(bed.router, [
        ANYSRC,
        "--runtime",
        runtime,
        "forward",
        "--listen",
        "0.0.0.0:2058",
        "--receivers",
        file,
        "--allow",
        "198.18.0.0/15",
        "--transport",
        "raw",
        "--stats",
        "json",
        "--stats-interval",
        "0",
      ], { NOTIFY_SOCKET: systemd.path });
      const listening = await f.waitFor((l) => l.event === "listening", 30_000);
      await systemd.message(/^READY=1\n/);
      const before = systemd.sink.lines.length;
      writeFileSync(file, `198.18.1.0/24: ${A.server4}:9401\n`);
      process.kill(listening.pid as number, "SIGHUP");
      await f.waitFor((l) => l.event === "reloaded");
      const after = async () => {
        for (let i = 0; i < 50 && systemd.sink.lines.length < before + 2; i++) await new Promise((r) => setTimeout(r, 50));
        return systemd.sink.lines.slice(before).map((l) => l.message);
      };
      expect(await after()).toEqual(["RELOADING=1", "READY=1"]);
      await f.stop();
      await systemd.message(/^STOPPING=1/);
    });
  }

  for (const runtime of RUNTIMES) {
    it(`${runtime}: tproxy SIGHUP applies a changed --config under load with nothing lost, keeps the settings on a bad file, names what needs a restart`, async () => {
      const config = join(dir, `relay-${runtime}.json`);
      writeFileSync(config, JSON.stringify({ "idle-timeout": "120s", "max-sessions": 1000 }));
      const r = await startTproxy(bed, runtime, 15200, ["--transport", "raw", "--config", config]);
      const pid = (await r.waitFor((l) => l.event === "listening")).pid as number;
      const flows = bed.spawn(bed.client, ["node", UDP_PEER, "flows", `${A.server4}:7000`, "20000", "64,1200", "32", "10"]);
      const hup = async (text: string, event: string, seen: number) => {
        await new Promise((res) => setTimeout(res, 400));
        writeFileSync(config, text);
        process.kill(pid, "SIGHUP");
        return r.waitFor((l) => l.event === event && r.lines.filter((x) => x.event === event).indexOf(l) === seen);
      };
      expect(await hup(JSON.stringify({ "idle-timeout": "1s", "max-sessions": 500, dscp: "clear" }), "reloaded", 0)).toMatchObject({
        idleTimeoutMs: 1000,
        maxSessions: 500,
        ipFields: { dscp: "clear" },
        needsRestart: [],
      });
      expect((await hup("{ not json", "reload-failed", 0)).error).toContain("not valid JSON");
      expect(await hup(JSON.stringify({ "idle-timeout": "1s", "max-sessions": 500, "socket-buffer": "8M" }), "reloaded", 1)).toMatchObject({
        needsRestart: ["socket-buffer"],
      });
      expect(await flows.waitFor((l) => l.done === true, 60_000)).toMatchObject({ received: 20000, corrupt: 0 });
      // The 1 s idle timeout of the reload closes the 32 sessions once the load stops.
      await new Promise((res) => setTimeout(res, 2500));
      await r.stop();
      const stats = await r.waitFor((l) => l.event === "final");
      expect(stats).toMatchObject({ received: 20000, forwarded: 20000, replies: 20000, dropped: NONE, unaccounted: { inbound: 0, replies: 0 } });
      expect(stats.sessionsExpired as number).toBeGreaterThanOrEqual(32);
    });
  }

  it("a bad NOTIFY_SOCKET is said once and the relay serves on", async () => {
    const r = bed.spawn(bed.router, [ANYSRC, "tproxy", "--port", "15200", "--transport", "raw", "--mark", "2", "--stats", "json", "--stats-interval", "0"], {
      NOTIFY_SOCKET: join(dir, "nobody-listens.sock"),
    });
    expect(await r.waitFor((l) => l.event === "warning", 30_000)).toMatchObject({ warning: expect.stringContaining("ENOENT") });
    await r.stop();
    expect(await r.exited()).toBe(0);
  });
});
