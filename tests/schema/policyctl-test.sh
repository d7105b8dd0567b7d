#!/bin/sh
# policyctl validate: exit codes and messages (the worker's decoder on the real schemas/).
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
# policyctl validate is the worker's decoder (worker/validate_cli.c) on the real schemas/;
# tests/e2e/test_policyctl_validate.sh checks it in depth.  The schema-only checks of the
# test schemas (format assertion) are jsonschema-suite's and test_schema's.
R="$src/bench/data/request-4ops.json"
expect 0 "request-4ops.json: accepted: chg-2026-000123" -- validate "$R"
expect 1 'bad.json: rejected: InvalidId' -- validate "$R" "$data/requests/bad.json"
expect 1 'broken.json: rejected: InvalidJson' -- validate "$data/requests/broken.json"
expect 2 "usage" -- validate
expect 2 "usage" -- frobnicate
expect 2 "cannot open /nonexistent-dir" -- validate --schemas /nonexistent-dir "$R"
expect 1 '"valid":false' -- validate --json "$data/requests/bad.json"
exit $fail
