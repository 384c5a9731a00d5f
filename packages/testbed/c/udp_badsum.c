// Send one IPv4 UDP datagram whose checksum is wrong (a raw IPPROTO_UDP socket: the kernel writes
// the IP header, the UDP header is ours and nobody fixes it), as a corrupting link would deliver it.
// usage: udp_badsum DST_IP DST_PORT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: udp_badsum DST_IP DST_PORT\n"); return 2; }
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
  if (fd < 0) { perror("socket"); return 1; }
  struct sockaddr_in dst = {0};
  dst.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
  unsigned char d[8 + 16] = {0};
  unsigned short sport = htons(4000), dport = htons((unsigned short)atoi(argv[2])), len = htons(sizeof d), sum = htons(0x1234);
  memcpy(d, &sport, 2); memcpy(d + 2, &dport, 2); memcpy(d + 4, &len, 2); memcpy(d + 6, &sum, 2);
  memset(d + 8, 0xab, 16);
  if (sendto(fd, d, sizeof d, 0, (struct sockaddr *)&dst, sizeof dst) < 0) { perror("sendto"); return 1; }
  printf("{\"sent\":1}\n");
  return 0;
}
