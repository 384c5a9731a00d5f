/**
 * TUN devices and interface settings through ioctls (the library never shells out to `ip`).
 * @module
 */
import { adapter, check, cString, errno, lastError, libc } from "./libc.ts";
import {
  AF_INET,
  IFF_MULTI_QUEUE,
  IFF_NO_PI,
  IFF_TUN,
  IFF_UP,
  IFF_VNET_HDR,
  IFNAMSIZ,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SIOCGIFFLAGS,
  SIOCGIFMTU,
  SIOCSIFFLAGS,
  SIOCSIFMTU,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  TUNSETIFF,
  TUNSETOFFLOAD,
} from "./linux_constants.ts";

// struct ifreq: char ifr_name[16]; then a 24-byte union (flags: short, mtu: int, …).
const IFREQ_SIZE = 40;

function ifreq(name: string): { bytes: Uint8Array; view: DataView } {
  const encoded = new TextEncoder().encode(name);
  if (encoded.length === 0 || encoded.length >= IFNAMSIZ) {
    throw new RangeError(`Interface name "${name}" must be 1-${IFNAMSIZ - 1} bytes`);
  }
  const bytes = new Uint8Array(new ArrayBuffer(IFREQ_SIZE)); // its address goes to ioctl: storage of its own (oven-sh/bun#32055)
  bytes.set(encoded);
  return { bytes, view: new DataView(bytes.buffer) };
}

/** Options for {@link openTun}. */
export interface TunOptions {
  /** IFF_MULTI_QUEUE: several fds may attach to one device, e.g. one per thread. */
  readonly multiQueue?: boolean;
  /**
   * IFF_VNET_HDR: every read and write carries a 10-byte struct virtio_net_hdr in front of the IP
   * packet, so one write can be a GSO super-packet the kernel segments and checksums. See {@link setTunOffload}.
   */
  readonly vnetHeader?: boolean;
}

/** An open TUN queue: read and write whole IP packets (IFF_NO_PI: no packet-info prefix). */
export interface TunDevice {
  readonly fd: number;
  readonly name: string;
  /** Packets carry a virtio_net_hdr first (IFF_VNET_HDR). */
  readonly vnetHeader: boolean;
}

/**
 * Create (or attach to) the TUN device `name`, non-blocking. Needs CAP_NET_ADMIN and /dev/net/tun.
 * @example const tun = openTun("anysrc0"); setInterfaceMtu(tun.name, 1500); setInterfaceUp(tun.name);
 */
export function openTun(name: string, options: TunOptions = {}): TunDevice {
  const req = ifreq(name);
  const path = cString("/dev/net/tun");
  const fd = libc.open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) throw lastError("open", undefined, "/dev/net/tun");
  req.view.setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI | (options.multiQueue ? IFF_MULTI_QUEUE : 0) | (options.vnetHeader ? IFF_VNET_HDR : 0), true);
  if (libc.ioctl(fd, TUNSETIFF, adapter.addressOf(req.bytes)) < 0) {
    const error = lastError("ioctl TUNSETIFF", fd, name);
    libc.close(fd);
    throw error;
  }
  const end = req.bytes.indexOf(0);
  return { fd, name: new TextDecoder().decode(req.bytes.subarray(0, end < 0 ? IFNAMSIZ : end)), vnetHeader: options.vnetHeader === true };
}

/**
 * TUNSETOFFLOAD: tell the device which unfinished packets we accept on reads (TUN_F_CSUM: partial
 * checksums; TUN_F_USO4/6: UDP GSO super-packets), which also lets the stack hand it such packets.
 * Returns 0, or the errno when the kernel refuses (EINVAL: a flag it does not know, as USO before 6.2).
 * @example setTunOffload(tun.fd, linux.TUN_F_CSUM | linux.TUN_F_USO4 | linux.TUN_F_USO6) // 0
 */
export function setTunOffload(fd: number, flags: number): number {
  return libc.ioctl(fd, TUNSETOFFLOAD, flags) < 0 ? errno() : 0;
}

function withControlSocket<T>(use: (fd: number) => T): T {
  const fd = check(libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket");
  try {
    return use(fd);
  } finally {
    libc.close(fd);
  }
}

/** Read an interface's MTU (SIOCGIFMTU). */
export function getInterfaceMtu(name: string): number {
  const req = ifreq(name);
  return withControlSocket((fd) => {
    check(libc.ioctl(fd, SIOCGIFMTU, adapter.addressOf(req.bytes)), "ioctl SIOCGIFMTU", fd, name);
    return req.view.getInt32(IFNAMSIZ, true);
  });
}

/** Set an interface's MTU (SIOCSIFMTU). */
export function setInterfaceMtu(name: string, mtu: number): void {
  const req = ifreq(name);
  req.view.setInt32(IFNAMSIZ, mtu, true);
  withControlSocket((fd) => check(libc.ioctl(fd, SIOCSIFMTU, adapter.addressOf(req.bytes)), "ioctl SIOCSIFMTU", fd, name));
}

/** Bring an interface up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP). */
export function setInterfaceUp(name: string): void {
  const req = ifreq(name);
  withControlSocket((fd) => {
    check(libc.ioctl(fd, SIOCGIFFLAGS, adapter.addressOf(req.bytes)), "ioctl SIOCGIFFLAGS", fd, name);
    req.view.setUint16(IFNAMSIZ, req.view.getUint16(IFNAMSIZ, true) | IFF_UP, true);
    check(libc.ioctl(fd, SIOCSIFFLAGS, adapter.addressOf(req.bytes)), "ioctl SIOCSIFFLAGS", fd, name);
  });
}

/**
 * Interface index by name, or throws ENODEV.
 * @example interfaceIndex("lo") // 1
 */
export function interfaceIndex(name: string): number {
  const index = libc.if_nametoindex(cString(name));
  if (index === 0) throw lastError("if_nametoindex", undefined, name);
  return index;
}
