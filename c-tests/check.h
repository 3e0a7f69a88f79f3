/*
 * check.h: what every C test program of libetcdapi shares (the harness,
 * whose files are in c-tests/harness/, and secure): counting and
 * reporting checks, the closing "N passed, N failed" line, time, a
 * watchdog for calls that block, the test etcd's endpoint and a per-run
 * key prefix.  Defined in check.c.
 */
#ifndef ETCDAPI_C_TESTS_CHECK_H
#define ETCDAPI_C_TESTS_CHECK_H

#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include "etcd-api.h"

/* ------------------------------------------------------------------ */
/* Counting and reporting                                             */
/* ------------------------------------------------------------------ */

/* The protocol under test (the harness reads ETCDAPI_PROTOCOL once in
 * main); the closing line names it when cases were skipped. */
extern int proto_v2;
extern const char *proto_name;

/* A case that cannot hold on this protocol: said, counted apart. */
void skip(const char *what, const char *why);
/* One check: a pass, or a failure printed as "FAIL file:line: ..." */
void record(int ok, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The closing line ("N passed, N failed", after a line on skips if any);
 * returns the exit status, 1 if anything failed. */
int finish(void);

/* A possibly-NULL, possibly-binary string for a message (rotating buffers). */
const char *show(const char *s);
const char *rc_name(etcd_result r);
const char *errmsg_or_null(void);
int errmsg_nonempty(void);

/* cond first: the errmsg shown on a failure is the one cond left. */
#define CHECK(cond, what) do {                                              \
        int ok_ = !!(cond);                                                 \
        record(ok_, __FILE__, __LINE__, "%s (last errmsg: %s)", (what),     \
               ok_ ? "" : errmsg_or_null());                                \
    } while (0)

/* a and b are evaluated once; a may be NULL (a failure unless b is too). */
#define CHECK_STR_EQ(a, b, what) do {                                       \
        const char *a_ = (a), *b_ = (b);                                    \
        int ok_ = (a_ && b_) ? strcmp(a_, b_) == 0 : a_ == b_;              \
        record(ok_, __FILE__, __LINE__, "%s: got %s, want %s (last errmsg: %s)", \
               (what), show(a_), show(b_), ok_ ? "" : errmsg_or_null());    \
    } while (0)

#define CHECK_INT_EQ(a, b, what) do {                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        record(a_ == b_, __FILE__, __LINE__, "%s: got %lld, want %lld",     \
               (what), a_, b_);                                             \
    } while (0)

#define CHECK_RC(a, b, what) do {                                           \
        etcd_result a_ = (a), b_ = (b);                                     \
        record(a_ == b_, __FILE__, __LINE__, "%s: got %s (%d), want %s (last errmsg: %s)", \
               (what), rc_name(a_), (int)a_, rc_name(b_),                   \
               a_ == b_ ? "" : errmsg_or_null());                           \
    } while (0)

#define CHECK_NULL(p, what) do {                                            \
        const char *p_ = (p);                                               \
        record(p_ == NULL, __FILE__, __LINE__, "%s: got %s, want NULL",     \
               (what), show(p_));                                           \
    } while (0)

#define CHECK_ERRMSG(what) \
    record(errmsg_nonempty(), __FILE__, __LINE__, "%s: etcd_errmsg() is empty or NULL", (what))

/* ------------------------------------------------------------------ */
/* Time and a watchdog                                                */
/* ------------------------------------------------------------------ */

double now(void);                   /* monotonic seconds */
void sleep_ms(long ms);

/* Start the watchdog thread, and kill the registered helpers on
 * SIGTERM/SIGINT; 0 on success.  Until it runs, deadlines are not kept. */
int watchdog_start(void);
/* A deadline: when it passes, the watchdog reports the hang as a failure,
 * prints the closing line and ends the process. */
void watchdog_arm(double seconds, const char *what);
/* "== name", and a deadline for what follows. */
void section(const char *name, double limit_seconds);

/* Helper processes still running, killed on a time-out or a signal. */
void helper_register(pid_t pid);
void helper_unregister(pid_t pid);
/* In a forked child: the parent's helpers are not its own. */
void helper_forget_all(void);

/* ------------------------------------------------------------------ */
/* Endpoint and keys                                                  */
/* ------------------------------------------------------------------ */

extern char endpoint[256];          /* the test etcd, as given */
extern char ep_url[300];            /* with its scheme (https:// over TLS) */
extern char ep_host[256];
extern unsigned short ep_port;
extern char prefix[64];             /* per run: "/<program>-<pid>-<time>" */

/* The prefix: "/<name>-<pid>-<time>". */
void set_prefix(const char *name);

/* snprintf into one of several rotating buffers (so that a call can take
 * a few results).  Main thread only. */
char *fmt_rot(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* K("/x/y") -> "<prefix>/x/y" (rotating buffers; main thread only:
 * threads build their own keys). */
char *K(const char *suffix);

#endif
