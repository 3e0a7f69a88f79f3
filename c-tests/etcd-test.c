/*
 * etcd-test: the original etcd-api command-line tool, written afresh
 * against the same public API.
 *
 *   etcd-test [-s servers] get KEY
 *   etcd-test [-s servers] set [-p precond] [-t ttl] KEY VALUE
 *   etcd-test [-s servers] delete KEY
 *   etcd-test [-s servers] watch [-i index] KEY
 *   etcd-test [-s servers] leader
 *   etcd-test [-s servers] lock -t ttl [-i index] KEY
 *   etcd-test [-s servers] unlock -i index KEY
 *
 * Servers come from -s, else from $ETCD_SERVERS (the original's variable),
 * else 127.0.0.1:2379.  Exit status: 0 success, 1 failure, 2 usage error.
 * Every string the library returns is released with free().
 *
 * Secure clusters, as with etcdctl: --cacert FILE, --cert FILE, --key FILE,
 * --user NAME[:PASSWORD] (before the command; "--opt=value" works too).
 * What is not given comes from the library's environment variables
 * (ETCDAPI_CACERT, ..., ETCDAPI_PASSWORD, then etcdctl's ETCDCTL_*).
 */
/* strdup() is POSIX, not C99. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-api.h"

#define DEFAULT_SERVERS "127.0.0.1:2379"

static const char *progname = "etcd-test";

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [-s servers] get KEY\n"
            "       %s [-s servers] set [-p precond] [-t ttl] KEY VALUE\n"
            "       %s [-s servers] delete KEY\n"
            "       %s [-s servers] watch [-i index] KEY\n"
            "       %s [-s servers] leader\n"
            "       %s [-s servers] lock -t ttl [-i index] KEY\n"
            "       %s [-s servers] unlock -i index KEY\n"
            "servers: host[:port] items separated by spaces, commas or\n"
            "semicolons; default $ETCD_SERVERS, else " DEFAULT_SERVERS "\n"
            "secure clusters (before the command): --cacert FILE --cert FILE\n"
            "--key FILE --user NAME[:PASSWORD] (without :PASSWORD, it comes\n"
            "from $ETCDAPI_PASSWORD); or ETCDAPI_CACERT, ETCDAPI_CERT,\n"
            "ETCDAPI_KEY, ETCDAPI_USER, ETCDAPI_PASSWORD (else etcdctl's\n"
            "ETCDCTL_*) in the environment\n",
            progname, progname, progname, progname, progname, progname,
            progname);
    exit(2);
}

/* etcd_errmsg() is new in this library; guard against it having nothing. */
static const char *errmsg(void)
{
    const char *m = etcd_errmsg();
    return (m && *m) ? m : "(no message)";
}

/*
 * The session is opened only once a command's arguments have been checked,
 * so that a usage error never leaves a session (and its threads) open.
 */
static char *servers;
static etcd_session session;

/* --cacert, --cert, --key, --user; NULL fields come from the environment. */
static etcd_options options;
static int have_options;
static char *user_name;     /* the NAME of --user NAME:PASSWORD (malloc'd) */

static etcd_session open_session(void)
{
    if (have_options) {
        session = etcd_open_opts(servers, &options);
        if (!session)
            fprintf(stderr, "etcd_open_opts failed for '%s': %s\n", servers,
                    errmsg());
        return session;
    }
    session = etcd_open_str(servers);
    if (!session)
        fprintf(stderr, "etcd_open_str failed for '%s': %s\n", servers,
                errmsg());
    return session;
}

/*
 * A minimal option scanner: getopt() cannot be restarted portably for the
 * per-command options, and the global options must stop at the command
 * word.  Accepts "-x value" and "-xvalue"; "--" ends the options.
 * Returns the option letter, 0 at the end of the options, or calls usage().
 */
struct opts {
    int argc;
    char **argv;
    int i;          /* next argument to look at */
    char *arg;      /* value of the option just returned */
};

static int next_opt(struct opts *o, const char *letters)
{
    char *a;
    if (o->i >= o->argc)
        return 0;
    a = o->argv[o->i];
    if (a[0] != '-' || a[1] == '\0')
        return 0;
    if (strcmp(a, "--") == 0) {
        o->i++;
        return 0;
    }
    if (!strchr(letters, a[1]) || a[1] == ':') {
        fprintf(stderr, "%s: unknown option %s\n", progname, a);
        usage();
    }
    o->i++;
    if (a[2] != '\0') {
        o->arg = a + 2;
    } else {
        if (o->i >= o->argc) {
            fprintf(stderr, "%s: option -%c needs a value\n", progname, a[1]);
            usage();
        }
        o->arg = o->argv[o->i++];
    }
    return a[1];
}

