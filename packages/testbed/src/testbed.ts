/**
 * The namespace testbed: client ⇄ router ⇄ server, each in its own network namespace made for this
 * run (names carry the pid), addresses only in 198.18.0.0/15 and 2001:db8::/32. The router can
 * divert client UDP to a local port with nft TPROXY, and always drops UDP forwarded between the
 * client and server links, so a relay that is not listening cannot look like a perfect one. (Packets a
 * TUN device injects in the router are forwarded normally.) `destroy()` removes everything.
 *
 * ```
 *  client 198.18.1.2 ─ c0 ══ rc ─ router 198.18.1.1 │ 198.19.2.1 ─ rs ══ s0 ─ server 198.19.2.2
 *         2001:db8:1::2                2001:db8:1::1 │ 2001:db8:2::1           2001:db8:2::2
 * ```
 * @module
 */
import { execFileSync } from "node:child_process";
import process from "node:process";
import { type JsonChild, spawnJson } from "./child.ts";

/** The fixed addresses of the testbed (without ports). */
export const ADDRESSES = {
  client4: "198.18.1.2",
  client6: "2001:db8:1::2",
  routerClientSide4: "198.18.1.1",
  routerClientSide6: "2001:db8:1::1",
  routerServerSide4: "198.19.2.1",
  routerServerSide6: "2001:db8:2::1",
  server4: "198.19.2.2",
  server6: "2001:db8:2::2",
  /** Behind the server ({@link Testbed.addFarHost}). */
  far4: "198.19.3.2",
  far6: "2001:db8:3::2",
  serverFarSide4: "198.19.3.1",
  serverFarSide6: "2001:db8:3::1",
} as const;

/** A live testbed. */
export interface Testbed {
  readonly client: string;
  readonly router: string;
  readonly server: string;
  /** Router-side veth names toward the client and the server. */
  readonly routerClientLink: string;
  readonly routerServerLink: string;
  /** Run a command in a namespace and return its stdout; throws with stderr on failure. */
  run(ns: string, argv: readonly string[], input?: string): string;
  /** Start a JSON-lines process in a namespace (ended by `destroy` if still running). */
  spawn(ns: string, argv: readonly string[], env?: Record<string, string>): JsonChild;
  /** Divert UDP arriving from the client to local port `port` (IPv4 and IPv6) with nft TPROXY. */
  enableTproxy(port: number): void;
  /** Remove the TPROXY rules again (the forward drop stays). */
  disableTproxy(): void;
  /**
   * The harness's own ceiling: with `true` the router forwards UDP between the client and server
   * links in its kernel (the drop rule lifted; call `disableTproxy` too, or TPROXY still diverts);
   * `false` puts the drop back.
   */
  forwardUdp(on: boolean): void;
  /**
   * The server answers on every port of [from, from + count) through whatever listens on `to`: an nft
   * redirect in the server namespace, whose conntrack restores the original port on the reply. For
   * runs that need a new remote address per datagram.
   */
  redirectServerPorts(from: number, count: number, to: number): void;
  /**
   * GRO on (or off) on all four veth ends (`ethtool -K … gro on`): veth then runs NAPI and the
   * kernel coalesces a flow's datagrams for sockets that asked for UDP_GRO. Off by default, as veth is.
   */
  setGro(on: boolean): void;
  /**
   * A fourth namespace behind the server, which then routes for it: client ⇄ router ⇄ server ⇄ far.
   * The server is then a middle hop of every path to `far4`/`far6`, whose link MTU a test can lower
   * (`serverFarLink` in the server namespace, `f0` in far's) to make it send ICMP "fragmentation
   * needed" / "packet too big". Removed with the testbed.
   */
  addFarHost(): { readonly ns: string; readonly serverFarLink: string };
  /** Set the MTU of all four veth ends (the whole path client ⇄ router ⇄ server), e.g. to shrink it under a running relay. */
  setPathMtu(mtu: number): void;
  /** End spawned processes by PID and delete the namespaces (and so their links). Idempotent. */
  destroy(): Promise<void>;
}

let counter = 0;
const live = new Set<Testbed>();

