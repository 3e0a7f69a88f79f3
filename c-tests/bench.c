/*
 * bench: a rough benchmark of libetcdapi through its public C API only.
 *
 *     c-tests/etcd-local run -- build/bench [-n N] [-t threads]
 *     ETCDAPI_PROTOCOL=v2 c-tests/etcd-local run -- build/bench   (v2 API)
 *
 * N sequential sets, N sequential gets (every value checked); then N
 * sessions used once each: etcd_open_str + etcd_get + etcd_close, as
 * lookup functions and plugins do, first beside the kept session (which
 * shares its connections), then "alone": with settings no other session
 * has (a request time-out 1 ms longer), so that nothing is kept between
 * two of them unless the library keeps it; then N sequential deletes;
 * then set, get and delete with T threads sharing one session and
 * splitting the N keys between them.  Each phase prints one line: phase,
 * ops, seconds, ops/s, p50 and p99 latency in microseconds (each call
 * timed with CLOCK_MONOTONIC), and the client's own CPU time per call
 * (user + system of this process, from getrusage).  The first line names
 * the protocol (ETCDAPI_PROTOCOL, as the library reads it: v3 unless it
 * says v2).
 * There is no pass/fail on speed; the exit status is 1 only if a call
 * failed or a value read back was wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "etcd-api.h"

enum op { OP_SET, OP_GET, OP_DELETE, OP_OPEN_GET };
static const char *const op_names[] = { "set", "get", "delete", "open+get+close" };

static etcd_session session;
static char *servers;           /* etcd_open_str takes a char * */
static char prefix[64];         /* "/bench-<pid>-<time>" */
static int nops;
static double *lat_us;          /* one slot per key: threads never share one */

/* Failures across all phases; updated by worker threads. */
static pthread_mutex_t count_mu = PTHREAD_MUTEX_INITIALIZER;
static long errors, mismatches;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void key_of(char *buf, size_t n, int i)
{
    snprintf(buf, n, "%s/k%06d", prefix, i);
}

/* ~100 bytes, different for every key, so a mix-up cannot go unnoticed. */
static void value_of(char *buf, size_t n, int i)
{
    snprintf(buf, n, "value-%06d-%08x-abcdefghijklmnopqrstuvwxyz-"
             "ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789-%06d",
             i, (unsigned)i * 2654435761u, i);
}

static void note_failure(int is_mismatch, const char *what, int i)
{
    const char *m = etcd_errmsg();
    pthread_mutex_lock(&count_mu);
    if (is_mismatch)
        mismatches++;
    else
        errors++;
    /* Print the first few only: one broken phase must not flood. */
    if (errors + mismatches <= 10)
        fprintf(stderr, "bench: %s key #%d failed: %s\n", what, i,
                m && *m ? m : "(no message)");
    pthread_mutex_unlock(&count_mu);
}

/* Run op on keys first, first+stride, ... below nops, timing each call. */
static void run_ops(enum op op, int first, int stride)
{
    char key[128], want[256];
    int i;
    for (i = first; i < nops; i += stride) {
        double t0;
        key_of(key, sizeof key, i);
        value_of(want, sizeof want, i);
        t0 = now();
        switch (op) {
        case OP_SET:
            if (etcd_set(session, key, want, NULL, 0) != ETCD_OK) {
                lat_us[i] = (now() - t0) * 1e6;
                note_failure(0, "set", i);
                continue;
            }
            break;
        case OP_GET:
        case OP_OPEN_GET: {
            char *got;
            if (op == OP_GET) {
                got = etcd_get(session, key);
            } else {
                etcd_session once = etcd_open_str(servers);
                got = once ? etcd_get(once, key) : NULL;
                etcd_close(once);
            }
            lat_us[i] = (now() - t0) * 1e6;
            if (!got)
                note_failure(0, op_names[op], i);
            else if (strcmp(got, want) != 0)
                note_failure(1, op == OP_GET ? "get (wrong value)" : "open+get+close (wrong value)", i);
            free(got);
            continue;
        }
        case OP_DELETE:
            if (etcd_delete(session, key) != ETCD_OK) {
                lat_us[i] = (now() - t0) * 1e6;
                note_failure(0, "delete", i);
                continue;
            }
            break;
        }
        lat_us[i] = (now() - t0) * 1e6;
    }
}

