#!/usr/bin/env bash
# bench/e2e/naive.sh SIM_PORT CA_FILE N DATABASES [WORKLOAD]: the approach policy-worker replaces, as a
# shell script: one change at a time, each one what a per-change SDK script does (a token,
# read the current value, write, wait for the long-running operation), with curl against
# azure-sim through the real Azure host names (--connect-to).  The same N changes as
# bench/e2e/run.sh's gen (WORKLOAD: mix, the default, or issue).  ARM operations are polled every 100 ms (the worker's floor with
# Retry-After: 0), a new token is fetched per change.
# Prints "rate p50 p99 succeeded count" (requests/s, ms to completion from the start, as if
# all N changes had been asked for at once).
set -euo pipefail
port=$1 ca=$2 n=$3 ndb=$4 workload=${5:-mix}
tenant=11111111-1111-1111-1111-111111111111 client=33333333-3333-3333-3333-333333333333
secret=local-demo-secret
sub=22222222-2222-2222-2222-222222222222 rg=testrg cluster=mykustocluster
uri=https://mykustocluster.westus.kusto.windows.net api=2025-02-14
c() { curl -sS --fail-with-body --max-time 30 --connect-to "::127.0.0.1:$port" --cacert "$ca" "$@"; }
token() {
  c "https://login.microsoftonline.com/$tenant/oauth2/v2.0/token" -d grant_type=client_credentials \
    -d "client_id=$client" -d "client_secret=$secret" --data-urlencode "scope=$1/.default" |
    jq -r .access_token
}
now_ms() { local t=${EPOCHREALTIME/,/.}; echo $((${t%.*} * 1000 + 10#${t#*.} / 1000)); }
arm_change() { # DB JSON-PROPERTIES
  local tok path hdr op st
  tok=$(token https://management.azure.com)
  path="https://management.azure.com/subscriptions/$sub/resourceGroups/$rg/providers/Microsoft.Kusto/clusters/$cluster/databases/$1?api-version=$api"
  c -H "Authorization: Bearer $tok" "$path" >/dev/null
  hdr=$(c -D - -o /dev/null -X PATCH -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    --data-binary "{\"kind\":\"ReadWrite\",\"properties\":$2}" "$path")
  op=$(printf '%s' "$hdr" | tr -d '\r' | sed -n 's/^[Aa]zure-[Aa]sync[Oo]peration: //p')
  [ -n "$op" ] || return 0 # finished synchronously
  while :; do
    st=$(c -H "Authorization: Bearer $tok" "$op" | jq -r .status)
    case $st in Succeeded) return 0 ;; Failed | Canceled) return 1 ;; esac
    sleep 0.1
  done
}
kusto_change() { # DB TABLE ALTER-VERB COMMAND-TAIL SHOW-POLICY
  local tok
  tok=$(token "$uri")
  c -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    --data-binary "{\"db\":\"$1\",\"csl\":\".show table ['$2'] policy $5\"}" "$uri/v1/rest/mgmt" >/dev/null
  c -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    --data-binary "{\"db\":\"$1\",\"csl\":\".$3 table ['$2'] policy $4\"}" "$uri/v1/rest/mgmt" >/dev/null
}
start=$(now_ms) ok=0 lat=()
for i in $(seq 1 "$n"); do
  db=benchdb$((i % ndb)) t=T$(((i / ndb) % 4)) d=$((1 + i % 300))
  rc=0
  if [ "$workload" = issue ]; then
    tg=$((i % 200)) d=$((1 + i / 200))
    db=benchdb$((tg / 2))
    case $((tg % 2 * 2)):$(((i / 200) % 2)) in
      0:0) arm_change "$db" "{\"hotCachePeriod\":\"P${d}D\"}" || rc=$? ;;
      0:1) arm_change "$db" "{\"softDeletePeriod\":\"P${d}D\"}" || rc=$? ;;
      2:0) kusto_change "$db" T0 alter "caching hot = ${d}d" caching || rc=$? ;;
      2:1) kusto_change "$db" T0 alter-merge "retention softdelete = ${d}d" retention || rc=$? ;;
    esac
    [ "$rc" = 0 ] && ok=$((ok + 1))
    lat+=($(($(now_ms) - start)))
    continue
  fi
  case $((i % 4)) in
    0) arm_change "$db" "{\"softDeletePeriod\":\"P${d}D\"}" || rc=$? ;;
    1) kusto_change "$db" "$t" alter "caching hot = $((d % 30 + 1))d" caching || rc=$? ;;
    2) arm_change "$db" "{\"hotCachePeriod\":\"P$((d % 30 + 1))D\"}" || rc=$? ;;
    3) kusto_change "$db" "$t" alter-merge "retention softdelete = ${d}d" retention || rc=$? ;;
  esac
  [ "$rc" = 0 ] && ok=$((ok + 1))
  lat+=($(($(now_ms) - start)))
done
total=$(($(now_ms) - start))
printf '%s\n' "${lat[@]}" | sort -n | awk -v n="$n" -v total="$total" -v ok="$ok" '
  { v[NR - 1] = $1 }
  END { printf "%.3f\t%d\t%d\t%d\t%d\n", n * 1000 / (total > 0 ? total : 1), v[int((n - 1) * 0.5)], v[int((n - 1) * 0.99)], ok, n }'
