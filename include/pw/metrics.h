/* pw/metrics.h: the worker's counters, gauges and histograms, and their Prometheus text.
 *
 * One process-wide registry.  Every family is a row of the table in metrics.c (name, type,
 * help, label names): the exposition is built from it, so a family is defined once.  A
 * series is a family plus its label values, created on first use; the number of series is
 * bounded (PW_METRICS_SERIES_MAX; past it an update is counted in
 * pw_metrics_dropped_series_total instead).  Updates come from the event loop; the admin
 * server's thread reads (pw_metrics_render): a mutex guards both, held for an update only. */
#ifndef PW_METRICS_H
#define PW_METRICS_H

#include <stddef.h>

typedef enum pw_metric {
    PW_M_REQUESTS,           /* counter {status, code}: requests by terminal status */
    PW_M_OPERATIONS,         /* counter {kind, route, status}: operations by their end */
    PW_M_AZURE_REQUESTS,     /* counter {host, class}: HTTP requests to Azure by status class */
    PW_M_AZURE_RETRIES,      /* counter {host}: attempts after the first */
    PW_M_AZURE_THROTTLED,    /* counter {host}: 429 answers */
    PW_M_AZURE_RETRY_AFTER,  /* counter {host}: seconds waited because Azure said Retry-After */
    PW_M_AZURE_LRO_POLLS,    /* counter {}: long-running operation status polls */
    PW_M_AZURE_CALL_SECONDS, /* histogram {host}: an Azure call, start to result */
    PW_M_REQUEST_SECONDS,    /* histogram {status}: a request, received to terminal reply */
    PW_M_REQUESTS_IN_FLIGHT, /* gauge {} */
    PW_M_OPERATIONS_IN_FLIGHT, /* gauge {} */
    PW_M_PARTITIONS_PAUSED,  /* gauge {}: assigned partitions paused (back-pressure, claims) */
    PW_M_DEAD_LETTERS,       /* counter {code} */
    PW_M_TOKEN_REQUESTS,     /* counter {result}: token endpoint answers: ok, failed */
    PW_M_CONSUMER_LAG,       /* gauge {topic, partition}: librdkafka's consumer_lag */
    PW_M_SKIPPED_DONE,       /* counter {}: redelivered messages skipped as done already */
    PW_M_FAMILIES
} pw_metric;

#define PW_METRICS_SERIES_MAX 4096
#define PW_METRICS_LABELS_MAX 3

/* Adds v to a counter (or histogram observation count, see observe) / sets a gauge.  The
 * label values follow the family's label names, as many as it has (NULL is "").  Values
 * are copied; a value longer than 128 bytes is cut. */
void pw_metrics_add(pw_metric m, double v, const char *l1, const char *l2, const char *l3);
void pw_metrics_set(pw_metric m, double v, const char *l1, const char *l2, const char *l3);
/* One observation of a histogram (seconds). */
void pw_metrics_observe(pw_metric m, double seconds, const char *l1);

/* The text exposition format (version 0.0.4) of everything: malloc'd, NUL-terminated;
 * *len its length.  NULL when out of memory. */
char *pw_metrics_render(size_t *len);

/* Drops every series (tests; and a process that starts over). */
void pw_metrics_reset(void);

/* "aad", "arm" or "kusto" for a host class (pw/azure.h's calls). */
#define PW_METRICS_HOST_AAD "aad"
#define PW_METRICS_HOST_ARM "arm"
#define PW_METRICS_HOST_KUSTO "kusto"

/* An HTTP status class label: "2xx".."5xx", or "transport" for 0 (no answer). */
const char *pw_metrics_status_class(long status);

#endif
