#!/usr/bin/env bash
# The server's own cost, for comparison with build/bench: the same N puts,
# ranges and deletes through etcd's JSON gateway, sent by one curl process
# over one kept-alive connection. Same columns as build/bench.
#   c-tests/etcd-local run -- c-tests/bench-curl.sh [-n N]
set -euo pipefail
n=2000
[ "${1:-}" = "-n" ] && n=$2
ep=${ETCDAPI_TEST_ENDPOINT:?run under c-tests/etcd-local}
if ! command -v curl >/dev/null; then
    echo "bench-curl: curl is not installed; skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
b64() { printf '%s' "$1" | base64 -w0; }

phase() { # name path body-template(with KEY/VALUE placeholders)
    local name=$1 path=$2 tmpl=$3 i key val
    : >"$tmp/cfg"
    for ((i = 0; i < n; i++)); do
        key=$(printf '/curl-bench-%d/k%06d' $$ "$i")
        val=$(printf 'value-%06d-abcdefghijklmnopqrstuvwxyz' "$i")
        body=${tmpl//KEY/$(b64 "$key")}
        body=${body//VALUE/$(b64 "$val")}
        [ "$i" -gt 0 ] && echo next >>"$tmp/cfg"
        printf 'url = "http://%s%s"\ndata = "%s"\noutput = "/dev/null"\nwrite-out = "%%{time_total}\\n"\n' \
            "$ep" "$path" "${body//\"/\\\"}" >>"$tmp/cfg"
    done
    local t0 t1
    t0=$(date +%s.%N)
    curl -s -K "$tmp/cfg" >"$tmp/times"
    t1=$(date +%s.%N)
    sort -g "$tmp/times" | awk -v name="$name" -v n="$n" -v t0="$t0" -v t1="$t1" '
        { lat[NR] = $1 * 1e6 }
        END {
            secs = t1 - t0
            p50 = lat[int((NR - 1) * 0.50) + 1]; p99 = lat[int((NR - 1) * 0.99) + 1]
            printf "%-12s %8d %9.3f %10.1f %9.0f %9.0f\n", name, n, secs, n / secs, p50, p99
        }'
}

printf '%-12s %8s %9s %10s %9s %9s\n' "curl phase" ops seconds "ops/s" "p50(us)" "p99(us)"
phase "curl put" /v3/kv/put '{"key":"KEY","value":"VALUE"}'
phase "curl range" /v3/kv/range '{"key":"KEY"}'
phase "curl delete" /v3/kv/deleterange '{"key":"KEY"}'
