/* imap-thread.c — THREAD=REFERENCES (RFC 5256 2.2, after Jamie Zawinski's algorithm):
 * messages linked by Message-ID, References and In-Reply-To, empty containers pruned,
 * root threads grouped by base subject, siblings in sent-date order. */
#include "imapd/imap-thread.h"
#include "common/buf.h"
#include "common/pool.h"

#include <stdlib.h>
#include <string.h>

struct container {
	const struct thread_msg *msg;      /* NULL: a dummy */
	struct container *parent, *child, *next;
	char *id;
};

struct threader {
	struct container **table;          /* by message id */
	size_t size;
	struct container **all;
	size_t n_all, cap_all;
};

static size_t hash(const char *s)
{
	size_t h = 5381;
	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static struct container *new_container(struct threader *t, const char *id)
{
	struct container *c = x_calloc(1, sizeof(*c));
	c->id = id != NULL ? x_strdup(id) : NULL;
	if (t->n_all == t->cap_all) {
		t->cap_all = t->cap_all == 0 ? 64 : t->cap_all * 2;
		t->all = x_realloc(t->all, t->cap_all * sizeof(*t->all));
	}
	t->all[t->n_all++] = c;
	return c;
}

static struct container *lookup(struct threader *t, const char *id, bool create)
{
	size_t i = hash(id) % t->size;
	while (t->table[i] != NULL) {
		if (strcmp(t->table[i]->id, id) == 0)
			return t->table[i];
		i = (i + 1) % t->size;
	}
	if (!create)
		return NULL;
	t->table[i] = new_container(t, id);
	return t->table[i];
}

static bool is_ancestor(const struct container *a, const struct container *c)
{
	for (; c != NULL; c = c->parent)
		if (c == a)
			return true;
	return false;
}

static void unlink_child(struct container *c)
{
	if (c->parent == NULL)
		return;
	struct container **pp = &c->parent->child;
	while (*pp != NULL && *pp != c)
		pp = &(*pp)->next;
	if (*pp == c)
		*pp = c->next;
	c->parent = NULL;
	c->next = NULL;
}

static void add_child(struct container *parent, struct container *c)
{
	unlink_child(c);
	c->parent = parent;
	c->next = NULL;
	struct container **pp = &parent->child;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = c;
}

/* The message ids ("<...>") of a References or In-Reply-To value. */
static size_t parse_ids(const char *value, char ***ids_r)
{
	size_t n = 0, cap = 0;
	char **ids = NULL;
	const char *p = value;
	while (p != NULL && (p = strchr(p, '<')) != NULL) {
		const char *end = strchr(p, '>');
		if (end == NULL)
			break;
		if (end > p + 1) {
			if (n == cap) {
				cap = cap == 0 ? 8 : cap * 2;
				ids = x_realloc(ids, cap * sizeof(*ids));
			}
			ids[n++] = x_strndup(p, (size_t)(end - p + 1));
		}
		p = end + 1;
	}
	*ids_r = ids;
	return n;
}

static int64_t thread_date(const struct container *c)
{
	if (c->msg != NULL)
		return c->msg->date;
	return c->child != NULL ? thread_date(c->child) : 0;
}

static size_t thread_seq(const struct container *c)
{
	if (c->msg != NULL)
		return c->msg->seq;
	return c->child != NULL ? thread_seq(c->child) : 0;
}

static int sibling_cmp(const void *pa, const void *pb)
{
	const struct container *a = *(struct container *const *)pa;
	const struct container *b = *(struct container *const *)pb;
	int64_t da = thread_date(a), db = thread_date(b);
	if (da != db)
		return da < db ? -1 : 1;
	size_t sa = thread_seq(a), sb = thread_seq(b);
	return sa < sb ? -1 : sa > sb;
}

/* Sorts c's children (recursively first: a dummy's date is its first child's). */
static void sort_children(struct container *c)
{
	size_t n = 0;
	for (struct container *k = c->child; k != NULL; k = k->next) {
		sort_children(k);
		n++;
	}
	if (n < 2)
		return;
	struct container **v = x_malloc(n * sizeof(*v));
	size_t i = 0;
	for (struct container *k = c->child; k != NULL; k = k->next)
		v[i++] = k;
	qsort(v, n, sizeof(*v), sibling_cmp);
	for (i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	c->child = v[0];
	free(v);
}

/* Removes dummies (step 4 of RFC 5256 2.2): a dummy without children goes; one with
 * children gives them to its parent, unless it is a root with several children. */
static void prune(struct container *parent)
{
	struct container **pp = &parent->child;
	while (*pp != NULL) {
		struct container *c = *pp;
		prune(c);
		if (c->msg == NULL && c->child == NULL) {
			*pp = c->next;
			continue;
		}
		bool is_root = parent->parent == NULL && parent->msg == NULL && parent->id == NULL;
		if (c->msg == NULL && (!is_root || c->child->next == NULL)) {
			/* promote the children in place of the dummy */
			struct container *first = c->child, *last = first;
			for (struct container *k = first; k != NULL; k = k->next) {
				k->parent = parent;
				last = k;
			}
			last->next = c->next;
			*pp = first;
			continue;
		}
		pp = &c->next;
	}
}

static const char *thread_subject(const struct container *c)
{
	if (c->msg != NULL)
		return c->msg->subject;
	return c->child != NULL && c->child->msg != NULL ? c->child->msg->subject : "";
}

/* Step 5: root threads with the same base subject are gathered. */
static void group_by_subject(struct threader *t, struct container *root)
{
	size_t n = 0;
	for (struct container *c = root->child; c != NULL; c = c->next)
		n++;
	if (n < 2)
		return;
	struct container **table = x_calloc(n * 2, sizeof(*table));
	size_t size = n * 2;
	for (struct container *c = root->child; c != NULL; c = c->next) {
		const char *subj = thread_subject(c);
		if (subj[0] == '\0')
			continue;
		size_t i = hash(subj) % size;
		while (table[i] != NULL && strcmp(thread_subject(table[i]), subj) != 0)
			i = (i + 1) % size;
		struct container *old = table[i];
		/* prefer a dummy, then a message that is not a reply */
		if (old == NULL || (c->msg == NULL && old->msg != NULL) ||
		    (old->msg != NULL && c->msg != NULL && old->msg->is_reply && !c->msg->is_reply))
			table[i] = c;
	}
	/* the roots as they are now: merging changes the list */
	struct container **roots = x_malloc(n * sizeof(*roots));
	size_t nr = 0;
	for (struct container *c = root->child; c != NULL; c = c->next)
		roots[nr++] = c;
	for (size_t r = 0; r < nr; r++) {
		struct container *c = roots[r];
		if (c->parent != root)
			continue;
		const char *subj = thread_subject(c);
		size_t i = hash(subj) % size;
		while (subj[0] != '\0' && table[i] != NULL && strcmp(thread_subject(table[i]), subj) != 0)
			i = (i + 1) % size;
		struct container *keep = subj[0] != '\0' ? table[i] : NULL;
		if (keep == NULL || keep == c)
			continue;
		if (keep->msg == NULL && c->msg == NULL) {
			/* both dummies: c's children join keep */
			while (c->child != NULL)
				add_child(keep, c->child);
			unlink_child(c);
		} else if (keep->msg == NULL) {
			add_child(keep, c);
		} else if (c->msg != NULL && !keep->msg->is_reply && c->msg->is_reply) {
			add_child(keep, c);
		} else {
			/* neither is the other's reply: a new dummy holds both */
			struct container *d = new_container(t, NULL);
			struct container **pp = &root->child;
			while (*pp != keep)
				pp = &(*pp)->next;
			*pp = d;
			d->parent = root;
			d->next = keep->next;
			keep->parent = NULL;
			keep->next = NULL;
			add_child(d, keep);
			add_child(d, c);
			table[i] = d;
		}
	}
	free(roots);
	free(table);
}

static void output_chain(const struct container *c, struct buf *out)
{
	if (c->msg != NULL)
		buf_printf(out, "%u", c->msg->id);
	if (c->child == NULL)
		return;
	if (c->msg != NULL)
		buf_append(out, " ", 1);
	if (c->child->next == NULL) {
		output_chain(c->child, out);
		return;
	}
	for (const struct container *k = c->child; k != NULL; k = k->next) {
		buf_append(out, "(", 1);
		output_chain(k, out);
		buf_append(out, ")", 1);
	}
}

void imap_thread_references(const struct thread_msg *msgs, size_t n, struct buf *out)
{
	struct threader t = { .size = n * 4 + 16 };
	t.table = x_calloc(t.size, sizeof(*t.table));
	for (size_t i = 0; i < n; i++) {
		const struct thread_msg *m = &msgs[i];
		char **refs;
		size_t nr = parse_ids(m->references, &refs);
		if (nr == 0)
			nr = parse_ids(m->in_reply_to, &refs);
		/* A: link the references in order, never making a loop */
		struct container *prev = NULL;
		for (size_t k = 0; k < nr; k++) {
			struct container *c = lookup(&t, refs[k], true);
			if (prev != NULL && c->parent == NULL && !is_ancestor(c, prev))
				add_child(prev, c);
			prev = c;
		}
		/* B: the message's own container (a new one for a missing or repeated id) */
		struct container *self = NULL;
		if (m->message_id != NULL && m->message_id[0] != '\0') {
			self = lookup(&t, m->message_id, true);
			if (self->msg != NULL)
				self = NULL;
		}
		if (self == NULL)
			self = new_container(&t, NULL);
		self->msg = m;
		if (prev != NULL && prev != self && !is_ancestor(self, prev))
			add_child(prev, self);
		else if (prev == NULL)
			unlink_child(self);
		for (size_t k = 0; k < nr; k++)
			free(refs[k]);
		free(refs);
	}
	/* the root set: every container without a parent */
	struct container root = { 0 };
	struct container **tail = &root.child;
	for (size_t i = 0; i < t.n_all; i++) {
		struct container *c = t.all[i];
		if (c->parent == NULL) {
			c->parent = &root;
			c->next = NULL;
			*tail = c;
			tail = &c->next;
		}
	}
	prune(&root);
	for (struct container *c = root.child; c != NULL; c = c->next)
		c->parent = NULL;
	sort_children(&root);
	for (struct container *c = root.child; c != NULL; c = c->next)
		c->parent = &root;
	group_by_subject(&t, &root);
	sort_children(&root);
	buf_append_str(out, "* THREAD");
	bool first = true;
	for (const struct container *c = root.child; c != NULL; c = c->next) {
		buf_append_str(out, first ? " (" : "(");
		first = false;
		if (c->msg == NULL && c->child != NULL && c->child->next == NULL)
			output_chain(c->child, out);
		else
			output_chain(c, out);
		buf_append(out, ")", 1);
	}
	buf_append_str(out, "\r\n");
	for (size_t i = 0; i < t.n_all; i++) {
		free(t.all[i]->id);
		free(t.all[i]);
	}
	free(t.all);
	free(t.table);
}
