/*
 * watch.c: the harness's watch sections: live changes, replay from an
 * index, draining 1000 changes, two threads on one session, a compacted
 * revision (v3) or an index cleared from the history (v2), bad
 * arguments, and 1000 changes watched while they are written.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/*
 * An index from which a watch replays this run's changes made after this
 * call.  v3 keeps every revision until compacted: 1 will do, as our
 * prefix is unique to this run.  v2 remembers only its last 1000 changes
 * (an index older than that is refused), so: the store's index now, + 1.
 * 0 (a failure already counted) if it cannot be read.
 */
int watch_base(void)
{
    long long idx;
    if (!proto_v2)
        return 1;
    idx = v2_store_index();
    record(idx > 0 && idx < INT_MAX, __FILE__, __LINE__,
           "the v2 store's index (X-Etcd-Index of GET /v2/keys/): got %lld", idx);
    return idx > 0 && idx < INT_MAX ? (int)idx + 1 : 0;
}

/* --- watch ----------------------------------------------------------- */

struct writer_job {
    etcd_session s;
    long delay_ms;
    const char *keys[8];        /* set in order, NULL-terminated */
    const char *value;
    double done_at;             /* when the last set returned */
    int ok;
};

/* A writer of value, 300 ms after it starts (keys to be filled in). */
static void writer_init(struct writer_job *w, etcd_session s, const char *value)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->delay_ms = 300;
    w->value = value;
}

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

/*
 * Start the writer w, watch pfx through s meanwhile, join the writer, and
 * check that the watch (named what) saw want_key (key_what) set to w's
 * value (value_what).  *k and *v (to free) and *out are the watch's.  0
 * if the writer could not start (a failure counted).
 */
static int watch_while_writing(struct writer_job *w, etcd_session s, char *pfx,
                               char **k, char **v, int *out, const char *what,
                               const char *want_key, const char *key_what,
                               const char *value_what)
{
    pthread_t th;
    etcd_result r;
    if (pthread_create(&th, NULL, writer_main, w) != 0) {
        CHECK(0, "start writer thread");
        return 0;
    }
    r = etcd_watch(s, pfx, k, v, NULL, out);
    pthread_join(th, NULL);
    CHECK(w->ok, "writer thread's sets");
    CHECK_RC(r, ETCD_OK, what);
    CHECK_STR_EQ(*k, want_key, key_what);
    CHECK_STR_EQ(*v, w->value, value_what);
    return 1;
}

void test_watch(etcd_session s)
{
    char *k = NULL, *v = NULL;
    int in, out = 0, r1 = 0, r2 = 0, r3 = 0, base;
    etcd_result r;
    double t0;
    char want_key[512];

    section("watch: live", 30);
    {
        struct writer_job w;
        char sib1[256], sib2[256], sib3[256], target[256], pfx[128], alt[512];
        snprintf(pfx, sizeof pfx, "%s/w1/pfx", prefix);
        snprintf(sib1, sizeof sib1, "%s-x", pfx);
        snprintf(sib2, sizeof sib2, "%s.x", pfx);
        snprintf(sib3, sizeof sib3, "%sy", pfx);
        snprintf(target, sizeof target, "%s/k", pfx);
        writer_init(&w, s, "live value");
        /* The siblings come first: a prefix watch done with plain byte
         * prefixes would return one of them. */
        w.keys[0] = sib1;
        w.keys[1] = sib2;
        w.keys[2] = sib3;
        w.keys[3] = target;
        t0 = now();
        if (watch_while_writing(&w, s, pfx, &k, &v, &out, "live watch", target,
                                "live watch key (siblings not returned)", "live watch value")) {
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
        writer_init(&w, s, "self");
        w.keys[0] = sib3;
        w.keys[1] = pfx;
        snprintf(alt, sizeof alt, "%s/", pfx + 1);
        if (watch_while_writing(&w, s, alt, &k, &v, &out, "watch of the prefix key itself", pfx,
                                "watched prefix key, canonical", "watched prefix key's value")) {
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

/*
 * A watch of pfx from index `from` that etcd no longer has: refused with
 * ETCD_PROTOCOL_ERROR, an errmsg with `word` in it, and nothing written
 * through the pointers.  `what` names the call, `msg_what` its errmsg,
 * `name` the watch in the checks of what it wrote.
 */
static void check_watch_refused(etcd_session s, char *pfx, int from, const char *what,
                                const char *msg_what, const char *word, const char *name)
{
    char *k, *v, sk[] = "key sentinel", sv[] = "value sentinel";
    char desc[200];
    int in = from, out = -12345;
    const char *m;
    k = sk;
    v = sv;
    CHECK_RC(etcd_watch(s, pfx, &k, &v, &in, &out), ETCD_PROTOCOL_ERROR, what);
    m = etcd_errmsg();
    snprintf(desc, sizeof desc, "%s mentions \"%s\"", msg_what, word);
    CHECK(m && strstr(m, word), desc);
    if (!(m && strstr(m, word)))
        printf("     errmsg was %s\n", show(m));
    snprintf(desc, sizeof desc, "%s wrote neither *keyp nor *valuep", name);
    CHECK(k == sk && v == sv, desc);
    snprintf(desc, sizeof desc, "%s left *index_out alone", name);
    CHECK_INT_EQ(out, -12345, desc);
    snprintf(desc, sizeof desc, "%s left *index_in alone", name);
    CHECK_INT_EQ(in, from, desc);
    if (k != sk)
        free(k);
    if (v != sv)
        free(v);
}

/* etcdctl compact, then a watch from a compacted revision. */
static void test_watch_compacted_v3(etcd_session s)
{
    section("watch: compacted index", 30);
    {
        int in, r1 = 0, rlast = 0, out, i;
        char *k, *v;
        char args[256], cmd[1024], *res;

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

        check_watch_refused(s, K("/w6"), r1, "watch from a compacted revision",
                            "errmsg of a compacted watch", "compact", "compacted watch");

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
    char *k, *v;
    char key[300], val[32];

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

    check_watch_refused(s, K("/w6"), r1, "watch from an index no longer in the v2 history",
                        "errmsg of a cleared index", "history", "cleared-index watch");

    /* A recent index is still there. */
    k = v = NULL;
    in = nbase + 10;
    CHECK_RC(etcd_watch(s, K("/w6n"), &k, &v, &in, &out), ETCD_OK, "watch from an index still in the history");
    CHECK_STR_EQ(v, "n10", "the change at that index");
    CHECK_INT_EQ(out, nbase + 10, "its index");
    free(k);
    free(v);
}

void test_watch_more(etcd_session s)
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
void test_watch_live_1000(etcd_session s)
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

