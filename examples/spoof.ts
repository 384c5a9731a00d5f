/**
 * Send one UDP datagram that its receiver sees as coming from SRC, through the transport named.
 *   bun examples/spoof.ts raw 198.19.2.2:7000 198.18.1.2:9000
 *   deno run --allow-ffi examples/spoof.ts bindsrc '[2001:db8:2::2]:7000' '[2001:db8:1::2]:9000'
 *   node --experimental-ffi examples/spoof.ts tun 198.19.2.2:7000 198.18.1.2:9000 anysrc0
 *   bun examples/spoof.ts packet 198.19.2.2:7000 198.18.1.2:9000
 * Needs CAP_NET_RAW (raw, packet), CAP_NET_ADMIN (bindsrc: IP_TRANSPARENT; tun: the device).
 * @module
 */
import process from "node:process";
import { parseSocketAddress, type Transport } from "@anysrc/core";
import { createRawTransport } from "@anysrc/transport-raw";
import { createBindSourceTransport } from "@anysrc/transport-bindsrc";
import { createTunTransport } from "@anysrc/transport-tun";
import { createPacketTransport } from "@anysrc/transport-packet";

const [kind = "raw", src = "198.19.2.2:7000", dst = "198.18.1.2:9000", device = "anysrc0"] = process.argv.slice(2);
const transport: Transport = kind === "raw"
  ? createRawTransport()
  : kind === "bindsrc"
  ? createBindSourceTransport()
  : kind === "packet"
  ? createPacketTransport()
  : createTunTransport({ name: device });
const from = parseSocketAddress(src);
// The payload names the port it claims to come from, so the receiver can check it.
transport.send({ src: from, dst: parseSocketAddress(dst), payload: new TextEncoder().encode(`${from.port}: hello`) });
await transport.close(); // returns once the datagram is with the kernel
console.log(JSON.stringify({ kind, sent: transport.stats.sent, dropped: transport.stats.dropped }));
