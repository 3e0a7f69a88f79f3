/*
 * harness: the C test harness for libetcdapi, through its public C API only.
 *
 * Run against a real, throw-away etcd whose endpoint (host:port) is in
 * $ETCDAPI_TEST_ENDPOINT, normally via
 *
 *     c-tests/etcd-local run -- build/harness
 *
 * Every check counts a pass or a failure; a failure prints file:line, what
 * was checked and the actual value.  The last line is always
 * "N passed, N failed"; the exit status is 1 if anything failed.
 *
 * Keys live under a per-run prefix (/harness-<pid>-<time>) so that reruns
 * against the same etcd do not see each other's keys.  etcdctl (on PATH,
 * as etcd-local provides) is used as the independent witness for interop,
 * the leader ID and lock keys.  Some lock sections run helper processes
 * (etcdctl lock, and forked children with their own sessions); they are
 * always reaped, or killed on a time-out or SIGTERM/SIGINT.
 *
 * The protocol under test is the library's: ETCDAPI_PROTOCOL=v2 or v3
 * (default v3), read here at start and printed.  The etcd must serve both
 * APIs (etcd-local starts it with --enable-v2=true).  A case that cannot
 * hold on the protocol under test prints "SKIP <case>: <reason>" and is
 * counted as neither passed nor failed; where v2 has its own form of a
 * case (non-UTF-8 refused, etcdctl's v2 commands as the witness, history
 * cleared instead of compaction, decimal lock indexes), that is checked
 * instead.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd-api.h"

/* ------------------------------------------------------------------ */
/* Counting and reporting                                             */
/* ------------------------------------------------------------------ */

/* Checks may run on several threads (threads and lock sections). */
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
static int passed, failed, skipped;

/* The protocol under test (ETCDAPI_PROTOCOL, read once in main). */
static int proto_v2;
static const char *proto_name = "v3";

static void print_summary_locked(void)
{
    if (skipped)
        printf("(%d case%s skipped on %s, each listed above as SKIP)\n",
               skipped, skipped == 1 ? "" : "s", proto_name);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
}

/* A case that cannot hold on this protocol: said, counted apart. */
static void skip(const char *what, const char *why)
{
    pthread_mutex_lock(&report_mu);
    skipped++;
    printf("SKIP %s: %s\n", what, why);
    fflush(stdout);
    pthread_mutex_unlock(&report_mu);
}

static void record(int ok, const char *file, int line, const char *fmt, ...)
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
static const char *show(const char *s)
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

static const char *rc_name(etcd_result r)
{
    switch (r) {
    case ETCD_OK: return "ETCD_OK";
    case ETCD_PROTOCOL_ERROR: return "ETCD_PROTOCOL_ERROR";
    case ETCD_WTF: return "ETCD_WTF";
    }
    return "(not an etcd_result)";
}

static const char *errmsg_or_null(void)
{
    const char *m = etcd_errmsg();
    return m ? m : "(null)";
}

static int errmsg_nonempty(void)
{
    const char *m = etcd_errmsg();
    return m && *m;
}

#define CHECK(cond, what) \
    record(!!(cond), __FILE__, __LINE__, "%s (last errmsg: %s)", (what), errmsg_or_null())

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

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
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

static void watchdog_arm(double seconds, const char *what)
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

static void helper_register(pid_t pid)
{
    int i;
    for (i = 0; i < MAX_HELPERS; i++)
        if (helper_pids[i] == 0) {
            helper_pids[i] = (sig_atomic_t)pid;
            return;
        }
}

static void helper_unregister(pid_t pid)
{
    int i;
    for (i = 0; i < MAX_HELPERS; i++)
        if (helper_pids[i] == (sig_atomic_t)pid)
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

static void section(const char *name, double limit_seconds)
{
    printf("== %s\n", name);
    fflush(stdout);
    watchdog_arm(limit_seconds, name);
}

/* ------------------------------------------------------------------ */
/* Keys, endpoint, helpers                                            */
/* ------------------------------------------------------------------ */

static char endpoint[256];          /* host:port of the test etcd */
static char ep_url[300];            /* with its scheme (https:// over TLS) */
static char ep_host[256];
static unsigned short ep_port;
static char prefix[64];             /* "/harness-<pid>-<time>" */

/*
 * K("/x/y") -> "/harness-.../x/y" in one of several rotating buffers, so
 * that a call can take a few keys.  Main thread only (threads build their
 * own keys).
 */
static char *K(const char *suffix)
{
    static char bufs[16][512];
    static int next;
    char *b = bufs[next++ & 15];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, suffix);
    return b;
}

/*
 * The API takes char *, and the library must not write through it; pass
 * copies so that string literals are never handed over as writable.
 */
static etcd_session open_str(const char *s)
{
    char *copy;
    etcd_session sess;
    if (!s)
        return etcd_open_str(NULL);
    copy = strdup(s);
    if (!copy)
        abort();
    sess = etcd_open_str(copy);
    free(copy);
    return sess;
}

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

static int is_lower_hex(const char *s, size_t maxlen)
{
    size_t n = 0;
    if (!s || !*s)
        return 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n <= maxlen;
}

/*
 * Run a shell command and return everything it printed on stdout
 * (malloc'd, NUL-terminated; *len excludes the NUL), or NULL if it could
 * not run or exited non-zero.
 */
static char *run_capture(const char *cmd, size_t *len)
{
    FILE *p = popen(cmd, "r");
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    int status;
    if (!p)
        return NULL;
    for (;;) {
        if (cap - n < 4096) {
            char *nb;
            cap = cap ? cap * 2 : 8192;
            nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, p);
        if (got == 0)
            break;
        n += got;
    }
    status = pclose(p);
    if (status != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/*
 * etcdctl against the test etcd.  --endpoints is given explicitly (the
 * brief's contract), so ETCDCTL_ENDPOINTS must be unset: etcdctl 3.4
 * refuses to start when a flag and its environment variable are both set.
 */
static void etcdctl_cmd(char *out, size_t n, const char *args)
{
    snprintf(out, n,
             "env -u ETCDCTL_ENDPOINTS ETCDCTL_API=3 etcdctl "
             "--endpoints=%s %s", ep_url, args);
}

/* Two ports nothing listens on: bind both (so they differ), then close. */
static int free_ports(unsigned short *a, unsigned short *b)
{
    int fds[2], i;
    unsigned short ports[2];
    for (i = 0; i < 2; i++) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0
                || getsockname(fds[i], (struct sockaddr *)&sa, &sl) != 0)
            return -1;
        ports[i] = ntohs(sa.sin_port);
    }
    close(fds[0]);
    close(fds[1]);
    *a = ports[0];
    *b = ports[1];
    return 0;
}

/* ------------------------------------------------------------------ */
/* Protocol-specific witnesses (v2 / v3)                              */
/* ------------------------------------------------------------------ */

/*
 * etcdctl speaking the v2 API (etcdctl 3.4 still has it): the witness for
 * what a v2 session stored.  Same rule for ETCDCTL_ENDPOINTS as above.
 */
static void etcdctl2_cmd(char *out, size_t n, const char *args)
{
    /* Over https (make test-secure), v2 etcdctl takes its files as flags
     * of its own: --ca-file, --cert-file, --key-file. */
    char tls[1536] = "";
    const char *ca = getenv("ETCDAPI_CACERT"), *cert = getenv("ETCDAPI_CERT"),
               *key = getenv("ETCDAPI_KEY");
    if (strncmp(ep_url, "https://", 8) == 0 && ca && cert && key)
        snprintf(tls, sizeof tls, "--ca-file '%s' --cert-file '%s' --key-file '%s' ",
                 ca, cert, key);
    snprintf(out, n,
             "env -u ETCDCTL_ENDPOINTS ETCDCTL_API=2 etcdctl "
             "--endpoints=%s %s%s", ep_url, tls, args);
}

/*
 * GET path from the test etcd over plain HTTP/1.0 (the server closes the
 * connection after its answer), without the library: the v2 store's index
 * and /v2/stats/self.  Returns the whole answer, headers and body
 * (malloc'd), or NULL.
 */
static char *http_get(const char *path)
{
    struct addrinfo hints, *ai = NULL;
    struct timeval tv;
    char port[16], req[1024], *buf = NULL;
    size_t n = 0, cap = 0;
    int fd = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%u", ep_port);
    if (getaddrinfo(ep_host, port, &hints, &ai) != 0 || !ai)
        return NULL;
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    tv.tv_sec = 5;
    tv.tv_usec = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0
            || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto fail;
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, endpoint);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        goto fail;
    for (;;) {
        ssize_t got;
        if (cap - n < 4096) {
            char *nb;
            cap = cap ? cap * 2 : 8192;
            nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    close(fd);
    freeaddrinfo(ai);
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    free(buf);
    return NULL;
}

/* The v2 store's current index (X-Etcd-Index of a quorum read), 0 if unknown. */
static long long v2_store_index(void)
{
    char *a = http_get("/v2/keys/?quorum=true");
    const char *h;
    long long idx = 0;
    if (a && strncmp(a, "HTTP/1.", 7) == 0 && strncmp(a + 8, " 200", 4) == 0
            && (h = strstr(a, "\r\nX-Etcd-Index:")) != NULL)
        idx = strtoll(h + strlen("\r\nX-Etcd-Index:"), NULL, 10);
    free(a);
    return idx;
}

/*
 * An index from which a watch replays this run's changes made after this
 * call.  v3 keeps every revision until compacted: 1 will do, as our
 * prefix is unique to this run.  v2 remembers only its last 1000 changes
 * (an index older than that is refused), so: the store's index now, + 1.
 * 0 (a failure already counted) if it cannot be read.
 */
static int watch_base(void)
{
    long long idx;
    if (!proto_v2)
        return 1;
    idx = v2_store_index();
    record(idx > 0 && idx < INT_MAX, __FILE__, __LINE__,
           "the v2 store's index (X-Etcd-Index of GET /v2/keys/): got %lld", idx);
    return idx > 0 && idx < INT_MAX ? (int)idx + 1 : 0;
}

/* 1..20 decimal digits, no leading zero. */
static int is_decimal(const char *s)
{
    size_t n = 0;
    if (!s || !*s || *s == '0')
        return 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    return n <= 20;
}

/* A lock index as the protocol hands it out: v3 the lease ID in lowercase
 * hex, v2 the waiter key's createdIndex in decimal. */
static int lock_index_ok(const char *idx)
{
    return proto_v2 ? is_decimal(idx) : is_lower_hex(idx, 16);
}

/* The key etcd holds for the lock index idx of the lock name lname: v3
 * <name>/<lease hex>; v2 <name>/<createdIndex on 20 digits> (in-order key). */
static void lock_key(char *out, size_t n, const char *lname, const char *idx)
{
    if (proto_v2)
        snprintf(out, n, "%s/%020llu", lname, strtoull(idx, NULL, 10));
    else
        snprintf(out, n, "%s/%s", lname, idx);
}

/* ------------------------------------------------------------------ */
/* Sections                                                           */
/* ------------------------------------------------------------------ */

static void test_open(void)
{
    char buf[512];
    etcd_session s;

    section("open", 60);

    s = open_str(endpoint);
    CHECK(s != NULL, "etcd_open_str(host:port)");
    if (s) {
        CHECK_RC(etcd_set(s, K("/open/plain"), "p", NULL, 0), ETCD_OK, "set via host:port session");
        CHECK_GET(s, K("/open/plain"), "p", "get via host:port session");
        etcd_close_str(s);
    }

    snprintf(buf, sizeof buf, "%s", ep_url);
    s = open_str(buf);
    CHECK(s != NULL, "etcd_open_str(http://host:port)");
    if (s) {
        CHECK_RC(etcd_set(s, K("/open/http"), "h", NULL, 0), ETCD_OK, "set via http:// session");
        CHECK_GET(s, K("/open/http"), "h", "get via http:// session");
        etcd_close_str(s);
    }

    /* A dead server first: the request must fail over to the live one. */
    snprintf(buf, sizeof buf, "127.0.0.1:1 , %s", endpoint);
    s = open_str(buf);
    CHECK(s != NULL, "etcd_open_str(dead , live)");
    if (s) {
        CHECK_RC(etcd_set(s, K("/open/failover"), "f", NULL, 0), ETCD_OK, "set fails over past a dead server");
        CHECK_GET(s, K("/open/failover"), "f", "get fails over past a dead server");
        etcd_close_str(s);
    }

    /* Nothing usable, or a bad port: NULL, never a silent port 0. */
    {
        static const char *const bad[] = {
            "", "   ,;", "127.0.0.1:abc", "127.0.0.1:99999", "127.0.0.1:",
        };
        size_t i;
        s = etcd_open_str(NULL);
        CHECK(s == NULL, "etcd_open_str(NULL) is NULL");
        CHECK_ERRMSG("etcd_open_str(NULL)");
        if (s)
            etcd_close_str(s);
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char what[128];
            s = open_str(bad[i]);
            snprintf(what, sizeof what, "etcd_open_str(\"%s\") is NULL", bad[i]);
            CHECK(s == NULL, what);
            CHECK_ERRMSG(what);
            if (s)
                etcd_close_str(s);
        }
    }

    /* etcd_open with an array; the library copies and never writes it. */
    {
        char host[256], host_before[256];
        etcd_server list[3];
        etcd_server before[3];

        /* Zero the padding and the tail of host too, so that the memcmp()s
         * below compare only what we wrote (valgrind flagged them). */
        memset(list, 0, sizeof list);
        memset(host, 0, sizeof host);
        snprintf(host, sizeof host, "%s", ep_host);
        list[0].host = host;
        list[0].port = ep_port;
        list[1].host = NULL;
        list[1].port = 0;
        memcpy(before, list, sizeof list[0] * 2);
        memcpy(host_before, host, sizeof host);

        s = etcd_open(list);
        CHECK(s != NULL, "etcd_open(array)");
        CHECK(memcmp(before, list, sizeof list[0] * 2) == 0, "etcd_open left the array alone");
        CHECK(memcmp(host_before, host, sizeof host) == 0, "etcd_open left the host string alone");
        if (s) {
            /* Scribble on our copy: the session must not depend on it. */
            memset(host, 'x', 20);
            host[20] = '\0';
            list[0].port = 1;
            CHECK_RC(etcd_set(s, K("/open/array"), "a", NULL, 0), ETCD_OK, "set via etcd_open session (caller's array scribbled on)");
            CHECK_GET(s, K("/open/array"), "a", "get via etcd_open session");
            etcd_close(s);
        }

        /* Dead server first in the array, too. */
        snprintf(host, sizeof host, "%s", ep_host);
        list[0].host = "127.0.0.1";
        list[0].port = 1;
        list[1].host = host;
        list[1].port = ep_port;
        list[2].host = NULL;
        list[2].port = 0;
        memcpy(before, list, sizeof list);
        s = etcd_open(list);
        CHECK(s != NULL, "etcd_open(dead, live)");
        if (s) {
            CHECK_GET(s, K("/open/array"), "a", "etcd_open session fails over");
            etcd_close(s);
        }
        CHECK(memcmp(before, list, sizeof list) == 0, "etcd_open/close left the array alone");
        CHECK_STR_EQ(host, ep_host, "host string unchanged after close");

        s = etcd_open(NULL);
        CHECK(s == NULL, "etcd_open(NULL) is NULL");
        if (s)
            etcd_close(s);
        list[0].host = NULL;
        list[0].port = 0;
        s = etcd_open(list);
        CHECK(s == NULL, "etcd_open(empty array) is NULL");
        if (s)
            etcd_close(s);
    }

    etcd_close(NULL);
    etcd_close_str(NULL);
    CHECK(1, "etcd_close(NULL) and etcd_close_str(NULL) are no-ops");
}

