// The C senders the anysrc transports are compared with, one per variant, doing the same work per
// datagram: write the sequence number into the payload, build headers and checksums where the
// variant needs them, hand batches to the kernel.
// usage: send_baseline raw|bindsrc|tun|packet SRC_IP SRC_PORT DST_IP DST_PORT COUNT SIZE BATCH [TUN_NAME|DEV/MAC [SOURCES]]
//   packet: frames through one AF_PACKET SOCK_DGRAM socket (PACKET_QDISC_BYPASS) to device DEV and
//   next-hop MAC (aa:bb:cc:dd:ee:ff), IP headers and both checksums ours, sendmmsg batches.
//   SOURCES: K source ports SRC_PORT.. round-robin, as `anysrc send --sources K`: raw and tun write
//   each datagram's own port; bindsrc binds K sockets and sends one sendmmsg per source per batch.
// prints {"sent":N,"seconds":S,"pps":P}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench_common.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

// Writes IP + UDP headers for `payload` into `out`; returns header length.
static int build_headers(uint8_t *out, int family, const uint8_t *src, const uint8_t *dst, int sport, int dport,
                         const uint8_t *payload, int size, int ip_checksum) {
  int ulen = 8 + size, h = family == 4 ? 20 : 40;
  uint32_t s;
  if (family == 4) {
    memset(out, 0, 20);
    out[0] = 0x45; out[2] = (20 + ulen) >> 8; out[3] = (20 + ulen) & 0xff; out[8] = 64; out[9] = 17;
    memcpy(out + 12, src, 4); memcpy(out + 16, dst, 4);
    if (ip_checksum) { uint16_t c = fold(sum16(out, 20, 0)); out[10] = c >> 8; out[11] = c & 0xff; }
    s = sum16(src, 4, 0); s = sum16(dst, 4, s);
  } else {
    memset(out, 0, 40);
    out[0] = 0x60; out[4] = ulen >> 8; out[5] = ulen & 0xff; out[6] = 17; out[7] = 64;
    memcpy(out + 8, src, 16); memcpy(out + 24, dst, 16);
    s = sum16(src, 16, 0); s = sum16(dst, 16, s);
  }
  uint8_t *u = out + h;
  u[0] = sport >> 8; u[1] = sport & 0xff; u[2] = dport >> 8; u[3] = dport & 0xff;
  u[4] = ulen >> 8; u[5] = ulen & 0xff; u[6] = 0; u[7] = 0;
  s += 17 + ulen; s = sum16(u, 8, s); s = sum16(payload, size, s);
  uint16_t c = fold(s); if (c == 0) c = 0xffff;
  u[6] = c >> 8; u[7] = c & 0xff;
  return h + 8;
}

static void wait_writable(int fd) {
  struct pollfd p = {fd, POLLOUT, 0};
  poll(&p, 1, 100);
}

