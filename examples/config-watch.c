/*
 * config-watch.c: keep a program's configuration in step with etcd.
 *
 * The configuration is every key below a prefix.  Load it with one
 * etcd_list (one consistent read, at one revision), then follow it with
 * etcd_watch_events from that revision + 1: every change after the load
 * arrives exactly once, in order, whatever happened between the two calls
 * and whichever etcd member dies meanwhile.
 *
 *     ETCD_SERVERS=127.0.0.1:2379 ./config-watch /myapp/config [changes]
 *
 * With a count it stops after that many changes and prints the
 * configuration it ends with, one "key=value" a line (for tests).
 *
 * Build: cc -o config-watch config-watch.c -letcdapi
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <etcd-api.h>

/* The configuration in memory: a small table of key and value strings. */
struct entry {
    char *key;
    char *value;
};
static struct entry *config;
static size_t entries;

static struct entry *find(const char *key)
{
    size_t i;
    for (i = 0; i < entries; i++)
        if (strcmp(config[i].key, key) == 0)
            return &config[i];
    return NULL;
}

static void set(const char *key, const char *value)
{
    struct entry *e = find(key);
    if (!e) {
        config = realloc(config, (entries + 1) * sizeof *config);
        if (!config)
            abort();
        e = &config[entries++];
        e->key = strdup(key);
        e->value = NULL;
    }
    free(e->value);
    e->value = strdup(value);
}

static void forget(const char *key)
{
    struct entry *e = find(key);
    if (e) {
        free(e->key);
        free(e->value);
        *e = config[--entries];
    }
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

int main(int argc, char **argv)
{
    const char *servers = getenv("ETCD_SERVERS");
    const char *prefix;
    long wanted, seen = 0;
    etcd_session s;
    etcd_kv *kvs = NULL;
    size_t count = 0, i;
    int64_t revision = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s PREFIX [CHANGES]\n", argv[0]);
        return 2;
    }
    prefix = argv[1];
    wanted = argc > 2 ? atol(argv[2]) : -1;
    s = etcd_open_str((char *)(servers ? servers : "127.0.0.1:2379"));
    if (!s) {
        fprintf(stderr, "config-watch: %s\n", etcd_errmsg());
        return 1;
    }

    /* 1. Load: every key below the prefix, and the revision read at. */
    if (etcd_list(s, prefix, &kvs, &count, &revision) != ETCD_OK) {
        fprintf(stderr, "config-watch: list: %s\n", etcd_errmsg());
        return 1;
    }
    for (i = 0; i < count; i++)
        set(kvs[i].key, kvs[i].value);
    etcd_kv_free(kvs, count);
    printf("LOADED %zu keys at revision %lld\n", count, (long long)revision);
    fflush(stdout);

    /* 2. Follow: the changes after that revision, one revision at a time
     * (a transaction can change several keys in one revision). */
    while (wanted < 0 || seen < wanted) {
        etcd_event *events = NULL;
        size_t n = 0;
        etcd_result rc = etcd_watch_events(s, prefix, revision + 1, 0, &events, &n, &revision);
        if (rc != ETCD_OK) {
            /* ETCD_PROTOCOL_ERROR: the revision was compacted away (we
             * were away too long): load again.  ETCD_WTF: no member. */
            fprintf(stderr, "config-watch: watch: %s\n", etcd_errmsg());
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (events[i].deleted) {
                forget(events[i].kv.key);
                printf("DEL %s\n", events[i].kv.key);
            } else {
                set(events[i].kv.key, events[i].kv.value);
                printf("PUT %s=%s\n", events[i].kv.key, events[i].kv.value);
            }
            seen++;
        }
        fflush(stdout);
        etcd_events_free(events, n);
    }

    qsort(config, entries, sizeof *config, by_key);
    printf("CONFIG\n");
    for (i = 0; i < entries; i++) {
        printf("%s=%s\n", config[i].key, config[i].value);
        free(config[i].key);
        free(config[i].value);
    }
    free(config);
    etcd_close_str(s);
    return 0;
}