/*
 * The long options for secure clusters, as "--name value" or
 * "--name=value".  Returns 1 when it took one, 0 when the next argument is
 * not a long option; usage() for an unknown one.
 */
static int long_opt(struct opts *o)
{
    static const char *const names[] = { "cacert", "cert", "key", "user" };
    const size_t count = sizeof names / sizeof names[0];
    const char *a, *value, *colon;
    size_t i, n = 0;
    if (o->i >= o->argc)
        return 0;
    a = o->argv[o->i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
        return 0;
    for (i = 0; i < count; i++) {
        n = strlen(names[i]);
        if (strncmp(a + 2, names[i], n) == 0 && (a[2 + n] == '\0' || a[2 + n] == '='))
            break;
    }
    if (i == count) {
        fprintf(stderr, "%s: unknown option %s\n", progname, a);
        usage();
    }
    o->i++;
    if (a[2 + n] == '=') {
        value = a + 3 + n;
    } else {
        if (o->i >= o->argc) {
            fprintf(stderr, "%s: option %s needs a value\n", progname, a);
            usage();
        }
        value = o->argv[o->i++];
    }
    have_options = 1;
    switch (i) {
    case 0: options.cacert = value; break;
    case 1: options.cert = value; break;
    case 2: options.key = value; break;
    default:
        /* NAME:PASSWORD as etcdctl takes it; NAME alone: the password
         * comes from the environment. */
        colon = strchr(value, ':');
        free(user_name);
        user_name = NULL;
        options.password = NULL;
        if (colon) {
            user_name = malloc((size_t)(colon - value) + 1);
            if (!user_name) {
                perror(progname);
                exit(1);
            }
            memcpy(user_name, value, (size_t)(colon - value));
            user_name[colon - value] = '\0';
            options.user = user_name;
            options.password = colon + 1;
        } else {
            options.user = value;
        }
        break;
    }
    return 1;
}

/* Parse a non-negative decimal number no larger than max; usage() if bad. */
static unsigned long parse_num(const char *s, unsigned long max, const char *what)
{
    char *end;
    unsigned long v;
    errno = 0;
    if (*s == '-' || *s == '\0')
        goto bad;
    v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v > max)
        goto bad;
    return v;
bad:
    fprintf(stderr, "%s: bad %s '%s'\n", progname, what, s);
    usage();
    return 0;   /* not reached */
}

/* The remaining arguments must be exactly n. */
static void want_args(const struct opts *o, int n)
{
    if (o->argc - o->i != n)
        usage();
}

static int cmd_get(struct opts *o)
{
    etcd_session s;
    char *value;
    if (next_opt(o, ""))
        usage();
    want_args(o, 1);
    if (!(s = open_session()))
        return 1;
    value = etcd_get(s, o->argv[o->i]);
    if (!value) {
        fprintf(stderr, "etcd_get failed: %s\n", errmsg());
        return 1;
    }
    printf("%s\n", value);
    free(value);
    return 0;
}

static int cmd_set(struct opts *o)
{
    etcd_session s;
    char *precond = NULL;
    unsigned int ttl = 0;
    int c;
    while ((c = next_opt(o, "pt")) != 0) {
        if (c == 'p')
            precond = o->arg;
        else
            ttl = (unsigned int)parse_num(o->arg, UINT_MAX, "ttl");
    }
    want_args(o, 2);
    if (!(s = open_session()))
        return 1;
    if (etcd_set(s, o->argv[o->i], o->argv[o->i + 1], precond, ttl) != ETCD_OK) {
        fprintf(stderr, "etcd_set failed: %s\n", errmsg());
        return 1;
    }
    return 0;
}

static int cmd_delete(struct opts *o)
{
    etcd_session s;
    if (next_opt(o, ""))
        usage();
    want_args(o, 1);
    if (!(s = open_session()))
        return 1;
    if (etcd_delete(s, o->argv[o->i]) != ETCD_OK) {
        fprintf(stderr, "etcd_delete failed: %s\n", errmsg());
        return 1;
    }
    return 0;
}

