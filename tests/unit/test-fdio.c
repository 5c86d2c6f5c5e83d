/* test-fdio.c — whole-buffer writes (common/fdio.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* More than a pipe holds (64 KiB), read in small pieces by the parent while the
 * child writes. */
#define BIG (1024 * 1024)

static void writes_a_buffer_larger_than_the_pipe(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	static char data[BIG];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		_exit(fd_write_all(p[1], data, sizeof(data)) == 0 ? 0 : 1);
	}
	close(p[1]);
	static char got[BIG];
	size_t off = 0;
	for (;;) {
		ssize_t n = read(p[0], got + off, sizeof(got) - off < 1000 ? sizeof(got) - off : 1000);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(p[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(off, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
}

static void closed_pipe_is_epipe(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	errno = 0;
	assert_int_equal(fd_write_all(p[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(p[1]);
	assert_int_equal(fd_write_all(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(fd_write_all(-1, "", 0), 0);   /* nothing to write */
	signal(SIGPIPE, SIG_DFL);
}

static void send_to_a_closed_peer_raises_no_sigpipe(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_DFL);   /* a SIGPIPE would kill the test */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fd_send_all(sv[0], "hello", 5), 0);
	char buf[8];
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	close(sv[1]);
	errno = 0;
	assert_int_equal(fd_send_all(sv[0], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writes_a_buffer_larger_than_the_pipe),
		cmocka_unit_test(closed_pipe_is_epipe),
		cmocka_unit_test(send_to_a_closed_peer_raises_no_sigpipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
