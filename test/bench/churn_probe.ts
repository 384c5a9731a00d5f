/**
 * New sessions and new remote addresses per second through one relay, with its final counters: the
 * bench's churn runs (session_churn.c) alone, to see where a slow one spends or loses.
 * Run as root: `npm run profile:churn -w test -- --relay bun --transport bindsrc --mode remote [--seconds 2] [--family 4]`
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { ADDRESSES as A, compileC, createTestbed, requirePrivileges, withFdLimit } from "@anysrc/testbed";
import { RELAY_CHOICE_OPTIONS, relayArgv } from "./relay_argv.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    ...RELAY_CHOICE_OPTIONS,
    mode: { type: "string", default: "remote" },
    seconds: { type: "string", default: "2" },
    family: { type: "string", default: "4" },
  },
});
if (!requirePrivileges("churn probe")) process.exit(0);
const bin = compileC(["udp_echo", "session_churn", "tproxy_relay"]);
const bed = createTestbed();
try {
  const server = values.family === "6" ? A.server6 : A.server4;
  await bed.spawn(bed.server, [bin.udp_echo!, server, "7000"]).waitFor((l) => l.ready === true);
  bed.redirectServerPorts(40000, 20000, 7000);
  const relay = bed.spawn(bed.router, withFdLimit(20_000, relayArgv(values.relay, values.transport, values.cli, bin.tproxy_relay!)));
  await relay.waitFor((l) => l.event === "listening", 30_000);
  bed.enableTproxy(15000);
  const port = values.mode === "client" ? "7000" : "40000";
  const load = bed.spawn(bed.client, [bin.session_churn!, server, port, "64", values.seconds, "64", values.mode, "8000"]);
  console.log(JSON.stringify(await load.waitFor((l) => typeof l.completed === "number", 60_000)));
  await relay.stop();
  console.log(JSON.stringify(relay.lines.find((l) => l.event === "final")));
} finally {
  await bed.destroy();
}
