// The C relay anysrc is measured against, written the way a careful C author would: single-threaded,
// TPROXY listeners (IPv4 + IPv6, IP_RECVORIGDSTADDR) read with recvmmsg batches of 64; one upstream
// socket per client address (endpoint-independent mapping, SO_MARK), each session's datagrams of a
// batch sent upstream with one sendmmsg; replies of every ready session gathered into one sendmmsg per
// family through one IPPROTO_RAW socket (IP + UDP headers built here, payload by reference); buffers
// forced large (SO_RCVBUFFORCE / SO_SNDBUFFORCE) and blocking sends, so that a burst waits for room
// instead of being dropped. Kernel drops on the listeners are read with SO_RXQ_OVFL.
// No idle expiry or fragmentation: benchmark payloads fit the MTU and the run is short.
// (tproxy_relay_basic.c is the first version: batches of 32, one sendto per datagram upstream, default
// upstream buffers; the bench's --full run shows both.)
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

#define BATCH 64
#define SLOT 2048
#define MAXFD 131072
#define TABLE (1 << 18)
#define BUFFER (8 << 20)
#define UPSTREAM_BUFFER (1 << 20)

struct session { struct sockaddr_storage client; int fd; int used; };
static struct session table[TABLE];
static struct session *by_fd[MAXFD];
static volatile sig_atomic_t stop;
static unsigned long long received, forwarded, replies, sessions, send_errors;
static uint32_t overflow4, overflow6; // SO_RXQ_OVFL: cumulative drops per listener
static int mark, ep;

static void on_signal(int s) { (void)s; stop = 1; }

static void buffers(int fd, int rcv, int snd) {
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd);
}
static int listener(int v6, int port) {
  int fd = tproxy_listener(v6, port), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  buffers(fd, BUFFER, BUFFER);
  return fd;
}

// One receive ring: BATCH slots with their names and control buffers, re-pointed before each read.
struct ring {
  struct mmsghdr m[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage names[BATCH];
  char controls[BATCH][128];
  char bufs[BATCH][SLOT];
};
static int read_batch(int fd, struct ring *r, int want) {
  for (int i = 0; i < want; i++) {
    r->iov[i].iov_base = r->bufs[i]; r->iov[i].iov_len = SLOT;
    struct msghdr *h = &r->m[i].msg_hdr;
    h->msg_iov = &r->iov[i]; h->msg_iovlen = 1;
    h->msg_name = &r->names[i]; h->msg_namelen = sizeof r->names[i];
    h->msg_control = r->controls[i]; h->msg_controllen = sizeof r->controls[i];
    h->msg_flags = 0;
  }
  return recvmmsg(fd, r->m, want, MSG_DONTWAIT, NULL);
}

// Sends every message, blocking while the socket buffer is full; a hard error skips one message.
static unsigned send_all(int fd, struct mmsghdr *m, int n) {
  unsigned sent = 0;
  for (int done = 0; done < n;) {
    int k = sendmmsg(fd, m + done, n - done, 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      send_errors++; done++; continue;
    }
    done += k; sent += k;
  }
  return sent;
}

static struct session *session_of(const struct sockaddr_storage *client) {
  uint32_t h = sockaddr_hash(client) & (TABLE - 1);
  while (table[h].used && !sockaddr_same(&table[h].client, client)) h = (h + 1) & (TABLE - 1);
  struct session *s = &table[h];
  if (s->used) return s;
  int u = socket(client->ss_family, SOCK_DGRAM, 0); // blocking: a full buffer waits, never drops
  if (u < 0 || u >= MAXFD) { if (u >= 0) close(u); return NULL; }
  setsockopt(u, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
  buffers(u, UPSTREAM_BUFFER, UPSTREAM_BUFFER);
  s->used = 1; s->fd = u; s->client = *client; by_fd[u] = s; sessions++;
  struct epoll_event uev = {.events = EPOLLIN, .data.u32 = (uint32_t)u};
  epoll_ctl(ep, EPOLL_CTL_ADD, u, &uev);
  return s;
}

// Client datagrams: find each one's session, then one sendmmsg per session with its datagrams in order.
static struct ring in_ring;
static void client_batch(struct ring *r, int n, uint32_t *overflow) {
  static struct session *owner[BATCH];
  static struct sockaddr_storage dst[BATCH];
  static struct mmsghdr out[BATCH];
  static struct iovec oiov[BATCH];
  for (int i = 0; i < n; i++) {
    received++;
    owner[i] = NULL;
    int have = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&r->m[i].msg_hdr); c; c = CMSG_NXTHDR(&r->m[i].msg_hdr, c)) {
      if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) || (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR)) {
        memcpy(&dst[i], CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0)); have = 1;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        memcpy(overflow, CMSG_DATA(c), 4);
      }
    }
    if (!have) continue;
    owner[i] = session_of(&r->names[i]);
  }
  for (int i = 0; i < n; i++) {
    struct session *s = owner[i];
    if (!s) continue;
    int k = 0;
    for (int j = i; j < n; j++) {
      if (owner[j] != s) continue;
      owner[j] = NULL;
      oiov[k].iov_base = r->bufs[j]; oiov[k].iov_len = r->m[j].msg_len;
      memset(&out[k], 0, sizeof out[k]);
      out[k].msg_hdr.msg_iov = &oiov[k]; out[k].msg_hdr.msg_iovlen = 1;
      out[k].msg_hdr.msg_name = &dst[j];
      out[k].msg_hdr.msg_namelen = dst[j].ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
      k++;
    }
    forwarded += send_all(s->fd, out, k);
  }
}

