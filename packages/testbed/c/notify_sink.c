// A stand-in for systemd's notification socket: binds a unix datagram socket at PATH and prints each
// message it gets (sd_notify's KEY=VALUE lines) as JSON, for SECONDS.
// usage: notify_sink PATH SECONDS
// prints {"ready":true} once bound, then {"message":"READY=1\nMAINPID=…"} per datagram
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: notify_sink PATH SECONDS\n"); return 2; }
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  unlink(argv[1]);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
  struct timeval tv = {0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  printf("{\"ready\":true}\n");
  fflush(stdout);
  time_t end = time(NULL) + atoi(argv[2]);
  char buf[4096];
  while (time(NULL) < end) {
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) continue;
    printf("{\"message\":\"");
    for (ssize_t i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)buf[i];
      if (ch == '\n') printf("\\n");
      else if (ch == '"' || ch == '\\') printf("\\%c", ch);
      else if (ch < 0x20) printf("\\u%04x", ch);
      else putchar(ch);
    }
    printf("\"}\n");
    fflush(stdout);
  }
  unlink(argv[1]);
  return 0;
}