function sh(argv: readonly string[], input?: string): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${argv.join(" ")} failed: ${err.stderr?.trim() || err.message}`);
  }
}

/**
 * Build the three namespaces, links, addresses, routes and the router's base nft table.
 * @example const bed = createTestbed(); try { … } finally { await bed.destroy(); }
 */
/**
 * Build the three namespaces. `diversion: false` leaves out the router's policy routing (marked
 * packets delivered locally), for tests that install their own (`anysrc rules`).
 */
export function createTestbed(o: { readonly diversion?: boolean } = {}): Testbed {
  const id = `as${process.pid}x${counter++}`;
  const client = `${id}c`;
  const router = `${id}r`;
  const server = `${id}s`;
  const rc = `${id}rc`.slice(-15);
  const rs = `${id}rs`.slice(-15);
  const children: JsonChild[] = [];
  const created: string[] = [];
  let destroyed = false;
  const inNs = (ns: string, argv: readonly string[], input?: string) => sh(["ip", "netns", "exec", ns, ...argv], input);
  // UDP between the client and server links is dropped, so a relay that is not listening cannot look like a perfect one.
  const forwardDrop = () => `
table inet anysrc_base {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${rc}" oifname "${rs}" meta l4proto udp drop
    iifname "${rs}" oifname "${rc}" meta l4proto udp drop
  }
}
`;

  const bed: Testbed = {
    client,
    router,
    server,
    routerClientLink: rc,
    routerServerLink: rs,
    run: inNs,
    spawn(ns, argv, env) {
      const child = spawnJson(["ip", "netns", "exec", ns, ...argv], env);
      children.push(child);
      return child;
    },
    enableTproxy(port) {
      bed.disableTproxy();
      inNs(
        router,
        ["nft", "-f", "-"],
        `
table inet anysrc_tproxy {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    iifname "${rc}" meta nfproto ipv4 meta l4proto udp tproxy ip to :${port} meta mark set 1 accept
    iifname "${rc}" meta nfproto ipv6 meta l4proto udp tproxy ip6 to :${port} meta mark set 1 accept
  }
}
`,
      );
    },
    setGro(on) {
      for (const [ns, link] of [[client, "c0"], [router, rc], [router, rs], [server, "s0"]] as const) {
        inNs(ns, ["ethtool", "-K", link, "gro", on ? "on" : "off"]);
      }
    },
    addFarHost() {
      const far = `${id}f`;
      const sf = `${id}sf`.slice(-15);
      const A = ADDRESSES;
      sh(["ip", "netns", "add", far]);
      created.push(far);
      inNs(far, ["ip", "link", "set", "lo", "up"]);
      sh(["ip", "link", "add", sf, "netns", server, "type", "veth", "peer", "name", "f0", "netns", far]);
      const steps: [string, string[]][] = [
        [far, ["ip", "addr", "add", `${A.far4}/24`, "dev", "f0"]],
        [far, ["ip", "-6", "addr", "add", `${A.far6}/64`, "dev", "f0", "nodad"]],
        [far, ["ip", "link", "set", "f0", "up"]],
        [far, ["ip", "route", "add", "default", "via", A.serverFarSide4]],
        [far, ["ip", "-6", "route", "add", "default", "via", A.serverFarSide6]],
        [server, ["ip", "addr", "add", `${A.serverFarSide4}/24`, "dev", sf]],
        [server, ["ip", "-6", "addr", "add", `${A.serverFarSide6}/64`, "dev", sf, "nodad"]],
        [server, ["ip", "link", "set", sf, "up"]],
        [server, ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]],
        [router, ["ip", "route", "add", "198.19.3.0/24", "via", A.server4]],
        [router, ["ip", "-6", "route", "add", "2001:db8:3::/64", "via", A.server6]],
      ];
      for (const [ns, argv] of steps) inNs(ns, argv);
      return { ns: far, serverFarLink: sf };
    },
    setPathMtu(mtu) {
      for (const [ns, link] of [[client, "c0"], [router, rc], [router, rs], [server, "s0"]] as const) {
        inNs(ns, ["ip", "link", "set", "dev", link, "mtu", String(mtu)]);
      }
    },
    forwardUdp(on) {
      inNs(router, ["nft", "flush", "chain", "inet", "anysrc_base", "forward"]);
      if (!on) inNs(router, ["nft", "-f", "-"], forwardDrop());
    },
    redirectServerPorts(from, count, to) {
      inNs(
        server,
        ["nft", "-f", "-"],
        `