// Replies waiting for the round's sendmmsg, per family: headers built here, the payload in its slot.
struct pending {
  int raw, v6, n;
  struct mmsghdr out[BATCH];
  struct iovec iov[BATCH][2];
  uint8_t headers[BATCH][64];
  struct sockaddr_storage dests[BATCH];
  char bufs[BATCH][SLOT];
};
static struct pending pend4, pend6;

static void flush(struct pending *p) {
  if (p->n == 0) return;
  replies += send_all(p->raw, p->out, p->n);
  p->n = 0;
}

static void add_reply(struct pending *p, const struct session *s, const struct sockaddr_storage *from, int size) {
  int i = p->n;
  uint8_t *h = p->headers[i];
  int ulen = 8 + size, hl;
  uint32_t sum;
  if (!p->v6) {
    const struct sockaddr_in *src = (const void *)from, *cl = (const void *)&s->client;
    memset(h, 0, 20);
    h[0] = 0x45; h[2] = (20 + ulen) >> 8; h[3] = (20 + ulen) & 0xff; h[8] = 64; h[9] = 17;
    memcpy(h + 12, &src->sin_addr, 4); memcpy(h + 16, &cl->sin_addr, 4);
    memcpy(h + 20, &src->sin_port, 2); memcpy(h + 22, &cl->sin_port, 2);
    sum = sum16(h + 12, 8, 0); hl = 20;
    struct sockaddr_in *d = (void *)&p->dests[i]; memset(d, 0, sizeof *d); d->sin_family = AF_INET; d->sin_addr = cl->sin_addr;
  } else {
    const struct sockaddr_in6 *src = (const void *)from, *cl = (const void *)&s->client;
    memset(h, 0, 40);
    h[0] = 0x60; h[4] = ulen >> 8; h[5] = ulen & 0xff; h[6] = 17; h[7] = 64;
    memcpy(h + 8, &src->sin6_addr, 16); memcpy(h + 24, &cl->sin6_addr, 16);
    memcpy(h + 40, &src->sin6_port, 2); memcpy(h + 42, &cl->sin6_port, 2);
    sum = sum16(h + 8, 32, 0); hl = 40;
    struct sockaddr_in6 *d = (void *)&p->dests[i]; memset(d, 0, sizeof *d); d->sin6_family = AF_INET6; d->sin6_addr = cl->sin6_addr;
  }
  uint8_t *u = h + hl;
  u[4] = ulen >> 8; u[5] = ulen & 0xff; u[6] = 0; u[7] = 0;
  sum += 17 + ulen; sum = sum16(u, 8, sum); sum += sum16_wide((uint8_t *)p->bufs[i], size);
  uint16_t c = fold(sum); if (!c) c = 0xffff;
  u[6] = c >> 8; u[7] = c & 0xff;
  p->iov[i][0].iov_base = h; p->iov[i][0].iov_len = hl + 8;
  p->iov[i][1].iov_base = p->bufs[i]; p->iov[i][1].iov_len = size;
  memset(&p->out[i], 0, sizeof p->out[i]);
  p->out[i].msg_hdr.msg_iov = p->iov[i]; p->out[i].msg_hdr.msg_iovlen = 2;
  p->out[i].msg_hdr.msg_name = &p->dests[i];
  p->out[i].msg_hdr.msg_namelen = p->v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  p->n++;
}

