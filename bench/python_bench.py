"""python_bench: Debian's python3-jsonschema (Draft202012Validator) on the same schema and
instance as schema-bench. Run with /usr/bin/python3. Prints the same line format."""
import argparse
import json
import os
import sys
import time

import jsonschema

REQUEST_SCHEMA = "https://adx-policy-worker.example/schemas/request.v1.json"


def load_store(directory):
    store = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if name.endswith(".json"):
                with open(os.path.join(root, name)) as f:
                    doc = json.load(f)
                store[doc["$id"]] = doc
    return store


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schemas", required=True)
    ap.add_argument("--instance", required=True)
    ap.add_argument("--iterations", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    store = load_store(args.schemas)
    schema = store[REQUEST_SCHEMA]
    resolver = jsonschema.RefResolver(REQUEST_SCHEMA, schema, store=store)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    with open(args.instance) as f:
        instance = json.load(f)
    errors = list(validator.iter_errors(instance))
    if errors:
        print("python_bench: the instance is not valid: %s" % errors[0].message, file=sys.stderr)
        return 2
    n = 0
    t0 = time.perf_counter()
    t1 = t0
    if args.iterations > 0:
        for n in range(1, args.iterations + 1):
            if not validator.is_valid(instance):
                return 3
        t1 = time.perf_counter()
    else:
        while t1 - t0 < args.seconds:
            for _ in range(20):
                if not validator.is_valid(instance):
                    return 3
                n += 1
            t1 = time.perf_counter()
    print("validations %d seconds %.3f per_second %.0f" % (n, t1 - t0, n / (t1 - t0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
