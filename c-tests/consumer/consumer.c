/*
 * consumer: a tiny program built against an installed libetcdapi (CMake's
 * etcdapi::etcdapi and etcdapi::etcdapi_static, and pkg-config) by
 * c-tests/install-test.sh.
 *
 *   consumer SERVERS    a dead port gives a session whose calls fail with
 *                       a message; malformed servers give NULL; then a
 *                       set, get, get_kv, leader and delete on SERVERS.
 *
 * Prints "NAME: ok" and exits 0, or says what failed and exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include "etcd-api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s (etcd_errmsg: %s)\n", what, etcd_errmsg());
        failures++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SERVERS\n", argv[0]);
        return 2;
    }

    /* Nothing listens on port 1: a session opens (no connection yet), and
     * its first call fails with ETCD_WTF/NULL and a message. */
    etcd_session dead = etcd_open_str("127.0.0.1:1");
    expect(dead != NULL, "etcd_open_str on a dead port gives a session");
    if (dead) {
        char *v = etcd_get(dead, "/x");
        expect(v == NULL, "etcd_get on a dead port gives NULL");
        expect(strlen(etcd_errmsg()) > 0, "etcd_errmsg describes the failure");
        free(v);
        expect(etcd_set(dead, "/x", "1", NULL, 0) == ETCD_WTF, "etcd_set on a dead port gives ETCD_WTF");
        etcd_close_str(dead);
    }
    expect(etcd_open_str("127.0.0.1:99999") == NULL, "a port over 65535 gives NULL");

    etcd_session s = etcd_open_str(argv[1]);
    expect(s != NULL, "etcd_open_str on the test etcd");
    if (s) {
        char key[64];
        snprintf(key, sizeof key, "/install-test/%ld", (long)getpid());
        expect(etcd_set(s, key, "installed", NULL, 0) == ETCD_OK, "etcd_set");
        char *v = etcd_get(s, key);
        expect(v != NULL && strcmp(v, "installed") == 0, "etcd_get reads the value back");
        free(v);
        etcd_kv *kv = NULL;
        int64_t rev = 0;
        expect(etcd_get_kv(s, key, &kv, &rev) == ETCD_OK && kv != NULL && rev > 0, "etcd_get_kv");
        if (kv)
            expect(kv->value_len == 9 && kv->version == 1 && strcmp(kv->key, key) == 0, "etcd_kv fields");
        etcd_kv_free(kv, 1);
        char *leader = etcd_leader(s);
        expect(leader != NULL && strlen(leader) > 0, "etcd_leader");
        free(leader);
        expect(etcd_delete(s, key) == ETCD_OK, "etcd_delete");
        expect(etcd_delete(s, key) == ETCD_PROTOCOL_ERROR, "etcd_delete of a missing key");
        etcd_close(s);
    }

    if (failures) {
        fprintf(stderr, "%s: %d failed\n", argv[0], failures);
        return 1;
    }
    printf("%s: ok\n", argv[0]);
    return 0;
}