static void test_set_get(etcd_session s)
{
    char canon[512], alt[512];
    char *v;

    section("set/get", 60);

    CHECK_RC(etcd_set(s, K("/sg/a"), "v1", NULL, 0), ETCD_OK, "set");
    CHECK_GET(s, K("/sg/a"), "v1", "get after set");
    CHECK_RC(etcd_set(s, K("/sg/a"), "v2", NULL, 0), ETCD_OK, "overwrite");
    CHECK_GET(s, K("/sg/a"), "v2", "get after overwrite");

    CHECK_RC(etcd_set(s, K("/sg/empty"), "", NULL, 0), ETCD_OK, "set empty value");
    CHECK_GET(s, K("/sg/empty"), "", "empty value reads back as \"\", not NULL");

    /* Canonical form: leading '/', no repeated or trailing slashes. */
    snprintf(canon, sizeof canon, "%s/sg/canon", prefix);
    CHECK_RC(etcd_set(s, canon + 1, "c", NULL, 0), ETCD_OK, "set without leading slash");
    CHECK_GET(s, canon, "c", "get /key");
    snprintf(alt, sizeof alt, "/%s//sg//canon/", prefix);
    CHECK_GET(s, alt, "c", "get //key/ (doubled and trailing slashes)");
    snprintf(alt, sizeof alt, "%s/sg/canon/", prefix + 1);
    CHECK_GET(s, alt, "c", "get key/ (no leading, trailing slash)");

    v = etcd_get(s, K("/sg/missing"));
    CHECK_NULL(v, "missing key");
    CHECK_ERRMSG("missing key");
    free(v);

    /* Every byte 1..255, not UTF-8: must pass through byte-exact on v3.
     * v2 carries values as JSON strings: refused with ETCD_WTF and a
     * message saying so, never stored altered. */
    {
        char all[256];
        int i;
        for (i = 1; i < 256; i++)
            all[i - 1] = (char)i;
        all[255] = '\0';
        if (!proto_v2) {
            CHECK_RC(etcd_set(s, K("/sg/bytes"), all, NULL, 0), ETCD_OK, "set bytes 1..255");
            v = etcd_get(s, K("/sg/bytes"));
            CHECK(v && strlen(v) == 255 && memcmp(v, all, 255) == 0, "bytes 1..255 round-trip byte-exact");
            if (v && !(strlen(v) == 255 && memcmp(v, all, 255) == 0))
                printf("     got %s\n", show(v));
            free(v);
        } else {
            const char *m;
            char key[300], bad_key[300];
            CHECK_RC(etcd_set(s, K("/sg/bytes"), all, NULL, 0), ETCD_WTF, "v2: set bytes 1..255 (not UTF-8) is refused");
            m = etcd_errmsg();
            CHECK(m && strstr(m, "UTF-8"), "v2: the refusal's errmsg says UTF-8");
            if (!(m && strstr(m, "UTF-8")))
                printf("     errmsg was %s\n", show(m));
            CHECK_GET_NULL(s, K("/sg/bytes"), "v2: refused non-UTF-8 value was not stored");
            /* Bytes 1..127 are UTF-8 (control characters included). */
            all[127] = '\0';
            CHECK_RC(etcd_set(s, K("/sg/ascii"), all, NULL, 0), ETCD_OK, "v2: set bytes 1..127");
            CHECK_GET(s, K("/sg/ascii"), all, "v2: bytes 1..127 round-trip byte-exact");
            /* A non-UTF-8 key, or precondition, is refused the same way. */
            snprintf(bad_key, sizeof bad_key, "%s/sg/bad\xff\xfekey", prefix);
            CHECK_RC(etcd_set(s, bad_key, "v", NULL, 0), ETCD_WTF, "v2: set with a non-UTF-8 key is refused");
            CHECK_ERRMSG("v2: set with a non-UTF-8 key");
            CHECK_RC(etcd_set(s, K("/sg/ascii"), "x", "\xc3\x28", 0), ETCD_WTF, "v2: CAS with a non-UTF-8 precondition is refused");
            CHECK_ERRMSG("v2: CAS with a non-UTF-8 precondition");
            CHECK_GET(s, K("/sg/ascii"), all, "v2: value unchanged by the refused CAS");
            /* "." and ".." segments: etcd would clean the path to another key. */
            snprintf(key, sizeof key, "%s/sg/dots/../a", prefix);
            CHECK_RC(etcd_set(s, key, "v", NULL, 0), ETCD_WTF, "v2: set of a key with a \"..\" segment is refused");
            CHECK_ERRMSG("v2: key with a \"..\" segment");
            CHECK_GET(s, K("/sg/a"), "v2", "v2: sg/a (where etcd would have cleaned the path to) unchanged");
        }
    }

    /* Large values: 1,000,000 bytes fits etcd's default 1.5 MiB request
     * limit, 1,600,000 does not and is etcd refusing (not our failure). */
    {
        size_t n = 1000000, i;
        char *big = malloc(1600001);
        if (!big)
            abort();
        for (i = 0; i < 1600000; i++)
            big[i] = (char)('a' + (i * 7 + i / 26) % 26);
        big[n] = '\0';
        CHECK_RC(etcd_set(s, K("/sg/big"), big, NULL, 0), ETCD_OK, "set 1,000,000-byte value");
        v = etcd_get(s, K("/sg/big"));
        CHECK(v && strlen(v) == n && memcmp(v, big, n) == 0, "1,000,000-byte value round-trips");
        if (v)
            CHECK_INT_EQ(strlen(v), n, "length of 1,000,000-byte value");
        free(v);

        big[n] = 'a' + (char)((n * 7 + n / 26) % 26);
        big[1600000] = '\0';
        if (!proto_v2) {
            CHECK_RC(etcd_set(s, K("/sg/huge"), big, NULL, 0), ETCD_PROTOCOL_ERROR, "set 1,600,000-byte value is refused");
            CHECK_ERRMSG("1,600,000-byte value");
            CHECK_GET_NULL(s, K("/sg/huge"), "refused huge value was not stored");
        } else {
            /* etcd's request limit is the v3 API's: v2 takes 1.6 MB. */
            CHECK_RC(etcd_set(s, K("/sg/huge"), big, NULL, 0), ETCD_OK, "v2: set 1,600,000-byte value");
            v = etcd_get(s, K("/sg/huge"));
            CHECK(v && strlen(v) == 1600000 && memcmp(v, big, 1600000) == 0, "v2: 1,600,000-byte value round-trips");
            if (v)
                CHECK_INT_EQ(strlen(v), 1600000, "v2: length of 1,600,000-byte value");
            free(v);
            CHECK_RC(etcd_delete(s, K("/sg/huge")), ETCD_OK, "v2: delete the 1,600,000-byte value");
        }
        free(big);
    }
}

static void test_listing(etcd_session s)
{
    char want[1024];

    section("directory listing", 60);

    CHECK_RC(etcd_set(s, K("/d/b"), "B", NULL, 0), ETCD_OK, "set d/b");
    CHECK_RC(etcd_set(s, K("/d/a"), "A", NULL, 0), ETCD_OK, "set d/a");
    CHECK_RC(etcd_set(s, K("/d/c/x"), "X", NULL, 0), ETCD_OK, "set d/c/x");
    CHECK_RC(etcd_set(s, K("/d/c/y"), "Y", NULL, 0), ETCD_OK, "set d/c/y");
    CHECK_RC(etcd_set(s, K("/d/_hidden"), "H", NULL, 0), ETCD_OK, "set d/_hidden");
    /* Siblings that share the prefix bytes but are not below /d/. */
    CHECK_RC(etcd_set(s, K("/d-x"), "sib1", NULL, 0), ETCD_OK, "set d-x");
    CHECK_RC(etcd_set(s, K("/dx"), "sib2", NULL, 0), ETCD_OK, "set dx");

    snprintf(want, sizeof want, "%s/d/a\n%s/d/b\n%s/d/c", prefix, prefix, prefix);
    CHECK_GET(s, K("/d"), want, "listing of d: sorted, _hidden left out, c once, siblings absent");
    CHECK_GET(s, K("/d/"), want, "listing of d/ (trailing slash)");
    snprintf(want, sizeof want, "%s/d/c/x\n%s/d/c/y", prefix, prefix);
    CHECK_GET(s, K("/d/c"), want, "listing of d/c");
    CHECK_GET(s, K("/d/_hidden"), "H", "_hidden readable by full path");
}

static void test_cas(etcd_session s)
{
    section("compare-and-swap", 60);

    CHECK_RC(etcd_set(s, K("/cas/k"), "one", NULL, 0), ETCD_OK, "set initial");
    CHECK_RC(etcd_set(s, K("/cas/k"), "two", "one", 0), ETCD_OK, "CAS with matching precond");
    CHECK_GET(s, K("/cas/k"), "two", "value after CAS");
    CHECK_RC(etcd_set(s, K("/cas/k"), "three", "one", 0), ETCD_PROTOCOL_ERROR, "CAS with wrong precond");
    CHECK_ERRMSG("CAS with wrong precond");
    CHECK_GET(s, K("/cas/k"), "two", "value unchanged after failed CAS");
    CHECK_RC(etcd_set(s, K("/cas/missing"), "x", "anything", 0), ETCD_PROTOCOL_ERROR, "CAS on a missing key");
    CHECK_GET_NULL(s, K("/cas/missing"), "missing key still missing after failed CAS");
    CHECK_RC(etcd_set(s, K("/cas/k"), "", "two", 0), ETCD_OK, "CAS to empty value");
    CHECK_RC(etcd_set(s, K("/cas/k"), "four", "", 0), ETCD_OK, "CAS with empty precond on an empty value");
    CHECK_GET(s, K("/cas/k"), "four", "value after CAS from empty");
    /* An empty precond is not "missing": on a missing key it still fails. */
    CHECK_RC(etcd_set(s, K("/cas/missing"), "x", "", 0), ETCD_PROTOCOL_ERROR, "CAS with empty precond on a missing key");
    CHECK_GET_NULL(s, K("/cas/missing"), "missing key still missing after failed empty-precond CAS");
}

static void test_ttl(etcd_session s)
{
    section("ttl", 60);

    CHECK_RC(etcd_set(s, K("/ttl/k"), "t", NULL, 2), ETCD_OK, "set with ttl 2");
    CHECK_GET(s, K("/ttl/k"), "t", "ttl key readable at once");
    /* etcd revokes expired leases in a background loop; 4 s is ample. */
    sleep_ms(4000);
    CHECK_GET_NULL(s, K("/ttl/k"), "ttl key gone after ~4 s");
}

static void test_delete(etcd_session s)
{
    char want[1024];

    section("delete", 60);

    CHECK_RC(etcd_set(s, K("/del/k"), "x", NULL, 0), ETCD_OK, "set");
    CHECK_RC(etcd_delete(s, K("/del/k")), ETCD_OK, "delete existing");
    CHECK_GET_NULL(s, K("/del/k"), "get after delete");
    CHECK_RC(etcd_delete(s, K("/del/k")), ETCD_PROTOCOL_ERROR, "delete again");
    CHECK_ERRMSG("delete of a missing key");

    /* /d has children (listing section) but no value of its own. */
    CHECK_RC(etcd_delete(s, K("/d")), ETCD_PROTOCOL_ERROR, "delete of a directory-only key");
    snprintf(want, sizeof want, "%s/d/a\n%s/d/b\n%s/d/c", prefix, prefix, prefix);
    CHECK_GET(s, K("/d"), want, "children intact after refused directory delete");
    CHECK_GET(s, K("/d/c/x"), "X", "grandchild intact");
}

