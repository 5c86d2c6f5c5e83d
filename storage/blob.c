/* blob.c — message bodies as immutable, content-addressed files.
 *
 * A body is stored once as blobs/XX/<sha256 hex> however many mailboxes hold it,
 * and counted in blobs.db. The file is written to blobs/tmp, fsynced, renamed into
 * place and its folder fsynced before the transaction that references it commits.
 *
 * Removing a file races with a delivery of the same content, so both sides work
 * under the Berkeley DB lock of the blob's record: a delivery that creates the
 * record checks, holding that lock, that the file exists (and writes it again if
 * not); removal checks, holding the same lock, that the record is still gone
 * before it unlinks the file.
 */
#include "storage/store-private.h"
#include "common/log.h"
#include "common/mime.h"
#include "common/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Bytes read from a body file at a time. */
#define BLOB_CHUNK (128 * 1024)

void blob_hex(const unsigned char blob[STORE_BLOB_ID_SIZE], char hex[2 * STORE_BLOB_ID_SIZE + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < STORE_BLOB_ID_SIZE; i++) {
		hex[2 * i] = digits[blob[i] >> 4];
		hex[2 * i + 1] = digits[blob[i] & 15];
	}
	hex[2 * STORE_BLOB_ID_SIZE] = '\0';
}

void store_blob_path(struct store *store, const unsigned char blob[STORE_BLOB_ID_SIZE],
		     char *path, size_t size)
{
	char hex[2 * STORE_BLOB_ID_SIZE + 1];
	blob_hex(blob, hex);
	snprintf(path, size, "%s/%.2s/%s", store->blob_dir, hex, hex);
}

int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	close(fd);
	return ret;
}

/* Feeds a body to fn chunk by chunk (from memory or from its file). */
static int body_each(const struct store_body *body,
		     int (*fn)(const char *data, size_t len, void *arg), void *arg)
{
	if (body->data != NULL)
		return fn(body->data, body->len, arg);
	int fd = open(body->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("store: open %s: %s", body->path, strerror(errno));
		return STORE_EIO;
	}
	char *chunk = x_malloc(BLOB_CHUNK);
	int ret = 0;
	ssize_t n;
	while ((n = read(fd, chunk, BLOB_CHUNK)) > 0)
		if ((ret = fn(chunk, (size_t)n, arg)) != 0)
			break;
	if (n < 0) {
		log_error("store: read %s: %s", body->path, strerror(errno));
		ret = STORE_EIO;
	}
	free(chunk);
	close(fd);
	return ret;
}

struct hash_ctx {
	EVP_MD_CTX *md;
	uint64_t size;
	int fd;                  /* also write here when >= 0 */
};

