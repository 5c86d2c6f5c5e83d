/* imap-parser.c — IMAP command parsing. */
#include "imapd/imap-parser.h"
#include "common/pool.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

struct parser {
	struct pool *pool;
	const char *p, *end;
	size_t n_args;
	const char *error;
};

int imap_line_literal(const char *line, size_t len, struct imap_literal_info *info)
{
	if (len < 3 || line[len - 1] != '}')
		return 0;
	size_t i = len - 1;
	bool nonsync = false;
	if (line[i - 1] == '+' || line[i - 1] == '-') {
		nonsync = true;
		i--;
	}
	size_t digits_end = i;
	while (i > 0 && isdigit((unsigned char)line[i - 1]))
		i--;
	if (i == 0 || line[i - 1] != '{')
		return 0;
	if (i == digits_end)
		return -1;
	uint64_t size = 0;
	for (size_t d = i; d < digits_end; d++) {
		if (size > (UINT64_MAX - 9) / 10)
			return -1;
		size = size * 10 + (uint64_t)(line[d] - '0');
	}
	info->size = size;
	info->nonsync = nonsync;
	return 1;
}

bool imap_valid_tag(const char *tag, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tag[i];
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\+", c) != NULL)
			return false;
	}
	return true;
}

static bool atom_char(unsigned char c)
{
	return c > ' ' && c != 0x7f && c != '(' && c != ')' && c != '"' && c != '{' &&
	       c != '\\';
}

static int parse_args(struct parser *ps, struct imap_arg **args_r, size_t *n_r,
		      int depth, bool in_list);

static int parse_atom(struct parser *ps, struct imap_arg *arg)
{
	const char *start = ps->p;
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '[') {
			/* BODY[HEADER.FIELDS (A B)]: brackets may hold spaces and lists */
			const char *close = memchr(ps->p, ']', (size_t)(ps->end - ps->p));
			if (close == NULL) {
				ps->error = "Missing ']'";
				return -1;
			}
			ps->p = close + 1;
			continue;
		}
		if (c == '\\' && ps->p == start) {
			/* flags: \Seen */
			ps->p++;
			continue;
		}
		if (!atom_char(c) && c != ']')
			break;
		ps->p++;
	}
	if (ps->p == start) {
		ps->error = "Unexpected character";
		return -1;
	}
	arg->str = pool_strndup(ps->pool, start, (size_t)(ps->p - start));
	arg->len = (size_t)(ps->p - start);
	arg->type = (arg->len == 3 && strncasecmp(start, "NIL", 3) == 0) ? IMAP_ARG_NIL :
		IMAP_ARG_ATOM;
	return 0;
}

static int parse_quoted(struct parser *ps, struct imap_arg *arg)
{
	ps->p++;   /* the opening quote */
	const char *start = ps->p;
	size_t n = 0;
	const char *q;
	for (q = start; q < ps->end && *q != '"'; q++) {
		if (*q == '\r' || *q == '\n' || *q == '\0') {
			ps->error = "Invalid character in quoted string";
			return -1;
		}
		if (*q == '\\') {
			if (q + 1 >= ps->end || (q[1] != '"' && q[1] != '\\')) {
				ps->error = "Invalid escape in quoted string";
				return -1;
			}
			q++;
		}
		n++;
	}
	if (q >= ps->end) {
		ps->error = "Missing '\"'";
		return -1;
	}
	char *out = pool_alloc(ps->pool, n + 1);
	size_t o = 0;
	for (const char *r = start; r < q; r++) {
		if (*r == '\\')
			r++;
		out[o++] = *r;
	}
	out[o] = '\0';
	arg->type = IMAP_ARG_QUOTED;
	arg->str = out;
	arg->len = o;
	ps->p = q + 1;
	return 0;
}

static int parse_literal(struct parser *ps, struct imap_arg *arg)
{
	if (*ps->p == '~') {
		arg->literal8 = true;
		ps->p++;
	}
	const char *close = memchr(ps->p, '}', (size_t)(ps->end - ps->p));
	struct imap_literal_info info;
	if (close == NULL || imap_line_literal(ps->p, (size_t)(close - ps->p + 1), &info) != 1) {
		ps->error = "Invalid literal";
		return -1;
	}
	const char *data = close + 1;
	if (ps->end - data < 2 || data[0] != '\r' || data[1] != '\n') {
		ps->error = "Literal not followed by CRLF";
		return -1;
	}
	data += 2;
	if ((uint64_t)(ps->end - data) < info.size) {
		ps->error = "Literal shorter than announced";
		return -1;
	}
	arg->type = IMAP_ARG_LITERAL;
	arg->str = pool_strndup(ps->pool, data, (size_t)info.size);
	arg->len = (size_t)info.size;
	ps->p = data + info.size;
	return 0;
}

