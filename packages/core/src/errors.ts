/**
 * Error types shared by every package. Parsers throw {@link WireError}; address and option
 * validation throws {@link AddressError}; syscalls fail with {@link SystemError}; a transport that
 * refuses a datagram throws {@link TransportError}.
 * @module
 */

/** What was wrong with bytes handed to a parser; stable strings callers may switch on. */
export type WireErrorKind =
  | "truncated"
  | "bad-version"
  | "bad-header-length"
  | "length-mismatch"
  | "unknown-next-header"
  | "bad-hex"
  | "bad-fragment"
  | "too-big";

/**
 * Malformed or unsupported packet bytes.
 * @example
 * throw new WireError("truncated", "truncated IPv4 header: 12 of 20 bytes");
 */
export class WireError extends RangeError {
  override readonly name = "WireError";
  readonly kind: WireErrorKind;
  constructor(kind: WireErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * A socket address, IP address, CIDR or option value that cannot be used; the message quotes it.
 * @example
 * throw new AddressError(`Cannot parse address "1.2.3.4:99999": port out of range`);
 */
export class AddressError extends TypeError {
  override readonly name = "AddressError";
}

/** The fields a failed syscall is described by; kept as data so it can be logged as JSON. */
export interface SystemErrorInfo {
  readonly syscall: string;
  readonly errno: number;
  /** Symbolic name, e.g. `EADDRINUSE`; `E<number>` when the table does not know it. */
  readonly code: string;
  readonly fd?: number;
  /** The address involved, as text (`198.19.2.2:7000`, `tun0`, `/dev/net/tun`). */
  readonly address?: string;
}

/**
 * A libc call that failed, with errno read right after the call.
 * @example
 * new SystemError({ syscall: "bind", errno: 98, code: "EADDRINUSE", address: "198.19.2.2:7000" }).message
 * // "bind 198.19.2.2:7000: EADDRINUSE (address already in use)"
 */
export class SystemError extends Error implements SystemErrorInfo {
  override readonly name = "SystemError";
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  readonly fd?: number;
  readonly address?: string;
  constructor(info: SystemErrorInfo) {
    const where = info.address !== undefined ? ` ${info.address}` : info.fd !== undefined ? ` fd ${info.fd}` : "";
    super(`${info.syscall}${where}: ${info.code} (${errnoDescription(info.errno)})`);
    this.syscall = info.syscall;
    this.errno = info.errno;
    this.code = info.code;
    if (info.fd !== undefined) this.fd = info.fd;
    if (info.address !== undefined) this.address = info.address;
  }
}

/** Why a transport refused a datagram before it reached the kernel. */
export type TransportErrorKind =
  | "mixed-families"
  | "payload-too-large"
  | "bad-port"
  | "bad-source"
  | "bad-ip-field"
  | "closed"
  | "device-gone";

/**
 * A datagram the transport cannot send as given; nothing was sent. The one exception is
 * "device-gone" (the TUN device was deleted): the transport stops for good, and counts every
 * datagram offered from then on as dropped "device-gone" before throwing.
 * @example
 * throw new TransportError("bad-port", "destination port 0 in 198.18.1.2:0");
 */
export class TransportError extends RangeError {
  override readonly name = "TransportError";
  readonly kind: TransportErrorKind;
  constructor(kind: TransportErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

// Linux x86-64 errno numbers; the one table that maps numbers to names (STYLE: map once).
const ERRNO: ReadonlyArray<readonly [number, string, string]> = [
  [1, "EPERM", "operation not permitted"],
  [2, "ENOENT", "no such file or directory"],
  [4, "EINTR", "interrupted system call"],
  [5, "EIO", "input/output error"],
  [6, "ENXIO", "no such device or address"],
  [9, "EBADF", "bad file descriptor"],
  [11, "EAGAIN", "resource temporarily unavailable"],
  [12, "ENOMEM", "cannot allocate memory"],
  [13, "EACCES", "permission denied"],
  [14, "EFAULT", "bad address"],
  [16, "EBUSY", "device or resource busy"],
  [17, "EEXIST", "file exists"],
  [19, "ENODEV", "no such device"],
  [22, "EINVAL", "invalid argument"],
  [23, "ENFILE", "too many open files in system"],
  [24, "EMFILE", "too many open files"],
  [25, "ENOTTY", "inappropriate ioctl for device"],
  [28, "ENOSPC", "no space left on device"],
  [32, "EPIPE", "broken pipe"],
  [38, "ENOSYS", "function not implemented"],
  [77, "EBADFD", "file descriptor in bad state"],
  [88, "ENOTSOCK", "socket operation on non-socket"],
  [89, "EDESTADDRREQ", "destination address required"],
  [90, "EMSGSIZE", "message too long"],
  [91, "EPROTOTYPE", "protocol wrong type for socket"],
  [92, "ENOPROTOOPT", "protocol not available"],
  [93, "EPROTONOSUPPORT", "protocol not supported"],
  [95, "EOPNOTSUPP", "operation not supported"],
  [97, "EAFNOSUPPORT", "address family not supported by protocol"],
  [98, "EADDRINUSE", "address already in use"],
  [99, "EADDRNOTAVAIL", "cannot assign requested address"],
  [100, "ENETDOWN", "network is down"],
  [101, "ENETUNREACH", "network is unreachable"],
  [103, "ECONNABORTED", "software caused connection abort"],
  [104, "ECONNRESET", "connection reset by peer"],
  [105, "ENOBUFS", "no buffer space available"],
  [106, "EISCONN", "transport endpoint is already connected"],
  [107, "ENOTCONN", "transport endpoint is not connected"],
  [110, "ETIMEDOUT", "connection timed out"],
  [111, "ECONNREFUSED", "connection refused"],
  [112, "EHOSTDOWN", "host is down"],
  [113, "EHOSTUNREACH", "no route to host"],
];
const NAMES = new Map(ERRNO.map(([n, name]) => [n, name]));
const DESCRIPTIONS = new Map(ERRNO.map(([n, , text]) => [n, text]));
const NUMBERS = new Map(ERRNO.map(([n, name]) => [name, n]));

/**
 * Symbolic name of a Linux errno.
 * @example errnoName(98) // "EADDRINUSE"
 */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `E${errno}`;
}

/**
 * Number of a symbolic errno name, or undefined.
 * @example errnoNumber("EAGAIN") // 11
 */
export function errnoNumber(code: string): number | undefined {
  return NUMBERS.get(code);
}

/** Human description of a Linux errno, as strerror(3) words it. */
export function errnoDescription(errno: number): string {
  return DESCRIPTIONS.get(errno) ?? `errno ${errno}`;
}

/** A Linux capability a command needs, by its name in capabilities(7). */
export type CapabilityName = "CAP_NET_ADMIN" | "CAP_NET_RAW" | "CAP_NET_BIND_SERVICE";

/**
 * The process lacks a capability a command needs; raised at start, before any socket is opened.
 * @example throw new CapabilityError("CAP_NET_RAW", "--transport raw (raw sockets)");
 */
export class CapabilityError extends Error {
  override readonly name = "CapabilityError";
  readonly capability: CapabilityName;
  readonly neededFor: string;
  constructor(capability: CapabilityName, neededFor: string) {
    super(
      `${neededFor} needs ${capability}, which this process does not have: run as root, or grant it to the runtime binary (setcap ${capability.toLowerCase()}+ep …)`,
    );
    this.capability = capability;
    this.neededFor = neededFor;
  }
}
