/*
 * txn.c: the harness's sections for transactions and fenced writes (SPEC
 * section 8.3, etcd v3): etcd_txn with every compare target and op, both
 * branches, prefix GET (keys only, count only) and DELETE, binary values
 * and leases, etcd's refusals, bad arguments (nothing sent), etcdctl txn
 * reading what etcd_txn wrote and the reverse, and fencing: a lock holder
 * and a leader whose lease lapsed cannot write once a successor holds the
 * lock or the leadership.  On v2 etcd_txn answers ETCD_WTF.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* One compare / op, filled in by value (C99 compound literals). */
static etcd_compare cmp_num(etcd_compare_target t, etcd_compare_op op, const char *key, int64_t n)
{
    etcd_compare c;
    memset(&c, 0, sizeof c);
    c.target = t;
    c.op = op;
    c.key = key;
    c.number = n;
    return c;
}

static etcd_compare cmp_value(etcd_compare_op op, const char *key, const char *v, size_t len)
{
    etcd_compare c = cmp_num(ETCD_CMP_VALUE, op, key, 0);
    c.value = v;
    c.value_len = len;
    return c;
}

static etcd_txn_op op_put(const char *key, const char *v, size_t len, int64_t lease)
{
    etcd_txn_op o;
    memset(&o, 0, sizeof o);
    o.kind = ETCD_TXN_PUT;
    o.key = key;
    o.value = v;
    o.value_len = len;
    o.lease = lease;
    return o;
}

static etcd_txn_op op_get(const char *key, unsigned flags)
{
    etcd_txn_op o;
    memset(&o, 0, sizeof o);
    o.kind = ETCD_TXN_GET;
    o.key = key;
    o.flags = flags;
    return o;
}

static etcd_txn_op op_del(const char *key, unsigned flags)
{
    etcd_txn_op o;
    memset(&o, 0, sizeof o);
    o.kind = ETCD_TXN_DELETE;
    o.key = key;
    o.flags = flags;
    return o;
}

/* The value of key as a malloc'd string (NULL when missing). */
static char *value_of(etcd_session s, const char *key, int64_t *mod)
{
    etcd_kv *kv = NULL;
    char *v = NULL;
    if (etcd_get_kv(s, key, &kv, NULL) == ETCD_OK && kv) {
        v = strdup(kv->value);
        if (mod)
            *mod = kv->mod_revision;
    }
    etcd_kv_free(kv, 1);
    return v;
}

/* Does one compare hold?  -1: the call failed. */
static int holds(etcd_session s, etcd_compare c)
{
    int ok = -1;
    if (etcd_txn(s, &c, 1, NULL, 0, NULL, 0, &ok, NULL, NULL, NULL) != ETCD_OK)
        return -1;
    return ok;
}

