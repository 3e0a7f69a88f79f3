#!/usr/bin/env bash
# Records the seed corpus of the fuzz targets from a real etcd's answers:
#
#   c-tests/etcd-local run -- tests/fuzz/record-corpus.sh [DIR]
#
# (ETCDAPI_TEST_ETCD=3.5 records from etcd 3.5.1.) Writes into DIR
# (default tests/fuzz/corpus), one directory per target, files named
# <etcd version>-<what>: raw HTTP answers as curl receives them
# (`curl -si --raw`: status line, headers, body as sent, chunks and all),
# watch stream bodies, and the server strings, keys, lock indexes and
# leadership tokens taken from the answers.
set -euo pipefail

: "${ETCDAPI_TEST_ENDPOINT:?run under c-tests/etcd-local run --}"
dir=${1:-tests/fuzz/corpus}
ep=http://${ETCDAPI_TEST_ENDPOINT#http://}
ver=$(curl -s "$ep/version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["etcdserver"])')
v=etcd${ver%.*}
for t in server_list keys tokens gateway watch_stream v2_answer client; do mkdir -p "$dir/$t"; done

b64() { printf '%s' "$1" | base64 -w0; }
# raw NAME PATH BODY: a gateway answer, for the gateway and client targets.
raw() {
  local name=$1 path=$2 req=$3; shift 3
  curl -si --raw -X POST "$ep$path" -d "$req" "$@" > "$dir/gateway/$v-$name" || true
  { printf '\0'; cat "$dir/gateway/$v-$name"; } > "$dir/client/$v-$name"
}
# raw2 NAME METHOD PATH [curl args]: a v2 answer.
raw2() {
  local name=$1 method=$2 path=$3; shift 3
  curl -si --raw -m 1 -X "$method" "$ep$path" "$@" > "$dir/v2_answer/$v-$name" || true
  { printf '\1'; cat "$dir/v2_answer/$v-$name"; } > "$dir/client/$v-v2-$name"
}
body() { curl -s -X POST "$ep$1" -d "$2"; }

# ---- v3 gateway ----
body /v3/kv/put "{\"key\":\"$(b64 /fuzz/a)\",\"value\":\"$(b64 one)\"}" >/dev/null
raw put "/v3/kv/put" "{\"key\":\"$(b64 /fuzz/a)\",\"value\":\"$(b64 two)\",\"prev_kv\":true}"
raw put-plain "/v3/kv/put" "{\"key\":\"$(b64 /fuzz/b)\",\"value\":\"$(b64 $'\xff\x00bytes+/=')\"}"
body /v3/kv/put "{\"key\":\"$(b64 /fuzz/d/x)\",\"value\":\"\"}" >/dev/null
body /v3/kv/put "{\"key\":\"$(b64 /fuzz/_hidden)\",\"value\":\"$(b64 h)\"}" >/dev/null
body /v3/kv/put "{\"key\":\"$(b64 /fuzz/jobs%2F42)\",\"value\":\"$(b64 p)\"}" >/dev/null
raw range-hit /v3/kv/range "{\"key\":\"$(b64 /fuzz/a)\"}"
raw range-miss /v3/kv/range "{\"key\":\"$(b64 /nosuch)\"}"
raw range-prefix /v3/kv/range "{\"key\":\"$(b64 /fuzz/)\",\"range_end\":\"$(b64 /fuzz0)\"}"
raw range-keys-only /v3/kv/range "{\"key\":\"$(b64 /fuzz/)\",\"range_end\":\"$(b64 /fuzz0)\",\"keys_only\":true}"
raw range-count-only /v3/kv/range "{\"key\":\"$(b64 /fuzz/)\",\"range_end\":\"$(b64 /fuzz0)\",\"count_only\":true}"
raw range-limit /v3/kv/range "{\"key\":\"$(b64 /fuzz/)\",\"range_end\":\"$(b64 /fuzz0)\",\"limit\":2}"
raw range-future /v3/kv/range "{\"key\":\"$(b64 /fuzz/a)\",\"revision\":100000}"
raw bad-base64 /v3/kv/range '{"key":"Zm8"}'
raw bad-json /v3/kv/range '{"key":'
raw not-found-path /v3/kv/nosuch '{}'
raw deleterange /v3/kv/deleterange "{\"key\":\"$(b64 /fuzz/b)\",\"prev_kv\":true}"
raw deleterange-none /v3/kv/deleterange "{\"key\":\"$(b64 /fuzz/b)\"}"
rev=$(body /v3/kv/range "{\"key\":\"$(b64 /fuzz/a)\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["mod_revision"])')
raw txn-ok /v3/kv/txn "{\"compare\":[{\"key\":\"$(b64 /fuzz/a)\",\"target\":\"MOD\",\"mod_revision\":\"$rev\"}],\"success\":[{\"request_range\":{\"key\":\"$(b64 /fuzz/a)\"}},{\"request_put\":{\"key\":\"$(b64 /fuzz/c)\",\"value\":\"$(b64 c)\"}},{\"request_delete_range\":{\"key\":\"$(b64 /fuzz/c)\"}}]}"
raw txn-failed /v3/kv/txn "{\"compare\":[{\"key\":\"$(b64 /fuzz/a)\",\"target\":\"MOD\",\"mod_revision\":\"1\"}],\"success\":[],\"failure\":[{\"request_range\":{\"key\":\"$(b64 /fuzz/a)\"}}]}"
raw txn-duplicate /v3/kv/txn "{\"success\":[{\"request_put\":{\"key\":\"$(b64 /x)\"}},{\"request_put\":{\"key\":\"$(b64 /x)\"}}]}"
raw lease-grant /v3/lease/grant '{"TTL":30}'
lease=$(body /v3/lease/grant '{"TTL":30}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
raw lease-ttl /v3/lease/timetolive "{\"ID\":\"$lease\",\"keys\":true}"
raw lease-keepalive /v3/lease/keepalive "{\"ID\":\"$lease\"}"
raw lease-leases /v3/lease/leases '{}'
raw lease-revoke-unknown /v3/lease/revoke '{"ID":"12345"}'
raw put-unknown-lease /v3/kv/put "{\"key\":\"$(b64 /l)\",\"lease\":\"12345\"}"
raw lock /v3/lock/lock "{\"name\":\"$(b64 /_locks/fuzz)\",\"lease\":\"$lease\"}"
lockkey=$(body /v3/lock/lock "{\"name\":\"$(b64 /_locks/fuzz)\",\"lease\":\"$lease\"}" | python3 -c 'import json,sys,base64; print(base64.b64decode(json.load(sys.stdin)["key"]).decode())')
raw unlock /v3/lock/unlock "{\"key\":\"$(b64 "$lockkey")\"}"
raw lock-unknown-lease /v3/lock/lock "{\"name\":\"$(b64 /_locks/x)\",\"lease\":\"12345\"}"
raw election-no-leader /v3/election/leader "{\"name\":\"$(b64 /_elections/fuzz)\"}"
raw campaign /v3/election/campaign "{\"name\":\"$(b64 /_elections/fuzz)\",\"lease\":\"$lease\",\"value\":\"$(b64 me)\"}"
campaign=$(body /v3/election/campaign "{\"name\":\"$(b64 /_elections/fuzz)\",\"lease\":\"$lease\",\"value\":\"$(b64 me)\"}")
raw election-leader /v3/election/leader "{\"name\":\"$(b64 /_elections/fuzz)\"}"
raw status /v3/maintenance/status '{}'
raw member-list /v3/cluster/member/list '{}'
raw alarm /v3/maintenance/alarm '{}'
raw auth-not-enabled /v3/auth/authenticate '{"name":"root","password":"x"}'
curl -si --raw -X GET "$ep/v3/kv/range" > "$dir/gateway/$v-method-not-allowed"

# ---- the watch stream (bodies as the reader sees them) ----
watch() { # NAME SECONDS REQUEST [commands while it runs]
  local name=$1 secs=$2 req=$3; shift 3
  curl -sN -m "$secs" -X POST "$ep/v3/watch" -d "$req" > "$dir/watch_stream/$v-$name" &
  local pid=$!
  sleep 0.3
  "$@"
  wait $pid || true
}
changes() {
  body /v3/kv/put "{\"key\":\"$(b64 /w/k1)\",\"value\":\"$(b64 one)\"}" >/dev/null
  body /v3/kv/put "{\"key\":\"$(b64 /w/k1)\",\"value\":\"$(b64 two)\"}" >/dev/null
  body /v3/kv/put "{\"key\":\"$(b64 /w/k2)\",\"value\":\"\"}" >/dev/null
  body /v3/kv/deleterange "{\"key\":\"$(b64 /w/k1)\"}" >/dev/null
}
watch events 1.5 "{\"create_request\":{\"key\":\"$(b64 /w/)\",\"range_end\":\"$(b64 /w0)\",\"prev_kv\":true}}" changes
now=$(body /v3/kv/range "{\"key\":\"$(b64 /w/k2)\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
watch replay 1 "{\"create_request\":{\"key\":\"$(b64 /w/)\",\"range_end\":\"$(b64 /w0)\",\"start_revision\":\"$((now - 3))\"}}" true
watch two-watches 1 "{\"create_request\":{\"key\":\"$(b64 /w/k1)\"}}
{\"create_request\":{\"key\":\"$(b64 /w/k2)\",\"filters\":[\"NOPUT\"]}}
{\"progress_request\":{}}
{\"cancel_request\":{\"watch_id\":0}}" changes
body /v3/kv/compaction "{\"revision\":\"$((now - 1))\"}" >/dev/null
watch compacted 1 "{\"create_request\":{\"key\":\"$(b64 /w/)\",\"range_end\":\"$(b64 /w0)\",\"start_revision\":\"2\"}}" true
watch bad-base64 1 '{"create_request":{"key":"Zm8"}}' true
raw watch-events-chunked /v3/watch "{\"create_request\":{\"key\":\"$(b64 /w/)\",\"range_end\":\"$(b64 /w0)\",\"start_revision\":\"$((now - 1))\"}}" --max-time 1
raw compaction-old /v3/kv/compaction '{"revision":"2"}'

# ---- v2 keys API ----
raw2 set-created PUT /v2/keys/fuzz/message -d value=Hello
raw2 set-again PUT /v2/keys/fuzz/message -d value=World
raw2 get GET /v2/keys/fuzz/message
raw2 get-missing GET /v2/keys/fuzz/nosuch
raw2 ttl PUT /v2/keys/fuzz/ttl -d value=t -d ttl=30
raw2 cas PUT '/v2/keys/fuzz/message?prevValue=World' -d value=W2
raw2 cas-failed PUT '/v2/keys/fuzz/message?prevValue=Nope' -d value=W3
raw2 create-exists PUT '/v2/keys/fuzz/message?prevExist=false' -d value=X
raw2 empty-prev PUT '/v2/keys/fuzz/message?prevValue=' -d value=1
raw2 bad-ttl PUT /v2/keys/fuzz/x -d value=1 -d ttl=abc
raw2 root-read-only PUT /v2/keys/ -d value=1
raw2 dir PUT /v2/keys/fuzz/emptydir -d dir=true
raw2 in-order POST /v2/keys/fuzz/queue -d value=job1
raw2 list GET '/v2/keys/fuzz?recursive=true&sorted=true'
raw2 root GET /v2/keys/
raw2 not-a-file DELETE /v2/keys/fuzz
raw2 delete DELETE /v2/keys/fuzz/ttl
raw2 delete-missing DELETE /v2/keys/fuzz/ttl
raw2 redirect GET /v2/keys/fuzz//message
raw2 stats-self GET /v2/stats/self
raw2 stats-leader GET /v2/stats/leader
raw2 members GET /v2/members
raw2 machines GET /v2/machines
raw2 outdated GET '/v2/keys/?wait=true&waitIndex=1'
raw2 wait GET '/v2/keys/fuzz/message?wait=true&waitIndex=1'

# ---- texts taken from the answers ----
machines=$(curl -s "$ep/v2/machines")
curls=$(body /v3/cluster/member/list '{}' | python3 -c 'import json,sys; print(" ".join(u for m in json.load(sys.stdin)["members"] for u in m["clientURLs"]))')
printf '%s' "$ETCDAPI_TEST_ENDPOINT" > "$dir/server_list/$v-endpoint"
printf '%s' "$machines" > "$dir/server_list/$v-machines"
printf '%s' "$curls" > "$dir/server_list/$v-member-urls"
printf '%s' "${ETCDAPI_TEST_ENDPOINT%:*}" > "$dir/server_list/$v-host"
printf '%s;%s\n%s,\t%s' "$ETCDAPI_TEST_ENDPOINT" "$machines" "$curls" "[::1]:${ETCDAPI_TEST_ENDPOINT##*:}" > "$dir/server_list/$v-mixed"

# Keys from a listing, in pairs (split at NUL by the target).
body /v3/kv/range "{\"key\":\"AA==\",\"range_end\":\"AA==\",\"keys_only\":true}" | python3 -c '
import json, sys, base64
d, v = sys.argv[1], sys.argv[2]
keys = [base64.b64decode(kv["key"]) for kv in json.load(sys.stdin).get("kvs", [])]
keys.append(b"")
for i, k in enumerate(keys):
    open(f"{d}/keys/{v}-key{i:02d}", "wb").write(k + b"\0" + keys[(i + 1) % len(keys)])
' "$dir" "$v"
printf '%s' "$lockkey" > "$dir/keys/$v-lock-key"

# Lock indexes and leadership tokens from the lock and campaign answers.
printf '%s' "${lockkey##*/}" > "$dir/tokens/$v-lock-index"
printf '%x' "$lease" > "$dir/tokens/$v-lease-hex"
curl -s "$ep/v2/keys/fuzz/queue" | python3 -c '
import json, sys
d, v = sys.argv[1], sys.argv[2]
n = json.load(sys.stdin)["node"]["nodes"][0]
open(f"{d}/tokens/{v}-v2-lock-index", "w").write(str(n["createdIndex"]))
' "$dir" "$v"
printf '%s' "$campaign" | python3 -c '
import json, sys, base64, struct
d, v = sys.argv[1], sys.argv[2]
l = json.load(sys.stdin)["leader"]
name, rev, lease = base64.b64decode(l["name"]), int(l["rev"]), int(l["lease"])
tok = "e1.%d.%x.%s" % (rev, lease, base64.urlsafe_b64encode(name).decode().rstrip("="))
open(f"{d}/tokens/{v}-leadership", "w").write(tok)
open(f"{d}/tokens/{v}-leadership-parts", "wb").write(struct.pack("<qq", rev, lease) + name)
' "$dir" "$v"
echo "recorded from etcd $ver into $dir: $(find "$dir" -name "$v-*" | wc -l) files"
