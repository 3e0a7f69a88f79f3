/*
 * etcd-test: the original etcd-api command-line tool, written afresh
 * against the same public API. It prints what the original printed, byte
 * for byte, for every command and every error (c-tests/cli-test.sh checks
 * it against the original's strings), so that scripts that parse the
 * original's output keep working:
 *
 *   etcd-test [-s server-list] get KEY                      getting KEY / got value: V
 *   etcd-test [-s server-list] set [-p precond] [-t ttl] KEY VALUE
 *                                                           setting KEY to VALUE
 *                                                             precond = P / ttl = T
 *   etcd-test [-s server-list] delete KEY                   deleting KEY
 *   etcd-test [-s server-list] watch [-i index] KEY         getting KEY, then per change:
 *                                                           index is N / key K was set to V
 *                                                           (or: key K was deleted)
 *   etcd-test [-s server-list] leader                       finding leader / leader is ID
 *   etcd-test [-s server-list] lock -t ttl [-i index] KEY   locking KEY for T
 *                                                           (renewing: locking KEY (I) for T)
 *                                                           got back index number I
 *   etcd-test [-s server-list] unlock -i index KEY          unlocking KEY (I)
 *
 * A failed call prints "etcd_get failed" (etcd_set, etcd_delete,
 * etcd_watch, etcd_leader, etcd_lock, etcd_unlock: the same), a session
 * that does not open "etcd_open failed", on stderr; both exit 1. Options
 * are read with getopt_long, as the original read them (anywhere on the
 * line; -s, -p, -t, -i and --servers, --precond, --ttl, --index); a bad
 * option or command, missing servers (no -s and no $ETCD_SERVERS) or
 * arguments that do not fit the command print the original's usage text
 * on stderr and exit 1. Numbers are read as the original read them (ttl
 * with strtoul, index with strtol). The session is opened before the
 * command is looked at, as the original did.
 *
 * Beyond the original, long options only (none changes what the original
 * printed for a command line it accepted):
 *   --cacert FILE, --cert FILE, --key FILE, --user NAME[:PASSWORD]
 *       for secure clusters, as with etcdctl (what is not given comes from
 *       the library's environment variables and configuration file);
 *   --verbose
 *       after a failure line, one more line on stderr: "etcd-test: " and
 *       the library's reason (etcd_errmsg()).
 * The original's --index did not work (getopt_long returned a letter its
 * switch did not take, so it printed the usage text); here it is -i.
 *
 * Every string the library returns is released with free().
 */
/* strdup() and strcasecmp() are POSIX, not C99. */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "etcd-api.h"

/* The original's usage text, to stderr, with argv[0]; exit status 1. */
static int usage(const char *argv0)
{
    fprintf(stderr, "Usage: %s [-s server-list] command ...\n", argv0);
    fputs("Valid commands:\n"
          "  get       KEY\n"
          "  set       [-p precond] [-t ttl] KEY VALUE\n"
          "  delete    KEY\n"
          "  watch     [-i index] KEY\n"
          "  leader\n"
          "  lock     -t ttl [-i index] KEY\n"
          "  unlock    -i index KEY\n"
          "Server list is host:port pairs separated by comma,\n"
          "semicolon, or white space.  If not given on the\n"
          "command line, ETCD_SERVERS will be used from the\n"
          "environment instead.\n",
          stderr);
    return 1;
}

static int verbose;

/* "<call> failed" as the original said it; with --verbose, the reason. */
static int failed(const char *call)
{
    const char *why;
    fprintf(stderr, "%s failed\n", call);
    if (verbose) {
        why = etcd_errmsg();
        fprintf(stderr, "etcd-test: %s\n", (why && *why) ? why : "(no message)");
    }
    return 1;
}

static int cmd_get(etcd_session s, char *key)
{
    char *value;
    printf("getting %s\n", key);
    value = etcd_get(s, key);
    if (!value)
        return failed("etcd_get");
    printf("got value: %s\n", value);
    free(value);
    return 0;
}

static int cmd_set(etcd_session s, char *key, char *value, char *precond, char *ttl)
{
    unsigned long ttl_num = 0;
    printf("setting %s to %s\n", key, value);
    if (precond)
        printf("  precond = %s\n", precond);
    if (ttl) {
        ttl_num = strtoul(ttl, NULL, 10);
        printf("  ttl = %lu\n", ttl_num);
    }
    if (etcd_set(s, key, value, precond, (unsigned int)ttl_num) != ETCD_OK)
        return failed("etcd_set");
    return 0;
}

static int cmd_delete(etcd_session s, char *key)
{
    printf("deleting %s\n", key);
    if (etcd_delete(s, key) != ETCD_OK)
        return failed("etcd_delete");
    return 0;
}

static int cmd_watch(etcd_session s, char *pfx, char *index)
{
    int from = 0, next = 0;
    int *in = NULL;         /* NULL: the next change from now */
    char *key, *value;

    printf("getting %s\n", pfx);
    if (index) {
        from = (int)strtol(index, NULL, 10);
        in = &from;
    }
    for (;;) {
        key = value = NULL;
        if (etcd_watch(s, pfx, &key, &value, in, &next) != ETCD_OK)
            return failed("etcd_watch");
        printf("index is %d\n", next);
        if (!key)
            printf("I don't know what happened\n");
        else if (value)
            printf("key %s was set to %s\n", key, value);
        else
            printf("key %s was deleted\n", key);
        /* A reader on a pipe sees each change as it comes. */
        fflush(stdout);
        free(key);
        free(value);
        /* Go on right after this change: none skipped, none repeated. */
        if (next == INT_MAX)
            return failed("etcd_watch");
        from = next + 1;
        in = &from;
    }
}

