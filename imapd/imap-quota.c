/* imap-quota.c — QUOTA (RFC 9208) with the STORAGE resource: one quota root ""
 * per user, the mailbox's quota from the config, usage from the store. SETQUOTA is
 * refused: limits live in the config. */
#include "imapd/imap-commands.h"
#include "common/pool.h"

#include <stdio.h>
#include <string.h>

struct quota_job {
	struct imap_job job;
	char mailbox[512];             /* GETQUOTAROOT: the mailbox asked about */
	bool root_only;                /* GETQUOTA */
	uint64_t quota;
};

static void quota_line(struct imap_job *job, uint64_t used)
{
	struct quota_job *qj = (struct quota_job *)job;
	if (qj->quota == 0)
		imap_job_untagged(job, "QUOTA \"\" ()");
	else
		imap_job_untagged(job, "QUOTA \"\" (STORAGE %llu %llu)",
				  (unsigned long long)((used + 1023) / 1024),
				  (unsigned long long)(qj->quota / 1024));
}

static int quota_work(struct imap_job *job)
{
	struct quota_job *qj = (struct quota_job *)job;
	const char *user = job->s->user->address;
	if (!qj->root_only) {
		struct store_mailbox mb;
		int ret = store_mailbox_get(job->store, user, qj->mailbox, &mb);
		if (ret != 0)
			return ret;
		buf_append_str(&job->out, "* QUOTAROOT ");
		imap_append_mailbox(&job->out, mb.name, job->s->enabled_utf8);
		buf_append_str(&job->out, " \"\"\r\n");
	}
	uint64_t bytes = 0, messages = 0;
	int ret = store_user_usage(job->store, user, &bytes, &messages);
	if (ret != 0 && ret != STORE_ENOTFOUND)
		return ret;
	quota_line(job, bytes);
	return 0;
}

static void quota_done(struct imap_job *job, int result)
{
	struct quota_job *qj = (struct quota_job *)job;
	if (result == STORE_ENOTFOUND) {
		imap_tagged(job->s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
		return;
	}
	if (result != 0) {
		imap_tagged(job->s, "NO", "[SERVERBUG] Quota failed: %s", store_strerror(result));
		return;
	}
	imap_tagged(job->s, "OK", "%s completed.", qj->root_only ? "Getquota" : "Getquotaroot");
}

void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *name = n == 1 ? imap_arg_string(&args[0]) : NULL;
	if (name == NULL) {
		imap_tagged(s, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	struct quota_job *qj = imap_job_new(s, sizeof(*qj), quota_work, quota_done);
	qj->quota = imap_quota(s);
	if (imap_mailbox_from_client(name, s->enabled_utf8, qj->mailbox, sizeof(qj->mailbox)) < 0) {
		imap_job_discard(&qj->job);
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	imap_job_start(&qj->job);
}

void imap_cmd_getquota(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *root = n == 1 ? imap_arg_string(&args[0]) : NULL;
	if (root == NULL) {
		imap_tagged(s, "BAD", "Syntax: GETQUOTA root");
		return;
	}
	if (root[0] != '\0') {
		imap_tagged(s, "NO", "[NONEXISTENT] No such quota root.");
		return;
	}
	struct quota_job *qj = imap_job_new(s, sizeof(*qj), quota_work, quota_done);
	qj->quota = imap_quota(s);
	qj->root_only = true;
	imap_job_start(&qj->job);
}

void imap_cmd_setquota(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 2 || imap_arg_string(&args[0]) == NULL || args[1].type != IMAP_ARG_LIST) {
		imap_tagged(s, "BAD", "Syntax: SETQUOTA root (resource limit ...)");
		return;
	}
	imap_tagged(s, "NO", "[NOPERM] Quotas are set in the server's configuration.");
}
