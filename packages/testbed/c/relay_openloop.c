// Open-loop load generator for NDR/PDR searches and latency at a fixed offered rate (RFC 2544 style;
// wrk2's point on coordinated omission): FLOWS connected UDP sockets (a wrong source address shows up
// as loss) offer RATE datagrams/s in all for SECONDS on a schedule that never waits for echoes. Each
// 50 µs tick sends what the schedule owes, spread over the flows round-robin (one sendmmsg per flow).
// Payloads carry a CLOCK_MONOTONIC stamp and a sequence number; every echo is verified byte for byte
// and its round trip recorded in a log-bucket histogram (latency_histogram.h) — every datagram, so
// p99.9 and max are measured, not extrapolated. An echo not back DRAIN_MS after the last send is lost;
// one that comes back more than LATE_MS after the last send is counted "late": the backlog the device
// still held when the load stopped. A search that asks for no loss asks for no late echo either: with
// buffers of megabytes a relay past its capacity queues for a whole short trial without dropping, and
// only that backlog shows it (2 % over capacity for 1 s leaves 20 ms of work). A pause mid-trial that
// the device catches up on before the end is not late (its delay is in the percentiles).
// usage: relay_openloop DST_IP DST_PORT FLOWS RATE SECONDS SIZE [LATE_MS]   (LATE_MS default 20)
//   prints {"sent","received","lost","corrupt","late","offered","seconds","p50_us","p90_us","p99_us","p999_us","max_us","mean_us"}
//   "offered" is the rate the schedule achieved (sent ÷ sending time); below RATE when the generator
//   itself could not keep up (the caller treats that as the harness's limit, not the relay's).
// usage: relay_openloop --histogram    reads one value (ns) a line from stdin, prints the same
//   percentiles in ns: the histogram's own check.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench_common.h"
#include "latency_histogram.h"

#define BATCH 64
#define TICK_NS 50000ull
#define DRAIN_MS 300

static struct histogram hist;
static uint8_t pattern[65536];

static void print_quantiles(const char *unit, double scale) {
  printf("\"p50_%s\":%.3f,\"p90_%s\":%.3f,\"p99_%s\":%.3f,\"p999_%s\":%.3f,\"max_%s\":%.3f,\"mean_%s\":%.3f", unit,
         hist_quantile(&hist, 0.5) / scale, unit, hist_quantile(&hist, 0.9) / scale, unit, hist_quantile(&hist, 0.99) / scale, unit,
         hist_quantile(&hist, 0.999) / scale, unit, (double)hist.max / scale, unit, hist.count ? (double)hist.sum / (double)hist.count / scale : 0);
}

static int histogram_check(void) {
  unsigned long long v;
  while (scanf("%llu", &v) == 1) hist_record(&hist, v);
  printf("{\"count\":%llu,", (unsigned long long)hist.count);
  print_quantiles("ns", 1);
  printf("}\n");
  return 0;
}

// Send `count` datagrams numbered from *next_seq on fd with one sendmmsg; returns how many went.
static int send_run(int fd, int count, int size, uint64_t *next_seq) {
  int k = send_stamped(fd, count, size, *next_seq, now_ns(), pattern);
  *next_seq += (uint64_t)k;
  return k;
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--histogram")) return histogram_check();
  if (argc < 7) { fprintf(stderr, "usage: relay_openloop DST_IP DST_PORT FLOWS RATE SECONDS SIZE | --histogram\n"); return 2; }
  int port = atoi(argv[2]), flows = atoi(argv[3]), size = atoi(argv[6]);
  double rate = atof(argv[4]), seconds = atof(argv[5]);
  uint64_t late_ns = (uint64_t)((argc > 7 ? atof(argv[7]) : 20) * 1e6), late = 0;
  if (size < 16) size = 16;
  if (flows < 1 || rate <= 0 || seconds <= 0) { fprintf(stderr, "relay_openloop: need FLOWS >= 1, RATE > 0, SECONDS > 0\n"); return 2; }
  prctl(PR_SET_TIMERSLACK, 1UL); // ticks of 50 µs, not the default 50 µs slack on top
  for (int i = 16; i < size; i++) pattern[i] = (uint8_t)(i * 31 + size);
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, argv[1], port);
  int ep = epoll_create1(0);
  int *fds = connected_flows(ep, &ss, sl, flows, 8 << 20, 8 << 20);
  uint64_t total = (uint64_t)(rate * seconds);
  uint8_t *seen = calloc(total + 1, 1);
  static uint8_t bufs[BATCH][65536];
  struct mmsghdr in[BATCH];
  struct iovec iov[BATCH];
  uint64_t sent = 0, received = 0, corrupt = 0, last_send = 0;
  int cursor = 0;
  uint64_t start = now_ns(), deadline = 0;
  struct epoll_event evs[256];
  for (;;) {
    uint64_t t = now_ns();
    if (sent < total) {
      uint64_t due = (uint64_t)((double)(t - start) * rate / 1e9);
      if (due > total) due = total;
      // What the schedule owes now, one run per flow; a flow whose buffer is full gives its share to the next tick.
      uint64_t owed = due - sent;
      for (int tried = 0; owed > 0 && tried < flows; tried++) {
        int f = cursor;
        cursor = (cursor + 1) % flows;
        int share = (int)((owed + (uint64_t)(flows - tried) - 1) / (uint64_t)(flows - tried));
        int k = send_run(fds[f], share, size, &sent);
        owed -= (uint64_t)k;
      }
      last_send = now_ns();
      if (sent >= total) deadline = last_send + DRAIN_MS * 1000000ull;
    } else if (received + corrupt >= total || t >= deadline) break;
    uint64_t next_tick = sent < total ? t + TICK_NS : deadline;
    uint64_t now = now_ns();
    struct timespec wait = {0, 0};
    if (next_tick > now) { uint64_t d = next_tick - now; if (d > 10000000ull) d = 10000000ull; wait.tv_sec = (time_t)(d / 1000000000ull); wait.tv_nsec = (long)(d % 1000000000ull); }
    int n = epoll_pwait2(ep, evs, 256, &wait, NULL);
    for (int e = 0; e < n; e++) {
      int fd = fds[evs[e].data.u32];
      for (;;) {
        for (int i = 0; i < BATCH; i++) {
          iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
          memset(&in[i], 0, sizeof in[i]);
          in[i].msg_hdr.msg_iov = &iov[i]; in[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) break;
        uint64_t r = now_ns();
        for (int i = 0; i < got; i++) {
          uint64_t stamp, seq;
          const uint8_t *p = bufs[i];
          memcpy(&stamp, p, 8); memcpy(&seq, p + 8, 8);
          if ((int)in[i].msg_len != size || memcmp(p + 16, pattern + 16, size - 16) != 0 || seq >= sent || seen[seq]) { corrupt++; continue; }
          seen[seq] = 1; received++;
          if (sent >= total && r > last_send + late_ns) late++;
          hist_record(&hist, r - stamp);
        }
        if (got < BATCH) break;
      }
    }
  }
  double sending = (double)(last_send - start) / 1e9;
  if (sending < seconds) sending = seconds;
  printf("{\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"corrupt\":%llu,\"late\":%llu,\"offered\":%.1f,\"seconds\":%.3f,", (unsigned long long)sent,
         (unsigned long long)received, (unsigned long long)(sent - received), (unsigned long long)corrupt, (unsigned long long)late, (double)sent / sending, sending);
  print_quantiles("us", 1000);
  printf("}\n");
  return 0;
}
