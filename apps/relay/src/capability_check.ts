/**
 * What each command needs from the kernel's privilege model, checked before anything is opened.
 * raw: CAP_NET_RAW (an IPPROTO_RAW socket). bindsrc and the tproxy listeners: IP_TRANSPARENT, which
 * the kernel grants with CAP_NET_ADMIN (or CAP_NET_RAW). tun: CAP_NET_ADMIN (TUNSETIFF, MTU, link
 * up). packet: CAP_NET_RAW (AF_PACKET, and IPPROTO_RAW for next hops not yet resolved). --mark: CAP_NET_ADMIN (SO_MARK). bindsrc without a raw fallback also CAP_NET_BIND_SERVICE, while
 * ports below 1024 are privileged: a reply from a DNS or NTP server, a syslog sender's copy, comes
 * from such a port, and IP_TRANSPARENT does not lift the rule.
 * @module
 */
import { CapabilityError, type CapabilityName } from "@anysrc/core";
import type { TransportKind } from "./transport_choice.ts";
import { effectiveCapabilities, hasCapability } from "@anysrc/sys";

/** What a run needs. */
export interface PrivilegeNeeds {
  readonly transports: readonly TransportKind[];
  /** TPROXY listeners (IP_TRANSPARENT). */
  readonly transparentListeners?: boolean;
  readonly mark?: boolean;
  /** bindsrc must bind sources below the privileged-port limit itself (no raw fallback to take them). */
  readonly lowPortSources?: boolean;
}

/** One requirement: any of `anyOf` will do; the first is the one named when all are missing. */
interface Requirement {
  readonly anyOf: readonly CapabilityName[];
  readonly neededFor: string;
}

/** The requirements of a run, in the order they are checked. */
export function requirementsOf(n: PrivilegeNeeds): Requirement[] {
  const out: Requirement[] = [];
  for (const t of n.transports) {
    if (t === "raw") out.push({ anyOf: ["CAP_NET_RAW"], neededFor: "--transport raw (an IPPROTO_RAW socket)" });
    if (t === "bindsrc") {
      out.push({ anyOf: ["CAP_NET_ADMIN", "CAP_NET_RAW"], neededFor: "--transport bindsrc (IP_TRANSPARENT sockets bound to foreign addresses)" });
    }
    if (t === "tun") out.push({ anyOf: ["CAP_NET_ADMIN"], neededFor: "--transport tun (creating and configuring a TUN device)" });
    if (t === "packet") out.push({ anyOf: ["CAP_NET_RAW"], neededFor: "--transport packet (an AF_PACKET socket, and a raw one for unresolved next hops)" });
  }
  if (n.transparentListeners) out.push({ anyOf: ["CAP_NET_ADMIN", "CAP_NET_RAW"], neededFor: "the TPROXY listeners (IP_TRANSPARENT)" });
  if (n.mark) out.push({ anyOf: ["CAP_NET_ADMIN"], neededFor: "--mark (SO_MARK)" });
  if (n.lowPortSources) {
    out.push({
      anyOf: ["CAP_NET_BIND_SERVICE"],
      neededFor:
        "--transport bindsrc replying from ports below 1024 (DNS, NTP, syslog: IP_TRANSPARENT does not lift the privileged-port rule; or add --fallback raw)",
    });
  }
  return out;
}

/**
 * Throw a {@link CapabilityError} naming the first missing capability.
 * @example requirePrivileges({ transports: ["raw"], transparentListeners: true, mark: true });
 */
export function requirePrivileges(n: PrivilegeNeeds, mask = effectiveCapabilities()): void {
  for (const r of requirementsOf(n)) {
    if (!r.anyOf.some((cap) => hasCapability(cap, mask))) throw new CapabilityError(r.anyOf[0]!, r.neededFor);
  }
}
