#!/bin/sh
# policyctl validate: exit codes and messages against the test schemas (and the real schemas/).
set -u
bin=$1 data=$2 src=$3
fail=0
expect() { # expect CODE PATTERN -- ARGS...
    code=$1 pat=$2
    shift 3
    out=$("$bin" "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$code" ]; then
        echo "FAIL: policyctl $*: exit $rc, expected $code"; echo "$out"; fail=1
    elif ! printf '%s\n' "$out" | grep -qF -- "$pat"; then
        echo "FAIL: policyctl $*: output lacks: $pat"; echo "$out"; fail=1
    else
        echo "ok: policyctl $* -> $rc"
    fi
}
S="--schemas $data/schemas"
expect 0 "good.json: valid" -- validate $S "$data/requests/good.json"
expect 1 '/id: "chg 2" does not match the pattern' -- validate $S "$data/requests/bad.json"
expect 1 '/operations/0/softDeletePeriod: "P10X" is not an ISO-8601 duration' -- \
    validate $S --format-assertion "$data/requests/good.json" "$data/requests/bad.json"
expect 2 "broken.json" -- validate $S "$data/requests/broken.json"
expect 2 "usage" -- validate
expect 2 "usage" -- frobnicate
expect 2 "loading schemas" -- validate --schemas /nonexistent-dir "$data/requests/good.json"
expect 1 '"valid":false' -- validate $S --json "$data/requests/bad.json"
if [ -f "$src/schemas/request.v1.json" ]; then
    expect 0 "request-4ops.json: valid" -- validate "$src/bench/data/request-4ops.json"
fi
exit $fail
