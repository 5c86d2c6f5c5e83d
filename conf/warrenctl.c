/* warrenctl — the administrator's tool: check and reload the config, make
 * password hashes, print the configuration reference, verify and back up the
 * store (warrenctl-store.c). */
#include "conf/conf.h"
#include "conf/warrenctl.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/pool.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/warren/warren.conf"
/* Longest password read by `passwd`. */
#define PASSWORD_MAX 1024

struct ctl_command {
	const char *name;
	int (*run)(struct ctl_options *opts, int argc, char **argv);
	const char *usage;
	const char *help;
};

static int cmd_check(struct ctl_options *opts, int argc, char **argv);
static int cmd_passwd(struct ctl_options *opts, int argc, char **argv);
static int cmd_reload(struct ctl_options *opts, int argc, char **argv);
static int cmd_reference(struct ctl_options *opts, int argc, char **argv);

static const struct ctl_command commands[] = {
	{ "check", cmd_check, "check [-c FILE]",
	  "Validate the configuration; print every error as file:line. Exit 0 when valid." },
	{ "reload", cmd_reload, "reload [-c FILE]",
	  "Validate, then tell the running master to load the configuration." },
	{ "passwd", cmd_passwd, "passwd",
	  "Read a password (prompt, or a line on stdin) and print its yescrypt hash." },
	{ "config-reference", cmd_reference, "config-reference",
	  "Print the configuration reference (Markdown)." },
	{ "store", ctl_cmd_store, "store verify [--repair]",
	  "Check the store (reference counts, bodies present, UIDNEXT, counters, quota "
	  "sums, MIME caches); one line per fault, exit 1 on any. --repair removes "
	  "orphan body files older than an hour." },
	{ "store", ctl_cmd_store, "store backup DIR",
	  "Consistent hot backup of the store (database and bodies) into DIR, then "
	  "verified; `warren` can start with state_dir = DIR." },
	{ "domain", ctl_cmd_domain, "domain list",
	  "Every domain: type, password backend, mailboxes, aliases, host names." },
	{ "user", ctl_cmd_user, "user list [DOMAIN]",
	  "Every mailbox (of DOMAIN): address, quota, forwarding." },
	{ "user", ctl_cmd_user, "user show ADDRESS",
	  "One mailbox: quota, bytes and messages stored, folders, aliases, forwarding." },
	{ "mailbox", ctl_cmd_mailbox, "mailbox list USER",
	  "The user's folders: messages, unseen, size, subscription, special use." },
	{ "dns", ctl_cmd_dns, "dns DOMAIN",
	  "Every DNS record the domain needs (MX, SPF, DKIM, DMARC, TLS-RPT, MTA-STS, "
	  "RFC 6186 SRV, autoconfig/autodiscover) as zone-file lines." },
	{ "queue", ctl_cmd_queue, "queue list",
	  "The outbound queue (Postfix mailq layout, '!' marks held messages)." },
	{ "queue", ctl_cmd_queue, "queue show ID",
	  "One queued message: envelope, every recipient's state, attempts and last "
	  "reply, and the message's headers." },
	{ "queue", ctl_cmd_queue, "queue flush [ID]",
	  "Deliver the message (or every message) now instead of at its next retry." },
	{ "queue", ctl_cmd_queue, "queue delete ID",
	  "Remove a message from the queue without notifying anyone." },
	{ "queue", ctl_cmd_queue, "queue hold ID",
	  "Keep a message in the queue without delivering it." },
	{ "queue", ctl_cmd_queue, "queue release ID",
	  "Deliver a held message again." },
	{ "import", ctl_cmd_import, "import USER --maildir DIR [--folder NAME]",
	  "Copy a maildir (Maildir++ subfolders, flags from :2,FLAGS and dovecot-keywords, "
	  "dates from the files' times) into the user's folders." },
	{ "import", ctl_cmd_import, "import USER --mbox FILE|DIR [--folder NAME]",
	  "Copy an mbox file (or every DIR/**/NAME.mbox as folder NAME), flags from "
	  "Status/X-Status/X-Keywords, dates from the From lines." },
	{ "export", ctl_cmd_export, "export USER DIR --maildir|--mbox",
	  "Write every folder of the user into the new or empty DIR as a Maildir++ "
	  "or as one NAME.mbox per folder, flags and dates kept." },
	{ "track", ctl_cmd_track, "track [--log FILE] [--since T] [--until T] QUEUEID|MESSAGE-ID|ADDRESS",
	  "Follow messages through the log (default /var/log/mail.log): received from, "
	  "queued as, delivered, deferred or bounced, with times. T: \"YYYY-MM-DD[ HH:MM[:SS]]\" "
	  "or \"HH:MM[:SS]\" (today)." },
	{ "ban", ctl_cmd_ban, "ban list",
	  "Client addresses and mailboxes blocked after failed logins (security { })." },
	{ "ban", ctl_cmd_ban, "ban add IP|ADDRESS [DURATION]",
	  "Block logins from IP (or to the mailbox ADDRESS) for DURATION (default "
	  "security.block_time)." },
	{ "ban", ctl_cmd_ban, "ban remove IP|ADDRESS",
	  "Lift a block (and forget the failures counted so far)." },
	{ "dkim", ctl_cmd_dkim, "dkim keygen DOMAIN SELECTOR [rsa|ed25519] [FILE]",
	  "Write a DKIM key (RSA 2048 or Ed25519; FILE or state_dir/dkim/DOMAIN.SELECTOR.key) "
	  "and print the config lines and the DNS TXT record." },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: warrenctl [-c FILE] [--json] COMMAND [ARGS]\n\n"
		     "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-24s %s\n", commands[i].usage, commands[i].help);
	fprintf(out, "\nOptions: -c, --config FILE; --json (machine-readable output); "
		     "--repair (store verify);\n  --maildir, --mbox, --folder NAME (import, "
		     "export); --log FILE, --since T, --until T (track).\n");
	fprintf(out, "\nThe configuration is -c FILE, else $WARREN_CONF, else %s.\n"
		     "Exit status: 0 success, 1 failure, 2 usage error.\n", DEFAULT_CONFIG);
}

