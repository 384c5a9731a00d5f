// Echo server for the relay benchmarks: recvmmsg a batch, sendmmsg it back to each sender.
// usage: udp_echo BIND_IP PORT      prints {"ready":true}, runs until killed
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "bench_common.h"

#define BATCH 64
#define SLOT 65536

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: udp_echo BIND_IP PORT\n"); return 2; }
  int v6 = strchr(argv[1], ':') != NULL;
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(&ss, argv[1], atoi(argv[2]));
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  int big = 16 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) { perror("bind"); return 1; }
  printf("{\"ready\":true}\n"); fflush(stdout);
  static char bufs[BATCH][SLOT];
  static struct sockaddr_storage names[BATCH];
  struct mmsghdr msgs[BATCH]; struct iovec iov[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i]; iov[i].iov_len = SLOT;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &names[i]; msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
    for (int done = 0; done < n;) {
      int k = sendmmsg(fd, msgs + done, n - done, 0);
      if (k <= 0) break;
      done += k;
    }
  }
}
