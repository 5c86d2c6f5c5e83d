/* storedeliver — delivers one message into the store of a state dir, as smtpd's
 * local delivery would (store_deliver), for tests and for seeding mailboxes.
 *
 *   storedeliver [options] STATE_DIR USER[=ENV_TO][:MAILBOX] ... < message
 *
 *   STATE_DIR         the state_dir of a config (the store is STATE_DIR/store)
 *   USER              mailbox owner, "alice@example.test"
 *   =ENV_TO           the envelope recipient kept with this copy (SDPS *ENV, a
 *                     domain's multi-drop mailbox); default: USER
 *   :MAILBOX          folder to deliver into (created if missing); default INBOX
 *
 *   -f SENDER         envelope sender; default "" (the null sender <>)
 *   -i FILE           read the message from FILE instead of stdin
 *   -n COUNT          deliver COUNT copies, one transaction each; "%N" in the
 *                     message (first occurrence in each line) becomes 1..COUNT
 *   -b BATCH          with -n: BATCH copies per transaction (the recipients
 *                     repeated; "%N" is then the number of the batch's first)
 *   -r                keep the bytes as they are (default: bare LF becomes CRLF,
 *                     as SMTP DATA would give)
 *   -q QUOTA          bytes allowed per recipient (0: unlimited)
 *   -t EPOCH          internal (arrival) date in seconds since the epoch; default now
 *
 *   storedeliver -L STATE_DIR USER[:MAILBOX]
 *
 *   lists what the store holds (what IMAP would see): one line per message,
 *   "UID FLAGS SIZE <ENV_FROM> <ENV_TO>", FLAGS a string of S(een) A(nswered)
 *   F(lagged) D(eleted) R (draft) or "-"; exit status 1 when there is no such
 *   mailbox.
 *
 *   storedeliver -X STATE_DIR USER[:MAILBOX] UID ...
 *
 *   expunges those messages, as an IMAP client's EXPUNGE would (another
 *   session changing the mailbox under a POP3 or IMAP session); prints
 *   "expunged UID" for each one that was there.
 *
 * All recipients of one copy get it in one store_deliver call (one body, one
 * transaction). Prints "delivered USER UID UIDVALIDITY" per recipient and copy.
 * Exit status: 0 all delivered, 1 a recipient failed (over quota...), 2 usage,
 * 75 the store needs recovery (the running master recovers it: retry).
 *
 * Run as root, it switches to the owner of STATE_DIR first, so the files it
 * makes stay readable by the daemons (which run as that user).
 */
#include "storage/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_RECOVER 75
/* Largest message read (the store's own limit is the config's). */
#define STOREDELIVER_MAX (512L * 1024 * 1024)

static void usage(void)
{
	fprintf(stderr, "usage: storedeliver [-f SENDER] [-i FILE] [-n COUNT [-b BATCH]] [-r] [-q QUOTA] [-t EPOCH] "
		"STATE_DIR USER[=ENV_TO][:MAILBOX] ...\n"
		"       storedeliver -L STATE_DIR USER[:MAILBOX]\n"
		"       storedeliver -X STATE_DIR USER[:MAILBOX] UID ...\n");
	exit(2);
}

static char *read_all(FILE *fp, size_t *len_r)
{
	size_t cap = 65536, len = 0;
	char *data = malloc(cap);
	size_t n;
	while (data != NULL && (n = fread(data + len, 1, cap - len, fp)) > 0) {
		len += n;
		if (len > STOREDELIVER_MAX) {
			fprintf(stderr, "storedeliver: message too large\n");
			exit(1);
		}
		if (len == cap) {
			cap *= 2;
			data = realloc(data, cap);
		}
	}
	if (data == NULL || ferror(fp)) {
		fprintf(stderr, "storedeliver: read: %s\n", strerror(errno));
		exit(1);
	}
	*len_r = len;
	return data;
}

