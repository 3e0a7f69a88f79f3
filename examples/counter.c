/*
 * counter.c: a counter that many processes increment at once without
 * losing an update.
 *
 * Read the counter and its revision (etcd_get_kv), write the new value
 * only if nobody wrote in between (etcd_put_if with that revision), and
 * if somebody did, read again and retry.  No lock, no lost update.
 *
 *     ETCD_SERVERS=127.0.0.1:2379 ./counter /myapp/hits 100
 *
 * Build: cc -o counter counter.c -letcdapi
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <etcd-api.h>

/* Adds one to the counter at key; the number of retries it took, or -1. */
static long increment(etcd_session s, const char *key)
{
    long retries = 0;
    for (;;) {
        etcd_kv *kv = NULL;
        long long value = 0;
        int64_t seen = 0;       /* 0: "the key does not exist yet" */
        char text[32];

        if (etcd_get_kv(s, key, &kv, NULL) != ETCD_OK)
            return -1;
        if (kv) {
            value = atoll(kv->value);
            seen = kv->mod_revision;
            etcd_kv_free(kv, 1);
        }
        snprintf(text, sizeof text, "%lld", value + 1);
        switch (etcd_put_if(s, key, text, strlen(text), 0, seen, NULL)) {
        case ETCD_OK:
            return retries;
        case ETCD_PROTOCOL_ERROR:
            retries++;          /* another process wrote first: again */
            break;
        default:
            return -1;
        }
    }
}

int main(int argc, char **argv)
{
    const char *servers = getenv("ETCD_SERVERS");
    long times, i, retries = 0, r;
    etcd_session s;

    if (argc < 3) {
        fprintf(stderr, "usage: %s KEY TIMES\n", argv[0]);
        return 2;
    }
    times = atol(argv[2]);
    s = etcd_open_str((char *)(servers ? servers : "127.0.0.1:2379"));
    if (!s) {
        fprintf(stderr, "counter: %s\n", etcd_errmsg());
        return 1;
    }
    for (i = 0; i < times; i++) {
        r = increment(s, argv[1]);
        if (r < 0) {
            fprintf(stderr, "counter: %s\n", etcd_errmsg());
            etcd_close_str(s);
            return 1;
        }
        retries += r;
    }
    printf("DONE %ld increments, %ld retries\n", times, retries);
    etcd_close_str(s);
    return 0;
}
