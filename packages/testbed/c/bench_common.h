// Pieces every C program of the testbed shares: monotonic time, the Internet checksum, and
// "IP PORT" → sockaddr. Header-only so each program still compiles from one `cc` command.
#ifndef ANYSRC_BENCH_COMMON_H
#define ANYSRC_BENCH_COMMON_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
