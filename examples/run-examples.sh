#!/usr/bin/env bash
# run-examples.sh BINDIR: runs the programs of examples/ against the etcd
# that c-tests/etcd-local started (ETCD_SERVERS, ETCDCTL_ENDPOINTS) and
# checks what they print.  `make check` runs it as
#     c-tests/etcd-local run -- examples/run-examples.sh build/examples
set -u
bin=${1:?usage: run-examples.sh BINDIR}
: "${ETCD_SERVERS:?run under c-tests/etcd-local}"
export ETCDCTL_API=3
tmp=$(mktemp -d)
pids=()
failed=0
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }
ms()   { echo $(( $(date +%s%N) / 1000000 )); }
# wait_for FILE TEXT MS: 0 once TEXT is in FILE, 1 after MS milliseconds.
wait_for() {
    local end=$(( $(ms) + $3 ))
    while [ "$(ms)" -lt "$end" ]; do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    return 1
}
run="ex-$$-$(date +%s)"

# ---- leader: hand-over on SIGTERM (resign) and on SIGKILL (lease TTL) ----
ttl=3
election="$run/leader"
"$bin/leader" "$election" A "$ttl" >"$tmp/A" 2>&1 & pa=$!; pids+=($pa)
wait_for "$tmp/A" "LEADER A" 10000 && ok "leader: A leads" || fail "leader: A leads ($(cat "$tmp/A"))"
wait_for "$tmp/A" "WORK A 1" 5000 && ok "leader: A works" || fail "leader: A works"
"$bin/leader" "$election" B "$ttl" >"$tmp/B" 2>&1 & pb=$!; pids+=($pb)
sleep 1.5
grep -q "LEADER B" "$tmp/B" && fail "leader: B must wait while A leads" || ok "leader: B waits while A leads"
t0=$(ms); kill -TERM "$pa"
if wait_for "$tmp/B" "LEADER B" 10000; then
    took=$(( $(ms) - t0 ))
    echo "     (hand-over after SIGTERM, A resigning: ${took} ms)"
    [ "$took" -lt 2000 ] && ok "leader: B takes over at once when A resigns" \
        || fail "leader: B took ${took} ms after A's SIGTERM, want < 2000"
else
    fail "leader: B never took over ($(cat "$tmp/B"))"
fi
wait "$pa"; rc=$?
[ "$rc" = 0 ] && grep -q "RESIGNED A" "$tmp/A" && ok "leader: A resigned and exited 0" \
    || fail "leader: A exit $rc ($(tail -3 "$tmp/A"))"
grep -c "LEADER" "$tmp/A" | grep -qx 1 && ok "leader: A led once" || fail "leader: A led more than once"
"$bin/leader" "$election" C "$ttl" >"$tmp/C" 2>&1 & pc=$!; pids+=($pc)
sleep 1
t0=$(ms); kill -KILL "$pb"; wait "$pb" 2>/dev/null
if wait_for "$tmp/C" "LEADER C" $(( (ttl + 10) * 1000 )); then
    took=$(( $(ms) - t0 ))
    echo "     (hand-over after SIGKILL of the leader, lease TTL ${ttl} s: ${took} ms)"
    [ "$took" -le $(( (ttl + 2) * 1000 )) ] && ok "leader: C takes over within the lease TTL after B is killed" \
        || fail "leader: C took ${took} ms after B's SIGKILL, want <= $(( ttl + 2 )) s"
else
    fail "leader: C never took over ($(cat "$tmp/C"))"
fi
kill -TERM "$pc"; wait "$pc"
grep -q "RESIGNED C" "$tmp/C" && ok "leader: C resigned on SIGTERM" || fail "leader: C did not resign"
# The fenced output is the last unit C reported.
last=$(grep "^WORK C " "$tmp/C" | tail -1 | awk '{print $3}')
out=$(etcdctl get --print-value-only "/$election/output")
[ -n "$last" ] && [ "$out" = "C: unit $last" ] && ok "leader: the fenced output is C's last unit ($out)" \
    || fail "leader: fenced output '$out', want 'C: unit $last'"

# ---- config-watch: load, then follow without a gap or a repeat ----
p="/$run/config"
for i in 1 2 3; do etcdctl put "$p/k$i" "v$i" >/dev/null; done
etcdctl put "$p/deep/x" "d" >/dev/null
# Writes race with the load: each lands either in the list or in the watch.
"$bin/config-watch" "$p" 7 >"$tmp/cw" 2>&1 & pw=$!; pids+=($pw)
wait_for "$tmp/cw" "LOADED" 10000 || fail "config-watch: loaded ($(cat "$tmp/cw"))"
etcdctl put "$p/k1" "v1b" >/dev/null
etcdctl del "$p/k2" >/dev/null
etcdctl put "$p/k4" "v4" >/dev/null
etcdctl txn >/dev/null <<TXN

put $p/k5 v5
put $p/deep/x d2


TXN
etcdctl put "$p/k1" "v1c" >/dev/null
etcdctl put "/$run/config-sibling" "not ours" >/dev/null
etcdctl del "$p/k3" >/dev/null
if wait_for "$tmp/cw" "CONFIG" 15000; then
    ok "config-watch: followed 7 changes"
    events=$(sed -n '/^LOADED/,/^CONFIG/p' "$tmp/cw" | grep -cE '^(PUT|DEL)')
    [ "$events" = 7 ] && ok "config-watch: each change once" || fail "config-watch: $events changes printed, want 7"
    got=$(sed -n '/^CONFIG/,$p' "$tmp/cw" | tail -n +2)
    want=$(etcdctl get --prefix "$p/" | paste -d= - -)
    [ "$got" = "$want" ] && ok "config-watch: its configuration is etcd's" \
        || { fail "config-watch: configuration differs"; echo "got:"; echo "$got"; echo "want:"; echo "$want"; }
else
    fail "config-watch: did not finish ($(cat "$tmp/cw"))"
fi
wait "$pw" 2>/dev/null

# ---- counter: several processes at once, the exact total ----
key="/$run/counter"
procs=4 times=50
cpids=()
for i in $(seq $procs); do
    "$bin/counter" "$key" "$times" >"$tmp/counter$i" 2>&1 & cpids+=($!); pids+=($!)
done
all=0
for p in "${cpids[@]}"; do wait "$p" || all=1; done
[ "$all" = 0 ] && ok "counter: $procs processes finished" || fail "counter: a process failed ($(cat "$tmp"/counter*))"
total=$(etcdctl get --print-value-only "$key")
retries=$(cat "$tmp"/counter* | awk '/DONE/ {r += $4} END {print r + 0}')
echo "     ($procs processes x $times increments: total $total, $retries retries after a conflict)"
[ "$total" = $(( procs * times )) ] && ok "counter: exact total $total" || fail "counter: total $total, want $(( procs * times ))"

etcdctl del --prefix "/$run" >/dev/null
[ "$failed" = 0 ] && echo "examples: all passed" || echo "examples: FAILED"
exit "$failed"
