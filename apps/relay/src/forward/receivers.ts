/**
 * Who gets a forwarded datagram: receivers written as `--to` values and as lines of a `--receivers`
 * file, in anysrc's syntax (`198.18.7.10:2055/10,ttl=4,plain`, `[2001:db8::7]:2055`) or samplicator's
 * (`198.18.7.10/2055/10,4`, lines `a.b.c.d/m.m.m.m: receivers`), parsed into plain records.
 * @module
 */
import { AddressError, type Cidr, formatSocketAddress, parseCidr, parseIp, parseSocketAddress, type SocketAddress, socketAddress } from "@anysrc/core";

/** One receiver as configured. */
export interface ReceiverSpec {
  readonly address: SocketAddress;
  /** It gets one datagram in `every` (a counter per receiver: the 1st, the (N+1)th, …). */
  readonly every: number;
  /** TTL / hop limit of its copies; the `--ttl` policy when absent. */
  readonly ttl?: number;
  /** Sent from the forwarder's own address, not the sender's. */
  readonly plain: boolean;
  /** Canonical text, e.g. `198.18.7.10:2055/10,ttl=4,plain`: its name in stats and metrics. */
  readonly name: string;
}

/** Receivers for senders inside `prefix`. */
export interface PrefixRule {
  readonly prefix: Cidr;
  readonly receivers: readonly ReceiverSpec[];
}

const integer = (text: string, what: string, min: number, max: number, whole: string): number => {
  if (!/^[0-9]{1,6}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new AddressError(`Cannot parse receiver "${whole}": ${what} must be ${min}-${max}, got "${text}"`);
  }
  return Number(text);
};

/**
 * Parse a receiver: `ADDR[/N][,ttl=T][,plain]` with ADDR `a.b.c.d:port` or `[v6]:port`, or
 * samplicator's `host/port[/N][,T]` (host an IP address). Throws AddressError quoting it.
 * @example parseReceiver("198.18.7.10:2055/10,ttl=4").every // 10
 */
export function parseReceiver(text: string): ReceiverSpec {
  const [main = "", ...options] = text.trim().split(",");
  let address: SocketAddress;
  let every = 1;
  let ttl: number | undefined;
  let plain = false;
  const ours = /^(\[[^\]]*\]:[0-9]+|[^/:[\]]+:[0-9]+)(?:\/([0-9]+))?$/.exec(main);
  const theirs = ours ? null : /^([^/[\]]+)\/([0-9]+)(?:\/([0-9]+))?$/.exec(main);
  if (ours) {
    address = parseSocketAddress(ours[1]!);
    if (ours[2] !== undefined) every = integer(ours[2], "the sampling rate N", 1, 1_000_000, text);
  } else if (theirs) {
    let ip: Uint8Array;
    try {
      ip = parseIp(theirs[1]!);
    } catch {
      throw new AddressError(`Cannot parse receiver "${text}": "${theirs[1]}" is not an IP address`);
    }
    address = socketAddress(ip, integer(theirs[2]!, "the port", 0, 65535, text));
    if (theirs[3] !== undefined) every = integer(theirs[3], "the sampling rate N", 1, 1_000_000, text);
  } else {
    throw new AddressError(
      `Cannot parse receiver "${text}": expected ADDR:PORT[/N] (e.g. 198.18.7.10:2055/10, [2001:db8::7]:2055) or samplicator's HOST/PORT[/N]`,
    );
  }
  if (address.port === 0) throw new AddressError(`Cannot parse receiver "${text}": port 0`);
  for (const o of options) {
    if (o === "plain") plain = true;
    else if (o.startsWith("ttl=")) ttl = integer(o.slice(4), "ttl", 1, 255, text);
    else if (theirs && /^[0-9]+$/.test(o)) ttl = integer(o, "ttl", 1, 255, text);
    else throw new AddressError(`Cannot parse receiver "${text}": unknown option "${o}" (ttl=T or plain)`);
  }
  const name = `${formatSocketAddress(address)}${every > 1 ? `/${every}` : ""}${ttl !== undefined ? `,ttl=${ttl}` : ""}${plain ? ",plain" : ""}`;
  return { address, every, ...(ttl !== undefined ? { ttl } : {}), plain, name };
}

/** Prefix length of a contiguous dotted netmask (`255.254.0.0` → 15), or -1. */
function maskLength(text: string): number {
  let ip: Uint8Array;
  try {
    ip = parseIp(text);
  } catch {
    return -1;
  }
  if (ip.length !== 4) return -1;
  const value = ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0;
  const length = Math.clz32(~value >>> 0);
  // Contiguous: the ones, then only zeros.
  return length === 32 || ((value << length) >>> 0) === 0 ? length : -1;
}

/**
 * A sender prefix: `198.18.0.0/15`, samplicator's `198.18.0.0/255.254.0.0`, `2001:db8::/32`, or a
 * bare address (one host).
 * @example parsePrefix("10.0.0.0/255.0.0.0").prefix // 8
 */
export function parsePrefix(text: string): Cidr {
  const slash = text.indexOf("/");
  const after = slash < 0 ? "" : text.slice(slash + 1);
  if (after.includes(".")) {
    const length = maskLength(after);
    if (length < 0) throw new AddressError(`Cannot parse network "${text}": "${after}" is not a contiguous netmask`);
    return parseCidr(`${text.slice(0, slash)}/${length}`);
  }
  return parseCidr(text);
}

/**
 * Parse a receivers file: lines `PREFIX: RECEIVER…` (receivers separated by spaces), `#` comments,
 * blank lines. A bad line throws AddressError naming `path` and the line number.
 * @example parseReceiversFile("198.18.0.0/15: 198.18.7.10:2055/10\n", "receivers.conf")[0].receivers.length // 1
 */
export function parseReceiversFile(text: string, path: string): PrefixRule[] {
  const rules: PrefixRule[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const at = (why: string) => new AddressError(`${path}:${n + 1}: ${why}`);
    // The separator is the first colon followed by a blank (IPv6 prefixes have colons of their own).
    const m = /^(\S+?):(?:\s+(.*))?$/.exec(line);
    if (!m) throw at(`expected "PREFIX: RECEIVER…", got "${line}"`);
    const receiverTexts = (m[2] ?? "").split(/\s+/).filter((t) => t !== "");
    if (receiverTexts.length === 0) throw at(`no receivers for ${m[1]}`);
    try {
      rules.push({ prefix: parsePrefix(m[1]!), receivers: receiverTexts.map(parseReceiver) });
    } catch (e) {
      if (e instanceof AddressError) throw at(e.message);
      throw e;
    }
  }
  return rules;
}
