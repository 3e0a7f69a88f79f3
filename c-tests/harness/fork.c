/*
 * fork.c: the harness's sections on the process's connections: a session
 * used before fork() and then by parent and child at once (every value
 * checked on both sides); a fork while another thread of the parent waits
 * in a watch; sessions opened and closed per call sharing the process's
 * connections; a careless program releasing its sessions with free().
 *
 * Sockets are counted in /proc/self/fd.  Under valgrind (make memcheck
 * sets ETCDAPI_TEST_VALGRIND=1) the forked processes do fewer calls; the
 * checks are the same.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int under_valgrind(void)
{
    const char *v = getenv("ETCDAPI_TEST_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

/* ------------------------------------------------------------------ */
/* Sockets of this process                                            */
/* ------------------------------------------------------------------ */

#define MAX_SOCKETS 512

/* The socket inodes open in this process ("socket:[N]" in /proc/self/fd);
 * their number, or -1 if /proc cannot be read. */
static int socket_inodes(unsigned long *out, int max)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], link[64];
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        ssize_t len;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        len = readlink(path, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strncmp(link, "socket:[", 8) == 0 && n < max)
            out[n++] = strtoul(link + 8, NULL, 10);
    }
    closedir(d);
    return n;
}

static int socket_count(void)
{
    unsigned long ino[MAX_SOCKETS];
    return socket_inodes(ino, MAX_SOCKETS);
}

static int has_inode(const unsigned long *set, int n, unsigned long ino)
{
    int i;
    for (i = 0; i < n; i++)
        if (set[i] == ino)
            return 1;
    return 0;
}

/* Sockets open now that are in neither `before` nor `seen`: added to seen. */
static void note_new_sockets(const unsigned long *before, int nbefore,
                             unsigned long *seen, int *nseen)
{
    unsigned long cur[MAX_SOCKETS];
    int n = socket_inodes(cur, MAX_SOCKETS), i;
    for (i = 0; i < n; i++)
        if (!has_inode(before, nbefore, cur[i]) && !has_inode(seen, *nseen, cur[i])
                && *nseen < MAX_SOCKETS)
            seen[(*nseen)++] = cur[i];
}

/* ------------------------------------------------------------------ */
/* One session, parent and child at once                              */
/* ------------------------------------------------------------------ */

struct tally {
    int ok, wrong, failed;
};

/* The value `who` stores under key i: differs per key and per process. */
static void hammer_kv(char *key, size_t kn, char *val, size_t vn,
                      const char *dir, const char *who, int i)
{
    snprintf(key, kn, "%s/%s/%s/%03d", prefix, dir, who, i);
    snprintf(val, vn, "%s-%ld-%03d-%08x", who, (long)getpid(), i,
             (unsigned)i * 2654435761u);
}

/* n sets, each read back at once; counted in t.  Any thread or process. */
static void hammer(etcd_session s, const char *dir, const char *who, int n,
                   struct tally *t)
{
    char key[256], val[128], *got;
    int i;
    memset(t, 0, sizeof *t);
    for (i = 0; i < n; i++) {
        hammer_kv(key, sizeof key, val, sizeof val, dir, who, i);
        if (etcd_set(s, key, val, NULL, 0) != ETCD_OK) {
            t->failed++;
            continue;
        }
        got = etcd_get(s, key);
        if (!got)
            t->failed++;
        else if (strcmp(got, val) != 0)
            t->wrong++;
        else
            t->ok++;
        free(got);
    }
}

/* What the forked side of "parent and child at once" needs. */
struct fork_job {
    etcd_session s;
    int n;
    char wpfx[128], wkey[256], wval[64];
    int wbase;
    int go[2];                  /* a byte on it starts both processes at once */
};

/* Replay the change made before the fork: wkey set to wval. */
static int replay_ok(struct fork_job *j)
{
    char *k = NULL, *v = NULL;
    int in = j->wbase, out = 0;
    etcd_result r = etcd_watch(j->s, j->wpfx, &k, &v, &in, &out);
    int ok = r == ETCD_OK && k && v && strcmp(k, j->wkey) == 0 && strcmp(v, j->wval) == 0;
    free(k);
    free(v);
    return ok;
}

