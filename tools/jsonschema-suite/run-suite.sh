#!/bin/sh
# Runs jsonschema-suite over the reference suite; exit 77 (skipped) when it is absent.
bin=$1 suite=$2
shift 2
if [ ! -d "$suite/tests/draft2020-12" ]; then
    echo "SKIP: JSON Schema Test Suite not found at $suite (set PW_REFERENCE_DIR)"
    exit 77
fi
exec "$bin" "$@" "$suite"
