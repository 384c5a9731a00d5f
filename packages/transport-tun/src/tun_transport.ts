/**
 * The TUN backend: whole IP packets written to a TUN device and routed by the kernel like any
 * forwarded packet (forwarding on, rp_filter off on the device; TTL drops by one). Every checksum is
 * ours, and so is fragmentation above the device MTU. With offloads (IFF_VNET_HDR + TUNSETOFFLOAD),
 * a run of same-size datagrams between one pair of addresses is written as one GSO super-packet that
 * the kernel segments and checksums: one write and one trip through the stack instead of one each.
 * It also receives: packets the kernel routes into the device come back as parsed datagrams
 * (fragments reassembled, super-packets cut), so a TUN can intercept.
 * @module
 */
import {
  ALL_CHECKSUMS,
  createPacketFields,
  createTransportStats,
  type Datagram,
  errnoName,
  SystemError,
  type Transport,
  TransportError,
  VIRTIO_NET_HDR_LENGTH,
} from "@anysrc/core";
import { closeFd, createQueuedTransport, getPoller, type Interest, linux, openTun, Ready, setInterfaceMtu, setInterfaceUp, setTunOffload } from "@anysrc/sys";
import { createTunEmit, type TunLane } from "./tun_emit.ts";
import { createTunReceiver, type TunReceiveStats } from "./tun_receive.ts";

export type { TunReceiveStats } from "./tun_receive.ts";

/** Options of the TUN transport. */
export interface TunTransportOptions {
  /** Device name; created if absent (non-persistent: it disappears when closed). */
  readonly name: string;
  /** Device MTU to set, and the size above which datagrams are fragmented; default 1500. */
  readonly mtu?: number;
  /** Bring the device up; default true. */
  readonly up?: boolean;
  readonly multiQueue?: boolean;
  /** TTL / hop limit written in packets (the kernel decrements it once when forwarding); default 64. */
  readonly ttl?: number;
  /** Datagrams held while the device is not writable; default 4096. */
  readonly queueLimit?: number;
  readonly closeTimeoutMs?: number;
  /**
   * Virtio-net offloads: GSO super-packets out, partial checksums and super-packets in. Default
   * true; used where the kernel accepts them (TUN_F_USO4/6, Linux ≥ 6.2), else plain packets.
   */
  readonly offload?: boolean;
  /**
   * TUN_F_* flags asked of TUNSETOFFLOAD; default TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6. A kernel that
   * does not know one of them refuses the lot (EINVAL), and the device writes plain packets.
   */
  readonly offloadFlags?: number;
  /** Told once when the kernel refuses offloads and the device goes back to plain packets. */
  readonly onOffloadFallback?: (reason: string) => void;
}

/** The TUN transport: the contract, plus receiving. */
export interface TunTransport extends Transport {
  readonly kind: "tun";
  readonly name: string;
  readonly mtu: number;
  readonly received: Readonly<TunReceiveStats>;
  /** GSO super-packets are being written (offload asked for and accepted so far). */
  readonly offloading: boolean;
  /** UDP datagrams routed into the device, until the transport closes. */
  receive(): AsyncIterableIterator<Datagram>;
}

/**
 * Create (or attach to) a TUN device and use it as a transport. Needs CAP_NET_ADMIN.
 * @example const t = createTunTransport({ name: "anysrc0", mtu: 1500 }); t.send({ src, dst, payload });
 */