/* Child: hammer the inherited session, replay the watch, close it. */
static void child_hammer(int wfd, void *arg)
{
    struct fork_job *j = arg;
    struct tally t;
    char msg[128];
    int watched;
    char go;
    close(j->go[1]);
    if (read(j->go[0], &go, 1) != 1)
        _exit(20);
    hammer(j->s, "f1", "child", j->n, &t);
    watched = replay_ok(j);
    snprintf(msg, sizeof msg, "R %d %d %d %d\n", t.ok, t.wrong, t.failed, watched);
    write_str(wfd, msg);
    etcd_close_str(j->s);       /* must leave the parent's connections alone */
    _exit(0);
}

static void test_fork_hammer(etcd_session fs, int n)
{
    struct fork_job j;
    struct helper h;
    struct tally pt, ct = { -1, -1, -1 };
    char key[256], val[128];
    int cwatched = -1, pwatched, i, seen = 0;

    section("fork: parent and child use one inherited session at once", 90);
    memset(&j, 0, sizeof j);
    j.s = fs;
    j.n = n;
    snprintf(j.wpfx, sizeof j.wpfx, "%s/f1/watched", prefix);
    snprintf(j.wkey, sizeof j.wkey, "%s/k", j.wpfx);
    snprintf(j.wval, sizeof j.wval, "before the fork");
    j.wbase = watch_base();
    /* Used before the fork: (v3) a watch stream parked after the replay,
     * then a pooled connection (the last call before the fork). */
    CHECK_RC(etcd_set(fs, j.wkey, j.wval, NULL, 0), ETCD_OK, "set before the fork");
    CHECK(replay_ok(&j), "watch replay before the fork");
    CHECK_GET(fs, j.wkey, j.wval, "get before the fork");

    if (pipe(j.go) != 0) {
        CHECK(0, "pipe to start the child");
        return;
    }
    if (helper_fork(&h, child_hammer, &j) != 0) {
        CHECK(0, "fork the child");
        close(j.go[0]);
        close(j.go[1]);
        return;
    }
    close(j.go[0]);
    write_str(j.go[1], "g");
    close(j.go[1]);
    hammer(fs, "f1", "parent", n, &pt);
    pwatched = replay_ok(&j);
    seen = helper_wait_for(&h, "\n", 60000, NULL);
    CHECK(seen == 1, "child reported its counts");
    if (seen == 1 && sscanf(h.out, "R %d %d %d %d", &ct.ok, &ct.wrong, &ct.failed, &cwatched) != 4)
        printf("     child said %s\n", show(h.out));
    CHECK(exited_zero(helper_finish(&h, 10000)), "child exited 0");

    CHECK_INT_EQ(pt.ok, n, "parent: values read back right");
    CHECK_INT_EQ(pt.wrong, 0, "parent: wrong values read back");
    CHECK_INT_EQ(pt.failed, 0, "parent: failed calls");
    CHECK(pwatched, "parent: watch replay after the fork");
    CHECK_INT_EQ(ct.ok, n, "child: values read back right");
    CHECK_INT_EQ(ct.wrong, 0, "child: wrong values read back");
    CHECK_INT_EQ(ct.failed, 0, "child: failed calls");
    CHECK_INT_EQ(cwatched, 1, "child: watch replay on its inherited session");

    /* The child closed its copy and exited: the parent's session goes on,
     * and sees every value the child stored. */
    for (i = 0, seen = 0; i < n; i++) {
        char *got;
        hammer_kv(key, sizeof key, val, sizeof val, "f1", "child", i);
        got = etcd_get(fs, key);
        if (got && strncmp(got, "child-", 6) == 0 && strcmp(strrchr(got, '-'), strrchr(val, '-')) == 0)
            seen++;
        free(got);
    }
    CHECK_INT_EQ(seen, n, "the child's values, read by the parent after the child closed its copy");
    printf("     (%d sets + %d gets in each process at once)\n", n, n);
}

/* ------------------------------------------------------------------ */
/* A fork while another thread waits in a watch                       */
/* ------------------------------------------------------------------ */

