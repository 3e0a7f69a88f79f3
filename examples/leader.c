/*
 * leader.c: a daemon of which one instance at a time does the work.
 *
 * Run several copies with the same election name; one leads and works,
 * the others wait inside etcd_campaign (no polling: etcd answers the
 * campaign when they are elected).  On SIGTERM or SIGINT the leader
 * resigns once its current unit of work is done (within a second), so a
 * waiting copy takes over at once; if the leader dies
 * without resigning (SIGKILL, a crash, a lost machine), its lease is no
 * longer kept alive and the next copy takes over within the lease's TTL.
 *
 * Each unit of work writes its result to <election>/output with a fenced
 * write: one etcd_txn that puts only while this copy's leadership still
 * holds (ETCD_CMP_LEADER).  A copy that was frozen past its lease (a long
 * GC pause, SIGSTOP, a partition) and wakes up still believing it leads
 * cannot overwrite what its successor wrote: its write reports
 * succeeded 0, and it stops working.
 *
 *     ETCD_SERVERS=127.0.0.1:2379 ./leader jobs/scheduler worker-1 [ttl]
 *
 * Build: cc -o leader leader.c -letcdapi
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <etcd-api.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/*
 * Writes `result` to <election>/output only while `leadership` holds: 1 if
 * written, 0 if the leadership is gone (or etcd could not be asked).
 */
static int write_fenced(etcd_session s, const char *election, const char *leadership,
                        const char *result)
{
    char key[512];
    etcd_compare still_leader;
    etcd_txn_op put;
    int written = 0;

    snprintf(key, sizeof key, "%s/output", election);
    memset(&still_leader, 0, sizeof still_leader);
    still_leader.target = ETCD_CMP_LEADER;
    still_leader.op = ETCD_CMP_EQUAL;
    still_leader.key = leadership;
    memset(&put, 0, sizeof put);
    put.kind = ETCD_TXN_PUT;
    put.key = key;
    put.value = result;
    put.value_len = strlen(result);
    if (etcd_txn(s, &still_leader, 1, &put, 1, NULL, 0, &written, NULL, NULL, NULL) != ETCD_OK) {
        fprintf(stderr, "write: %s\n", etcd_errmsg());
        return 0;
    }
    return written;
}

/*
 * Lead until told to stop or until the leadership is lost.  Between two
 * units of work we wait in etcd_observe: it returns at once if another
 * candidate becomes leader (we lost, e.g. our lease lapsed while this
 * machine was frozen), else after one second, time for the next unit.
 * Returns 1 if we stopped on a signal, 0 if the leadership was lost.
 */
static int lead(etcd_session s, const char *election, const char *id,
                const char *leadership, int64_t lease)
{
    int64_t next = 0;       /* observe from here: the leadership we know */
    long unit = 0;
    char progress[128];

    while (!stopping) {
        etcd_kv *kv = NULL;
        etcd_result rc = etcd_observe(s, election, next, 1000, &kv);
        if (rc == ETCD_OK) {
            int ours = kv->lease == lease;
            next = kv->mod_revision + 1;
            etcd_kv_free(kv, 1);
            if (!ours)
                return 0;       /* someone else leads now */
            continue;           /* our own proclamation */
        }
        if (rc != ETCD_TIMEOUT) {
            fprintf(stderr, "%s: observe: %s\n", id, etcd_errmsg());
            continue;           /* etcd unreachable: the lease decides */
        }
        /* One unit of work; its result written only while we lead. */
        unit++;
        snprintf(progress, sizeof progress, "%s: unit %ld", id, unit);
        if (!write_fenced(s, election, leadership, progress))
            return 0;           /* no longer the leader: stop working */
        printf("WORK %s %ld\n", id, unit);
        fflush(stdout);
        /* Say how far we got; a proclaim that fails means the same. */
        if (etcd_proclaim(s, leadership, progress) == ETCD_PROTOCOL_ERROR)
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    const char *servers = getenv("ETCD_SERVERS");
    const char *election, *id;
    int64_t ttl, lease = 0;
    etcd_session s;
    struct sigaction sa;

    if (argc < 3) {
        fprintf(stderr, "usage: %s ELECTION ID [TTL_SECONDS]\n", argv[0]);
        return 2;
    }
    election = argv[1];
    id = argv[2];
    ttl = argc > 3 ? atoll(argv[3]) : 5;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    s = etcd_open_str((char *)(servers ? servers : "127.0.0.1:2379"));
    if (!s) {
        fprintf(stderr, "%s: %s\n", id, etcd_errmsg());
        return 1;
    }
    /* The candidacy lives on a lease that a thread of the session keeps
     * alive for as long as this process runs. */
    if (etcd_lease_grant(s, ttl, &lease) != ETCD_OK || etcd_lease_keep(s, lease) != ETCD_OK) {
        fprintf(stderr, "%s: lease: %s\n", id, etcd_errmsg());
        etcd_close_str(s);
        return 1;
    }

    while (!stopping) {
        char *leadership = NULL;
        /* Wait to be elected.  The 2 s time-out is only there to look at
         * `stopping` now and then: a candidacy that times out is
         * withdrawn, and the next call stands again. */
        etcd_result rc = etcd_campaign(s, election, id, lease, 2000, &leadership);
        if (rc == ETCD_TIMEOUT)
            continue;
        if (rc != ETCD_OK) {
            fprintf(stderr, "%s: campaign: %s\n", id, etcd_errmsg());
            break;              /* e.g. our lease is gone */
        }
        printf("LEADER %s\n", id);
        fflush(stdout);
        if (lead(s, election, id, leadership, lease)) {
            /* Told to stop: hand over now rather than at the lease's end. */
            etcd_resign(s, leadership);
            printf("RESIGNED %s\n", id);
        } else {
            printf("LOST %s\n", id);
        }
        fflush(stdout);
        free(leadership);
    }
    etcd_lease_revoke(s, lease);    /* also stops the keeping thread */
    etcd_close_str(s);
    return 0;
}