/* Loads the config named by the options; prints errors. */
int ctl_load_config(struct ctl_options *opts, unsigned flags, struct warren_config **conf_r)
{
	char *errors = NULL;
	if (conf_load(opts->config, flags, conf_r, &errors) < 0) {
		fputs(errors, stderr);
		free(errors);
		return -1;
	}
	return 0;
}

static int cmd_check(struct ctl_options *opts, int argc, char **argv)
{
	struct warren_config *conf;
	if (ctl_load_config(opts, 0, &conf) < 0) {
		fprintf(stderr, "%s: configuration has errors\n", opts->config);
		return 1;
	}
	size_t mailboxes = 0, aliases = 0;
	for (size_t i = 0; i < conf->n_domains; i++) {
		mailboxes += conf->domains[i].n_mailboxes;
		aliases += conf->domains[i].n_aliases;
	}
	if (opts->json)
		printf("{\"config\":\"%s\",\"valid\":true,\"listeners\":%zu,\"domains\":%zu,"
		       "\"mailboxes\":%zu,\"aliases\":%zu}\n", conf->path, conf->n_listeners,
		       conf->n_domains, mailboxes, aliases);
	else
		printf("%s: ok (%zu listeners, %zu domains, %zu mailboxes, %zu aliases)\n",
		       conf->path, conf->n_listeners, conf->n_domains, mailboxes, aliases);
	conf_unref(&conf);
	return 0;
}

