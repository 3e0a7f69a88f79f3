/*
 * extended.c: the harness's sections for the extended API (SPEC section
 * 7, etcd v3): etcd_get_kv, etcd_list, etcd_put, etcd_put_if,
 * etcd_delete_if, etcd_delete_prefix, etcd_watch_events (batches,
 * time-outs, a transaction written by etcdctl, compaction), the lease
 * calls (expiry, revoke, etcd_lease_keep), a counter incremented by
 * several threads that loses no update, and bad input.  On v2 every one
 * of these calls must answer ETCD_WTF with a message.
 *
 * Every array the library hands out is released with its free function
 * (make memcheck checks that nothing leaks).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The value of a one-key etcd_get_kv as a string; NULL when missing. */
static char *get_value(etcd_session s, const char *key, int64_t *mod_rev)
{
    etcd_kv *kv = NULL;
    char *v = NULL;
    if (etcd_get_kv(s, key, &kv, NULL) == ETCD_OK && kv) {
        v = strdup(kv->value);
        if (mod_rev)
            *mod_rev = kv->mod_revision;
    }
    etcd_kv_free(kv, 1);
    return v;
}

/* --- v2: every call refused -------------------------------------------- */

static void test_extended_on_v2(etcd_session s)
{
    etcd_kv *kv = NULL;
    etcd_event *ev = NULL;
    size_t n = 0;
    int64_t r = 0, lease = 0;
    const char *k = K("/x/v2");

    section("extended API on v2", 30);
#define V2_REFUSES(call, what) do {                                         \
        CHECK_RC((call), ETCD_WTF, what);                                   \
        CHECK(strstr(etcd_errmsg(), "v3") != NULL, what ": errmsg names v3"); \
    } while (0)
    V2_REFUSES(etcd_get_kv(s, k, &kv, &r), "etcd_get_kv on v2");
    V2_REFUSES(etcd_list(s, k, &kv, &n, &r), "etcd_list on v2");
    V2_REFUSES(etcd_put(s, k, "v", 1, 0, &r), "etcd_put on v2");
    V2_REFUSES(etcd_put_if(s, k, "v", 1, 0, 0, &r), "etcd_put_if on v2");
    V2_REFUSES(etcd_delete_if(s, k, -1, &r), "etcd_delete_if on v2");
    V2_REFUSES(etcd_delete_prefix(s, k, NULL, &r), "etcd_delete_prefix on v2");
    V2_REFUSES(etcd_watch_events(s, k, 0, 10, &ev, &n, &r), "etcd_watch_events on v2");
    V2_REFUSES(etcd_lease_grant(s, 10, &lease), "etcd_lease_grant on v2");
    V2_REFUSES(etcd_lease_keepalive(s, 1, NULL), "etcd_lease_keepalive on v2");
    V2_REFUSES(etcd_lease_keep(s, 1), "etcd_lease_keep on v2");
    V2_REFUSES(etcd_lease_ttl(s, 1, NULL, NULL), "etcd_lease_ttl on v2");
    V2_REFUSES(etcd_lease_revoke(s, 1), "etcd_lease_revoke on v2");
#undef V2_REFUSES
    CHECK(kv == NULL && ev == NULL && n == 0, "nothing handed out on v2");
}

/* --- keys, revisions, listing -------------------------------------------- */

