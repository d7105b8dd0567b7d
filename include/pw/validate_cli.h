/* pw/validate_cli.h: `policy-worker validate`: the worker's own request checks, offline. */
#ifndef PW_VALIDATE_CLI_H
#define PW_VALIDATE_CLI_H

/* argv[0] is "validate".  Usage: validate [--config FILE] [--json] FILE...
 * Each FILE goes through pw_request_decode exactly as a Kafka message would (size, UTF-8,
 * depth, JSON Schema, names, durations, clusterUri hosts, replyTo allow-list of the
 * configuration).  Exit code: 0 all accepted, 1 some rejected, 2 usage/IO/configuration. */
int pw_validate_cli(int argc, char **argv);

#endif
