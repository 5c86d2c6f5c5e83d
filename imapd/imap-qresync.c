/* imap-qresync.c — SELECT (QRESYNC ...) (RFC 7162 3.2.5): VANISHED (EARLIER) and
 * the flags changed since the client's modseq. */
#include "imapd/imap-commands.h"
#include "common/pool.h"

#include <stdlib.h>
#include <string.h>

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	unsigned long long x = strtoull(s, &end, 10);
	if (*end != '\0')
		return -1;
	*v = x;
	return 0;
}

int imap_parse_qresync(const struct imap_arg *arg, uint32_t *uidvalidity_r,
		       uint64_t *modseq_r, char **known_r)
{
	*known_r = NULL;
	if (arg->type != IMAP_ARG_LIST || arg->n_list < 2 || arg->n_list > 4)
		return -1;
	uint64_t v;
	if (parse_u64(imap_arg_string(&arg->list[0]), &v) < 0 || v == 0 || v > 0xffffffffu)
		return -1;
	*uidvalidity_r = (uint32_t)v;
	if (parse_u64(imap_arg_string(&arg->list[1]), modseq_r) < 0)
		return -1;
	if (arg->n_list >= 3) {
		const char *known = imap_arg_string(&arg->list[2]);
		if (known == NULL || !imap_seqset_valid(known))
			return -1;
		*known_r = x_strdup(known);
	}
	return 0;
}

void imap_qresync_work(struct imap_job *job, struct imap_selected *sel, uint64_t modseq,
		       const char *known)
{
	struct imap_session *s = job->s;
	struct imap_seqset set = { 0 };
	bool have_set = known != NULL && imap_seqset_parse(known, 0xffffffffu, &set) == 0;
	uint32_t *uids;
	size_t n;
	if (store_expunged_since(job->store, sel->id, modseq, &uids, &n) == 0) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++)
			if (!have_set || imap_seqset_contains(&set, uids[i]))
				uids[o++] = uids[i];
		imap_sort_uids(uids, o);
		if (o > 0) {
			struct buf b = BUF_INIT(16 * 1024 * 1024);
			imap_append_uidset(&b, uids, o);
			imap_job_untagged(job, "VANISHED (EARLIER) %.*s", (int)buf_len(&b),
					  buf_data(&b));
			buf_free(&b);
		}
		free(uids);
	}
	for (size_t i = 0; i < sel->count; i++) {
		const struct imap_msg *m = &sel->msgs[i];
		if (m->modseq <= modseq)
			continue;
		if (have_set && !imap_seqset_contains(&set, m->uid))
			continue;
		buf_printf(&job->out, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_append_flags(&job->out, m->flags, m->keywords);
		buf_printf(&job->out, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
	}
	if (have_set)
		imap_seqset_free(&set);
	(void)s;
}