static void test_txn_on_v2(etcd_session s)
{
    int ok = 7;
    etcd_txn_op put = op_put(K("/t/v2"), "v", 1, 0);
    section("etcd_txn on v2", 10);
    CHECK_RC(etcd_txn(s, NULL, 0, &put, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_WTF,
             "etcd_txn on v2");
    CHECK(strstr(etcd_errmsg(), "v3") != NULL, "errmsg names v3");
    CHECK_INT_EQ(ok, 0, "*succeeded cleared");
}

static void test_txn_branches(etcd_session s)
{
    char k[256], k2[256];
    etcd_compare c;
    etcd_txn_op then_ops[2], else_ops[1];
    etcd_txn_result *res = NULL;
    size_t n = 99;
    int ok = -1;
    int64_t rev = 0, before = 0;
    char *v;

    section("etcd_txn: both branches", 30);
    snprintf(k, sizeof k, "%s", K("/t/b/k"));
    snprintf(k2, sizeof k2, "%s", K("/t/b//k2/"));
    etcd_get_kv(s, k, NULL, &before);
    /* Absent: VERSION == 0 holds; then put and read back in one txn. */
    c = cmp_num(ETCD_CMP_VERSION, ETCD_CMP_EQUAL, k, 0);
    then_ops[0] = op_put(k, "v1", 2, 0);
    then_ops[1] = op_get(k, 0);
    else_ops[0] = op_get(k, 0);
    CHECK_RC(etcd_txn(s, &c, 1, then_ops, 2, else_ops, 1, &ok, &res, &n, &rev), ETCD_OK,
             "txn: absent -> put, get");
    CHECK_INT_EQ(ok, 1, "the compare held");
    CHECK_INT_EQ(n, 2, "two results, one per op that ran");
    CHECK(rev > before, "the revision after the txn");
    if (res && n == 2) {
        CHECK(res[0].kvs == NULL && res[0].count == 0 && res[0].number == 0, "a PUT's result is empty");
        CHECK_INT_EQ(res[1].count, 1, "the GET read one key");
        CHECK_INT_EQ(res[1].number, 1, "the GET matched one key");
        if (res[1].count == 1) {
            CHECK_STR_EQ(res[1].kvs[0].key, k, "GET key canonical");
            CHECK_STR_EQ(res[1].kvs[0].value, "v1", "the GET sees the PUT of the same txn");
            CHECK_INT_EQ(res[1].kvs[0].mod_revision, rev, "written at the txn's revision");
            CHECK_INT_EQ(res[1].kvs[0].version, 1, "version 1");
        }
    }
    etcd_txn_results_free(res, n);

    /* Present now: the same compare fails; the else branch reads. */
    res = NULL;
    CHECK_RC(etcd_txn(s, &c, 1, then_ops, 2, else_ops, 1, &ok, &res, &n, &rev), ETCD_OK,
             "txn: failed compare is not an error");
    CHECK_INT_EQ(ok, 0, "the compare failed");
    CHECK_INT_EQ(n, 1, "one result (the else op)");
    if (res && n == 1 && res[0].count == 1)
        CHECK_STR_EQ(res[0].kvs[0].value, "v1", "else GET reads the value");
    etcd_txn_results_free(res, n);

    /* Two keys at once, a key not canonical; results and revision optional. */
    then_ops[0] = op_put(k, "a", 1, 0);
    then_ops[1] = op_put(k2, "b", 1, 0);
    c = cmp_value(ETCD_CMP_EQUAL, k, "v1", 2);
    CHECK_RC(etcd_txn(s, &c, 1, then_ops, 2, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK,
             "two puts, outputs optional");
    CHECK_INT_EQ(ok, 1, "value compare held");
    v = value_of(s, k, &rev);
    CHECK_STR_EQ(v, "a", "first key written");
    free(v);
    v = value_of(s, K("/t/b/k2"), &before);
    CHECK_STR_EQ(v, "b", "second key written under its canonical path");
    free(v);
    CHECK_INT_EQ(before, rev, "both at one revision");
    /* Binary values through a txn PUT and GET. */
    {
        static const char bin[] = {'x', '\0', '\xfe', 'y'};
        etcd_txn_op bput = op_put(K("/t/b/bin"), bin, sizeof bin, 0);
        etcd_txn_op bget = op_get(K("/t/b/bin"), 0);
        res = NULL;
        CHECK_RC(etcd_txn(s, NULL, 0, &bput, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "PUT of bytes with a NUL");
        CHECK_RC(etcd_txn(s, NULL, 0, &bget, 1, NULL, 0, &ok, &res, &n, NULL), ETCD_OK, "GET them back");
        if (res && n == 1 && res[0].count == 1)
            CHECK(res[0].kvs[0].value_len == sizeof bin && memcmp(res[0].kvs[0].value, bin, sizeof bin) == 0
                  && res[0].kvs[0].value[sizeof bin] == '\0', "the same bytes, then a NUL");
        else
            CHECK(0, "one key read");
        etcd_txn_results_free(res, n);
    }
    /* No compares, no ops: succeeded. */
    CHECK_RC(etcd_txn(s, NULL, 0, NULL, 0, NULL, 0, &ok, &res, &n, &rev), ETCD_OK, "empty txn");
    CHECK(ok == 1 && res == NULL && n == 0, "an empty txn succeeds with no results");
}

static void test_txn_compares(etcd_session s)
{
    char k[256], missing[256];
    int64_t lease = 0, create = 0, mod = 0, ver = 0;
    etcd_kv *kv = NULL;
    static const char bin[] = {'m', '\0', 'z'};
    int64_t r;

    section("etcd_txn: every compare target and op", 30);
    snprintf(k, sizeof k, "%s", K("/t/c/k"));
    snprintf(missing, sizeof missing, "%s", K("/t/c/missing"));
    CHECK_RC(etcd_lease_grant(s, 30, &lease), ETCD_OK, "a lease");
    CHECK_RC(etcd_put(s, k, bin, sizeof bin, lease, &r), ETCD_OK, "put a binary value on it");
    CHECK_RC(etcd_put(s, k, bin, sizeof bin, lease, &r), ETCD_OK, "again: version 2");
    CHECK_RC(etcd_get_kv(s, k, &kv, NULL), ETCD_OK, "read it");
    if (kv) {
        create = kv->create_revision;
        mod = kv->mod_revision;
        ver = kv->version;
    }
    etcd_kv_free(kv, 1);
    CHECK_INT_EQ(ver, 2, "version 2");

    /* VALUE: bytes, NULs inside; EQUAL/NOT_EQUAL/LESS/GREATER. */
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_EQUAL, k, bin, sizeof bin)), 1, "VALUE == its bytes");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_EQUAL, k, "m", 1)), 0, "VALUE == a prefix of it: false");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_NOT_EQUAL, k, "m", 1)), 1, "VALUE != another");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_NOT_EQUAL, k, bin, sizeof bin)), 0, "VALUE != itself: false");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_LESS, k, "n", 1)), 1, "VALUE < \"n\"");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_LESS, k, "l", 1)), 0, "VALUE < \"l\": false");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_GREATER, k, "l", 1)), 1, "VALUE > \"l\"");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_GREATER, k, "n", 1)), 0, "VALUE > \"n\": false");
    /* VERSION, CREATE_REVISION, MOD_REVISION, LEASE. */
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_VERSION, ETCD_CMP_EQUAL, k, 2)), 1, "VERSION == 2");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_VERSION, ETCD_CMP_GREATER, k, 2)), 0, "VERSION > 2: false");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_VERSION, ETCD_CMP_LESS, k, 3)), 1, "VERSION < 3");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_CREATE_REVISION, ETCD_CMP_EQUAL, k, create)), 1, "CREATE == its create revision");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_CREATE_REVISION, ETCD_CMP_NOT_EQUAL, k, create)), 0, "CREATE != it: false");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_MOD_REVISION, ETCD_CMP_EQUAL, k, mod)), 1, "MOD == its mod revision");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_MOD_REVISION, ETCD_CMP_GREATER, k, create)), 1, "MOD > create");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_MOD_REVISION, ETCD_CMP_LESS, k, mod)), 0, "MOD < itself: false");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_LEASE, ETCD_CMP_EQUAL, k, lease)), 1, "LEASE == its lease");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_LEASE, ETCD_CMP_EQUAL, k, 0)), 0, "LEASE == 0: false");
    /* A missing key: the numbers compare against 0; a VALUE compare is false. */
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_VERSION, ETCD_CMP_EQUAL, missing, 0)), 1, "missing: VERSION == 0");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_CREATE_REVISION, ETCD_CMP_EQUAL, missing, 0)), 1, "missing: CREATE == 0");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_MOD_REVISION, ETCD_CMP_EQUAL, missing, 0)), 1, "missing: MOD == 0");
    CHECK_INT_EQ(holds(s, cmp_num(ETCD_CMP_LEASE, ETCD_CMP_EQUAL, missing, 0)), 1, "missing: LEASE == 0");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_EQUAL, missing, "", 0)), 0, "missing: VALUE == \"\" is false");
    CHECK_INT_EQ(holds(s, cmp_value(ETCD_CMP_NOT_EQUAL, missing, "x", 1)), 0, "missing: VALUE != \"x\" is false");
    etcd_lease_revoke(s, lease);
}

