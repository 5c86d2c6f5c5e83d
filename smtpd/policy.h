/* policy.h — smtpd's policy chain (issue #5): the checks that run at each stage
 * of an SMTP session before a reply is given.
 *
 * Stages: CONNECT (before the greeting), HELO (after a valid HELO/EHLO), MAIL
 * (after MAIL FROM's syntax checks; s->txn exists), RCPT (after the recipient is
 * resolved; r->rcpt, r->rcpt_local), DATA (the whole message is in the spool,
 * t->spool_path / t->fd, before delivery; run once per message).
 *
 * Each check is a struct policy_check in the table of policy.c, in chain order.
 * A check's run() looks at the request and returns
 *   POLICY_NEXT     nothing to say: the next check runs;
 *   POLICY_PASS     accept at this stage: the rest of this stage's checks are skipped;
 *   POLICY_REJECT   after policy_reject(): the stage's reply is that code and text;
 *   POLICY_PENDING  the check went asynchronous (DNS, store): it must later call
 *                   policy_resume(r, NEXT|PASS|REJECT) on the loop thread, exactly once.
 * While a check is pending the session reads no input and is kept alive; if the
 * client disconnects meanwhile, policy_resume() frees the request and stops.
 * A check that needs the store runs the call with store_async() and resumes in its
 * done callback; one that needs DNS uses common/dns.h (c-ares, on the loop).
 *
 * Checks flagged POLICY_ANTISPAM are skipped for trusted clients (policy_trusted():
 * authenticated, from the trusted networks, or whitehosted); relay protection and
 * access lists are not flagged and always run.
 *
 * Rejections are logged by the chain in Postfix's form, with the check's name:
 *   NOQUEUE: reject: RCPT from name[ip]: 554 5.7.1 ...; from=<> to=<> proto=ESMTP helo=<> (policy=rbl)
 * Checks log their own non-reject verdicts (SPF results, tags, greylist deferrals
 * are rejects with 4xx and so are logged by the chain).
 */
#ifndef WARREN_SMTPD_POLICY_H
#define WARREN_SMTPD_POLICY_H

#include "smtpd/smtp-session.h"

#include <stdbool.h>

enum policy_stage {
	POLICY_CONNECT,
	POLICY_HELO,
	POLICY_MAIL,
	POLICY_RCPT,
	POLICY_DATA,
	POLICY_STAGE_COUNT,
};

enum policy_action {
	POLICY_NEXT,
	POLICY_PASS,
	POLICY_REJECT,
	POLICY_PENDING,
};

/* Check flags. */
enum {
	POLICY_ANTISPAM = 0x1,   /* skipped for policy_trusted() clients */
};

#define POLICY_REPLY_MAX 512

struct policy_request;
typedef void policy_done_fn(struct smtp_session *s, struct policy_request *r);

struct policy_request {
	struct smtp_session *s;
	enum policy_stage stage;
	const char *rcpt;            /* RCPT: the recipient as given (after postmaster mapping) */
	bool rcpt_local;             /* RCPT: in a local domain */
	void *ctx;                   /* the caller's, for done() */
	/* verdict (after the chain): code 0 means accepted */
	int code;                    /* SMTP reply code of a rejection */
	char reply[POLICY_REPLY_MAX];/* "5.7.1 text" (enhanced code first) */
	bool disconnect;             /* close the connection after the reply */
	bool drop;                   /* close without a reply */
	const char *check;           /* name of the check that decided */
	/* chain position (policy.c) */
	size_t next;
	enum smtp_state saved_state;
	bool waited;
	policy_done_fn *done;
};

struct policy_check {
	const char *name;
	unsigned stages;             /* bit (1u << stage) for each stage it runs in */
	unsigned flags;              /* POLICY_ANTISPAM */
	enum policy_action (*run)(struct policy_request *r);
};

/* Runs the chain of stage; done(s, r) is called exactly once with the verdict
 * (possibly before policy_run returns). If the client disconnected while a check
 * was pending, done(NULL, r) is called instead, only to free r->ctx: the session
 * may be gone. r is freed after done() returns. */
void policy_run(struct smtp_session *s, enum policy_stage stage, const char *rcpt,
		bool rcpt_local, void *ctx, policy_done_fn *done);
/* Continues a chain after a POLICY_PENDING check (on the loop thread). */
void policy_resume(struct policy_request *r, enum policy_action action);
/* Sets the rejection: code and "x.y.z text" (the enhanced code first). */
void policy_reject(struct policy_request *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Authenticated, trusted network or whitehost: the anti-spam checks are skipped. */
bool policy_trusted(const struct smtp_session *s);
/* Adds a header field (the whole "Name: value" without CRLF; folded lines are
 * joined by "\r\n\t") to the message of the current transaction; written at the
 * top of the message, after Return-Path/Delivered-To, before our Received. Only
 * before DATA (CONNECT to RCPT stages): the headers are written when the message
 * starts; a DATA-stage check that tags rewrites the spool (policy-content.c). */
void policy_add_header(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Logs a rejection in Postfix's form (the chain does this for its verdicts). */
void policy_log_reject(struct smtp_session *s, const struct policy_request *r);

/* Per-session state of the checks (s->policy), freed with the session. */
struct policy_rbl_state;
struct policy_spf_verdict;
struct policy_session {
	bool whitehost;              /* a whitehost: anti-spam checks skipped */
	bool discard;                /* policy-content.c: this message goes nowhere (250) */
	/* policy-spf.c: the SPF verdict of transaction number spf_mail (s->n_mail; 0:
	 * none yet), for greylisting: a pass keys the triplet by spf_domain */
	unsigned spf_mail;
	bool spf_pass;
	char spf_domain[SMTP_DOMAIN_MAX + 1];
	/* policy-spf.c: the verdict applied per recipient at RCPT when a domain has
	 * its own spf { } (in s->txn's pool; valid while spf_mail == s->n_mail) */
	struct policy_spf_verdict *spf_verdict;
	/* policy-lists.c: the HELO name / the transaction's sender is whitelisted
	 * (anti-spam checks skipped; txn one cleared at each MAIL) */
	bool helo_whitelisted, sender_whitelisted;
	bool rcpt_whitelisted;       /* the current RCPT's recipient (cleared at the next) */
	/* policy-rbl.c: the client's and sender domain's DNSBL verdicts (per session) */
	struct policy_rbl_state *rbl;
};

struct policy_session *policy_session(struct smtp_session *s);
void policy_session_free(struct smtp_session *s);

/* Headers added to the transaction (policy_add_header), kept in s->txn's pool. */
struct policy_header {
	struct policy_header *next;
	const char *text;
};

#endif
