/**
 * How a command's exception reaches its user: exit status and message. Kept apart from main.ts so it
 * can be checked without loading the FFI.
 * @module
 */
import { AddressError, CapabilityError, SystemError, TransportError, WireError } from "@anysrc/core";
import { UsageError } from "./usage_error.ts";
import { ProgramError } from "../rules/apply_rules.ts";

/**
 * What a command's exception means to its user: exit 2 and the usage for bad flags, exit 1 and one
 * line for bad input or a failed syscall, exit 1 flagged `internal` for anything else (a bug).
 * @example failureOf("packet decode", DECODE_USAGE, new WireError("truncated", "empty packet")) // { status: 1, message: "empty packet\n" }
 */
export function failureOf(command: string, usage: string, e: unknown): { status: 1 | 2; message: string; internal: boolean } {
  const parseArgsError = e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS");
  if (e instanceof UsageError || parseArgsError) return { status: 2, message: `anysrc ${command}: ${(e as Error).message}\n\n${usage}\n`, internal: false };
  if (e instanceof WireError || e instanceof AddressError || e instanceof TransportError || e instanceof SystemError) {
    return { status: 1, message: `${e.message}\n`, internal: false };
  }
  if (e instanceof ProgramError) return { status: 1, message: `anysrc ${command}: ${e.message}\n`, internal: false };
  if (e instanceof CapabilityError) return { status: 1, message: `anysrc ${command}: ${e.message}\n`, internal: false };
  return { status: 1, message: `anysrc ${command}: internal error: ${e instanceof Error ? e.message : String(e)}\n`, internal: true };
}
