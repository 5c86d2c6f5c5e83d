/* warrenctl-store.c — `warrenctl store verify [--repair]` and `warrenctl store
 * backup DIR`: the administrator's view of the mailbox store in the config's
 * state_dir.
 *
 * warrenctl attaches to the store like any daemon (DB_REGISTER, no recovery), so
 * it can run beside a live suite. When the store needs recovery (a process died
 * in it), it asks the running master to recover and tries again; with no master
 * running it is alone and runs recovery itself. Started as root, it works as the
 * config's `user`, the owner of the store files.
 */
#include "conf/conf.h"
#include "conf/warrenctl.h"
#include "conf/warrenctl-admin.h"
#include "storage/store.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long to wait for the master to recover the store before giving up. */
#define STORE_RECOVER_WAIT_S 30
/* Watchdog interval: a dead process's mutex must not hang warrenctl. */
#define STORE_WATCHDOG_MS 500
/* A child's exit status: the store needs recovery, try again. */
#define EXIT_RECOVER 75
/* Longest wait for Berkeley DB to open (attach, or recover) the environment: a
 * process that died holding one of its region mutexes makes the open wait
 * forever (seen with daemons left running by a dead master). */
#define STORE_OPEN_TIMEOUT_S 60

static void open_timed_out(int sig)
{
	static const char msg[] = "warrenctl store: opening the store did not finish in time: "
				  "a process holds it wedged (look for warren-* processes left "
				  "running, stop them, then start warren to recover it)\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}

static void on_recover(void *ctx)
{
	/* a process died in the store: stop at once (its mutexes may be held) and
	 * let run_attempts() try again once the master has recovered it */
	_exit(EXIT_RECOVER);
}

/* Is the master of state_dir running (its pid file names a live process)? */
static bool master_running(const char *state_dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/warren.pid", state_dir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return false;
	long pid = 0;
	bool alive = fscanf(fp, "%ld", &pid) == 1 && pid > 1 &&
		(kill((pid_t)pid, 0) == 0 || errno == EPERM);
	fclose(fp);
	return alive;
}

/* Opens the store in state_dir. With its master running, as one more process
 * (no recovery); when the store needs recovery, the master is asked to run it and
 * the process exits with EXIT_RECOVER for run_attempts() to try again (Berkeley
 * DB's DB_REGISTER allows one environment handle per process, even after a failed
 * open). With no master running, warrenctl is alone and opens it the way the
 * master would, recovering it if a process died in it. */
static int store_attach(const char *state_dir, struct store **store_r)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/store", state_dir);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "warrenctl store: no store in %s (has warren run with this "
			"state_dir?)\n", state_dir);
		return -1;
	}
	bool alone = !master_running(state_dir);
	struct store_settings settings = {
		.dir = state_dir,
		.flags = alone ? STORE_OPEN_RECOVER : 0,
	};
	const char *err = "";
	signal(SIGALRM, open_timed_out);
	alarm(STORE_OPEN_TIMEOUT_S);
	int ret = store_open(&settings, store_r, &err);
	alarm(0);
	if (ret == STORE_ERECOVER && !alone) {
		store_request_recovery(state_dir);
		fflush(NULL);
		_exit(EXIT_RECOVER);
	}
	if (ret != STORE_OK) {
		fprintf(stderr, "warrenctl store: cannot open the store in %s: %s\n", state_dir,
			err);
		return -1;
	}
	store_watchdog_start(*store_r, STORE_WATCHDOG_MS, on_recover, NULL);
	return 0;
}

/* Runs fn in a child process, again while it exits with EXIT_RECOVER (the store
 * was being recovered), for up to STORE_RECOVER_WAIT_S. */
static int run_attempts(int (*fn)(void *arg), void *arg)
{
	time_t deadline = time(NULL) + STORE_RECOVER_WAIT_S;
	for (bool told = false;; told = true) {
		fflush(NULL);
		pid_t parent = getpid();
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "warrenctl store: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid == 0) {
			/* never outlive warrenctl (killed by a timeout, say) holding the store */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			int ret = fn(arg);
			fflush(NULL);
			_exit(ret);
		}
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status)) {
			fprintf(stderr, "warrenctl store: killed by signal %d\n", WTERMSIG(status));
			return 1;
		}
		if (WEXITSTATUS(status) != EXIT_RECOVER)
			return WEXITSTATUS(status);
		if (time(NULL) > deadline) {
			fprintf(stderr, "warrenctl store: the store still needs recovery after "
				"%d s; is the master stuck?\n", STORE_RECOVER_WAIT_S);
			return 1;
		}
		if (!told)
			fprintf(stderr, "warrenctl store: the store needs recovery; the master is "
				"recovering it, trying again\n");
		sleep(1);
	}
}

/* Started as root: become the store's owner (the config's user); a backup's
 * folder is made first and given to that user, who will run warren on it. */
static int become_store_user(const struct warren_config *conf, const char *create_dir)
{
	struct passwd *pw = geteuid() == 0 ? getpwnam(conf->user) : NULL;
	if (create_dir != NULL && pw != NULL && pw->pw_uid != 0) {
		if (mkdir(create_dir, 0750) < 0 && errno != EEXIST) {
			fprintf(stderr, "warrenctl store: cannot create %s: %s\n", create_dir,
				strerror(errno));
			return -1;
		}
		if (chown(create_dir, pw->pw_uid, pw->pw_gid) < 0) {
			fprintf(stderr, "warrenctl store: cannot give %s to %s: %s\n", create_dir,
				conf->user, strerror(errno));
			return -1;
		}
	}
	return ctl_become_store_user(conf, "store");
}