static void test_get_kv_put(etcd_session s)
{
    etcd_kv *kv = NULL;
    int64_t r0 = 0, r1 = 0, r2 = 0, rev = 0;
    static const char bin[] = {'a', '\0', 'b', '\xff', 'c'};
    char *big;

    section("extended: etcd_put and etcd_get_kv", 30);
    CHECK_RC(etcd_get_kv(s, K("/x/kv"), &kv, &r0), ETCD_OK, "etcd_get_kv of a missing key");
    CHECK(kv == NULL, "a missing key gives *kv NULL");
    CHECK(r0 > 0, "the store's revision at the read");

    CHECK_RC(etcd_put(s, K("/x/kv"), bin, sizeof bin, 0, &r1), ETCD_OK, "etcd_put of bytes with a NUL");
    CHECK(r1 > r0, "etcd_put gives the write's revision");
    /* Canonical forms of the same key. */
    CHECK_RC(etcd_get_kv(s, fmt_rot("/%s//x/kv/", prefix), &kv, &rev), ETCD_OK, "etcd_get_kv, key not canonical");
    CHECK(kv != NULL, "the key is there");
    if (kv) {
        CHECK_STR_EQ(kv->key, K("/x/kv"), "etcd_kv.key is the canonical path");
        CHECK_INT_EQ(kv->value_len, sizeof bin, "value_len counts the NUL inside");
        CHECK(memcmp(kv->value, bin, sizeof bin) == 0 && kv->value[sizeof bin] == '\0',
              "value bytes, then a NUL");
        CHECK_INT_EQ(kv->create_revision, r1, "create_revision");
        CHECK_INT_EQ(kv->mod_revision, r1, "mod_revision");
        CHECK_INT_EQ(kv->version, 1, "version after the first write");
        CHECK_INT_EQ(kv->lease, 0, "no lease");
    }
    CHECK(rev >= r1, "read revision >= the write's");
    etcd_kv_free(kv, 1);

    /* NULL value with length 0: the empty value; optional revision. */
    CHECK_RC(etcd_put(s, K("/x/kv"), NULL, 0, 0, NULL), ETCD_OK, "etcd_put of an empty value, revision NULL");
    kv = NULL;
    CHECK_RC(etcd_get_kv(s, K("/x/kv"), &kv, NULL), ETCD_OK, "etcd_get_kv, revision NULL");
    if (kv) {
        CHECK_INT_EQ(kv->value_len, 0, "empty value");
        CHECK_STR_EQ(kv->value, "", "empty value is \"\"");
        CHECK_INT_EQ(kv->version, 2, "version after the second write");
        CHECK_INT_EQ(kv->create_revision, r1, "create_revision kept");
        r2 = kv->mod_revision;
        CHECK(r2 > r1, "mod_revision moved");
    }
    etcd_kv_free(kv, 1);

    CHECK_RC(etcd_put(s, K("/x/kv"), "v", 1, 0x7fffffff0000LL, &rev), ETCD_PROTOCOL_ERROR, "etcd_put on an unknown lease");
    CHECK_ERRMSG("etcd_put on an unknown lease");
    big = malloc(1600000);
    if (big) {
        memset(big, 'x', 1600000);
        CHECK_RC(etcd_put(s, K("/x/big"), big, 1600000, 0, NULL), ETCD_PROTOCOL_ERROR, "etcd_put too large");
        CHECK(strstr(etcd_errmsg(), "too large") != NULL, "errmsg says too large");
        free(big);
    }
    CHECK_RC(etcd_put(s, "/", "v", 1, 0, NULL), ETCD_PROTOCOL_ERROR, "etcd_put on the root");
}

static void test_list(etcd_session s)
{
    static const char *names[] = {"b", "a", "c/x", "c/y/z", "_hidden"};
    static const char *sorted[] = {"_hidden", "a", "b", "c/x", "c/y/z"};
    etcd_kv *kvs = NULL;
    size_t n = 99, i;
    int64_t last = 0, rev = 0;

    section("extended: etcd_list", 30);
    for (i = 0; i < 5; i++)
        CHECK_RC(etcd_put(s, fmt_rot("%s/l/%s", prefix, names[i]), names[i], strlen(names[i]), 0, &last),
                 ETCD_OK, "etcd_put for the listing");
    CHECK_RC(etcd_put(s, K("/l"), "itself", 6, 0, NULL), ETCD_OK, "the prefix key itself");
    CHECK_RC(etcd_put(s, K("/l-x"), "sibling", 7, 0, NULL), ETCD_OK, "a sibling");
    CHECK_RC(etcd_list(s, K("/l/"), &kvs, &n, &rev), ETCD_OK, "etcd_list");
    CHECK_INT_EQ(n, 5, "every depth, _ names too, not the prefix, not siblings");
    for (i = 0; kvs && i < n && i < 5; i++)
        CHECK_STR_EQ(kvs[i].key, fmt_rot("%s/l/%s", prefix, sorted[i]), "sorted by key");
    if (kvs && n == 5)
        CHECK_STR_EQ(kvs[4].value, "c/y/z", "with values");
    CHECK(rev >= last, "one read at one revision");
    etcd_kv_free(kvs, n);

    kvs = (etcd_kv *)1;
    CHECK_RC(etcd_list(s, K("/nothing-here"), &kvs, &n, NULL), ETCD_OK, "etcd_list of nothing");
    CHECK_INT_EQ(n, 0, "count 0");
    CHECK(kvs == NULL, "no array for no keys");
    etcd_kv_free(kvs, n);
}

