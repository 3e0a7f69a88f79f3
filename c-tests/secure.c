/*
 * secure: C-level checks of etcd_open_opts and of the TLS and
 * authentication environment variables, against the TLS etcd with
 * client certificates and authentication that
 *
 *     ETCDAPI_TEST_TLS=1 ETCDAPI_TEST_AUTH=1 c-tests/etcd-local run -- build/secure
 *
 * starts (it exports ETCDAPI_TEST_ENDPOINT, ETCDAPI_TEST_CERT_DIR,
 * ETCDAPI_CACERT/CERT/KEY, ETCDAPI_USER, ETCDAPI_PASSWORD and etcdctl's
 * ETCDCTL_* of the same).  The program takes those values, then sets and
 * clears the variables itself for each case.  The last line is
 * "N passed, N failed"; the exit status is 1 if anything failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* The last failure's message contains `word`. */
#define CHECK_MSG(word, what) do {                                          \
        const char *m_ = etcd_errmsg();                                     \
        CHECK(m_ && strstr(m_, (word)) != NULL, (what));                    \
    } while (0)

/* No message ever shows a password. */
#define CHECK_NO_SECRET(secret, what) do {                                  \
        const char *m_ = etcd_errmsg();                                     \
        CHECK(!m_ || !strstr(m_, (secret)), (what));                        \
    } while (0)

static char certs[512], password[128];

/* A file of the certificate directory (rotating buffers, as K's). */
static char *path(const char *name)
{
    return fmt_rot("%s/%s", certs, name);
}

static const char *const secure_vars[] = {
    "ETCDAPI_CACERT", "ETCDAPI_CERT", "ETCDAPI_KEY", "ETCDAPI_USER", "ETCDAPI_PASSWORD",
    "ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY", "ETCDCTL_USER", "ETCDCTL_PASSWORD",
};

static void clear_env(void)
{
    size_t i;
    for (i = 0; i < sizeof secure_vars / sizeof secure_vars[0]; i++)
        unsetenv(secure_vars[i]);
}

/* The library's own variables, as etcd-local set them. */
static void set_our_env(void)
{
    clear_env();
    setenv("ETCDAPI_CACERT", path("ca.crt"), 1);
    setenv("ETCDAPI_CERT", path("client.crt"), 1);
    setenv("ETCDAPI_KEY", path("client.key"), 1);
    setenv("ETCDAPI_USER", "root", 1);
    setenv("ETCDAPI_PASSWORD", password, 1);
}

static etcd_session open_opts(const etcd_options *o)
{
    return etcd_open_opts(endpoint, o);
}

/*
 * s has opened (a check: open_what), and a set of K(key) through it fails
 * with want (a check: set_what).  Returns s for more checks (NULL if it
 * did not open).
 */
static etcd_session refuses_set(etcd_session s, const char *open_what, const char *key,
                                etcd_result want, const char *set_what)
{
    CHECK(s != NULL, open_what);
    if (s)
        CHECK(etcd_set(s, K(key), "x", NULL, 0) == want, set_what);
    return s;
}

struct watch_arg {
    etcd_session s;
    const char *pfx;
    char *key;
    etcd_result rc;
};

static void *watcher(void *p)
{
    struct watch_arg *w = p;
    w->rc = etcd_watch(w->s, (char *)w->pfx, &w->key, NULL, NULL, NULL);
    return NULL;
}

/* Every call works on session s (keys under K(sub)). */
static void every_call(etcd_session s, const char *sub)
{
    char key[256], lock[256], pfx[256];
    char *v, *idx = NULL;
    struct watch_arg w;
    pthread_t t;
    snprintf(key, sizeof key, "%s/k", K(sub));
    snprintf(lock, sizeof lock, "%s/lock", K(sub));
    CHECK(etcd_set(s, key, "v1", NULL, 0) == ETCD_OK, "set");
    v = etcd_get(s, key);
    CHECK(v && strcmp(v, "v1") == 0, "get");
    free(v);
    CHECK(etcd_set(s, key, "v2", "v1", 0) == ETCD_OK, "compare-and-swap");
    CHECK(etcd_set(s, key, "v3", "nope", 0) == ETCD_PROTOCOL_ERROR, "compare fails");
    /* A watch waiting for the next change (the harness compacts: no
     * history to read). */
    snprintf(pfx, sizeof pfx, "%s", K(sub));
    w.s = s;
    w.pfx = pfx;
    w.key = NULL;
    w.rc = ETCD_WTF;
    if (pthread_create(&t, NULL, watcher, &w) == 0) {
        sleep_ms(500);
        CHECK(etcd_set(s, key, "v4", NULL, 0) == ETCD_OK, "set while watched");
        pthread_join(t, NULL);
        CHECK(w.rc == ETCD_OK && w.key && strcmp(w.key, key) == 0, "watch sees the change");
        free(w.key);
    }
    v = etcd_leader(s);
    CHECK(v != NULL, "leader");
    free(v);
    CHECK(etcd_lock(s, lock, 5, NULL, &idx) == ETCD_OK && idx, "lock");
    if (idx) {
        CHECK(etcd_unlock(s, lock, idx) == ETCD_OK, "unlock");
        free(idx);
    }
    CHECK(etcd_delete(s, key) == ETCD_OK, "delete");
    CHECK(etcd_delete(s, key) == ETCD_PROTOCOL_ERROR, "delete again: not found");
}

