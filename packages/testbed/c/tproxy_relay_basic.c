// The C relay the anysrc relay is measured against: the same design, single-threaded.
// TPROXY listeners (IPv4 + IPv6, IP_RECVORIGDSTADDR), one upstream socket per client address
// (endpoint-independent mapping, SO_MARK), replies emitted through one IPPROTO_RAW socket per
// family with IP + UDP headers built here (two iovecs, sendmmsg per drained batch).
// No idle expiry or fragmentation: benchmark payloads fit the MTU and the run is short.
// usage: tproxy_relay PORT MARK    prints {"event":"listening"}; on SIGTERM prints counters, exits 0
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench_common.h"

#define BATCH 32
#define SLOT 65536
#define MAXFD 131072
#define TABLE (1 << 18)

struct session { struct sockaddr_storage client; int fd; int used; };
static struct session table[TABLE];
static struct session *by_fd[MAXFD];
static volatile sig_atomic_t stop;
static unsigned long long received, forwarded, replies, sessions;

static void on_signal(int s) { (void)s; stop = 1; }

static int listener(int v6, int port) {
  int fd = tproxy_listener(v6, port), big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: tproxy_relay PORT MARK\n"); return 2; }
  int port = atoi(argv[1]), mark = atoi(argv[2]);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  int ep = epoll_create1(0);
  int l4 = listener(0, port), l6 = listener(1, port);
  int raw4 = socket(AF_INET, SOCK_RAW, IPPROTO_RAW), raw6 = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW);
  setsockopt(raw4, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
  setsockopt(raw6, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)l4};
  epoll_ctl(ep, EPOLL_CTL_ADD, l4, &ev);
  ev.data.u32 = (uint32_t)l6;
  epoll_ctl(ep, EPOLL_CTL_ADD, l6, &ev);
  printf("{\"event\":\"listening\"}\n"); fflush(stdout);

  static char bufs[BATCH][SLOT];
  static char controls[BATCH][128];
  static struct sockaddr_storage names[BATCH];
  static uint8_t headers[BATCH][64];
  static struct sockaddr_storage dests[BATCH];
  struct mmsghdr in[BATCH], out[BATCH];
  struct iovec iov[BATCH], oiov[BATCH][2];
  struct epoll_event evs[256];
  while (!stop) {
    int ne = epoll_wait(ep, evs, 256, 200);
    for (int e = 0; e < ne; e++) {
      int fd = (int)evs[e].data.u32;
      int is_listener = fd == l4 || fd == l6;
      for (;;) {
        for (int i = 0; i < BATCH; i++) {
          memset(&in[i], 0, sizeof in[i]);
          iov[i].iov_base = bufs[i]; iov[i].iov_len = SLOT;
          in[i].msg_hdr.msg_iov = &iov[i]; in[i].msg_hdr.msg_iovlen = 1;
          in[i].msg_hdr.msg_name = &names[i]; in[i].msg_hdr.msg_namelen = sizeof names[i];
          in[i].msg_hdr.msg_control = controls[i]; in[i].msg_hdr.msg_controllen = sizeof controls[i];
        }
        int n = recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) break;
        if (is_listener) {
          for (int i = 0; i < n; i++) {
            received++;
            struct sockaddr_storage dst; int have = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&in[i].msg_hdr); c; c = CMSG_NXTHDR(&in[i].msg_hdr, c)) {
              if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) || (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR)) {
                memcpy(&dst, CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0)); have = 1;
              }
            }
            if (!have) continue;
            uint32_t h = sockaddr_hash(&names[i]) & (TABLE - 1);
            while (table[h].used && !sockaddr_same(&table[h].client, &names[i])) h = (h + 1) & (TABLE - 1);
            struct session *s = &table[h];
            if (!s->used) {
              int u = socket(names[i].ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
              if (u < 0 || u >= MAXFD) { if (u >= 0) close(u); continue; }
              setsockopt(u, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
              s->used = 1; s->fd = u; s->client = names[i]; by_fd[u] = s; sessions++;
              struct epoll_event uev = {.events = EPOLLIN, .data.u32 = (uint32_t)u};
              epoll_ctl(ep, EPOLL_CTL_ADD, u, &uev);
            }
            socklen_t dl = dst.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
            if (sendto(s->fd, bufs[i], in[i].msg_len, 0, (void *)&dst, dl) >= 0) forwarded++;
          }
        } else {
          struct session *s = by_fd[fd];
          if (!s) break;
          int v6 = s->client.ss_family == AF_INET6;
          for (int i = 0; i < n; i++) {
            uint8_t *h = headers[i];
            int size = (int)in[i].msg_len, ulen = 8 + size, hl;
            uint32_t sum;
            if (!v6) {
              struct sockaddr_in *src = (void *)&names[i], *cl = (void *)&s->client;
              memset(h, 0, 20);
              h[0] = 0x45; h[2] = (20 + ulen) >> 8; h[3] = (20 + ulen) & 0xff; h[8] = 64; h[9] = 17;
              memcpy(h + 12, &src->sin_addr, 4); memcpy(h + 16, &cl->sin_addr, 4);
              memcpy(h + 20, &src->sin_port, 2); memcpy(h + 22, &cl->sin_port, 2);
              sum = sum16(h + 12, 8, 0); hl = 20;
              struct sockaddr_in *d = (void *)&dests[i]; memset(d, 0, sizeof *d); d->sin_family = AF_INET; d->sin_addr = cl->sin_addr;
            } else {
              struct sockaddr_in6 *src = (void *)&names[i], *cl = (void *)&s->client;
              memset(h, 0, 40);
              h[0] = 0x60; h[4] = ulen >> 8; h[5] = ulen & 0xff; h[6] = 17; h[7] = 64;
              memcpy(h + 8, &src->sin6_addr, 16); memcpy(h + 24, &cl->sin6_addr, 16);
              memcpy(h + 40, &src->sin6_port, 2); memcpy(h + 42, &cl->sin6_port, 2);
              sum = sum16(h + 8, 32, 0); hl = 40;
              struct sockaddr_in6 *d = (void *)&dests[i]; memset(d, 0, sizeof *d); d->sin6_family = AF_INET6; d->sin6_addr = cl->sin6_addr;
            }
            uint8_t *u = h + hl;
            u[4] = ulen >> 8; u[5] = ulen & 0xff; u[6] = 0; u[7] = 0;
            sum += 17 + ulen; sum = sum16(u, 8, sum); sum = sum16((uint8_t *)bufs[i], size, sum);
            uint16_t c = fold(sum); if (!c) c = 0xffff;
            u[6] = c >> 8; u[7] = c & 0xff;
            oiov[i][0].iov_base = h; oiov[i][0].iov_len = hl + 8;
            oiov[i][1].iov_base = bufs[i]; oiov[i][1].iov_len = size;
            memset(&out[i], 0, sizeof out[i]);
            out[i].msg_hdr.msg_iov = oiov[i]; out[i].msg_hdr.msg_iovlen = 2;
            out[i].msg_hdr.msg_name = &dests[i];
            out[i].msg_hdr.msg_namelen = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
          }
          for (int done = 0; done < n;) {
            int k = sendmmsg(v6 ? raw6 : raw4, out + done, n - done, 0);
            if (k <= 0) break;
            done += k; replies += k;
          }
        }
      }
    }
  }
  printf("{\"event\":\"final\",\"received\":%llu,\"forwarded\":%llu,\"replies\":%llu,\"sessions\":%llu}\n", received, forwarded, replies, sessions);
  return 0;
}
