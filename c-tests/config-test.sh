#!/usr/bin/env bash
# config-test: the configuration file (ETCDAPI_CONFIG, else
# /etc/etcdapi.conf) as programs whose environment nobody controls see it
# (NSS, PAM, web server modules): every run has a clean environment
# (env -i), with at most ETCDAPI_CONFIG and the variables a case names.
# Outputs are compared exactly.
#
#     c-tests/etcd-local run -- c-tests/config-test.sh build/config-check    (make test-config)
#
# The /etc/etcdapi.conf case runs in a private mount namespace (unshare -m)
# where a copy of /etc holding the file is mounted over /etc: the machine's
# /etc is never written. Skipped when unshare is not permitted.
set -u
prog=${1:-build/config-check}
case $prog in /*) ;; *) prog=$PWD/$prog ;; esac
ep=$ETCDAPI_TEST_ENDPOINT
tmp=$(mktemp -d /tmp/etcdapi-config-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
k=/config-test-$$

# expect WHAT WANT-STATUS WANT-OUTPUT -- CMD...
expect() {
    local what=$1 want_rc=$2 want=$3 out rc
    shift 4
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want" ]; then
        passed=$((passed + 1)); echo "ok: $what"
    else
        failed=$((failed + 1))
        printf 'FAIL: %s\n  want (exit %s): %s\n  got  (exit %s): %s\n' "$what" "$want_rc" "$want" "$rc" "$out"
    fi
}

# The records an NSS module keeps in the v2 store (written with curl, as
# nss-etcd's README does), and one key in the v3 store.
curl -sS -o /dev/null -XPUT "http://$ep/v2/keys$k/host" -d value=10.0.0.1 || { echo "FAIL: curl v2 put"; exit 1; }
etcdctl put "$k/v3only" yes >/dev/null || { echo "FAIL: etcdctl put"; exit 1; }

printf '# libetcdapi settings for the NSS module\n\nETCDAPI_PROTOCOL=v2\n' >"$tmp/v2.conf"
if [ -e /etc/etcdapi.conf ]; then
    skipped=$((skipped + 1)); echo "SKIP: clean environment, no file (this machine has /etc/etcdapi.conf)"
else
    expect "clean environment, no file: v3, the v2 record is not seen" 1 "no value" -- \
        env -i "$prog" "$ep" "$k/host"
fi
expect "ETCDAPI_CONFIG alone: the file selects v2" 0 "value: 10.0.0.1" -- \
    env -i ETCDAPI_CONFIG="$tmp/v2.conf" "$prog" "$ep" "$k/host"
expect "the environment wins over the file (ETCDAPI_PROTOCOL=v3)" 0 "value: yes" -- \
    env -i ETCDAPI_CONFIG="$tmp/v2.conf" ETCDAPI_PROTOCOL=v3 "$prog" "$ep" "$k/v3only"
expect "ETCDAPI_CONFIG empty: no file at all" 1 "no value" -- \
    env -i ETCDAPI_CONFIG= "$prog" "$ep" "$k/host"

# /etc/etcdapi.conf, with nothing at all in the environment.
if unshare -m --propagation private true 2>/dev/null; then
    cp -a /etc "$tmp/etc" 2>/dev/null
    cp "$tmp/v2.conf" "$tmp/etc/etcdapi.conf"
    expect "/etc/etcdapi.conf alone, empty environment: v2" 0 "value: 10.0.0.1" -- \
        unshare -m --propagation private sh -c 'mount --bind "$1" /etc && exec env -i "$2" "$3" "$4"' \
        sh "$tmp/etc" "$prog" "$ep" "$k/host"
    printf 'ETCDAPI_PROTOCOL=v2\nETCDAPI_PROTOCOL v3\n' >"$tmp/etc/etcdapi.conf"
    expect "a malformed /etc/etcdapi.conf: the session does not open" 1 \
        "open failed: configuration file /etc/etcdapi.conf, line 2: not NAME=value" -- \
        unshare -m --propagation private sh -c 'mount --bind "$1" /etc && exec env -i "$2" "$3" "$4"' \
        sh "$tmp/etc" "$prog" "$ep" "$k/host"
else
    skipped=$((skipped + 1)); echo "SKIP: /etc/etcdapi.conf (unshare -m not permitted)"
fi

# The program's options over both: a CA file in the file that does not
# exist fails the open; etcd_open_opts with cacert "" (none) opens.
printf 'ETCDAPI_PROTOCOL=v2\nETCDAPI_CACERT=%s\n' "$tmp/no-such-ca.crt" >"$tmp/ca.conf"
out=$(env -i ETCDAPI_CONFIG="$tmp/ca.conf" "$prog" "$ep" "$k/host")
case $out in
    "open failed: "*"$tmp/no-such-ca.crt (ETCDAPI_CACERT in configuration file $tmp/ca.conf, line 2)"*)
        passed=$((passed + 1)); echo "ok: a CA file from the file is used, and named with file and line" ;;
    *) failed=$((failed + 1)); echo "FAIL: a CA file from the file: $out" ;;
esac
expect "etcd_options (cacert \"\") win over the file" 0 "value: 10.0.0.1" -- \
    env -i ETCDAPI_CONFIG="$tmp/ca.conf" "$prog" -o "$ep" "$k/host"
expect "the environment (ETCDAPI_CACERT=\"\") wins over the file" 0 "value: 10.0.0.1" -- \
    env -i ETCDAPI_CONFIG="$tmp/ca.conf" ETCDAPI_CACERT= "$prog" "$ep" "$k/host"

# Malformed files: the session does not open; the message names the file
# and the line, and never shows a line's text (it may hold a password).
printf '# x\nETCDAPI_PROTOCOL=v2\nETCDAPI_PASSWORD hunter2\n' >"$tmp/bad1.conf"
expect "a line without =" 1 "open failed: configuration file $tmp/bad1.conf, line 3: not NAME=value" -- \
    env -i ETCDAPI_CONFIG="$tmp/bad1.conf" "$prog" "$ep" "$k/host"
printf '\nETCDAPI_PROTOCL=v2\n' >"$tmp/bad2.conf"
expect "an unknown name" 1 "open failed: configuration file $tmp/bad2.conf, line 2: unknown setting \"ETCDAPI_PROTOCL\" (known: ETCDAPI_PROTOCOL, ETCDAPI_CONNECT_TIMEOUT_MS, ETCDAPI_REQUEST_TIMEOUT_MS, ETCDAPI_CACERT, ETCDAPI_CERT, ETCDAPI_KEY, ETCDAPI_USER, ETCDAPI_PASSWORD)" -- \
    env -i ETCDAPI_CONFIG="$tmp/bad2.conf" "$prog" "$ep" "$k/host"
printf 'ETCDAPI_PROTOCOL=v2\nETCDAPI_PROTOCOL=v3\n' >"$tmp/bad3.conf"
expect "a name given twice" 1 "open failed: configuration file $tmp/bad3.conf, line 2: ETCDAPI_PROTOCOL is set again (first on line 1)" -- \
    env -i ETCDAPI_CONFIG="$tmp/bad3.conf" "$prog" "$ep" "$k/host"
printf 'ETCDAPI_PROTOCOL=v4\n' >"$tmp/bad4.conf"
expect "a bad value" 1 "open failed: ETCDAPI_PROTOCOL=\"v4\" (configuration file $tmp/bad4.conf, line 1): expected v2 or v3" -- \
    env -i ETCDAPI_CONFIG="$tmp/bad4.conf" "$prog" "$ep" "$k/host"
expect "ETCDAPI_CONFIG naming a missing file" 1 "open failed: configuration file $tmp/missing.conf (ETCDAPI_CONFIG): cannot read it: No such file or directory (os error 2)" -- \
    env -i ETCDAPI_CONFIG="$tmp/missing.conf" "$prog" "$ep" "$k/host"
expect "a bad value in the environment, a good file: the environment's error" 1 "open failed: ETCDAPI_PROTOCOL=\"v9\": expected v2 or v3" -- \
    env -i ETCDAPI_CONFIG="$tmp/v2.conf" ETCDAPI_PROTOCOL=v9 "$prog" "$ep" "$k/host"

curl -sS -o /dev/null -XDELETE "http://$ep/v2/keys$k/host"
etcdctl del "$k/v3only" >/dev/null
echo "config-test: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