struct worker {
    pthread_t th;
    enum op op;
    int first, stride;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    run_ops(w->op, w->first, w->stride);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *sorted, int n, double p)
{
    int rank;
    if (n <= 0)
        return 0;
    rank = (int)(p / 100.0 * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* This process's CPU time so far (user + system, all threads), seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
         + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* threads == 0: sequential on this thread; otherwise that many workers.
 * label: the phase's name, if not the op's. */
static void phase(enum op op, int threads, const char *label)
{
    char name[32];
    double t0, c0, secs, cpu;
    int i;

    c0 = cpu_seconds();
    t0 = now();
    if (threads == 0) {
        run_ops(op, 0, 1);
        snprintf(name, sizeof name, "%s", label ? label : op_names[op]);
    } else {
        struct worker *w = calloc((size_t)threads, sizeof *w);
        int started = 0;
        if (!w) {
            perror("bench");
            exit(1);
        }
        for (i = 0; i < threads; i++) {
            w[i].op = op;
            w[i].first = i;
            w[i].stride = threads;
            if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
                fprintf(stderr, "bench: pthread_create failed\n");
                exit(1);
            }
            started++;
        }
        for (i = 0; i < started; i++)
            pthread_join(w[i].th, NULL);
        free(w);
        snprintf(name, sizeof name, "%s x%d", op_names[op], threads);
    }
    secs = now() - t0;
    cpu = cpu_seconds() - c0;

    qsort(lat_us, (size_t)nops, sizeof lat_us[0], cmp_double);
    printf("%-20s %7d %8.3f %9.1f %8.0f %8.0f %10.1f\n", name, nops, secs,
           secs > 0 ? nops / secs : 0.0,
           percentile(lat_us, nops, 50), percentile(lat_us, nops, 99),
           cpu * 1e6 / nops);
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench [-n N] [-t threads]   (endpoint from $ETCDAPI_TEST_ENDPOINT)\n");
    exit(2);
}

static int parse_pos(const char *s, int max)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > max)
        usage();
    return (int)v;
}

int main(int argc, char **argv)
{
    const char *ep = getenv("ETCDAPI_TEST_ENDPOINT");
    const char *proto = getenv("ETCDAPI_PROTOCOL");
    const char *timeout_env = getenv("ETCDAPI_REQUEST_TIMEOUT_MS");
    char timeout[32] = "", alone[32];
    int threads = 4, c;

    nops = 2000;
    while ((c = getopt(argc, argv, "n:t:")) != -1) {
        switch (c) {
        case 'n': nops = parse_pos(optarg, 10000000); break;
        case 't': threads = parse_pos(optarg, 1024); break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    if (!ep || !*ep) {
        fprintf(stderr, "bench: set ETCDAPI_TEST_ENDPOINT=host:port "
                "(run it as: c-tests/etcd-local run -- build/bench)\n");
        return 2;
    }

    servers = strdup(ep);       /* etcd_open_str takes a char * */
    lat_us = calloc((size_t)nops, sizeof *lat_us);
    if (!servers || !lat_us) {
        perror("bench");
        return 1;
    }
    session = etcd_open_str(servers);
    if (!session) {
        fprintf(stderr, "bench: etcd_open_str(%s) failed: %s\n", ep, etcd_errmsg());
        return 1;
    }
    snprintf(prefix, sizeof prefix, "/bench-%ld-%ld", (long)getpid(), (long)time(NULL));

    /* An unknown value made etcd_open_str fail above. */
    printf("bench: protocol %s (ETCDAPI_PROTOCOL=%s)\n",
           proto && strcasecmp(proto, "v2") == 0 ? "v2" : "v3", proto ? proto : "unset");
    printf("bench: %d ops per phase, %d threads, etcd at %s\n", nops, threads, ep);
    printf("%-20s %7s %8s %9s %8s %8s %10s\n", "phase", "ops", "seconds", "ops/s",
           "p50(us)", "p99(us)", "cpu(us/op)");
    phase(OP_SET, 0, NULL);
    phase(OP_GET, 0, NULL);
    phase(OP_OPEN_GET, 0, NULL);
    /* Settings no other session has: nothing shared with the kept one. */
    if (timeout_env)
        snprintf(timeout, sizeof timeout, "%s", timeout_env);
    snprintf(alone, sizeof alone, "%ld", (*timeout ? strtol(timeout, NULL, 10) : 5000) + 1);
    setenv("ETCDAPI_REQUEST_TIMEOUT_MS", alone, 1);
    phase(OP_OPEN_GET, 0, "open+get+close alone");
    if (*timeout)
        setenv("ETCDAPI_REQUEST_TIMEOUT_MS", timeout, 1);
    else
        unsetenv("ETCDAPI_REQUEST_TIMEOUT_MS");
    phase(OP_DELETE, 0, NULL);
    phase(OP_SET, threads, NULL);
    phase(OP_GET, threads, NULL);
    phase(OP_DELETE, threads, NULL);

    etcd_close_str(session);
    free(servers);
    free(lat_us);

    printf("errors: %ld, wrong values: %ld\n", errors, mismatches);
    return (errors || mismatches) ? 1 : 0;
}
