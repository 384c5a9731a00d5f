/**
 * The `anysrc` command: dispatches subcommands; maps errors to exit codes (2 usage, 1 bad input).
 * Started by bin/anysrc under Bun or Deno.
 * @module
 */
import process from "node:process";
import { BUILD_USAGE, DECODE_USAGE, PACKET_USAGE, packetBuild, packetDecode } from "./cli/packet_command.ts";
import { BENCH_USAGE, benchCommand } from "./cli/bench_command.ts";
import { FORWARD_USAGE, forwardCommand } from "./cli/forward_command.ts";
import { SEND_USAGE, sendCommand } from "./cli/send_command.ts";
import { TPROXY_USAGE, tproxyCommand } from "./cli/tproxy_command.ts";
import { failureOf } from "./cli/failure.ts";
import { UsageError } from "./cli/usage_error.ts";

export const MAIN_USAGE = `Usage: anysrc [--runtime bun|deno] <command> [options]

UDP from any source address, from TypeScript, on Bun and Deno.

Commands:
  packet build    build an IPv4/IPv6 + UDP packet (and fragments) as hex
  packet decode   describe a hex packet layer by layer as JSON
  send            emit datagrams with a spoofed source through raw, bindsrc or tun
  tproxy          transparent UDP relay behind an nft TPROXY rule
  forward         replicate datagrams to receivers keeping the sender's address
  bench           raw vs bindsrc vs tun, Bun vs Deno, against C baselines (needs root)

Options:
  --runtime bun|deno   runtime to run under (default bun, or ANYSRC_RUNTIME)
  -h, --help           this help; "anysrc <command> --help" for a command's options`;

type Command = { readonly usage: string; readonly run: (args: string[]) => Promise<number | void> | number | void };

const print = (text: string): void => {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
};

const COMMANDS: Record<string, Command> = {
  packet: { usage: PACKET_USAGE, run: () => { throw new UsageError("packet", "expected a subcommand: build or decode"); } },
  "packet build": { usage: BUILD_USAGE, run: (args) => print(packetBuild(args).join("\n")) },
  "packet decode": { usage: DECODE_USAGE, run: (args) => print(packetDecode(args)) },
  tproxy: { usage: TPROXY_USAGE, run: (args) => tproxyCommand(args) },
  forward: { usage: FORWARD_USAGE, run: (args) => forwardCommand(args) },
  bench: { usage: BENCH_USAGE, run: (args) => benchCommand(args) },
  send: { usage: SEND_USAGE, run: (args) => sendCommand(args, process.env.ANYSRC_RUNTIME ?? "bun", print) },
};

function pickCommand(argv: string[]): { name: string; args: string[] } | undefined {
  for (let words = 2; words >= 1; words--) {
    const name = argv.slice(0, words).join(" ");
    if (argv.length >= words && COMMANDS[name]) return { name, args: argv.slice(words) };
  }
  return undefined;
}

/** Run the CLI with the arguments after the script; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    print(MAIN_USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  const picked = pickCommand(argv);
  if (!picked) {
    process.stderr.write(`anysrc: unknown command "${argv[0]}"\n\n${MAIN_USAGE}\n`);
    return 2;
  }
  const command = COMMANDS[picked.name]!;
  if (picked.args.includes("--help") || picked.args.includes("-h")) {
    print(command.usage);
    return 0;
  }
  try {
    return (await command.run(picked.args)) ?? 0;
  } catch (e) {
    const f = failureOf(picked.name, command.usage, e);
    process.stderr.write(f.message);
    if (f.internal && process.env.ANYSRC_DEBUG) process.stderr.write(`${e instanceof Error ? e.stack : ""}\n`);
    return f.status;
  }
}

if (import.meta.main) {
  // Explicit exit: a relay's poller Worker and timers would otherwise outlive the final counters.
  process.exit(await main(process.argv.slice(2)));
}
