/* imap-mailbox.c — the authenticated state: default folders at login, LIST (with
 * LIST-EXTENDED, SPECIAL-USE, LIST-STATUS), LSUB, CREATE (CREATE-SPECIAL-USE),
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS, NAMESPACE, ENABLE. */
#include "imapd/imap-commands.h"
#include "imapd/imap-retention.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LIST_PATTERNS_MAX 32

static const struct {
	const char *attr;
	unsigned flag;
	const char *default_name;
} special_uses[] = {
	{ "\\Drafts", STORE_SPECIAL_DRAFTS, "Drafts" },
	{ "\\Sent", STORE_SPECIAL_SENT, "Sent" },
	{ "\\Trash", STORE_SPECIAL_TRASH, "Trash" },
	{ "\\Junk", STORE_SPECIAL_JUNK, "Junk" },
	{ "\\Archive", STORE_SPECIAL_ARCHIVE, "Archive" },
	{ "\\All", STORE_SPECIAL_ALL, NULL },
	{ "\\Flagged", STORE_SPECIAL_FLAGGED, NULL },
};
#define N_SPECIAL (sizeof(special_uses) / sizeof(special_uses[0]))

static const struct conf_domain_imap *domain_imap(const struct imap_session *s)
{
	return s->user != NULL && s->user->domain != NULL ? &s->user->domain->imap : NULL;
}

/* The name a mailbox's own imap { } block or else its domain's gives the folder
 * (NULL: neither says). */
static const char *configured_name(const struct conf_mailbox *user, unsigned special_use)
{
	const struct conf_mailbox_imap *ui = &user->imap;
	const struct conf_domain_imap *di = user->domain != NULL ? &user->domain->imap : NULL;
	const char *own, *dom;
	switch (special_use) {
	case STORE_SPECIAL_DRAFTS: own = ui->drafts; dom = di ? di->drafts : NULL; break;
	case STORE_SPECIAL_SENT: own = ui->sent; dom = di ? di->sent : NULL; break;
	case STORE_SPECIAL_TRASH: own = ui->trash; dom = di ? di->trash : NULL; break;
	case STORE_SPECIAL_JUNK: own = ui->junk; dom = di ? di->junk : NULL; break;
	case STORE_SPECIAL_ARCHIVE: own = ui->archive; dom = di ? di->archive : NULL; break;
	default: return NULL;
	}
	return own != NULL ? own : dom;
}

const char *imap_user_folder_name(const struct conf_mailbox *user, unsigned special_use)
{
	const char *name = NULL;
	if (special_use != STORE_SPECIAL_DRAFTS && special_use != STORE_SPECIAL_SENT &&
	    special_use != STORE_SPECIAL_TRASH && special_use != STORE_SPECIAL_JUNK &&
	    special_use != STORE_SPECIAL_ARCHIVE)
		return NULL;
	if (user != NULL)
		name = configured_name(user, special_use);
	if (name == NULL) {
		for (size_t i = 0; i < N_SPECIAL; i++)
			if (special_uses[i].flag == special_use)
				name = special_uses[i].default_name;
	}
	/* an empty name: the folder is not created */
	return name != NULL && name[0] != '\0' ? name : NULL;
}

const char *imap_folder_name(const struct imap_session *s, unsigned special_use)
{
	return imap_user_folder_name(s->user, special_use);
}

const char *imap_trash_name(const struct imap_session *s)
{
	const struct conf_domain_imap *di = domain_imap(s);
	bool on = di != NULL && di->trash_on_expunge;
	if (s->user != NULL && s->user->imap.trash_on_expunge != 0)
		on = s->user->imap.trash_on_expunge == 2;     /* "true" */
	return on ? imap_folder_name(s, STORE_SPECIAL_TRASH) : NULL;
}

static void append_special(struct buf *out, unsigned special, bool *first)
{
	for (size_t i = 0; i < N_SPECIAL; i++) {
		if (special & special_uses[i].flag) {
			buf_printf(out, "%s%s", *first ? "" : " ", special_uses[i].attr);
			*first = false;
		}
	}
}

