// Pieces every C program of the testbed shares: monotonic time, the Internet checksum, and
// "IP PORT" → sockaddr. Header-only so each program still compiles from one `cc` command.
#ifndef ANYSRC_BENCH_COMMON_H
#define ANYSRC_BENCH_COMMON_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

static inline uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// One's complement sum of big-endian 16-bit words (RFC 1071), unfolded.
static inline uint32_t sum16(const uint8_t *p, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
  if (n & 1) s += p[n - 1] << 8;
  return s;
}

// The same sum over a payload, 8 bytes at a time in native order (RFC 1071 §2(B): byte order only
// swaps the folded result). Returns a 16-bit big-endian partial sum to add to sum16's.
static inline uint32_t sum16_wide(const uint8_t *p, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    acc += w >> 32;
    acc += w & 0xffffffffu;
  }
  for (; i + 2 <= n; i += 2) {
    uint16_t w;
    memcpy(&w, p + i, 2);
    acc += w;
  }
  if (n & 1) acc += p[n - 1]; // little-endian: the odd byte is the low half of a zero-padded word
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint32_t)(((acc & 0xff) << 8) | (acc >> 8));
}

// Fold and invert: the value that goes in a checksum field.
static inline uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

// Fill `ss` from a textual IPv4 or IPv6 address and a port; returns the sockaddr length.
static inline socklen_t make_sockaddr(struct sockaddr_storage *ss, const char *ip, int port) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6; s->sin6_port = htons(port); inet_pton(AF_INET6, ip, &s->sin6_addr);
    return sizeof *s;
  }
  struct sockaddr_in *s = (struct sockaddr_in *)ss;
  s->sin_family = AF_INET; s->sin_port = htons(port); inet_pton(AF_INET, ip, &s->sin_addr);
  return sizeof *s;
}
// A TPROXY listener on PORT for every address (IP_TRANSPARENT, original destination in the control
// data), non-blocking; the relays add their own buffer and drop-counter options.
static inline int tproxy_listener(int v6, int port) {
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6) {
    setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof one);
    setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one);
    setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof one);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    if (bind(fd, (void *)&a, sizeof a) < 0) { perror("bind6"); exit(1); }
  } else {
    setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
    setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(fd, (void *)&a, sizeof a) < 0) { perror("bind4"); exit(1); }
  }
  return fd;
}

// The load generators' flows: FLOWS non-blocking UDP sockets connected to DST (a reply from any
// other address is not delivered: a wrong source shows up as loss), each in EP with its index as
// data. RCVBUF / SNDBUF are forced when non-zero. Exits on failure.
static inline int *connected_flows(int ep, const struct sockaddr_storage *dst, socklen_t len, int flows, int rcvbuf, int sndbuf) {
  int *fds = calloc(flows, sizeof *fds);
  for (int f = 0; f < flows; f++) {
    fds[f] = socket(dst->ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (rcvbuf) setsockopt(fds[f], SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    if (sndbuf) setsockopt(fds[f], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    if (fds[f] < 0 || connect(fds[f], (const struct sockaddr *)dst, len) < 0) { perror("socket/connect"); exit(1); }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)f};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[f], &ev);
  }
  return fds;
}

// Send COUNT (≤ 64) datagrams of SIZE on a connected FD with one sendmmsg, numbered from SEQ and
// stamped T (CLOCK_MONOTONIC ns) in their first 16 bytes, the rest PATTERN's bytes 16… Returns how
// many went (0 on EAGAIN / ENOBUFS: the caller tries again later); exits on any other error.
static inline int send_stamped(int fd, int count, int size, uint64_t seq, uint64_t t, const uint8_t *pattern) {
  static uint8_t heads[64][16];
  struct mmsghdr m[64];
  struct iovec iov[64][2];
  if (count > 64) count = 64;
  for (int i = 0; i < count; i++) {
    uint64_t s = seq + (uint64_t)i;
    memcpy(heads[i], &t, 8);
    memcpy(heads[i] + 8, &s, 8);
    iov[i][0].iov_base = heads[i]; iov[i][0].iov_len = 16;
    iov[i][1].iov_base = (void *)(pattern + 16); iov[i][1].iov_len = (size_t)(size - 16);
    memset(&m[i], 0, sizeof m[i]);
    m[i].msg_hdr.msg_iov = iov[i]; m[i].msg_hdr.msg_iovlen = size > 16 ? 2 : 1;
  }
  int k = sendmmsg(fd, m, (unsigned)count, MSG_DONTWAIT);
  if (k < 0) {
    if (errno == EAGAIN || errno == ENOBUFS) return 0;
    perror("sendmmsg"); exit(1);
  }
  return k;
}

// FNV-1a over the family, port and address of a client (the relays' session tables hash it).
static inline uint32_t sockaddr_hash(const struct sockaddr_storage *a) {
  const uint8_t *p = (const uint8_t *)a;
  int n = a->ss_family == AF_INET ? 8 : 24;
  uint32_t h = 2166136261u;
  for (int i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

// Same family, address and port.
static inline int sockaddr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}
#endif