export function createTunTransport(options: TunTransportOptions): TunTransport {
  const mtu = options.mtu ?? 1500;
  const stats = createTransportStats();
  let gso = false;
  let told = false;
  let name = options.name;
  /** Offloads refused: plain packets from now on (still behind a zero virtio_net_hdr), counted, told once. */
  const fallBack = (reason: string, deviceName = name) => {
    name = deviceName;
    gso = false;
    stats.offloadFallbacks++;
    if (told) return;
    told = true;
    options.onOffloadFallback?.(`tun ${name}: ${reason}; writing plain packets`);
  };
  const device = openConfiguredDevice(options, mtu, fallBack);
  name = device.name;
  gso = device.gso;
  const lane: TunLane = { fd: device.fd };
  const vnet = device.vnetHeader ? VIRTIO_NET_HDR_LENGTH : 0;
  const registration = createRegistration(lane.fd, () => receiver.wanted, (events) => {
    if (events & Ready.writable) engine.flush(lane);
    if (events & Ready.readable && !engine.stopped) receiver.readPackets();
  });
  const receiver = createTunReceiver(lane.fd, vnet, registration.update);
  const engine = createQueuedTransport<TunLane>({
    kind: "tun",
    label: `tun transport ${name}`,
    stats,
    queueLimit: options.queueLimit ?? 4096,
    closeTimeoutMs: options.closeTimeoutMs ?? 2000,
    sameLane: () => true,
    laneFor: () => lane,
    emit: createTunEmit({
      mtu,
      vnet,
      // IPv4 packets leave with DF clear, each with an ID unique per destination (see the raw transport).
      fields: createPacketFields(options.ttl ?? 64, ALL_CHECKSUMS),
      stats,
      offloading: () => gso,
      refused: fallBack,
      // A TUN fd never reattaches: from now on every datagram offered is dropped as "device-gone".
      gone: (e) =>
        engine.stop(
          new TransportError("device-gone", `TUN device ${name} is gone (${errnoName(e)}: it was deleted while in use); the tun transport has stopped`),
          "device-gone",
        ),
    }),
    watchWritable: (_lane, on) => registration.setWritable(on),
    release() {
      receiver.end();
      registration.setWritable(false);
      closeFd(lane.fd);
    },
  });
  return {
    ...engine.transport,
    kind: "tun",
    name,
    mtu,
    get offloading() {
      return gso;
    },
    received: receiver.stats,
    receive: () => receiver.datagrams(),
  };
}

/** The device open, offloads asked for (`gso`: accepted), MTU set, up; closed again if any step fails. */
function openConfiguredDevice(
  options: TunTransportOptions,
  mtu: number,
  refused: (reason: string, deviceName: string) => void,
): ReturnType<typeof openTun> & { gso: boolean } {
  const device = openQueue(options.name, options.multiQueue === true, options.offload !== false);
  let gso = false;
  try {
    if (device.vnetHeader) {
      const e = setTunOffload(device.fd, options.offloadFlags ?? linux.TUN_F_CSUM | linux.TUN_F_USO4 | linux.TUN_F_USO6);
      if (e === 0) gso = true;
      else refused(`TUNSETOFFLOAD with UDP segmentation refused (${errnoName(e)}; needs Linux 6.2)`, device.name);
    }
    setInterfaceMtu(device.name, mtu);
    if (options.up !== false) setInterfaceUp(device.name);
  } catch (e) {
    closeFd(device.fd);
    throw e;
  }
  return { ...device, gso };
}

/**
 * One queue of device `name`. A device made beforehand with `multi_queue` (as `--workers` needs)
 * refuses a single-queue attach with EINVAL: one relay uses it as one of its queues instead.
 */
function openQueue(name: string, multiQueue: boolean, vnetHeader: boolean): ReturnType<typeof openTun> {
  try {
    return openTun(name, { multiQueue, vnetHeader });
  } catch (e) {
    if (multiQueue || !(e instanceof SystemError) || e.code !== "EINVAL") throw e;
    return openTun(name, { multiQueue: true, vnetHeader });
  }
}

/**
 * One poller registration for both directions of the device: readable while someone receives
 * (`reading()`), writable while datagrams wait.
 */
function createRegistration(fd: number, reading: () => boolean, onReady: (events: number) => void): { update(): void; setWritable(on: boolean): void } {
  const poller = getPoller();
  let registered = false;
  let writable = false;
  const update = () => {
    const want: Interest = { readable: reading(), writable };
    if (!want.readable && !want.writable) {
      if (registered) poller.remove(fd);
      registered = false;
    } else if (!registered) {
      poller.add(fd, want, onReady);
      registered = true;
    } else poller.modify(fd, want);
  };
  return {
    update,
    setWritable(on) {
      writable = on;
      update();
    },
  };
}
