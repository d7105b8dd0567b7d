/* pw/rollout.h: a rollout's waves, and the listing of the targets a selector names.
 *
 * The waves of a rollout over n targets (pw/request.h's pw_request_rollout): wave 0 the
 * first `canary` targets (none when canary is 0), then one wave per step up to that
 * cumulative percentage of all n targets, rounded up, with at least one target a wave; a
 * step that adds no target makes no wave.  The last step is 100%, so the waves cover every
 * target once, in order.
 *
 * Listing (selectors): databasesOf is ARM's Databases_ListByCluster, every page (nextLink
 * followed, at most PW_ROLLOUT_PAGES_MAX); tablesOf is Kusto's `.show tables` in the
 * database.  Both stop reading once more than pw_request_targets_max() names came (the
 * expansion then refuses the list: TooManyTargets), so the bound is decided in one place. */
#ifndef PW_ROLLOUT_H
#define PW_ROLLOUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "pw/azure.h"
#include "pw/request.h"

#define PW_ROLLOUT_WAVES_MAX (PW_REQUEST_WAVE_STEPS_MAX + 1)
#define PW_ROLLOUT_PAGES_MAX 1000

/* Fills ends[w] with the end (exclusive) of wave w over targets; returns the wave count
 * (0 for no targets), at most PW_ROLLOUT_WAVES_MAX.  O(steps). */
size_t pw_rollout_waves(const pw_request_rollout *ro, size_t targets,
                        size_t ends[PW_ROLLOUT_WAVES_MAX]);

/* The listing ended: targets (new reference, the caller owns it) holds the target objects in
 * Azure's order, or is NULL and code/message say why (a pw_azure code, or
 * AzureProtocolError for an answer of another shape). */
typedef void (*pw_rollout_listed_cb)(void *ctx, json_t *targets, const char *code,
                                     const char *message);

typedef struct pw_rollout_lister pw_rollout_lister;

/* Starts listing the targets of req's selector (req borrowed, must outlive the lister).
 * cb is called once, never from inside this call; the lister frees itself after it.  NULL
 * with err filled when the first call cannot start.  deadline_ms bounds each call. */
pw_rollout_lister *pw_rollout_list(pw_azure *az, const pw_request *req, uint64_t deadline_ms,
                                   pw_rollout_listed_cb cb, void *ctx, char *err, size_t errlen);

/* Forgets a listing that has not called back (its owner goes away): no callback comes.
 * The Azure call in flight still points at it: as pw_exec_free, only before pw_azure_free
 * with no loop iteration between. */
void pw_rollout_lister_free(pw_rollout_lister *l);

#endif