/* Prints verify's report (lines in text) and the summary; returns the exit status. */
static int report_verify(struct ctl_options *opts, const char *what, const char *state_dir,
			 int faults, const char *text, size_t len)
{
	if (opts->json) {
		printf("{\"state_dir\":");
		ctl_json_strn(stdout, state_dir, strlen(state_dir));
		printf(",\"%s\":%s,\"faults\":%d,\"lines\":[", what,
		       faults == 0 ? "true" : "false", faults < 0 ? 1 : faults);
		const char *p = text, *end = text + len;
		bool first = true;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
			if (!first)
				putchar(',');
			ctl_json_strn(stdout, p, n);
			first = false;
			p += n + 1;
		}
		printf("]}\n");
	} else {
		fwrite(text, 1, len, stdout);
		if (faults == 0)
			printf("%s: store is consistent\n", state_dir);
		else if (faults > 0)
			printf("%s: %d fault%s found\n", state_dir, faults, faults == 1 ? "" : "s");
	}
	return faults == 0 ? 0 : 1;
}

struct store_job {
	struct ctl_options *opts;
	const char *state_dir;
	const char *dest;           /* backup */
	bool repair;                /* verify */
};

/* Verifies the store in state_dir; the report goes to stdout. */
static int verify_job(void *arg)
{
	struct store_job *job = arg;
	struct ctl_options *opts = job->opts;
	const char *state_dir = job->state_dir;
	bool repair = job->repair;
	struct store *st;
	if (store_attach(state_dir, &st) < 0)
		return 1;
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int faults = store_verify(st, mem, repair);
	fclose(mem);
	store_close(&st);
	if (faults < 0)
		fprintf(stderr, "warrenctl store verify: %s: %s\n", state_dir,
			store_strerror(faults));
	int ret = report_verify(opts, "consistent", state_dir, faults, text, len);
	free(text);
	return ret;
}

static int store_verify_cmd(struct ctl_options *opts, const struct warren_config *conf,
			    int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: warrenctl store verify [--repair]\n");
		return 2;
	}
	if (become_store_user(conf, NULL) < 0)
		return 1;
	struct store_job job = { opts, conf->state_dir, NULL, opts->repair };
	return run_attempts(verify_job, &job);
}

static int backup_job(void *arg)
{
	struct store_job *job = arg;
	struct store *st;
	if (store_attach(job->state_dir, &st) < 0)
		return 1;
	const char *err = "";
	time_t started = time(NULL);
	int ret = store_backup(st, job->dest, &err);
	store_close(&st);
	if (ret != STORE_OK) {
		fprintf(stderr, "warrenctl store backup: %s: %s (%s)\n", job->dest,
			store_strerror(ret), err);
		return 1;
	}
	if (!job->opts->json)
		printf("%s: backup of %s written in %lds; checking it\n", job->dest,
		       job->state_dir, (long)(time(NULL) - started));
	return 0;
}

static int store_backup_cmd(struct ctl_options *opts, const struct warren_config *conf,
			    int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "usage: warrenctl store backup DIR\n");
		return 2;
	}
	char dest[4096];
	if (argv[1][0] == '/')
		snprintf(dest, sizeof(dest), "%s", argv[1]);
	else {
		char cwd[2048];
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			fprintf(stderr, "warrenctl store backup: getcwd: %s\n", strerror(errno));
			return 1;
		}
		snprintf(dest, sizeof(dest), "%s/%s", cwd, argv[1]);
	}
	char real_state[4096];
	if (realpath(conf->state_dir, real_state) != NULL) {
		char real_dest[4096];
		if (realpath(dest, real_dest) != NULL && strcmp(real_dest, real_state) == 0) {
			fprintf(stderr, "warrenctl store backup: %s is the store itself\n", dest);
			return 1;
		}
	}
	if (become_store_user(conf, dest) < 0)
		return 1;
	struct store_job job = { opts, conf->state_dir, dest, false };
	int ret = run_attempts(backup_job, &job);
	if (ret != 0)
		return ret;
	/* the copy is nobody's store yet: check it, opened the way warren would */
	struct store_job check = { opts, dest, NULL, false };
	return run_attempts(verify_job, &check);
}

static const struct {
	const char *name;
	int (*run)(struct ctl_options *opts, const struct warren_config *conf, int argc,
		   char **argv);
} store_commands[] = {
	{ "verify", store_verify_cmd },
	{ "backup", store_backup_cmd },
};

int ctl_cmd_store(struct ctl_options *opts, int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "usage: warrenctl store verify [--repair] | backup DIR\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(store_commands) / sizeof(store_commands[0]); i++) {
		if (strcmp(store_commands[i].name, argv[0]) != 0)
			continue;
		struct warren_config *conf;
		if (ctl_load_config(opts, 0, &conf) < 0) {
			fprintf(stderr, "%s: configuration has errors\n", opts->config);
			return 1;
		}
		int ret = store_commands[i].run(opts, conf, argc, argv);
		conf_unref(&conf);
		return ret;
	}
	fprintf(stderr, "warrenctl store: unknown command \"%s\" (verify, backup)\n", argv[0]);
	return 2;
}
