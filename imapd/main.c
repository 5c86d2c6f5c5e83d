/* warren-imapd — IMAP4rev1/IMAP4rev2 for mail clients. */
#include "service/service.h"
#include "imapd/imap-retention.h"
#include "imapd/imap-session.h"

static const char *imap_busy_reply(enum conf_service service)
{
	return "* BYE [UNAVAILABLE] Too many connections, try again later.\r\n";
}

static void imapd_shutdown(struct service *svc)
{
	imap_retention_stop(svc);
	imap_sessions_shutdown(svc);
}

static const struct service_def imapd_def = {
	.name = "imapd",
	.services = 1u << CONF_SERVICE_IMAP,
	.busy_reply = imap_busy_reply,
	.accept = imap_session_accept,
	.shutdown = imapd_shutdown,
	.start = imap_retention_start,   /* the periodic trash/junk retention */
};

int main(int argc, char **argv)
{
	return service_main(argc, argv, &imapd_def);
}
