/**
 * `anysrc rules up|down|show`: the nft TPROXY table and the policy routing a relay needs, installed,
 * removed or printed.
 * @module
 */
import { parseArgs } from "node:util";
import { ipBatch, nftRuleset, type RulesOptions, rulesScript } from "../rules/tproxy_rules.ts";
import { rulesDown, rulesUp } from "../rules/apply_rules.ts";
import { intFlag, UsageError } from "./usage_error.ts";

export const RULES_USAGE = `Usage: anysrc rules up|down|show --port P --iface IFACE [--mark N] [--table N] [--families 4,6]
                         [--local] [--relay-mark N] [--format sh|nft|ip4|ip6]

  up             install (or refresh) the diversion: an nft table of its own (inet anysrc) that sends
                 UDP arriving on IFACE to port P (TPROXY) with mark N, except traffic for the host
                 itself (fib daddr type local, broadcast, multicast), and per family a policy rule
                 (fwmark N lookup TABLE) with a local route in TABLE; running it twice changes nothing
  down           remove all of it (what is already gone is no error)
  show           print it: --format sh (default) a shell script, nft a file for nft -f, ip4 / ip6 a
                 file for ip -4 -batch / ip -6 -batch (load them at boot)
  --port P       the relay's port (anysrc tproxy --port)
  --iface IFACE  the client-facing interface
  --mark N       mark of diverted packets (default 1)
  --table N      routing table of the local route (default 100)
  --families     4, 6 or 4,6 (default 4,6)
  --local        divert the host's own UDP too (an output chain), except the relay's own packets,
                 which carry --relay-mark (default 2: start the relay with --mark 2)

Needs CAP_NET_ADMIN, nft (nftables) and ip (iproute2).`;

const OPTIONS = {
  port: { type: "string" },
  iface: { type: "string" },
  mark: { type: "string" },
  table: { type: "string" },
  families: { type: "string" },
  local: { type: "boolean" },
  "relay-mark": { type: "string" },
  format: { type: "string" },
} as const;

/**
 * Read {@link RulesOptions} from flags (also `tproxy --rules`, which passes its own port and mark).
 * @example rulesOptions("rules", { port: "15000", iface: "eth1" })
 */
export function rulesOptions(cmd: string, v: Record<string, string | boolean | undefined>): RulesOptions {
  const port = intFlag(cmd, "--port", v.port as string | undefined, 1, 65535);
  if (port === undefined) throw new UsageError(cmd, "--port is required");
  const iface = v.iface;
  if (typeof iface !== "string" || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface)) {
    throw new UsageError(
      cmd,
      iface === undefined ? "--iface is required (the client-facing interface)" : `--iface must be an interface name, got "${String(iface)}"`,
    );
  }
  const familiesText = (v.families as string | undefined) ?? "4,6";
  const families = [...new Set(familiesText.split(","))].map((f) => {
    if (f !== "4" && f !== "6") throw new UsageError(cmd, `--families must be 4, 6 or 4,6, got "${familiesText}"`);
    return f === "4" ? 4 : 6;
  }) as (4 | 6)[];
  const mark = intFlag(cmd, "--mark", v.mark as string | undefined, 1, 0xffffffff) ?? 1;
  const relayMark = intFlag(cmd, "--relay-mark", v["relay-mark"] as string | undefined, 1, 0xffffffff) ?? 2;
  if (v.local === true && relayMark === mark) {
    throw new UsageError(cmd, `--relay-mark must differ from --mark (${mark}): the relay's own packets would be diverted back to it`);
  }
  return {
    port,
    iface,
    mark,
    relayMark,
    families,
    local: v.local === true,
    table: intFlag(cmd, "--table", v.table as string | undefined, 1, 0xfffffffe) ?? 100,
  };
}

/** Run `anysrc rules …`; `print` writes to stdout. Returns the exit status. */
export async function rulesCommand(args: string[], print: (text: string) => void): Promise<number> {
  const cmd = "rules";
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: OPTIONS });
  const action = positionals[0];
  if (positionals.length !== 1 || (action !== "up" && action !== "down" && action !== "show")) {
    throw new UsageError(cmd, `expected one of up, down, show${positionals.length ? `, got "${positionals.join(" ")}"` : ""}`);
  }
  const o = rulesOptions(cmd, values);
  if (action === "show") {
    const format = values.format ?? "sh";
    if (format === "sh") print(rulesScript(o, `anysrc rules show ${args.join(" ")}`));
    else if (format === "nft") print(nftRuleset(o));
    else if (format === "ip4" || format === "ip6") print(ipBatch(o, format === "ip4" ? 4 : 6).join("\n"));
    else throw new UsageError(cmd, `--format must be sh, nft, ip4 or ip6, got "${format}"`);
    return 0;
  }
  if (values.format !== undefined) throw new UsageError(cmd, "--format is for show");
  if (action === "up") {
    await rulesUp(o);
    print(JSON.stringify({ event: "rules-up", port: o.port, iface: o.iface, mark: o.mark, table: o.table, families: o.families, local: o.local }));
  } else {
    print(JSON.stringify({ event: "rules-down", ...(await rulesDown(o)) }));
  }
  return 0;
}