/* ---- a job that carries names and flags ---- */

struct mbox_job {
	struct imap_job job;
	char name[512];
	char name2[512];
	unsigned special;
	unsigned items;                 /* STATUS items */
	bool flag;                      /* SUBSCRIBE: true */
	/* LIST */
	char *patterns[LIST_PATTERNS_MAX];
	size_t n_patterns;
	bool lsub, sel_subscribed, ret_subscribed, ret_children, ret_special;
	bool list_empty;                /* LIST "" "": the hierarchy delimiter */
	uint64_t max_message_size;
	uint64_t deleted_bytes;         /* STATUS DELETED-STORAGE */
};

static void mbox_cleanup(struct imap_job *job)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	for (size_t i = 0; i < mj->n_patterns; i++)
		free(mj->patterns[i]);
}

static struct mbox_job *mbox_job_new(struct imap_session *s, int (*work)(struct imap_job *),
				     void (*done)(struct imap_job *, int))
{
	struct mbox_job *mj = imap_job_new(s, sizeof(*mj), work, done);
	mj->job.cleanup = mbox_cleanup;
	mj->max_message_size = imap_max_message_size(s);
	return mj;
}

static void mbox_job_discard(struct mbox_job *mj)
{
	mbox_cleanup(&mj->job);
	buf_free(&mj->job.out);
	free(mj);
}

static void reply_error(struct imap_session *s, int result, const char *what)
{
	switch (result) {
	case STORE_ENOTFOUND:
		imap_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist.");
		break;
	case STORE_EEXIST:
		imap_tagged(s, "NO", "[ALREADYEXISTS] Mailbox already exists.");
		break;
	case STORE_EINVAL:
		imap_tagged(s, "NO", "[CANNOT] %s not possible.", what);
		break;
	case STORE_EQUOTA:
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded.");
		break;
	default:
		imap_tagged(s, "NO", "[SERVERBUG] %s failed: %s", what, store_strerror(result));
		break;
	}
}

/* ---- login: default folders ---- */

static int setup_work(struct imap_job *job)
{
	struct imap_session *s = job->s;
	const char *user = s->user->address;
	int ret = store_user_ensure(job->store, user);
	if (ret != 0)
		return ret;
	struct store_mailbox *list;
	size_t n;
	ret = store_mailbox_list(job->store, user, &list, &n);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < N_SPECIAL; i++) {
		const char *name = imap_folder_name(s, special_uses[i].flag);
		if (name == NULL)
			continue;
		bool found = false;
		for (size_t k = 0; k < n && !found; k++)
			found = (list[k].special_use & special_uses[i].flag) ||
				strcmp(list[k].name, name) == 0;
		if (found)
			continue;
		uint64_t id;
		ret = store_mailbox_create(job->store, user, name, special_uses[i].flag, &id);
		if (ret == 0)
			ret = store_subscribe(job->store, user, name, true);
		if (ret != 0 && ret != STORE_EEXIST)
			log_warn("%s: creating %s for %s: %s", s->id, name, user, store_strerror(ret));
	}
	bool inbox_subscribed = false;
	for (size_t k = 0; k < n; k++)
		if (strcmp(list[k].name, "INBOX") == 0)
			inbox_subscribed = list[k].subscribed;
	free(list);
	if (!inbox_subscribed)
		store_subscribe(job->store, user, "INBOX", true);
	size_t removed = 0;
	ret = imap_retention_user(job->store, s->user, s->id, (int64_t)time(NULL), &removed);
	if (ret != 0)
		log_warn("%s: retention for %s: %s", s->id, user, store_strerror(ret));
	return ret == STORE_ERECOVER ? ret : 0;
}

