/**
 * The `anysrc` command: dispatches subcommands; maps errors to exit codes (2 usage, 1 bad input).
 * Started by bin/anysrc under Bun or Deno.
 * @module
 */
import { failureOf } from "./cli/failure.ts";
import { UsageError } from "./cli/usage_error.ts";
import { commandArgs, envVar, exitProcess, writeStderr, writeStdout } from "./host.ts";

export const MAIN_USAGE = `Usage: anysrc [--runtime bun|deno|node] <command> [options]

UDP from any source address, from TypeScript, on Bun and Deno.

Commands:
  packet build    build an IPv4/IPv6 + UDP packet (and fragments) as hex
  packet decode   describe a hex packet layer by layer as JSON
  send            emit datagrams with a spoofed source through raw, bindsrc, tun or packet
  tproxy          transparent UDP relay behind an nft TPROXY rule
  forward         replicate datagrams to receivers keeping the sender's address
  rules           install, remove or print the nft TPROXY rules and policy routing tproxy needs
  bench           raw vs bindsrc vs tun, Bun vs Deno, against C baselines (needs root)

Options:
  --runtime bun|deno|node  runtime to run under (default bun, or ANYSRC_RUNTIME; node: ≥ 26, node:ffi)
  -h, --help           this help; "anysrc <command> --help" for a command's options`;

type Command = { readonly usage: string; readonly run: (args: string[]) => Promise<number | void> | number | void };

const print = (text: string): void => {
  writeStdout(text.endsWith("\n") ? text : `${text}\n`);
};

// Each command's module is loaded only when it runs: a relay should not carry the benchmark's
// child-process and file-system modules (on Deno, polyfills worth MiBs of resident memory).
const COMMANDS: Record<string, () => Promise<Command>> = {
  packet: async () => ({
    usage: (await import("./cli/packet_command.ts")).PACKET_USAGE,
    run: () => {
      throw new UsageError("packet", "expected a subcommand: build or decode");
    },
  }),
  "packet build": async () => {
    const m = await import("./cli/packet_command.ts");
    return { usage: m.BUILD_USAGE, run: (args) => print(m.packetBuild(args).join("\n")) };
  },
  "packet decode": async () => {
    const m = await import("./cli/packet_command.ts");
    return { usage: m.DECODE_USAGE, run: (args) => print(m.packetDecode(args)) };
  },
  tproxy: async () => {
    const m = await import("./cli/tproxy_command.ts");
    return { usage: m.TPROXY_USAGE, run: m.tproxyCommand };
  },
  forward: async () => {
    const m = await import("./cli/forward_command.ts");
    return { usage: m.FORWARD_USAGE, run: m.forwardCommand };
  },
  bench: loadBench,
  rules: async () => {
    const m = await import("./cli/rules_command.ts");
    return { usage: m.RULES_USAGE, run: (args) => m.rulesCommand(args, print) };
  },
  send: async () => {
    const m = await import("./cli/send_command.ts");
    return { usage: m.SEND_USAGE, run: (args) => m.sendCommand(args, envVar("ANYSRC_RUNTIME") ?? "bun", print) };
  },
};

/** What `@anysrc/bench` exports to the CLI. */
type BenchModule = { readonly BENCH_USAGE: string; readonly benchCommand: (args: string[]) => Promise<number> };

// The bench lives in @anysrc/bench (apps/bench), with the testbed and the C baselines it drives: an
// installed or compiled relay does not carry them. The specifier is a variable so that neither the
// type checker nor `bun build --compile` pulls the bench in.
const BENCH_PACKAGE = "@anysrc/bench";

async function loadBench(): Promise<Command> {
  let m: BenchModule;
  try {
    m = (await import(BENCH_PACKAGE)) as BenchModule;
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    const usage = "Usage: anysrc bench [options] (from a clone: git clone …; npm ci; apps/relay/bin/anysrc bench)";
    return {
      usage,
      run: () => {
        throw new UsageError(
          "bench",
          `the benchmark is not part of this install (${BENCH_PACKAGE}: ${why}); run it from a clone of the repository, where apps/bench has the testbed and the C baselines`,
        );
      },
    };
  }
  return { usage: m.BENCH_USAGE, run: m.benchCommand };
}

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
    writeStderr(`anysrc: unknown command "${argv[0]}"\n\n${MAIN_USAGE}\n`);
    return 2;
  }
  const command = await COMMANDS[picked.name]!();
  if (picked.args.includes("--help") || picked.args.includes("-h")) {
    print(command.usage);
    return 0;
  }
  try {
    return (await command.run(picked.args)) ?? 0;
  } catch (e) {
    const f = failureOf(picked.name, command.usage, e);
    writeStderr(f.message);
    if (f.internal && envVar("ANYSRC_DEBUG")) writeStderr(`${e instanceof Error ? e.stack : ""}\n`);
    return f.status;
  }
}

if (import.meta.main) {
  // Explicit exit: a relay's idle poller and timers would otherwise outlive the final counters.
  exitProcess(await main(commandArgs()));
}
