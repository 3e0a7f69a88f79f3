/*
 * config-check: what a program whose environment nobody set sees of the
 * library's configuration file (c-tests/config-test.sh, make test-config).
 *
 *   config-check SERVERS KEY      etcd_open_str(SERVERS), then etcd_get(KEY)
 *   config-check -o SERVERS KEY   the same through etcd_open_opts with
 *                                 cacert "" (none: the option wins over the
 *                                 environment and the file)
 *
 * Prints one line and exits 0 when a value came back:
 *     value: VALUE
 * else exits 1 with one of:
 *     no value                    (etcd_get gave NULL)
 *     open failed: ETCD_ERRMSG    (etcd_open_str or etcd_open_opts gave NULL)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-api.h"

int main(int argc, char **argv)
{
    etcd_session s;
    etcd_options opts;
    char *value;
    int with_opts = argc == 4 && strcmp(argv[1], "-o") == 0;

    if (argc != 3 && !with_opts) {
        fprintf(stderr, "usage: config-check [-o] SERVERS KEY\n");
        return 2;
    }
    if (with_opts) {
        memset(&opts, 0, sizeof opts);
        opts.cacert = "";
        s = etcd_open_opts(argv[2], &opts);
    } else {
        s = etcd_open_str(argv[1]);
    }
    if (!s) {
        printf("open failed: %s\n", etcd_errmsg());
        return 1;
    }
    value = etcd_get(s, argv[argc - 1]);
    etcd_close_str(s);
    if (!value) {
        printf("no value\n");
        return 1;
    }
    printf("value: %s\n", value);
    free(value);
    return 0;
}
