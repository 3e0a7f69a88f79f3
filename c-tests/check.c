/*
 * check.c: what the C test programs share (see check.h): counting and
 * reporting, time, the watchdog, the endpoint and the keys of a run.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* ------------------------------------------------------------------ */
/* Counting and reporting                                             */
/* ------------------------------------------------------------------ */

/* Checks may run on several threads (threads and lock sections). */
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
static int passed, failed, skipped;

int proto_v2;
const char *proto_name = "v3";

static void print_summary_locked(void)
{
    if (skipped)
        printf("(%d case%s skipped on %s, each listed above as SKIP)\n",
               skipped, skipped == 1 ? "" : "s", proto_name);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
}

int finish(void)
{
    int status;
    pthread_mutex_lock(&report_mu);
    print_summary_locked();
    status = failed ? 1 : 0;
    pthread_mutex_unlock(&report_mu);
    return status;
}

void skip(const char *what, const char *why)
{
    pthread_mutex_lock(&report_mu);
    skipped++;
    printf("SKIP %s: %s\n", what, why);
    fflush(stdout);
    pthread_mutex_unlock(&report_mu);
}

void record(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&report_mu);
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s:%d: ", file, line);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
    }
    pthread_mutex_unlock(&report_mu);
}

/*
 * Render a possibly-NULL, possibly-binary string for a failure message:
 * escaped, cut after 60 bytes, with its length.  Rotating buffers so that
 * one message can show two strings.
 */
const char *show(const char *s)
{
    static __thread char bufs[4][400];
    static __thread int next;
    char *b = bufs[next++ & 3];
    size_t len, i, o = 0;
    if (!s)
        return "(null)";
    len = strlen(s);
    b[o++] = '"';
    for (i = 0; i < len && i < 60; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '"')
            o += (size_t)sprintf(b + o, "\\%c", c);
        else if (c == '\n')
            o += (size_t)sprintf(b + o, "\\n");
        else if (c < 32 || c > 126)
            o += (size_t)sprintf(b + o, "\\x%02x", c);
        else
            b[o++] = (char)c;
    }
    o += (size_t)sprintf(b + o, "\"%s (%zu bytes)", len > 60 ? "..." : "", len);
    b[o] = '\0';
    return b;
}

const char *rc_name(etcd_result r)
{
    switch (r) {
    case ETCD_OK: return "ETCD_OK";
    case ETCD_PROTOCOL_ERROR: return "ETCD_PROTOCOL_ERROR";
    case ETCD_WTF: return "ETCD_WTF";
    case ETCD_TIMEOUT: return "ETCD_TIMEOUT";
    }
    return "(not an etcd_result)";
}

const char *errmsg_or_null(void)
{
    const char *m = etcd_errmsg();
    return m ? m : "(null)";
}

int errmsg_nonempty(void)
{
    const char *m = etcd_errmsg();
    return m && *m;
}

/* ------------------------------------------------------------------ */
/* Time and a watchdog                                                */
/* ------------------------------------------------------------------ */

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * A broken watch or lock blocks forever by design of the API.  Rather than
 * hang CI, each section runs under a deadline; when it passes, the
 * watchdog reports the hang as a failure, prints the summary line and ends
 * the process.
 */
static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static double wd_deadline;          /* 0: disarmed */
static const char *wd_what = "";

void watchdog_arm(double seconds, const char *what)
{
    pthread_mutex_lock(&wd_mu);
    wd_deadline = now() + seconds;
    wd_what = what;
    pthread_mutex_unlock(&wd_mu);
}

/*
 * Helper processes (etcdctl, forked children) still running, so that a
 * watchdog time-out or a SIGTERM/SIGINT never leaves one behind.
 */
#define MAX_HELPERS 8
static volatile sig_atomic_t helper_pids[MAX_HELPERS];

void helper_register(pid_t pid)
{
    int i;
    for (i = 0; i < MAX_HELPERS; i++)
        if (helper_pids[i] == 0) {
            helper_pids[i] = (sig_atomic_t)pid;
            return;
        }
}

void helper_unregister(pid_t pid)
{
    int i;
    for (i = 0; i < MAX_HELPERS; i++)
        if (helper_pids[i] == (sig_atomic_t)pid)
            helper_pids[i] = 0;
}

void helper_forget_all(void)
{
    int i;
    for (i = 0; i < MAX_HELPERS; i++)
        helper_pids[i] = 0;
}

/* Async-signal-safe. */
static void kill_helpers(void)
{
    int i;
    for (i = 0; i < MAX_HELPERS; i++)
        if (helper_pids[i] > 0)
            kill((pid_t)helper_pids[i], SIGKILL);
}

static void on_term_signal(int sig)
{
    kill_helpers();
    _exit(128 + sig);
}

static void *watchdog_main(void *unused)
{
    (void)unused;
    for (;;) {
        sleep_ms(100);
        pthread_mutex_lock(&wd_mu);
        if (wd_deadline > 0 && now() > wd_deadline) {
            pthread_mutex_lock(&report_mu);
            failed++;
            printf("FAIL %s: timed out (a call blocked); giving up\n", wd_what);
            kill_helpers();
            print_summary_locked();
            _exit(1);
        }
        pthread_mutex_unlock(&wd_mu);
    }
    return NULL;
}

int watchdog_start(void)
{
    struct sigaction sa;
    pthread_t wd;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    return pthread_create(&wd, NULL, watchdog_main, NULL) == 0 ? 0 : -1;
}

void section(const char *name, double limit_seconds)
{
    printf("== %s\n", name);
    fflush(stdout);
    watchdog_arm(limit_seconds, name);
}

/* ------------------------------------------------------------------ */
/* Endpoint and keys                                                  */
/* ------------------------------------------------------------------ */

char endpoint[256];
char ep_url[300];
char ep_host[256];
unsigned short ep_port;
char prefix[64];

void set_prefix(const char *name)
{
    snprintf(prefix, sizeof prefix, "/%s-%ld-%ld", name,
             (long)getpid(), (long)time(NULL));
}

char *fmt_rot(const char *fmt, ...)
{
    static char bufs[16][640];
    static int next;
    char *b = bufs[next++ & 15];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

char *K(const char *suffix)
{
    return fmt_rot("%s%s", prefix, suffix);
}
