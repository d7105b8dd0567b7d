/* pw/version.h: `--version` for every program: its own version and its libraries'. */
#ifndef PW_VERSION_H
#define PW_VERSION_H

#include <stdio.h>

/* The project version (CMake's PROJECT_VERSION), e.g. "0.1.0". */
const char *pw_version(void);

/* Prints "PROGRAM VERSION" and one line per library this build runs with (the run-time
 * versions, not the headers'): librdkafka, libcurl, Jansson, OpenSSL. */
void pw_version_print(FILE *to, const char *program);

#endif