table inet anysrc_ports {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    udp dport ${from}-${from + count - 1} redirect to :${to}
  }
}
`,
      );
    },
    disableTproxy() {
      try {
        inNs(router, ["nft", "delete", "table", "inet", "anysrc_tproxy"]);
      } catch {
        // Not there yet.
      }
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(bed);
      await Promise.all(children.map((c) => c.stop()));
      for (const ns of created.reverse()) {
        try {
          sh(["ip", "netns", "del", ns]);
        } catch {
          // Already gone.
        }
      }
    },
  };
  live.add(bed);

  try {
    for (const ns of [client, router, server]) {
      sh(["ip", "netns", "add", ns]);
      created.push(ns);
      inNs(ns, ["ip", "link", "set", "lo", "up"]);
    }
    sh(["ip", "link", "add", rc, "netns", router, "type", "veth", "peer", "name", "c0", "netns", client]);
    sh(["ip", "link", "add", rs, "netns", router, "type", "veth", "peer", "name", "s0", "netns", server]);
    const A = ADDRESSES;
    const setup: [string, string[]][] = [
      [client, ["ip", "addr", "add", `${A.client4}/24`, "dev", "c0"]],
      [client, ["ip", "-6", "addr", "add", `${A.client6}/64`, "dev", "c0", "nodad"]],
      [client, ["ip", "link", "set", "c0", "up"]],
      [client, ["ip", "route", "add", "default", "via", A.routerClientSide4]],
      [client, ["ip", "-6", "route", "add", "default", "via", A.routerClientSide6]],
      [server, ["ip", "addr", "add", `${A.server4}/24`, "dev", "s0"]],
      [server, ["ip", "-6", "addr", "add", `${A.server6}/64`, "dev", "s0", "nodad"]],
      [server, ["ip", "link", "set", "s0", "up"]],
      [server, ["ip", "route", "add", "default", "via", A.routerServerSide4]],
      [server, ["ip", "-6", "route", "add", "default", "via", A.routerServerSide6]],
      [router, ["ip", "addr", "add", `${A.routerClientSide4}/24`, "dev", rc]],
      [router, ["ip", "-6", "addr", "add", `${A.routerClientSide6}/64`, "dev", rc, "nodad"]],
      [router, ["ip", "addr", "add", `${A.routerServerSide4}/24`, "dev", rs]],
      [router, ["ip", "-6", "addr", "add", `${A.routerServerSide6}/64`, "dev", rs, "nodad"]],
      [router, ["ip", "link", "set", rc, "up"]],
      [router, ["ip", "link", "set", rs, "up"]],
      [router, [
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
      ]],
      // The tun transport's IPv4 fragments are reassembled where they are injected (nf_defrag, loaded
      // for TPROXY), and the reassembly's per-source distance heuristic counts the server's own
      // incoming fragments, which share the spoofed source: under load it drops a few. Off, as the
      // README asks of a tun deployment (the raw transport sets IP_NODEFRAG instead).
      [router, ["sysctl", "-qw", "net.ipv4.ipfrag_max_dist=0"]],
    ];
    // TPROXY delivery: marked packets are routed to the local stack.
    if (o.diversion !== false) {
      setup.push(
        [router, ["ip", "rule", "add", "fwmark", "1", "lookup", "100"]],
        [router, ["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"]],
        [router, ["ip", "-6", "rule", "add", "fwmark", "1", "lookup", "100"]],
        [router, ["ip", "-6", "route", "add", "local", "::/0", "dev", "lo", "table", "100"]],
      );
    }
    for (const [ns, argv] of setup) inNs(ns, argv);
    // Static neighbour entries: the first datagrams of a test must not wait for (or be dropped by)
    // ARP / neighbour discovery, whose queue holds only a few packets per unresolved address.
    const mac = (ns: string, link: string) => (JSON.parse(inNs(ns, ["ip", "-j", "link", "show", link])) as { address: string }[])[0]!.address;
    const pairs: [string, string, string, string, string][] = [
      [client, "c0", A.routerClientSide4, A.routerClientSide6, mac(router, rc)],
      [router, rc, A.client4, A.client6, mac(client, "c0")],
      [server, "s0", A.routerServerSide4, A.routerServerSide6, mac(router, rs)],
      [router, rs, A.server4, A.server6, mac(server, "s0")],
    ];
    for (const [ns, link, v4, v6, lladdr] of pairs) {
      inNs(ns, ["ip", "neigh", "replace", v4, "lladdr", lladdr, "dev", link, "nud", "permanent"]);
      inNs(ns, ["ip", "-6", "neigh", "replace", v6, "lladdr", lladdr, "dev", link, "nud", "permanent"]);
    }
    inNs(router, ["nft", "-f", "-"], forwardDrop());
  } catch (e) {
    void bed.destroy();
    throw e;
  }
  return bed;
}

/** Remove every testbed still alive (for exit handlers). */
export async function destroyAllTestbeds(): Promise<void> {
  await Promise.all([...live].map((b) => b.destroy()));
}
