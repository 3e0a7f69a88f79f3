/*
 * harness.h: what the files of the C test harness (the .c files of
 * c-tests/harness/, one program: build/harness) share beyond check.h.
 * main.c says what the harness does and keeps the order of its sections.
 */
#ifndef ETCDAPI_C_TESTS_HARNESS_H
#define ETCDAPI_C_TESTS_HARNESS_H

#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>

#include "../check.h"

/* ------------------------------------------------------------------ */
/* Sessions (main.c)                                                  */
/* ------------------------------------------------------------------ */

/* etcd_open_str on a copy of s: a literal is never handed over as writable. */
etcd_session open_str(const char *s);
/* 1..maxlen lowercase hex digits. */
int is_lower_hex(const char *s, size_t maxlen);

/* get and compare, freeing the result. */
#define CHECK_GET(sess, key, want, what) do {                               \
        char *got_ = etcd_get((sess), (key));                               \
        CHECK_STR_EQ(got_, (want), (what));                                 \
        free(got_);                                                         \
    } while (0)

#define CHECK_GET_NULL(sess, key, what) do {                                \
        char *got_ = etcd_get((sess), (key));                               \
        CHECK_NULL(got_, (what));                                           \
        free(got_);                                                         \
    } while (0)

/* ------------------------------------------------------------------ */
/* Witnesses and helper processes (procs.c)                           */
/* ------------------------------------------------------------------ */

/* A shell command's stdout (malloc'd; *len without the NUL), or NULL if
 * it could not run or exited non-zero. */
char *run_capture(const char *cmd, size_t *len);
/* etcdctl against the test etcd: its v3 API, and its v2 API. */
void etcdctl_cmd(char *out, size_t n, const char *args);
void etcdctl2_cmd(char *out, size_t n, const char *args);
/* GET path over plain HTTP/1.0, without the library: the whole answer. */
char *http_get(const char *path);
/* The v2 store's current index, 0 if unknown. */
long long v2_store_index(void);
/* Non-empty lines in s (-1 for NULL). */
int count_lines(const char *s);

/*
 * A helper process whose stdout comes back to us through a pipe: either a
 * shell command (etcdctl) or a forked copy of this program running a C
 * function (a second process using the library).  We keep its PID, so it
 * can always be killed and reaped; nothing is left behind.
 */
struct helper {
    pid_t pid;                  /* 0: not running (reaped) */
    int fd;                     /* read end of its stdout, -1 when closed */
    char out[4096];
    size_t n;
    int eof;
};

int helper_fork(struct helper *h, void (*fn)(int wfd, void *arg), void *arg);
int helper_exec(struct helper *h, const char *cmd);
int helper_wait_for(struct helper *h, const char *needle, long ms, double *seen_at);
int helper_finish(struct helper *h, long ms);
int exited_zero(int status);
void write_str(int fd, const char *s);

/* ------------------------------------------------------------------ */
/* Shared by the sections                                             */
/* ------------------------------------------------------------------ */

/* kv.c: set a long value of n bytes, read it back whole, check its length. */
void check_long_value(etcd_session s, char *key, char *value, size_t n,
                      const char *set_what, const char *same_what,
                      const char *len_what);
/* watch.c: an index from which a watch replays this run's later changes. */
int watch_base(void);
/* lock.c: `held` through hs, then `other` through os meanwhile. */
void check_locks_independent(etcd_session hs, char *held,
                             etcd_session os, char *other, const char *what);

/* ------------------------------------------------------------------ */
/* Sections, in main's order                                          */
/* ------------------------------------------------------------------ */

/* kv.c */
void test_open(void);
void test_set_get(etcd_session s);
void test_listing(etcd_session s);
void test_cas(etcd_session s);
void test_ttl(etcd_session s);
void test_delete(etcd_session s);
void test_leader(etcd_session s);
void test_null_args(etcd_session s);
void test_dead_servers(void);
/* interop.c */
void test_interop(etcd_session s);
/* kv.c */
void test_threads(etcd_session s);
/* v2.c */
void test_big_answers(etcd_session s);
void test_nested_values(etcd_session s);
void test_special_chars(etcd_session s);
/* watch.c */
void test_watch(etcd_session s);
void test_watch_live_1000(etcd_session s);
void test_watch_more(etcd_session s);
/* lock.c */
void test_lock(etcd_session s);
void test_lock_more(etcd_session s);
/* v2.c */
void test_protocols_apart(etcd_session s);
void test_extended(etcd_session s);
/* fork.c */
void test_connections_shared(etcd_session s);
void test_fork(void);
/* election.c */
void test_elections(etcd_session s);

void test_txn(etcd_session s);

#endif
