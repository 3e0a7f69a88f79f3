#!/usr/bin/env bash
# cli-test: etcd-test prints what the original etcd-api's etcd-test
# printed, for every command and every error: stdout, stderr and the exit
# status of each run are compared exactly with the original's strings.
#
#     c-tests/etcd-local run -- c-tests/cli-test.sh build/etcd-test    (make test-cli)
#
# The original's strings (its etcd-test.c): "getting %s", "got value: %s",
# "setting %s to %s", "  precond = %s", "  ttl = %lu", "deleting %s",
# "finding leader", "leader is %s", "locking %s for %s",
# "locking %s (%s) for %s", "got back index number %s", "unlocking %s (%s)",
# "index is %d", "key %s was set to %s", "key %s was deleted"; on stderr
# "<call> failed" and "etcd_open failed"; the usage text below; exit 1 on
# any failure or usage error.
set -u
cli=${1:-build/etcd-test}
ep=$ETCDAPI_TEST_ENDPOINT
tmp=$(mktemp -d /tmp/etcdapi-cli-test.XXXXXX)
wpid=
trap '[ -n "$wpid" ] && kill "$wpid" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0 failed=0
k=/cli-test-$$

usage_text() {
    cat <<USAGE
Usage: $cli [-s server-list] command ...
Valid commands:
  get       KEY
  set       [-p precond] [-t ttl] KEY VALUE
  delete    KEY
  watch     [-i index] KEY
  leader
  lock     -t ttl [-i index] KEY
  unlock    -i index KEY
Server list is host:port pairs separated by comma,
semicolon, or white space.  If not given on the
command line, ETCD_SERVERS will be used from the
environment instead.
USAGE
}

# expect WHAT STATUS STDOUT STDERR -- CMD...: exact stdout, stderr, status.
expect() {
    local what=$1 want_rc=$2 want_out=$3 want_err=$4 rc
    shift 5
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && [ "$(cat "$tmp/out")" = "$want_out" ] &&
       [ "$(cat "$tmp/err")" = "$want_err" ]; then
        passed=$((passed + 1)); echo "ok: $what"
    else
        failed=$((failed + 1))
        printf 'FAIL: %s\n  want exit %s, stdout:\n%s\n  stderr:\n%s\n  got exit %s, stdout:\n%s\n  stderr:\n%s\n' \
            "$what" "$want_rc" "$want_out" "$want_err" "$rc" "$(cat "$tmp/out")" "$(cat "$tmp/err")"
    fi
}

echo "== commands"
expect "set" 0 "setting $k/a to hello" "" -- "$cli" -s "$ep" set "$k/a" hello
expect "get" 0 "getting $k/a
got value: hello" "" -- "$cli" -s "$ep" get "$k/a"
expect "get with the servers from ETCD_SERVERS" 0 "getting $k/a
got value: hello" "" -- env ETCD_SERVERS="$ep" "$cli" get "$k/a"
expect "options after the command (getopt_long permutes, as in the original)" 0 "getting $k/a
got value: hello" "" -- "$cli" get "$k/a" -s "$ep"
expect "commands in any case (strcasecmp)" 0 "getting $k/a
got value: hello" "" -- "$cli" -s "$ep" GET "$k/a"
expect "set with precond and ttl" 0 "setting $k/a to world
  precond = hello
  ttl = 30" "" -- "$cli" -s "$ep" set -p hello -t 30 "$k/a" world
expect "set whose precond fails" 1 "setting $k/a to again
  precond = nope" "etcd_set failed" -- "$cli" -s "$ep" set -p nope "$k/a" again
expect "the value after it" 0 "getting $k/a
got value: world" "" -- "$cli" -s "$ep" get "$k/a"
expect "a ttl read with strtoul (\"abc\" is 0: no ttl)" 0 "setting $k/b to x
  ttl = 0" "" -- "$cli" -s "$ep" --ttl abc set "$k/b" x
expect "a directory: its children, one a line" 0 "getting $k
got value: $k/a
$k/b" "" -- "$cli" -s "$ep" get "$k"
expect "get of a missing key" 1 "getting $k/none" "etcd_get failed" -- "$cli" -s "$ep" get "$k/none"
expect "delete" 0 "deleting $k/a" "" -- "$cli" -s "$ep" delete "$k/a"
expect "delete of a missing key" 1 "deleting $k/a" "etcd_delete failed" -- "$cli" -s "$ep" delete "$k/a"

leader=$(printf '%x' "$(etcdctl endpoint status -w json | sed -n 's/.*"leader":\([0-9]*\).*/\1/p')")
expect "leader (etcdctl's leader ID, in hex)" 0 "finding leader
leader is $leader" "" -- "$cli" -s "$ep" leader

