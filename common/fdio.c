/* fdio.c — whole-buffer writes (fdio.h). */
#include "common/fdio.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static int all(int fd, const char *p, size_t len, int use_send)
{
	while (len > 0) {
		ssize_t n = use_send ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fd_write_all(int fd, const void *buf, size_t len)
{
	return all(fd, buf, len, 0);
}

int fd_send_all(int fd, const void *buf, size_t len)
{
	return all(fd, buf, len, 1);
}
