// The C receiver the anysrc receive path is compared with: one thread, blocking recvmmsg batches,
// the same counting and latency bookkeeping as the TypeScript sink.
// usage: udp_sink BIND_IP PORT SECONDS [PEER_IP PEER_PORT]   (ends early after 0.5 s of silence)
//   (the window starts at the first datagram; with PEER the socket is connected, so only datagrams
//   from exactly that source are counted: a wrong source shows up as loss)
// prints {"ready":true} once bound, then {"received":N,"seconds":S,"p50_us":..,"p99_us":..}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/resource.h>
#include "bench_common.h"

#define BATCH 32
#define SLOT 2048
#define MAXLAT 2000000

static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
static int cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: udp_sink BIND_IP PORT SECONDS\n"); return 2; }
  const char *ip = argv[1];
  int port = atoi(argv[2]);
  double seconds = atof(argv[3]);
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, ip, port);
  int family = ss.ss_family;
  int fd = socket(family, SOCK_DGRAM, 0);
  // Room for a whole run of a GSO sender (hundreds of thousands of datagrams per second arrive faster
  // than one thread reads them): what counts is that every datagram arrives, from the right source.
  int big = 512 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0) { big = 4 << 20; setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big); }
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0) { perror("bind"); return 1; }
  if (argc >= 6) {
    struct sockaddr_storage ps;
    socklen_t pl = make_sockaddr(&ps, argv[4], atoi(argv[5]));
    if (connect(fd, (struct sockaddr *)&ps, pl) < 0) { perror("connect"); return 1; }
  }
  struct timeval tv = {0, 100000}; setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  printf("{\"ready\":true}\n"); fflush(stdout);
  static char bufs[BATCH][SLOT];
  struct mmsghdr msgs[BATCH]; struct iovec iov[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i]; iov[i].iov_len = SLOT;
    msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t *lat = malloc(sizeof(uint32_t) * MAXLAT);
  uint64_t received = 0, first = 0, end = 0, nlat = 0, last = 0;
  double cpu0 = 0;
  for (;;) {
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    uint64_t t = now_ns();
    if (first && t >= end) break;
    // The sender is done once nothing arrived for half a second.
    if (first && t - last > 500000000ull) break;
    if (n <= 0) continue;
    last = t;
    if (!first) { first = t; end = t + (uint64_t)(seconds * 1e9); cpu0 = cpu_s(); }
    for (int i = 0; i < n; i++) {
      uint64_t sent; memcpy(&sent, bufs[i], 8);
      if (nlat < MAXLAT && t > sent) lat[nlat++] = (uint32_t)((t - sent) / 1000);
    }
    received += n;
  }
  double cpu = cpu_s() - cpu0;
  qsort(lat, nlat, sizeof *lat, cmp);
  printf("{\"received\":%llu,\"seconds\":%.3f,\"cpu_s\":%.4f,\"p50_us\":%u,\"p99_us\":%u}\n", (unsigned long long)received,
         (now_ns() - first) / 1e9, cpu, nlat ? lat[nlat / 2] : 0, nlat ? lat[nlat * 99 / 100] : 0);
  return 0;
}
