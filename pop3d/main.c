/* warren-pop3d — POP3 with SDPS for mail clients and multi-drop collectors. */
#include "service/service.h"
#include "pop3d/pop3-session.h"

static const char *pop3_busy_reply(enum conf_service service)
{
	return "-ERR [SYS/TEMP] Too many connections, try again later.\r\n";
}

static const struct service_def pop3d_def = {
	.name = "pop3d",
	.services = 1u << CONF_SERVICE_POP3,
	.busy_reply = pop3_busy_reply,
	.accept = pop3_session_accept,
	.shutdown = pop3_sessions_shutdown,
};

int main(int argc, char **argv)
{
	return service_main(argc, argv, &pop3d_def);
}