/* Bare LF → CRLF, and "%N" (once per line) → n when n > 0. */
static char *prepare(const char *in, size_t len, bool raw, long n, size_t *len_r)
{
	char *out = malloc(2 * len + 32 * (len / 2 + 1) + 1);
	size_t o = 0;
	bool replaced = false;
	for (size_t i = 0; i < len; i++) {
		if (n > 0 && !replaced && in[i] == '%' && i + 1 < len && in[i + 1] == 'N') {
			o += (size_t)sprintf(out + o, "%ld", n);
			i++;
			replaced = true;
			continue;
		}
		if (in[i] == '\n') {
			if (!raw && (i == 0 || in[i - 1] != '\r'))
				out[o++] = '\r';
			replaced = false;
		}
		out[o++] = in[i];
	}
	*len_r = o;
	return out;
}

static int list_mailbox(struct store *st, char *spec)
{
	char *colon = strchr(spec, ':');
	if (colon != NULL)
		*colon = '\0';
	struct store_mailbox m;
	int ret = store_mailbox_get(st, spec, colon != NULL ? colon + 1 : "INBOX", &m);
	if (ret != STORE_OK) {
		fprintf(stderr, "storedeliver: %s: %s\n", spec, store_strerror(ret));
		return 1;
	}
	struct store_message *msgs;
	size_t n;
	if ((ret = store_messages(st, m.id, 1, UINT32_MAX, &msgs, &n)) != STORE_OK) {
		fprintf(stderr, "storedeliver: messages: %s\n", store_strerror(ret));
		return 1;
	}
	static const struct { unsigned flag; char c; } names[] = {
		{ STORE_FLAG_SEEN, 'S' }, { STORE_FLAG_ANSWERED, 'A' }, { STORE_FLAG_FLAGGED, 'F' },
		{ STORE_FLAG_DELETED, 'D' }, { STORE_FLAG_DRAFT, 'R' } };
	for (size_t i = 0; i < n; i++) {
		char flags[8];
		size_t f = 0;
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (msgs[i].flags & names[k].flag)
				flags[f++] = names[k].c;
		if (f == 0)
			flags[f++] = '-';
		flags[f] = '\0';
		printf("%u %s %llu <%s> <%s>\n", msgs[i].uid, flags,
		       (unsigned long long)msgs[i].size, msgs[i].env_from, msgs[i].env_to);
	}
	free(msgs);
	return 0;
}