static void setup_done(struct imap_job *job, int result)
{
	struct imap_session *s = job->s;
	char caps[1024];
	if (result != 0) {
		log_warn("%s: mailbox setup for %s failed: %s", s->id, s->user->address,
			 store_strerror(result));
		imap_tagged(s, "NO", "[UNAVAILABLE] Mailbox not available, try again later.");
		s->user = NULL;
		imap_enter_state(s, IMAP_STATE_NOT_AUTH);
		return;
	}
	imap_tagged(s, "OK", "[CAPABILITY %s] Logged in",
		    imap_capabilities(s, caps, sizeof(caps)));
}

void imap_login_setup(struct imap_session *s)
{
	struct mbox_job *mj = mbox_job_new(s, setup_work, setup_done);
	imap_job_start(&mj->job);
}

/* ---- LIST / LSUB ---- */

/* IMAP LIST pattern: "*" matches anything, "%" anything but "/". */
static bool list_match(const char *pattern, const char *name)
{
	if (*pattern == '\0')
		return *name == '\0';
	if (*pattern == '*' || *pattern == '%') {
		for (const char *p = name;; p++) {
			if (list_match(pattern + 1, p))
				return true;
			if (*p == '\0' || (*pattern == '%' && *p == '/'))
				return false;
		}
	}
	if (*pattern != *name)
		return false;
	return list_match(pattern + 1, name + 1);
}

static bool match_any(const struct mbox_job *mj, const char *name)
{
	for (size_t i = 0; i < mj->n_patterns; i++)
		if (list_match(mj->patterns[i], name))
			return true;
	return false;
}

static bool has_children(const struct store_mailbox *list, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (strncmp(list[i].name, name, len) == 0 && list[i].name[len] == '/')
			return true;
	return false;
}

static bool name_in(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static const struct store_mailbox *find_mailbox(const struct store_mailbox *list, size_t n,
						const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0)
			return &list[i];
	return NULL;
}

static void status_items_out(struct imap_job *job, const struct store_mailbox *mb,
			     unsigned items, uint64_t deleted, uint64_t limit);

enum {
	ST_MESSAGES = 1, ST_UIDNEXT = 2, ST_UIDVALIDITY = 4, ST_UNSEEN = 8, ST_SIZE = 16,
	ST_HIGHESTMODSEQ = 32, ST_RECENT = 64, ST_DELETED = 128, ST_APPENDLIMIT = 256,
	ST_DELETED_STORAGE = 512,
};

static void list_line(struct imap_job *job, const char *cmd, const char *name,
		      const char *attrs)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	buf_printf(&job->out, "* %s (%s) \"/\" ", cmd, attrs);
	imap_append_mailbox(&job->out, name, job->s->enabled_utf8);
	buf_append(&job->out, "\r\n", 2);
	(void)mj;
}