int main(int argc, char **argv) {
  if (argc < 9) { fprintf(stderr, "usage: send_baseline raw|bindsrc|tun SRC_IP SRC_PORT DST_IP DST_PORT COUNT SIZE BATCH [TUN]\n"); return 2; }
  const char *mode = argv[1];
  int family = strchr(argv[2], ':') ? 6 : 4;
  uint8_t src[16], dst[16];
  inet_pton(family == 4 ? AF_INET : AF_INET6, argv[2], src);
  inet_pton(family == 4 ? AF_INET : AF_INET6, argv[4], dst);
  int sport = atoi(argv[3]), dport = atoi(argv[5]);
  long count = atol(argv[6]);
  int size = atoi(argv[7]), batch = atoi(argv[8]);
  if (batch < 1 || batch > 1024) batch = 32;
  int sources = argc > 10 ? atoi(argv[10]) : 1;
  if (sources < 1) sources = 1;
  struct sockaddr_storage dss; memset(&dss, 0, sizeof dss);
  socklen_t dl;
  int packet_mode = !strcmp(mode, "packet");
  if (packet_mode) {
    // DEV/MAC: the device and next hop the route and neighbour tables name (the bench reads them).
    char dev[IFNAMSIZ] = {0};
    const char *arg = argc > 9 ? argv[9] : "", *slash = strchr(arg, '/');
    if (!slash || slash - arg >= IFNAMSIZ) { fprintf(stderr, "packet: expected DEV/MAC, got %s\n", arg); return 2; }
    memcpy(dev, arg, slash - arg);
    struct sockaddr_ll *l = (struct sockaddr_ll *)&dss;
    l->sll_family = AF_PACKET; l->sll_protocol = htons(family == 4 ? ETH_P_IP : ETH_P_IPV6);
    l->sll_ifindex = if_nametoindex(dev); l->sll_halen = 6;
    if (!l->sll_ifindex || sscanf(slash + 1, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &l->sll_addr[0], &l->sll_addr[1], &l->sll_addr[2], &l->sll_addr[3], &l->sll_addr[4], &l->sll_addr[5]) != 6) {
      fprintf(stderr, "packet: bad device or MAC in %s\n", arg); return 2;
    }
    dl = sizeof *l;
  } else if (family == 4) {
    struct sockaddr_in *d = (struct sockaddr_in *)&dss; d->sin_family = AF_INET; memcpy(&d->sin_addr, dst, 4);
    d->sin_port = strcmp(mode, "raw") ? htons(dport) : 0; dl = sizeof *d;
  } else {
    struct sockaddr_in6 *d = (struct sockaddr_in6 *)&dss; d->sin6_family = AF_INET6; memcpy(&d->sin6_addr, dst, 16);
    d->sin6_port = strcmp(mode, "raw") ? htons(dport) : 0; dl = sizeof *d;
  }
  uint8_t *payloads = calloc(batch, size + 1), *headers = calloc(batch, 64), *packet = malloc(64 + size);
  for (int k = 0; k < batch; k++) for (int i = 0; i < size; i++) payloads[k * (size + 1) + i] = i & 0xff;
  struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
  struct iovec *iov = calloc(batch * 2, sizeof *iov);
  int fd, *fds = calloc(sources, sizeof *fds);
  int *order = calloc(batch, sizeof *order);
  if (!strcmp(mode, "tun")) {
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, argc > 9 ? argv[9] : "anysrc0", IFNAMSIZ - 1);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("tun"); return 1; }
  } else if (!strcmp(mode, "raw")) {
    fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_RAW);
    if (fd < 0) { perror("socket"); return 1; }
  } else if (packet_mode) {
    fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0) { perror("socket"); return 1; }
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  } else {
    for (int j = 0; j < sources; j++) {
      fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      int one = 1;
      setsockopt(fd, family == 4 ? SOL_IP : SOL_IPV6, family == 4 ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one, sizeof one);
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (family == 6) setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof one);
      struct sockaddr_storage ss; memset(&ss, 0, sizeof ss);
      if (family == 4) { struct sockaddr_in *s = (struct sockaddr_in *)&ss; s->sin_family = AF_INET; s->sin_port = htons(sport + j); memcpy(&s->sin_addr, src, 4); }
      else { struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss; s->sin6_family = AF_INET6; s->sin6_port = htons(sport + j); memcpy(&s->sin6_addr, src, 16); }
      if (bind(fd, (struct sockaddr *)&ss, family == 4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) { perror("bind"); return 1; }
      fds[j] = fd;
    }
  }
  double t0 = now_s();
  long seq = 0;
  while (seq < count) {
    int n = count - seq < batch ? (int)(count - seq) : batch;
    if (!strcmp(mode, "tun")) {
      for (int k = 0; k < n; k++, seq++) {
        uint8_t *p = payloads + k * (size + 1);
        if (size >= 4) { uint32_t be = htonl((uint32_t)seq); memcpy(p, &be, 4); }
        int h = build_headers(packet, family, src, dst, sport + (int)(seq % sources), dport, p, size, 1);
        memcpy(packet + h, p, size);
        while (write(fd, packet, h + size) < 0) { if (errno != EAGAIN && errno != ENOBUFS) { perror("write"); return 1; } wait_writable(fd); }
      }
      continue;
    }
    // Messages grouped by source (datagram seq goes from source seq % SOURCES): one run per source.
    int at = 0;
    for (int j = 0; j < sources; j++) for (int k = 0; k < n; k++) if ((seq + k) % sources == j) order[at++] = k;
    for (int k = 0; k < n; k++) {
      uint8_t *p = payloads + order[k] * (size + 1);
      if (size >= 4) { uint32_t be = htonl((uint32_t)(seq + order[k])); memcpy(p, &be, 4); }
      struct msghdr *m = &msgs[k].msg_hdr;
      m->msg_name = &dss; m->msg_namelen = dl; m->msg_iov = &iov[2 * k];
      if (!strcmp(mode, "raw") || packet_mode) {
        // Nobody fills the IPv4 header checksum of a frame: packet computes it, raw leaves it to the kernel.
        int h = build_headers(headers + 64 * k, family, src, dst, sport + (int)((seq + order[k]) % sources), dport, p, size, packet_mode);
        iov[2 * k].iov_base = headers + 64 * k; iov[2 * k].iov_len = h;
        iov[2 * k + 1].iov_base = p; iov[2 * k + 1].iov_len = size;
        m->msg_iovlen = 2;
      } else {
        iov[2 * k].iov_base = p; iov[2 * k].iov_len = size;
        m->msg_iovlen = 1;
      }
    }
    for (int start = 0; start < n;) {
      int j = (int)((seq + order[start]) % sources), end = start;
      while (end < n && (int)((seq + order[end]) % sources) == j) end++;
      int one_socket = !strcmp(mode, "raw") || packet_mode;
      int out = one_socket ? fd : fds[j];
      if (one_socket) end = n; // one raw (or packet) socket: the whole batch in one call
      for (int done = start; done < end;) {
        int r = sendmmsg(out, msgs + done, end - done, 0);
        if (r > 0) { done += r; continue; }
        if (errno != EAGAIN && errno != ENOBUFS) { perror("sendmmsg"); return 1; }
        wait_writable(out);
      }
      start = end;
    }
    seq += n;
  }
  double secs = now_s() - t0;
  printf("{\"sent\":%ld,\"seconds\":%.6f,\"pps\":%.0f}\n", seq, secs, seq / secs);
  return 0;
}
