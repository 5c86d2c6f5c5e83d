/* pop3-job.h — store work of a session, run off the loop thread (private to pop3d/).
 *
 * A job owns everything it touches while it runs, so a session that goes away
 * meanwhile (the client dropped) only orphans it: the job finishes, finds no
 * session and frees what it holds (closing a lock file it still has). */
#ifndef WARREN_POP3_JOB_H
#define WARREN_POP3_JOB_H

#include "pop3d/pop3-session.h"

#include <limits.h>

enum pop3_job_error {
	POP3_JOB_OK,
	POP3_JOB_IN_USE,          /* another POP3 session holds the lock */
	POP3_JOB_LOGIN_DELAY,     /* the last login was too recent */
	POP3_JOB_NO_MAILBOX,      /* the configured folder does not exist */
	POP3_JOB_LOCK_FAILED,     /* the lock file could not be made */
};

struct pop3_job {
	struct pop3_session *s;        /* NULL once the session is gone */
	struct store *store;
	int (*work)(struct pop3_job *job);
	/* On the loop thread while the session exists; takes what it keeps. */
	void (*done)(struct pop3_job *job, int result);
	enum pop3_job_error error;

	/* open: lock and load */
	char user[320];
	char mailbox[512];
	char lock_path[PATH_MAX];
	unsigned login_delay_s;
	int lock_fd;
	struct store_mailbox mbox;
	struct store_message *msgs;
	size_t count;

	/* read: a chunk of a body */
	unsigned char blob[STORE_BLOB_ID_SIZE];
	uint64_t offset;
	char *buf;
	size_t len, got;

	/* update: expunge and flag */
	uint64_t mailbox_id;
	uint32_t *expunge;
	size_t n_expunge;
	struct store_flag_change *seen;
	size_t n_seen;
	size_t expunged;               /* result: messages removed */
};

struct pop3_job *pop3_job_new(struct pop3_session *s, int (*work)(struct pop3_job *),
			      void (*done)(struct pop3_job *, int));
/* Starts the job; the session waits until done. -1 when it cannot be queued
 * (the job is freed). */
int pop3_job_start(struct pop3_job *job);

#endif