static int list_work(struct imap_job *job)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	const char *user = job->s->user->address;
	const char *cmd = mj->lsub ? "LSUB" : "LIST";
	if (mj->list_empty) {
		imap_job_untagged(job, "%s (\\Noselect) \"/\" \"\"", cmd);
		return 0;
	}
	struct store_mailbox *list;
	size_t n;
	int ret = store_mailbox_list(job->store, user, &list, &n);
	if (ret != 0)
		return ret;
	char **subs = NULL;
	size_t n_subs = 0;
	if (mj->lsub || mj->sel_subscribed || mj->ret_subscribed) {
		ret = store_subscriptions(job->store, user, &subs, &n_subs);
		if (ret != 0) {
			free(list);
			return ret;
		}
	}
	struct buf attrs = BUF_INIT(1024);
	if (mj->lsub || mj->sel_subscribed) {
		for (size_t i = 0; i < n_subs; i++) {
			if (!match_any(mj, subs[i]))
				continue;
			const struct store_mailbox *mb = find_mailbox(list, n, subs[i]);
			bool first = true;
			buf_clear(&attrs);
			if (mb == NULL) {
				buf_append_str(&attrs, mj->lsub ? "\\Noselect" : "\\NonExistent");
				first = false;
			}
			if (!mj->lsub) {
				buf_printf(&attrs, "%s\\Subscribed", first ? "" : " ");
				first = false;
				if (mb != NULL) {
					if (mj->ret_children || true)
						buf_printf(&attrs, " %s", has_children(list, n, subs[i]) ?
							   "\\HasChildren" : "\\HasNoChildren");
					append_special(&attrs, mb->special_use, &first);
				}
			}
			list_line(job, cmd, subs[i], buf_cstr(&attrs));
			if (mb != NULL && mj->items != 0)
				status_items_out(job, mb, mj->items, 0, mj->max_message_size);
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			const char *name = list[i].name;
			/* parents that do not exist but match (LIST "" "%" with only a/b) */
			char parent[512];
			snprintf(parent, sizeof(parent), "%s", name);
			for (char *slash = strrchr(parent, '/'); slash != NULL;
			     slash = strrchr(parent, '/')) {
				*slash = '\0';
				if (find_mailbox(list, n, parent) != NULL)
					break;
				bool earlier = false;
				for (size_t k = 0; k < i && !earlier; k++)
					earlier = strncmp(list[k].name, parent, strlen(parent)) == 0 &&
						list[k].name[strlen(parent)] == '/';
				if (!earlier && match_any(mj, parent) && !match_any(mj, name))
					list_line(job, cmd, parent, "\\Noselect \\HasChildren");
			}
			if (!match_any(mj, name))
				continue;
			bool first = false;
			buf_clear(&attrs);
			buf_append_str(&attrs, has_children(list, n, name) ? "\\HasChildren" :
				       "\\HasNoChildren");
			if (mj->ret_subscribed && name_in(subs, n_subs, name))
				buf_append_str(&attrs, " \\Subscribed");
			append_special(&attrs, list[i].special_use, &first);
			list_line(job, cmd, name, buf_cstr(&attrs));
			if (mj->items != 0)
				status_items_out(job, &list[i], mj->items, 0, mj->max_message_size);
		}
	}
	buf_free(&attrs);
	if (subs != NULL)
		store_free_names(subs, n_subs);
	free(list);
	return 0;
}

static void list_done(struct imap_job *job, int result)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	if (result != 0) {
		reply_error(job->s, result, "List");
		return;
	}
	imap_tagged(job->s, "OK", "%s completed.", mj->lsub ? "Lsub" : "List");
}

static int status_items_parse(const struct imap_arg *arg, unsigned *items_r);

static int add_pattern(struct imap_session *s, struct mbox_job *mj, const char *ref,
		       const char *pattern)
{
	if (mj->n_patterns >= LIST_PATTERNS_MAX)
		return -1;
	char full[1024];
	snprintf(full, sizeof(full), "%s%s", ref, pattern);
	struct buf b = BUF_INIT(1024);
	if (s->enabled_utf8 ? buf_append_str(&b, full) : imap_utf7_to_utf8(full, &b)) {
		buf_free(&b);
		return -1;
	}
	char *p = x_strndup(buf_data(&b), buf_len(&b));
	buf_free(&b);
	if (strncasecmp(p, "INBOX", 5) == 0 && (p[5] == '\0' || p[5] == '/'))
		memcpy(p, "INBOX", 5);
	mj->patterns[mj->n_patterns++] = p;
	return 0;
}

