/*
 * leader: leader election on etcd locks, as the original etcd-api README
 * recommended. Each node blocks in etcd_lock() until it holds the lock,
 * announces itself as leader, then renews every ttl/3 seconds; the first
 * failed renewal means leadership is lost.
 *
 *   leader [-s servers] [-k key] [-n nodename] [-t ttl]
 *
 * Servers come from -s or ETCD_SERVERS. Output lines (stdout, flushed):
 *   <node> is waiting to lead
 *   <node> is the leader (index <idx>)
 *   <node> lost leadership: <reason>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd-api.h"

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s [-s servers] [-k key] [-n nodename] [-t ttl]\n", prog);
    exit(2);
}

int main(int argc, char **argv)
{
    char *servers = getenv("ETCD_SERVERS");
    char *key = "leader";
    char default_name[64];
    char *name = default_name;
    unsigned int ttl = 6;
    int opt;

    snprintf(default_name, sizeof default_name, "node-%ld", (long)getpid());
    while ((opt = getopt(argc, argv, "s:k:n:t:h")) != -1) {
        switch (opt) {
        case 's': servers = optarg; break;
        case 'k': key = optarg; break;
        case 'n': name = optarg; break;
        case 't': ttl = (unsigned int)strtoul(optarg, NULL, 10); break;
        default: usage(argv[0]);
        }
    }
    if (!servers || ttl == 0)
        usage(argv[0]);

    etcd_session s = etcd_open_str(servers);
    if (!s) {
        fprintf(stderr, "%s: cannot open session: %s\n", name, etcd_errmsg());
        return 1;
    }
    /* Renew well inside the ttl, so one slow renewal does not lose it. */
    unsigned int period = ttl / 3 ? ttl / 3 : 1;

    for (;;) {
        char *index = NULL;
        printf("%s is waiting to lead\n", name);
        fflush(stdout);
        if (etcd_lock(s, key, ttl, NULL, &index) != ETCD_OK || !index) {
            fprintf(stderr, "%s: lock failed: %s\n", name, etcd_errmsg());
            sleep(1);
            continue;
        }
        printf("%s is the leader (index %s)\n", name, index);
        fflush(stdout);
        for (;;) {
            sleep(period);
            char *out = NULL;
            if (etcd_lock(s, key, ttl, index, &out) != ETCD_OK) {
                printf("%s lost leadership: %s\n", name, etcd_errmsg());
                fflush(stdout);
                break;
            }
            free(out); /* NULL after a renewal, as in the original */
        }
        free(index);
    }
    /* not reached */
    etcd_close_str(s);
    return 0;
}