// Replies of one session: read straight into the pending slots of its family, flushing when full.
static void session_replies(struct session *s) {
  struct pending *p = s->client.ss_family == AF_INET6 ? &pend6 : &pend4;
  static struct mmsghdr m[BATCH];
  static struct iovec iov[BATCH];
  static struct sockaddr_storage names[BATCH];
  for (;;) {
    if (p->n == BATCH) flush(p);
    int room = BATCH - p->n;
    for (int i = 0; i < room; i++) {
      iov[i].iov_base = p->bufs[p->n + i]; iov[i].iov_len = SLOT;
      memset(&m[i], 0, sizeof m[i]);
      m[i].msg_hdr.msg_iov = &iov[i]; m[i].msg_hdr.msg_iovlen = 1;
      m[i].msg_hdr.msg_name = &names[i]; m[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    int n = recvmmsg(s->fd, m, room, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) add_reply(p, s, &names[i], (int)m[i].msg_len);
    if (n < room) return;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: tproxy_relay PORT MARK\n"); return 2; }
  int port = atoi(argv[1]);
  mark = atoi(argv[2]);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  ep = epoll_create1(0);
  int l4 = listener(0, port), l6 = listener(1, port);
  pend4.raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); pend4.v6 = 0;
  pend6.raw = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW); pend6.v6 = 1;
  for (int i = 0; i < 2; i++) {
    int fd = i ? pend6.raw : pend4.raw;
    setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
    buffers(fd, 1 << 16, BUFFER);
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)l4};
  epoll_ctl(ep, EPOLL_CTL_ADD, l4, &ev);
  ev.data.u32 = (uint32_t)l6;
  epoll_ctl(ep, EPOLL_CTL_ADD, l6, &ev);
  printf("{\"event\":\"listening\"}\n"); fflush(stdout);

  struct epoll_event evs[256];
  while (!stop) {
    int ne = epoll_wait(ep, evs, 256, 200);
    for (int e = 0; e < ne; e++) {
      int fd = (int)evs[e].data.u32;
      if (fd == l4 || fd == l6) {
        for (;;) {
          int n = read_batch(fd, &in_ring, BATCH);
          if (n <= 0) break;
          client_batch(&in_ring, n, fd == l4 ? &overflow4 : &overflow6);
          if (n < BATCH) break;
        }
      } else if (by_fd[fd]) {
        session_replies(by_fd[fd]);
      }
    }
    flush(&pend4);
    flush(&pend6);
  }
  printf("{\"event\":\"final\",\"received\":%llu,\"forwarded\":%llu,\"replies\":%llu,\"sessions\":%llu,\"sendErrors\":%llu,\"kernelDropped\":{\"listener4\":%u,\"listener6\":%u}}\n",
         received, forwarded, replies, sessions, send_errors, overflow4, overflow6);
  return 0;
}
