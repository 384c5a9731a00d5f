/**
 * Hex text ⇄ bytes, for the CLI and test vectors.
 * @module
 */
import { WireError } from "./errors.ts";

/**
 * Parse hex digits (whitespace and a leading `0x` ignored) into bytes.
 * @example parseHex("45 00") // Uint8Array [0x45, 0x00]
 * @throws {WireError} odd number of digits or a non-hex character.
 */
export function parseHex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "").replace(/^0x/i, "");
  const bad = clean.search(/[^0-9a-fA-F]/);
  if (bad >= 0) throw new WireError("bad-hex", `invalid hex character "${clean[bad]}" at position ${bad}`);
  if (clean.length % 2 !== 0) throw new WireError("bad-hex", `odd-length hex: ${clean.length} digits`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Bytes as lowercase hex without separators.
 * @example toHex(new Uint8Array([0x45, 0])) // "4500"
 */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += (bytes[i]! < 16 ? "0" : "") + bytes[i]!.toString(16);
  return s;
}
