/*
 * signals: every call succeeds while the calling thread takes signals.
 *
 *     ETCDAPI_PROTOCOL=v3 c-tests/etcd-local run -- build/signals
 *     ETCDAPI_PROTOCOL=v2 c-tests/etcd-local run -- build/signals
 *
 * C daemons take signals while they call us (interval timers, SIGCHLD,
 * SIGHUP, profilers), often from handlers installed without SA_RESTART,
 * so a system call they interrupt fails with EINTR unless it is retried.
 * Here the main thread takes a SIGALRM every 2 ms (setitimer, a handler
 * installed by sigaction without SA_RESTART) while it runs, on one
 * session: 200 sets, 200 gets (values checked), a watch that waits
 * (another thread writes after 300 ms), an uncontended lock, a renew and
 * an unlock, and a lock wait (another thread holds the lock for 500 ms).
 * The helper threads and the watchdog block SIGALRM; the library's own
 * threads, started from the main thread, take it as the main thread does.
 * The last line is "N passed, N failed"; the exit status is 1 if
 * anything failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "check.h"

#define TICK_US 2000

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

/* SIGALRM every TICK_US from now on (0: stop), handled without SA_RESTART. */
static void alarm_every(long us)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_interval.tv_usec = us;
    it.it_value.tv_usec = us;
    setitimer(ITIMER_REAL, &it, NULL);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls fail with EINTR */
    sigaction(SIGALRM, &sa, NULL);
}

/* Starts fn(arg) on a thread that never takes SIGALRM. */
static pthread_t start_helper(void *(*fn)(void *), void *arg)
{
    sigset_t alrm, old;
    pthread_t th;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, &old);
    if (pthread_create(&th, NULL, fn, arg) != 0) {
        perror("pthread_create");
        exit(2);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return th;
}

/* ---------------------------------------------------------------- sets and gets */

static void sets_and_gets(etcd_session s)
{
    int i, set_fails = 0, get_fails = 0;
    unsigned before = (unsigned)ticks;
    section("200 sets, 200 gets", 120);
    for (i = 0; i < 200; i++) {
        char *key = K(fmt_rot("/kv/%d", i));
        char *value = fmt_rot("value-%d", i);
        etcd_result r = etcd_set(s, key, value, NULL, 0);
        if (r != ETCD_OK && set_fails++ < 3)
            CHECK_RC(r, ETCD_OK, fmt_rot("set %d", i));
    }
    CHECK_INT_EQ(set_fails, 0, "sets that failed");
    for (i = 0; i < 200; i++) {
        char *key = K(fmt_rot("/kv/%d", i));
        char *want = fmt_rot("value-%d", i);
        char *got = etcd_get(s, key);
        if ((!got || strcmp(got, want) != 0) && get_fails++ < 3)
            CHECK_STR_EQ(got, want, fmt_rot("get %d", i));
        free(got);
    }
    CHECK_INT_EQ(get_fails, 0, "gets that failed or read a wrong value");
    printf("   %u signals taken during the sets and gets\n", (unsigned)ticks - before);
}

/* ---------------------------------------------------------------- a waiting watch */

struct writer {
    char key[256];
    etcd_result rc;
};

static void *write_later(void *arg)
{
    struct writer *w = arg;
    etcd_session s = etcd_open_str(endpoint);
    sleep_ms(300);
    w->rc = s ? etcd_set(s, w->key, "woken", NULL, 0) : ETCD_WTF;
    etcd_close(s);
    return NULL;
}

static void waiting_watch(etcd_session s)
{
    struct writer w;
    char *k = NULL, *v = NULL;
    int out = 0;
    double t0;
    unsigned before = (unsigned)ticks;
    pthread_t th;
    section("a watch that waits 300 ms", 30);
    snprintf(w.key, sizeof w.key, "%s", K("/watched/k"));
    w.rc = ETCD_WTF;
    th = start_helper(write_later, &w);
    t0 = now();
    CHECK_RC(etcd_watch(s, K("/watched"), &k, &v, NULL, &out), ETCD_OK, "watch");
    pthread_join(th, NULL);
    CHECK_RC(w.rc, ETCD_OK, "the writer's set");
    CHECK_STR_EQ(k, w.key, "watched key");
    CHECK_STR_EQ(v, "woken", "watched value");
    CHECK(out > 0, "watch index > 0");
    printf("   waited %.0f ms, %u signals taken\n", (now() - t0) * 1000,
           (unsigned)ticks - before);
    free(k);
    free(v);
}