static void list_common(struct imap_session *s, const struct imap_arg *args, size_t n,
			bool lsub)
{
	struct mbox_job *mj = mbox_job_new(s, list_work, list_done);
	mj->lsub = lsub;
	size_t i = 0;
	const char *error = "Syntax: LIST [(options)] reference pattern [RETURN (options)]";
	if (!lsub && n > 0 && args[0].type == IMAP_ARG_LIST) {
		for (size_t k = 0; k < args[0].n_list; k++) {
			const char *o = imap_arg_string(&args[0].list[k]);
			if (o == NULL)
				goto bad;
			if (strcasecmp(o, "SUBSCRIBED") == 0)
				mj->sel_subscribed = true;
			else if (strcasecmp(o, "REMOTE") != 0 &&
				 strcasecmp(o, "RECURSIVEMATCH") != 0 &&
				 strcasecmp(o, "SPECIAL-USE") != 0)
				goto bad;
		}
		i = 1;
	}
	if (n < i + 2)
		goto bad;
	const char *ref = imap_arg_string(&args[i]);
	if (ref == NULL)
		goto bad;
	const struct imap_arg *pat = &args[i + 1];
	if (pat->type == IMAP_ARG_LIST && !lsub) {
		for (size_t k = 0; k < pat->n_list; k++) {
			const char *p = imap_arg_string(&pat->list[k]);
			if (p == NULL || add_pattern(s, mj, ref, p) < 0)
				goto bad;
		}
	} else {
		const char *p = imap_arg_string(pat);
		if (p == NULL)
			goto bad;
		if (p[0] == '\0' && !lsub)
			mj->list_empty = true;
		else if (add_pattern(s, mj, ref, p) < 0)
			goto bad;
	}
	i += 2;
	if (i < n) {
		const char *kw = imap_arg_string(&args[i]);
		if (lsub || kw == NULL || strcasecmp(kw, "RETURN") != 0 || i + 2 != n ||
		    args[i + 1].type != IMAP_ARG_LIST)
			goto bad;
		const struct imap_arg *r = &args[i + 1];
		for (size_t k = 0; k < r->n_list; k++) {
			const char *o = imap_arg_string(&r->list[k]);
			if (o == NULL)
				goto bad;
			if (strcasecmp(o, "SUBSCRIBED") == 0) {
				mj->ret_subscribed = true;
			} else if (strcasecmp(o, "CHILDREN") == 0) {
				mj->ret_children = true;
			} else if (strcasecmp(o, "SPECIAL-USE") == 0) {
				mj->ret_special = true;
			} else if (strcasecmp(o, "STATUS") == 0 && k + 1 < r->n_list &&
				   status_items_parse(&r->list[k + 1], &mj->items) == 0 &&
				   !(mj->items & (ST_DELETED | ST_DELETED_STORAGE))) {
				/* DELETED needs every message read: only STATUS has it */
				k++;
			} else {
				goto bad;
			}
		}
	}
	imap_job_start(&mj->job);
	return;
bad:
	mbox_job_discard(mj);
	imap_tagged(s, "BAD", "%s", error);
}

void imap_cmd_list(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	list_common(s, args, n, false);
}

void imap_cmd_lsub(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	list_common(s, args, n, true);
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE ---- */

static int create_work(struct imap_job *job)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	uint64_t id;
	return store_mailbox_create(job->store, job->s->user->address, mj->name, mj->special, &id);
}

static int delete_work(struct imap_job *job)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	return store_mailbox_delete(job->store, job->s->user->address, mj->name);
}

static int rename_work(struct imap_job *job)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	const char *user = job->s->user->address;
	int ret = store_mailbox_rename(job->store, user, mj->name, mj->name2);
	if (ret == 0) {
		/* the subscription follows the mailbox */
		char **subs;
		size_t n;
		if (store_subscriptions(job->store, user, &subs, &n) == 0) {
			if (name_in(subs, n, mj->name) && strcmp(mj->name, "INBOX") != 0) {
				store_subscribe(job->store, user, mj->name, false);
				store_subscribe(job->store, user, mj->name2, true);
			}
			store_free_names(subs, n);
		}
	}
	return ret;
}

static int subscribe_work(struct imap_job *job)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	return store_subscribe(job->store, job->s->user->address, mj->name, mj->flag);
}

