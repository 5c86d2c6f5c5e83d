/* pop3-job.c — running a session's store work on libuv's thread pool. */
#include "pop3d/pop3-job.h"
#include "common/log.h"
#include "common/pool.h"

#include <stdlib.h>
#include <unistd.h>

struct pop3_job *pop3_job_new(struct pop3_session *s, int (*work)(struct pop3_job *),
			      void (*done)(struct pop3_job *, int))
{
	struct pop3_job *job = x_calloc(1, sizeof(*job));
	job->s = s;
	job->store = service_store(s->svc);
	job->work = work;
	job->done = done;
	job->lock_fd = -1;
	return job;
}

static void job_free(struct pop3_job *job)
{
	if (job->lock_fd >= 0)
		close(job->lock_fd);
	free(job->msgs);
	free(job->buf);
	free(job->expunge);
	free(job->seen);
	free(job);
}

static int job_work(void *arg)
{
	struct pop3_job *job = arg;
	return job->work(job);
}

static void job_done(void *arg, int result)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;
	if (s != NULL) {
		s->job = NULL;
		job->done(job, result);
		pop3_session_continue(s);
	}
	job_free(job);
}

int pop3_job_start(struct pop3_job *job)
{
	struct pop3_session *s = job->s;
	if (store_async(service_loop(s->svc), job_work, job_done, job) < 0) {
		log_error("%s: cannot queue store work", s->id);
		job_free(job);
		return -1;
	}
	s->job = job;
	net_conn_pause_input(s->conn);
	return 0;
}
