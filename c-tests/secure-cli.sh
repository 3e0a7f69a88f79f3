#!/usr/bin/env bash
# secure-cli: etcd-test's options for secure clusters (--cacert, --cert,
# --key, --user) and its environment variables, against the TLS etcd with
# client certificates and authentication of
#     ETCDAPI_TEST_TLS=1 ETCDAPI_TEST_AUTH=1 c-tests/etcd-local run -- c-tests/secure-cli.sh build/etcd-test
set -u
cli=${1:-build/etcd-test}
ep=$ETCDAPI_TEST_ENDPOINT d=$ETCDAPI_TEST_CERT_DIR pw=$ETCDAPI_PASSWORD
passed=0 failed=0
k=/secure-cli-$$
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# check WHAT WANT-STATUS [WANT-IN-OUTPUT] -- CMD...: runs CMD with no
# TLS or auth variable but those given on its command line (env VAR=...).
check() {
    local what=$1 want=$2 grepfor=$3 rc
    shift 4
    env -u ETCDAPI_CACERT -u ETCDAPI_CERT -u ETCDAPI_KEY -u ETCDAPI_USER -u ETCDAPI_PASSWORD \
        -u ETCDCTL_CACERT -u ETCDCTL_CERT -u ETCDCTL_KEY -u ETCDCTL_USER -u ETCDCTL_PASSWORD \
        "$@" >"$out" 2>"$err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $what: exit $rc, want $want: $(cat "$out" "$err")"; failed=$((failed + 1)); return
    fi
    if [ -n "$grepfor" ] && ! grep -q -- "$grepfor" "$out" "$err"; then
        echo "FAIL $what: no '$grepfor' in: $(cat "$out" "$err")"; failed=$((failed + 1)); return
    fi
    if grep -q -- "$pw" "$err" || grep -q -- "wrong-pw-123" "$err"; then
        echo "FAIL $what: a password in the message: $(cat "$err")"; failed=$((failed + 1)); return
    fi
    passed=$((passed + 1))
}

tls=(--cacert "$d/ca.crt" --cert "$d/client.crt" --key="$d/client.key")
echo "== etcd-test options and variables"
check "options: set" 0 "" -- "$cli" -s "$ep" "${tls[@]}" --user "root:$pw" set "$k/a" hello
check "options: get" 0 hello -- "$cli" "${tls[@]}" --user="root:$pw" -s "$ep" get "$k/a"
check "--user NAME, password from ETCDAPI_PASSWORD" 0 hello -- \
    env ETCDAPI_PASSWORD="$pw" "$cli" -s "$ep" "${tls[@]}" --user root get "$k/a"
check "--user NAME without a password anywhere" 1 "no password" -- \
    "$cli" --verbose -s "$ep" "${tls[@]}" --user root get "$k/a"
check "ETCDAPI_* variables" 0 hello -- \
    env ETCDAPI_CACERT="$d/ca.crt" ETCDAPI_CERT="$d/client.crt" ETCDAPI_KEY="$d/client.key" \
    ETCDAPI_USER=root ETCDAPI_PASSWORD="$pw" "$cli" -s "$ep" get "$k/a"
check "ETCDCTL_* variables" 0 hello -- \
    env ETCDCTL_CACERT="$d/ca.crt" ETCDCTL_CERT="$d/client.crt" ETCDCTL_KEY="$d/client.key" \
    ETCDCTL_USER="root:$pw" "$cli" -s "$ep" get "$k/a"
check "options over variables" 0 hello -- \
    env ETCDAPI_CACERT="$d/other-ca.crt" ETCDAPI_USER=nobody ETCDAPI_PASSWORD=x \
    "$cli" -s "$ep" "${tls[@]}" --user "root:$pw" get "$k/a"
check "a lock and its unlock" 0 "got back index number" -- \
    "$cli" -s "$ep" "${tls[@]}" --user "root:$pw" lock -t 5 "$k/lock"
idx=$(sed -n 's/^got back index number //p' "$out")
check "unlock" 0 "" -- "$cli" -s "$ep" "${tls[@]}" --user "root:$pw" unlock -i "$idx" "$k/lock"
check "wrong password: refused" 1 "authentication as user" -- \
    "$cli" --verbose -s "$ep" "${tls[@]}" --user root:wrong-pw-123 get "$k/a"
check "wrong CA" 1 "not signed by the CA" -- \
    "$cli" --verbose -s "$ep" --cacert "$d/other-ca.crt" --cert "$d/client.crt" --key "$d/client.key" \
    --user "root:$pw" get "$k/a"
check "missing CA file" 1 "no-such.crt" -- "$cli" --verbose -s "$ep" --cacert "$d/no-such.crt" get "$k/a"
check "unknown option" 1 "unrecognized option '--cacrt'" -- "$cli" --cacrt x get "$k/a"
check "option without its value" 1 "option '--user' requires an argument" -- "$cli" --user
check "clean up" 0 "" -- "$cli" -s "$ep" "${tls[@]}" --user "root:$pw" delete "$k/a"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
