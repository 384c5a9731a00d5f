/**
 * Install and remove the TPROXY rules of {@link nftRuleset} and {@link ipBatch} on this host, through
 * `nft` and `ip` (iproute2), idempotently: `up` twice leaves one copy, `down` leaves nothing of ours.
 * @module
 */
import { type ProgramResult, runProgram } from "../host.ts";
import { ipBatch, NFT_TABLE, nftRuleset, type RulesOptions } from "./tproxy_rules.ts";

/** A host tool (nft, ip) refused a change; `message` quotes its command line and what it said. */
export class ProgramError extends Error {
  override readonly name = "ProgramError";
}

async function must(argv: string[], input?: string): Promise<ProgramResult> {
  const r = await runProgram(argv, input);
  if (r.status !== 0) {
    const hint = r.status === 127 ? ` (is ${argv[0]} installed? apt-get install ${argv[0] === "nft" ? "nftables" : "iproute2"})` : "";
    throw new ProgramError(`${argv.join(" ")}: ${r.stderr.trim() || `exit status ${r.status}`}${hint}`);
  }
  return r;
}

/** Delete every copy of our policy rule for `family` (a rule added twice exists twice). */
async function deleteRules(o: RulesOptions, family: 4 | 6): Promise<number> {
  let deleted = 0;
  for (; deleted < 64; deleted++) {
    const r = await runProgram(["ip", `-${family}`, "rule", "del", "fwmark", String(o.mark), "lookup", String(o.table)]);
    if (r.status !== 0) break;
  }
  return deleted;
}

/**
 * Install (or refresh) the rules: the nft table replaced in one transaction, one policy rule and
 * one local route per family.
 * @example await rulesUp({ port: 15000, iface: "eth1", mark: 1, table: 100, families: [4, 6], local: false, relayMark: 2 });
 */
export async function rulesUp(o: RulesOptions): Promise<void> {
  await must(["nft", "-f", "-"], nftRuleset(o));
  for (const f of o.families) {
    await deleteRules(o, f);
    for (const line of ipBatch(o, f)) await must(["ip", `-${f}`, ...line.split(" ")]);
  }
}

/**
 * Remove what {@link rulesUp} installed; what is already gone is no error. Returns what was there.
 * @example await rulesDown(options) // { table: true, rules: 2, routes: 2 }
 */
export async function rulesDown(o: RulesOptions): Promise<{ table: boolean; rules: number; routes: number }> {
  const table = (await runProgram(["nft", "list", "table", "inet", NFT_TABLE])).status === 0;
  if (table) await must(["nft", "delete", "table", "inet", NFT_TABLE]);
  let rules = 0;
  let routes = 0;
  for (const f of [4, 6] as const) {
    rules += await deleteRules(o, f);
    const r = await runProgram(["ip", `-${f}`, "route", "del", "local", f === 4 ? "0.0.0.0/0" : "::/0", "dev", "lo", "table", String(o.table)]);
    if (r.status === 0) routes++;
  }
  return { table, rules, routes };
}
