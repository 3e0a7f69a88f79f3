/*
 * kv.c: the harness's sections on opening sessions and on keys and
 * values: set/get, listing, compare-and-swap, ttl, delete, the leader,
 * NULL arguments, dead servers, and many threads on one session.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

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

/*
 * etcd_open_str(servers), then a set and a get of key through it: three
 * checks, named open_what, "set <via>" and "get <via>".
 */
static void open_set_get(const char *servers, const char *open_what,
                         const char *key, const char *value, const char *via)
{
    etcd_session s = open_str(servers);
    char what[200];
    CHECK(s != NULL, open_what);
    if (s) {
        snprintf(what, sizeof what, "set %s", via);
        CHECK_RC(etcd_set(s, K(key), (char *)value, NULL, 0), ETCD_OK, what);
        snprintf(what, sizeof what, "get %s", via);
        CHECK_GET(s, K(key), value, what);
        etcd_close_str(s);
    }
}

void test_open(void)
{
    char buf[512];
    etcd_session s;

    section("open", 60);

    open_set_get(endpoint, "etcd_open_str(host:port)", "/open/plain", "p", "via host:port session");
    snprintf(buf, sizeof buf, "%s", ep_url);
    open_set_get(buf, "etcd_open_str(http://host:port)", "/open/http", "h", "via http:// session");
    /* A dead server first: the request must fail over to the live one. */
    snprintf(buf, sizeof buf, "127.0.0.1:1 , %s", endpoint);
    open_set_get(buf, "etcd_open_str(dead , live)", "/open/failover", "f", "fails over past a dead server");

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

void check_long_value(etcd_session s, char *key, char *value, size_t n,
                      const char *set_what, const char *same_what,
                      const char *len_what)
{
    char *v;
    CHECK_RC(etcd_set(s, key, value, NULL, 0), ETCD_OK, set_what);
    v = etcd_get(s, key);
    CHECK(v && strlen(v) == n && memcmp(v, value, n) == 0, same_what);
    if (v)
        CHECK_INT_EQ(strlen(v), n, len_what);
    free(v);
}

void test_set_get(etcd_session s)
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
        check_long_value(s, K("/sg/big"), big, n, "set 1,000,000-byte value",
                         "1,000,000-byte value round-trips", "length of 1,000,000-byte value");

        big[n] = 'a' + (char)((n * 7 + n / 26) % 26);
        big[1600000] = '\0';
        if (!proto_v2) {
            CHECK_RC(etcd_set(s, K("/sg/huge"), big, NULL, 0), ETCD_PROTOCOL_ERROR, "set 1,600,000-byte value is refused");
            CHECK_ERRMSG("1,600,000-byte value");
            CHECK_GET_NULL(s, K("/sg/huge"), "refused huge value was not stored");
        } else {
            /* etcd's request limit is the v3 API's: v2 takes 1.6 MB. */
            check_long_value(s, K("/sg/huge"), big, 1600000, "v2: set 1,600,000-byte value",
                             "v2: 1,600,000-byte value round-trips", "v2: length of 1,600,000-byte value");
            CHECK_RC(etcd_delete(s, K("/sg/huge")), ETCD_OK, "v2: delete the 1,600,000-byte value");
        }
        free(big);
    }
}

void test_listing(etcd_session s)
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

void test_cas(etcd_session s)
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

void test_ttl(etcd_session s)
{
    section("ttl", 60);

    CHECK_RC(etcd_set(s, K("/ttl/k"), "t", NULL, 2), ETCD_OK, "set with ttl 2");
    CHECK_GET(s, K("/ttl/k"), "t", "ttl key readable at once");
    /* etcd revokes expired leases in a background loop; 4 s is ample. */
    sleep_ms(4000);
    CHECK_GET_NULL(s, K("/ttl/k"), "ttl key gone after ~4 s");
}

void test_delete(etcd_session s)
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

void test_leader(etcd_session s)
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

void test_null_args(etcd_session s)
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

void test_dead_servers(void)
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

/* --- threads ------------------------------------------------------- */

#define NTHREADS 8
#define NITER 200

struct thread_job {
    etcd_session s;
    int id;
    int set_ok, get_ok, del_ok, gone_ok;
    char first_error[512];
};

/* The first error of a thread, kept for the report. */
static void note_error(struct thread_job *j, const char *fmt, ...)
{
    va_list ap;
    if (j->first_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(j->first_error, sizeof j->first_error, fmt, ap);
    va_end(ap);
}

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
        else
            note_error(j, "set %s: %s: %s", key, rc_name(r), errmsg_or_null());
        got = etcd_get(j->s, key);
        if (got && strcmp(got, val) == 0)
            j->get_ok++;
        else
            note_error(j, "get %s: got %s want %s (%s)", key, show(got), show(val),
                       errmsg_or_null());
        free(got);
        r = etcd_delete(j->s, key);
        if (r == ETCD_OK)
            j->del_ok++;
        else
            note_error(j, "delete %s: %s: %s", key, rc_name(r), errmsg_or_null());
        got = etcd_get(j->s, key);
        if (!got)
            j->gone_ok++;
        else
            note_error(j, "get after delete %s: got %s", key, show(got));
        free(got);
    }
    return NULL;
}

void test_threads(etcd_session s)
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