static void test_leader(etcd_session s)
{
    char cmd[1024];
    char *leader, *out, *p;
    unsigned long long ours, theirs;

    section("leader", 60);

    leader = etcd_leader(s);
    CHECK(leader != NULL, "etcd_leader non-NULL");
    if (!leader)
        return;
    CHECK(is_lower_hex(leader, 16), "leader is 1..16 lowercase hex digits");
    if (!is_lower_hex(leader, 16))
        printf("     leader was %s\n", show(leader));
    ours = strtoull(leader, NULL, 16);

    etcdctl_cmd(cmd, sizeof cmd, "endpoint status -w json 2>/dev/null");
    out = run_capture(cmd, NULL);
    CHECK(out != NULL, "etcdctl endpoint status -w json ran");
    if (out) {
        /* JSON numbers here are exact uint64: parse the digits ourselves. */
        p = strstr(out, "\"leader\":");
        CHECK(p != NULL, "etcdctl status has a \"leader\" field");
        if (p) {
            char *end;
            p += strlen("\"leader\":");
            errno = 0;
            theirs = strtoull(p, &end, 10);
            CHECK(end != p && errno == 0, "etcdctl leader field is a number");
            if (end != p && errno == 0) {
                record(ours == theirs, __FILE__, __LINE__,
                       "leader %s (%llu) equals etcdctl's %llu (%llx)",
                       leader, ours, theirs, theirs);
            }
        }
        free(out);
    }
    if (proto_v2) {
        /* v2's own witness (what the library asks on v2, read without it):
         * the member's /v2/stats/self, "leaderInfo":{"leader":"<hex>"}. */
        static const char field[] = "\"leaderInfo\":{\"leader\":\"";
        char *a = http_get("/v2/stats/self"), *q;
        p = a ? strstr(a, field) : NULL;
        CHECK(p != NULL, "v2: /v2/stats/self has leaderInfo.leader");
        if (p) {
            p += strlen(field);
            q = strchr(p, '"');
            if (q)
                *q = '\0';
            CHECK_STR_EQ(leader, p, "v2: leader equals /v2/stats/self's leaderInfo.leader");
        } else if (a) {
            printf("     /v2/stats/self said %s\n", show(a));
        }
        free(a);
    }
    free(leader);
}

static void test_null_args(etcd_session s)
{
    char *k = NULL, *v = NULL, *idx = NULL;
    int in = 1, out = 0;
    char *r;

    section("NULL and bad arguments", 60);

    r = etcd_get(NULL, K("/null/k"));
    CHECK_NULL(r, "etcd_get(NULL session)");
    CHECK_ERRMSG("etcd_get(NULL session)");
    free(r);
    CHECK_RC(etcd_set(NULL, K("/null/k"), "v", NULL, 0), ETCD_WTF, "etcd_set(NULL session)");
    CHECK_ERRMSG("etcd_set(NULL session)");
    CHECK_RC(etcd_delete(NULL, K("/null/k")), ETCD_WTF, "etcd_delete(NULL session)");
    CHECK_ERRMSG("etcd_delete(NULL session)");
    r = etcd_leader(NULL);
    CHECK_NULL(r, "etcd_leader(NULL session)");
    CHECK_ERRMSG("etcd_leader(NULL session)");
    free(r);
    CHECK_RC(etcd_watch(NULL, K("/null"), &k, &v, &in, &out), ETCD_WTF, "etcd_watch(NULL session)");
    CHECK_ERRMSG("etcd_watch(NULL session)");
    free(k);
    free(v);
    k = v = NULL;
    CHECK_RC(etcd_lock(NULL, K("/null/l"), 10, NULL, &idx), ETCD_WTF, "etcd_lock(NULL session)");
    CHECK_ERRMSG("etcd_lock(NULL session)");
    free(idx);
    idx = NULL;
    CHECK_RC(etcd_unlock(NULL, K("/null/l"), "1234abcd"), ETCD_WTF, "etcd_unlock(NULL session)");
    CHECK_ERRMSG("etcd_unlock(NULL session)");

    CHECK_RC(etcd_set(s, NULL, "v", NULL, 0), ETCD_WTF, "etcd_set(NULL key)");
    CHECK_ERRMSG("etcd_set(NULL key)");
    CHECK_RC(etcd_set(s, K("/null/k"), NULL, NULL, 0), ETCD_WTF, "etcd_set(NULL value)");
    CHECK_ERRMSG("etcd_set(NULL value)");
    CHECK_GET_NULL(s, K("/null/k"), "nothing stored by etcd_set(NULL value)");
    r = etcd_get(s, NULL);
    CHECK_NULL(r, "etcd_get(NULL key)");
    CHECK_ERRMSG("etcd_get(NULL key)");
    free(r);
    CHECK_RC(etcd_delete(s, NULL), ETCD_WTF, "etcd_delete(NULL key)");
    CHECK_ERRMSG("etcd_delete(NULL key)");
}

static void test_dead_servers(void)
{
    unsigned short p1, p2;
    char list[128];
    etcd_session s;
    double t0, elapsed;
    char *r;
    const char *m;

    section("dead servers", 60);

    if (free_ports(&p1, &p2) != 0) {
        CHECK(0, "could not pick two free ports");
        return;
    }
    snprintf(list, sizeof list, "127.0.0.1:%u,127.0.0.1:%u", p1, p2);
    s = open_str(list);
    CHECK(s != NULL, "etcd_open_str(two dead servers) still opens (no I/O at open)");
    if (!s)
        return;

    t0 = now();
    CHECK_RC(etcd_set(s, K("/dead/k"), "v", NULL, 0), ETCD_WTF, "set with no server reachable");
    m = etcd_errmsg();
    CHECK(m && strstr(m, "127.0.0.1"), "set's errmsg names a server");
    r = etcd_get(s, K("/dead/k"));
    CHECK_NULL(r, "get with no server reachable");
    free(r);
    m = etcd_errmsg();
    CHECK(m && strstr(m, "127.0.0.1"), "get's errmsg names a server");
    r = etcd_leader(s);
    CHECK_NULL(r, "leader with no server reachable");
    free(r);
    m = etcd_errmsg();
    CHECK(m && strstr(m, "127.0.0.1"), "leader's errmsg names a server");
    elapsed = now() - t0;
    record(elapsed < 10.0, __FILE__, __LINE__,
           "dead servers answered in %.2f s, want < 10 s", elapsed);
    printf("     (dead-server calls took %.3f s; errmsg: %s)\n", elapsed, errmsg_or_null());
    etcd_close_str(s);
}

static void test_interop(etcd_session s)
{
    char key[128], path[160], cmd[2048], name[512];
    char *out;
    size_t len;
    /* Shell-hostile characters: the witness must see exactly these bytes. */
    const char *value = "hello world\t\"quoted\" $HOME `x` \\ \xc3\xbc end";
    /* The witness reads the store under test: etcdctl's v3 commands, or
     * its v2 ones (both "get"s print the value and one newline). */
    void (*ctl)(char *, size_t, const char *) = proto_v2 ? etcdctl2_cmd : etcdctl_cmd;
    const char *get_fmt = proto_v2 ? "get %s" : "get --print-value-only %s";

    section(proto_v2 ? "interop with etcdctl (its v2 API)" : "interop with etcdctl", 60);

    /* foo-harness-... written without a leading slash is /foo-harness-... */
    snprintf(key, sizeof key, "foo-%s", prefix + 1);
    CHECK_RC(etcd_set(s, key, (char *)value, NULL, 0), ETCD_OK, "etcd_set for etcdctl");
    snprintf(path, sizeof path, "/%s", key);
    snprintf(name, sizeof name, get_fmt, path);
    ctl(cmd, sizeof cmd, name);
    out = run_capture(cmd, &len);
    CHECK(out != NULL, "etcdctl get ran");
    if (out) {
        /* etcdctl prints the value and one newline. */
        if (len > 0 && out[len - 1] == '\n')
            out[--len] = '\0';
        CHECK_INT_EQ(len, strlen(value), "etcdctl sees the value's length");
        CHECK_STR_EQ(out, value, "etcdctl sees etcd_set's value byte-exact");
        free(out);
    }

    /* Non-UTF-8 too. */
    if (proto_v2) {
        skip("interop: etcdctl sees bytes 1..255 byte-exact",
             "not UTF-8, which v2 (JSON strings) cannot carry; set/get checks that v2 refuses it with ETCD_WTF");
    } else {
        char all[256];
        int i;
        for (i = 1; i < 256; i++)
            all[i - 1] = (char)i;
        all[255] = '\0';
        CHECK_RC(etcd_set(s, K("/interop/bytes"), all, NULL, 0), ETCD_OK, "etcd_set bytes 1..255");
        snprintf(name, sizeof name, "get --print-value-only %s", K("/interop/bytes"));
        etcdctl_cmd(cmd, sizeof cmd, name);
        out = run_capture(cmd, &len);
        CHECK(out != NULL, "etcdctl get (bytes) ran");
        if (out) {
            CHECK(len == 256 && memcmp(out, all, 255) == 0 && out[255] == '\n',
                  "etcdctl sees bytes 1..255 byte-exact");
            free(out);
        }
    }

    /* The other way round. */
    snprintf(name, sizeof name, "%s %s 'written by etcdctl: a/b c' >/dev/null",
             proto_v2 ? "set" : "put", K("/interop/from-etcdctl"));
    ctl(cmd, sizeof cmd, name);
    out = run_capture(cmd, NULL);
    CHECK(out != NULL, "etcdctl put ran");
    free(out);
    CHECK_GET(s, K("/interop/from-etcdctl"), "written by etcdctl: a/b c", "etcd_get reads etcdctl's value");
    CHECK_GET(s, K("//interop//from-etcdctl/"), "written by etcdctl: a/b c", "etcd_get reads it via a non-canonical key");

    snprintf(name, sizeof name, "%s /%s >/dev/null", proto_v2 ? "rm" : "del", key);
    ctl(cmd, sizeof cmd, name);
    free(run_capture(cmd, NULL));
}

/* --- threads ------------------------------------------------------- */

#define NTHREADS 8
#define NITER 200

struct thread_job {
    etcd_session s;
    int id;
    int set_ok, get_ok, del_ok, gone_ok;
    char first_error[512];
};

static void *thread_main(void *arg)
{
    struct thread_job *j = arg;
    char key[256], val[256];
    int i;
    for (i = 0; i < NITER; i++) {
        char *got;
        etcd_result r;
        snprintf(key, sizeof key, "%s/thr/%d/k%d", prefix, j->id, i);
        snprintf(val, sizeof val, "thread %d iteration %d %08x", j->id, i,
                 (unsigned)(j->id * 2654435761u + (unsigned)i));
        r = etcd_set(j->s, key, val, NULL, 0);
        if (r == ETCD_OK)
            j->set_ok++;
        else if (!j->first_error[0])
            snprintf(j->first_error, sizeof j->first_error, "set %s: %s: %s",
                     key, rc_name(r), errmsg_or_null());
        got = etcd_get(j->s, key);
        if (got && strcmp(got, val) == 0)
            j->get_ok++;
        else if (!j->first_error[0])
            snprintf(j->first_error, sizeof j->first_error, "get %s: got %s want %s (%s)",
                     key, show(got), show(val), errmsg_or_null());
        free(got);
        r = etcd_delete(j->s, key);
        if (r == ETCD_OK)
            j->del_ok++;
        else if (!j->first_error[0])
            snprintf(j->first_error, sizeof j->first_error, "delete %s: %s: %s",
                     key, rc_name(r), errmsg_or_null());
        got = etcd_get(j->s, key);
        if (!got)
            j->gone_ok++;
        else if (!j->first_error[0])
            snprintf(j->first_error, sizeof j->first_error, "get after delete %s: got %s",
                     key, show(got));
        free(got);
    }
    return NULL;
}

static void test_threads(etcd_session s)
{
    pthread_t th[NTHREADS];
    struct thread_job jobs[NTHREADS];
    int i, sets = 0, gets = 0, dels = 0, gone = 0, started = 0;
    double t0;

    section("threads", 120);

    t0 = now();
    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < NTHREADS; i++) {
        jobs[i].s = s;
        jobs[i].id = i;
        if (pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0)
            started++;
        else
            break;
    }
    CHECK_INT_EQ(started, NTHREADS, "threads started");
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        sets += jobs[i].set_ok;
        gets += jobs[i].get_ok;
        dels += jobs[i].del_ok;
        gone += jobs[i].gone_ok;
        if (jobs[i].first_error[0])
            printf("     thread %d first error: %s\n", i, jobs[i].first_error);
    }
    CHECK_INT_EQ(sets, NTHREADS * NITER, "sets OK across threads");
    CHECK_INT_EQ(gets, NTHREADS * NITER, "gets with the right value across threads");
    CHECK_INT_EQ(dels, NTHREADS * NITER, "deletes OK across threads");
    CHECK_INT_EQ(gone, NTHREADS * NITER, "keys gone after delete across threads");
    printf("     (%d threads x %d x 4 calls in %.2f s)\n", NTHREADS, NITER, now() - t0);
}

/* --- watch and lock -------------------------------------------------- */

struct writer_job {
    etcd_session s;
    long delay_ms;
    const char *keys[8];        /* set in order, NULL-terminated */
    const char *value;
    double done_at;             /* when the last set returned */
    int ok;
};

static void *writer_main(void *arg)
{
    struct writer_job *w = arg;
    int i;
    sleep_ms(w->delay_ms);
    w->ok = 1;
    for (i = 0; w->keys[i]; i++)
        if (etcd_set(w->s, (char *)w->keys[i], (char *)w->value, NULL, 0) != ETCD_OK)
            w->ok = 0;
    w->done_at = now();
    return NULL;
}

