/* pw/validate_cli.h: `policy-worker validate` and `policyctl validate`: the worker's own
 * request checks, offline.  One implementation for both programs. */
#ifndef PW_VALIDATE_CLI_H
#define PW_VALIDATE_CLI_H

/* argv[0] is "validate".  Usage: validate [--config FILE] [--schemas DIR] [--json] FILE...|-
 * Options may come anywhere ("--" ends them); "-" reads the request from stdin.
 * Each FILE goes through pw_request_decode exactly as a Kafka message would (size, UTF-8,
 * depth, JSON Schema, names, durations, clusterUri hosts, replyTo allow-list of the
 * configuration); every schema error of a file is printed (up to the decoder's cap), not only
 * the first.  --json prints one JSON line per file: the `rejected` reply event plus "file"
 * and "valid": false, or {"file", "valid": true, "status": "accepted", "requestId"}.
 * prog names the program in messages ("policy-worker validate", "policyctl validate").
 * Exit code: 0 all accepted, 1 some rejected, 2 usage/IO/configuration. */
int pw_validate_cli_run(const char *prog, int argc, char **argv);

/* pw_validate_cli_run("policy-worker validate", argc, argv). */
int pw_validate_cli(int argc, char **argv);

#endif