/* --- conditional writes ---------------------------------------------------- */

static void test_conditional(etcd_session s)
{
    int64_t r1 = 0, r2 = 0, rev = 0, deleted = -1;
    char *v;

    section("extended: etcd_put_if, etcd_delete_if, etcd_delete_prefix", 30);
    CHECK_RC(etcd_put_if(s, K("/c/k"), "one", 3, 0, 0, &r1), ETCD_OK, "etcd_put_if 0 creates");
    CHECK_RC(etcd_put_if(s, K("/c/k"), "again", 5, 0, 0, &rev), ETCD_PROTOCOL_ERROR, "etcd_put_if 0 on an existing key");
    CHECK_ERRMSG("etcd_put_if 0 on an existing key");
    CHECK_RC(etcd_put_if(s, K("/c/k"), "stale", 5, 0, r1 - 1, NULL), ETCD_PROTOCOL_ERROR, "etcd_put_if on a stale revision");
    CHECK_RC(etcd_put_if(s, K("/c/k"), "two", 3, 0, r1, &r2), ETCD_OK, "etcd_put_if on the key's revision");
    CHECK(r2 > r1, "etcd_put_if gives the new revision");
    v = get_value(s, K("/c/k"), NULL);
    CHECK_STR_EQ(v, "two", "the conditional write landed, the failed ones did not");
    free(v);
    CHECK_RC(etcd_put_if(s, K("/c/missing"), "x", 1, 0, r2, NULL), ETCD_PROTOCOL_ERROR, "etcd_put_if on a missing key");
    CHECK_RC(etcd_put_if(s, K("/c/k"), "x", 1, 0, -1, NULL), ETCD_WTF, "etcd_put_if with a negative revision");

    CHECK_RC(etcd_delete_if(s, K("/c/k"), r1, NULL), ETCD_PROTOCOL_ERROR, "etcd_delete_if on a stale revision");
    CHECK_ERRMSG("etcd_delete_if on a stale revision");
    CHECK_RC(etcd_delete_if(s, K("/c/k"), r2, &rev), ETCD_OK, "etcd_delete_if on the key's revision");
    CHECK(rev > r2, "etcd_delete_if gives the revision after");
    CHECK_RC(etcd_delete_if(s, K("/c/k"), r2, NULL), ETCD_PROTOCOL_ERROR, "etcd_delete_if on a missing key");
    CHECK_RC(etcd_delete_if(s, K("/c/k"), -1, NULL), ETCD_PROTOCOL_ERROR, "unconditional etcd_delete_if on a missing key");
    CHECK_RC(etcd_put(s, K("/c/k"), "v", 1, 0, NULL), ETCD_OK, "put again");
    CHECK_RC(etcd_delete_if(s, K("/c/k"), -1, NULL), ETCD_OK, "unconditional etcd_delete_if");

    CHECK_RC(etcd_put(s, K("/c/d"), "itself", 6, 0, NULL), ETCD_OK, "prefix key");
    CHECK_RC(etcd_put(s, K("/c/d/a"), "1", 1, 0, NULL), ETCD_OK, "key below");
    CHECK_RC(etcd_put(s, K("/c/d/b/c"), "2", 1, 0, NULL), ETCD_OK, "key deeper");
    CHECK_RC(etcd_put(s, K("/c/d/_h"), "3", 1, 0, NULL), ETCD_OK, "hidden key below");
    CHECK_RC(etcd_put(s, K("/c/d-x"), "sibling", 7, 0, NULL), ETCD_OK, "sibling");
    CHECK_RC(etcd_delete_prefix(s, K("/c/d"), &deleted, &rev), ETCD_OK, "etcd_delete_prefix");
    CHECK_INT_EQ(deleted, 4, "the key and everything below it");
    v = get_value(s, K("/c/d-x"), NULL);
    CHECK_STR_EQ(v, "sibling", "siblings are left alone");
    free(v);
    CHECK_RC(etcd_delete_prefix(s, K("/c/d"), &deleted, NULL), ETCD_OK, "etcd_delete_prefix of nothing");
    CHECK_INT_EQ(deleted, 0, "0 deleted is OK");
    CHECK_RC(etcd_delete_prefix(s, "/", NULL, NULL), ETCD_WTF, "etcd_delete_prefix of the root is refused");
    CHECK_ERRMSG("etcd_delete_prefix of the root");
}

