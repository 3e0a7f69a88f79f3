/*
 * procs.c: the harness's witnesses and helper processes: shell commands
 * (etcdctl, over its v3 and its v2 API), plain HTTP to the test etcd
 * without the library, and helper processes whose output comes back
 * through a pipe (etcdctl lock, forked children with their own sessions).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ------------------------------------------------------------------ */
/* Witnesses                                                          */
/* ------------------------------------------------------------------ */

/* Room for 4 KiB more in buf (n bytes used, *cap allocated). */
static char *grow(char *buf, size_t n, size_t *cap)
{
    char *nb;
    if (*cap - n >= 4096)
        return buf;
    *cap = *cap ? *cap * 2 : 8192;
    nb = realloc(buf, *cap);
    if (!nb)
        abort();
    return nb;
}

/*
 * Run a shell command and return everything it printed on stdout
 * (malloc'd, NUL-terminated; *len excludes the NUL), or NULL if it could
 * not run or exited non-zero.
 */
char *run_capture(const char *cmd, size_t *len)
{
    FILE *p = popen(cmd, "r");
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    int status;
    if (!p)
        return NULL;
    for (;;) {
        buf = grow(buf, n, &cap);
        got = fread(buf + n, 1, cap - n - 1, p);
        if (got == 0)
            break;
        n += got;
    }
    status = pclose(p);
    if (status != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/*
 * etcdctl against the test etcd.  --endpoints is given explicitly (the
 * brief's contract), so ETCDCTL_ENDPOINTS must be unset: etcdctl 3.4
 * refuses to start when a flag and its environment variable are both set.
 */
void etcdctl_cmd(char *out, size_t n, const char *args)
{
    snprintf(out, n,
             "env -u ETCDCTL_ENDPOINTS ETCDCTL_API=3 etcdctl "
             "--endpoints=%s %s", ep_url, args);
}

/*
 * etcdctl speaking the v2 API (etcdctl 3.4 still has it): the witness for
 * what a v2 session stored.  Same rule for ETCDCTL_ENDPOINTS as above.
 */
void etcdctl2_cmd(char *out, size_t n, const char *args)
{
    /* Over https (make test-secure), v2 etcdctl takes its files as flags
     * of its own: --ca-file, --cert-file, --key-file. */
    char tls[1536] = "";
    const char *ca = getenv("ETCDAPI_CACERT"), *cert = getenv("ETCDAPI_CERT"),
               *key = getenv("ETCDAPI_KEY");
    if (strncmp(ep_url, "https://", 8) == 0 && ca && cert && key)
        snprintf(tls, sizeof tls, "--ca-file '%s' --cert-file '%s' --key-file '%s' ",
                 ca, cert, key);
    snprintf(out, n,
             "env -u ETCDCTL_ENDPOINTS ETCDCTL_API=2 etcdctl "
             "--endpoints=%s %s%s", ep_url, tls, args);
}

/*
 * GET path from the test etcd over plain HTTP/1.0 (the server closes the
 * connection after its answer), without the library: the v2 store's index
 * and /v2/stats/self.  Returns the whole answer, headers and body
 * (malloc'd), or NULL.
 */
char *http_get(const char *path)
{
    struct addrinfo hints, *ai = NULL;
    struct timeval tv;
    char port[16], req[1024], *buf = NULL;
    size_t n = 0, cap = 0;
    int fd = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%u", ep_port);
    if (getaddrinfo(ep_host, port, &hints, &ai) != 0 || !ai)
        return NULL;
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    tv.tv_sec = 5;
    tv.tv_usec = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0
            || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto fail;
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, endpoint);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        goto fail;
    for (;;) {
        ssize_t got;
        buf = grow(buf, n, &cap);
        got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    close(fd);
    freeaddrinfo(ai);
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    free(buf);
    return NULL;
}

/* The v2 store's current index (X-Etcd-Index of a quorum read), 0 if unknown. */
long long v2_store_index(void)
{
    char *a = http_get("/v2/keys/?quorum=true");
    const char *h;
    long long idx = 0;
    if (a && strncmp(a, "HTTP/1.", 7) == 0 && strncmp(a + 8, " 200", 4) == 0
            && (h = strstr(a, "\r\nX-Etcd-Index:")) != NULL)
        idx = strtoll(h + strlen("\r\nX-Etcd-Index:"), NULL, 10);
    free(a);
    return idx;
}

/* Non-empty lines in s. */
int count_lines(const char *s)
{
    int n = 0;
    const char *p = s;
    if (!s)
        return -1;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0)
            n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Helper processes                                                   */
/* ------------------------------------------------------------------ */

/*
 * A pipe for the helper's output, then fork; h->pid is 0 in the child.
 * -1 (no child, nothing open) if either fails.
 */
static int helper_spawn(struct helper *h, int p[2])
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    h->pid = fork();
    if (h->pid < 0) {
        h->pid = 0;
        close(p[0]);
        close(p[1]);
        return -1;
    }
    return 0;
}

/* In the parent: keep the read end, and the PID for the watchdog. */
static void helper_spawned(struct helper *h, int p[2])
{
    close(p[1]);
    h->fd = p[0];
    helper_register(h->pid);
}

/*
 * Run fn(wfd, arg) in a forked child, which must end with _exit().  The
 * child only inherits the forking thread; it opens its own session.  An
 * alarm ends it should it hang, so that it can never outlive the test.
 */
int helper_fork(struct helper *h, void (*fn)(int wfd, void *arg), void *arg)
{
    int p[2];
    if (helper_spawn(h, p) != 0)
        return -1;
    if (h->pid == 0) {
        helper_forget_all();        /* the parent's helpers are not ours */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        close(p[0]);
        alarm(30);
        fn(p[1], arg);
        _exit(99);
    }
    helper_spawned(h, p);
    return 0;
}

/* Run "exec CMD" under /bin/sh, so that the PID is the command's own. */
int helper_exec(struct helper *h, const char *cmd)
{
    int p[2];
    char *full;
    size_t len = strlen(cmd) + 8;
    full = malloc(len);
    if (!full)
        abort();
    snprintf(full, len, "exec %s", cmd);
    if (helper_spawn(h, p) != 0) {
        free(full);
        return -1;
    }
    if (h->pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    free(full);
    helper_spawned(h, p);
    return 0;
}

/* Read what is there (waiting at most ms); returns bytes read, 0 on time-out or EOF. */
static size_t helper_read(struct helper *h, long ms)
{
    struct pollfd pfd;
    ssize_t got;
    int pr;
    if (h->fd < 0 || h->eof)
        return 0;
    pfd.fd = h->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    pr = poll(&pfd, 1, (int)(ms < 0 ? 0 : ms));
    if (pr <= 0)
        return 0;
    got = read(h->fd, h->out + h->n, sizeof h->out - 1 - h->n);
    if (got <= 0) {
        h->eof = 1;
        return 0;
    }
    h->n += (size_t)got;
    h->out[h->n] = '\0';
    return (size_t)got;
}

/*
 * Wait up to ms for needle in the helper's output.  1: found (the time it
 * was seen in *seen_at), 0: time-out, -1: the helper closed its output
 * without printing it.
 */
int helper_wait_for(struct helper *h, const char *needle, long ms, double *seen_at)
{
    double end = now() + (double)ms / 1000.0, left;
    int tried = 0;
    for (;;) {
        if (strstr(h->out, needle)) {
            if (seen_at)
                *seen_at = now();
            return 1;
        }
        if (h->eof)
            return -1;
        left = end - now();
        if (left <= 0 && tried)
            return 0;
        tried = 1;
        helper_read(h, left > 0 ? (long)(left * 1000.0) + 1 : 0);
    }
}

/*
 * Wait up to ms for the helper to exit, then kill it (SIGKILL) if it has
 * not; reap it and close the pipe.  Returns its wait status, or -1 if it
 * had to be killed.
 */
int helper_finish(struct helper *h, long ms)
{
    int status = -1, killed = 0;
    double end = now() + (double)ms / 1000.0;
    if (h->pid > 0) {
        for (;;) {
            pid_t r = waitpid(h->pid, &status, WNOHANG);
            if (r == h->pid)
                break;
            if (r < 0) {
                status = -1;
                break;
            }
            if (now() >= end) {
                kill(h->pid, SIGKILL);
                waitpid(h->pid, &status, 0);
                killed = 1;
                break;
            }
            /* keep draining so a chatty helper cannot block on a full pipe */
            if (helper_read(h, 20) == 0)
                sleep_ms(20);
        }
        helper_unregister(h->pid);
        h->pid = 0;
    }
    while (h->fd >= 0 && !h->eof && helper_read(h, 0) > 0)
        ;
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    return killed ? -1 : status;
}

int exited_zero(int status)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void write_str(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}
