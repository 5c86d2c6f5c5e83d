/* notify.c — telling every Warren process that a mailbox changed.
 *
 * Each process that wants to hear of changes binds a Unix datagram socket
 * state_dir/notify/<pid>.sock. After a commit, the process that made the change
 * sends the changed mailbox ids to every socket there (a handful: one per daemon
 * process). Nobody polls the database. Sockets of dead processes are removed
 * when a send to them fails. A receiver whose queue is full misses a datagram;
 * the socket's buffer is sized so that this takes a very long stall.
 */
#include "storage/store-private.h"
#include "common/log.h"
#include "common/pool.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Receive buffer of a notification socket. */
#define NOTIFY_RCVBUF (4 * 1024 * 1024)
/* Mailbox ids per datagram. */
#define NOTIFY_IDS_MAX 64

static int notify_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -1;
	strcpy(sun->sun_path, path);
	return 0;
}

static void notify_read(uv_poll_t *handle, int status, int events)
{
	struct store *s = handle->data;
	unsigned char buf[NOTIFY_IDS_MAX * 8];
	for (;;) {
		ssize_t n = recv(s->notify_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i + 8 <= n; i += 8)
			s->notify_cb(get_be64(buf + i), s->notify_ctx);
	}
}

int store_notify_start(struct store *store, uv_loop_t *loop, store_notify_callback *cb,
		       void *ctx)
{
	char path[4096];
	struct sockaddr_un sun;
	snprintf(path, sizeof(path), "%s/%ld.sock", store->notify_dir, (long)getpid());
	if (notify_addr(path, &sun) < 0)
		return STORE_EINVAL;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return STORE_EIO;
	int size = NOTIFY_RCVBUF;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		log_error("store: bind %s: %s", path, strerror(errno));
		close(fd);
		return STORE_EIO;
	}
	store->notify_fd = fd;
	store->notify_path = x_strdup(path);
	store->notify_cb = cb;
	store->notify_ctx = ctx;
	store->notify_poll = x_calloc(1, sizeof(*store->notify_poll));
	uv_poll_init(loop, store->notify_poll, fd);
	store->notify_poll->data = store;
	uv_poll_start(store->notify_poll, UV_READABLE, notify_read);
	return STORE_OK;
}

static void poll_closed(uv_handle_t *handle)
{
	free(handle);
}

void store_notify_stop(struct store *store)
{
	if (store->notify_poll != NULL) {
		uv_poll_stop(store->notify_poll);
		uv_close((uv_handle_t *)store->notify_poll, poll_closed);
		store->notify_poll = NULL;
	}
	if (store->notify_fd >= 0) {
		close(store->notify_fd);
		store->notify_fd = -1;
	}
	if (store->notify_path != NULL) {
		unlink(store->notify_path);
		x_free(&store->notify_path);
	}
}

void store_notify_close(struct store *s)
{
	store_notify_stop(s);
	if (s->send_fd >= 0) {
		close(s->send_fd);
		s->send_fd = -1;
	}
}

/* A socket file whose owner is gone. */
static bool stale(const char *name)
{
	long pid = strtol(name, NULL, 10);
	return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void announce_chunk(struct store *s, const uint64_t *mailbox_ids, size_t n);

/* More ids than fit a datagram go in several (a delivery to 100 local mailboxes
 * must wake every one of them). */
void store_announce(struct store *s, const uint64_t *mailbox_ids, size_t count)
{
	for (size_t i = 0; i < count; i += NOTIFY_IDS_MAX)
		announce_chunk(s, mailbox_ids + i,
			       count - i < NOTIFY_IDS_MAX ? count - i : NOTIFY_IDS_MAX);
}

static void announce_chunk(struct store *s, const uint64_t *mailbox_ids, size_t n)
{
	unsigned char msg[NOTIFY_IDS_MAX * 8];
	for (size_t i = 0; i < n; i++)
		put_be64(msg + 8 * i, mailbox_ids[i]);

	pthread_mutex_lock(&s->send_lock);
	if (s->send_fd < 0)
		s->send_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	DIR *dir = s->send_fd >= 0 ? opendir(s->notify_dir) : NULL;
	struct dirent *de;
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".sock") != 0)
			continue;
		char path[4096];
		struct sockaddr_un sun;
		snprintf(path, sizeof(path), "%s/%s", s->notify_dir, de->d_name);
		if (notify_addr(path, &sun) < 0)
			continue;
		if (sendto(s->send_fd, msg, n * 8, 0, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
		    (errno == ECONNREFUSED || errno == ENOENT) && stale(de->d_name))
			unlink(path);
	}
	if (dir != NULL)
		closedir(dir);
	pthread_mutex_unlock(&s->send_lock);
}
