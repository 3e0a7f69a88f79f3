/*
 * interop.c: the harness's section on interoperating with etcdctl, the
 * independent witness: what the library writes etcdctl reads byte-exact,
 * and the other way round (over the v2 API when the protocol is v2).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

void test_interop(etcd_session s)
{
    char key[128], path[160], cmd[2048], name[512];
    char *out;
    size_t len;
    /* Shell-hostile characters: the witness must see exactly these bytes. */
    const char *value = "hello world\t\"quoted\" $HOME `x` \\ \xc3\xbc end";
    /* The witness reads the store under test: etcdctl's v3 commands, or
     * its v2 ones (both "get"s print the value and one newline). */
    void (*ctl)(char *, size_t, const char *) = proto_v2 ? etcdctl2_cmd : etcdctl_cmd;
    const char *get_fmt = proto_v2 ? "get %s" : "get --print-value-only %s";

    section(proto_v2 ? "interop with etcdctl (its v2 API)" : "interop with etcdctl", 60);

    /* foo-harness-... written without a leading slash is /foo-harness-... */
    snprintf(key, sizeof key, "foo-%s", prefix + 1);
    CHECK_RC(etcd_set(s, key, (char *)value, NULL, 0), ETCD_OK, "etcd_set for etcdctl");
    snprintf(path, sizeof path, "/%s", key);
    snprintf(name, sizeof name, get_fmt, path);
    ctl(cmd, sizeof cmd, name);
    out = run_capture(cmd, &len);
    CHECK(out != NULL, "etcdctl get ran");
    if (out) {
        /* etcdctl prints the value and one newline. */
        if (len > 0 && out[len - 1] == '\n')
            out[--len] = '\0';
        CHECK_INT_EQ(len, strlen(value), "etcdctl sees the value's length");
        CHECK_STR_EQ(out, value, "etcdctl sees etcd_set's value byte-exact");
        free(out);
    }

    /* Non-UTF-8 too. */
    if (proto_v2) {
        skip("interop: etcdctl sees bytes 1..255 byte-exact",
             "not UTF-8, which v2 (JSON strings) cannot carry; set/get checks that v2 refuses it with ETCD_WTF");
    } else {
        char all[256];
        int i;
        for (i = 1; i < 256; i++)
            all[i - 1] = (char)i;
        all[255] = '\0';
        CHECK_RC(etcd_set(s, K("/interop/bytes"), all, NULL, 0), ETCD_OK, "etcd_set bytes 1..255");
        snprintf(name, sizeof name, "get --print-value-only %s", K("/interop/bytes"));
        etcdctl_cmd(cmd, sizeof cmd, name);
        out = run_capture(cmd, &len);
        CHECK(out != NULL, "etcdctl get (bytes) ran");
        if (out) {
            CHECK(len == 256 && memcmp(out, all, 255) == 0 && out[255] == '\n',
                  "etcdctl sees bytes 1..255 byte-exact");
            free(out);
        }
    }

    /* The other way round. */
    snprintf(name, sizeof name, "%s %s 'written by etcdctl: a/b c' >/dev/null",
             proto_v2 ? "set" : "put", K("/interop/from-etcdctl"));
    ctl(cmd, sizeof cmd, name);
    out = run_capture(cmd, NULL);
    CHECK(out != NULL, "etcdctl put ran");
    free(out);
    CHECK_GET(s, K("/interop/from-etcdctl"), "written by etcdctl: a/b c", "etcd_get reads etcdctl's value");
    CHECK_GET(s, K("//interop//from-etcdctl/"), "written by etcdctl: a/b c", "etcd_get reads it via a non-canonical key");

    snprintf(name, sizeof name, "%s /%s >/dev/null", proto_v2 ? "rm" : "del", key);
    ctl(cmd, sizeof cmd, name);
    free(run_capture(cmd, NULL));
}
