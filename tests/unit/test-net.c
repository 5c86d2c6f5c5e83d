/* test-net.c — the connection layer: line reader limits, input fed in pieces,
 * pause/resume, output back-pressure. A real listener on 127.0.0.1 and a real
 * client socket on the same libuv loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/net.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 100
#define LINES_MAX 64

struct server {
	struct net_listener *listener;
	struct net_conn *conn;
	char *lines[LINES_MAX];
	size_t n_lines;
	bool pause_after_first;
	bool closed;
	size_t write_on_accept;    /* bytes to write to the client at once */
	bool saw_full;
	unsigned drains;
};

struct client {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_timer_t timer;
	const char *payload;
	size_t len, sent;
	bool bytewise;
	size_t received;
	bool reading;
};

static uv_loop_t *loop;

static void on_input(struct net_conn *conn, void *ctx)
{
	struct server *sv = ctx;
	struct net_line line;
	enum net_line_status st;
	while ((st = net_conn_read_line(conn, &line)) != NET_LINE_NEED_MORE) {
		char *text;
		if (st == NET_LINE_TOO_LONG) {
			text = x_strdup("<too long>");
		} else {
			text = x_malloc(line.len + 4);
			memcpy(text, line.data, line.len);
			strcpy(text + line.len, line.crlf ? "|CR" : "|LF");
		}
		if (sv->n_lines < LINES_MAX)
			sv->lines[sv->n_lines++] = text;
		else
			free(text);
		if (sv->pause_after_first && sv->n_lines == 1) {
			net_conn_pause_input(conn);
			return;
		}
	}
}

static void on_drain(struct net_conn *conn, void *ctx)
{
	struct server *sv = ctx;
	sv->drains++;
}

static void on_close(struct net_conn *conn, void *ctx)
{
	struct server *sv = ctx;
	sv->closed = true;
	sv->conn = NULL;
}

static const struct net_conn_callbacks callbacks = {
	.on_input = on_input,
	.on_drain = on_drain,
	.on_close = on_close,
};

static void on_accept(struct net_conn *conn, void *ctx)
{
	struct server *sv = ctx;
	sv->conn = conn;
	net_conn_set_handler(conn, &callbacks, sv);
	net_conn_set_max_line(conn, MAX_LINE);
	if (sv->write_on_accept > 0) {
		char *big = x_malloc(sv->write_on_accept);
		memset(big, 'x', sv->write_on_accept);
		net_conn_write(conn, big, sv->write_on_accept);
		free(big);
		/* the flush happens in the loop; the queue counts as pending now */
		sv->saw_full = net_conn_output_full(conn);
	}
}

/* ---- client side ---- */

static void client_write_next(struct client *c);

static void client_written(uv_write_t *req, int status)
{
	free(req);
}

static void client_timer(uv_timer_t *t)
{
	client_write_next(t->data);
}

static void client_write_next(struct client *c)
{
	if (c->sent >= c->len)
		return;
	size_t n = c->bytewise ? 1 : c->len - c->sent;
	uv_write_t *req = x_malloc(sizeof(*req));
	uv_buf_t b = uv_buf_init((char *)c->payload + c->sent, (unsigned)n);
	uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, client_written);
	c->sent += n;
	if (c->sent < c->len)
		uv_timer_start(&c->timer, client_timer, 1, 0);
}

static char client_buf[65536];

static void client_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	*b = uv_buf_init(client_buf, sizeof(client_buf));
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct client *c = s->data;
	if (n > 0)
		c->received += (size_t)n;
}

static void client_connected(uv_connect_t *req, int status)
{
	struct client *c = req->data;
	assert_int_equal(status, 0);
	if (c->reading)
		uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
	client_write_next(c);
}

static void client_start(struct client *c, unsigned port)
{
	struct sockaddr_in addr;
	uv_ip4_addr("127.0.0.1", (int)port, &addr);
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->connect.data = c;
	uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, client_connected);
}

static void close_noop(uv_handle_t *h)
{
}

static void client_stop(struct client *c)
{
	uv_close((uv_handle_t *)&c->tcp, close_noop);
	uv_close((uv_handle_t *)&c->timer, close_noop);
}

/* Runs the loop until cond holds or ~5 s pass. */
#define RUN_UNTIL(cond) do {                                             \
	for (int i_ = 0; i_ < 5000 && !(cond); i_++)                     \
		uv_run(loop, UV_RUN_NOWAIT), usleep(1000);               \
	assert_true(cond);                                               \
} while (0)

static void server_start(struct server *sv)
{
	struct net_listener_settings settings = { .name = "test" };
	const char *err = NULL;
	sv->listener = net_listener_open(loop, "127.0.0.1", 0, &settings, on_accept, sv, &err);
	assert_non_null(sv->listener);
}

static void server_stop(struct server *sv)
{
	if (sv->conn != NULL)
		net_conn_abort(sv->conn);
	net_listener_close(sv->listener);
	for (size_t i = 0; i < sv->n_lines; i++)
		free(sv->lines[i]);
	for (int i = 0; i < 100; i++)
		uv_run(loop, UV_RUN_NOWAIT);
}

static void feed(const char *payload, size_t len, bool bytewise, struct server *sv,
		 size_t expect_lines)
{
	struct client c = { .payload = payload, .len = len, .bytewise = bytewise };
	server_start(sv);
	client_start(&c, net_listener_port(sv->listener));
	RUN_UNTIL(sv->n_lines >= expect_lines);
	client_stop(&c);
	for (int i = 0; i < 50; i++)
		uv_run(loop, UV_RUN_NOWAIT);
}