static void test_watch(etcd_session s)
{
    char *k = NULL, *v = NULL;
    int in, out = 0, r1 = 0, r2 = 0, r3 = 0, base;
    etcd_result r;
    double t0;
    char want_key[512];

    section("watch: live", 30);
    {
        struct writer_job w;
        pthread_t th;
        char sib1[256], sib2[256], sib3[256], target[256], pfx[128];
        snprintf(pfx, sizeof pfx, "%s/w1/pfx", prefix);
        snprintf(sib1, sizeof sib1, "%s-x", pfx);
        snprintf(sib2, sizeof sib2, "%s.x", pfx);
        snprintf(sib3, sizeof sib3, "%sy", pfx);
        snprintf(target, sizeof target, "%s/k", pfx);
        memset(&w, 0, sizeof w);
        w.s = s;
        w.delay_ms = 300;
        /* The siblings come first: a prefix watch done with plain byte
         * prefixes would return one of them. */
        w.keys[0] = sib1;
        w.keys[1] = sib2;
        w.keys[2] = sib3;
        w.keys[3] = target;
        w.value = "live value";
        t0 = now();
        if (pthread_create(&th, NULL, writer_main, &w) != 0) {
            CHECK(0, "start writer thread");
        } else {
            r = etcd_watch(s, pfx, &k, &v, NULL, &out);
            pthread_join(th, NULL);
            CHECK(w.ok, "writer thread's sets");
            CHECK_RC(r, ETCD_OK, "live watch");
            CHECK_STR_EQ(k, target, "live watch key (siblings not returned)");
            CHECK_STR_EQ(v, "live value", "live watch value");
            CHECK(out > 0, "live watch index > 0");
            record(now() - t0 < 1.3, __FILE__, __LINE__,
                   "live watch returned %.3f s after start (writer done at +%.3f s), want < 1.3 s",
                   now() - t0, w.done_at - t0);
            free(k);
            free(v);
            k = v = NULL;
        }

        /* The prefix key itself is watched, too; canonicalise pfx.  A
         * prefix without children: on v2 one with children is a directory,
         * which cannot take a value. */
        snprintf(pfx, sizeof pfx, "%s/w1/self", prefix);
        snprintf(sib3, sizeof sib3, "%sy", pfx);
        memset(&w, 0, sizeof w);
        w.s = s;
        w.delay_ms = 300;
        w.keys[0] = sib3;
        w.keys[1] = pfx;
        w.value = "self";
        if (pthread_create(&th, NULL, writer_main, &w) != 0) {
            CHECK(0, "start writer thread");
        } else {
            char alt[512];
            snprintf(alt, sizeof alt, "%s/", pfx + 1);
            r = etcd_watch(s, alt, &k, &v, NULL, &out);
            pthread_join(th, NULL);
            CHECK(w.ok, "writer thread's sets");
            CHECK_RC(r, ETCD_OK, "watch of the prefix key itself");
            CHECK_STR_EQ(k, pfx, "watched prefix key, canonical");
            CHECK_STR_EQ(v, "self", "watched prefix key's value");
            free(k);
            free(v);
            k = v = NULL;
        }
    }

    section("watch: history replay", 30);
    base = watch_base();
    CHECK_RC(etcd_set(s, K("/w2/k"), "h1", NULL, 0), ETCD_OK, "set h1");
    CHECK_RC(etcd_set(s, K("/w2/k"), "h2", NULL, 0), ETCD_OK, "set h2");
    CHECK_RC(etcd_delete(s, K("/w2/k")), ETCD_OK, "delete");
    snprintf(want_key, sizeof want_key, "%s/w2/k", prefix);
    /* The prefix is unique to this run, so its first change at or after
     * the base (revision 1 on v3) is our first set. */
    in = base;
    CHECK_RC(etcd_watch(s, K("/w2"), &k, &v, &in, &r1), ETCD_OK, "replay 1");
    CHECK_STR_EQ(k, want_key, "replay 1 key");
    CHECK_STR_EQ(v, "h1", "replay 1 value");
    CHECK(r1 > 0, "replay 1 index > 0");
    free(k); free(v); k = v = NULL;
    in = r1 + 1;
    CHECK_RC(etcd_watch(s, K("/w2"), &k, &v, &in, &r2), ETCD_OK, "replay 2");
    CHECK_STR_EQ(k, want_key, "replay 2 key");
    CHECK_STR_EQ(v, "h2", "replay 2 value");
    CHECK(r2 > r1, "replay 2 index increases");
    free(k); free(v); k = v = NULL;
    in = r2 + 1;
    v = (char *)"sentinel";
    CHECK_RC(etcd_watch(s, K("/w2"), &k, &v, &in, &r3), ETCD_OK, "replay 3 (delete)");
    CHECK_STR_EQ(k, want_key, "replay 3 key");
    CHECK_NULL(v, "replay 3 value is NULL for a delete");
    if (v && strcmp(v, "sentinel") == 0)
        v = NULL;       /* not ours to free */
    CHECK(r3 > r2, "replay 3 index increases");
    free(k); free(v); k = v = NULL;
    /* Replaying from the same index gives the same change again. */
    in = r1;
    CHECK_RC(etcd_watch(s, K("/w2"), &k, &v, &in, &out), ETCD_OK, "replay from r1 again");
    CHECK_INT_EQ(out, r1, "replay from r1 again gives r1");
    CHECK_STR_EQ(v, "h1", "replay from r1 again gives h1");
    free(k); free(v); k = v = NULL;
    /* Every out-parameter may be NULL. */
    in = r1;
    CHECK_RC(etcd_watch(s, K("/w2"), NULL, NULL, &in, NULL), ETCD_OK, "watch with NULL key/value/index outputs");

    /* etcd delivers a watch on past revisions at its next 100 ms sync, so
     * a library opening one watch per call needs ~50-100 s here.  On v2,
     * 1000 is all the history etcd keeps: the first change is the oldest
     * one it still has. */
    section("watch: draining 1000 changes", 300);
    {
        int i, n = 1000, set_ok = 0, seen_ok = 0, order_ok = 1, last = 0;
        char key[512], val[64];
        double t_drain;
        base = watch_base();
        for (i = 0; i < n; i++) {
            snprintf(key, sizeof key, "%s/w3/k%04d", prefix, i);
            snprintf(val, sizeof val, "v%d", i);
            if (etcd_set(s, key, val, NULL, 0) == ETCD_OK)
                set_ok++;
        }
        CHECK_INT_EQ(set_ok, n, "sets for draining");
        t_drain = now();
        in = base;
        for (i = 0; i < n; i++) {
            r = etcd_watch(s, K("/w3"), &k, &v, &in, &out);
            if (r != ETCD_OK) {
                CHECK_RC(r, ETCD_OK, "watch while draining");
                break;
            }
            snprintf(key, sizeof key, "%s/w3/k%04d", prefix, i);
            snprintf(val, sizeof val, "v%d", i);
            if (k && v && strcmp(k, key) == 0 && strcmp(v, val) == 0) {
                seen_ok++;
            } else if (seen_ok == i) {
                /* Report the first mismatch only. */
                printf("     drain #%d: got %s = %s, want %s = %s\n", i,
                       show(k), show(v), key, val);
            }
            if (out <= last)
                order_ok = 0;
            last = out;
            free(k); free(v); k = v = NULL;
            in = out + 1;
        }
        printf("     (drained %d changes in %.2f s)\n", seen_ok, now() - t_drain);
        CHECK_INT_EQ(seen_ok, n, "changes drained exactly once, in order");
        CHECK(order_ok, "drained indexes strictly increase");
    }
}

struct locker_job {
    etcd_session s;
    const char *key;
    unsigned int ttl;
    etcd_result r;
    char *idx;
    double got_at;
    volatile int done;          /* polled by the main thread */
    pthread_mutex_t mu;
};