static int hash_chunk(const char *data, size_t len, void *arg)
{
	struct hash_ctx *h = arg;
	EVP_DigestUpdate(h->md, data, len);
	h->size += len;
	while (h->fd >= 0 && len > 0) {
		ssize_t w = write(h->fd, data, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			log_error("store: writing a body: %s", strerror(errno));
			return STORE_EIO;
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

static int hash_body(const struct store_body *body, int fd,
		     unsigned char blob[STORE_BLOB_ID_SIZE], uint64_t *size_r)
{
	struct hash_ctx h = { EVP_MD_CTX_new(), 0, fd };
	EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
	int ret = body_each(body, hash_chunk, &h);
	unsigned int len = 0;
	EVP_DigestFinal_ex(h.md, blob, &len);
	EVP_MD_CTX_free(h.md);
	*size_r = h.size;
	return ret;
}

int blob_hash(const struct store_body *body, unsigned char blob[STORE_BLOB_ID_SIZE],
	      uint64_t *size_r)
{
	return hash_body(body, -1, blob, size_r);
}

int blob_write(struct store *s, const struct store_body *body,
	       unsigned char blob[STORE_BLOB_ID_SIZE], uint64_t *size_r,
	       struct blob_file *written_r)
{
	char tmp[4096], path[4096], dir[4096];
	unsigned char rnd[12];
	char rhex[25];
	RAND_bytes(rnd, sizeof(rnd));
	for (int i = 0; i < 12; i++)
		snprintf(rhex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", s->blob_dir, rhex);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_error("store: create %s: %s", tmp, strerror(errno));
		return STORE_EIO;
	}
	int ret = hash_body(body, fd, blob, size_r);
	if (ret == 0 && fsync(fd) < 0) {
		log_error("store: fsync %s: %s", tmp, strerror(errno));
		ret = STORE_EIO;
	}
	struct stat st;
	if (ret == 0 && written_r != NULL && fstat(fd, &st) == 0) {
		written_r->dev = st.st_dev;
		written_r->ino = st.st_ino;
		written_r->mtime = st.st_mtim;
	} else if (written_r != NULL) {
		memset(written_r, 0, sizeof(*written_r));
	}
	close(fd);
	if (ret != 0) {
		unlink(tmp);
		return ret;
	}
	store_blob_path(s, blob, path, sizeof(path));
	char hex[2 * STORE_BLOB_ID_SIZE + 1];
	blob_hex(blob, hex);
	snprintf(dir, sizeof(dir), "%s/%.2s", s->blob_dir, hex);
	if (rename(tmp, path) < 0 || fsync_dir(dir) < 0) {
		log_error("store: rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		return STORE_EIO;
	}
	return 0;
}

/* Makes an existing file durable again (it may be an orphan whose folder entry
 * was never fsynced). */
static int blob_sync_existing(struct store *s, const char *path,
			      const unsigned char blob[STORE_BLOB_ID_SIZE])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	close(fd);
	char hex[2 * STORE_BLOB_ID_SIZE + 1], dir[4096];
	blob_hex(blob, hex);
	snprintf(dir, sizeof(dir), "%s/%.2s", s->blob_dir, hex);
	return ret < 0 ? -1 : fsync_dir(dir);
}

static void dbt_set(DBT *d, const void *data, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)data;
	d->size = (u_int32_t)len;
}

static int blob_get(struct store *s, DB_TXN *txn, const unsigned char *blob,
		    struct blob_rec *r, uint32_t flags)
{
	DBT key, data;
	unsigned char buf[16];
	dbt_set(&key, blob, STORE_BLOB_ID_SIZE);
	memset(&data, 0, sizeof(data));
	data.data = buf;
	data.ulen = sizeof(buf);
	data.flags = DB_DBT_USERMEM;
	int ret = s->db[DB_BLOBS]->get(s->db[DB_BLOBS], txn, &key, &data, flags);
	if (ret != 0)
		return ret;
	return blob_rec_decode(buf, data.size, r) < 0 ? STORE_EIO : 0;
}

static int blob_put(struct store *s, DB_TXN *txn, const unsigned char *blob,
		    const struct blob_rec *r)
{
	DBT key, data;
	unsigned char buf[16];
	blob_rec_encode(r, buf);
	dbt_set(&key, blob, STORE_BLOB_ID_SIZE);
	dbt_set(&data, buf, sizeof(buf));
	return s->db[DB_BLOBS]->put(s->db[DB_BLOBS], txn, &key, &data, 0);
}

static bool same_file(const struct stat *st, const struct blob_file *f)
{
	return f != NULL && f->ino != 0 && st->st_dev == f->dev && st->st_ino == f->ino &&
		st->st_mtim.tv_sec == f->mtime.tv_sec && st->st_mtim.tv_nsec == f->mtime.tv_nsec;
}

int blob_ref_txn(struct store *s, DB_TXN *txn, const unsigned char blob[STORE_BLOB_ID_SIZE],
		 uint64_t size, uint64_t refs, const struct buf *mime,
		 const struct blob_file *written, bool *need_write_r)
{
	struct blob_rec r;
	*need_write_r = false;
	int ret = blob_get(s, txn, blob, &r, DB_RMW);
	if (ret == 0) {
		r.refs += refs;
		return blob_put(s, txn, blob, &r);
	}
	if (ret != DB_NOTFOUND)
		return ret;
	/* a new record: the file must exist and be durable, checked under the lock */
	char path[4096];
	store_blob_path(s, blob, path, sizeof(path));
	struct stat st;
	if (stat(path, &st) != 0) {
		*need_write_r = true;
		return STORE_ENOTFOUND;
	}
	/* still the file this delivery made durable, or someone else's (an orphan,
	 * or one whose writer has not fsynced its folder yet): sync that one */
	if (!same_file(&st, written) && blob_sync_existing(s, path, blob) < 0)
		return STORE_EIO;
	r.refs = refs;
	r.size = size;
	if ((ret = blob_put(s, txn, blob, &r)) != 0)
		return ret;
	if (mime != NULL && buf_len(mime) > 0) {
		DBT key, data;
		dbt_set(&key, blob, STORE_BLOB_ID_SIZE);
		dbt_set(&data, buf_data(mime), buf_len(mime));
		ret = s->db[DB_MIME]->put(s->db[DB_MIME], txn, &key, &data, 0);
	}
	return ret;
}

int blob_unref_txn(struct store *s, DB_TXN *txn, const unsigned char blob[STORE_BLOB_ID_SIZE],
		   uint64_t refs, bool *last_r)
{
	struct blob_rec r;
	*last_r = false;
	int ret = blob_get(s, txn, blob, &r, DB_RMW);
	if (ret == DB_NOTFOUND) {
		char hex[2 * STORE_BLOB_ID_SIZE + 1];
		blob_hex(blob, hex);
		log_error("store: body %s is referenced but has no record", hex);
		return 0;
	}
	if (ret != 0)
		return ret;
	if (r.refs > refs) {
		r.refs -= refs;
		return blob_put(s, txn, blob, &r);
	}
	DBT key;
	dbt_set(&key, blob, STORE_BLOB_ID_SIZE);
	if ((ret = s->db[DB_BLOBS]->del(s->db[DB_BLOBS], txn, &key, 0)) != 0)
		return ret;
	ret = s->db[DB_MIME]->del(s->db[DB_MIME], txn, &key, 0);
	*last_r = true;
	return ret == DB_NOTFOUND ? 0 : ret;
}

struct remove_arg {
	const unsigned char *blob;
};

static int remove_fn(struct store *s, DB_TXN *txn, void *varg)
{
	struct remove_arg *a = varg;
	struct blob_rec r;
	int ret = blob_get(s, txn, a->blob, &r, DB_RMW);
	if (ret == 0)
		return 0;             /* referenced again meanwhile: keep it */
	if (ret != DB_NOTFOUND)
		return ret;
	char path[4096];
	store_blob_path(s, a->blob, path, sizeof(path));
	if (blob_removal_paused(s))
		return 0;             /* a backup is copying: the orphan goes later */
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("store: unlink %s: %s", path, strerror(errno));
	return 0;
}

void blob_remove_if_unreferenced(struct store *s, const unsigned char blob[STORE_BLOB_ID_SIZE])
{
	struct remove_arg a = { blob };
	store_txn(s, remove_fn, &a);
}

/* ---- reading ---- */

int store_blob_read(struct store *store, const unsigned char blob[STORE_BLOB_ID_SIZE],
		    uint64_t offset, void *buf, size_t len, size_t *read_r)
{
	char path[4096];
	store_blob_path(store, blob, path, sizeof(path));
	*read_r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("store: open %s: %s", path, strerror(errno));
		return errno == ENOENT ? STORE_ENOTFOUND : STORE_EIO;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return STORE_EIO;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	*read_r = done;
	return STORE_OK;
}

int store_blob_mime(struct store *store, const unsigned char blob[STORE_BLOB_ID_SIZE],
		    void **data_r, size_t *len_r)
{
	DB_TXN *txn;
	int ret = store_read_txn(store, &txn);
	if (ret != 0)
		return ret;
	DBT key, data;
	dbt_set(&key, blob, STORE_BLOB_ID_SIZE);
	memset(&data, 0, sizeof(data));
	data.flags = DB_DBT_MALLOC;
	ret = store->db[DB_MIME]->get(store->db[DB_MIME], txn, &key, &data, 0);
	txn->commit(txn, 0);
	if (ret != 0)
		return store_db_error(store, ret, "mime cache");
	*data_r = data.data;
	*len_r = data.size;
	return STORE_OK;
}

/* ---- MIME structure, parsed once at delivery ---- */

struct mime_feed {
	struct mime_parser *parser;
};

static int mime_chunk(const char *data, size_t len, void *arg)
{
	struct mime_feed *f = arg;
	mime_parser_feed(f->parser, data, len);
	return 0;
}

int blob_parse_mime(const struct store_body *body, unsigned max_depth, struct buf *out)
{
	struct pool *pool = pool_new(16384);
	struct mime_limits limits = { .max_depth = max_depth };
	struct mime_feed f = { mime_parser_new_limits(pool, &limits) };
	int ret = body_each(body, mime_chunk, &f);
	struct mime_part *tree = NULL;
	if (ret == 0) {
		tree = mime_parser_finish(f.parser);
		if (tree == NULL || mime_serialize(tree, out) < 0)
			ret = STORE_EIO;
	}
	pool_free(&pool);
	return ret;
}