static void test_txn_prefix(etcd_session s)
{
    char a[256], get_key[260];
    etcd_txn_op get, del;
    etcd_txn_result *res = NULL;
    size_t n = 0;
    int ok = 0;
    int64_t r;
    static const char *below[] = {"/t/p/a/1", "/t/p/a/2", "/t/p/a/b/3"};
    size_t i;
    char *v;

    section("etcd_txn: prefix GET and DELETE", 30);
    snprintf(a, sizeof a, "%s", K("/t/p/a"));
    for (i = 0; i < 3; i++)
        etcd_put(s, K(below[i]), "x", 1, 0, &r);
    etcd_put(s, a, "self", 4, 0, &r);
    etcd_put(s, K("/t/p/a-x"), "sib", 3, 0, &r);
    snprintf(get_key, sizeof get_key, "%s/", a);

    get = op_get(get_key, ETCD_PREFIX);
    CHECK_RC(etcd_txn(s, NULL, 0, &get, 1, NULL, 0, &ok, &res, &n, NULL), ETCD_OK, "GET PREFIX");
    if (res && n == 1) {
        CHECK_INT_EQ(res[0].count, 3, "strictly below a/: three keys");
        CHECK_INT_EQ(res[0].number, 3, "three matched");
        for (i = 0; i < res[0].count && i < 3; i++) {
            CHECK_STR_EQ(res[0].kvs[i].key, K(below[i]), "sorted by key, every depth");
            CHECK_STR_EQ(res[0].kvs[i].value, "x", "with values");
        }
    }
    etcd_txn_results_free(res, n);
    res = NULL;
    get = op_get(a, ETCD_PREFIX | ETCD_KEYS_ONLY);
    CHECK_RC(etcd_txn(s, NULL, 0, &get, 1, NULL, 0, &ok, &res, &n, NULL), ETCD_OK, "GET PREFIX KEYS_ONLY");
    if (res && n == 1 && res[0].count == 3)
        CHECK(res[0].kvs[0].value_len == 0 && strcmp(res[0].kvs[0].value, "") == 0, "keys only: value \"\"");
    else
        CHECK(0, "keys only: three keys");
    etcd_txn_results_free(res, n);
    res = NULL;
    get = op_get(a, ETCD_PREFIX | ETCD_COUNT_ONLY);
    CHECK_RC(etcd_txn(s, NULL, 0, &get, 1, NULL, 0, &ok, &res, &n, NULL), ETCD_OK, "GET PREFIX COUNT_ONLY");
    if (res && n == 1)
        CHECK(res[0].kvs == NULL && res[0].count == 0 && res[0].number == 3, "count only: no keys, number 3");
    else
        CHECK(0, "count only: one result");
    etcd_txn_results_free(res, n);

    res = NULL;
    del = op_del(a, ETCD_PREFIX);
    CHECK_RC(etcd_txn(s, NULL, 0, &del, 1, NULL, 0, &ok, &res, &n, NULL), ETCD_OK, "DELETE PREFIX");
    if (res && n == 1)
        CHECK_INT_EQ(res[0].number, 4, "the key and the three below it");
    etcd_txn_results_free(res, n);
    v = value_of(s, K("/t/p/a-x"), NULL);
    CHECK_STR_EQ(v, "sib", "a sibling a-x is not deleted");
    free(v);
    v = value_of(s, a, NULL);
    CHECK_NULL(v, "the prefix key itself is gone");
    free(v);
    res = NULL;
    del = op_del(K("/t/p/a-x"), 0);
    CHECK_RC(etcd_txn(s, NULL, 0, &del, 1, NULL, 0, &ok, &res, &n, NULL), ETCD_OK, "DELETE one key");
    if (res && n == 1)
        CHECK_INT_EQ(res[0].number, 1, "one deleted");
    etcd_txn_results_free(res, n);
}

