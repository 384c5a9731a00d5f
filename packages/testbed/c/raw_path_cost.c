// What one spoofed IPv4 datagram costs the kernel on each way user space can emit it: the same
// 256-byte UDP datagram (source SRC:5000, checksums computed), sent COUNT times in sendmmsg batches
// of 32 to DST:PORT, and the sender's CPU (user + system, which includes the veth delivery that
// runs in its softirq) per datagram.
//   hdrincl  IPPROTO_RAW: IP + UDP headers written here (the raw transport, samplicator)
//   pktinfo  SOCK_RAW/IPPROTO_UDP with IP_TRANSPARENT: UDP header here, source in an IP_PKTINFO
//            cmsg, IP header by the kernel (its output route is cached, not one per packet)
//   packet   AF_PACKET/SOCK_DGRAM on IFNAME to MAC: IP + UDP headers here, no IP layer at all
//            (no route lookup, no netfilter; the caller resolves the next hop)
// usage: raw_path_cost hdrincl|pktinfo|packet SRC DST PORT COUNT [IFNAME MAC]
// prints {"mode":"…","sent":N,"cpu_us_per_datagram":X}
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include "bench_common.h"

#define BATCH 32
#define SIZE 256

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: raw_path_cost hdrincl|pktinfo|packet SRC DST PORT COUNT [IFNAME MAC]\n"); return 2; }
  const char *mode = argv[1];
  int packet = !strcmp(mode, "packet"), pktinfo = !strcmp(mode, "pktinfo"), ip_header = !pktinfo;
  if (packet && argc < 8) { fprintf(stderr, "packet mode needs IFNAME and MAC\n"); return 2; }
  uint8_t src[4], dst[4];
  inet_pton(AF_INET, argv[2], src);
  inet_pton(AF_INET, argv[3], dst);
  int port = atoi(argv[4]);
  long count = atol(argv[5]);
  int fd = packet ? socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, htons(ETH_P_IP))
                  : socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, pktinfo ? IPPROTO_UDP : IPPROTO_RAW);
  if (fd < 0) { perror("socket"); return 1; }
  int one = 1;
  if (pktinfo && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0) { perror("IP_TRANSPARENT"); return 1; }
  struct sockaddr_in to = {.sin_family = AF_INET};
  memcpy(&to.sin_addr, dst, 4);
  struct sockaddr_ll link = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_halen = 6};
  if (packet) {
    link.sll_ifindex = (int)if_nametoindex(argv[6]);
    if (!link.sll_ifindex || sscanf(argv[7], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &link.sll_addr[0], &link.sll_addr[1], &link.sll_addr[2],
                                    &link.sll_addr[3], &link.sll_addr[4], &link.sll_addr[5]) != 6) { fprintf(stderr, "bad IFNAME or MAC\n"); return 2; }
  }
  static uint8_t headers[BATCH][28], payload[BATCH][SIZE];
  static char control[BATCH][CMSG_SPACE(sizeof(struct in_pktinfo))];
  struct iovec iov[BATCH][2];
  struct mmsghdr m[BATCH];
  memset(m, 0, sizeof m);
  for (int k = 0; k < BATCH; k++) {
    for (int i = 0; i < SIZE; i++) payload[k][i] = (uint8_t)(i + k);
    int ulen = 8 + SIZE;
    uint8_t *u = headers[k];
    if (ip_header) {
      uint8_t *ip = headers[k];
      memset(ip, 0, 20);
      ip[0] = 0x45; ip[2] = (20 + ulen) >> 8; ip[3] = (20 + ulen) & 0xff; ip[8] = 64; ip[9] = IPPROTO_UDP;
      memcpy(ip + 12, src, 4); memcpy(ip + 16, dst, 4);
      uint16_t c = fold(sum16(ip, 20, 0)); // the kernel fills it for IPPROTO_RAW, not for AF_PACKET
      ip[10] = c >> 8; ip[11] = c & 0xff;
      u = ip + 20;
    }
    u[0] = 5000 >> 8; u[1] = 5000 & 0xff; u[2] = port >> 8; u[3] = port & 0xff; u[4] = ulen >> 8; u[5] = ulen & 0xff; u[6] = u[7] = 0;
    uint32_t s = sum16(src, 4, 0);
    s = sum16(dst, 4, s) + IPPROTO_UDP + ulen;
    s = sum16(payload[k], SIZE, sum16(u, 8, s));
    uint16_t c = fold(s);
    if (!c) c = 0xffff;
    u[6] = c >> 8; u[7] = c & 0xff;
    iov[k][0] = (struct iovec){headers[k], ip_header ? 28 : 8};
    iov[k][1] = (struct iovec){payload[k], SIZE};
    struct msghdr *h = &m[k].msg_hdr;
    h->msg_iov = iov[k]; h->msg_iovlen = 2;
    if (packet) { h->msg_name = &link; h->msg_namelen = sizeof link; }
    else { h->msg_name = &to; h->msg_namelen = sizeof to; }
    if (pktinfo) {
      h->msg_control = control[k]; h->msg_controllen = sizeof control[k];
      struct cmsghdr *cm = CMSG_FIRSTHDR(h);
      cm->cmsg_level = SOL_IP; cm->cmsg_type = IP_PKTINFO; cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
      struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(cm);
      memset(pi, 0, sizeof *pi);
      memcpy(&pi->ipi_spec_dst, src, 4);
    }
  }
  double t0 = cpu_us();
  long sent = 0;
  while (sent < count) {
    int n = sendmmsg(fd, m, count - sent < BATCH ? (unsigned)(count - sent) : BATCH, 0);
    if (n < 0) {
      if (errno != EAGAIN && errno != ENOBUFS) { perror("sendmmsg"); return 1; }
      struct pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, 10);
      continue;
    }
    sent += n;
  }
  printf("{\"mode\":\"%s\",\"sent\":%ld,\"cpu_us_per_datagram\":%.3f}\n", mode, sent, (cpu_us() - t0) / (double)sent);
  return 0;
}
