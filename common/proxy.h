/* proxy.h — HAProxy's PROXY protocol (v1 text and v2 binary headers) and the
 * network lists that say which peers may send one.
 *
 * A load balancer in front of Warren opens the TCP connection itself and puts
 * one header before the client's first byte naming the real client:
 *   v1: "PROXY TCP4 192.0.2.1 198.51.100.2 51234 25\r\n"   (at most 107 bytes)
 *   v2: the 12-byte signature, version/command, family, a length, the addresses,
 *       then optional TLVs (ignored here).
 * proxy_parse() is resumable: it looks at everything received so far and says
 * "need more", "done after N bytes" or "malformed". It copies nothing and never
 * reads past len. The network side (who is trusted, timeouts) is in net.c.
 */
#ifndef WARREN_PROXY_H
#define WARREN_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Longest v1 header including CRLF (the specification's bound). */
#define PROXY_V1_MAX 107
/* Longest v2 header we accept: 16 bytes plus addresses and TLVs. HAProxy's TLVs
 * (ALPN, authority, SSL details, unique id) stay well below this. */
#define PROXY_V2_MAX 2048
/* The most bytes a header may take; net.c reads no further before deciding. */
#define PROXY_HEADER_MAX PROXY_V2_MAX

enum proxy_status {
	PROXY_NEED_MORE = 0,
	PROXY_DONE = 1,
	PROXY_MALFORMED = -1,
};

struct proxy_header {
	size_t len;                    /* bytes the header takes */
	int version;                   /* 1 or 2 */
	/* true: v1 UNKNOWN, v2 LOCAL, or a family we do not carry (UNSPEC, UNIX):
	 * the connection's own addresses stay. */
	bool local;
	struct sockaddr_storage src;   /* the real client (when !local) */
	struct sockaddr_storage dst;   /* the address the client connected to */
};

/* Parses the start of a connection's input. On PROXY_MALFORMED *error_r says
 * why (static text). */
enum proxy_status proxy_parse(const void *data, size_t len, struct proxy_header *hdr_r,
			      const char **error_r);

/* ---- networks ---- */

struct proxy_nets;

/* Parses "192.0.2.0/24", "2001:db8::/32", "127.0.0.1" (a host). NULL on error
 * with *error_r naming the bad entry's problem. n may be 0. */
struct proxy_nets *proxy_nets_new(const char *const *nets, size_t n, const char **error_r);
void proxy_nets_free(struct proxy_nets **nets);
/* True when addr (IPv4, IPv6 or IPv4-mapped IPv6) is in one of the networks. */
bool proxy_nets_match(const struct proxy_nets *nets, const struct sockaddr_storage *addr);
/* Checks one network's syntax (config validation). */
int proxy_net_check(const char *net, const char **error_r);

#endif
