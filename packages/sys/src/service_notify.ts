/**
 * The systemd notification protocol (sd_notify): one datagram of `KEY=VALUE` lines to the unix
 * socket named by `$NOTIFY_SOCKET`, so a `Type=notify` unit knows when the relay is ready, reloading
 * or stopping. Written here rather than linked: it is a socket, a sockaddr_un and a sendto.
 * @module
 */
import { errnoName } from "@anysrc/core";
import { errno, libc } from "./libc.ts";
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM } from "./linux_constants.ts";

const encoder = new TextEncoder();
// struct sockaddr_un: sa_family_t (u16), then up to 108 bytes of path.
const SUN_PATH_MAX = 108;

/**
 * Send `state` (e.g. `READY=1\nMAINPID=1234`) to the service manager's socket `path` (`$NOTIFY_SOCKET`;
 * a leading `@` names an abstract socket). Returns undefined when sent, else the errno name; a
 * relay without a service manager simply has no `$NOTIFY_SOCKET` and never calls this.
 * @example notifyServiceManager(process.env.NOTIFY_SOCKET!, "READY=1")
 */
export function notifyServiceManager(path: string, state: string): string | undefined {
  const name = encoder.encode(path);
  if (name.length === 0 || name.length >= SUN_PATH_MAX) return "ENAMETOOLONG";
  const address = new Uint8Array(2 + SUN_PATH_MAX);
  address[0] = AF_UNIX;
  address.set(name, 2);
  if (path.startsWith("@")) address[2] = 0; // abstract namespace
  // Abstract names are exactly their length; filesystem paths end with their NUL.
  const length = 2 + name.length + (path.startsWith("@") ? 0 : 1);
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errnoName(errno());
  try {
    const message = encoder.encode(state);
    return libc.sendto(fd, message, message.length, 0, address, length) < 0 ? errnoName(errno()) : undefined;
  } finally {
    libc.close(fd);
  }
}
