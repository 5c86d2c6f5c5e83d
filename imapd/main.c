/* warren-imapd — IMAP4rev1/IMAP4rev2 for mail clients. */
#include "service/service.h"
#include "imapd/imap-session.h"

static const char *imap_busy_reply(enum conf_service service)
{
	return "* BYE [UNAVAILABLE] Too many connections, try again later.\r\n";
}

static const struct service_def imapd_def = {
	.name = "imapd",
	.services = 1u << CONF_SERVICE_IMAP,
	.busy_reply = imap_busy_reply,
	.accept = imap_session_accept,
	.shutdown = imap_sessions_shutdown,
};

int main(int argc, char **argv)
{
	return service_main(argc, argv, &imapd_def);
}
