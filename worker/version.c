/* version.c: `--version` for every program: the project's version and its libraries'. */
#include "pw/version.h"

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>

#ifndef PW_VERSION
#define PW_VERSION "0.0.0"
#endif

const char *pw_version(void)
{
    return PW_VERSION;
}

void pw_version_print(FILE *to, const char *program)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    fprintf(to, "%s %s\n", program, PW_VERSION);
    fprintf(to, "librdkafka %s\n", rd_kafka_version_str());
    fprintf(to, "libcurl %s (%s)\n", curl->version, curl->ssl_version ? curl->ssl_version : "no TLS");
    fprintf(to, "Jansson %s\n", jansson_version_str());
    fprintf(to, "OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
}