static int cmd_watch(struct opts *o)
{
    etcd_session s;
    int index_in = 0, index_out = 0;
    int *pindex = NULL;     /* NULL: the next change from now */
    char *key = NULL, *value = NULL;
    int c;
    while ((c = next_opt(o, "i")) != 0) {
        index_in = (int)parse_num(o->arg, INT_MAX, "index");
        pindex = &index_in;
    }
    want_args(o, 1);
    if (!(s = open_session()))
        return 1;
    for (;;) {
        if (etcd_watch(s, o->argv[o->i], &key, &value, pindex, &index_out)
                != ETCD_OK) {
            fprintf(stderr, "etcd_watch failed: %s\n", errmsg());
            return 1;
        }
        printf("index is %d\n", index_out);
        if (value)
            printf("key %s was set to %s\n", key ? key : "(null)", value);
        else
            printf("key %s was deleted\n", key ? key : "(null)");
        /* Flush per change: a reader on a pipe must see changes live. */
        fflush(stdout);
        free(key);
        free(value);
        key = value = NULL;
        if (index_out == INT_MAX) {
            fprintf(stderr, "%s: index overflow\n", progname);
            return 1;
        }
        /* Continue right after this change: none skipped, none repeated. */
        index_in = index_out + 1;
        pindex = &index_in;
    }
}

static int cmd_leader(struct opts *o)
{
    etcd_session s;
    char *leader;
    if (next_opt(o, ""))
        usage();
    want_args(o, 0);
    if (!(s = open_session()))
        return 1;
    leader = etcd_leader(s);
    if (!leader) {
        fprintf(stderr, "etcd_leader failed: %s\n", errmsg());
        return 1;
    }
    printf("%s\n", leader);
    free(leader);
    return 0;
}

static int cmd_lock(struct opts *o)
{
    etcd_session s;
    char *index = NULL, *out = NULL;
    unsigned int ttl = 0;
    int have_ttl = 0, c;
    while ((c = next_opt(o, "ti")) != 0) {
        if (c == 't') {
            ttl = (unsigned int)parse_num(o->arg, UINT_MAX, "ttl");
            have_ttl = 1;
        } else {
            index = o->arg;
        }
    }
    if (!have_ttl)
        usage();
    want_args(o, 1);
    if (!(s = open_session()))
        return 1;
    if (etcd_lock(s, o->argv[o->i], ttl, index, &out) != ETCD_OK) {
        fprintf(stderr, "etcd_lock failed: %s\n", errmsg());
        return 1;
    }
    if (index)
        printf("lock renewed\n");
    else
        printf("lock index is %s\n", out ? out : "(null)");
    free(out);      /* NULL on renew; free(NULL) is fine */
    return 0;
}

static int cmd_unlock(struct opts *o)
{
    etcd_session s;
    char *index = NULL;
    while (next_opt(o, "i") != 0)
        index = o->arg;
    if (!index)
        usage();
    want_args(o, 1);
    if (!(s = open_session()))
        return 1;
    if (etcd_unlock(s, o->argv[o->i], index) != ETCD_OK) {
        fprintf(stderr, "etcd_unlock failed: %s\n", errmsg());
        return 1;
    }
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(struct opts *);
} commands[] = {
    { "get", cmd_get },
    { "set", cmd_set },
    { "delete", cmd_delete },
    { "watch", cmd_watch },
    { "leader", cmd_leader },
    { "lock", cmd_lock },
    { "unlock", cmd_unlock },
};

int main(int argc, char **argv)
{
    struct opts o;
    const char *env;
    size_t n;
    int rc;

    if (argc > 0 && argv[0] && *argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        progname = slash ? slash + 1 : argv[0];
    }

    o.argc = argc;
    o.argv = argv;
    o.i = 1;
    o.arg = NULL;
    for (;;) {
        if (long_opt(&o))
            continue;
        if (next_opt(&o, "s") == 0)
            break;
        servers = o.arg;
    }
    if (o.i >= argc)
        usage();
    for (n = 0; n < sizeof commands / sizeof commands[0]; n++)
        if (strcmp(argv[o.i], commands[n].name) == 0)
            break;
    if (n == sizeof commands / sizeof commands[0]) {
        fprintf(stderr, "%s: unknown command '%s'\n", progname, argv[o.i]);
        usage();
    }
    o.i++;

    if (!servers) {
        env = getenv("ETCD_SERVERS");
        servers = (char *)(env && *env ? env : DEFAULT_SERVERS);
    }
    /* etcd_open_str takes a char *: hand it a copy we own. */
    servers = strdup(servers);
    if (!servers) {
        perror(progname);
        return 1;
    }

    rc = commands[n].fn(&o);
    if (session)
        etcd_close_str(session);
    free(servers);
    free(user_name);
    return rc;
}