static int cmd_leader(etcd_session s)
{
    char *leader;
    printf("finding leader\n");
    leader = etcd_leader(s);
    if (!leader)
        return failed("etcd_leader");
    printf("leader is %s\n", leader);
    free(leader);
    return 0;
}

static int cmd_lock(etcd_session s, char *key, char *ttl, char *index)
{
    char *out = NULL;
    if (index)
        printf("locking %s (%s) for %s\n", key, index, ttl);
    else
        printf("locking %s for %s\n", key, ttl);
    if (etcd_lock(s, key, (unsigned int)strtoul(ttl, NULL, 10), index, &out) != ETCD_OK)
        return failed("etcd_lock");
    /* A renewal hands back no index (NULL), and prints nothing more. */
    if (out) {
        printf("got back index number %s\n", out);
        free(out);
    }
    return 0;
}

static int cmd_unlock(etcd_session s, char *key, char *index)
{
    printf("unlocking %s (%s)\n", key, index);
    if (etcd_unlock(s, key, index) != ETCD_OK)
        return failed("etcd_unlock");
    return 0;
}

/* Long-only options: values above 255 so that no letter stands for them. */
enum { OPT_CACERT = 256, OPT_CERT, OPT_KEY, OPT_USER, OPT_VERBOSE };

static const struct option long_options[] = {
    { "index",   required_argument, NULL, 'i' },
    { "precond", required_argument, NULL, 'p' },
    { "servers", required_argument, NULL, 's' },
    { "ttl",     required_argument, NULL, 't' },
    { "cacert",  required_argument, NULL, OPT_CACERT },
    { "cert",    required_argument, NULL, OPT_CERT },
    { "key",     required_argument, NULL, OPT_KEY },
    { "user",    required_argument, NULL, OPT_USER },
    { "verbose", no_argument,       NULL, OPT_VERBOSE },
    { NULL, 0, NULL, 0 }
};

int main(int argc, char **argv)
{
    char *servers = getenv("ETCD_SERVERS");
    char *precond = NULL, *ttl = NULL, *index = NULL;
    char *copy, *command, *user_name = NULL, *colon;
    etcd_options options;
    int have_options = 0, opt, rest, rc = 1, known = 0;
    etcd_session s;

    memset(&options, 0, sizeof options);
    while ((opt = getopt_long(argc, argv, "i:p:s:t:", long_options, NULL)) != -1) {
        switch (opt) {
        case 'i': index = optarg; break;
        case 'p': precond = optarg; break;
        case 's': servers = optarg; break;
        case 't': ttl = optarg; break;
        case OPT_CACERT: options.cacert = optarg; have_options = 1; break;
        case OPT_CERT: options.cert = optarg; have_options = 1; break;
        case OPT_KEY: options.key = optarg; have_options = 1; break;
        case OPT_USER:
            /* NAME:PASSWORD as etcdctl takes it; NAME alone: the password
             * comes from the environment or the configuration file. */
            have_options = 1;
            free(user_name);
            user_name = NULL;
            options.password = NULL;
            options.user = optarg;
            colon = strchr(optarg, ':');
            if (colon) {
                user_name = strdup(optarg);
                if (!user_name) {
                    perror(argv[0]);
                    return 1;
                }
                user_name[colon - optarg] = '\0';
                options.user = user_name;
                options.password = colon + 1;
            }
            break;
        case OPT_VERBOSE: verbose = 1; break;
        default: return usage(argv[0]);
        }
    }
    if (!servers || optind == argc)
        return usage(argv[0]);

    /* etcd_open_str takes a char *: hand it a copy we own. */
    copy = strdup(servers);
    if (!copy) {
        perror(argv[0]);
        return 1;
    }
    s = have_options ? etcd_open_opts(copy, &options) : etcd_open_str(copy);
    if (!s) {
        failed("etcd_open");
        free(copy);
        free(user_name);
        return 1;
    }

    command = argv[optind++];
    rest = argc - optind;
    if (!strcasecmp(command, "get")) {
        if ((known = rest == 1 && !precond && !ttl && !index))
            rc = cmd_get(s, argv[optind]);
    } else if (!strcasecmp(command, "set")) {
        if ((known = rest == 2 && !index))
            rc = cmd_set(s, argv[optind], argv[optind + 1], precond, ttl);
    } else if (!strcasecmp(command, "delete")) {
        if ((known = rest == 1 && !precond && !ttl && !index))
            rc = cmd_delete(s, argv[optind]);
    } else if (!strcasecmp(command, "watch")) {
        if ((known = rest == 1 && !precond && !ttl))
            rc = cmd_watch(s, argv[optind], index);
    } else if (!strcasecmp(command, "leader")) {
        if ((known = rest == 0 && !precond && !ttl && !index))
            rc = cmd_leader(s);
    } else if (!strcasecmp(command, "lock")) {
        if ((known = rest == 1 && !precond && ttl))
            rc = cmd_lock(s, argv[optind], ttl, index);
    } else if (!strcasecmp(command, "unlock")) {
        if ((known = rest == 1 && !precond && !ttl && index))
            rc = cmd_unlock(s, argv[optind], index);
    }

    etcd_close_str(s);
    free(copy);
    free(user_name);
    return known ? rc : usage(argv[0]);
}
