// A receiver that records what a forwarder delivered: which sequence numbers (the first 4 bytes,
// big-endian, as udp_peer's send-from writes them), from which sources, with which TTL / hop limit,
// and whether the payload past the sequence number is intact (byte k is k & 0xff).
// usage: udp_record BIND_IP PORT COUNT TIMEOUT_MS
//   ends after COUNT datagrams (then 300 ms more, so duplicates show) or TIMEOUT_MS, or after 1 s of
//   silence once something arrived
// prints {"ready":true} once bound, then
// {"done":true,"received":N,"duplicates":D,"corrupt":C,"seqs":[…],"sources":[…],"ttls":[…],"sizes":[…]}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "bench_common.h"

#define MAX_SEQ 200000
#define MAX_DISTINCT 64

static char sources[MAX_DISTINCT][64];
static int nsources, ttls[MAX_DISTINCT], nttls, sizes[MAX_DISTINCT], nsizes;

static void add_int(int *set, int *n, int v) {
  for (int i = 0; i < *n; i++) if (set[i] == v) return;
  if (*n < MAX_DISTINCT) set[(*n)++] = v;
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: udp_record BIND_IP PORT COUNT TIMEOUT_MS\n"); return 2; }
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, argv[1], atoi(argv[2]));
  long count = atol(argv[3]);
  uint64_t deadline = now_ns() + (uint64_t)atol(argv[4]) * 1000000ull;
  int v6 = ss.ss_family == AF_INET6;
  int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
  int one = 1, big = 64 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
  else setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0) { perror("bind"); return 1; }
  struct timeval tv = {0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  printf("{\"ready\":true}\n");
  fflush(stdout);
  static uint8_t seen[MAX_SEQ], buf[65536];
  char control[256];
  long received = 0, duplicates = 0, corrupt = 0;
  uint64_t last = 0, stop_at = 0;
  for (;;) {
    uint64_t t = now_ns();
    if (t > deadline || (stop_at && t > stop_at) || (last && t - last > 1000000000ull)) break;
    struct sockaddr_storage from;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(fd, &m, 0);
    if (n < 0) continue;
    last = now_ns();
    received++;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) || (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
        int v;
        memcpy(&v, CMSG_DATA(c), sizeof v);
        add_int(ttls, &nttls, v);
      }
    }
    add_int(sizes, &nsizes, (int)n);
    char text[64], host[INET6_ADDRSTRLEN];
    if (from.ss_family == AF_INET6) {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)&from;
      inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
      snprintf(text, sizeof text, "[%s]:%d", host, ntohs(s->sin6_port));
    } else {
      struct sockaddr_in *s = (struct sockaddr_in *)&from;
      inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
      snprintf(text, sizeof text, "%s:%d", host, ntohs(s->sin_port));
    }
    int known = 0;
    for (int i = 0; i < nsources; i++) if (!strcmp(sources[i], text)) known = 1;
    if (!known && nsources < MAX_DISTINCT) strcpy(sources[nsources++], text);
    int ok = n >= 4;
    for (ssize_t k = 4; ok && k < n; k++) if (buf[k] != (k & 0xff)) ok = 0;
    if (!ok) { corrupt++; continue; }
    uint32_t seq = ((uint32_t)buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3];
    if (seq < MAX_SEQ) {
      if (seen[seq]) duplicates++;
      seen[seq] = 1;
    }
    if (received >= count && !stop_at) stop_at = now_ns() + 300000000ull;
  }
  printf("{\"done\":true,\"received\":%ld,\"duplicates\":%ld,\"corrupt\":%ld,\"seqs\":[", received, duplicates, corrupt);
  int first = 1;
  for (long s = 0; s < MAX_SEQ; s++) if (seen[s]) { printf(first ? "%ld" : ",%ld", s); first = 0; }
  printf("],\"sources\":[");
  for (int i = 0; i < nsources; i++) printf(i ? ",\"%s\"" : "\"%s\"", sources[i]);
  printf("],\"ttls\":[");
  for (int i = 0; i < nttls; i++) printf(i ? ",%d" : "%d", ttls[i]);
  printf("],\"sizes\":[");
  for (int i = 0; i < nsizes; i++) printf(i ? ",%d" : "%d", sizes[i]);
  printf("]}\n");
  return 0;
}
