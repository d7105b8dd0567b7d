/* kusto_engine.c: azure-sim's Kusto management-command engine (parse + execute). */
#include "kusto.h"

#include <string.h>

static json_t *syntax_error(const char *client_request_id, const char *activity_id)
{
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:b}}", "error", "code",
                     "BadRequest_SyntaxError", "message",
                     "Request is invalid and cannot be executed.", "@type",
                     "Kusto.Data.Exceptions.SyntaxException", "@message",
                     "Syntax error: the command is not supported.", "@context",
                     "clientRequestId", client_request_id ? client_request_id : "",
                     "activityId", activity_id ? activity_id : "", "@permanent", 1);
}

int sim_kusto_execute(json_t *cluster, const char *db, const char *csl,
                      const sim_kusto_caller *caller, const char *client_request_id,
                      const char *activity_id, json_t **body)
{
    (void)cluster;
    (void)db;
    (void)csl;
    (void)caller;
    *body = syntax_error(client_request_id, activity_id);
    return 400;
}