static void test_options_only(void)
{
    etcd_options o;
    char ca[600], cert[600], key[600], user[32], pw[128];
    etcd_session s;

    printf("== etcd_open_opts with every field, nothing in the environment\n");
    clear_env();
    /* Copies that are scribbled on after the open: the library keeps its own. */
    snprintf(ca, sizeof ca, "%s", path("ca.crt"));
    snprintf(cert, sizeof cert, "%s", path("client.crt"));
    snprintf(key, sizeof key, "%s", path("client.key"));
    snprintf(user, sizeof user, "root");
    snprintf(pw, sizeof pw, "%s", password);
    o.cacert = ca;
    o.cert = cert;
    o.key = key;
    o.user = user;
    o.password = pw;
    s = open_opts(&o);
    CHECK(s != NULL, "etcd_open_opts");
    memset(ca, 'x', 10);
    memset(pw, 'x', strlen(pw));
    if (s) {
        every_call(s, "/opts");
        etcd_close(s);
    }

    /* user as name:password, password NULL (and not in the environment). */
    snprintf(user, sizeof user, "root:%.20s", password);
    if (strlen(password) < 21) {
        o.cacert = path("ca.crt");
        o.user = user;
        o.password = NULL;
        s = open_opts(&o);
        CHECK(s != NULL, "etcd_open_opts with user name:password");
        if (s) {
            CHECK(etcd_set(s, K("/opts/colon"), "c", NULL, 0) == ETCD_OK, "set (user name:password)");
            etcd_close(s);
        }
    }
}

static void test_environment(void)
{
    etcd_session s;
    etcd_options o;
    char user[160];
    etcd_server list[2];
    char host[] = "127.0.0.1";
    const char *colon;

    printf("== ETCDAPI_* variables\n");
    set_our_env();
    s = etcd_open_str(endpoint);
    CHECK(s != NULL, "etcd_open_str with ETCDAPI_*");
    if (s) {
        every_call(s, "/env");
        etcd_close_str(s);
    }
    s = etcd_open_opts(endpoint, NULL);
    CHECK(s != NULL, "etcd_open_opts(servers, NULL) with ETCDAPI_*");
    if (s) {
        CHECK(etcd_set(s, K("/env/null-opts"), "n", NULL, 0) == ETCD_OK, "set (NULL options)");
        etcd_close(s);
    }
    /* The original etcd_open with a bare host: https because a CA is set. */
    colon = strrchr(endpoint, ':');
    memset(list, 0, sizeof list);
    list[0].host = host;
    list[0].port = (unsigned short)atoi(colon + 1);
    s = etcd_open(list);
    CHECK(s != NULL, "etcd_open(array) with ETCDAPI_*");
    if (s) {
        CHECK(etcd_set(s, K("/env/array"), "a", NULL, 0) == ETCD_OK,
              "set via etcd_open(127.0.0.1, port): https since a CA is configured");
        etcd_close(s);
    }

    printf("== etcdctl's ETCDCTL_* variables as the fallback\n");
    clear_env();
    setenv("ETCDCTL_CACERT", path("ca.crt"), 1);
    setenv("ETCDCTL_CERT", path("client.crt"), 1);
    setenv("ETCDCTL_KEY", path("client.key"), 1);
    snprintf(user, sizeof user, "root:%s", password);
    setenv("ETCDCTL_USER", user, 1);
    s = etcd_open_str(endpoint);
    CHECK(s != NULL, "etcd_open_str with ETCDCTL_*");
    if (s) {
        every_call(s, "/etcdctl-env");
        etcd_close_str(s);
    }
    /* Ours win over etcdctl's: a wrong ETCDAPI_PASSWORD is used. */
    setenv("ETCDAPI_USER", "root", 1);
    setenv("ETCDAPI_PASSWORD", "wrong-password-xyz", 1);
    s = refuses_set(etcd_open_str(endpoint), "open with both", "/etcdctl-env/x",
                    ETCD_PROTOCOL_ERROR, "ETCDAPI_PASSWORD is used before ETCDCTL_USER's password");
    if (s) {
        CHECK_NO_SECRET("wrong-password-xyz", "no password in the message");
        etcd_close(s);
    }

    printf("== options first, then the environment\n");
    set_our_env();
    memset(&o, 0, sizeof o);
    o.user = "";            /* explicitly nobody */
    s = refuses_set(open_opts(&o), "open with user \"\"", "/nobody",
                    ETCD_PROTOCOL_ERROR, "no user: etcd refuses (ETCD_PROTOCOL_ERROR)");
    if (s) {
        CHECK_MSG("user name is empty", "message: etcd wants a user");
        etcd_close(s);
    }
    o.user = NULL;
    o.password = "wrong-password-abc";
    s = refuses_set(open_opts(&o), "open with a wrong password option", "/wrong",
                    ETCD_PROTOCOL_ERROR, "wrong password: set");
    if (s) {
        char *v, *k = NULL, *idx = NULL;
        CHECK_MSG("authentication", "message says authentication failed");
        CHECK_NO_SECRET("wrong-password-abc", "no password in the message");
        v = etcd_get(s, K("/wrong"));
        CHECK(v == NULL, "wrong password: get is NULL");
        free(v);
        CHECK(etcd_delete(s, K("/wrong")) == ETCD_PROTOCOL_ERROR, "wrong password: delete");
        CHECK(etcd_watch(s, K("/wrong"), &k, NULL, NULL, NULL) == ETCD_PROTOCOL_ERROR,
              "wrong password: watch");
        CHECK(etcd_lock(s, K("/wrong"), 5, NULL, &idx) == ETCD_PROTOCOL_ERROR,
              "wrong password: lock");
        CHECK_NO_SECRET("wrong-password-abc", "no password in the message");
        free(k);
        free(idx);
        etcd_close(s);
    }
}

