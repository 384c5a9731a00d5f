// Load generator for the receive benchmarks: sendmmsg batches of UDP datagrams carrying
// [u64 CLOCK_MONOTONIC ns][u64 sequence] at a given rate (0 = as fast as possible).
// usage: udp_flood DST_IP PORT SECONDS RATE_PPS SIZE BATCH
// prints {"sent":N,"seconds":S}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench_common.h"

int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: udp_flood DST_IP PORT SECONDS RATE SIZE BATCH\n"); return 2; }
  const char *ip = argv[1];
  int port = atoi(argv[2]);
  double seconds = atof(argv[3]);
  double rate = atof(argv[4]);
  int size = atoi(argv[5]), batch = atoi(argv[6]);
  if (size < 16) size = 16;
  if (batch < 1 || batch > 1024) batch = 32;
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, ip, port);
  int family = ss.ss_family;
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0) { perror("socket/connect"); return 1; }
  int big = 4 << 20; setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  char *bufs = calloc(batch, size);
  struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
  struct iovec *iov = calloc(batch, sizeof *iov);
  for (int i = 0; i < batch; i++) {
    iov[i].iov_base = bufs + i * size; iov[i].iov_len = size;
    msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), seq = 0;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= end) break;
    int n = batch;
    if (rate > 0) {
      uint64_t due = (uint64_t)((double)(t - start) * rate / 1e9);
      if (seq >= due) { struct timespec ts = {0, 200000}; nanosleep(&ts, NULL); continue; }
      if (due - seq < (uint64_t)n) n = (int)(due - seq);
    }
    for (int i = 0; i < n; i++) {
      uint64_t s = seq + i;
      memcpy(bufs + i * size, &t, 8);
      memcpy(bufs + i * size + 8, &s, 8);
    }
    int k = sendmmsg(fd, msgs, n, 0);
    if (k > 0) seq += k;
  }
  printf("{\"sent\":%llu,\"seconds\":%.3f}\n", (unsigned long long)seq, (now_ns() - start) / 1e9);
  return 0;
}