static void simple_done(struct imap_job *job, int result)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	const char *what = mj->job.work == create_work ? "Create" :
		mj->job.work == delete_work ? "Delete" :
		mj->job.work == rename_work ? "Rename" :
		mj->flag ? "Subscribe" : "Unsubscribe";
	if (result != 0) {
		reply_error(job->s, result, what);
		return;
	}
	if (mj->job.work == delete_work && job->s->sel != NULL &&
	    strcmp(job->s->sel->name, mj->name) == 0) {
		/* the selected mailbox is gone */
		imap_selected_free(&job->s->sel);
		imap_enter_state(job->s, IMAP_STATE_AUTH);
	}
	imap_tagged(job->s, "OK", "%s completed.", what);
}

static bool mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char *out,
			size_t size)
{
	const char *name = imap_arg_string(arg);
	if (name == NULL) {
		imap_tagged(s, "BAD", "Missing mailbox name");
		return false;
	}
	if (imap_mailbox_from_client(name, s->enabled_utf8, out, size) < 0) {
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return false;
	}
	return true;
}

static int parse_use(const struct imap_arg *arg, unsigned *special_r)
{
	/* (USE (\Drafts \Sent)) */
	if (arg->type != IMAP_ARG_LIST || arg->n_list != 2)
		return -1;
	const char *kw = imap_arg_string(&arg->list[0]);
	if (kw == NULL || strcasecmp(kw, "USE") != 0 || arg->list[1].type != IMAP_ARG_LIST)
		return -1;
	*special_r = 0;
	for (size_t i = 0; i < arg->list[1].n_list; i++) {
		const char *a = imap_arg_string(&arg->list[1].list[i]);
		size_t k;
		for (k = 0; a != NULL && k < N_SPECIAL; k++)
			if (strcasecmp(a, special_uses[k].attr) == 0)
				break;
		if (a == NULL || k == N_SPECIAL)
			return -2;
		*special_r |= special_uses[k].flag;
	}
	return 0;
}

void imap_cmd_create(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	char name[512];
	unsigned special = 0;
	if (n < 1 || n > 2) {
		imap_tagged(s, "BAD", "Syntax: CREATE mailbox [(USE (attributes))]");
		return;
	}
	if (n == 2) {
		int r = parse_use(&args[1], &special);
		if (r == -1) {
			imap_tagged(s, "BAD", "Syntax: CREATE mailbox [(USE (attributes))]");
			return;
		}
		if (r == -2) {
			imap_tagged(s, "NO", "[USEATTR] Unsupported special-use attribute");
			return;
		}
	}
	if (!mailbox_arg(s, &args[0], name, sizeof(name)))
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists.");
		return;
	}
	struct mbox_job *mj = mbox_job_new(s, create_work, simple_done);
	snprintf(mj->name, sizeof(mj->name), "%s", name);
	mj->special = special;
	imap_job_start(&mj->job);
}

void imap_cmd_delete(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	char name[512];
	if (n != 1) {
		imap_tagged(s, "BAD", "Syntax: DELETE mailbox");
		return;
	}
	if (!mailbox_arg(s, &args[0], name, sizeof(name)))
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(s, "NO", "[CANNOT] INBOX cannot be deleted.");
		return;
	}
	struct mbox_job *mj = mbox_job_new(s, delete_work, simple_done);
	snprintf(mj->name, sizeof(mj->name), "%s", name);
	imap_job_start(&mj->job);
}

void imap_cmd_rename(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	char from[512], to[512];
	if (n != 2) {
		imap_tagged(s, "BAD", "Syntax: RENAME from to");
		return;
	}
	if (!mailbox_arg(s, &args[0], from, sizeof(from)) ||
	    !mailbox_arg(s, &args[1], to, sizeof(to)))
		return;
	if (strcmp(to, "INBOX") == 0) {
		imap_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists.");
		return;
	}
	struct mbox_job *mj = mbox_job_new(s, rename_work, simple_done);
	snprintf(mj->name, sizeof(mj->name), "%s", from);
	snprintf(mj->name2, sizeof(mj->name2), "%s", to);
	imap_job_start(&mj->job);
}