static int read_password(const char *prompt, char *buf, size_t size)
{
	int tty = isatty(STDIN_FILENO);
	struct termios old, noecho;
	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		tcgetattr(STDIN_FILENO, &old);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	char *ret = fgets(buf, (int)size, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (ret == NULL)
		return -1;
	size_t len = strlen(buf);
	if (len > 0 && buf[len - 1] != '\n' && !feof(stdin))
		return -1;   /* too long */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return 0;
}

static int cmd_passwd(struct ctl_options *opts, int argc, char **argv)
{
	char pw[PASSWORD_MAX], again[PASSWORD_MAX];
	if (read_password("Password: ", pw, sizeof(pw)) < 0) {
		fprintf(stderr, "warrenctl passwd: no password read (or longer than %d bytes)\n",
			PASSWORD_MAX - 2);
		return 1;
	}
	if (pw[0] == '\0') {
		fprintf(stderr, "warrenctl passwd: the password is empty\n");
		return 1;
	}
	if (isatty(STDIN_FILENO)) {
		if (read_password("Again: ", again, sizeof(again)) < 0 || strcmp(pw, again) != 0) {
			fprintf(stderr, "warrenctl passwd: the passwords differ\n");
			return 1;
		}
	}
	char *hash = auth_hash_password(pw);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	if (hash == NULL) {
		fprintf(stderr, "warrenctl passwd: hashing failed\n");
		return 1;
	}
	if (opts->json)
		printf("{\"hash\":\"%s\"}\n", hash);
	else
		printf("%s\n", hash);
	free(hash);
	return 0;
}

static int cmd_reload(struct ctl_options *opts, int argc, char **argv)
{
	struct warren_config *conf;
	if (ctl_load_config(opts, 0, &conf) < 0) {
		fprintf(stderr, "%s: configuration has errors; not reloading\n", opts->config);
		return 1;
	}
	char pidfile[4096];
	snprintf(pidfile, sizeof(pidfile), "%s/warren.pid", conf->state_dir);
	conf_unref(&conf);
	FILE *fp = fopen(pidfile, "r");
	long pid = 0;
	if (fp == NULL || fscanf(fp, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "warrenctl reload: cannot read %s: is warren running?\n", pidfile);
		if (fp != NULL)
			fclose(fp);
		return 1;
	}
	fclose(fp);
	if (kill((pid_t)pid, SIGHUP) < 0) {
		fprintf(stderr, "warrenctl reload: signal to pid %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	printf("reload requested (pid %ld)\n", pid);
	return 0;
}

static int cmd_reference(struct ctl_options *opts, int argc, char **argv)
{
	conf_write_reference(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl_options opts = { .config = getenv("WARREN_CONF") };
	static const struct option long_opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "repair", no_argument, NULL, 'r' },
		{ "maildir", no_argument, NULL, 'M' },
		{ "mbox", no_argument, NULL, 'B' },
		{ "folder", required_argument, NULL, 'F' },
		{ "log", required_argument, NULL, 'L' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	/* '+': stop at the command so its own options are left to it */
	while ((c = getopt_long(argc, argv, "+c:jh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': opts.config = optarg; break;
		case 'j': opts.json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	argc -= optind;
	argv += optind;
	/* options after the command name (anywhere among its arguments): -c FILE,
	 * --json, --repair. optind = 0 makes glibc start afresh: with 1 it would keep
	 * the first pass's "+" (stop at the first non-option). */
	optind = 0;
	while ((c = getopt_long(argc, argv, "c:jh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': opts.config = optarg; break;
		case 'j': opts.json = 1; break;
		case 'r': opts.repair = 1; break;
		case 'M': opts.format = CTL_FORMAT_MAILDIR; break;
		case 'B': opts.format = CTL_FORMAT_MBOX; break;
		case 'F': opts.folder = optarg; break;
		case 'L': opts.log_file = optarg; break;
		case 'S': opts.since = optarg; break;
		case 'U': opts.until = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (opts.config == NULL)
		opts.config = DEFAULT_CONFIG;
	log_init("warrenctl", LOG_TARGET_STDERR, LOG_LEVEL_WARN);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].run(&opts, argc - optind, argv + optind);
	fprintf(stderr, "warrenctl: unknown command \"%s\"\n\n", name);
	usage(stderr);
	return 2;
}
