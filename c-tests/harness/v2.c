/*
 * v2.c: the harness's cases that came with the v2 protocol; they run on
 * both protocols: special characters in values and keys, big answers,
 * values on keys with children (v2's directories), and the v2 and v3
 * stores kept apart.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

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
void test_special_chars(etcd_session s)
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
void test_big_answers(etcd_session s)
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
    check_long_value(s, K("/big/100k"), big, n, "set a 100 KiB value",
                     "100 KiB value round-trips byte-exact", "length of the 100 KiB value");
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
void test_nested_values(etcd_session s)
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
void test_protocols_apart(etcd_session s)
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

