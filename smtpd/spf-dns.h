/* spf-dns.h — a libspf2 DNS layer that asks the configured resolvers (dns { servers })
 * with res_nquery() on a private res_state, since libspf2's own layer only knows
 * /etc/resolv.conf. Blocking: used on a worker thread, one layer per check. */
#ifndef WARREN_SMTPD_SPF_DNS_H
#define WARREN_SMTPD_SPF_DNS_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>
#include <spf2/spf.h>

/* servers: "ADDR[:PORT],..." (IPv6 "[ADDR]:PORT"), "" or NULL: /etc/resolv.conf's.
 * NULL with *error_r (static text) on a bad list. */
SPF_dns_server_t *spf_dns_new(const char *servers, unsigned timeout_ms, unsigned tries,
			      const char **error_r);
void spf_dns_free(SPF_dns_server_t **dns);

#endif
