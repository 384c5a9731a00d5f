/**
 * Command-line errors: a bad flag or flag value exits 2 and prints the command's usage; bad input
 * (a packet, a file) exits 1 with one line.
 * @module
 */
import { AddressError, parseSocketAddress, type SocketAddress } from "@anysrc/core";

/**
 * A flag, flag value or argument the command cannot accept.
 * @example throw new UsageError("packet build", "--ttl must be 0-255, got 300");
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.command = command;
  }
}

/**
 * A socket address flag value; a missing value is an error ("--src is required").
 * @example addressFlag("send", "--src", "198.19.2.2:7000")
 */
export function addressFlag(command: string, flag: string, text: string | undefined): SocketAddress {
  if (text === undefined) throw new UsageError(command, `${flag} is required`);
  try {
    return parseSocketAddress(text);
  } catch (e) {
    if (e instanceof AddressError) throw new UsageError(command, `${flag}: ${e.message}`);
    throw e;
  }
}

/**
 * Parse an integer flag value within bounds.
 * @example intFlag("packet build", "--ttl", "64", 0, 255) // 64
 */
export function intFlag(command: string, flag: string, text: string | undefined, min: number, max: number, expected?: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(text)) throw new UsageError(command, `${flag} must be ${expected ?? "an integer"}, got "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(command, `${flag} must be ${expected ?? `${min}-${max}`}, got ${text}`);
  return n;
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 };

/**
 * Parse a byte-count flag value within bounds: an integer, optionally with a binary unit (K, M, G).
 * @example byteSizeFlag("tproxy", "--socket-buffer", "8M", 4096, 1 << 30) // 8388608
 */
export function byteSizeFlag(command: string, flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(0|[1-9][0-9]*)([kKmMgG]?)(i?B)?$/.exec(text);
  if (!m) throw new UsageError(command, `${flag} must be a byte count like 8388608 or 8M, got "${text}"`);
  const n = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  if (n < min || n > max) throw new UsageError(command, `${flag} must be ${min}-${max} bytes, got ${text}`);
  return n;
}
