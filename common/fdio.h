/* fdio.h — writing a whole buffer to a file descriptor.
 *
 * Both loop over short writes and EINTR and return 0, or -1 with errno set (EIO
 * when the kernel took no byte without saying why). They block on a blocking fd:
 * for files, pipes and sockets off the loop thread, not for libuv's connections. */
#ifndef WARREN_FDIO_H
#define WARREN_FDIO_H

#include <stddef.h>

/* write(2) until len bytes are written. */
int fd_write_all(int fd, const void *buf, size_t len);
/* send(2) with MSG_NOSIGNAL, for sockets: a closed peer is EPIPE, not SIGPIPE. */
int fd_send_all(int fd, const void *buf, size_t len);

#endif
