/* login.c — maps a login name to its mailbox and its domain's password backend. */
#include "service/service.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct service_login {
	struct auth_job *job;
	const struct conf_mailbox *mailbox;
	service_login_callback *cb;
	void *ctx;
	char login[256];
	char client_ip[64];
	char protocol[16];
};

static void login_done(enum auth_result result, void *ctx)
{
	struct service_login *login = ctx;
	const struct conf_mailbox *mailbox = result == AUTH_OK ? login->mailbox : NULL;
	if (result == AUTH_OK && mailbox == NULL)
		result = AUTH_FAIL;
	char printable[300];
	log_printable(printable, sizeof(printable), login->login, strlen(login->login));
	metrics_count_auth(login->protocol, result == AUTH_OK ? 0 : result == AUTH_FAIL ? 1 : 3);
	if (result == AUTH_OK)
		log_info("%s login: user=<%s>, rip=%s", login->protocol, mailbox->address,
			 login->client_ip);
	else if (result == AUTH_FAIL)
		log_warn("%s authentication failed: user=<%s>, rip=%s", login->protocol,
			 printable, login->client_ip);
	else
		log_warn("%s authentication temporarily unavailable: user=<%s>, rip=%s",
			 login->protocol, printable, login->client_ip);
	service_login_callback *cb = login->cb;
	void *cb_ctx = login->ctx;
	free(login);
	cb(result, mailbox, cb_ctx);
}

struct service_login *service_login(struct service *svc, const struct warren_config *conf,
				    const char *name, const char *password,
				    const char *client_ip, const char *protocol,
				    service_login_callback *cb, void *ctx)
{
	struct service_login *login = x_calloc(1, sizeof(*login));
	snprintf(login->login, sizeof(login->login), "%s", name);
	snprintf(login->client_ip, sizeof(login->client_ip), "%s", client_ip);
	snprintf(login->protocol, sizeof(login->protocol), "%s", protocol);
	login->cb = cb;
	login->ctx = ctx;
	login->mailbox = conf_find_login(conf, name);

	struct auth_check check = {
		.backend = AUTH_BACKEND_HASH,
		.login = name,
		.password = password,
		.hash = NULL,        /* unknown user: still costs a hash */
		.client_ip = client_ip,
	};
	char pam_user[512];
	const struct conf_mailbox *mb = login->mailbox;
	if (mb != NULL && mb->domain->auth == CONF_AUTH_PAM) {
		check.backend = AUTH_BACKEND_PAM;
		check.pam_service = mb->domain->pam_service;
		snprintf(pam_user, sizeof(pam_user), "%s",
			 mb->domain->pam_user == CONF_PAM_ADDRESS ? mb->address : mb->name);
		check.pam_user = pam_user;
	} else if (mb != NULL) {
		check.hash = mb->password;
	}
	login->job = auth_verify(service_auth(svc), &check, login_done, login);
	return login;
}

void service_login_cancel(struct service_login *login)
{
	if (login == NULL)
		return;
	auth_cancel(login->job);
	free(login);
}
