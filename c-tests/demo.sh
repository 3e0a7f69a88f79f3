#!/usr/bin/env bash
# Runs the example CLI through every call against the etcd that
# c-tests/etcd-local started (ETCD_SERVERS is set by it).
set -u
cli=${1:-build/etcd-test}
step() { printf '\n$ etcd-test %s\n' "$*"; "$cli" "$@"; echo "  -> exit $?"; }

echo "etcd at $ETCD_SERVERS"
step set /demo/greeting hello
step get /demo/greeting
step set /demo/colors/red ff0000
step set /demo/colors/green 00ff00
step set /demo/colors/deep/blue 0000ff
step get /demo/colors
step set -p hello /demo/greeting world
step get /demo/greeting
step set -p nope /demo/greeting again
step get /demo/greeting
step set -t 2 /demo/short-lived gone-soon
step get /demo/short-lived
echo "  (sleeping 3 s for the ttl to run out)"; sleep 3
step get /demo/short-lived
step delete /demo/greeting
step get /demo/greeting
step delete /demo/greeting
step leader

if "$cli" lock -t 5 /demo/lock >/tmp/demo-lock.$$ 2>&1; then
    cat /tmp/demo-lock.$$
    idx=$(sed -n 's/^got back index number //p' /tmp/demo-lock.$$)
    step lock -t 5 -i "$idx" /demo/lock
    step unlock -i "$idx" /demo/lock
    step unlock -i "$idx" /demo/lock
    echo
    echo "\$ etcd-test watch /demo/w   (in the background, while two changes are made)"
    "$cli" watch /demo/w & wpid=$!
    sleep 1
    "$cli" set /demo/w/x first
    "$cli" delete /demo/w/x
    sleep 1
    kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
else
    cat /tmp/demo-lock.$$
fi
rm -f /tmp/demo-lock.$$
