/* warren-smtpd — SMTP for inbound mail (MX) and message submission. */
#include "service/service.h"
#include "smtpd/smtp-session.h"
#include "smtpd/outbound.h"

static const char *smtp_busy_reply(enum conf_service service)
{
	return "421 4.7.0 Error: too many connections, try again later\r\n";
}

static const struct service_def smtpd_def = {
	.name = "smtpd",
	.services = (1u << CONF_SERVICE_SMTP) | (1u << CONF_SERVICE_SUBMISSION),
	.busy_reply = smtp_busy_reply,
	.accept = smtp_session_accept,
	.shutdown = smtp_sessions_shutdown,
	.start = outbound_start,   /* the queue runner (queue-runner.c) */
};

int main(int argc, char **argv)
{
	return service_main(argc, argv, &smtpd_def);
}