/* --- a counter several threads increment ----------------------------------- */

#define COUNTER_THREADS 4
#define COUNTER_EACH 25

struct counter_job {
    etcd_session s;
    const char *key;
    int ok, conflicts;
};

static void *counter_main(void *arg)
{
    struct counter_job *j = arg;
    int i;
    for (i = 0; i < COUNTER_EACH; i++) {
        for (;;) {
            etcd_kv *kv = NULL;
            char val[32];
            etcd_result rc;
            long long n;
            if (etcd_get_kv(j->s, j->key, &kv, NULL) != ETCD_OK || !kv)
                return NULL;
            n = atoll(kv->value);
            snprintf(val, sizeof val, "%lld", n + 1);
            rc = etcd_put_if(j->s, j->key, val, strlen(val), 0, kv->mod_revision, NULL);
            etcd_kv_free(kv, 1);
            if (rc == ETCD_OK)
                break;
            if (rc != ETCD_PROTOCOL_ERROR)
                return NULL;
            j->conflicts++;
        }
        j->ok++;
    }
    return NULL;
}

static void test_counter(etcd_session s)
{
    struct counter_job jobs[COUNTER_THREADS];
    pthread_t th[COUNTER_THREADS];
    char key[128];
    int i, started = 0, conflicts = 0;
    char *v;

    section("extended: a counter from several threads (get_kv + put_if)", 60);
    snprintf(key, sizeof key, "%s/counter", prefix);
    CHECK_RC(etcd_put(s, key, "0", 1, 0, NULL), ETCD_OK, "counter at 0");
    for (i = 0; i < COUNTER_THREADS; i++) {
        jobs[i].s = s;
        jobs[i].key = key;
        jobs[i].ok = jobs[i].conflicts = 0;
        if (pthread_create(&th[i], NULL, counter_main, &jobs[i]) != 0)
            break;
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(jobs[i].ok, COUNTER_EACH, "every increment of a thread went through");
        conflicts += jobs[i].conflicts;
    }
    v = get_value(s, key, NULL);
    CHECK_STR_EQ(v, fmt_rot("%d", COUNTER_THREADS * COUNTER_EACH), "no update lost");
    printf("   counter: %s after %dx%d increments, %d conflicts retried\n",
           v ? v : "(null)", COUNTER_THREADS, COUNTER_EACH, conflicts);
    free(v);
}

/* --- etcd_watch_events ----------------------------------------------------- */

