/**
 * What a command that lives outside this package builds on — today `anysrc bench` in `@anysrc/bench`:
 * the transport names, the usage error that `main` turns into exit 2 with the command's usage, and
 * the process access (output, signals, exit) every part of the CLI goes through.
 * @module
 */
export { TRANSPORT_KINDS, type TransportKind } from "./transport_choice.ts";
export { UsageError } from "./cli/usage_error.ts";
export { exitProcess, onSignal, processId, writeStderr, writeStdout } from "./host.ts";