static void check_lines(struct server *sv)
{
	assert_int_equal(sv->n_lines, 6);
	assert_string_equal(sv->lines[0], "EHLO a|CR");
	assert_string_equal(sv->lines[1], "bare|LF");
	assert_string_equal(sv->lines[2], "|CR");
	assert_string_equal(sv->lines[3], "<too long>");
	assert_string_equal(sv->lines[4], "mid\rcr|CR");
	assert_string_equal(sv->lines[5], "last|CR");
}

static char *lines_payload(size_t *len_r)
{
	char *p = x_malloc(4096);
	size_t o = 0;
	o += (size_t)sprintf(p + o, "EHLO a\r\nbare\n\r\n");
	memset(p + o, 'L', MAX_LINE + 1);
	o += MAX_LINE + 1;
	o += (size_t)sprintf(p + o, "\r\nmid\rcr\r\nlast\r\n");
	*len_r = o;
	return p;
}

static void test_lines_at_once(void **state)
{
	struct server sv = { 0 };
	size_t len;
	char *p = lines_payload(&len);
	feed(p, len, false, &sv, 6);
	check_lines(&sv);
	server_stop(&sv);
	free(p);
}

static void test_lines_byte_by_byte(void **state)
{
	struct server sv = { 0 };
	size_t len;
	char *p = lines_payload(&len);
	feed(p, len, true, &sv, 6);
	check_lines(&sv);
	server_stop(&sv);
	free(p);
}

static void test_exact_limit(void **state)
{
	struct server sv = { 0 };
	char p[MAX_LINE + 8];
	memset(p, 'a', MAX_LINE);
	memcpy(p + MAX_LINE, "\r\n", 2);
	feed(p, MAX_LINE + 2, false, &sv, 1);
	assert_int_equal(strlen(sv.lines[0]), MAX_LINE + 3);
	server_stop(&sv);
}

/* A megabyte without a line end is dropped as it arrives, never buffered. */
static void test_huge_line(void **state)
{
	struct server sv = { 0 };
	size_t big = 1024 * 1024;
	char *p = x_malloc(big + 16);
	memset(p, 'z', big);
	memcpy(p + big, "\r\nok\r\n", 6);
	feed(p, big + 6, false, &sv, 2);
	assert_string_equal(sv.lines[0], "<too long>");
	assert_string_equal(sv.lines[1], "ok|CR");
	server_stop(&sv);
	free(p);
}

static void resume_cb(uv_timer_t *t)
{
	struct server *sv = t->data;
	net_conn_resume_input(sv->conn);
}

static void test_pause_resume(void **state)
{
	struct server sv = { .pause_after_first = true };
	struct client c = { .payload = "one\r\ntwo\r\nthree\r\n", .len = 17 };
	server_start(&sv);
	client_start(&c, net_listener_port(sv.listener));
	RUN_UNTIL(sv.n_lines == 1);
	for (int i = 0; i < 50; i++)
		uv_run(loop, UV_RUN_NOWAIT);
	assert_int_equal(sv.n_lines, 1);        /* paused: nothing more delivered */
	uv_timer_t t;
	uv_timer_init(loop, &t);
	t.data = &sv;
	uv_timer_start(&t, resume_cb, 10, 0);
	RUN_UNTIL(sv.n_lines == 3);
	assert_string_equal(sv.lines[2], "three|CR");
	uv_close((uv_handle_t *)&t, close_noop);
	client_stop(&c);
	server_stop(&sv);
}

/* Output beyond NET_WRITE_HIGH reports full; on_drain follows once the client reads. */
static void test_back_pressure(void **state)
{
	struct server sv = { .write_on_accept = 8 * 1024 * 1024 };
	struct client c = { .payload = "", .len = 0 };
	server_start(&sv);
	client_start(&c, net_listener_port(sv.listener));
	RUN_UNTIL(sv.conn != NULL);
	assert_true(sv.saw_full);
	for (int i = 0; i < 200; i++)
		uv_run(loop, UV_RUN_NOWAIT);
	assert_true(net_conn_output_full(sv.conn));   /* the client is not reading */
	assert_int_equal(sv.drains, 0);
	uv_read_start((uv_stream_t *)&c.tcp, client_alloc, client_read);
	RUN_UNTIL(sv.drains == 1);
	RUN_UNTIL(c.received == sv.write_on_accept);
	client_stop(&c);
	server_stop(&sv);
}

static void test_peer_close(void **state)
{
	struct server sv = { 0 };
	struct client c = { .payload = "partial", .len = 7 };
	server_start(&sv);
	client_start(&c, net_listener_port(sv.listener));
	RUN_UNTIL(sv.conn != NULL);
	client_stop(&c);
	RUN_UNTIL(sv.closed);
	assert_int_equal(sv.n_lines, 0);
	server_stop(&sv);
}

static void walk_close(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, close_noop);
}

int main(void)
{
	uv_loop_t l;
	uv_loop_init(&l);
	loop = &l;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_at_once),
		cmocka_unit_test(test_lines_byte_by_byte),
		cmocka_unit_test(test_exact_limit),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_back_pressure),
		cmocka_unit_test(test_peer_close),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);
	uv_walk(loop, walk_close, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return ret;
}
