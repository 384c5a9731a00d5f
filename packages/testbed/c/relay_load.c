// Load generator for the relay benchmarks: FLOWS connected UDP sockets (a wrong source address shows
// up as loss) send RATE datagrams/s in all for SECONDS, round-robin, each payload stamped with
// CLOCK_MONOTONIC and a sequence number; every echo is verified byte for byte and timed.
// usage: relay_load DST_IP DST_PORT FLOWS RATE SECONDS SIZE [HOLD_S]
//   HOLD_S: keep the sockets open this long after the run (for RSS with many sessions)
// prints {"sent","received","lost","corrupt","p50_us","p99_us","seconds"}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench_common.h"

static int cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}
static void fill(uint8_t *p, int size, uint64_t seq, uint64_t t) {
  for (int i = 16; i < size; i++) p[i] = (uint8_t)(i * 31 + size);
  memcpy(p, &t, 8);
  memcpy(p + 8, &seq, 8);
}
static int check(const uint8_t *p, int len, int size) {
  if (len != size) return 0;
  for (int i = 16; i < size; i++) if (p[i] != (uint8_t)(i * 31 + size)) return 0;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: relay_load DST_IP DST_PORT FLOWS RATE SECONDS SIZE [HOLD_S]\n"); return 2; }
  int port = atoi(argv[2]), flows = atoi(argv[3]), size = atoi(argv[6]);
  double rate = atof(argv[4]), seconds = atof(argv[5]), hold = argc > 7 ? atof(argv[7]) : 0;
  if (size < 16) size = 16;
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, argv[1], port);
  int ep = epoll_create1(0);
  int *fds = connected_flows(ep, &ss, sl, flows, 0, 0);
  uint64_t total = (uint64_t)(rate * seconds);
  uint8_t *seen = calloc(total + 1, 1);
  uint32_t *lat = calloc(total + 1, sizeof *lat);
  uint8_t *buf = malloc(65536);
  uint64_t sent = 0, received = 0, corrupt = 0, nlat = 0;
  uint64_t start = now_ns(), end_send = start + (uint64_t)(seconds * 1e9), deadline = end_send + 2000000000ull;
  struct epoll_event evs[256];
  for (;;) {
    uint64_t t = now_ns();
    if (sent < total) {
      uint64_t due = t >= end_send ? total : (uint64_t)((double)(t - start) * rate / 1e9);
      if (due > total) due = total;
      while (sent < due) {
        fill(buf, size, sent, now_ns());
        if (send(fds[sent % flows], buf, size, 0) < 0 && errno != EAGAIN && errno != ENOBUFS) { perror("send"); return 1; }
        sent++;
      }
    } else if (received + corrupt >= total || t >= deadline) break;
    int n = epoll_wait(ep, evs, 256, sent < total ? 0 : 10);
    if (sent < total && n == 0) { struct timespec ts = {0, 50000}; nanosleep(&ts, NULL); }
    for (int i = 0; i < n; i++) {
      int fd = fds[evs[i].data.u32];
      for (;;) {
        ssize_t len = recv(fd, buf, 65536, MSG_DONTWAIT);
        if (len < 0) break;
        uint64_t stamp, seq, r = now_ns();
        memcpy(&stamp, buf, 8); memcpy(&seq, buf + 8, 8);
        if (!check(buf, (int)len, size) || seq >= total || seen[seq]) { corrupt++; continue; }
        seen[seq] = 1; received++;
        lat[nlat++] = (uint32_t)((r - stamp) / 1000);
      }
    }
  }
  double secs = (now_ns() - start) / 1e9;
  qsort(lat, nlat, sizeof *lat, cmp);
  printf("{\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"corrupt\":%llu,\"p50_us\":%u,\"p99_us\":%u,\"seconds\":%.3f}\n",
         (unsigned long long)sent, (unsigned long long)received, (unsigned long long)(sent - received), (unsigned long long)corrupt,
         nlat ? lat[nlat / 2] : 0, nlat ? lat[nlat * 99 / 100] : 0, secs);
  fflush(stdout);
  if (hold > 0) { struct timespec ts = {(time_t)hold, 0}; nanosleep(&ts, NULL); }
  return 0;
}
