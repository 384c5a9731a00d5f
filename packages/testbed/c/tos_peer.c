// What the IP header of each datagram carried, seen from both ends of a relay.
//   tos_peer server HOST PORT
//       Answer every datagram. Request payload: [seq, reply_tos, reply_ttl (0 = default)]. The answer
//       carries that TOS / traffic class and TTL, and its payload says what the request arrived with:
//       [seq, reply_tos, seen_tos, seen_ttl]. Prints {"ready":true}.
//   tos_peer client HOST PORT TOS[,TOS…] TTL REPLY_TOS[,…]
//       For each TOS in turn: send one request with that TOS and TTL asking for the matching
//       REPLY_TOS, wait up to 400 ms for the answer; print one JSON line with every result:
//       {"done":true,"results":[{"sent":..,"serverTos":..,"serverTtl":..,"replyTos":..,"replyTtl":..}|null,…]}
// TOS and TTL are read with IP_RECVTOS/IP_RECVTTL (IPV6_RECVTCLASS/IPV6_RECVHOPLIMIT): the kernel's
// own view, independent of anysrc's code.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int family_of(const char *host) { return strchr(host, ':') ? AF_INET6 : AF_INET; }

static socklen_t make_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (family_of(host) == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) { fprintf(stderr, "bad address %s\n", host); exit(2); }
    return sizeof *a;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  if (inet_pton(AF_INET, host, &a->sin_addr) != 1) { fprintf(stderr, "bad address %s\n", host); exit(2); }
  return sizeof *a;
}

static void set_int(int fd, int level, int name, int value, const char *what) {
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) { perror(what); exit(1); }
}

static void want_fields(int fd, int family) {
  int one = 1;
  if (family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
  } else {
    setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one);
  }
}

static void set_fields(int fd, int family, int tos, int ttl) {
  if (family == AF_INET6) {
    set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, tos, "IPV6_TCLASS");
    set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, "IPV6_UNICAST_HOPS");
  } else {
    set_int(fd, IPPROTO_IP, IP_TOS, tos, "IP_TOS");
    set_int(fd, IPPROTO_IP, IP_TTL, ttl, "IP_TTL");
  }
}

// recvmsg one datagram; its TOS and TTL from the control messages (-1 when absent).
static ssize_t receive(int fd, unsigned char *buf, size_t size, struct sockaddr_storage *from, socklen_t *fromlen, int *tos, int *ttl) {
  char control[256];
  struct iovec iov = {buf, size};
  struct msghdr m = {0};
  m.msg_name = from;
  m.msg_namelen = from ? sizeof *from : 0;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ssize_t n = recvmsg(fd, &m, 0);
  if (n < 0) return n;
  if (fromlen) *fromlen = m.msg_namelen;
  *tos = -1;
  *ttl = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) *tos = *(unsigned char *)CMSG_DATA(c);
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) *ttl = *(int *)CMSG_DATA(c);
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) *tos = *(int *)CMSG_DATA(c);
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) *ttl = *(int *)CMSG_DATA(c);
  }
  return n;
}

static int server(const char *host, int port) {
  int family = family_of(host);
  int fd = socket(family, SOCK_DGRAM, 0);
  if (family == AF_INET6) set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) { perror("bind"); return 1; }
  want_fields(fd, family);
  printf("{\"ready\":true}\n");
  fflush(stdout);
  unsigned char buf[2048];
  for (;;) {
    struct sockaddr_storage from;
    socklen_t fromlen;
    int tos, ttl;
    ssize_t n = receive(fd, buf, sizeof buf, &from, &fromlen, &tos, &ttl);
    if (n < 3) continue;
    set_fields(fd, family, buf[1], buf[2] ? buf[2] : 64);
    unsigned char reply[4] = {buf[0], buf[1], (unsigned char)tos, (unsigned char)ttl};
    sendto(fd, reply, sizeof reply, 0, (struct sockaddr *)&from, fromlen);
  }
}

static int parse_list(const char *text, int *out, int max) {
  int n = 0;
  for (const char *p = text; *p && n < max;) {
    out[n++] = (int)strtol(p, NULL, 0);
    const char *comma = strchr(p, ',');
    if (!comma) break;
    p = comma + 1;
  }
  return n;
}

static int client(const char *host, int port, const char *tosList, int ttl, const char *replyList) {
  int family = family_of(host);
  int fd = socket(family, SOCK_DGRAM, 0);
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) { perror("connect"); return 1; }
  want_fields(fd, family);
  int sent[64], wanted[64];
  int n = parse_list(tosList, sent, 64);
  if (parse_list(replyList, wanted, 64) != n) { fprintf(stderr, "TOS and REPLY_TOS lists differ in length\n"); return 2; }
  printf("{\"done\":true,\"results\":[");
  for (int k = 0; k < n; k++) {
    set_fields(fd, family, sent[k], ttl);
    unsigned char req[3] = {(unsigned char)k, (unsigned char)wanted[k], 0};
    send(fd, req, sizeof req, 0);
    struct pollfd p = {fd, POLLIN, 0};
    int got = 0;
    while (!got && poll(&p, 1, 400) > 0) {
      unsigned char buf[64];
      int tos, rttl;
      ssize_t r = receive(fd, buf, sizeof buf, NULL, NULL, &tos, &rttl);
      if (r == 4 && buf[0] == k) {
        printf("%s{\"sent\":%d,\"serverTos\":%d,\"serverTtl\":%d,\"wanted\":%d,\"replyTos\":%d,\"replyTtl\":%d}", k ? "," : "", sent[k], buf[2], buf[3], wanted[k], tos, rttl);
        got = 1;
      }
    }
    if (!got) printf("%snull", k ? "," : "");
  }
  printf("]}\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "server") == 0) return server(argv[2], atoi(argv[3]));
  if (argc == 7 && strcmp(argv[1], "client") == 0) return client(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]), argv[6]);
  fprintf(stderr, "usage: tos_peer server HOST PORT | tos_peer client HOST PORT TOS,… TTL REPLY_TOS,…\n");
  return 2;
}
