#!/usr/bin/env bash
# The server's own cost, for comparison with build/bench: the same N puts,
# ranges and deletes through etcd's JSON gateway, sent by one curl process
# over one kept-alive connection, with the keys and values build/bench
# uses and the bodies the library sends (etcd_set: kv/put {"key","value"};
# etcd_get: kv/range {"key"}; etcd_delete: kv/deleterange {"key"}). Same
# columns as build/bench; cpu is curl's own (user + system per request).
# Over https (ETCDAPI_TEST_TLS=1 etcd-local) with the ETCDAPI_CACERT,
# ETCDAPI_CERT and ETCDAPI_KEY files.
#   c-tests/etcd-local run -- c-tests/bench-curl.sh [-n N]
set -euo pipefail
n=2000
[ "${1:-}" = "-n" ] && n=$2
ep=${ETCDAPI_TEST_ENDPOINT:?run under c-tests/etcd-local}
if ! command -v curl >/dev/null; then
    echo "bench-curl: curl is not installed; skipped"
    exit 0
fi
case $ep in
    https://* | http://*) url=$ep ;;
    *) url=http://$ep ;;
esac
tls=
for opt in CACERT CERT KEY; do
    var=ETCDAPI_$opt
    [ -n "${!var:-}" ] && tls+="${opt,,} = \"${!var}\""$'\n'
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
b64() { printf '%s' "$1" | base64 -w0; }

phase() { # name path body-template(with KEY/VALUE placeholders)
    local name=$1 path=$2 tmpl=$3 i key val t0 t1
    : >"$tmp/cfg"
    for ((i = 0; i < n; i++)); do
        key=$(printf '/curl-bench-%d/k%06d' $$ "$i")
        # build/bench's value_of(i)
        val=$(printf 'value-%06d-%08x-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789-%06d' \
            "$i" $(((i * 2654435761) & 0xffffffff)) "$i")
        body=${tmpl//KEY/$(b64 "$key")}
        body=${body//VALUE/$(b64 "$val")}
        [ "$i" -gt 0 ] && echo next >>"$tmp/cfg"
        printf '%surl = "%s%s"\ndata = "%s"\noutput = "/dev/null"\nwrite-out = "%%{time_total}\\n"\n' \
            "$tls" "$url" "$path" "${body//\"/\\\"}" >>"$tmp/cfg"
    done
    t0=$(date +%s.%N)
    { TIMEFORMAT='%U %S'; time curl -s -K "$tmp/cfg" >"$tmp/times"; } 2>"$tmp/cpu"
    t1=$(date +%s.%N)
    sort -g "$tmp/times" | awk -v name="$name" -v n="$n" -v t0="$t0" -v t1="$t1" \
        -v cpu="$(awk '{ print $1 + $2 }' "$tmp/cpu")" '
        { lat[NR] = $1 * 1e6 }
        END {
            secs = t1 - t0
            p50 = lat[int((NR - 1) * 0.50) + 1]; p99 = lat[int((NR - 1) * 0.99) + 1]
            printf "%-20s %7d %8.3f %9.1f %8.0f %8.0f %10.1f\n", name, n, secs, n / secs, p50, p99, cpu * 1e6 / n
        }'
}

printf '%-20s %7s %8s %9s %8s %8s %10s\n' "curl phase" ops seconds "ops/s" "p50(us)" "p99(us)" "cpu(us/op)"
phase "curl put" /v3/kv/put '{"key":"KEY","value":"VALUE"}'
phase "curl range" /v3/kv/range '{"key":"KEY"}'
phase "curl delete" /v3/kv/deleterange '{"key":"KEY"}'