static void test_watch_events(etcd_session s)
{
    etcd_event *ev = NULL;
    size_t n = 0, i;
    int64_t read_at = 0, rev = 0, from, r_put = 0;
    double t;
    char cmd[2048], args[1024], *res;
    etcd_kv *kv = NULL;

    section("extended: etcd_watch_events", 60);
    CHECK_RC(etcd_put(s, K("/w/a"), "1", 1, 0, NULL), ETCD_OK, "put before the read");
    /* Read with a revision, then watch from the next one: no race. */
    CHECK_RC(etcd_get_kv(s, K("/w/a"), &kv, &read_at), ETCD_OK, "read with its revision");
    etcd_kv_free(kv, 1);
    CHECK_RC(etcd_put(s, K("/w/a"), "2", 1, 0, &r_put), ETCD_OK, "put after the read");
    CHECK_RC(etcd_put(s, K("/w-sibling"), "no", 2, 0, NULL), ETCD_OK, "sibling put (not watched)");
    CHECK_RC(etcd_watch_events(s, K("/w"), read_at + 1, 5000, &ev, &n, &rev), ETCD_OK, "watch from the read's revision + 1");
    CHECK_INT_EQ(n, 1, "one change");
    CHECK_INT_EQ(rev, r_put, "*revision is the change's");
    if (ev && n == 1) {
        CHECK_STR_EQ(ev[0].kv.key, K("/w/a"), "changed key");
        CHECK_STR_EQ(ev[0].kv.value, "2", "new value");
        CHECK_INT_EQ(ev[0].deleted, 0, "not a delete");
        CHECK_INT_EQ(ev[0].kv.mod_revision, rev, "kv.mod_revision is the change's revision");
        CHECK_INT_EQ(ev[0].kv.version, 2, "kv.version");
    }
    etcd_events_free(ev, n);
    from = rev + 1;

    /* Nothing more: ETCD_TIMEOUT after about timeout_ms, nothing handed out. */
    ev = (etcd_event *)1;
    n = 7;
    t = now();
    CHECK_RC(etcd_watch_events(s, K("/w"), from, 300, &ev, &n, &rev), ETCD_TIMEOUT, "etcd_watch_events times out");
    t = now() - t;
    CHECK(t > 0.25 && t < 2.0, "after about timeout_ms");
    CHECK(ev == NULL && n == 0, "*events NULL, *count 0 on a time-out");
    CHECK_ERRMSG("etcd_watch_events time-out");

    /* A transaction written by etcdctl: its changes come as one batch. */
    snprintf(args, sizeof args,
             "txn >/dev/null <<'EOF'\n\nput %s/w/t1 one\nput %s/w/t2 two\ndel %s/w/a\n\n\nEOF", prefix, prefix, prefix);
    etcdctl_cmd(cmd, sizeof cmd, args);
    res = run_capture(cmd, NULL);
    CHECK(res != NULL, "etcdctl txn ran");
    free(res);
    ev = NULL;
    CHECK_RC(etcd_watch_events(s, K("/w"), from, 5000, &ev, &n, &rev), ETCD_OK, "watch the txn (the time-out kept the stream)");
    CHECK_INT_EQ(n, 3, "the txn's three changes as one batch");
    for (i = 0; ev && i < n; i++)
        CHECK_INT_EQ(ev[i].kv.mod_revision, rev, "all of one revision");
    if (ev && n == 3) {
        CHECK_STR_EQ(ev[0].kv.key, K("/w/t1"), "first put of the txn");
        CHECK_STR_EQ(ev[1].kv.value, "two", "second put's value");
        CHECK_STR_EQ(ev[2].kv.key, K("/w/a"), "the txn's delete");
        CHECK_INT_EQ(ev[2].deleted, 1, "deleted flag");
        CHECK_STR_EQ(ev[2].kv.value, "", "a deleted key's value is \"\"");
    }
    etcd_events_free(ev, n);
    from = rev + 1;

    /* A change made right after a time-out is there for the next call. */
    ev = NULL;
    CHECK_RC(etcd_watch_events(s, K("/w"), from, 1, &ev, &n, &rev), ETCD_TIMEOUT, "a 1 ms wait times out");
    CHECK_RC(etcd_put(s, K("/w/late"), "late", 4, 0, &r_put), ETCD_OK, "put after the time-out");
    CHECK_RC(etcd_watch_events(s, K("/w"), from, 0, &ev, &n, &rev), ETCD_OK, "the next call (timeout 0: no limit)");
    CHECK_INT_EQ(rev, r_put, "gets the change that came after the time-out");
    CHECK_INT_EQ(n, 1, "one change");
    etcd_events_free(ev, n);

    /* Only *revision is optional; NULL events or count is refused. */
    CHECK_RC(etcd_watch_events(s, K("/w"), rev + 1, 10, NULL, &n, NULL), ETCD_WTF, "NULL events");
    CHECK_RC(etcd_watch_events(s, K("/w"), rev + 1, 10, &ev, NULL, NULL), ETCD_WTF, "NULL count");
    CHECK_RC(etcd_watch_events(s, K("/w"), rev + 1, 10, &ev, &n, NULL), ETCD_TIMEOUT, "NULL revision is fine");

    /* A compacted revision: refused, the message names the oldest left. */
    snprintf(args, sizeof args, "compact %lld >/dev/null", (long long)r_put);
    etcdctl_cmd(cmd, sizeof cmd, args);
    free(run_capture(cmd, NULL));
    ev = NULL;
    CHECK_RC(etcd_watch_events(s, K("/w"), read_at, 5000, &ev, &n, &rev), ETCD_PROTOCOL_ERROR, "watch from a compacted revision");
    CHECK(strstr(etcd_errmsg(), fmt_rot("%lld", (long long)r_put)) != NULL, "errmsg names the oldest revision left");
    CHECK(ev == NULL && n == 0, "nothing handed out");
}

