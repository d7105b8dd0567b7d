/* arm_fake.h: hand-made sim_request / sim_state for calling sim_arm_handle in tests. */
#ifndef ARM_FAKE_H
#define ARM_FAKE_H

#include "sim.h"

#define ARM_SUB "22222222-2222-2222-2222-222222222222"
#define ARM_TENANT "11111111-1111-1111-1111-111111111111"
#define ARM_WRITER "33333333-3333-3333-3333-333333333333"  /* Contributor on the subscription */
#define ARM_READER "44444444-4444-4444-4444-444444444444"  /* Reader on the subscription */
#define ARM_RG_ONLY "55555555-5555-5555-5555-555555555555" /* Owner on resource group otherrg */
#define ARM_C                                                                                      \
    "/subscriptions/" ARM_SUB                                                                      \
    "/resourceGroups/testrg/providers/Microsoft.Kusto/clusters/mykustocluster"
#define ARM_DB ARM_C "/databases/mykustodatabase"

/* A state like azure-sim's default: tenant, sub, rg testrg (+ empty otherrg), cluster
 * mykustocluster (westus), database mykustodatabase (P365D / P31D), apps above. */
sim_state *arm_fake_state(void);
void arm_fake_state_free(sim_state *st);

typedef struct arm_answer {
    sim_response resp;
    char *text; /* body serialized (compact, sorted keys), "" when none */
} arm_answer;

/* Caller identity used by arm_call (defaults to ARM_WRITER / ARM_TENANT). */
void arm_fake_caller(const char *app_id);
/* The next n writes that reach the point of changing the state are lost (the front's
 * faults.ignoreWrites); arm_fake_writes_asked counts how often a handler asked since. */
void arm_fake_lose_writes(int n);
int arm_fake_writes_asked(void);
/* Extra request header for the next arm_call only (e.g. x-ms-correlation-request-id). */
void arm_fake_next_header(const char *name, const char *value);

/* Sends method url (path?query, no percent-decoding) with body (NULL = none) to
 * sim_arm_handle; the answer must be released with arm_answer_clear. */
void arm_call(sim_state *st, const char *method, const char *url, const char *body,
              arm_answer *out);
void arm_answer_clear(arm_answer *a);
const char *arm_header(const arm_answer *a, const char *name);
/* error.code of an ARM error body, or "" */
const char *arm_error_code(const arm_answer *a);

#endif