static void subscribe_common(struct imap_session *s, const struct imap_arg *args, size_t n,
			     bool subscribe)
{
	char name[512];
	if (n != 1) {
		imap_tagged(s, "BAD", "Syntax: %s mailbox", subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return;
	}
	if (!mailbox_arg(s, &args[0], name, sizeof(name)))
		return;
	struct mbox_job *mj = mbox_job_new(s, subscribe_work, simple_done);
	snprintf(mj->name, sizeof(mj->name), "%s", name);
	mj->flag = subscribe;
	imap_job_start(&mj->job);
}

void imap_cmd_subscribe(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	subscribe_common(s, args, n, true);
}

void imap_cmd_unsubscribe(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	subscribe_common(s, args, n, false);
}

/* ---- STATUS ---- */

static const struct {
	const char *name;
	unsigned item;
} status_names[] = {
	{ "MESSAGES", ST_MESSAGES }, { "UIDNEXT", ST_UIDNEXT }, { "UIDVALIDITY", ST_UIDVALIDITY },
	{ "UNSEEN", ST_UNSEEN }, { "SIZE", ST_SIZE }, { "HIGHESTMODSEQ", ST_HIGHESTMODSEQ },
	{ "RECENT", ST_RECENT }, { "DELETED", ST_DELETED }, { "APPENDLIMIT", ST_APPENDLIMIT },
	{ "DELETED-STORAGE", ST_DELETED_STORAGE },
};

static int status_items_parse(const struct imap_arg *arg, unsigned *items_r)
{
	if (arg->type != IMAP_ARG_LIST || arg->n_list == 0)
		return -1;
	*items_r = 0;
	for (size_t i = 0; i < arg->n_list; i++) {
		const char *it = imap_arg_string(&arg->list[i]);
		size_t k;
		for (k = 0; it != NULL && k < sizeof(status_names) / sizeof(status_names[0]); k++)
			if (strcasecmp(it, status_names[k].name) == 0)
				break;
		if (it == NULL || k == sizeof(status_names) / sizeof(status_names[0]))
			return -1;
		*items_r |= status_names[k].item;
	}
	return 0;
}

static uint64_t job_deleted_bytes(const struct imap_job *job)
{
	return ((const struct mbox_job *)job)->deleted_bytes;
}

static void status_items_out(struct imap_job *job, const struct store_mailbox *mb,
			     unsigned items, uint64_t deleted, uint64_t limit)
{
	struct buf *o = &job->out;
	buf_append_str(o, "* STATUS ");
	imap_append_mailbox(o, mb->name, job->s->enabled_utf8);
	buf_append_str(o, " (");
	size_t start = buf_len(o);
#define SEP (buf_len(o) > start ? " " : "")
	if (items & ST_MESSAGES)
		buf_printf(o, "%sMESSAGES %u", SEP, mb->messages);
	if (items & ST_RECENT)
		buf_printf(o, "%sRECENT 0", SEP);
	if (items & ST_UIDNEXT)
		buf_printf(o, "%sUIDNEXT %u", SEP, mb->uidnext);
	if (items & ST_UIDVALIDITY)
		buf_printf(o, "%sUIDVALIDITY %u", SEP, mb->uidvalidity);
	if (items & ST_UNSEEN)
		buf_printf(o, "%sUNSEEN %u", SEP, mb->unseen);
	if (items & ST_DELETED)
		buf_printf(o, "%sDELETED %llu", SEP, (unsigned long long)deleted);
	if (items & ST_SIZE)
		buf_printf(o, "%sSIZE %llu", SEP, (unsigned long long)mb->size);
	if (items & ST_HIGHESTMODSEQ)
		buf_printf(o, "%sHIGHESTMODSEQ %llu", SEP, (unsigned long long)mb->highestmodseq);
	if (items & ST_APPENDLIMIT)
		buf_printf(o, "%sAPPENDLIMIT %llu", SEP, (unsigned long long)limit);
	if (items & ST_DELETED_STORAGE)
		buf_printf(o, "%sDELETED-STORAGE %llu", SEP,
			   (unsigned long long)((job_deleted_bytes(job) + 1023) / 1024));
#undef SEP
	buf_append_str(o, ")\r\n");
}

static int status_work(struct imap_job *job)
{
	struct mbox_job *mj = (struct mbox_job *)job;
	struct store_mailbox mb;
	int ret = store_mailbox_get(job->store, job->s->user->address, mj->name, &mb);
	if (ret != 0)
		return ret;
	uint64_t deleted = 0;
	if (mj->items & (ST_DELETED | ST_DELETED_STORAGE)) {
		struct store_message *list;
		size_t n;
		ret = store_messages(job->store, mb.id, 1, 0xffffffffu, &list, &n);
		if (ret != 0)
			return ret;
		for (size_t i = 0; i < n; i++) {
			deleted += (list[i].flags & STORE_FLAG_DELETED) != 0;
			if (list[i].flags & STORE_FLAG_DELETED)
				mj->deleted_bytes += list[i].size;
		}
		free(list);
	}
	status_items_out(job, &mb, mj->items, deleted, mj->max_message_size);
	return 0;
}

static void status_done(struct imap_job *job, int result)
{
	if (result != 0) {
		reply_error(job->s, result, "Status");
		return;
	}
	imap_tagged(job->s, "OK", "Status completed.");
}

void imap_cmd_status(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	char name[512];
	unsigned items;
	if (n != 2 || status_items_parse(&args[1], &items) < 0) {
		imap_tagged(s, "BAD", "Syntax: STATUS mailbox (items)");
		return;
	}
	if (!mailbox_arg(s, &args[0], name, sizeof(name)))
		return;
	struct mbox_job *mj = mbox_job_new(s, status_work, status_done);
	snprintf(mj->name, sizeof(mj->name), "%s", name);
	mj->items = items;
	imap_job_start(&mj->job);
}

/* ---- NAMESPACE, ENABLE ---- */

void imap_cmd_namespace(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	if (n != 0) {
		imap_tagged(s, "BAD", "NAMESPACE takes no arguments");
		return;
	}
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, "OK", "Namespace completed.");
}