echo "== locks"
"$cli" -s "$ep" lock -t 5 "$k/lock" >"$tmp/lock" 2>&1
idx=$(sed -n 's/^got back index number //p' "$tmp/lock")
# etcdctl lists lease IDs as %016x; the index has no leading zeros.
expect "lock (the index is a lease etcd lists)" 0 "locking $k/lock for 5
got back index number $idx" "" -- sh -c "cat '$tmp/lock'; etcdctl lease list | grep -qx \"\$(printf '%016x' 0x'$idx')\" || echo 'not a lease: $idx'"
expect "renewing the lock prints no index" 0 "locking $k/lock ($idx) for 5" "" -- \
    "$cli" -s "$ep" lock -t 5 -i "$idx" "$k/lock"
expect "unlock" 0 "unlocking $k/lock ($idx)" "" -- "$cli" -s "$ep" unlock -i "$idx" "$k/lock"
expect "unlock of a lock not held" 1 "unlocking $k/lock ($idx)" "etcd_unlock failed" -- \
    "$cli" -s "$ep" unlock -i "$idx" "$k/lock"
expect "renewing a lock not held" 1 "locking $k/lock ($idx) for 5" "etcd_lock failed" -- \
    "$cli" -s "$ep" lock -t 5 -i "$idx" "$k/lock"

echo "== watch"
"$cli" -s "$ep" set "$k/w/x" first >/dev/null
"$cli" -s "$ep" delete "$k/w/x" >/dev/null
rev=$(etcdctl get "$k/b" -w json | sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
# The set and the delete were the last two changes: revisions rev-1, rev.
"$cli" -s "$ep" watch -i $((rev - 1)) "$k/w" >"$tmp/watch" 2>&1 & wpid=$!
sleep 1
"$cli" -s "$ep" set "$k/w/y" live >/dev/null
sleep 1
kill "$wpid"; wait "$wpid" 2>/dev/null; wpid=
expect "watch from an index: every change after it, then a live one" 0 "getting $k/w
index is $((rev - 1))
key $k/w/x was set to first
index is $rev
key $k/w/x was deleted
index is $((rev + 1))
key $k/w/y was set to live" "" -- cat "$tmp/watch"

echo "== errors and usage"
expect "servers that do not parse" 1 "" "etcd_open failed" -- "$cli" -s "127.0.0.1:abc" get "$k/a"
expect "no arguments: usage" 1 "" "$(usage_text)" -- "$cli" -s "$ep"
expect "no servers (no -s, no ETCD_SERVERS): usage" 1 "" "$(usage_text)" -- \
    env -u ETCD_SERVERS "$cli" get "$k/a"
expect "an unknown command: usage" 1 "" "$(usage_text)" -- "$cli" -s "$ep" frob "$k/a"
expect "an unknown option: getopt's message, usage" 1 "" "$cli: invalid option -- 'x'
$(usage_text)" -- "$cli" -s "$ep" -x get "$k/a"
expect "an option without its value: getopt's message, usage" 1 "" "$cli: option requires an argument -- 't'
$(usage_text)" -- "$cli" -s "$ep" get "$k/a" -t
expect "get with a ttl: usage" 1 "" "$(usage_text)" -- "$cli" -s "$ep" -t 5 get "$k/a"
expect "set without a value: usage" 1 "" "$(usage_text)" -- "$cli" -s "$ep" set "$k/a"
expect "lock without a ttl: usage" 1 "" "$(usage_text)" -- "$cli" -s "$ep" lock "$k/lock"
expect "unlock without an index: usage" 1 "" "$(usage_text)" -- "$cli" -s "$ep" unlock "$k/lock"
expect "leader with an argument: usage" 1 "" "$(usage_text)" -- "$cli" -s "$ep" leader extra

echo "== beyond the original: --verbose"
"$cli" -s "$ep" --verbose get "$k/none" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 1 ] && [ "$(cat "$tmp/out")" = "getting $k/none" ] &&
   [ "$(sed -n 1p "$tmp/err")" = "etcd_get failed" ] &&
   sed -n 2p "$tmp/err" | grep -q "^etcd-test: ." && [ "$(wc -l <"$tmp/err")" -eq 2 ]; then
    passed=$((passed + 1)); echo "ok: --verbose adds the library's reason after the failure line"
else
    failed=$((failed + 1)); echo "FAIL: --verbose: exit $rc: $(cat "$tmp/out" "$tmp/err")"
fi

"$cli" -s "$ep" delete "$k/b" >/dev/null
"$cli" -s "$ep" delete "$k/w/y" >/dev/null
echo "cli-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
