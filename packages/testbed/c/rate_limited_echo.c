// An echo server with a known capacity, for testing the bench's NDR search: a token bucket of PPS
// datagrams per second and DEPTH datagrams deep, charged at each datagram's kernel arrival time
// (SO_TIMESTAMPNS), so that the limit is the bucket's and not this process's scheduling. A datagram
// the bucket has no token for is dropped; the rest are echoed to their sender.
// usage: rate_limited_echo BIND_IP PORT PPS DEPTH     prints {"ready":true}; on SIGTERM {"echoed","dropped"}
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "bench_common.h"

#define BATCH 64
static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: rate_limited_echo BIND_IP PORT PPS DEPTH\n"); return 2; }
  double pps = atof(argv[3]), depth = atof(argv[4]);
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, argv[1], atoi(argv[2]));
  int fd = socket(ss.ss_family, SOCK_DGRAM, 0), one = 1, big = 16 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  struct timeval tick = {0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick); // wake to notice SIGTERM
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) { perror("bind"); return 1; }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  printf("{\"ready\":true}\n"); fflush(stdout);
  static char bufs[BATCH][2048], controls[BATCH][64];
  static struct sockaddr_storage names[BATCH];
  struct mmsghdr in[BATCH], out[BATCH];
  struct iovec iov[BATCH];
  double tokens = depth, last = -1;
  unsigned long long echoed = 0, dropped = 0;
  while (!stop) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
      memset(&in[i], 0, sizeof in[i]);
      in[i].msg_hdr.msg_iov = &iov[i]; in[i].msg_hdr.msg_iovlen = 1;
      in[i].msg_hdr.msg_name = &names[i]; in[i].msg_hdr.msg_namelen = sizeof names[i];
      in[i].msg_hdr.msg_control = controls[i]; in[i].msg_hdr.msg_controllen = sizeof controls[i];
    }
    int n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    int m = 0;
    for (int i = 0; i < n; i++) {
      double at = last;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&in[i].msg_hdr); c; c = CMSG_NXTHDR(&in[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
          struct timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        }
      }
      if (last >= 0 && at > last) tokens += (at - last) * pps;
      if (tokens > depth) tokens = depth;
      if (at > last) last = at;
      if (tokens < 1) { dropped++; continue; }
      tokens -= 1;
      iov[i].iov_len = in[i].msg_len;
      out[m] = in[i];
      out[m].msg_hdr.msg_control = NULL; out[m].msg_hdr.msg_controllen = 0;
      m++;
    }
    for (int done = 0; done < m;) {
      int k = sendmmsg(fd, out + done, m - done, 0);
      if (k <= 0) break;
      done += k;
    }
    echoed += (unsigned long long)m;
  }
  printf("{\"echoed\":%llu,\"dropped\":%llu}\n", echoed, dropped);
  return 0;
}
