// Echo server for the relay benchmarks: recvmmsg a batch, sendmmsg it back to each sender.
// usage: udp_echo BIND_IP PORT [--gso]      prints {"ready":true}, runs until killed
//   --gso   a bulk peer as QUIC servers are: UDP_GRO on (a coalesced read is echoed as it came, one
//           GSO send), and a run of same-size datagrams from one sender in a batch leaves as one
//           UDP_SEGMENT send, as quinn-udp and quic-go send.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "bench_common.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define BATCH 64
#define SLOT 65536

static int same_sender(struct sockaddr_storage *a, struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  size_t n = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  return memcmp(a, b, n) == 0;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: udp_echo BIND_IP PORT [--gso]\n"); return 2; }
  int gso = argc > 3 && strcmp(argv[3], "--gso") == 0;
  int v6 = strchr(argv[1], ':') != NULL;
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, argv[1], atoi(argv[2]));
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  int big = 16 << 20, one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  if (gso && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) { perror("UDP_GRO"); return 1; }
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) { perror("bind"); return 1; }
  printf("{\"ready\":true}\n"); fflush(stdout);
  static char bufs[BATCH][SLOT];
  static struct sockaddr_storage names[BATCH];
  static char controls[BATCH][64];
  struct mmsghdr msgs[BATCH]; struct iovec iov[BATCH];
  // GSO sends: one message per run, its iovecs pointing at the run's payloads.
  static char out_controls[BATCH][CMSG_SPACE(sizeof(uint16_t))];
  struct mmsghdr out[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i]; iov[i].iov_len = SLOT;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &names[i]; msgs[i].msg_hdr.msg_namelen = sizeof names[i];
      if (gso) { msgs[i].msg_hdr.msg_control = controls[i]; msgs[i].msg_hdr.msg_controllen = sizeof controls[i]; }
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
    if (!gso) {
      for (int done = 0; done < n;) {
        int k = sendmmsg(fd, msgs + done, n - done, 0);
        if (k <= 0) break;
        done += k;
      }
      continue;
    }
    int m = 0;
    for (int i = 0; i < n;) {
      uint16_t seg = 0;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) seg = (uint16_t)*(int *)CMSG_DATA(c);
      int run = 1;
      size_t len = msgs[i].msg_len, total = len;
      if (seg == 0) {
        seg = (uint16_t)len;
        while (i + run < n && run < 64 && same_sender(&names[i], &names[i + run]) && msgs[i + run].msg_len == len && total + len <= 65000) { total += len; run++; }
      }
      memset(&out[m], 0, sizeof out[m]);
      out[m].msg_hdr.msg_name = &names[i]; out[m].msg_hdr.msg_namelen = msgs[i].msg_hdr.msg_namelen;
      out[m].msg_hdr.msg_iov = &iov[i]; out[m].msg_hdr.msg_iovlen = run;
      if (seg < total && seg > 0) {
        out[m].msg_hdr.msg_control = out_controls[m]; out[m].msg_hdr.msg_controllen = sizeof out_controls[m];
        struct cmsghdr *c = CMSG_FIRSTHDR(&out[m].msg_hdr);
        c->cmsg_level = SOL_UDP; c->cmsg_type = UDP_SEGMENT; c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        *(uint16_t *)CMSG_DATA(c) = seg;
      }
      m++;
      i += run;
    }
    for (int done = 0; done < m;) {
      int k = sendmmsg(fd, out + done, m - done, 0);
      if (k <= 0) break;
      done += k;
    }
  }
}