static void test_bad_settings(void)
{
    etcd_options o;
    etcd_session s;
    double t0;

    printf("== bad settings\n");
    set_our_env();
    memset(&o, 0, sizeof o);
    o.cacert = path("no-such-ca.crt");
    s = open_opts(&o);
    CHECK(s == NULL, "missing CA file: NULL");
    CHECK_MSG("no-such-ca.crt", "message names the file");
    if (s)
        etcd_close(s);

    o.cacert = NULL;
    o.key = path("server.key");     /* not client.crt's key */
    s = open_opts(&o);
    CHECK(s == NULL, "key of another certificate: NULL");
    CHECK_MSG("does not match", "message says the key does not match");
    if (s)
        etcd_close(s);

    memset(&o, 0, sizeof o);
    clear_env();
    setenv("ETCDAPI_CACERT", path("ca.crt"), 1);
    o.user = "root";            /* no password anywhere */
    s = open_opts(&o);
    CHECK(s == NULL, "user without a password: NULL");
    CHECK_MSG("no password", "message says so");
    if (s)
        etcd_close(s);

    s = etcd_open_opts(NULL, &o);
    CHECK(s == NULL, "etcd_open_opts(NULL servers): NULL");
    s = etcd_open_opts("127.0.0.1:abc", NULL);
    CHECK(s == NULL, "etcd_open_opts(bad port): NULL");

    printf("== TLS failures: a wrong CA, no client certificate\n");
    set_our_env();
    memset(&o, 0, sizeof o);
    o.cacert = path("other-ca.crt");
    s = open_opts(&o);
    CHECK(s != NULL, "open with a CA that did not sign the server");
    if (s) {
        t0 = now();
        CHECK(etcd_set(s, K("/tls"), "x", NULL, 0) == ETCD_WTF, "wrong CA: ETCD_WTF");
        CHECK_MSG("not signed by the CA in", "message: the server's certificate is not signed by that CA");
        CHECK(now() - t0 < 5.0, "wrong CA fails fast");
        etcd_close(s);
    }
    memset(&o, 0, sizeof o);
    o.cert = "";
    o.key = "";
    s = refuses_set(open_opts(&o), "open without a client certificate", "/tls",
                    ETCD_WTF, "no client certificate: ETCD_WTF");
    if (s) {
        CHECK_MSG("client certificate", "message: the server wants a client certificate");
        etcd_close(s);
    }
}

int main(void)
{
    const char *ep = getenv("ETCDAPI_TEST_ENDPOINT");
    const char *dir = getenv("ETCDAPI_TEST_CERT_DIR");
    const char *pw = getenv("ETCDAPI_PASSWORD");
    if (!ep || strncmp(ep, "https://", 8) != 0 || !dir || !pw) {
        fprintf(stderr, "secure: run it as ETCDAPI_TEST_TLS=1 ETCDAPI_TEST_AUTH=1 "
                "c-tests/etcd-local run -- build/secure\n");
        return 2;
    }
    snprintf(endpoint, sizeof endpoint, "%s", ep);
    snprintf(certs, sizeof certs, "%s", dir);
    snprintf(password, sizeof password, "%s", pw);
    set_prefix("secure");
    printf("secure: etcd at %s, keys under %s\n", endpoint, prefix);

    test_options_only();
    test_environment();
    test_bad_settings();

    return finish();
}
