/**
 * Linux x86-64 constants used by the socket, TUN and epoll helpers (from <sys/socket.h>,
 * <netinet/in.h>, <linux/in6.h>, <linux/if_tun.h>, <sys/epoll.h>, <sys/mman.h>).
 * @module
 */
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_IP = 0;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const SOL_UDP = 17;
/** SOL_UDP: segment size of a GSO send (per socket, or per message as a cmsg carrying a u16). */
export const UDP_SEGMENT = 103;
/** SOL_UDP: receive coalesced (GRO) datagrams; each read's cmsg (SOL_UDP/UDP_GRO, int) gives the segment size. */
export const UDP_GRO = 104;
/** Most segments one UDP GSO send may carry (64 before Linux 6.9; 128 since). */
export const UDP_MAX_SEGMENTS = 64;
export const IPPROTO_RAW = 255;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_REUSEPORT = 15;
export const SO_BROADCAST = 6;
export const SO_BINDTODEVICE = 25;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;
/** Each datagram carries (cmsg SOL_SOCKET/SO_RXQ_OVFL, u32) how many the socket has dropped so far. */
export const SO_RXQ_OVFL = 40;
/** getsockopt: u32[SK_MEMINFO_VARS] of the socket's memory accounting, drops included. */
export const SO_MEMINFO = 55;
export const SK_MEMINFO_VARS = 9;
export const SK_MEMINFO_DROPS = 8;

export const SOL_IP = 0;
/** setsockopt, and the control message carrying a datagram's TOS byte (received: 1 byte; sent: int). */
export const IP_TOS = 1;
/** setsockopt, and the control message carrying a datagram's TTL (int). */
export const IP_TTL = 2;
export const IP_RECVTTL = 12;
export const IP_RECVTOS = 13;
export const IP_HDRINCL = 3;
export const IP_RECVERR = 11;
export const IP_MTU_DISCOVER = 10;
export const IP_MTU = 14;
export const IP_FREEBIND = 15;
export const IP_TRANSPARENT = 19;
/** Raw IPv4 sockets: netfilter does not reassemble the fragments sent on this socket (LOCAL_OUT defrag). */
export const IP_NODEFRAG = 22;
/** Also the control-message type of the original destination (IP_ORIGDSTADDR). */
export const IP_RECVORIGDSTADDR = 20;
export const IP_ORIGDSTADDR = 20;
export const IP_PMTUDISC_DONT = 0;
export const IP_PMTUDISC_PROBE = 3;

export const SOL_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVERR = 25;
export const IPV6_MTU_DISCOVER = 23;
export const IPV6_MTU = 24;
export const IPV6_RECVORIGDSTADDR = 74;
export const IPV6_ORIGDSTADDR = 74;
export const IPV6_TRANSPARENT = 75;
export const IPV6_RECVHOPLIMIT = 51;
/** The control message carrying a datagram's hop limit (int). */
export const IPV6_HOPLIMIT = 52;
export const IPV6_RECVTCLASS = 66;
/** The control message carrying a datagram's traffic class (int). */
export const IPV6_TCLASS = 67;
/** sock_extended_err.ee_origin: where an error-queue entry came from. */
export const SO_EE_ORIGIN_LOCAL = 1;
export const SO_EE_ORIGIN_ICMP = 2;
export const SO_EE_ORIGIN_ICMP6 = 3;
export const IPV6_FREEBIND = 78;

export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_ERRQUEUE = 0x2000;

export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;
export const F_GETFL = 3;
export const F_SETFL = 4;

export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLONESHOT = 1 << 30;
export const EPOLLET = 1 << 31;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export const IFNAMSIZ = 16;
export const TUNSETIFF = 0x400454ca;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_UP = 0x1;
/** Every TUN read and write starts with a struct virtio_net_hdr (10 bytes): checksum and GSO offloads. */
export const IFF_VNET_HDR = 0x4000;
/** ioctl(fd, TUNSETOFFLOAD, flags): what the device may hand us unfinished (partial checksum, GSO). */
export const TUNSETOFFLOAD = 0x400454d0;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
/** UDP segmentation offload (Linux ≥ 6.2). */
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;

export const EINTR = 4;
export const EIO = 5;
export const EINVAL = 22;
export const ENOPROTOOPT = 92;
export const EAGAIN = 11;
export const ENOBUFS = 105;
export const EMSGSIZE = 90;
export const EACCES = 13;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;
export const ENETUNREACH = 101;
export const EHOSTDOWN = 112;
export const EPROTO = 71;
export const EMFILE = 24;
export const ENFILE = 23;
export const EBADFD = 77;
export const ENODEV = 19;

// <sys/mman.h>: anonymous mappings for ring memory (mapped_memory.ts).
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