struct waiter {
    etcd_session s;
    char pfx[128];
    char *k, *v;
    int out;
    etcd_result r;
    int done;
    pthread_mutex_t mu;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    etcd_result r = etcd_watch(w->s, w->pfx, &w->k, &w->v, NULL, &w->out);
    pthread_mutex_lock(&w->mu);
    w->r = r;
    w->done = 1;
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int waiter_done(struct waiter *w)
{
    int d;
    pthread_mutex_lock(&w->mu);
    d = w->done;
    pthread_mutex_unlock(&w->mu);
    return d;
}

struct busy_job {
    etcd_session s;
    char key[256], pfx[128], lock[256];
    int base;
};

/* Child: set, get, watch from an index, lock and unlock on the inherited
 * session, one line per call that worked. */
static void child_busy(int wfd, void *arg)
{
    struct busy_job *j = arg;
    char *got, *k = NULL, *v = NULL, *idx = NULL;
    int in = j->base, out = 0;
    if (etcd_set(j->s, j->key, "from the child", NULL, 0) == ETCD_OK)
        write_str(wfd, "set\n");
    got = etcd_get(j->s, j->key);
    if (got && strcmp(got, "from the child") == 0)
        write_str(wfd, "get\n");
    free(got);
    if (etcd_watch(j->s, j->pfx, &k, &v, &in, &out) == ETCD_OK && k && v
            && strcmp(k, j->key) == 0 && strcmp(v, "from the child") == 0)
        write_str(wfd, "watch\n");
    free(k);
    free(v);
    if (etcd_lock(j->s, j->lock, 10, NULL, &idx) == ETCD_OK && idx) {
        write_str(wfd, "lock\n");
        if (etcd_unlock(j->s, j->lock, idx) == ETCD_OK)
            write_str(wfd, "unlock\n");
    }
    free(idx);
    write_str(wfd, "end\n");
    _exit(0);
}

static void test_fork_while_waiting(etcd_session fs)
{
    struct waiter w;
    struct busy_job j;
    struct helper h;
    pthread_t th;
    char wake[300];
    static const char *const steps[] = { "set\n", "get\n", "watch\n", "lock\n", "unlock\n" };
    size_t i;

    section("fork: while another thread waits in a watch", 90);
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    w.s = fs;
    snprintf(w.pfx, sizeof w.pfx, "%s/f2/watched", prefix);
    snprintf(wake, sizeof wake, "%s/wake", w.pfx);
    memset(&j, 0, sizeof j);
    j.s = fs;
    snprintf(j.pfx, sizeof j.pfx, "%s/f2/child", prefix);
    snprintf(j.key, sizeof j.key, "%s/k", j.pfx);
    snprintf(j.lock, sizeof j.lock, "%s/f2/lock", prefix);
    j.base = watch_base();
    if (pthread_create(&th, NULL, waiter_main, &w) != 0) {
        CHECK(0, "start the watching thread");
        pthread_mutex_destroy(&w.mu);
        return;
    }
    sleep_ms(500);              /* let it reach its wait */
    CHECK(!waiter_done(&w), "the watching thread waits (nothing changed)");

    if (helper_fork(&h, child_busy, &j) != 0) {
        CHECK(0, "fork the child");
    } else {
        int st;
        CHECK(helper_wait_for(&h, "end\n", 60000, NULL) == 1, "child finished its calls (no deadlock)");
        st = helper_finish(&h, 10000);
        CHECK(exited_zero(st), "child exited 0");
        for (i = 0; i < sizeof steps / sizeof steps[0]; i++)
            record(strstr(h.out, steps[i]) != NULL, __FILE__, __LINE__,
                   "child's %.*s on the inherited session (child said %s)",
                   (int)strlen(steps[i]) - 1, steps[i], show(h.out));
    }
    CHECK(!waiter_done(&w), "the parent's watch still waits after the child's calls");

    CHECK_RC(etcd_set(fs, wake, "wake", NULL, 0), ETCD_OK, "parent wakes its watcher");
    pthread_join(th, NULL);
    CHECK_RC(w.r, ETCD_OK, "the parent's watch after the fork");
    CHECK_STR_EQ(w.k, wake, "the parent's watch: key");
    CHECK_STR_EQ(w.v, "wake", "the parent's watch: value");
    CHECK(w.out > 0, "the parent's watch: index > 0");
    free(w.k);
    free(w.v);
    pthread_mutex_destroy(&w.mu);
}

void test_fork(void)
{
    etcd_session fs = open_str(endpoint);
    CHECK(fs != NULL, "open the session to fork with");
    if (!fs)
        return;
    test_fork_hammer(fs, under_valgrind() ? 40 : 300);
    test_fork_while_waiting(fs);
    etcd_close_str(fs);
}

/* ------------------------------------------------------------------ */
/* Sessions per call share the process's connections                  */
/* ------------------------------------------------------------------ */

/* n times: open a session on `servers`, get key (want value), close it
 * (or free() it, as careless programs do).  Returns the right values read;
 * *fresh: distinct sockets seen meanwhile that were not open before. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int sessions_per_call(const char *servers, char *key, const char *value,
                             int n, int careless, int *fresh)
{
    unsigned long before[MAX_SOCKETS], seen[MAX_SOCKETS];
    int nbefore = socket_inodes(before, MAX_SOCKETS), nseen = 0, good = 0, i;
    for (i = 0; i < n; i++) {
        etcd_session s = open_str(servers);
        char *got;
        if (!s)
            continue;
        got = etcd_get(s, key);
        if (got && strcmp(got, value) == 0)
            good++;
        free(got);
        note_new_sockets(before, nbefore, seen, &nseen);
        if (careless)
            free(s);            /* leaks the session, on purpose */
        else
            etcd_close_str(s);
    }
    *fresh = nseen;
    return good;
}

