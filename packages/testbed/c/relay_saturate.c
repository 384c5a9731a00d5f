// Closed-loop load generator for the saturating relay benchmark: FLOWS connected UDP sockets (a wrong
// source address shows up as loss) keep WINDOW datagrams in flight in all for SECONDS, unpaced: each
// echo that comes back lets the next datagram go on the same flow. Payloads carry a CLOCK_MONOTONIC
// stamp and a sequence number; every echo is verified byte for byte and timed. A datagram not back
// within LOSS_MS frees its window slot (and is counted lost unless it turns up before the end).
// usage: relay_saturate DST_IP DST_PORT FLOWS WINDOW SECONDS SIZE
// prints {"sent","received","lost","corrupt","late","p50_us","p99_us","seconds","window"}; "seconds" is
// the sending time (the final drain of at most WINDOW datagrams is not counted).
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

#define LOSS_MS 200
#define BATCH 32
#define MAX_PER_S 2000000

static int cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint8_t *seen;      // 0 in flight / unsent, 1 echoed, 2 written off (window slot freed)
static uint64_t *sent_at;
static uint8_t pattern[65536];

// Send `count` new datagrams on fd with one sendmmsg (retried on EAGAIN/ENOBUFS by the caller's
// next round: what is not sent stays owed to that flow).
static int send_batch(int fd, int count, int size, uint64_t *next_seq, uint64_t limit) {
  if (count > BATCH) count = BATCH;
  if (*next_seq + (uint64_t)count > limit) count = (int)(limit - *next_seq);
  if (count <= 0) return 0;
  uint64_t t = now_ns();
  int k = send_stamped(fd, count, size, *next_seq, t, pattern);
  for (int i = 0; i < k; i++) sent_at[*next_seq + i] = t;
  *next_seq += (uint64_t)k;
  return k;
}

int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: relay_saturate DST_IP DST_PORT FLOWS WINDOW SECONDS SIZE\n"); return 2; }
  int port = atoi(argv[2]), flows = atoi(argv[3]), window = atoi(argv[4]), size = atoi(argv[6]);
  double seconds = atof(argv[5]);
  if (size < 16) size = 16;
  if (flows < 1 || window < flows) { fprintf(stderr, "relay_saturate: need 1 <= FLOWS <= WINDOW\n"); return 2; }
  for (int i = 16; i < size; i++) pattern[i] = (uint8_t)(i * 31 + size);
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, argv[1], port);
  int ep = epoll_create1(0);
  int *fds = connected_flows(ep, &ss, sl, flows, 4 << 20, 0), *owed = calloc(flows, sizeof *owed);
  for (int f = 0; f < flows; f++) owed[f] = window / flows + (f < window % flows);
  uint64_t limit = (uint64_t)(seconds * MAX_PER_S) + window;
  seen = calloc(limit, 1);
  sent_at = calloc(limit, sizeof *sent_at);
  uint32_t *lat = calloc(limit, sizeof *lat);
  static uint8_t bufs[BATCH][65536];
  struct mmsghdr in[BATCH];
  struct iovec iov[BATCH];
  uint64_t next_seq = 0, received = 0, corrupt = 0, late = 0, written_off = 0, nlat = 0, oldest = 0;
  uint64_t start = now_ns(), end_send = start + (uint64_t)(seconds * 1e9), deadline = end_send + (LOSS_MS + 300) * 1000000ull;
  struct epoll_event evs[256];
  for (;;) {
    uint64_t t = now_ns();
    int sending = t < end_send;
    if (!sending && (received + written_off >= next_seq || t >= deadline)) break;
    if (sending) {
      for (int f = 0; f < flows; f++) while (owed[f] > 0) {
        int k = send_batch(fds[f], owed[f], size, &next_seq, limit);
        if (k == 0) break;
        owed[f] -= k;
      }
    }
    // Write off datagrams overdue by LOSS_MS: their slots go to the flow that sent them (round-robin
    // is close enough: the window, not the flow, is what stays constant). The clock is read after
    // the sends above, so no stamp is newer than it.
    t = now_ns();
    while (oldest < next_seq && (seen[oldest] || t - sent_at[oldest] > LOSS_MS * 1000000ull)) {
      if (!seen[oldest]) { seen[oldest] = 2; written_off++; owed[oldest % flows]++; }
      oldest++;
    }
    int n = epoll_wait(ep, evs, 256, 1);
    for (int e = 0; e < n; e++) {
      int f = (int)evs[e].data.u32;
      for (;;) {
        for (int i = 0; i < BATCH; i++) {
          iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
          memset(&in[i], 0, sizeof in[i]);
          in[i].msg_hdr.msg_iov = &iov[i]; in[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fds[f], in, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) break;
        uint64_t r = now_ns();
        for (int i = 0; i < got; i++) {
          uint64_t stamp, seq;
          const uint8_t *p = bufs[i];
          memcpy(&stamp, p, 8); memcpy(&seq, p + 8, 8);
          if ((int)in[i].msg_len != size || memcmp(p + 16, pattern + 16, size - 16) != 0 || seq >= next_seq || seen[seq] == 1) { corrupt++; continue; }
          if (seen[seq] == 2) { late++; written_off--; }
          else owed[f]++;
          seen[seq] = 1; received++;
          lat[nlat++] = (uint32_t)((r - stamp) / 1000);
        }
        if (got < BATCH) break;
      }
    }
  }
  qsort(lat, nlat, sizeof *lat, cmp);
  printf("{\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"corrupt\":%llu,\"late\":%llu,\"p50_us\":%u,\"p99_us\":%u,\"seconds\":%.3f,\"window\":%d}\n",
         (unsigned long long)next_seq, (unsigned long long)received, (unsigned long long)(next_seq - received), (unsigned long long)corrupt,
         (unsigned long long)late, nlat ? lat[nlat / 2] : 0, nlat ? lat[nlat * 99 / 100] : 0, seconds, window);
  return 0;
}