/* --- leases ------------------------------------------------------------------ */

static void test_leases(etcd_session s)
{
    int64_t lease = 0, short_lease = 0, kept = 0, lost = 0, ttl = 0, remaining = 0, granted = 0;
    etcd_kv *kv = NULL;
    char cmd[1024], args[256];

    section("extended: leases", 60);
    CHECK_RC(etcd_lease_grant(s, 0, &lease), ETCD_WTF, "etcd_lease_grant ttl 0");
    CHECK_RC(etcd_lease_grant(s, -3, &lease), ETCD_WTF, "etcd_lease_grant ttl < 0");
    CHECK_ERRMSG("etcd_lease_grant ttl < 0");
    CHECK_RC(etcd_lease_grant(s, 30, NULL), ETCD_WTF, "etcd_lease_grant with NULL lease");
    CHECK_RC(etcd_lease_grant(s, 30, &lease), ETCD_OK, "etcd_lease_grant");
    CHECK(lease > 0, "a lease ID");
    CHECK_RC(etcd_put(s, K("/lease/k"), "v", 1, lease, NULL), ETCD_OK, "put on the lease");
    CHECK_RC(etcd_get_kv(s, K("/lease/k"), &kv, NULL), ETCD_OK, "read the leased key");
    CHECK(kv && kv->lease == lease, "etcd_kv.lease");
    etcd_kv_free(kv, 1);
    CHECK_RC(etcd_lease_ttl(s, lease, &remaining, &granted), ETCD_OK, "etcd_lease_ttl");
    CHECK_INT_EQ(granted, 30, "granted TTL");
    CHECK(remaining > 0 && remaining <= 30, "remaining TTL");
    CHECK_RC(etcd_lease_ttl(s, lease, NULL, NULL), ETCD_OK, "etcd_lease_ttl, outputs NULL");
    CHECK_RC(etcd_lease_keepalive(s, lease, &ttl), ETCD_OK, "etcd_lease_keepalive");
    CHECK_INT_EQ(ttl, 30, "seconds granted again");
    CHECK_RC(etcd_lease_keepalive(s, lease, NULL), ETCD_OK, "etcd_lease_keepalive, ttl NULL");
    CHECK_RC(etcd_lease_revoke(s, lease), ETCD_OK, "etcd_lease_revoke");
    kv = (etcd_kv *)1;
    CHECK_RC(etcd_get_kv(s, K("/lease/k"), &kv, NULL), ETCD_OK, "read after revoke");
    CHECK(kv == NULL, "revoke deleted the key");
    CHECK_RC(etcd_lease_revoke(s, lease), ETCD_PROTOCOL_ERROR, "revoke a revoked lease");
    CHECK_ERRMSG("revoke a revoked lease");
    CHECK_RC(etcd_lease_keepalive(s, lease, &ttl), ETCD_PROTOCOL_ERROR, "keepalive a revoked lease");
    CHECK_RC(etcd_lease_ttl(s, lease, &remaining, NULL), ETCD_PROTOCOL_ERROR, "ttl of a revoked lease");
    CHECK_RC(etcd_lease_keep(s, lease), ETCD_PROTOCOL_ERROR, "keep a revoked lease");
    CHECK_RC(etcd_lease_revoke(s, 0x12345678abcdLL), ETCD_PROTOCOL_ERROR, "revoke an unknown lease");
    CHECK_RC(etcd_lease_ttl(s, -1, NULL, NULL), ETCD_PROTOCOL_ERROR, "ttl of a nonsense lease");

    /* Expiry and keeping, in one wait: a 2 s lease left alone, one kept,
     * one kept and then revoked by someone else (etcdctl: a loss). */
    CHECK_RC(etcd_lease_grant(s, 2, &short_lease), ETCD_OK, "grant a 2 s lease");
    CHECK_RC(etcd_lease_grant(s, 2, &kept), ETCD_OK, "grant a 2 s lease to keep");
    CHECK_RC(etcd_lease_grant(s, 2, &lost), ETCD_OK, "grant a 2 s lease to lose");
    CHECK_RC(etcd_put(s, K("/lease/expires"), "v", 1, short_lease, NULL), ETCD_OK, "put on the short lease");
    CHECK_RC(etcd_put(s, K("/lease/kept"), "v", 1, kept, NULL), ETCD_OK, "put on the kept lease");
    CHECK_RC(etcd_lease_keep(s, kept), ETCD_OK, "etcd_lease_keep");
    CHECK_RC(etcd_lease_keep(s, kept), ETCD_OK, "etcd_lease_keep twice");
    CHECK_RC(etcd_lease_keep(s, lost), ETCD_OK, "etcd_lease_keep (to be lost)");
    snprintf(args, sizeof args, "lease revoke %llx >/dev/null", (unsigned long long)lost);
    etcdctl_cmd(cmd, sizeof cmd, args);
    free(run_capture(cmd, NULL));
    sleep_ms(4500);
    kv = (etcd_kv *)1;
    CHECK_RC(etcd_get_kv(s, K("/lease/expires"), &kv, NULL), ETCD_OK, "read after expiry");
    CHECK(kv == NULL, "the key went with its expired lease");
    CHECK_RC(etcd_lease_ttl(s, short_lease, NULL, NULL), ETCD_PROTOCOL_ERROR, "ttl of an expired lease");
    kv = NULL;
    CHECK_RC(etcd_get_kv(s, K("/lease/kept"), &kv, NULL), ETCD_OK, "read the kept key");
    CHECK(kv != NULL, "etcd_lease_keep kept it past twice its TTL");
    etcd_kv_free(kv, 1);
    CHECK_RC(etcd_lease_ttl(s, kept, &remaining, NULL), ETCD_OK, "ttl of the kept lease");
    CHECK(remaining > 0, "time left on the kept lease");
    CHECK_RC(etcd_lease_ttl(s, lost, NULL, NULL), ETCD_PROTOCOL_ERROR, "after a loss, etcd_lease_ttl refuses");
    CHECK_RC(etcd_lease_revoke(s, kept), ETCD_OK, "revoke stops the keeper");
    kv = (etcd_kv *)1;
    CHECK_RC(etcd_get_kv(s, K("/lease/kept"), &kv, NULL), ETCD_OK, "read after revoking the kept lease");
    CHECK(kv == NULL, "its key is gone");
}

