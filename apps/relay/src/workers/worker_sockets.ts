/**
 * What a supervisor opens once for all its workers: each worker's listening sockets, bound in one
 * SO_REUSEPORT group per address, and for the tun transport the multi-queue device's first queue,
 * which keeps the device (and its routes) in place while a worker restarts.
 * @module
 */
import { type SocketAddress, SystemError } from "@anysrc/core";
import { bindSocket, closeFd, interfaceIndex, openTun, openUdpSocket, type UdpSocketOptions } from "@anysrc/sys";
import { UsageError } from "../cli/usage_error.ts";

/**
 * A listening socket that joins `addr`'s SO_REUSEPORT group (every member sets it before bind);
 * `options` are the relay's own, which the worker sets again on its copy.
 * @example const fd = openGroupMember(tproxyListenerOptions(4, 16 << 20, fields), listenAddress);
 */
export function openGroupMember(options: UdpSocketOptions, addr: SocketAddress): number {
  const fd = openUdpSocket({ ...options, reusePort: true });
  try {
    bindSocket(fd, addr);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return fd;
}

/**
 * Every worker's sockets for `addresses`: `count` members per address, worker i's in `result[i]`
 * (in address order). On a failure none is left open.
 */
export function openWorkerListeners(count: number, addresses: readonly SocketAddress[], options: (addr: SocketAddress) => UdpSocketOptions): number[][] {
  const opened: number[][] = [];
  try {
    for (let i = 0; i < count; i++) {
      const mine: number[] = [];
      opened.push(mine);
      for (const addr of addresses) mine.push(openGroupMember(options(addr), addr));
    }
  } catch (e) {
    opened.flat().forEach(closeFd);
    if (e instanceof SystemError && e.code === "EADDRINUSE") {
      throw new UsageError("workers", `${e.message}: another process holds the port without SO_REUSEPORT`);
    }
    throw e;
  }
  return opened;
}

/**
 * Open the first queue of multi-queue TUN device `name` (created if absent) and keep it: the workers
 * attach a queue each. A device that exists without IFF_MULTI_QUEUE cannot take a second queue.
 * Returns the release function.
 */
export function holdTunQueue(command: string, name: string, offload: boolean, workers: number): () => void {
  let existed = true;
  try {
    interfaceIndex(name);
  } catch {
    existed = false;
  }
  try {
    const device = openTun(name, { multiQueue: true, vnetHeader: offload });
    return () => closeFd(device.fd);
  } catch (e) {
    if (existed && e instanceof SystemError && e.code === "EINVAL") {
      throw new UsageError(
        command,
        `--workers ${workers} needs a multi-queue TUN device (one queue per worker), and ${name} exists without IFF_MULTI_QUEUE: delete it (ip tuntap del ${name} mode tun) or create it with multi_queue (ip tuntap add ${name} mode tun multi_queue)`,
      );
    }
    throw e;
  }
}
