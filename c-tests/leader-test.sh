#!/usr/bin/env bash
# leader-test: leader election with build/leader (etcd locks), end to end.
#
#   c-tests/etcd-local run -- c-tests/leader-test.sh [build/leader]
#
# Two nodes (a, b) compete for one key with a 3 s ttl.  Within 5 s exactly
# one says "is the leader"; it is then killed with SIGKILL (no unlock, no
# renewal: its lease just runs out) and the other must take over within
# ttl + 2 = 5 s of the kill.  Prints "leader: N passed, N failed" last and
# exits non-zero on any failure.  Never leaves a process behind.  The
# protocol is the library's: ETCDAPI_PROTOCOL=v2 runs it over v2 locks.

set -u

leader=${1:-build/leader}
ttl=3
key="leader-test-$$-$RANDOM"

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check DESCRIPTION CMD...
    local what=$1; shift
    if "$@"; then pass; else fail "$what"; fi
}

[ -n "${ETCD_SERVERS:-}" ] || { echo "leader-test: ETCD_SERVERS is not set (run under c-tests/etcd-local)" >&2; exit 2; }
[ -x "$leader" ] || { echo "leader-test: $leader is not executable" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/leader-test.XXXXXX") || exit 2
declare -A pid=()

cleanup() {
    local n
    for n in "${!pid[@]}"; do
        kill -KILL "${pid[$n]}" 2>/dev/null
        wait "${pid[$n]}" 2>/dev/null
    done
    pid=()
    rm -rf -- "$dir"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# Seconds since the epoch with microseconds (bash 5), else date(1).
t() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

is_leader() { grep -q "is the leader" "$dir/$1.out" 2>/dev/null; }
leaders() { local n l=(); for n in a b; do is_leader "$n" && l+=("$n"); done; echo "${l[*]-}"; }

echo "leader-test: key $key, ttl $ttl s, etcd at $ETCD_SERVERS, protocol ${ETCDAPI_PROTOCOL:-v3}"
t_start=$(t)
for n in a b; do
    "$leader" -k "$key" -n "$n" -t "$ttl" >"$dir/$n.out" 2>"$dir/$n.err" </dev/null &
    pid[$n]=$!
done

# Within 5 s exactly one is the leader.
first=
for ((i = 0; i < 50; i++)); do
    l=$(leaders)
    [ -n "$l" ] && break
    sleep 0.1
done
l=$(leaders)
check "a leader within 5 s of the start (got: '${l}')" [ -n "$l" ]
if [ -n "$l" ]; then
    echo "  first leader: $l after $(elapsed "$t_start" "$(t)") s"
    # Let both run a few renewal periods: the other must not claim it too.
    sleep 2
    l=$(leaders)
    check "exactly one leader while the first holds it (got: '$l')" [ "$(wc -w <<<"$l")" -eq 1 ]
    first=${l%% *}
fi

if [ -n "$first" ]; then
    if [ "$first" = a ]; then other=b; else other=a; fi
    check "$other is waiting to lead" grep -q "$other is waiting to lead" "$dir/$other.out"
    check "$first is alive before the kill" kill -0 "${pid[$first]}"
    kill -KILL "${pid[$first]}" 2>/dev/null
    t_kill=$(t)
    wait "${pid[$first]}" 2>/dev/null
    unset "pid[$first]"

    took=
    limit=$((ttl + 2))
    for ((i = 0; i < limit * 20; i++)); do
        if is_leader "$other"; then took=$(elapsed "$t_kill" "$(t)"); break; fi
        sleep 0.05
    done
    if [ -n "$took" ]; then
        echo "  hand-over: $other became the leader $took s after $first was killed (ttl $ttl s)"
        check "$other took over within ttl + 2 = $limit s (took $took s)" lt "$took" "$limit"
    else
        fail "$other did not become the leader within $limit s of the kill"
    fi
fi

for n in a b; do
    check "$n never lost leadership" bash -c "! grep -q 'lost leadership' '$dir/$n.out'"
    check "$n printed no errors" bash -c "[ ! -s '$dir/$n.err' ]"
done

if [ "$failed" -gt 0 ]; then
    for n in a b; do
        echo "--- $n stdout:"; cat "$dir/$n.out" 2>/dev/null
        echo "--- $n stderr:"; cat "$dir/$n.err" 2>/dev/null
    done
fi

cleanup
echo "leader: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