void imap_cmd_enable(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	char enabled[256] = "";
	size_t o = 0;
	if (n == 0) {
		imap_tagged(s, "BAD", "Syntax: ENABLE capability...");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *c = imap_arg_string(&args[i]);
		bool *flag = NULL;
		if (c == NULL || args[i].type != IMAP_ARG_ATOM) {
			imap_tagged(s, "BAD", "Syntax: ENABLE capability...");
			return;
		}
		if (strcasecmp(c, "CONDSTORE") == 0)
			flag = &s->enabled_condstore;
		else if (strcasecmp(c, "QRESYNC") == 0)
			flag = &s->enabled_qresync;
		else if (strcasecmp(c, "UTF8=ACCEPT") == 0)
			flag = &s->enabled_utf8;
		else if (strcasecmp(c, "IMAP4rev2") == 0)
			flag = &s->enabled_rev2;
		if (flag == NULL || *flag)
			continue;
		*flag = true;
		if (flag == &s->enabled_rev2) {
			/* IMAP4rev2 names mailboxes in UTF-8 (modified UTF-7 is for rev1) */
			s->enabled_utf8 = true;
		}
		if (flag == &s->enabled_qresync && !s->enabled_condstore) {
			/* QRESYNC implies CONDSTORE (RFC 7162 3.2.3) */
			s->enabled_condstore = true;
		}
		if (o < sizeof(enabled))
			o += (size_t)snprintf(enabled + o, sizeof(enabled) - o, " %s",
					      flag == &s->enabled_condstore ? "CONDSTORE" :
					      flag == &s->enabled_qresync ? "QRESYNC" :
					      flag == &s->enabled_rev2 ? "IMAP4rev2" : "UTF8=ACCEPT");
	}
	imap_untagged(s, "ENABLED%s", enabled);
	imap_tagged(s, "OK", "Enabled.");
}