static void test_txn_refusals(etcd_session s)
{
    char k[256];
    etcd_txn_op ops[130];
    etcd_compare c;
    int ok = 5, i;
    char *big, *v;
    etcd_txn_result *res = (etcd_txn_result *)&ok; /* must be cleared */
    size_t n = 5;

    section("etcd_txn: refusals and bad arguments", 30);
    snprintf(k, sizeof k, "%s", K("/t/r/k"));
    ops[0] = op_put(k, "1", 1, 0);
    ops[1] = op_put(k, "2", 1, 0);
    CHECK_RC(etcd_txn(s, NULL, 0, ops, 2, NULL, 0, &ok, &res, &n, NULL), ETCD_PROTOCOL_ERROR,
             "a key written twice");
    CHECK(strstr(etcd_errmsg(), "duplicate key") != NULL, "errmsg has etcd's reason");
    CHECK(res == NULL && n == 0 && ok == 0, "outputs cleared on failure");
    ops[0] = op_put(k, "1", 1, 0x7fffffff0000LL);
    CHECK_RC(etcd_txn(s, NULL, 0, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_PROTOCOL_ERROR,
             "an unknown lease");
    CHECK(strstr(etcd_errmsg(), "lease not found") != NULL, "errmsg: lease not found");
    big = malloc(1600000);
    if (big) {
        memset(big, 'x', 1600000);
        ops[0] = op_put(k, big, 1600000, 0);
        CHECK_RC(etcd_txn(s, NULL, 0, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_PROTOCOL_ERROR,
                 "too large");
        CHECK(strstr(etcd_errmsg(), "too large") != NULL, "errmsg: too large");
        free(big);
    }
    for (i = 0; i < 129; i++)
        ops[i] = op_put(fmt_rot("%s/many/%d", prefix, i), "m", 1, 0);
    CHECK_RC(etcd_txn(s, NULL, 0, ops, 129, NULL, 0, &ok, NULL, NULL, NULL), ETCD_PROTOCOL_ERROR,
             "more ops than --max-txn-ops (128)");
    CHECK(strstr(etcd_errmsg(), "too many operations") != NULL, "errmsg: too many operations");

    /* Bad arguments: ETCD_WTF, and nothing sent (the PUT never lands). */
    ops[0] = op_put(k, "sent", 4, 0);
#define BAD(call, what) do {                                                \
        CHECK_RC((call), ETCD_WTF, what);                                   \
        CHECK_ERRMSG(what);                                                 \
    } while (0)
    BAD(etcd_txn(NULL, NULL, 0, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "NULL session");
    BAD(etcd_txn(s, NULL, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "NULL compares, count 1");
    BAD(etcd_txn(s, NULL, 0, NULL, 1, NULL, 0, &ok, NULL, NULL, NULL), "NULL then_ops, count 1");
    BAD(etcd_txn(s, NULL, 0, ops, 1, NULL, 2, &ok, NULL, NULL, NULL), "NULL else_ops, count 2");
    BAD(etcd_txn(s, NULL, 0, ops, 1, NULL, 0, NULL, NULL, NULL, NULL), "NULL succeeded");
    BAD(etcd_txn(s, NULL, 0, ops, 1, NULL, 0, &ok, &res, NULL, NULL), "results without nresults");
    c = cmp_num(ETCD_CMP_VERSION, ETCD_CMP_EQUAL, NULL, 0);
    BAD(etcd_txn(s, &c, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "a compare with a NULL key");
    c = cmp_num((etcd_compare_target)99, ETCD_CMP_EQUAL, k, 0);
    BAD(etcd_txn(s, &c, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "an unknown compare target");
    c = cmp_num(ETCD_CMP_VERSION, (etcd_compare_op)7, k, 0);
    BAD(etcd_txn(s, &c, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "an unknown compare op");
    c = cmp_num(ETCD_CMP_LEADER, ETCD_CMP_NOT_EQUAL, "e1.5.1.eA", 0);
    BAD(etcd_txn(s, &c, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "LEADER with NOT_EQUAL");
    c = cmp_num(ETCD_CMP_LEADER, ETCD_CMP_EQUAL, "not a leadership", 0);
    BAD(etcd_txn(s, &c, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "a malformed leadership string");
    c = cmp_num(ETCD_CMP_LOCK_HELD, ETCD_CMP_EQUAL, k, 0);
    BAD(etcd_txn(s, &c, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "LOCK_HELD without an index");
    c = cmp_value(ETCD_CMP_EQUAL, k, NULL, 3);
    BAD(etcd_txn(s, &c, 1, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), "a VALUE compare, NULL value, length 3");
    ops[1] = op_put(NULL, "x", 1, 0);
    BAD(etcd_txn(s, NULL, 0, ops, 2, NULL, 0, &ok, NULL, NULL, NULL), "an op with a NULL key");
    ops[1] = op_put(k, "x", 1, 0);
    ops[1].kind = (etcd_txn_kind)9;
    BAD(etcd_txn(s, NULL, 0, ops, 2, NULL, 0, &ok, NULL, NULL, NULL), "an unknown op kind");
    ops[1] = op_put(K("/t/r/other"), "x", 1, 0);
    ops[1].flags = ETCD_PREFIX;
    BAD(etcd_txn(s, NULL, 0, ops, 2, NULL, 0, &ok, NULL, NULL, NULL), "a PUT with ETCD_PREFIX");
    ops[1] = op_get(k, 0x100);
    BAD(etcd_txn(s, NULL, 0, ops, 2, NULL, 0, &ok, NULL, NULL, NULL), "an unknown flag");
    ops[1] = op_del(k, ETCD_KEYS_ONLY);
    BAD(etcd_txn(s, NULL, 0, ops, 2, NULL, 0, &ok, NULL, NULL, NULL), "a DELETE with ETCD_KEYS_ONLY");
    ops[1] = op_put(k, NULL, 2, 0);
    BAD(etcd_txn(s, NULL, 0, ops + 1, 1, NULL, 0, &ok, NULL, NULL, NULL), "a PUT, NULL value, length 2");
#undef BAD
    v = value_of(s, k, NULL);
    CHECK_NULL(v, "nothing was sent for bad arguments");
    free(v);
    /* NULL value with length 0 is the empty value. */
    ops[0] = op_put(k, NULL, 0, 0);
    CHECK_RC(etcd_txn(s, NULL, 0, ops, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "PUT of an empty value");
    v = value_of(s, k, NULL);
    CHECK_STR_EQ(v, "", "empty value");
    free(v);
}

/* etcdctl txn reads what etcd_txn wrote, and etcd_txn reads what it wrote. */
static void test_txn_etcdctl(etcd_session s)
{
    char k[256], k2[256], cmd[2048], args[1024];
    etcd_txn_op put[2], get;
    etcd_compare c;
    etcd_txn_result *res = NULL;
    size_t n = 0;
    int ok = 0;
    char *out;

    section("etcd_txn and etcdctl txn", 30);
    snprintf(k, sizeof k, "%s", K("/t/e/k"));
    snprintf(k2, sizeof k2, "%s", K("/t/e/k2"));
    put[0] = op_put(k, "from-c", 6, 0);
    put[1] = op_put(k2, "too", 3, 0);
    CHECK_RC(etcd_txn(s, NULL, 0, put, 2, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "etcd_txn writes two keys");
    /* etcdctl's txn: compares, blank line, success ops, blank line, failure ops. */
    snprintf(args, sizeof args,
             "txn <<'EOF'\nvalue(\"%s\") = \"from-c\"\nvalue(\"%s\") = \"too\"\n\nput %s/t/e/k3 from-etcdctl\n\n\nEOF",
             k, k2, prefix);
    etcdctl_cmd(cmd, sizeof cmd, args);
    out = run_capture(cmd, NULL);
    CHECK(out && strncmp(out, "SUCCESS", 7) == 0, "etcdctl txn: compares on what etcd_txn wrote hold");
    free(out);
    c = cmp_value(ETCD_CMP_EQUAL, K("/t/e/k3"), "from-etcdctl", 12);
    get = op_get(K("/t/e/k3"), 0);
    CHECK_RC(etcd_txn(s, &c, 1, &get, 1, NULL, 0, &ok, &res, &n, NULL), ETCD_OK, "etcd_txn on etcdctl's write");
    CHECK_INT_EQ(ok, 1, "its value compare holds");
    if (res && n == 1 && res[0].count == 1)
        CHECK_STR_EQ(res[0].kvs[0].value, "from-etcdctl", "and reads it");
    else
        CHECK(0, "one key read");
    etcd_txn_results_free(res, n);
}

/* A lock holder whose lease lapsed cannot write once a successor holds. */
static void test_fenced_lock(etcd_session s)
{
    char name[256], k[256], *idx = NULL, *idx2 = NULL, *v;
    etcd_session s2 = open_str(endpoint);
    etcd_compare c;
    etcd_txn_op put;
    int ok = -1;
    double lapse, took;

    section("fenced writes: a lock holder past its lease", 40);
    snprintf(name, sizeof name, "%s", K("/t/f/lock"));
    snprintf(k, sizeof k, "%s", K("/t/f/guarded"));
    CHECK_RC(etcd_lock(s, name, 2, NULL, &idx), ETCD_OK, "take the lock, ttl 2, never renewed");
    c = cmp_num(ETCD_CMP_LOCK_HELD, ETCD_CMP_EQUAL, name, 0);
    c.value = idx;
    put = op_put(k, "holder", 6, 0);
    CHECK_RC(etcd_txn(s, &c, 1, &put, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "a fenced write while held");
    CHECK_INT_EQ(ok, 1, "LOCK_HELD holds while the lock is held");
    lapse = now() + 2.0;
    /* The successor waits for the lapse, then holds. */
    CHECK_RC(etcd_lock(s2, name, 10, NULL, &idx2), ETCD_OK, "a successor takes the lock");
    took = now() - lapse;
    printf("  successor took the lock %.2f s after the holder's 2 s lease lapsed\n", took);
    put = op_put(k, "successor", 9, 0);
    {
        etcd_compare c2 = c;
        c2.value = idx2;
        CHECK_RC(etcd_txn(s2, &c2, 1, &put, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "the successor's fenced write");
        CHECK_INT_EQ(ok, 1, "the successor holds");
    }
    put = op_put(k, "stale holder", 12, 0);
    CHECK_RC(etcd_txn(s, &c, 1, &put, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "the old holder's late write");
    CHECK_INT_EQ(ok, 0, "refused: the old holder's lock is gone");
    v = value_of(s, k, NULL);
    CHECK_STR_EQ(v, "successor", "the successor's write stands");
    free(v);
    if (idx2)
        etcd_unlock(s2, name, idx2);
    free(idx);
    free(idx2);
    etcd_close_str(s2);
}

/* A leader whose lease lapsed cannot write once a successor leads. */
static void test_fenced_leader(etcd_session s)
{
    char e[256], k[256], *l1 = NULL, *l2 = NULL, *v;
    etcd_session s2 = open_str(endpoint);
    int64_t short_lease = 0, kept = 0;
    etcd_compare c;
    etcd_txn_op put;
    int ok = -1;
    double lapse, took;

    section("fenced writes: a leader past its lease", 40);
    snprintf(e, sizeof e, "%s", K("/t/f/election"));
    snprintf(k, sizeof k, "%s", K("/t/f/leader-data"));
    CHECK_RC(etcd_lease_grant(s, 2, &short_lease), ETCD_OK, "a 2 s lease nobody keeps");
    CHECK_RC(etcd_campaign(s, e, "one", short_lease, 5000, &l1), ETCD_OK, "become the leader on it");
    c = cmp_num(ETCD_CMP_LEADER, ETCD_CMP_EQUAL, l1, 0);
    put = op_put(k, "one", 3, 0);
    CHECK_RC(etcd_txn(s, &c, 1, &put, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "a fenced write while leading");
    CHECK_INT_EQ(ok, 1, "LEADER holds while leading");
    lapse = now() + 2.0;
    CHECK_RC(etcd_lease_grant(s2, 30, &kept), ETCD_OK, "the successor's lease");
    CHECK_RC(etcd_campaign(s2, e, "two", kept, 10000, &l2), ETCD_OK, "a successor is elected");
    took = now() - lapse;
    printf("  successor elected %.2f s after the leader's 2 s lease lapsed\n", took);
    {
        etcd_compare c2 = cmp_num(ETCD_CMP_LEADER, ETCD_CMP_EQUAL, l2, 0);
        put = op_put(k, "two", 3, 0);
        CHECK_RC(etcd_txn(s2, &c2, 1, &put, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "the successor's fenced write");
        CHECK_INT_EQ(ok, 1, "the successor leads");
    }
    put = op_put(k, "one again", 9, 0);
    CHECK_RC(etcd_txn(s, &c, 1, &put, 1, NULL, 0, &ok, NULL, NULL, NULL), ETCD_OK, "the old leader's late write");
    CHECK_INT_EQ(ok, 0, "refused: no longer the leader");
    v = value_of(s, k, NULL);
    CHECK_STR_EQ(v, "two", "the successor's write stands");
    free(v);
    if (l2)
        etcd_resign(s2, l2);
    etcd_lease_revoke(s2, kept);
    free(l1);
    free(l2);
    etcd_close_str(s2);
}

void test_txn(etcd_session s)
{
    if (proto_v2) {
        test_txn_on_v2(s);
        return;
    }
    test_txn_branches(s);
    test_txn_compares(s);
    test_txn_prefix(s);
    test_txn_refusals(s);
    test_txn_etcdctl(s);
    test_fenced_lock(s);
    test_fenced_leader(s);
}
