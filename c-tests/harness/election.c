/*
 * election.c: the harness's sections for leader election (SPEC section 7,
 * etcd v3): etcd_campaign, etcd_proclaim, etcd_resign,
 * etcd_election_leader and etcd_observe, row by row; the hand-over after
 * a resign, timed; a campaign that times out (its candidacy withdrawn:
 * the next candidate wins at once); a leader whose lease lapses; observe
 * seeing proclamations and hand-overs exactly once; a leadership shared
 * with `etcdctl elect`; bad input.  On v2 every call must answer ETCD_WTF.
 *
 * Candidates that must wait run in threads of this process, each on a
 * session of its own.  Every string and array the library hands out is
 * freed (make memcheck checks that nothing leaks).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* etcd's election name for the election `name` (canonical, under the run's
 * prefix): "/_elections/" + the name without its leading '/', with '%' and
 * '/' escaped, as lock names are. */
static void election_name(char *out, size_t n, const char *canon)
{
    size_t o = (size_t)snprintf(out, n, "/_elections/");
    const char *p = canon + (canon[0] == '/');
    for (; *p && o + 4 < n; p++) {
        if (*p == '%' || *p == '/') {
            o += (size_t)snprintf(out + o, n - o, "%%%s", *p == '%' ? "25" : "2F");
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* A lease of ttl seconds kept alive by the session (0 on failure). */
static int64_t kept_lease(etcd_session s, int64_t ttl)
{
    int64_t lease = 0;
    if (etcd_lease_grant(s, ttl, &lease) != ETCD_OK || etcd_lease_keep(s, lease) != ETCD_OK)
        return 0;
    return lease;
}

/* The current leader's value (malloc'd), NULL when nobody leads. */
static char *leader_value(etcd_session s, const char *election, int64_t *lease)
{
    etcd_kv *kv = NULL;
    char *v = NULL;
    if (etcd_election_leader(s, election, &kv) == ETCD_OK && kv) {
        v = strdup(kv->value);
        if (lease)
            *lease = kv->lease;
    }
    etcd_kv_free(kv, 1);
    return v;
}

/* --- a candidate campaigning in a thread of its own ------------------- */

struct candidate {
    char election[512];
    char value[64];
    unsigned timeout_ms;
    etcd_session s;             /* its own session */
    int64_t lease;              /* kept alive by s */
    pthread_t thread;
    int started;
    etcd_result rc;
    char *leadership;
    double elected_at;
};

static void *campaigner(void *arg)
{
    struct candidate *c = arg;
    c->rc = etcd_campaign(c->s, c->election, c->value, c->lease, c->timeout_ms, &c->leadership);
    c->elected_at = now();
    return NULL;
}

/* Starts c campaigning in a thread; 0 (a failure counted) if it could not. */
static int candidate_start(struct candidate *c, const char *election, const char *value,
                           unsigned timeout_ms)
{
    memset(c, 0, sizeof *c);
    snprintf(c->election, sizeof c->election, "%s", election);
    snprintf(c->value, sizeof c->value, "%s", value);
    c->timeout_ms = timeout_ms;
    c->s = open_str(endpoint);
    c->lease = c->s ? kept_lease(c->s, 10) : 0;
    c->rc = ETCD_WTF;
    if (!c->lease || pthread_create(&c->thread, NULL, campaigner, c) != 0) {
        CHECK(0, "start a candidate thread");
        return 0;
    }
    c->started = 1;
    return 1;
}

/* Waits for c's campaign to end. */
static void candidate_join(struct candidate *c)
{
    if (c->started)
        pthread_join(c->thread, NULL);
    c->started = 0;
}

/* Resigns if elected, revokes the lease, closes the session. */
static void candidate_end(struct candidate *c)
{
    candidate_join(c);
    if (c->leadership)
        etcd_resign(c->s, c->leadership);
    free(c->leadership);
    c->leadership = NULL;
    if (c->s) {
        if (c->lease)
            etcd_lease_revoke(c->s, c->lease);
        etcd_close_str(c->s);
    }
    c->s = NULL;
}

/* --- the calls, row by row --------------------------------------------- */

static void test_campaign_rows(etcd_session s)
{
    char *e = K("/el/basic"), name[600], want[700];
    char *l = NULL, *again = NULL, *v;
    etcd_kv *kv = NULL;
    int64_t lease = kept_lease(s, 10), gone = 0;

    section("election: campaign, leader, proclaim, resign", 30);
    CHECK(lease != 0, "a kept lease");
    CHECK_RC(etcd_election_leader(s, e, &kv), ETCD_PROTOCOL_ERROR, "nobody leads yet");
    CHECK(kv == NULL, "no leader handed out");
    CHECK_ERRMSG("no leader: message");
    CHECK_RC(etcd_campaign(s, e, "one", lease, 5000, &l), ETCD_OK, "campaign with nobody leading");
    CHECK(l != NULL && strlen(l) > 0, "a leadership string");
    CHECK_RC(etcd_election_leader(s, e, &kv), ETCD_OK, "etcd_election_leader");
    election_name(name, sizeof name, e);
    snprintf(want, sizeof want, "%s/%llx", name, (unsigned long long)lease);
    if (kv) {
        CHECK_STR_EQ(kv->key, want, "leader key: /_elections/<escaped name>/<lease hex>");
        CHECK_STR_EQ(kv->value, "one", "leader value: the proclamation");
        CHECK(kv->lease == lease, "leader's lease is the campaign's");
        CHECK(kv->create_revision > 0 && kv->mod_revision == kv->create_revision, "revisions");
    }
    etcd_kv_free(kv, 1);
    kv = NULL;
    CHECK_RC(etcd_proclaim(s, l, "two"), ETCD_OK, "proclaim");
    v = leader_value(s, e, NULL);
    CHECK_STR_EQ(v, "two", "the leader's value after proclaim");
    free(v);
    CHECK_RC(etcd_campaign(s, e, "two", lease, 1000, &again), ETCD_OK,
             "campaign again on the same lease: the same candidate, at once");
    CHECK_STR_EQ(again, l, "the same leadership");
    free(again);
    CHECK_RC(etcd_resign(s, l), ETCD_OK, "resign");
    CHECK_RC(etcd_election_leader(s, e, &kv), ETCD_PROTOCOL_ERROR, "nobody leads after resign");
    CHECK_RC(etcd_resign(s, l), ETCD_PROTOCOL_ERROR, "resign again: already lost");
    CHECK_ERRMSG("resign again: message");
    CHECK_RC(etcd_proclaim(s, l, "three"), ETCD_PROTOCOL_ERROR, "proclaim after resign");
    free(l);
    l = NULL;

    /* A campaign on a lease that is gone. */
    CHECK_RC(etcd_lease_grant(s, 5, &gone), ETCD_OK, "grant a lease to revoke");
    CHECK_RC(etcd_lease_revoke(s, gone), ETCD_OK, "revoke it");
    CHECK_RC(etcd_campaign(s, e, "x", gone, 2000, &l), ETCD_PROTOCOL_ERROR, "campaign on a revoked lease");
    CHECK(l == NULL, "no leadership for a revoked lease");
    CHECK_ERRMSG("revoked lease: message");
    etcd_lease_revoke(s, lease);
}

/* --- hand-over after a resign; a campaign time-out ---------------------- */

static void test_hand_over(etcd_session s)
{
    char *e = K("/el/handover");
    char *l = NULL;
    struct candidate b;
    double t0, took;
    int64_t lease = kept_lease(s, 10), blease = 0;

    section("election: hand-over after resign", 30);
    CHECK_RC(etcd_campaign(s, e, "a", lease, 5000, &l), ETCD_OK, "a leads");
    if (candidate_start(&b, e, "b", 20000)) {
        sleep_ms(500);
        CHECK(b.elected_at == 0, "b waits while a leads");
        t0 = now();
        CHECK_RC(etcd_resign(s, l), ETCD_OK, "a resigns");
        candidate_join(&b);
        took = b.elected_at - t0;
        CHECK_RC(b.rc, ETCD_OK, "b is elected");
        record(took < 2.0, __FILE__, __LINE__, "b elected %.3f s after a resigned, want < 2 s", took);
        printf("     (hand-over after resign: %.3f s)\n", took);
        free(leader_value(s, e, &blease));
        CHECK(blease == b.lease, "etcd_election_leader names b");
    }
    candidate_end(&b);
    free(l);
    etcd_lease_revoke(s, lease);
}

static void test_campaign_time_out(etcd_session s)
{
    char *e = K("/el/timeout"), name[600];
    char *l = NULL, *late = NULL;
    struct candidate c;
    etcd_kv *kvs = NULL;
    size_t n = 0;
    double t0, took;
    int64_t lease = kept_lease(s, 10), other = 0, clease = 0;
    etcd_session s2 = open_str(endpoint);

    section("election: campaign time-out withdraws the candidacy", 30);
    CHECK_RC(etcd_campaign(s, e, "a", lease, 5000, &l), ETCD_OK, "a leads");
    other = s2 ? kept_lease(s2, 10) : 0;
    t0 = now();
    CHECK_RC(etcd_campaign(s2, e, "late", other, 400, &late), ETCD_TIMEOUT, "b's campaign times out");
    took = now() - t0;
    CHECK(late == NULL, "no leadership after a time-out");
    CHECK_ERRMSG("time-out: message");
    record(took >= 0.4 && took < 5.0, __FILE__, __LINE__,
           "the 400 ms campaign returned after %.3f s", took);
    election_name(name, sizeof name, e);
    CHECK_RC(etcd_list(s, name, &kvs, &n, NULL), ETCD_OK, "list the candidates");
    CHECK(n == 1, "only the leader's key is left (b's withdrawn)");
    etcd_kv_free(kvs, n);
    /* A third candidate wins at once when a resigns: b is not in its way. */
    if (candidate_start(&c, e, "c", 20000)) {
        sleep_ms(300);
        t0 = now();
        CHECK_RC(etcd_resign(s, l), ETCD_OK, "a resigns");
        candidate_join(&c);
        CHECK_RC(c.rc, ETCD_OK, "c is elected");
        record(c.elected_at - t0 < 2.0, __FILE__, __LINE__,
               "c elected %.3f s after a resigned (b withdrawn), want < 2 s", c.elected_at - t0);
        free(leader_value(s, e, &clease));
        CHECK(clease == c.lease, "etcd_election_leader names c, not b");
    }
    candidate_end(&c);
    free(l);
    etcd_lease_revoke(s, lease);
    if (s2) {
        etcd_lease_revoke(s2, other);
        etcd_close_str(s2);
    }
}

/* --- a leader whose lease lapses ---------------------------------------- */

static void test_lease_lapse(etcd_session s)
{
    char *e = K("/el/lapse");
    char *l = NULL, *v;
    struct candidate b;
    double t0 = 0, took;
    int64_t lease = 0, blease = 0;

    section("election: a leader whose lease lapses", 30);
    CHECK_RC(etcd_lease_grant(s, 2, &lease), ETCD_OK, "a 2 s lease, not kept alive");
    CHECK_RC(etcd_campaign(s, e, "a", lease, 5000, &l), ETCD_OK, "a leads on it");
    t0 = now();
    if (candidate_start(&b, e, "b", 20000)) {
        candidate_join(&b);
        took = b.elected_at - t0;
        CHECK_RC(b.rc, ETCD_OK, "b is elected once a's lease lapsed");
        record(took > 1.0 && took < 6.0, __FILE__, __LINE__,
               "b elected %.3f s after a's 2 s lease was last granted", took);
        printf("     (hand-over after a 2 s lease lapsed: %.3f s)\n", took);
        CHECK_RC(etcd_proclaim(s, l, "still a?"), ETCD_PROTOCOL_ERROR, "a's proclaim fails");
        CHECK_ERRMSG("lapsed proclaim: message");
        v = leader_value(s, e, &blease);
        CHECK_STR_EQ(v, "b", "etcd_election_leader names b");
        CHECK(blease == b.lease, "with b's lease");
        free(v);
        CHECK_RC(etcd_resign(s, l), ETCD_PROTOCOL_ERROR, "a's resign: already lost");
    }
    candidate_end(&b);
    free(l);
}

/* --- observe ------------------------------------------------------------ */

struct later {
    etcd_session s;
    const char *leadership;
    long after_ms;
    double at;
};

static void *proclaim_later(void *arg)
{
    struct later *p = arg;
    sleep_ms(p->after_ms);
    p->at = now();
    if (etcd_proclaim(p->s, p->leadership, "live") != ETCD_OK)
        p->at = -1;
    return NULL;
}

static void test_observe(etcd_session s)
{
    char *e = K("/el/observe");
    char *l = NULL;
    etcd_kv *kv = NULL;
    struct candidate b;
    struct later p;
    pthread_t t;
    int64_t lease = kept_lease(s, 10), first = 0, from = 0;

    section("election: observe", 40);
    CHECK_RC(etcd_observe(s, e, 0, 200, &kv), ETCD_TIMEOUT, "observe with nobody leading times out");
    CHECK(kv == NULL, "nothing handed out on a time-out");
    CHECK_RC(etcd_campaign(s, e, "a1", lease, 5000, &l), ETCD_OK, "a leads");
    CHECK_RC(etcd_observe(s, e, 0, 5000, &kv), ETCD_OK, "observe from 0: the leader at once");
    if (kv) {
        CHECK_STR_EQ(kv->value, "a1", "observed value");
        first = kv->mod_revision;
        from = first + 1;
    }
    etcd_kv_free(kv, 1);
    kv = NULL;
    CHECK_RC(etcd_observe(s, e, from, 300, &kv), ETCD_TIMEOUT, "nothing new: time-out");
    /* A proclamation made while we wait. */
    p.s = s;
    p.leadership = l;
    p.after_ms = 300;
    p.at = 0;
    if (pthread_create(&t, NULL, proclaim_later, &p) == 0) {
        CHECK_RC(etcd_observe(s, e, from, 10000, &kv), ETCD_OK, "observe sees a proclamation");
        pthread_join(t, NULL);
        if (kv) {
            CHECK_STR_EQ(kv->value, "live", "the proclaimed value");
            record(p.at > 0 && now() - p.at < 2.0, __FILE__, __LINE__,
                   "seen %.3f s after the proclaim", now() - p.at);
            from = kv->mod_revision + 1;
        }
        etcd_kv_free(kv, 1);
        kv = NULL;
    }
    /* A hand-over: b waited behind a; it is reported once. */
    if (candidate_start(&b, e, "b1", 20000)) {
        sleep_ms(300);
        CHECK_RC(etcd_observe(s, e, from, 300, &kv), ETCD_TIMEOUT, "a candidate queuing is no change");
        CHECK_RC(etcd_resign(s, l), ETCD_OK, "a resigns");
        CHECK_RC(etcd_observe(s, e, from, 10000, &kv), ETCD_OK, "observe sees the hand-over");
        if (kv) {
            CHECK_STR_EQ(kv->value, "b1", "the new leader's value");
            CHECK(kv->lease == b.lease, "the new leader's lease");
            from = kv->mod_revision + 1;
        }
        etcd_kv_free(kv, 1);
        kv = NULL;
        CHECK_RC(etcd_observe(s, e, from, 300, &kv), ETCD_TIMEOUT, "and not again");
        CHECK_RC(etcd_observe(s, e, 0, 5000, &kv), ETCD_OK, "observe from 0 again");
        if (kv)
            CHECK(kv->mod_revision + 1 == from, "the current leader carries the hand-over's revision");
        etcd_kv_free(kv, 1);
        kv = NULL;
        /* From an old revision: the first change at or after it. */
        CHECK_RC(etcd_observe(s, e, first + 1, 5000, &kv), ETCD_OK, "observe from an old revision");
        if (kv)
            CHECK_STR_EQ(kv->value, "live", "the first change after it");
        etcd_kv_free(kv, 1);
    }
    candidate_end(&b);
    free(l);
    etcd_lease_revoke(s, lease);
}

/* --- etcdctl elect ------------------------------------------------------ */

static int etcdctl_elect_start(struct helper *h, const char *name, const char *proposal)
{
    char args[1200], cmd[2048];
    snprintf(args, sizeof args, "elect '%s' '%s'", name, proposal);
    etcdctl_cmd(cmd, sizeof cmd, args);
    if (helper_exec(h, cmd) != 0) {
        CHECK(0, "start etcdctl elect");
        return 0;
    }
    return 1;
}

static void test_etcdctl_elect(etcd_session s)
{
    char *e = K("/el/etcdctl"), name[600];
    char *l = NULL, *v;
    struct helper h;
    struct candidate c;
    int64_t lease = kept_lease(s, 10);
    double t0, seen = 0;
    int w;

    section("election: shared with etcdctl elect", 40);
    election_name(name, sizeof name, e);
    if (etcdctl_elect_start(&h, name, "from-etcdctl")) {
        w = helper_wait_for(&h, "from-etcdctl", 5000, NULL);
        CHECK(w == 1, "etcdctl elect leads");
        v = leader_value(s, e, NULL);
        CHECK_STR_EQ(v, "from-etcdctl", "etcd_election_leader sees etcdctl's proclamation");
        free(v);
        CHECK_RC(etcd_campaign(s, e, "c", lease, 500, &l), ETCD_TIMEOUT,
                 "a C campaign waits behind etcdctl (times out)");
        if (candidate_start(&c, e, "from-c", 20000)) {
            sleep_ms(300);
            t0 = now();
            kill(h.pid, SIGTERM);   /* etcdctl elect resigns on SIGTERM */
            candidate_join(&c);
            CHECK_RC(c.rc, ETCD_OK, "the C candidate takes over from etcdctl");
            record(c.elected_at - t0 < 3.0, __FILE__, __LINE__,
                   "elected %.3f s after etcdctl was stopped", c.elected_at - t0);
        }
        helper_finish(&h, 5000);
        /* Now etcdctl waits behind the C leader. */
        if (c.rc == ETCD_OK && etcdctl_elect_start(&h, name, "second-etcdctl")) {
            w = helper_wait_for(&h, "second-etcdctl", 1000, NULL);
            CHECK(w == 0, "etcdctl elect waits while the C candidate leads");
            t0 = now();
            CHECK_RC(etcd_resign(c.s, c.leadership), ETCD_OK, "the C leader resigns");
            w = helper_wait_for(&h, "second-etcdctl", 5000, &seen);
            CHECK(w == 1, "etcdctl elect leads after the C resign");
            if (w == 1)
                printf("     (etcdctl elected %.3f s after the C resign)\n", seen - t0);
            kill(h.pid, SIGTERM);
            helper_finish(&h, 5000);
        }
        free(c.leadership);
        c.leadership = NULL;
        candidate_end(&c);
    }
    free(l);
    etcd_lease_revoke(s, lease);
}

/* --- bad input; v2 -------------------------------------------------------- */

static void test_election_bad_input(etcd_session s)
{
    char *e = K("/el/bad");
    char *l = (char *)"stale", *good = NULL;
    etcd_kv *kv = (etcd_kv *)&l;
    int64_t lease = kept_lease(s, 10);
    static const char *bad[] = {
        "", "garbage", "e1", "e1.1.1", "e1.0.1.eA", "e1.x.1.eA", "e1.5.zz.eA",
        "e1.5.1.!!!", "e1.5.1.eA.more", "e2.5.1.eA",
    };
    size_t i;

    section("election: bad input", 30);
#define WTF(call, what) do { CHECK_RC((call), ETCD_WTF, what); CHECK_ERRMSG(what ": message"); } while (0)
    WTF(etcd_campaign(NULL, e, "v", lease, 100, &l), "campaign NULL session");
    CHECK(l == NULL, "campaign clears *leadership on failure");
    WTF(etcd_campaign(s, NULL, "v", lease, 100, &l), "campaign NULL election");
    WTF(etcd_campaign(s, e, NULL, lease, 100, &l), "campaign NULL value");
    WTF(etcd_campaign(s, e, "v", lease, 100, NULL), "campaign NULL leadership");
    WTF(etcd_campaign(s, e, "v", 0, 100, &l), "campaign lease 0");
    WTF(etcd_proclaim(NULL, "e1.5.1.eA", "v"), "proclaim NULL session");
    WTF(etcd_proclaim(s, NULL, "v"), "proclaim NULL leadership");
    WTF(etcd_resign(NULL, "e1.5.1.eA"), "resign NULL session");
    WTF(etcd_resign(s, NULL), "resign NULL leadership");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(etcd_proclaim(s, bad[i], "v"), ETCD_WTF, fmt_rot("proclaim bad leadership %s", show(bad[i])));
        CHECK_RC(etcd_resign(s, bad[i]), ETCD_WTF, fmt_rot("resign bad leadership %s", show(bad[i])));
    }
    CHECK(strstr(etcd_errmsg(), "leadership") != NULL, "the message names the leadership");
    WTF(etcd_election_leader(NULL, e, &kv), "leader NULL session");
    CHECK(kv == NULL, "leader clears *leader on failure");
    WTF(etcd_election_leader(s, NULL, &kv), "leader NULL election");
    WTF(etcd_election_leader(s, e, NULL), "leader NULL output");
    WTF(etcd_observe(NULL, e, 0, 10, &kv), "observe NULL session");
    WTF(etcd_observe(s, NULL, 0, 10, &kv), "observe NULL election");
    WTF(etcd_observe(s, e, 0, 10, NULL), "observe NULL output");
    /* A well-formed leadership that never led: refused by etcd. */
    CHECK_RC(etcd_campaign(s, e, "v", lease, 2000, &good), ETCD_OK, "a real leadership");
    CHECK_RC(etcd_resign(s, good), ETCD_OK, "resigned");
    CHECK_RC(etcd_proclaim(s, good, "v"), ETCD_PROTOCOL_ERROR, "proclaim on a resigned leadership");
    free(good);
#undef WTF
    etcd_lease_revoke(s, lease);
}

static void test_elections_on_v2(etcd_session s)
{
    char *l = NULL;
    etcd_kv *kv = NULL;
    const char *e = K("/el/v2");

    section("elections on v2", 30);
#define V2_REFUSES(call, what) do {                                         \
        CHECK_RC((call), ETCD_WTF, what);                                   \
        CHECK(strstr(etcd_errmsg(), "v3") != NULL, what ": errmsg names v3"); \
    } while (0)
    V2_REFUSES(etcd_campaign(s, e, "v", 7, 100, &l), "etcd_campaign on v2");
    V2_REFUSES(etcd_proclaim(s, "e1.5.7.eA", "v"), "etcd_proclaim on v2");
    V2_REFUSES(etcd_resign(s, "e1.5.7.eA"), "etcd_resign on v2");
    V2_REFUSES(etcd_election_leader(s, e, &kv), "etcd_election_leader on v2");
    V2_REFUSES(etcd_observe(s, e, 0, 100, &kv), "etcd_observe on v2");
#undef V2_REFUSES
    CHECK(l == NULL && kv == NULL, "nothing handed out on v2");
}

void test_elections(etcd_session s)
{
    if (proto_v2) {
        test_elections_on_v2(s);
        return;
    }
    test_campaign_rows(s);
    test_hand_over(s);
    test_campaign_time_out(s);
    test_lease_lapse(s);
    test_observe(s);
    test_etcdctl_elect(s);
    test_election_bad_input(s);
}
