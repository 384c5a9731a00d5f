// The C forwarder `anysrc forward` is compared with, of samplicator's design: one recvfrom per
// datagram, then for each receiver the IP + UDP headers (the sender's address as source, checksums)
// and one raw sendto per copy.
// usage: forward_baseline LISTEN_IP PORT RECEIVER_IP RECEIVER_PORT [RECEIVER_IP RECEIVER_PORT]…
//   (receivers of the listening address's family)
// prints {"ready":true} once bound; on SIGTERM/SIGINT {"received":N,"copies":M,"errors":E}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench_common.h"

#define MAX_RECEIVERS 64

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  if (argc < 5 || (argc - 3) % 2) { fprintf(stderr, "usage: forward_baseline LISTEN_IP PORT RECEIVER_IP RECEIVER_PORT...\n"); return 2; }
  struct sockaddr_storage ls;
  socklen_t ll = make_sockaddr(&ls, argv[1], atoi(argv[2]));
  int v6 = ls.ss_family == AF_INET6;
  int n = (argc - 3) / 2;
  if (n > MAX_RECEIVERS) n = MAX_RECEIVERS;
  struct sockaddr_storage to[MAX_RECEIVERS];
  socklen_t tl[MAX_RECEIVERS];
  uint8_t dst[MAX_RECEIVERS][16];
  int dport[MAX_RECEIVERS];
  for (int i = 0; i < n; i++) {
    dport[i] = atoi(argv[4 + 2 * i]);
    tl[i] = make_sockaddr(&to[i], argv[3 + 2 * i], 0); // raw sockets: port 0
    if (v6) memcpy(dst[i], &((struct sockaddr_in6 *)&to[i])->sin6_addr, 16);
    else memcpy(dst[i], &((struct sockaddr_in *)&to[i])->sin_addr, 4);
  }
  int fd = socket(ls.ss_family, SOCK_DGRAM, 0);
  int one = 1, big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ls, ll) < 0) { perror("bind"); return 1; }
  int raw = socket(ls.ss_family, SOCK_RAW, IPPROTO_RAW);
  if (raw < 0) { perror("raw socket"); return 1; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; // no SA_RESTART: a blocked recvfrom returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("{\"ready\":true}\n");
  fflush(stdout);
  static uint8_t packet[65536 + 64];
  const int h = v6 ? 40 : 20;
  long received = 0, copies = 0, errors = 0;
  while (!stop) {
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t len = recvfrom(fd, packet + h + 8, 65536, 0, (struct sockaddr *)&from, &fl);
    if (len < 0) continue;
    received++;
    const uint8_t *src = v6 ? (const uint8_t *)&((struct sockaddr_in6 *)&from)->sin6_addr : (const uint8_t *)&((struct sockaddr_in *)&from)->sin_addr;
    int sport = ntohs(v6 ? ((struct sockaddr_in6 *)&from)->sin6_port : ((struct sockaddr_in *)&from)->sin_port);
    int ulen = 8 + (int)len;
    // The payload's part of the UDP checksum is the same for every copy.
    uint32_t payload_sum = sum16(packet + h + 8, len, 0);
    for (int i = 0; i < n; i++) {
      uint8_t *ip = packet, *u = packet + h;
      uint32_t s;
      if (!v6) {
        memset(ip, 0, 20);
        ip[0] = 0x45; ip[2] = (20 + ulen) >> 8; ip[3] = (20 + ulen) & 0xff; ip[8] = 64; ip[9] = 17;
        memcpy(ip + 12, src, 4); memcpy(ip + 16, dst[i], 4);
        s = sum16(src, 4, 0); s = sum16(dst[i], 4, s);
      } else {
        memset(ip, 0, 40);
        ip[0] = 0x60; ip[4] = ulen >> 8; ip[5] = ulen & 0xff; ip[6] = 17; ip[7] = 64;
        memcpy(ip + 8, src, 16); memcpy(ip + 24, dst[i], 16);
        s = sum16(src, 16, 0); s = sum16(dst[i], 16, s);
      }
      u[0] = sport >> 8; u[1] = sport & 0xff; u[2] = dport[i] >> 8; u[3] = dport[i] & 0xff;
      u[4] = ulen >> 8; u[5] = ulen & 0xff; u[6] = 0; u[7] = 0;
      s += 17 + ulen; s = sum16(u, 8, s); s += payload_sum;
      uint16_t c = fold(s); if (c == 0) c = 0xffff;
      u[6] = c >> 8; u[7] = c & 0xff;
      if (sendto(raw, packet, h + ulen, 0, (struct sockaddr *)&to[i], tl[i]) < 0) errors++;
      else copies++;
    }
  }
  printf("{\"received\":%ld,\"copies\":%ld,\"errors\":%ld}\n", received, copies, errors);
  return 0;
}