/*
 * Settings that differ from every other session's (a request time-out of
 * 5 s + ms), so that sessions opened meanwhile share nothing with the
 * harness's; `restore` puts the environment back.
 */
static void alone_settings(int ms, int restore)
{
    static char saved[64];
    static int had;
    const char *name = "ETCDAPI_REQUEST_TIMEOUT_MS";
    if (!restore) {
        const char *old = getenv(name);
        char v[32];
        had = old != NULL;
        if (had)
            snprintf(saved, sizeof saved, "%s", old);
        snprintf(v, sizeof v, "%d", 5000 + ms);
        setenv(name, v, 1);
    } else if (had) {
        setenv(name, saved, 1);
    } else {
        unsetenv(name);
    }
}

void test_connections_shared(etcd_session s)
{
    char *key = K("/f3/k");
    int before, after, fresh = 0, good;

    section("connections: a session per call shares the process's connections", 120);
    CHECK_RC(etcd_set(s, key, "shared", NULL, 0), ETCD_OK, "set the key read per session");
    before = socket_count();
    CHECK(before >= 0, "sockets counted in /proc/self/fd");
    good = sessions_per_call(endpoint, key, "shared", 200, 0, &fresh);
    after = socket_count();
    CHECK_INT_EQ(good, 200, "open + get + close, 200 times: right values");
    record(fresh <= 2, __FILE__, __LINE__,
           "200 sessions beside an open one used %d new connection(s), want <= 2", fresh);
    record(after <= before + 2, __FILE__, __LINE__,
           "sockets after 200 open + get + close: %d, before %d, want <= before + 2",
           after, before);

    /* With no other session on these settings, as in a lookup function. */
    alone_settings(1, 0);
    good = sessions_per_call(endpoint, key, "shared", 200, 0, &fresh);
    alone_settings(1, 1);
    after = socket_count();
    CHECK_INT_EQ(good, 200, "open + get + close alone, 200 times: right values");
    record(fresh <= 2, __FILE__, __LINE__,
           "200 sessions opened and closed alone used %d new connection(s), want <= 2", fresh);
    record(after <= before + 2, __FILE__, __LINE__,
           "sockets after 200 open + get + close alone: %d, before %d, want <= before + 2",
           after, before);
    printf("     (200 open + get + close with no other session open made %d connection(s))\n",
           fresh);

    section("connections: sessions released with free() leak no socket", 60);
    alone_settings(2, 0);
    before = socket_count();
    good = sessions_per_call(endpoint, key, "shared", 50, 1, &fresh);
    after = socket_count();
    alone_settings(2, 1);
    CHECK_INT_EQ(good, 50, "open + get + free(), 50 times: right values");
    record(after <= before + 2, __FILE__, __LINE__,
           "sockets after 50 sessions released with free(): %d, before %d, want <= before + 2",
           after, before);
    printf("     (%d connection(s) for 50 sessions released with free())\n", fresh);
}