static int parse_one(struct parser *ps, struct imap_arg *arg, int depth)
{
	char c = *ps->p;
	if (c == '"')
		return parse_quoted(ps, arg);
	if (c == '{' || (c == '~' && ps->p + 1 < ps->end && ps->p[1] == '{'))
		return parse_literal(ps, arg);
	if (c == '(') {
		if (depth >= IMAP_LIST_DEPTH_MAX) {
			ps->error = "Lists nested too deeply";
			return -1;
		}
		ps->p++;
		arg->type = IMAP_ARG_LIST;
		if (parse_args(ps, &arg->list, &arg->n_list, depth + 1, true) < 0)
			return -1;
		if (ps->p >= ps->end || *ps->p != ')') {
			ps->error = "Missing ')'";
			return -1;
		}
		ps->p++;
		return 0;
	}
	if (c == ')') {
		ps->error = "Unexpected ')'";
		return -1;
	}
	return parse_atom(ps, arg);
}

static int parse_args(struct parser *ps, struct imap_arg **args_r, size_t *n_r,
		      int depth, bool in_list)
{
	size_t cap = 4, n = 0;
	struct imap_arg *args = pool_alloc(ps->pool, cap * sizeof(*args));
	while (ps->p < ps->end && !(in_list && *ps->p == ')')) {
		if (n > 0) {
			if (*ps->p != ' ') {
				ps->error = "Missing space between arguments";
				return -1;
			}
			ps->p++;
			if (ps->p >= ps->end || (in_list && *ps->p == ')')) {
				ps->error = "Trailing space";
				return -1;
			}
		}
		if (++ps->n_args > IMAP_ARGS_MAX) {
			ps->error = "Too many arguments";
			return -1;
		}
		if (n == cap) {
			struct imap_arg *bigger = pool_alloc(ps->pool, cap * 2 * sizeof(*args));
			memcpy(bigger, args, n * sizeof(*args));
			args = bigger;
			cap *= 2;
		}
		if (parse_one(ps, &args[n], depth) < 0)
			return -1;
		n++;
	}
	*args_r = args;
	*n_r = n;
	return 0;
}

int imap_parse_command(struct pool *pool, const char *data, size_t len,
		       const char **tag_r, const char **name_r,
		       struct imap_arg **args_r, size_t *n_args_r, const char **error_r)
{
	struct parser ps = { .pool = pool, .p = data, .end = data + len };
	*tag_r = NULL;
	*name_r = NULL;
	const char *sp = memchr(data, ' ', len);
	size_t tag_len = sp != NULL ? (size_t)(sp - data) : len;
	if (!imap_valid_tag(data, tag_len)) {
		*error_r = "Invalid tag";
		return -1;
	}
	*tag_r = pool_strndup(pool, data, tag_len);
	if (sp == NULL || sp + 1 >= ps.end) {
		*error_r = "Missing command";
		return -1;
	}
	ps.p = sp + 1;
	const char *name = ps.p;
	while (ps.p < ps.end && *ps.p != ' ' && isalnum((unsigned char)*ps.p))
		ps.p++;
	if (ps.p == name || (ps.p < ps.end && *ps.p != ' ')) {
		*error_r = "Invalid command name";
		return -1;
	}
	*name_r = pool_strndup(pool, name, (size_t)(ps.p - name));
	*args_r = NULL;
	*n_args_r = 0;
	if (ps.p < ps.end) {
		ps.p++;   /* the space after the name */
		if (ps.p >= ps.end) {
			*error_r = "Trailing space";
			return -1;
		}
		if (parse_args(&ps, args_r, n_args_r, 0, false) < 0 || ps.p != ps.end) {
			*error_r = ps.error != NULL ? ps.error : "Unexpected ')'";
			return -1;
		}
	}
	return 0;
}

const char *imap_arg_string(const struct imap_arg *arg)
{
	switch (arg->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_QUOTED:
	case IMAP_ARG_LITERAL:
		return arg->str;
	default:
		return NULL;
	}
}