static void *locker_main(void *arg)
{
    struct locker_job *j = arg;
    char *idx = NULL;
    etcd_result r = etcd_lock(j->s, (char *)j->key, j->ttl, NULL, &idx);
    pthread_mutex_lock(&j->mu);
    j->r = r;
    j->idx = idx;
    j->got_at = now();
    j->done = 1;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static int locker_done(struct locker_job *j)
{
    int d;
    pthread_mutex_lock(&j->mu);
    d = j->done;
    pthread_mutex_unlock(&j->mu);
    return d;
}

/* Wait up to ms for the locker to finish; returns whether it did. */
static int locker_wait(struct locker_job *j, long ms)
{
    long waited = 0;
    while (!locker_done(j) && waited < ms) {
        sleep_ms(20);
        waited += 20;
    }
    return locker_done(j);
}

/*
 * Takes `held` through session `hs`, then checks that `other` can be taken
 * through session `os` meanwhile (the two are independent locks), and
 * releases both.  `what` names the pair in the checks.
 */
static void check_locks_independent(etcd_session hs, char *held,
                                    etcd_session os, char *other,
                                    const char *what)
{
    struct locker_job j;
    pthread_t th;
    char *idx = NULL;
    char msg[200];

    snprintf(msg, sizeof msg, "%s: the holder locks", what);
    CHECK_RC(etcd_lock(hs, held, 10, NULL, &idx), ETCD_OK, msg);
    memset(&j, 0, sizeof j);
    pthread_mutex_init(&j.mu, NULL);
    j.s = os;
    j.key = other;
    j.ttl = 10;
    if (pthread_create(&th, NULL, locker_main, &j) != 0) {
        snprintf(msg, sizeof msg, "%s: start the other locker", what);
        CHECK(0, msg);
    } else {
        snprintf(msg, sizeof msg, "%s: the other lock does not wait", what);
        CHECK(locker_wait(&j, 3000), msg);
        if (idx)
            etcd_unlock(hs, held, idx);         /* frees a stuck locker */
        pthread_join(th, NULL);
        snprintf(msg, sizeof msg, "%s: the other lock is taken", what);
        CHECK_RC(j.r, ETCD_OK, msg);
        if (j.idx) {
            snprintf(msg, sizeof msg, "%s: the other lock is released", what);
            CHECK_RC(etcd_unlock(os, other, j.idx), ETCD_OK, msg);
        }
        free(j.idx);
    }
    pthread_mutex_destroy(&j.mu);
    free(idx);
}

/* "/_locks/" + canonical key without its leading '/', '%' and '/' escaped. */
static void lock_name(char *out, size_t n, const char *canon)
{
    size_t o = 0;
    const char *p;
    o += (size_t)snprintf(out, n, "/_locks/");
    for (p = canon + 1; *p && o + 4 < n; p++) {
        if (*p == '%') {
            memcpy(out + o, "%25", 3);
            o += 3;
        } else if (*p == '/') {
            memcpy(out + o, "%2F", 3);
            o += 3;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static char *etcdctl_lock_keys(const char *lname);

static void test_lock(etcd_session s)
{
    char *idx = NULL, *out;
    char dummy = 0;
    char canon[512], lname[600], args[1024];

    section("lock: lock/renew/unlock", 60);

    snprintf(canon, sizeof canon, "%s/l1/job", prefix);
    CHECK_RC(etcd_lock(s, canon + 1, 10, NULL, &idx), ETCD_OK, "lock");
    CHECK(lock_index_ok(idx), proto_v2 ? "lock index is a decimal createdIndex (v2)"
                                       : "lock index is lowercase hex");
    if (idx && !lock_index_ok(idx))
        printf("     lock index was %s\n", show(idx));
    if (idx) {
        /* v3: etcd's lock service holds it as a key <name>/<lease hex>;
         * v2: an in-order key <name>/<createdIndex on 20 digits>. */
        char *keys;
        size_t kl;
        lock_name(lname, sizeof lname, canon);
        keys = etcdctl_lock_keys(lname);
        lock_key(args, sizeof args - 1, lname, idx);
        kl = strlen(args);
        args[kl] = '\n';
        args[kl + 1] = '\0';
        CHECK(keys && strstr(keys, args) != NULL, "lock key is /_locks/<escaped name>/<index> in etcd");
        if (keys && !strstr(keys, args))
            printf("     etcd has %s, want %s\n", show(keys), show(args));
        free(keys);
        CHECK_GET_NULL(s, K("/l1"), "lock is not in the ordinary namespace");

        out = &dummy;
        CHECK_RC(etcd_lock(s, canon, 10, idx, &out), ETCD_OK, "renew held lock");
        CHECK(out == NULL, "renew sets *index_out to NULL");
        if (out != &dummy)
            free(out);
        CHECK_RC(etcd_unlock(s, canon, idx), ETCD_OK, "unlock");
        CHECK_RC(etcd_unlock(s, canon, idx), ETCD_PROTOCOL_ERROR, "unlock again");
        CHECK_ERRMSG("unlock again");
        out = NULL;
        CHECK_RC(etcd_lock(s, canon, 10, idx, &out), ETCD_PROTOCOL_ERROR, "renew after unlock: lock lost");
        free(out);
    }
    CHECK_RC(etcd_unlock(s, canon, NULL), ETCD_WTF, "unlock with NULL index");
    CHECK_ERRMSG("unlock with NULL index");
    out = NULL;
    CHECK_RC(etcd_lock(s, canon, 0, NULL, &out), ETCD_WTF, "lock with ttl 0");
    CHECK_ERRMSG("lock with ttl 0");
    free(out);
    free(idx);
    idx = NULL;

    section("lock: contention", 60);
    {
        struct locker_job j;
        pthread_t th;
        double released_at;
        snprintf(canon, sizeof canon, "%s/l2/shared", prefix);
        CHECK_RC(etcd_lock(s, canon, 10, NULL, &idx), ETCD_OK, "first holder locks");
        memset(&j, 0, sizeof j);
        pthread_mutex_init(&j.mu, NULL);
        j.s = s;
        j.key = canon;
        j.ttl = 10;
        if (pthread_create(&th, NULL, locker_main, &j) != 0) {
            CHECK(0, "start second locker");
        } else {
            CHECK(!locker_wait(&j, 1000), "second locker still waits after 1 s");
            released_at = now();
            CHECK_RC(etcd_unlock(s, canon, idx), ETCD_OK, "first holder unlocks");
            CHECK(locker_wait(&j, 5000), "second locker gets the lock within 5 s of the release");
            pthread_join(th, NULL);
            CHECK_RC(j.r, ETCD_OK, "second locker's etcd_lock");
            CHECK(j.got_at >= released_at, "second locker got it only after the release");
            CHECK(j.idx && idx && strcmp(j.idx, idx) != 0, "second locker has its own index");
            if (j.idx)
                CHECK_RC(etcd_unlock(s, canon, j.idx), ETCD_OK, "second locker unlocks");
            free(j.idx);
        }
        pthread_mutex_destroy(&j.mu);
        free(idx);
        idx = NULL;
    }

    section("lock: nested names are independent", 60);
    {
        char child[600];
        snprintf(canon, sizeof canon, "%s/l3/jobs", prefix);
        snprintf(child, sizeof child, "%s/42", canon);
        check_locks_independent(s, canon, s, child, "jobs and jobs/42");
    }
}

/* --- helper processes ------------------------------------------------ */

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

static void helper_init(struct helper *h)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
}

/*
 * Run fn(wfd, arg) in a forked child, which must end with _exit().  The
 * child only inherits the forking thread; it opens its own session.  An
 * alarm ends it should it hang, so that it can never outlive the test.
 */
static int helper_fork(struct helper *h, void (*fn)(int wfd, void *arg), void *arg)
{
    int p[2];
    helper_init(h);
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    h->pid = fork();
    if (h->pid < 0) {
        h->pid = 0;
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (h->pid == 0) {
        int i;
        for (i = 0; i < MAX_HELPERS; i++)
            helper_pids[i] = 0;     /* the parent's helpers are not ours */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        close(p[0]);
        alarm(30);
        fn(p[1], arg);
        _exit(99);
    }
    close(p[1]);
    h->fd = p[0];
    helper_register(h->pid);
    return 0;
}

/* Run "exec CMD" under /bin/sh, so that the PID is the command's own. */
static int helper_exec(struct helper *h, const char *cmd)
{
    int p[2];
    char *full;
    size_t len = strlen(cmd) + 8;
    helper_init(h);
    full = malloc(len);
    if (!full)
        abort();
    snprintf(full, len, "exec %s", cmd);
    if (pipe(p) != 0) {
        free(full);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    h->pid = fork();
    if (h->pid < 0) {
        h->pid = 0;
        close(p[0]);
        close(p[1]);
        free(full);
        return -1;
    }
    if (h->pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    free(full);
    close(p[1]);
    h->fd = p[0];
    helper_register(h->pid);
    return 0;
}

/* Read what is there (waiting at most ms); returns bytes read, 0 on time-out or EOF. */
static size_t helper_read(struct helper *h, long ms)
{
    struct pollfd pfd;
    ssize_t got;
    int pr;
    if (h->fd < 0 || h->eof)
        return 0;
    pfd.fd = h->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    pr = poll(&pfd, 1, (int)(ms < 0 ? 0 : ms));
    if (pr <= 0)
        return 0;
    got = read(h->fd, h->out + h->n, sizeof h->out - 1 - h->n);
    if (got <= 0) {
        h->eof = 1;
        return 0;
    }
    h->n += (size_t)got;
    h->out[h->n] = '\0';
    return (size_t)got;
}

/*
 * Wait up to ms for needle in the helper's output.  1: found (the time it
 * was seen in *seen_at), 0: time-out, -1: the helper closed its output
 * without printing it.
 */
static int helper_wait_for(struct helper *h, const char *needle, long ms, double *seen_at)
{
    double end = now() + (double)ms / 1000.0, left;
    int tried = 0;
    for (;;) {
        if (strstr(h->out, needle)) {
            if (seen_at)
                *seen_at = now();
            return 1;
        }
        if (h->eof)
            return -1;
        left = end - now();
        if (left <= 0 && tried)
            return 0;
        tried = 1;
        helper_read(h, left > 0 ? (long)(left * 1000.0) + 1 : 0);
    }
}

/*
 * Wait up to ms for the helper to exit, then kill it (SIGKILL) if it has
 * not; reap it and close the pipe.  Returns its wait status, or -1 if it
 * had to be killed.
 */
static int helper_finish(struct helper *h, long ms)
{
    int status = -1, killed = 0;
    double end = now() + (double)ms / 1000.0;
    if (h->pid > 0) {
        for (;;) {
            pid_t r = waitpid(h->pid, &status, WNOHANG);
            if (r == h->pid)
                break;
            if (r < 0) {
                status = -1;
                break;
            }
            if (now() >= end) {
                kill(h->pid, SIGKILL);
                waitpid(h->pid, &status, 0);
                killed = 1;
                break;
            }
            /* keep draining so a chatty helper cannot block on a full pipe */
            if (helper_read(h, 20) == 0)
                sleep_ms(20);
        }
        helper_unregister(h->pid);
        h->pid = 0;
    }
    while (h->fd >= 0 && !h->eof && helper_read(h, 0) > 0)
        ;
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    return killed ? -1 : status;
}

static int exited_zero(int status)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void write_str(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/*
 * The keys under a lock's name, one per line, via etcdctl (malloc'd): v3
 * "get --keys-only" (each key, then an empty line), v2 "ls" (each key).
 * On v2 the lock's directory goes when its last waiter does: "Key not
 * found" is no keys.
 */
static char *etcdctl_lock_keys(const char *lname)
{
    char args[1024], cmd[2048], *out;
    if (!proto_v2) {
        snprintf(args, sizeof args, "get --prefix --keys-only '%s/'", lname);
        etcdctl_cmd(cmd, sizeof cmd, args);
        return run_capture(cmd, NULL);
    }
    snprintf(args, sizeof args, "ls '%s' 2>&1 || true", lname);
    etcdctl2_cmd(cmd, sizeof cmd, args);
    out = run_capture(cmd, NULL);
    if (out && strncmp(out, "Error:", 6) == 0) {
        int not_found = strstr(out, "Key not found") != NULL;
        free(out);
        out = not_found ? strdup("") : NULL;
    }
    return out;
}

/* Non-empty lines in s. */
static int count_lines(const char *s)
{
    int n = 0;
    const char *p = s;
    if (!s)
        return -1;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0)
            n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* --- more watch ------------------------------------------------------ */

#define NWATCH 50

struct watcher_job {
    etcd_session s;
    char pfx[256];
    char key[300];              /* every event is on this key */
    int first_value, step;      /* values first_value, +step, ... */
    int in;
    int ok, order_ok, rc_ok;
    char first_error[600];
};

static void *watcher_main(void *arg)
{
    struct watcher_job *j = arg;
    int i, in = j->in, out = 0, last = 0;
    j->order_ok = 1;
    j->rc_ok = 1;
    for (i = 0; i < NWATCH; i++) {
        char *k = NULL, *v = NULL, want[32];
        etcd_result r = etcd_watch(j->s, j->pfx, &k, &v, &in, &out);
        if (r != ETCD_OK) {
            j->rc_ok = 0;
            snprintf(j->first_error, sizeof j->first_error, "watch #%d: %s: %s",
                     i, rc_name(r), errmsg_or_null());
            break;
        }
        snprintf(want, sizeof want, "%d", j->first_value + i * j->step);
        if (k && v && strcmp(k, j->key) == 0 && strcmp(v, want) == 0)
            j->ok++;
        else if (!j->first_error[0])
            snprintf(j->first_error, sizeof j->first_error,
                     "event #%d: got %s = %s, want %s = %s", i, show(k), show(v),
                     j->key, want);
        if (out <= last)
            j->order_ok = 0;
        last = out;
        in = out + 1;
        free(k);
        free(v);
    }
    return NULL;
}

/* The revision of a key's first change at or after base (our keys are
 * unique to this run). */
static int revision_of(etcd_session s, char *key, int base)
{
    int in = base, out = 0;
    if (etcd_watch(s, key, NULL, NULL, &in, &out) != ETCD_OK)
        return 0;
    return out;
}

/* etcdctl compact, then a watch from a compacted revision. */
static void test_watch_compacted_v3(etcd_session s)
{
    section("watch: compacted index", 30);
    {
        int in, r1 = 0, rlast = 0, out, i;
        char *k, *v, sk[] = "key sentinel", sv[] = "value sentinel";
        char args[256], cmd[1024], *res;
        etcd_result r;
        const char *m;

        for (i = 0; i < 5; i++) {
            char key[64], val[16];
            snprintf(key, sizeof key, "/w6/k%d", i);
            snprintf(val, sizeof val, "c%d", i);
            CHECK_RC(etcd_set(s, K(key), val, NULL, 0), ETCD_OK, "set before compaction");
        }
        in = 1;
        k = v = NULL;
        CHECK_RC(etcd_watch(s, K("/w6"), &k, &v, &in, &r1), ETCD_OK, "watch gives the first change's revision");
        CHECK_STR_EQ(v, "c0", "first change before compaction");
        free(k);
        free(v);
        k = v = NULL;
        in = 1;
        CHECK_RC(etcd_watch(s, K("/w6/k4"), &k, &v, &in, &rlast), ETCD_OK, "watch gives the last change's revision");
        CHECK_STR_EQ(v, "c4", "last change before compaction");
        free(k);
        free(v);
        CHECK(rlast > r1, "revisions increase");

        snprintf(args, sizeof args, "compact %d >/dev/null", rlast);
        etcdctl_cmd(cmd, sizeof cmd, args);
        res = run_capture(cmd, NULL);
        CHECK(res != NULL, "etcdctl compact ran");
        free(res);

        k = sk;
        v = sv;
        out = -12345;
        in = r1;
        r = etcd_watch(s, K("/w6"), &k, &v, &in, &out);
        CHECK_RC(r, ETCD_PROTOCOL_ERROR, "watch from a compacted revision");
        m = etcd_errmsg();
        CHECK(m && strstr(m, "compact"), "errmsg of a compacted watch mentions \"compact\"");
        if (!(m && strstr(m, "compact")))
            printf("     errmsg was %s\n", show(m));
        CHECK(k == sk && v == sv, "compacted watch wrote neither *keyp nor *valuep");
        CHECK_INT_EQ(out, -12345, "compacted watch left *index_out alone");
        CHECK_INT_EQ(in, r1, "compacted watch left *index_in alone");
        if (k != sk)
            free(k);
        if (v != sv)
            free(v);

        /* The compaction revision itself is still there. */
        k = v = NULL;
        in = rlast;
        CHECK_RC(etcd_watch(s, K("/w6"), &k, &v, &in, &out), ETCD_OK, "watch from the compaction revision");
        CHECK_STR_EQ(v, "c4", "change at the compaction revision");
        CHECK_INT_EQ(out, rlast, "index of the change at the compaction revision");
        free(k);
        free(v);
    }
}

/*
 * v2's form of compaction: etcd keeps only its last 1000 v2 changes, and
 * a watch from an index older than that is ETCD_PROTOCOL_ERROR, with
 * nothing written.
 */
static void test_watch_cleared_v2(etcd_session s)
{
    int base, nbase, in, out, r1 = 0, i, set_ok = 0;
    char *k, *v, sk[] = "key sentinel", sv[] = "value sentinel";
    char key[300], val[32];
    etcd_result r;
    const char *m;

    section("watch: index cleared from the v2 history (v2's compaction)", 60);
    base = watch_base();
    CHECK_RC(etcd_set(s, K("/w6/k"), "c0", NULL, 0), ETCD_OK, "set the change to be forgotten");
    in = base;
    k = v = NULL;
    CHECK_RC(etcd_watch(s, K("/w6"), &k, &v, &in, &r1), ETCD_OK, "watch gives the change's index");
    CHECK_STR_EQ(v, "c0", "the change, while still in the history");
    free(k);
    free(v);

    /* 1000 later changes push it out of etcd's v2 history. */
    nbase = watch_base();
    snprintf(key, sizeof key, "%s/w6n/k", prefix);
    for (i = 0; i < 1000; i++) {
        snprintf(val, sizeof val, "n%d", i);
        if (etcd_set(s, key, val, NULL, 0) == ETCD_OK)
            set_ok++;
    }
    CHECK_INT_EQ(set_ok, 1000, "1000 changes after it");

    k = sk;
    v = sv;
    out = -12345;
    in = r1;
    r = etcd_watch(s, K("/w6"), &k, &v, &in, &out);
    CHECK_RC(r, ETCD_PROTOCOL_ERROR, "watch from an index no longer in the v2 history");
    m = etcd_errmsg();
    CHECK(m && strstr(m, "history"), "errmsg of a cleared index mentions \"history\"");
    if (!(m && strstr(m, "history")))
        printf("     errmsg was %s\n", show(m));
    CHECK(k == sk && v == sv, "cleared-index watch wrote neither *keyp nor *valuep");
    CHECK_INT_EQ(out, -12345, "cleared-index watch left *index_out alone");
    CHECK_INT_EQ(in, r1, "cleared-index watch left *index_in alone");
    if (k != sk)
        free(k);
    if (v != sv)
        free(v);

    /* A recent index is still there. */
    k = v = NULL;
    in = nbase + 10;
    CHECK_RC(etcd_watch(s, K("/w6n"), &k, &v, &in, &out), ETCD_OK, "watch from an index still in the history");
    CHECK_STR_EQ(v, "n10", "the change at that index");
    CHECK_INT_EQ(out, nbase + 10, "its index");
    free(k);
    free(v);
}

static void test_watch_more(etcd_session s)
{
    section("watch: two threads, one session, two prefixes", 30);
    {
        struct watcher_job a, b;
        pthread_t ta, tb;
        int started_a, started_b, i, r0, set_ok = 0;
        char noise[300], startkey[300];

        snprintf(startkey, sizeof startkey, "%s/w5/start", prefix);
        r0 = watch_base();
        CHECK_RC(etcd_set(s, startkey, "go", NULL, 0), ETCD_OK, "set start marker");
        r0 = revision_of(s, startkey, r0);
        CHECK(r0 > 0, "revision of the start marker");

        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        a.s = b.s = s;
        snprintf(a.pfx, sizeof a.pfx, "%s/w5/a", prefix);
        snprintf(b.pfx, sizeof b.pfx, "%s/w5/b", prefix);
        snprintf(a.key, sizeof a.key, "%s/x", a.pfx);
        snprintf(b.key, sizeof b.key, "%s/y", b.pfx);
        /* Siblings by bytes, below neither prefix: nobody may see them. */
        snprintf(noise, sizeof noise, "%s/w5/ab/x", prefix);
        a.first_value = 1;
        b.first_value = 2;
        a.step = b.step = 2;
        a.in = b.in = r0 + 1;

        started_a = pthread_create(&ta, NULL, watcher_main, &a) == 0;
        started_b = pthread_create(&tb, NULL, watcher_main, &b) == 0;
        CHECK(started_a && started_b, "start both watcher threads");
        /* Let both block in etcd_watch before the first change. */
        sleep_ms(300);
        for (i = 1; i <= 2 * NWATCH; i++) {
            char val[32];
            snprintf(val, sizeof val, "%d", i);
            if (etcd_set(s, (i % 2) ? a.key : b.key, val, NULL, 0) == ETCD_OK)
                set_ok++;
            if (i % 10 == 0)
                etcd_set(s, noise, val, NULL, 0);
        }
        CHECK_INT_EQ(set_ok, 2 * NWATCH, "interleaved sets");
        if (started_a)
            pthread_join(ta, NULL);
        if (started_b)
            pthread_join(tb, NULL);
        if (a.first_error[0])
            printf("     thread A: %s\n", a.first_error);
        if (b.first_error[0])
            printf("     thread B: %s\n", b.first_error);
        CHECK(a.rc_ok && b.rc_ok, "both threads' watches returned ETCD_OK");
        CHECK_INT_EQ(a.ok, NWATCH, "thread A saw exactly its own 50 events, in order");
        CHECK_INT_EQ(b.ok, NWATCH, "thread B saw exactly its own 50 events, in order");
        CHECK(a.order_ok && b.order_ok, "each thread's indexes strictly increase");
    }

    if (proto_v2)
        test_watch_cleared_v2(s);
    else
        test_watch_compacted_v3(s);

    section("watch/lock/unlock: bad arguments", 30);
    {
        char *k, *v, *idx, sk[] = "k", sv[] = "v", canon[512];
        int in = 1, out = -777;
        k = sk;
        v = sv;
        CHECK_RC(etcd_watch(s, NULL, &k, &v, &in, &out), ETCD_WTF, "etcd_watch(NULL pfx)");
        CHECK_ERRMSG("etcd_watch(NULL pfx)");
        CHECK(k == sk && v == sv && out == -777, "etcd_watch(NULL pfx) wrote nothing");
        if (k != sk)
            free(k);
        if (v != sv)
            free(v);

        idx = NULL;
        CHECK_RC(etcd_lock(s, NULL, 10, NULL, &idx), ETCD_WTF, "etcd_lock(NULL key)");
        CHECK_ERRMSG("etcd_lock(NULL key)");
        CHECK_NULL(idx, "etcd_lock(NULL key) wrote no index");
        free(idx);
        idx = NULL;
        CHECK_RC(etcd_lock(s, NULL, 10, "4d2", &idx), ETCD_WTF, "etcd_lock(NULL key) renewal");
        free(idx);
        CHECK_RC(etcd_unlock(s, NULL, "4d2"), ETCD_WTF, "etcd_unlock(NULL key)");
        CHECK_ERRMSG("etcd_unlock(NULL key)");

        snprintf(canon, sizeof canon, "%s/l9/never", prefix);
        CHECK_RC(etcd_unlock(s, canon, "zz"), ETCD_PROTOCOL_ERROR, "etcd_unlock with a non-hex index");
        CHECK_ERRMSG("etcd_unlock with a non-hex index");
        CHECK_RC(etcd_unlock(s, canon, "4d2"), ETCD_PROTOCOL_ERROR, "etcd_unlock of a never-locked key");
        CHECK_ERRMSG("etcd_unlock of a never-locked key");
        /* "1234" is well-formed on both (hex lease ID / decimal index). */
        CHECK_RC(etcd_unlock(s, canon, "1234"), ETCD_PROTOCOL_ERROR, "etcd_unlock with a well-formed index that holds nothing");
        CHECK_ERRMSG("etcd_unlock with a well-formed index that holds nothing");
        idx = NULL;
        CHECK_RC(etcd_lock(s, canon, 10, "1234", &idx), ETCD_PROTOCOL_ERROR, "renewing with a well-formed index that holds nothing");
        CHECK_ERRMSG("renewing with a well-formed index that holds nothing");
        free(idx);
    }
}

/* --- more lock ------------------------------------------------------- */

struct child_lock_args {
    const char *key;
    const char *marker_key;
    unsigned int ttl;
    long hold_ms;
};

/* Child: own session; lock, mark, hold, unlock; timestamps on the pipe. */
static void child_lock_hold(int wfd, void *arg)
{
    struct child_lock_args *a = arg;
    etcd_session cs = open_str(endpoint);
    char *idx = NULL, msg[128];
    double t_u0, t_u1;
    etcd_result r;
    if (!cs)
        _exit(10);
    if (etcd_lock(cs, (char *)a->key, a->ttl, NULL, &idx) != ETCD_OK || !idx)
        _exit(11);
    snprintf(msg, sizeof msg, "L %.6f\n", now());
    write_str(wfd, msg);
    if (etcd_set(cs, (char *)a->marker_key, "child", NULL, 0) != ETCD_OK)
        _exit(12);
    sleep_ms(a->hold_ms);
    t_u0 = now();
    r = etcd_unlock(cs, (char *)a->key, idx);
    t_u1 = now();
    snprintf(msg, sizeof msg, "U %.6f %.6f\n", t_u0, t_u1);
    write_str(wfd, msg);
    free(idx);
    etcd_close_str(cs);
    _exit(r == ETCD_OK ? 0 : 13);
}

/* Child: own session; block in etcd_lock (until killed). */
static void child_lock_wait(int wfd, void *arg)
{
    struct child_lock_args *a = arg;
    etcd_session cs = open_str(endpoint);
    char *idx = NULL;
    if (!cs)
        _exit(10);
    write_str(wfd, "W\n");
    if (etcd_lock(cs, (char *)a->key, a->ttl, NULL, &idx) == ETCD_OK)
        write_str(wfd, "GOT\n");
    free(idx);
    etcd_close_str(cs);
    _exit(0);
}

/* Locks interoperate with etcdctl lock (v3 only). */
static void test_lock_etcdctl_v3(etcd_session s)
{
    char canon[512], lname[600], args[1200], cmd[2048];
    char *idx = NULL;

    section("lock: etcdctl waits for a C lock", 30);
    {
        struct helper h;
        double released_at = 0, got_at = 0;
        char *keys;
        int w;
        snprintf(canon, sizeof canon, "%s/l4/shared", prefix);
        lock_name(lname, sizeof lname, canon);
        CHECK_RC(etcd_lock(s, canon, 10, NULL, &idx), ETCD_OK, "C program locks");
        /* etcdctl runs the command once it holds the lock, then unlocks. */
        snprintf(args, sizeof args,
                 "lock '%s' -- sh -c 'echo \"GOT $ETCD_LOCK_KEY\"'", lname);
        etcdctl_cmd(cmd, sizeof cmd, args);
        if (helper_exec(&h, cmd) != 0) {
            CHECK(0, "start etcdctl lock");
        } else {
            w = helper_wait_for(&h, "GOT", 1500, NULL);
            CHECK(w == 0, "etcdctl lock still waits after 1.5 s while the C lock is held");
            if (w != 0)
                printf("     etcdctl said %s\n", show(h.out));
            /* The waiter is queued behind us under the same name. */
            keys = etcdctl_lock_keys(lname);
            CHECK_INT_EQ(count_lines(keys), 2, "holder and etcdctl's waiter under the lock name");
            free(keys);
            released_at = now();
            CHECK_RC(etcd_unlock(s, canon, idx), ETCD_OK, "C program unlocks");
            w = helper_wait_for(&h, "GOT", 5000, &got_at);
            CHECK(w == 1, "etcdctl gets the lock after the C unlock");
            if (w == 1) {
                char want[700];
                snprintf(want, sizeof want, "GOT %s/", lname);
                CHECK(strstr(h.out, want) != NULL, "etcdctl's lock key is under the same name");
                record(got_at - released_at < 2.0, __FILE__, __LINE__,
                       "etcdctl got the lock %.3f s after the unlock, want < 2 s",
                       got_at - released_at);
                printf("     (etcdctl got the lock %.3f s after the C unlock)\n",
                       got_at - released_at);
            } else {
                printf("     etcdctl said %s\n", show(h.out));
            }
            CHECK(exited_zero(helper_finish(&h, 5000)), "etcdctl lock exited 0");
        }
        free(idx);
        idx = NULL;
    }

    section("lock: a C lock waits for etcdctl", 30);
    {
        struct helper h;
        double held_at = 0, t0, took;
        etcd_result r;
        int w;
        snprintf(canon, sizeof canon, "%s/l4/other", prefix);
        lock_name(lname, sizeof lname, canon);
        snprintf(args, sizeof args,
                 "lock '%s' -- sh -c 'echo HELD; sleep 2; echo DONE'", lname);
        etcdctl_cmd(cmd, sizeof cmd, args);
        if (helper_exec(&h, cmd) != 0) {
            CHECK(0, "start etcdctl lock");
        } else {
            w = helper_wait_for(&h, "HELD", 5000, &held_at);
            CHECK(w == 1, "etcdctl holds the lock");
            if (w != 1)
                printf("     etcdctl said %s\n", show(h.out));
            t0 = now();
            r = etcd_lock(s, canon, 10, NULL, &idx);
            took = now() - t0;
            CHECK_RC(r, ETCD_OK, "C lock after etcdctl's");
            helper_wait_for(&h, "DONE", 0, NULL);
            CHECK(strstr(h.out, "DONE") != NULL, "etcdctl's command had finished when the C lock was granted");
            record(took >= 1.5 && took < 5.0, __FILE__, __LINE__,
                   "C etcd_lock took %.3f s while etcdctl held it for 2 s, want 1.5..5 s", took);
            printf("     (C etcd_lock waited %.3f s for etcdctl)\n", took);
            CHECK(exited_zero(helper_finish(&h, 5000)), "etcdctl lock exited 0");
            if (r == ETCD_OK && idx)
                CHECK_RC(etcd_unlock(s, canon, idx), ETCD_OK, "C unlock");
        }
        free(idx);
        idx = NULL;
    }
}

static void test_lock_more(etcd_session s)
{
    char canon[512], lname[600], args[1200];
    char *idx = NULL;

    if (proto_v2) {
        static const char why[] =
            "etcdctl lock speaks v3 only; v2 and v3 locks do not exclude each other "
            "(documented, checked in \"protocols: v2 and v3 stores are apart\")";
        skip("lock: etcdctl waits for a C lock", why);
        skip("lock: a C lock waits for etcdctl", why);
    } else {
        test_lock_etcdctl_v3(s);
    }

    section("lock: contention between processes", 30);
    {
        struct helper h;
        struct child_lock_args ca;
        char marker[512];
        double locked_at = 0, t0, got_at, u0 = 0, u1 = 0;
        etcd_result r;
        int w;
        snprintf(canon, sizeof canon, "%s/l5/proc", prefix);
        snprintf(marker, sizeof marker, "%s/l5/marker", prefix);
        ca.key = canon;
        ca.marker_key = marker;
        ca.ttl = 10;
        ca.hold_ms = 1500;
        if (helper_fork(&h, child_lock_hold, &ca) != 0) {
            CHECK(0, "fork the locking child");
        } else {
            w = helper_wait_for(&h, "L ", 5000, &locked_at);
            CHECK(w == 1, "child process took the lock");
            t0 = now();
            r = etcd_lock(s, canon, 10, NULL, &idx);
            got_at = now();
            CHECK_RC(r, ETCD_OK, "parent's etcd_lock");
            w = helper_wait_for(&h, "U ", 3000, NULL);
            CHECK(w == 1, "child reported its unlock");
            if (w == 1) {
                const char *u = strstr(h.out, "U ");
                if (sscanf(u, "U %lf %lf", &u0, &u1) != 2)
                    u0 = u1 = 0;
            }
            record(got_at - t0 >= 1.2, __FILE__, __LINE__,
                   "parent's etcd_lock blocked %.3f s, want >= 1.2 s", got_at - t0);
            CHECK(u0 > 0 && got_at >= u0, "parent got the lock only after the child began unlocking");
            record(u1 > 0 && got_at - u1 < 1.0, __FILE__, __LINE__,
                   "parent got the lock %.3f s after the child's unlock returned, want < 1 s",
                   got_at - u1);
            printf("     (parent blocked %.3f s; got it %.3f s after the child's unlock call began)\n",
                   got_at - t0, got_at - u0);
            CHECK_GET(s, marker, "child", "child's marker is there");
            CHECK(exited_zero(helper_finish(&h, 5000)), "child exited 0 (locked, marked, unlocked)");
            if (r == ETCD_OK && idx)
                CHECK_RC(etcd_unlock(s, canon, idx), ETCD_OK, "parent unlocks");
        }
        free(idx);
        idx = NULL;
    }

    section("lock: a killed waiter leaves nothing behind", 30);
    {
        struct helper h;
        struct child_lock_args ca;
        char holder[700], *keys = NULL, *listing = NULL;
        double killed_at, clean_after = -1;
        snprintf(canon, sizeof canon, "%s/l6/held", prefix);
        lock_name(lname, sizeof lname, canon);
        CHECK_RC(etcd_lock(s, canon, 10, NULL, &idx), ETCD_OK, "holder locks");
        lock_key(holder, sizeof holder, lname, idx ? idx : "?");
        ca.key = canon;
        ca.marker_key = NULL;
        ca.ttl = 3;
        ca.hold_ms = 0;
        if (helper_fork(&h, child_lock_wait, &ca) != 0) {
            CHECK(0, "fork the waiting child");
        } else {
            CHECK(helper_wait_for(&h, "W\n", 5000, NULL) == 1, "waiting child opened its session");
            sleep_ms(1000);
            helper_wait_for(&h, "GOT", 0, NULL);
            CHECK(strstr(h.out, "GOT") == NULL, "waiting child did not get a held lock");
            keys = etcdctl_lock_keys(lname);
            CHECK_INT_EQ(count_lines(keys), 2, "holder and the child's waiter under the lock name (etcdctl)");
            free(keys);
            /* etcd_get on the lock name lists its children (not hidden). */
            listing = etcd_get(s, lname);
            CHECK_INT_EQ(count_lines(listing), 2, "holder and waiter listed by etcd_get of the lock name");
            if (count_lines(listing) != 2)
                printf("     etcd_get(%s) = %s\n", lname, show(listing));
            free(listing);

            kill(h.pid, SIGKILL);
            killed_at = now();
            helper_finish(&h, 2000);
            while (now() - killed_at < 5.0) {
                listing = etcd_get(s, lname);
                if (listing && strcmp(listing, holder) == 0) {
                    clean_after = now() - killed_at;
                    free(listing);
                    break;
                }
                free(listing);
                sleep_ms(100);
            }
            record(clean_after >= 0, __FILE__, __LINE__,
                   "only the holder's key left within 5 s of killing the waiter");
            printf("     (waiter's key gone %.3f s after SIGKILL; its ttl was %u s)\n",
                   clean_after, ca.ttl);
            /* etcdctl prints each key (v3: then an empty line for its value). */
            keys = etcdctl_lock_keys(lname);
            snprintf(args, sizeof args, "%s\n", holder);
            CHECK(count_lines(keys) == 1 && strstr(keys, args) == keys, "etcdctl sees only the holder's key");
            if (!(count_lines(keys) == 1 && strstr(keys, args) == keys))
                printf("     etcdctl: %s\n", show(keys));
            free(keys);
            if (idx)
                CHECK_RC(etcd_unlock(s, canon, idx), ETCD_OK, "holder unlocks");
            keys = etcdctl_lock_keys(lname);
            CHECK_INT_EQ(count_lines(keys), 0, "nothing under the lock name after the unlock");
            free(keys);
        }
        free(idx);
        idx = NULL;
    }

    section("lock: an expired lock is lost", 30);
    {
        etcd_session s2 = open_str(endpoint);
        struct locker_job j;
        pthread_t th;
        char *out;
        double t0;
        CHECK(s2 != NULL, "open a second session");
        snprintf(canon, sizeof canon, "%s/l7/expiring", prefix);
        t0 = now();
        CHECK_RC(etcd_lock(s, canon, 2, NULL, &idx), ETCD_OK, "lock with ttl 2, never renewed");
        memset(&j, 0, sizeof j);
        pthread_mutex_init(&j.mu, NULL);
        j.s = s2;
        j.key = canon;
        j.ttl = 5;
        if (!s2 || pthread_create(&th, NULL, locker_main, &j) != 0) {
            CHECK(0, "start the second session's locker");
        } else {
            CHECK(locker_wait(&j, 6000), "second session gets the expired lock");
            pthread_join(th, NULL);
            CHECK_RC(j.r, ETCD_OK, "second session's etcd_lock");
            record(j.got_at - t0 >= 1.5 && j.got_at - t0 < 4.5, __FILE__, __LINE__,
                   "second session got it %.3f s after the ttl-2 lock, want 1.5..4.5 s",
                   j.got_at - t0);
            printf("     (second session got the expired lock %.3f s after the first lock)\n",
                   j.got_at - t0);
            if (idx) {
                out = NULL;
                CHECK_RC(etcd_lock(s, canon, 2, idx, &out), ETCD_PROTOCOL_ERROR, "renewing the expired lock");
                CHECK_ERRMSG("renewing the expired lock");
                free(out);
                CHECK_RC(etcd_unlock(s, canon, idx), ETCD_PROTOCOL_ERROR, "unlocking the expired lock");
                CHECK_ERRMSG("unlocking the expired lock");
            }
            if (j.idx) {
                CHECK_RC(etcd_unlock(s2, canon, j.idx), ETCD_OK, "second session unlocks");
            }
            free(j.idx);
        }
        pthread_mutex_destroy(&j.mu);
        free(idx);
        idx = NULL;
        etcd_close_str(s2);
    }
}

/* ------------------------------------------------------------------ */
/* Cases that came with the v2 protocol (run on both protocols)       */
/* ------------------------------------------------------------------ */

/*
 * What the store under test holds for key, via etcdctl (v3 or v2 API),
 * without the trailing newline etcdctl adds; NULL if etcdctl failed (v2's
 * etcdctl fails on a missing key, v3's prints nothing).
 */
static char *etcdctl_get(const char *api, const char *key)
{
    char args[1024], cmd[2048], *out;
    size_t len = 0;
    if (strcmp(api, "v2") == 0) {
        snprintf(args, sizeof args, "get '%s' 2>/dev/null", key);
        etcdctl2_cmd(cmd, sizeof cmd, args);
    } else {
        snprintf(args, sizeof args, "get --print-value-only '%s' 2>/dev/null", key);
        etcdctl_cmd(cmd, sizeof cmd, args);
    }
    out = run_capture(cmd, &len);
    if (out && len > 0 && out[len - 1] == '\n')
        out[len - 1] = '\0';
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * v2 sends values as form fields and keys in URLs: every character that
 * means something there must arrive as itself.  (The original library
 * sent them unencoded, joined with ';'.)
 */
static void test_special_chars(etcd_session s)
{
    static const char *const values[] = {
        "&", "=", "+", "%", ";", " ", "\n",
        "a&b=c", "a+b", "100%", "%41%2F%zz%", "a;b;c", "two  spaces  ", " leading",
        "line 1\nline 2\n", "\r\n\t", "k=v&k2=v2;k3=v+3 %20 x\ny",
        "?#/\\\"'<>", "&=+%; \n&=+%; \n",
    };
    static const char *const keys[] = {
        "/with space", "/q?x=1&y=2", "/pct%41%", "/hash#frag", "/all ?%#&=+;",
    };
    const size_t nv = sizeof values / sizeof values[0];
    const size_t nk = sizeof keys / sizeof keys[0];
    char key[512], val[64], want[2048], *got;
    const char *sorted[sizeof keys / sizeof keys[0]];
    size_t i;
    int ok = 0, base;

    section("values with & = + % ; spaces and newlines", 60);
    for (i = 0; i < nv; i++) {
        snprintf(key, sizeof key, "%s/chars/v%02zu", prefix, i);
        if (etcd_set(s, key, (char *)values[i], NULL, 0) != ETCD_OK) {
            printf("     set %s to %s failed: %s\n", key, show(values[i]), errmsg_or_null());
            continue;
        }
        got = etcd_get(s, key);
        if (got && strcmp(got, values[i]) == 0)
            ok++;
        else
            printf("     %s: set %s, got %s (%s)\n", key, show(values[i]), show(got),
                   errmsg_or_null());
        free(got);
    }
    CHECK_INT_EQ(ok, nv, "special-character values round-trip byte-exact");
    /* The witness: what etcd stored is that value, not an encoding of it. */
    snprintf(key, sizeof key, "%s/chars/v%02zu", prefix, nv - 3);
    got = etcdctl_get(proto_name, key);
    CHECK_STR_EQ(got, values[nv - 3], "etcdctl sees the special-character value as set");
    free(got);
    /* As a precondition, too. */
    CHECK_RC(etcd_set(s, K("/chars/cas"), "p&q=r+s%t;u v\nw", NULL, 0), ETCD_OK, "set a special-character value");
    CHECK_RC(etcd_set(s, K("/chars/cas"), "x", "p&q=r+s%t;u v\nW", 0), ETCD_PROTOCOL_ERROR,
             "CAS with a special-character precondition that differs in one byte");
    CHECK_RC(etcd_set(s, K("/chars/cas"), "next & last", "p&q=r+s%t;u v\nw", 0), ETCD_OK,
             "CAS with a matching special-character precondition");
    CHECK_GET(s, K("/chars/cas"), "next & last", "value after the special-character CAS");

    section("keys with spaces ? % # & = + ;", 60);
    base = watch_base();
    ok = 0;
    for (i = 0; i < nk; i++) {
        snprintf(key, sizeof key, "%s/ckeys%s", prefix, keys[i]);
        snprintf(val, sizeof val, "value %zu", i);
        if (etcd_set(s, key, val, NULL, 0) != ETCD_OK) {
            printf("     set %s failed: %s\n", show(key), errmsg_or_null());
            continue;
        }
        got = etcd_get(s, key);
        if (got && strcmp(got, val) == 0)
            ok++;
        else
            printf("     key %s: got %s (%s)\n", show(key), show(got), errmsg_or_null());
        free(got);
    }
    CHECK_INT_EQ(ok, nk, "special-character keys round-trip");
    /* Stored under exactly these names: etcd's listing and etcdctl say so. */
    memcpy(sorted, keys, sizeof sorted);
    qsort(sorted, nk, sizeof sorted[0], cmp_str);
    want[0] = '\0';
    for (i = 0; i < nk; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s/ckeys%s",
                 i ? "\n" : "", prefix, sorted[i]);
    CHECK_GET(s, K("/ckeys"), want, "listing of special-character keys: exact names, sorted");
    snprintf(key, sizeof key, "%s/ckeys%s", prefix, keys[nk - 1]);
    got = etcdctl_get(proto_name, key);
    snprintf(val, sizeof val, "value %zu", nk - 1);
    CHECK_STR_EQ(got, val, "etcdctl reads the key \"all ?%#&=+;\" by its name");
    free(got);
    {
        char *k = NULL, *v = NULL;
        int in = base, out = 0;
        snprintf(key, sizeof key, "%s/ckeys%s", prefix, keys[0]);
        CHECK_RC(etcd_watch(s, K("/ckeys"), &k, &v, &in, &out), ETCD_OK, "watch of special-character keys");
        CHECK_STR_EQ(k, key, "watch names the special-character key");
        CHECK_STR_EQ(v, "value 0", "watch gives its value");
        free(k);
        free(v);
    }
    ok = 0;
    for (i = 0; i < nk; i++) {
        etcd_result r;
        snprintf(key, sizeof key, "%s/ckeys%s", prefix, keys[i]);
        r = etcd_delete(s, key);
        got = etcd_get(s, key);
        if (r == ETCD_OK && !got)
            ok++;
        else
            printf("     delete %s: %s, then get %s\n", show(key), rc_name(r), show(got));
        free(got);
    }
    CHECK_INT_EQ(ok, nk, "special-character keys deleted");
}

/* Answers of 100 KiB and of 200 keys (chunked, on v2). */
static void test_big_answers(etcd_session s)
{
    static const char alphabet[] = "abcdefghij&=+%; \nKLM\"\\/\t";
    size_t n = 100 * 1024, i;
    char *big, *got, *want, key[512];
    int nkeys = 200, set_ok = 0;

    section("a 100 KiB value", 60);
    big = malloc(n + 1);
    if (!big)
        abort();
    for (i = 0; i < n; i++)
        big[i] = alphabet[(i * 7 + i / 101) % (sizeof alphabet - 1)];
    big[n] = '\0';
    CHECK_RC(etcd_set(s, K("/big/100k"), big, NULL, 0), ETCD_OK, "set a 100 KiB value");
    got = etcd_get(s, K("/big/100k"));
    CHECK(got && strlen(got) == n && memcmp(got, big, n) == 0, "100 KiB value round-trips byte-exact");
    if (got)
        CHECK_INT_EQ(strlen(got), n, "length of the 100 KiB value");
    free(got);
    free(big);

    section("a 200-key listing", 60);
    want = malloc((size_t)nkeys * 128);
    if (!want)
        abort();
    want[0] = '\0';
    /* Written out of order (37 is prime to 200): the listing sorts them. */
    for (i = 0; i < (size_t)nkeys; i++) {
        int j = (int)((i * 37) % (size_t)nkeys);
        char val[96];
        snprintf(key, sizeof key, "%s/many/k%03d", prefix, j);
        snprintf(val, sizeof val, "value of key %03d, long enough to make the answer big", j);
        if (etcd_set(s, key, val, NULL, 0) == ETCD_OK)
            set_ok++;
    }
    CHECK_INT_EQ(set_ok, nkeys, "200 keys set");
    for (i = 0; i < (size_t)nkeys; i++)
        sprintf(want + strlen(want), "%s%s/many/k%03zu", i ? "\n" : "", prefix, i);
    got = etcd_get(s, K("/many"));
    CHECK(got && strcmp(got, want) == 0, "listing of 200 keys: all of them, sorted, nothing else");
    if (!(got && strcmp(got, want) == 0))
        printf("     got %s, want %s (%s)\n", show(got), show(want), errmsg_or_null());
    CHECK_INT_EQ(count_lines(got), nkeys, "lines in the 200-key listing");
    free(got);
    free(want);
}

/*
 * v2 has directories: a key below one holding a value, or a value on a
 * directory, is refused ("Not a directory" / "Not a file").  v3's keys
 * are flat: both are fine there.
 */
static void test_nested_values(etcd_session s)
{
    char want[512];

    section(proto_v2 ? "v2 directories: values and keys below them" : "keys below a key with a value (v3: flat keys)", 30);
    CHECK_RC(etcd_set(s, K("/nest/f"), "file", NULL, 0), ETCD_OK, "set nest/f");
    CHECK_RC(etcd_set(s, K("/nest/d/x"), "x", NULL, 0), ETCD_OK, "set nest/d/x");
    snprintf(want, sizeof want, "%s/nest/d/x", prefix);
    if (proto_v2) {
        CHECK_RC(etcd_set(s, K("/nest/f/child"), "c", NULL, 0), ETCD_PROTOCOL_ERROR, "v2: a key below a key with a value is refused");
        CHECK_ERRMSG("v2: a key below a key with a value");
        CHECK_GET_NULL(s, K("/nest/f/child"), "v2: ... and not stored");
        CHECK_GET(s, K("/nest/f"), "file", "v2: ... and the value above is intact");
        CHECK_RC(etcd_set(s, K("/nest/d"), "v", NULL, 0), ETCD_PROTOCOL_ERROR, "v2: a value on a directory is refused");
        CHECK_ERRMSG("v2: a value on a directory");
        CHECK_GET(s, K("/nest/d"), want, "v2: ... and the directory still lists its child");
    } else {
        CHECK_RC(etcd_set(s, K("/nest/f/child"), "c", NULL, 0), ETCD_OK, "v3: a key below a key with a value");
        CHECK_GET(s, K("/nest/f/child"), "c", "v3: ... reads back");
        CHECK_GET(s, K("/nest/f"), "file", "v3: ... and the value above is intact");
        CHECK_RC(etcd_set(s, K("/nest/d"), "v", NULL, 0), ETCD_OK, "v3: a value on a key with children");
        CHECK_GET(s, K("/nest/d"), "v", "v3: ... its value, not the listing, reads back");
    }
}

/*
 * A session with the other protocol: the library reads ETCDAPI_PROTOCOL
 * when a session opens, so set it for that open and restore it after.
 */
static etcd_session open_with_protocol(const char *proto)
{
    const char *old = getenv("ETCDAPI_PROTOCOL");
    char *saved = old ? strdup(old) : NULL;
    etcd_session o;
    setenv("ETCDAPI_PROTOCOL", proto, 1);
    o = open_str(endpoint);
    if (saved) {
        setenv("ETCDAPI_PROTOCOL", saved, 1);
        free(saved);
    } else {
        unsetenv("ETCDAPI_PROTOCOL");
    }
    return o;
}

/* The v2 and v3 stores are apart (documented), and so are their locks. */
static void test_protocols_apart(etcd_session s)
{
    const char *other = proto_v2 ? "v3" : "v2";
    char *env_before = getenv("ETCDAPI_PROTOCOL") ? strdup(getenv("ETCDAPI_PROTOCOL")) : NULL;
    etcd_session o, bad;
    /* Which session writes through which API. */
    etcd_session sv2, sv3;
    char *got, want[512], canon[512];

    section("protocols: v2 and v3 stores are apart", 60);
    o = open_with_protocol(other);
    CHECK(o != NULL, "open a session with the other protocol");
    CHECK_STR_EQ(getenv("ETCDAPI_PROTOCOL"), env_before, "ETCDAPI_PROTOCOL restored after that open");
    free(env_before);
    bad = open_with_protocol("v4");
    CHECK(bad == NULL, "ETCDAPI_PROTOCOL=v4: etcd_open_str is NULL");
    CHECK(etcd_errmsg() && strstr(etcd_errmsg(), "ETCDAPI_PROTOCOL"), "... and its errmsg names ETCDAPI_PROTOCOL");
    if (bad)
        etcd_close_str(bad);
    if (!o)
        return;
    sv2 = proto_v2 ? s : o;
    sv3 = proto_v2 ? o : s;

    CHECK_RC(etcd_set(sv2, K("/xp/from-v2"), "written over v2", NULL, 0), ETCD_OK, "set over v2");
    CHECK_RC(etcd_set(sv3, K("/xp/from-v3"), "written over v3", NULL, 0), ETCD_OK, "set over v3");
    CHECK_GET(sv2, K("/xp/from-v2"), "written over v2", "v2 session reads its own key");
    CHECK_GET(sv3, K("/xp/from-v3"), "written over v3", "v3 session reads its own key");
    CHECK_GET_NULL(sv3, K("/xp/from-v2"), "a key written over v2 is not visible over v3");
    CHECK_GET_NULL(sv2, K("/xp/from-v3"), "a key written over v3 is not visible over v2");

    /* One name, two keys. */
    CHECK_RC(etcd_set(sv2, K("/xp/both"), "v2 value", NULL, 0), ETCD_OK, "set xp/both over v2");
    CHECK_RC(etcd_set(sv3, K("/xp/both"), "v3 value", NULL, 0), ETCD_OK, "set xp/both over v3");
    CHECK_GET(sv2, K("/xp/both"), "v2 value", "xp/both over v2 has v2's value");
    CHECK_GET(sv3, K("/xp/both"), "v3 value", "xp/both over v3 has v3's value");
    snprintf(want, sizeof want, "%s/xp/both\n%s/xp/from-v2", prefix, prefix);
    CHECK_GET(sv2, K("/xp"), want, "listing over v2: v2's keys only");
    snprintf(want, sizeof want, "%s/xp/both\n%s/xp/from-v3", prefix, prefix);
    CHECK_GET(sv3, K("/xp"), want, "listing over v3: v3's keys only");
    CHECK_RC(etcd_delete(sv3, K("/xp/from-v2")), ETCD_PROTOCOL_ERROR, "v3 cannot delete v2's key (none there)");
    CHECK_GET(sv2, K("/xp/from-v2"), "written over v2", "v2's key survives a v3 delete");

    /* etcdctl agrees: each API sees its own store. */
    got = etcdctl_get("v2", K("/xp/from-v2"));
    CHECK_STR_EQ(got, "written over v2", "etcdctl (v2 API) sees the v2 key");
    free(got);
    got = etcdctl_get("v3", K("/xp/from-v2"));
    CHECK_STR_EQ(got, "", "etcdctl (v3 API) does not see the v2 key");
    free(got);
    got = etcdctl_get("v3", K("/xp/from-v3"));
    CHECK_STR_EQ(got, "written over v3", "etcdctl (v3 API) sees the v3 key");
    free(got);
    got = etcdctl_get("v2", K("/xp/from-v3"));
    CHECK_NULL(got, "etcdctl (v2 API) does not see the v3 key (Key not found)");
    free(got);

    /* Locks of one name over v2 and over v3 do not exclude each other. */
    snprintf(canon, sizeof canon, "%s/xp/lock", prefix);
    check_locks_independent(s, canon, o, canon, "one name over v2 and over v3");
    etcd_close_str(o);
}

struct burst_job {
    etcd_session s;
    char key[300];
    int n, ok;
};

static void *burst_main(void *arg)
{
    struct burst_job *b = arg;
    char val[32];
    int i;
    for (i = 0; i < b->n; i++) {
        snprintf(val, sizeof val, "%d", i);
        if (etcd_set(b->s, b->key, val, NULL, 0) == ETCD_OK)
            b->ok++;
    }
    return NULL;
}

/* 1000 changes watched while they are written: no gap, no repeat. */
static void test_watch_live_1000(etcd_session s)
{
    struct burst_job b;
    pthread_t th;
    int i, in, out = 0, last = 0, seen_ok = 0, order_ok = 1, n = 1000;
    char *k, *v, want[32];
    double t0;

    section("watch: 1000 changes while they are written", 120);
    memset(&b, 0, sizeof b);
    b.s = s;
    b.n = n;
    snprintf(b.key, sizeof b.key, "%s/w7/k", prefix);
    in = watch_base();
    if (pthread_create(&th, NULL, burst_main, &b) != 0) {
        CHECK(0, "start the writer thread");
        return;
    }
    t0 = now();
    for (i = 0; i < n; i++) {
        etcd_result r;
        k = v = NULL;
        r = etcd_watch(s, K("/w7"), &k, &v, &in, &out);
        if (r != ETCD_OK) {
            CHECK_RC(r, ETCD_OK, "watch while the writer writes");
            break;
        }
        snprintf(want, sizeof want, "%d", i);
        if (k && v && strcmp(k, b.key) == 0 && strcmp(v, want) == 0)
            seen_ok++;
        else if (seen_ok == i)
            printf("     live #%d: got %s = %s, want %s = %s\n", i, show(k), show(v), b.key, want);
        if (out <= last)
            order_ok = 0;
        last = out;
        in = out + 1;
        free(k);
        free(v);
    }
    pthread_join(th, NULL);
    printf("     (watched %d changes as they were written, in %.2f s)\n", seen_ok, now() - t0);
    CHECK_INT_EQ(b.ok, n, "writer's sets");
    CHECK_INT_EQ(seen_ok, n, "every change seen once, in order (no gap, no repeat)");
    CHECK(order_ok, "indexes strictly increase");
}

/* The watch/lock calls come in a later issue: skip them while they say so. */
static int watch_lock_available(etcd_session s)
{
    char *idx = NULL;
    etcd_result r;
    const char *m;

    section("watch/lock availability", 30);
    r = etcd_lock(s, K("/probe"), 5, NULL, &idx);
    m = etcd_errmsg();
    if (r == ETCD_WTF && m && strstr(m, "not available")) {
        free(idx);
        return 0;
    }
    CHECK_RC(r, ETCD_OK, "probe lock");
    if (r == ETCD_OK && idx)
        CHECK_RC(etcd_unlock(s, K("/probe"), idx), ETCD_OK, "probe unlock");
    free(idx);
    return 1;
}

/* ------------------------------------------------------------------ */

static int parse_endpoint(const char *ep)
{
    const char *colon;
    char *end;
    unsigned long port;
    size_t hl;
    if (!ep || !*ep || strlen(ep) >= sizeof endpoint)
        return -1;
    snprintf(endpoint, sizeof endpoint, "%s", ep);
    /* https://host:port (a TLS etcd; certificates from ETCDAPI_*). */
    snprintf(ep_url, sizeof ep_url, "%s%s", strstr(ep, "://") ? "" : "http://", ep);
    if (strstr(ep, "://"))
        ep = strstr(ep, "://") + 3;
    colon = strrchr(ep, ':');
    if (!colon)
        return -1;
    hl = (size_t)(colon - ep);
    if (hl == 0 || hl >= sizeof ep_host)
        return -1;
    memcpy(ep_host, ep, hl);
    ep_host[hl] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno || *end || port == 0 || port > 65535)
        return -1;
    ep_port = (unsigned short)port;
    return 0;
}

int main(void)
{
    etcd_session s;
    pthread_t wd;
    char cmd[1024], args[256];

    if (parse_endpoint(getenv("ETCDAPI_TEST_ENDPOINT")) != 0) {
        fprintf(stderr, "harness: set ETCDAPI_TEST_ENDPOINT=[https://]host:port "
                "(run it as: c-tests/etcd-local run -- build/harness)\n");
        return 2;
    }
    {
        /* As the library reads it: case-insensitive, empty is v3. */
        const char *p = getenv("ETCDAPI_PROTOCOL");
        if (!p || !*p || strcasecmp(p, "v3") == 0) {
            proto_v2 = 0;
            proto_name = "v3";
        } else if (strcasecmp(p, "v2") == 0) {
            proto_v2 = 1;
            proto_name = "v2";
        } else {
            fprintf(stderr, "harness: ETCDAPI_PROTOCOL=%s: expected v2 or v3\n", p);
            return 2;
        }
    }
    snprintf(prefix, sizeof prefix, "/harness-%ld-%ld",
             (long)getpid(), (long)time(NULL));
    printf("harness: protocol %s (ETCDAPI_PROTOCOL=%s), etcd at %s, keys under %s\n",
           proto_name, getenv("ETCDAPI_PROTOCOL") ? getenv("ETCDAPI_PROTOCOL") : "unset",
           endpoint, prefix);
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    if (pthread_create(&wd, NULL, watchdog_main, NULL) != 0) {
        fprintf(stderr, "harness: cannot start watchdog thread\n");
        return 2;
    }

    test_open();

    s = open_str(endpoint);
    CHECK(s != NULL, "open the shared session");
    if (!s) {
        print_summary_locked();
        return 1;
    }
    test_set_get(s);
    test_listing(s);
    test_cas(s);
    test_ttl(s);
    test_delete(s);
    test_leader(s);
    test_null_args(s);
    test_dead_servers();
    test_interop(s);
    test_threads(s);
    test_big_answers(s);
    test_nested_values(s);

    if (watch_lock_available(s)) {
        /* Before test_watch_more: its v3 compaction ends replays from 1. */
        test_special_chars(s);
        test_watch(s);
        test_watch_live_1000(s);
        test_watch_more(s);
        test_lock(s);
        test_lock_more(s);
        test_protocols_apart(s);
    } else {
        printf("SKIP watch/lock: not available yet\n");
    }

    etcd_close_str(s);

    /* Best effort: leave the (throw-away) etcd tidy for reruns; both
     * stores, as "protocols" writes through both. */
    watchdog_arm(30, "cleanup");
    snprintf(args, sizeof args, "del --prefix %s/ >/dev/null 2>&1", prefix);
    etcdctl_cmd(cmd, sizeof cmd, args);
    free(run_capture(cmd, NULL));
    snprintf(args, sizeof args, "rm --recursive %s >/dev/null 2>&1", prefix);
    etcdctl2_cmd(cmd, sizeof cmd, args);
    free(run_capture(cmd, NULL));

    pthread_mutex_lock(&report_mu);
    print_summary_locked();
    pthread_mutex_unlock(&report_mu);
    return failed ? 1 : 0;
}
