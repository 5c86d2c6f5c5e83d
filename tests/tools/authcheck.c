/* authcheck — runs one password check through common/auth.c, for the integration
 * tests (PAM under pam_wrapper) and for an admin debugging a PAM stack.
 *
 *   authcheck pam SERVICE USER [RHOST]   password on stdin (one line)
 *   authcheck hash HASH                  password on stdin (one line)
 *
 * The check runs twice: through the blocking primitive and through the async auth
 * pool on a libuv loop. Prints OK, FAIL or TEMPFAIL and exits 0, 1 or 2; exits 3
 * if the two paths disagree and 64 on a usage error.
 */
#include "common/auth.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest password line read from stdin. */
#define AUTHCHECK_PASSWORD_MAX 1024

static const char *result_name(enum auth_result result)
{
	switch (result) {
	case AUTH_OK: return "OK";
	case AUTH_FAIL: return "FAIL";
	default: return "TEMPFAIL";
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: authcheck pam SERVICE USER [RHOST] < password\n"
			"       authcheck hash HASH < password\n");
	return 64;
}

static void on_result(enum auth_result result, void *ctx)
{
	*(enum auth_result *)ctx = result;
}

/* The async path: one pool, one check, the loop run to the end. */
static int run_async(const struct auth_check *check, enum auth_result *result_r)
{
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0)
		return -1;
	struct auth_pool_settings settings = {
		.threads = 1, .queue_max = 4, .cache_ttl_s = 0, .cache_size = 0,
		.failure_delay_ms = 0, .failure_delay_max_ms = 0,
	};
	struct auth_pool *pool = auth_pool_new(&loop, &settings);
	if (pool == NULL) {
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		return -1;
	}
	*result_r = (enum auth_result)-1;
	auth_verify(pool, check, on_result, result_r);
	uv_run(&loop, UV_RUN_DEFAULT);
	auth_pool_free(&pool);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return (int)*result_r < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct auth_check check = { .login = "" };
	if (argc >= 3 && strcmp(argv[1], "hash") == 0 && argc == 3) {
		check.backend = AUTH_BACKEND_HASH;
		check.hash = argv[2];
		check.login = "authcheck";
	} else if (argc >= 4 && argc <= 5 && strcmp(argv[1], "pam") == 0) {
		check.backend = AUTH_BACKEND_PAM;
		check.pam_service = argv[2];
		check.login = argv[3];
		check.pam_user = argv[3];
		check.client_ip = argc == 5 ? argv[4] : NULL;
	} else {
		return usage();
	}
	log_init("warren/authcheck", LOG_TARGET_STDERR, LOG_LEVEL_INFO);

	char password[AUTHCHECK_PASSWORD_MAX + 2];
	if (fgets(password, sizeof(password), stdin) == NULL)
		password[0] = '\0';
	password[strcspn(password, "\r\n")] = '\0';
	check.password = password;

	enum auth_result sync;
	if (check.backend == AUTH_BACKEND_PAM) {
		int ret = auth_pam_verify(check.pam_service, check.pam_user, password,
					  check.client_ip);
		sync = ret > 0 ? AUTH_OK : ret == 0 ? AUTH_FAIL : AUTH_TEMPFAIL;
	} else {
		sync = auth_hash_verify(password, check.hash) == 1 ? AUTH_OK : AUTH_FAIL;
	}
	enum auth_result async;
	int ret = run_async(&check, &async);
	explicit_bzero(password, sizeof(password));
	if (ret < 0) {
		fprintf(stderr, "authcheck: the auth pool did not answer\n");
		printf("TEMPFAIL\n");
		return 3;
	}
	if (sync != async) {
		printf("MISMATCH blocking=%s async=%s\n", result_name(sync), result_name(async));
		return 3;
	}
	printf("%s\n", result_name(async));
	return async == AUTH_OK ? 0 : async == AUTH_FAIL ? 1 : 2;
}