/* --- bad input ---------------------------------------------------------------- */

static void test_extended_bad_input(etcd_session s)
{
    etcd_kv *kv = NULL;
    etcd_event *ev = NULL;
    size_t n = 0;
    int64_t r = 0, l = 0;
    unsigned char not_a_session[64];

    section("extended: bad input", 30);
    memset(not_a_session, 0, sizeof not_a_session);
    CHECK_RC(etcd_get_kv(NULL, K("/b"), &kv, &r), ETCD_WTF, "etcd_get_kv NULL session");
    CHECK_ERRMSG("etcd_get_kv NULL session");
    CHECK_RC(etcd_get_kv(not_a_session, K("/b"), &kv, &r), ETCD_WTF, "etcd_get_kv on something not a session");
    CHECK_RC(etcd_get_kv(s, NULL, &kv, &r), ETCD_WTF, "etcd_get_kv NULL key");
    CHECK_RC(etcd_get_kv(s, K("/b"), NULL, &r), ETCD_WTF, "etcd_get_kv NULL kv");
    CHECK_RC(etcd_list(s, NULL, &kv, &n, &r), ETCD_WTF, "etcd_list NULL prefix");
    CHECK_RC(etcd_list(s, K("/b"), NULL, &n, &r), ETCD_WTF, "etcd_list NULL kvs");
    CHECK_RC(etcd_list(s, K("/b"), &kv, NULL, &r), ETCD_WTF, "etcd_list NULL count");
    CHECK_RC(etcd_put(NULL, K("/b"), "v", 1, 0, &r), ETCD_WTF, "etcd_put NULL session");
    CHECK_RC(etcd_put(s, NULL, "v", 1, 0, &r), ETCD_WTF, "etcd_put NULL key");
    CHECK_RC(etcd_put(s, K("/b"), NULL, 5, 0, &r), ETCD_WTF, "etcd_put NULL value with a length");
    CHECK_ERRMSG("etcd_put NULL value with a length");
    CHECK_RC(etcd_put(s, K("/b"), "v", (size_t)-1, 0, &r), ETCD_WTF, "etcd_put with an impossible length");
    CHECK_RC(etcd_put_if(s, NULL, "v", 1, 0, 0, &r), ETCD_WTF, "etcd_put_if NULL key");
    CHECK_RC(etcd_put_if(s, K("/b"), NULL, 1, 0, 0, &r), ETCD_WTF, "etcd_put_if NULL value with a length");
    CHECK_RC(etcd_delete_if(NULL, K("/b"), -1, &r), ETCD_WTF, "etcd_delete_if NULL session");
    CHECK_RC(etcd_delete_if(s, NULL, -1, &r), ETCD_WTF, "etcd_delete_if NULL key");
    CHECK_RC(etcd_delete_prefix(s, NULL, NULL, NULL), ETCD_WTF, "etcd_delete_prefix NULL prefix");
    CHECK_RC(etcd_watch_events(NULL, K("/b"), 0, 10, &ev, &n, &r), ETCD_WTF, "etcd_watch_events NULL session");
    CHECK_RC(etcd_watch_events(s, NULL, 0, 10, &ev, &n, &r), ETCD_WTF, "etcd_watch_events NULL prefix");
    CHECK_RC(etcd_lease_grant(NULL, 10, &l), ETCD_WTF, "etcd_lease_grant NULL session");
    CHECK_RC(etcd_lease_keepalive(NULL, 1, NULL), ETCD_WTF, "etcd_lease_keepalive NULL session");
    CHECK_RC(etcd_lease_keep(NULL, 1), ETCD_WTF, "etcd_lease_keep NULL session");
    CHECK_RC(etcd_lease_ttl(NULL, 1, NULL, NULL), ETCD_WTF, "etcd_lease_ttl NULL session");
    CHECK_RC(etcd_lease_revoke(NULL, 1), ETCD_WTF, "etcd_lease_revoke NULL session");
    CHECK_RC(etcd_lease_keepalive(s, 0, NULL), ETCD_PROTOCOL_ERROR, "etcd_lease_keepalive of lease 0");
    /* The free functions take NULL. */
    etcd_kv_free(NULL, 3);
    etcd_events_free(NULL, 3);
    CHECK(1, "etcd_kv_free(NULL) and etcd_events_free(NULL) do nothing");
}

void test_extended(etcd_session s)
{
    if (proto_v2) {
        test_extended_on_v2(s);
        return;
    }
    test_get_kv_put(s);
    test_list(s);
    test_conditional(s);
    test_counter(s);
    test_watch_events(s);
    test_leases(s);
    test_extended_bad_input(s);
}
