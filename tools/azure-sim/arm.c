/* arm.c: azure-sim's ARM (management.azure.com) for Microsoft.Kusto databases and principals. */
#include "sim.h"

#include <jansson.h>

void sim_arm_handle(sim_state *st, const sim_request *req, sim_response *resp)
{
    (void)st;
    (void)req;
    resp->status = 501;
    resp->body = json_pack("{s:{s:s,s:s}}", "error", "code", "NotImplemented", "message",
                           "The ARM simulator does not implement this request yet.");
    sim_response_header(resp, "Content-Type", "application/json; charset=utf-8");
}

void sim_arm_tick(sim_state *st)
{
    (void)st;
}