static int expunge_messages(struct store *st, char *spec, char **uids, size_t n)
{
	char *colon = strchr(spec, ':');
	if (colon != NULL)
		*colon = '\0';
	struct store_mailbox m;
	int ret = store_mailbox_get(st, spec, colon != NULL ? colon + 1 : "INBOX", &m);
	if (ret != STORE_OK) {
		fprintf(stderr, "storedeliver: %s: %s\n", spec, store_strerror(ret));
		return 1;
	}
	uint32_t *list = calloc(n, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = (uint32_t)strtoul(uids[i], NULL, 10);
	uint64_t modseq;
	ret = store_expunge(st, m.id, list, n, &modseq);
	if (ret != STORE_OK) {
		fprintf(stderr, "storedeliver: expunge: %s\n", store_strerror(ret));
		free(list);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (list[i] != 0)
			printf("expunged %u\n", list[i]);
	free(list);
	return 0;
}

static void become_owner(const char *dir)
{
	struct stat st;
	if (geteuid() != 0 || stat(dir, &st) < 0 || st.st_uid == 0)
		return;
	if (setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0) {
		fprintf(stderr, "storedeliver: cannot switch to uid %u: %s\n",
			(unsigned)st.st_uid, strerror(errno));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *sender = "", *file = NULL;
	long count = 1, batch = 1;
	bool raw = false, list = false, expunge = false;
	unsigned long long quota = 0;
	long long date = 0;
	int opt;
	while ((opt = getopt(argc, argv, "b:f:i:Ln:rq:t:X")) != -1) {
		switch (opt) {
		case 'f': sender = optarg; break;
		case 'i': file = optarg; break;
		case 'n': count = atol(optarg); break;
		case 'b': batch = atol(optarg); break;
		case 'r': raw = true; break;
		case 'L': list = true; break;
		case 'X': expunge = true; break;
		case 't': date = atoll(optarg); break;
		case 'q': quota = strtoull(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (argc - optind < 2 || count < 1 || batch < 1 || batch > 10000)
		usage();
	const char *dir = argv[optind];
	if (list || expunge) {
		if ((list && argc - optind != 2) || (expunge && argc - optind < 3))
			usage();
		become_owner(dir);
		struct store_settings settings = { .dir = dir };
		struct store *st;
		const char *err = "";
		if (store_open(&settings, &st, &err) != STORE_OK) {
			fprintf(stderr, "storedeliver: open %s: %s\n", dir, err);
			return 1;
		}
		int status = list ? list_mailbox(st, argv[optind + 1]) :
			expunge_messages(st, argv[optind + 1], argv + optind + 2,
					 (size_t)(argc - optind - 2));
		store_close(&st);
		return status;
	}
	size_t nspec = (size_t)(argc - optind - 1);
	size_t nrcpt = nspec * (size_t)batch;
	struct store_recipient *rcpt = calloc(nrcpt, sizeof(*rcpt));
	for (size_t i = 0; i < nspec; i++) {
		char *spec = argv[optind + 1 + i];
		char *colon = strchr(spec, ':');
		if (colon != NULL)
			*colon = '\0';
		char *eq = strchr(spec, '=');
		if (eq != NULL)
			*eq = '\0';
		rcpt[i].user = spec;
		rcpt[i].env_to = eq != NULL ? eq + 1 : spec;
		rcpt[i].mailbox = colon != NULL ? colon + 1 : "INBOX";
		rcpt[i].quota = quota;
	}
	for (size_t i = nspec; i < nrcpt; i++)
		rcpt[i] = rcpt[i % nspec];

	FILE *fp = file != NULL ? fopen(file, "rb") : stdin;
	if (fp == NULL) {
		fprintf(stderr, "storedeliver: %s: %s\n", file, strerror(errno));
		return 1;
	}
	size_t len;
	char *message = read_all(fp, &len);
	if (fp != stdin)
		fclose(fp);

	become_owner(dir);
	struct store_settings settings = { .dir = dir };
	struct store *st;
	const char *err = "";
	int ret = store_open(&settings, &st, &err);
	if (ret != STORE_OK) {
		fprintf(stderr, "storedeliver: open %s: %s\n", dir, err);
		if (ret == STORE_ERECOVER)
			store_request_recovery(dir);
		return ret == STORE_ERECOVER ? EXIT_RECOVER : 1;
	}
	int status = 0;
	for (long n = 1; n <= count && status == 0; n += batch) {
		size_t blen;
		char *body = prepare(message, len, raw, count > 1 ? n : 0, &blen);
		struct store_body b = { body, blen, NULL };
		size_t copies = (size_t)(count - n + 1 < batch ? count - n + 1 : batch);
		for (size_t i = 0; i < copies * nspec; i++)
			rcpt[i].result = STORE_OK;
		ret = store_deliver(st, &b, sender, date != 0 ? (int64_t)date : (int64_t)time(NULL),
				    rcpt, copies * nspec);
		free(body);
		if (ret != STORE_OK) {
			fprintf(stderr, "storedeliver: deliver: %s\n", store_strerror(ret));
			status = ret == STORE_ERECOVER ? EXIT_RECOVER : 1;
			break;
		}
		for (size_t i = 0; i < copies * nspec; i++) {
			if (rcpt[i].result != STORE_OK) {
				fprintf(stderr, "storedeliver: %s: %s\n", rcpt[i].user,
					store_strerror(rcpt[i].result));
				status = 1;
			} else {
				printf("delivered %s %u %u\n", rcpt[i].user, rcpt[i].uid,
				       rcpt[i].uidvalidity);
			}
		}
	}
	fflush(stdout);
	store_close(&st);
	free(message);
	free(rcpt);
	return status;
}
