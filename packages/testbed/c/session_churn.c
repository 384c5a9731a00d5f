// The cost of a new session, as a rate: WINDOW round trips in flight, every one of them new to the relay.
//   client: each datagram from a new client port (a socket bound to the next port from 10000 up,
//           connected to DST, closed once its echo is back): the relay opens a session per datagram.
//   remote: WINDOW client sockets bound once; each datagram to the next destination port from DST_PORT
//           up (the server namespace redirects the range to its echo server, conntrack restores the
//           port on the reply), so the relay replies from a new remote address every time. The echo
//           must come from exactly the address the datagram went to.
// Payloads carry a stamp and a sequence number and are verified; an echo not back within LOSS_MS is lost.
// usage: session_churn DST_IP DST_PORT WINDOW SECONDS SIZE client|remote [MAX]
//   MAX (default 40000) bounds the round trips, so client ports never wrap around onto old sessions.
// prints {"completed","lost","corrupt","perSecond","seconds","p50_us","p99_us","max_us",…}
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
#include <unistd.h>
#include "bench_common.h"
#include "latency_histogram.h"

#define LOSS_MS 200
#define REMOTE_PORTS 20000

static struct histogram hist;
static uint8_t pattern[65536];
struct slot { int fd; uint64_t seq, sent_at; int port; };
static struct slot *slots;
static int ep, remote, family, port, size, next_client_port = 10000;
static const char *dst_ip;
static uint64_t next_seq;
static uint8_t buf[65536];

// Open (client mode) and send the next round trip on slot i.
static void launch(int i) {
  struct slot *s = &slots[i];
  struct sockaddr_storage dst;
  int dport = remote ? port + (int)(next_seq % REMOTE_PORTS) : port;
  socklen_t dl = make_sockaddr(&dst, dst_ip, dport);
  if (!remote) {
    s->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_storage local;
    socklen_t ll = make_sockaddr(&local, family == AF_INET6 ? "::" : "0.0.0.0", next_client_port++);
    if (s->fd < 0 || bind(s->fd, (void *)&local, ll) < 0 || connect(s->fd, (void *)&dst, dl) < 0) { perror("client socket"); exit(1); }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
  }
  uint64_t t = now_ns();
  memcpy(buf, &t, 8); memcpy(buf + 8, &next_seq, 8); memcpy(buf + 16, pattern + 16, size - 16);
  ssize_t k = remote ? sendto(s->fd, buf, size, 0, (void *)&dst, dl) : send(s->fd, buf, size, 0);
  if (k < 0 && errno != EAGAIN && errno != ENOBUFS) { perror("send"); exit(1); }
  s->seq = next_seq++; s->sent_at = t; s->port = dport;
}

// The round trip on slot i is over (echoed or lost): client mode closes its socket.
static void retire(int i) {
  slots[i].sent_at = 0;
  if (!remote) { close(slots[i].fd); slots[i].fd = -1; }
}

static void print_quantiles(void) {
  printf("\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f", hist_quantile(&hist, 0.5) / 1000, hist_quantile(&hist, 0.99) / 1000, (double)hist.max / 1000);
}

int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: session_churn DST_IP DST_PORT WINDOW SECONDS SIZE client|remote [MAX]\n"); return 2; }
  dst_ip = argv[1];
  family = strchr(argv[1], ':') != NULL ? AF_INET6 : AF_INET;
  port = atoi(argv[2]); size = atoi(argv[5]);
  int window = atoi(argv[3]);
  double seconds = atof(argv[4]);
  remote = !strcmp(argv[6], "remote");
  uint64_t max = argc > 7 ? strtoull(argv[7], NULL, 10) : 40000;
  if (size < 16) size = 16;
  if (window < 1 || (!remote && strcmp(argv[6], "client"))) { fprintf(stderr, "session_churn: WINDOW >= 1, mode client or remote\n"); return 2; }
  for (int i = 16; i < size; i++) pattern[i] = (uint8_t)(i * 31 + size);
  ep = epoll_create1(0);
  slots = calloc(window, sizeof *slots);
  uint64_t completed = 0, lost = 0, corrupt = 0;
  if (remote) {
    for (int i = 0; i < window; i++) {
      slots[i].fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      struct sockaddr_storage local;
      socklen_t ll = make_sockaddr(&local, family == AF_INET6 ? "::" : "0.0.0.0", 10000 + i);
      if (slots[i].fd < 0 || bind(slots[i].fd, (void *)&local, ll) < 0) { perror("remote-mode socket"); return 1; }
      struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
      epoll_ctl(ep, EPOLL_CTL_ADD, slots[i].fd, &ev);
    }
  }
  uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
  int active = 0;
  for (int i = 0; i < window && next_seq < max; i++) { launch(i); active++; }
  struct epoll_event evs[256];
  while (active > 0) {
    uint64_t t = now_ns();
    int more = t < end && next_seq < max;
    int n = epoll_wait(ep, evs, 256, 1);
    for (int e = 0; e < n; e++) {
      int i = (int)evs[e].data.u32;
      struct slot *s = &slots[i];
      if (s->fd < 0) continue;
      struct sockaddr_storage from;
      socklen_t fl = sizeof from;
      ssize_t len = recvfrom(s->fd, buf, sizeof buf, MSG_DONTWAIT, (void *)&from, &fl);
      if (len < 0 || s->sent_at == 0) continue; // nothing, or an echo already written off as lost
      uint64_t stamp, seq, r = now_ns();
      memcpy(&stamp, buf, 8); memcpy(&seq, buf + 8, 8);
      int from_port = ntohs(from.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&from)->sin6_port : ((struct sockaddr_in *)&from)->sin_port);
      if (len != size || seq != s->seq || from_port != s->port || memcmp(buf + 16, pattern + 16, size - 16)) { corrupt++; continue; }
      completed++;
      hist_record(&hist, r - stamp);
      retire(i);
      if (more && next_seq < max) launch(i); else active--;
    }
    t = now_ns();
    for (int i = 0; i < window; i++) {
      struct slot *s = &slots[i];
      if (s->sent_at && t - s->sent_at > LOSS_MS * 1000000ull) {
        lost++;
        retire(i);
        if (t < end && next_seq < max) { launch(i); } else active--;
      }
    }
  }
  double elapsed = (double)(now_ns() - start) / 1e9;
  printf("{\"completed\":%llu,\"lost\":%llu,\"corrupt\":%llu,\"perSecond\":%.1f,\"seconds\":%.3f,\"mode\":\"%s\",", (unsigned long long)completed,
         (unsigned long long)lost, (unsigned long long)corrupt, (double)completed / elapsed, elapsed, remote ? "remote" : "client");
  print_quantiles();
  printf("}\n");
  return 0;
}