/* ---------------------------------------------------------------- locks */

static void uncontended_lock(etcd_session s)
{
    char *idx = NULL, *out = NULL;
    unsigned before = (unsigned)ticks;
    section("an uncontended lock, renew, unlock", 30);
    CHECK_RC(etcd_lock(s, K("/lock/free"), 10, NULL, &idx), ETCD_OK, "lock");
    if (idx) {
        CHECK_RC(etcd_lock(s, K("/lock/free"), 10, idx, &out), ETCD_OK, "renew");
        CHECK_RC(etcd_unlock(s, K("/lock/free"), idx), ETCD_OK, "unlock");
    }
    printf("   %u signals taken\n", (unsigned)ticks - before);
    free(idx);
    free(out);
}

struct holder {
    char key[256];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int held;           /* 1 once locked (-1: the lock failed) */
    double released_at;
    etcd_result unlock_rc;
};

static void *hold_500ms(void *arg)
{
    struct holder *h = arg;
    char *idx = NULL;
    etcd_session s = etcd_open_str(endpoint);
    etcd_result r = s ? etcd_lock(s, h->key, 10, NULL, &idx) : ETCD_WTF;
    pthread_mutex_lock(&h->mu);
    h->held = r == ETCD_OK ? 1 : -1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (r == ETCD_OK) {
        sleep_ms(500);
        h->released_at = now();
        h->unlock_rc = etcd_unlock(s, h->key, idx);
    }
    free(idx);
    etcd_close(s);
    return NULL;
}

static void lock_wait(etcd_session s)
{
    struct holder h;
    char *idx = NULL;
    double t0, t1;
    unsigned before;
    pthread_t th;
    section("a lock wait (held 500 ms by another thread)", 30);
    memset(&h, 0, sizeof h);
    snprintf(h.key, sizeof h.key, "%s", K("/lock/held"));
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    h.unlock_rc = ETCD_WTF;
    th = start_helper(hold_500ms, &h);
    /* pthread_cond_wait does not return EINTR; a wake-up is re-checked. */
    pthread_mutex_lock(&h.mu);
    while (h.held == 0)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    CHECK_INT_EQ(h.held, 1, "the holder took the lock");
    before = (unsigned)ticks;
    t0 = now();
    CHECK_RC(etcd_lock(s, h.key, 10, NULL, &idx), ETCD_OK, "lock wait");
    t1 = now();
    pthread_join(th, NULL);
    CHECK_RC(h.unlock_rc, ETCD_OK, "the holder's unlock");
    CHECK(h.held == 1 && t1 >= h.released_at,
          "the lock was granted only after the holder released it");
    if (idx)
        CHECK_RC(etcd_unlock(s, h.key, idx), ETCD_OK, "unlock after the wait");
    printf("   waited %.0f ms, %u signals taken\n", (t1 - t0) * 1000,
           (unsigned)ticks - before);
    free(idx);
    pthread_mutex_destroy(&h.mu);
    pthread_cond_destroy(&h.cv);
}

int main(void)
{
    const char *ep = getenv("ETCDAPI_TEST_ENDPOINT");
    const char *proto = getenv("ETCDAPI_PROTOCOL");
    etcd_session s;
    sigset_t alrm, old;
    if (!ep) {
        fprintf(stderr, "signals: run it as c-tests/etcd-local run -- build/signals\n");
        return 2;
    }
    snprintf(endpoint, sizeof endpoint, "%s", ep);
    if (proto && strcmp(proto, "v2") == 0) {
        proto_v2 = 1;
        proto_name = "v2";
    }
    set_prefix("signals");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("signals: etcd at %s over %s, keys under %s, SIGALRM every %d us\n", endpoint,
           proto_name, prefix, TICK_US);

    /* The watchdog never takes SIGALRM (its sleeps would only loop). */
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, &old);
    if (watchdog_start() != 0) {
        fprintf(stderr, "signals: cannot start the watchdog\n");
        return 2;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    install_handler();
    alarm_every(TICK_US);

    s = etcd_open_str(endpoint);
    CHECK(s != NULL, "open a session");
    if (s) {
        sets_and_gets(s);
        waiting_watch(s);
        uncontended_lock(s);
        lock_wait(s);
        etcd_close(s);
    }
    alarm_every(0);
    printf("   %u signals taken in all\n", (unsigned)ticks);
    CHECK(ticks > 100, "the main thread took signals while it called");
    return finish();
}
