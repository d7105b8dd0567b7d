/* kusto_policy.c: azure-sim's Kusto policy values: the JSON each .alter/.alter-merge stores
 * and each .show prints, per policy keyword (checks, Kusto's defaults, merge rules), and
 * the workload group definitions.  Pure JSON work: no command text, no state lookups
 * beyond what a caller passes in. */
#include "kusto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_USAGES 16 /* distinct managed identity usages; the documented list has 8 */

static json_t *ts_json(int64_t ticks)
{
    char buf[48];
    sim_kusto_timespan_format_net(ticks, buf, sizeof buf);
    return json_string(buf);
}

/* A .NET timespan string at key of v, in ticks; -1 when absent or not a timespan. */
static int64_t span_at(json_t *v, const char *key)
{
    json_t *s = json_object_get(v, key);
    int64_t t;
    if (json_is_object(s)) s = json_object_get(s, "Value");
    if (!json_is_string(s) || sim_kusto_timespan_parse_net(json_string_value(s), &t)) return -1;
    return t;
}

/* Case-insensitive match of s against vals (NULL-terminated); the canonical spelling or NULL. */
static const char *canon(const char *s, const char *const *vals)
{
    for (size_t i = 0; s && vals[i]; i++)
        if (!strcasecmp(s, vals[i])) return vals[i];
    return NULL;
}

void sim_kusto_datetime_short(const char *canonical, char *out, size_t outlen)
{
    /* "2021-01-01T00:00:00.5000000Z" -> "2021-01-01T00:00:00.5Z"; all-zero fraction dropped */
    snprintf(out, outlen, "%s", canonical);
    char *dot = strchr(out, '.'), *z = strrchr(out, 'Z');
    if (!dot || !z || z < dot) return;
    char *e = z;
    while (e > dot + 1 && e[-1] == '0')
        e--;
    if (e == dot + 1) e = dot;
    memmove(e, z, strlen(z) + 1);
}

/* ------------------------------------------------------------------ normalizing */

typedef enum {
    FT_TIMESPAN,
    FT_UINT,
    FT_BOOL,
    FT_STRING,
    FT_NUMBER,
    FT_DATETIME,
    FT_DTSHORT,
    FT_RECOVER
} ftype;

/* Properties whose type the simulator checks wherever they appear; others pass as-is.
 * Keys match case-insensitively (Kusto reads policy JSON so) and are stored as spelled here. */
static const struct {
    const char *key;
    ftype type;
    int nullable;
} FIELDS[] = {
    {"SoftDeletePeriod", FT_TIMESPAN, 0},
    {"Recoverability", FT_RECOVER, 0},
    {"DataHotSpan", FT_TIMESPAN, 0},
    {"IndexHotSpan", FT_TIMESPAN, 0},
    {"MaximumBatchingTimeSpan", FT_TIMESPAN, 0},
    {"CustomPeriod", FT_TIMESPAN, 1},
    {"RetentionPeriod", FT_TIMESPAN, 0},
    {"LoopPeriod", FT_TIMESPAN, 1},
    {"Hot", FT_TIMESPAN, 0},
    {"MaxAge", FT_TIMESPAN, 0},
    {"MaximumNumberOfItems", FT_UINT, 0},
    {"MaximumRawDataSizeMB", FT_UINT, 0},
    {"RowCountUpperBoundForMerge", FT_UINT, 0},
    {"OriginalSizeMBUpperBoundForMerge", FT_UINT, 0},
    {"MaxExtentsToMerge", FT_UINT, 0},
    {"MaxRangeInHours", FT_UINT, 0},
    {"ShardEngineMaxRowCount", FT_UINT, 0},
    {"ShardEngineMaxExtentSizeInMb", FT_UINT, 0},
    {"ShardEngineMaxOriginalSizeInMb", FT_UINT, 0},
    {"MaxRowCount", FT_UINT, 0},
    {"MaxExtentSizeInMb", FT_UINT, 0},
    {"MaxOriginalSizeInMb", FT_UINT, 0},
    {"TargetCountPerNode", FT_UINT, 0},
    {"MaxCpuRatePerSandbox", FT_UINT, 0},
    {"MaxMemoryMbPerSandbox", FT_UINT, 0},
    {"ClusterMaximumConcurrentOperations", FT_UINT, 0},
    {"ClusterMinimumConcurrentOperations", FT_UINT, 0},
    {"MinimumConcurrentOperationsPerNode", FT_UINT, 0},
    {"MaximumConcurrentOperationsPerNode", FT_UINT, 0},
    {"MaximumConcurrentOperationsPerDbAdmin", FT_UINT, 0},
    {"MaximumConcurrentOperationsPerCluster", FT_UINT, 0},
    {"CoreUtilizationCoefficient", FT_NUMBER, 0},
    {"IsEnabled", FT_BOOL, 0},
    {"AllowRebuild", FT_BOOL, 0},
    {"AllowMerge", FT_BOOL, 0},
    {"IsTransactional", FT_BOOL, 0},
    {"PropagateIngestionProperties", FT_BOOL, 0},
    {"DeleteIfNotEmpty", FT_BOOL, 0},
    {"UseShardEngine", FT_BOOL, 0},
    {"CanCall", FT_BOOL, 0},
    {"EnableMetadataPrefetch", FT_BOOL, 0},
    {"HintAllocatedRate", FT_NUMBER, 1},
    {"Source", FT_STRING, 0},
    {"Query", FT_STRING, 0},
    {"TagPrefix", FT_STRING, 0},
    {"ManagedIdentity", FT_STRING, 1},
    {"ColumnName", FT_STRING, 0},
    {"CalloutType", FT_STRING, 0},
    {"CalloutUriRegex", FT_STRING, 0},
    {"ObjectId", FT_STRING, 0},
    {"AllowedUsages", FT_STRING, 0},
    {"SandboxKind", FT_STRING, 0},
    {"EncodingType", FT_STRING, 0},
    {"Format", FT_STRING, 0},
    {"HotDateTimeColumn", FT_STRING, 1},
    {"ClassificationFunction", FT_STRING, 0},
    {"ExpiryDate", FT_DATETIME, 0},
    {"EffectiveDateTime", FT_DATETIME, 1},
    {"MinDate", FT_DATETIME, 0},
    {"MaxDate", FT_DATETIME, 0},
    {"MinValue", FT_DTSHORT, 0},
    {"MaxValue", FT_DTSHORT, 0},
};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

/* Nesting depth of JSON text, measured before parsing so no parser recursion is
 * spent on hostile input. */
static size_t json_text_depth(const char *s, size_t len)
{
    size_t depth = 0, max = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            if (++depth > max) max = depth;
        } else if ((ch == '}' || ch == ']') && depth) {
            depth--;
        }
    }
    return max;
}

/* Validates v and returns a normalized copy (timespans as .NET text, datetimes canonical,
 * known keys spelled canonically), or NULL with err set.  null_enabled: "IsEnabled" may
 * be null (the mirroring policy's tri-state). */
static json_t *normalize(json_t *v, int depth, int null_enabled, char *err, size_t errlen)
{
    if (depth > SIM_KUSTO_MAX_JSON_DEPTH) {
        snprintf(err, errlen, "policy JSON nested too deeply (limit %d)", SIM_KUSTO_MAX_JSON_DEPTH);
        return NULL;
    }
    if (json_is_array(v)) {
        json_t *out = json_array(), *e;
        size_t i;
        json_array_foreach(v, i, e)
        {
            json_t *n = normalize(e, depth + 1, null_enabled, err, errlen);
            if (!n) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, n);
        }
        return out;
    }
    if (!json_is_object(v)) return json_incref(v);
    json_t *out = json_object(), *e;
    const char *key;
    json_object_foreach(v, key, e)
    {
        size_t f;
        for (f = 0; f < NFIELDS; f++)
            if (strcasecmp(key, FIELDS[f].key) == 0) break;
        if (f == NFIELDS) {
            json_t *n = normalize(e, depth + 1, null_enabled, err, errlen);
            if (!n) goto bad;
            json_object_set_new(out, key, n);
            continue;
        }
        const char *k = FIELDS[f].key;
        if (json_object_get(out, k)) {
            snprintf(err, errlen, "property '%s' appears twice", k);
            goto bad;
        }
        if (json_is_null(e)) {
            if (!FIELDS[f].nullable && !(null_enabled && !strcmp(k, "IsEnabled"))) {
                snprintf(err, errlen, "property '%s' must not be null", k);
                goto bad;
            }
            json_object_set_new(out, k, json_null());
            continue;
        }
        json_t *nv = NULL; /* the normalized value; NULL when e does not fit the type */
        const char *why = "";
        switch (FIELDS[f].type) {
        case FT_TIMESPAN: {
            int64_t t;
            json_t *s = e;
            if (json_is_object(e) && json_object_size(e) == 1) s = json_object_get(e, "Value");
            if (json_is_string(s) && !sim_kusto_timespan_parse_net(json_string_value(s), &t) &&
                t >= 0)
                nv = ts_json(t);
            why = "is not a valid timespan ('d.hh:mm:ss')";
            break;
        }
        case FT_UINT:
            if (json_is_integer(e) && json_integer_value(e) >= 0) nv = json_incref(e);
            why = "must be a non-negative integer";
            break;
        case FT_BOOL:
            if (json_is_boolean(e)) nv = json_incref(e);
            why = "must be true or false";
            break;
        case FT_NUMBER:
            if (json_is_number(e) && json_number_value(e) >= 0) nv = json_incref(e);
            why = "must be a non-negative number";
            break;
        case FT_STRING:
            if (json_is_string(e)) nv = json_incref(e);
            why = "must be a string";
            break;
        case FT_DATETIME:
        case FT_DTSHORT: {
            char dt[40], sh[40];
            if (json_is_string(e) &&
                !sim_kusto_datetime_parse(json_string_value(e), dt, sizeof dt)) {
                if (FIELDS[f].type == FT_DTSHORT) {
                    sim_kusto_datetime_short(dt, sh, sizeof sh);
                    nv = json_string(sh);
                } else {
                    nv = json_string(dt);
                }
            }
            why = "is not a valid datetime";
            break;
        }
        case FT_RECOVER: {
            const char *s = json_string_value(e);
            if (s && !strcasecmp(s, "Enabled"))
                nv = json_string("Enabled");
            else if (s && !strcasecmp(s, "Disabled"))
                nv = json_string("Disabled");
            why = "must be 'Enabled' or 'Disabled'";
            break;
        }
        }
        if (!nv) {
            snprintf(err, errlen, "property '%s' %s", k, why);
            goto bad;
        }
        json_object_set_new(out, k, nv);
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

json_t *sim_kusto_policy_parse_json(const char *kw, const char *text, size_t len, char *err,
                                    size_t errlen)
{
    json_error_t je;
    if (json_text_depth(text, len) > SIM_KUSTO_MAX_JSON_DEPTH) {
        snprintf(err, errlen, "policy JSON nested too deeply (limit %d)", SIM_KUSTO_MAX_JSON_DEPTH);
        return NULL;
    }
    json_t *raw = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!raw) {
        snprintf(err, errlen, "policy is not valid JSON: %s (position %d)", je.text, je.position);
        return NULL;
    }
    json_t *n = normalize(raw, 0, kw && !strcmp(kw, "mirroring"), err, errlen);
    json_decref(raw);
    return n;
}

/* ------------------------------------------------------------------ helpers */

/* Puts the listed keys first, filling defaults for absent ones; returns a new object.
 * Takes the references in defs. */
static json_t *with_defaults(json_t *v, const char *const *keys, json_t *const *defs, size_t n)
{
    json_t *out = json_object(), *e;
    const char *k;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_object_get(v, keys[i]);
        json_object_set(out, keys[i], x ? x : defs[i]);
    }
    json_object_foreach(v, k, e) if (!json_object_get(out, k)) json_object_set(out, k, e);
    for (size_t i = 0; i < n; i++)
        json_decref(defs[i]);
    return out;
}

static int require_keys(json_t *obj, const char *const *keys, size_t n, const char *what, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!json_object_get(obj, keys[i])) {
            snprintf(err, errlen, "%s: property '%s' is required", what, keys[i]);
            return -1;
        }
    }
    return 0;
}

json_t *sim_kusto_deep_merge(json_t *base, json_t *over)
{
    if (!json_is_object(base) || !json_is_object(over)) return json_deep_copy(over);
    json_t *out = json_deep_copy(base), *v;
    const char *k;
    json_object_foreach(over, k, v)
    {
        json_t *cur = json_object_get(out, k);
        if (json_is_object(cur) && json_is_object(v))
            json_object_set_new(out, k, sim_kusto_deep_merge(cur, v));
        else
            json_object_set_new(out, k, json_deep_copy(v));
    }
    return out;
}

/* ------------------------------------------------------------------ caching */

json_t *sim_kusto_caching_display(json_t *v)
{
    int64_t data = span_at(v, "DataHotSpan"), index = span_at(v, "IndexHotSpan");
    if (data < 0) return NULL;
    if (index < 0) index = data;
    json_t *out = json_pack("{s:{s:o}, s:{s:o}}", "DataHotSpan", "Value", ts_json(data),
                            "IndexHotSpan", "Value", ts_json(index));
    json_t *w = json_object_get(v, "HotWindows"), *e;
    size_t i;
    if (json_is_array(w) && json_array_size(w)) {
        json_t *arr = json_array();
        json_array_foreach(w, i, e)
        {
            /* MinValue/MaxValue as Kusto shows them; MinDate/MaxDate read too */
            const char *a = json_string_value(json_object_get(e, "MinValue"));
            const char *b = json_string_value(json_object_get(e, "MaxValue"));
            if (!a) a = json_string_value(json_object_get(e, "MinDate"));
            if (!b) b = json_string_value(json_object_get(e, "MaxDate"));
            char ca[40], cb[40], sa[40], sb[40];
            if (!a || !b || sim_kusto_datetime_parse(a, ca, sizeof ca) ||
                sim_kusto_datetime_parse(b, cb, sizeof cb))
                continue;
            sim_kusto_datetime_short(ca, sa, sizeof sa);
            sim_kusto_datetime_short(cb, sb, sizeof sb);
            json_array_append_new(arr, json_pack("{s:s, s:s}", "MinValue", sa, "MaxValue", sb));
        }
        json_object_set_new(out, "HotWindows", arr);
    }
    return out;
}

/* ------------------------------------------------------------------ defaults */

static const char CAPACITY_DEFAULT[] =
    "{\"IngestionCapacity\":{\"ClusterMaximumConcurrentOperations\":512,"
    "\"CoreUtilizationCoefficient\":0.75},"
    "\"ExtentsMergeCapacity\":{\"MinimumConcurrentOperationsPerNode\":1,"
    "\"MaximumConcurrentOperationsPerNode\":3},"
    "\"ExtentsPurgeRebuildCapacity\":{\"MaximumConcurrentOperationsPerNode\":1},"
    "\"ExportCapacity\":{\"ClusterMaximumConcurrentOperations\":100,"
    "\"CoreUtilizationCoefficient\":0.25},"
    "\"ExtentsPartitionCapacity\":{\"ClusterMinimumConcurrentOperations\":1,"
    "\"ClusterMaximumConcurrentOperations\":32},"
    "\"MaterializedViewsCapacity\":{\"ClusterMaximumConcurrentOperations\":1,"
    "\"ExtentsRebuildCapacity\":{\"ClusterMaximumConcurrentOperations\":50,"
    "\"MaximumConcurrentOperationsPerNode\":5}},"
    "\"StoredQueryResultsCapacity\":{\"MaximumConcurrentOperationsPerDbAdmin\":250,"
    "\"CoreUtilizationCoefficient\":0.75},"
    "\"StreamingIngestionPostProcessingCapacity\":{\"MaximumConcurrentOperationsPerNode\":4},"
    "\"PurgeStorageArtifactsCleanupCapacity\":{\"MaximumConcurrentOperationsPerCluster\":2},"
    "\"PeriodicStorageArtifactsCleanupCapacity\":{\"MaximumConcurrentOperationsPerCluster\":2},"
    "\"QueryAccelerationCapacity\":{\"ClusterMaximumConcurrentOperations\":100,"
    "\"CoreUtilizationCoefficient\":1.0}}";

static const char *const QWC_KEYS[] = {
    "PercentageOfNodes",      "MinimumNumberOfNodes",
    "MaximumNumberOfNodes",   "SuperSlackerNumberOfNodesThreshold",
    "EnableMetadataPrefetch", "MaximumLagAllowedInMinutes",
    "RefreshPeriodInSeconds"};

json_t *sim_kusto_policy_default(const char *kw)
{
    if (!strcmp(kw, "capacity")) return json_loads(CAPACITY_DEFAULT, 0, NULL);
    if (!strcmp(kw, "query_weak_consistency"))
        return json_pack("{s:i, s:i, s:i, s:i, s:b, s:i, s:i}", QWC_KEYS[0], -1, QWC_KEYS[1], -1,
                         QWC_KEYS[2], -1, QWC_KEYS[3], -1, QWC_KEYS[4], 0, QWC_KEYS[5], -1,
                         QWC_KEYS[6], -1);
    return NULL;
}

/* The documented immutable callout entries every cluster has (.show lists them in a row of
 * EntityType "Cluster immutable policy"). */
json_t *sim_kusto_callout_immutable(void)
{
    return json_pack("[{s:s, s:s, s:b}, {s:s, s:s, s:b}, {s:s, s:s, s:b}]", "CalloutType", "kusto",
                     "CalloutUriRegex", "[a-z0-9]{3,22}\\.(\\w+\\.)?kusto\\.windows\\.net/?$",
                     "CanCall", 1, "CalloutType", "kusto", "CalloutUriRegex",
                     "[a-z0-9]{3,22}\\.(\\w+\\.)?kustomfa\\.windows\\.net/?$", "CanCall", 1,
                     "CalloutType", "sql", "CalloutUriRegex",
                     "[a-z0-9][a-z0-9\\-]{0,61}[a-z0-9]?\\.database\\.windows\\.net/?$", "CanCall",
                     1);
}

/* ------------------------------------------------------------------ per-policy rules */

static const char *const MI_USAGES[] = {"All",
                                        "AutomatedFlows",
                                        "AzureAI",
                                        "DataConnection",
                                        "ExternalTable",
                                        "NativeIngestion",
                                        "SandboxArtifacts",
                                        "SqlRequest",
                                        NULL};

/* Appends the usages of list (comma-separated) to names[] (canonical, de-duplicated). */
static int usages_add(const char *list, const char **names, size_t *n, char *err, size_t errlen)
{
    const char *p = list;
    size_t added = 0;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p) break;
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == ' ')
            len--;
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), p);
        const char *c = len < 63 ? canon(word, MI_USAGES) : NULL;
        if (!c) {
            snprintf(err, errlen,
                     "managed_identity policy: usage '%.60s' is unknown (All, AutomatedFlows, "
                     "AzureAI, DataConnection, ExternalTable, NativeIngestion, SandboxArtifacts, "
                     "SqlRequest)",
                     word);
            return -1;
        }
        size_t j;
        for (j = 0; j < *n; j++)
            if (names[j] == c) break;
        if (j == *n && *n < MAX_USAGES) names[(*n)++] = c;
        added++;
        p += strcspn(p, ",");
    }
    if (!added) {
        snprintf(err, errlen, "managed_identity policy: 'AllowedUsages' names no usage");
        return -1;
    }
    return 0;
}

static json_t *usages_text(const char **names, size_t n)
{
    char buf[512] = "";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, "%s%s", i ? ", " : "", names[i]);
    }
    return json_string(buf);
}

/* The cluster's managed identity with this object id ("system": the system identity). */
static json_t *mi_lookup(json_t *cluster, const char *oid)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cluster, "managedIdentities"), i, m)
    {
        const char *id = json_string_value(json_object_get(m, "objectId"));
        if (!strcasecmp(oid, "system") ? json_is_true(json_object_get(m, "isSystem"))
                                       : (id && !strcasecmp(id, oid)))
            return m;
    }
    return NULL;
}

static json_t *finalize_managed_identity(json_t *v, json_t *cluster, char *err, size_t errlen)
{
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(v, i, e)
    {
        static const char *const req[] = {"ObjectId", "AllowedUsages"};
        if (require_keys(e, req, 2, "managed_identity policy", err, errlen)) goto bad;
        const char *oid = json_string_value(json_object_get(e, "ObjectId"));
        json_t *m = mi_lookup(cluster, oid);
        if (!m) {
            snprintf(err, errlen,
                     "managed_identity policy: the managed identity '%.100s' is not assigned to "
                     "the cluster",
                     oid);
            goto bad;
        }
        const char *id = json_string_value(json_object_get(m, "objectId"));
        const char *names[MAX_USAGES];
        size_t n = 0;
        /* an identity named twice: one entry, usages joined */
        size_t j;
        json_t *prev = NULL, *p;
        json_array_foreach(out, j, p)
        {
            if (!strcasecmp(json_string_value(json_object_get(p, "ObjectId")), id)) prev = p;
        }
        if (prev && usages_add(json_string_value(json_object_get(prev, "AllowedUsages")), names, &n,
                               err, errlen))
            goto bad;
        if (usages_add(json_string_value(json_object_get(e, "AllowedUsages")), names, &n, err,
                       errlen))
            goto bad;
        if (prev) {
            json_object_set_new(prev, "AllowedUsages", usages_text(names, n));
            continue;
        }
        const char *cid = json_string_value(json_object_get(m, "clientId"));
        const char *tid = json_string_value(json_object_get(m, "tenantId"));
        const char *dn = json_string_value(json_object_get(m, "displayName"));
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "ObjectId", id ? id : "", "ClientId",
                           cid ? cid : "", "TenantId", tid ? tid : "", "DisplayName", dn ? dn : "",
                           "IsSystem", json_is_true(json_object_get(m, "isSystem")),
                           "AllowedUsages", usages_text(names, n)));
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

static const char *const CALLOUT_TYPES[] = {"kusto",
                                            "sql",
                                            "mysql",
                                            "postgresql",
                                            "azure_digital_twins",
                                            "cosmosdb",
                                            "sandbox_artifacts",
                                            "external_data",
                                            "webapi",
                                            "azure_openai",
                                            "genevametrics",
                                            NULL};

static json_t *finalize_callout(json_t *v, char *err, size_t errlen)
{
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(v, i, e)
    {
        static const char *const req[] = {"CalloutType", "CalloutUriRegex", "CanCall"};
        if (require_keys(e, req, 3, "callout policy", err, errlen)) goto bad;
        const char *t = canon(json_string_value(json_object_get(e, "CalloutType")), CALLOUT_TYPES);
        const char *re = json_string_value(json_object_get(e, "CalloutUriRegex"));
        if (!t) {
            snprintf(err, errlen, "callout policy: CalloutType '%.60s' is unknown",
                     json_string_value(json_object_get(e, "CalloutType")));
            goto bad;
        }
        if (!*re) {
            snprintf(err, errlen, "callout policy: CalloutUriRegex must not be empty");
            goto bad;
        }
        json_t *o = json_pack("{s:s, s:O, s:O}", "CalloutType", t, "CalloutUriRegex",
                              json_object_get(e, "CalloutUriRegex"), "CanCall",
                              json_object_get(e, "CanCall"));
        json_array_append_new(out, o);
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

static json_t *finalize_sandbox(json_t *v, char *err, size_t errlen)
{
    static const char *const kinds[] = {"PythonExecution", "RExecution", NULL};
    static const char *const keys[] = {"SandboxKind", "IsEnabled", "TargetCountPerNode",
                                       "MaxCpuRatePerSandbox", "MaxMemoryMbPerSandbox"};
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(v, i, e)
    {
        const char *kind = canon(json_string_value(json_object_get(e, "SandboxKind")), kinds);
        if (!kind) {
            snprintf(err, errlen,
                     "sandbox policy: SandboxKind must be 'PythonExecution' or 'RExecution'");
            goto bad;
        }
        size_t j;
        json_t *p;
        json_array_foreach(out, j, p)
        {
            if (!strcmp(json_string_value(json_object_get(p, "SandboxKind")), kind)) {
                snprintf(err, errlen, "sandbox policy: SandboxKind '%s' appears twice", kind);
                goto bad;
            }
        }
        json_t *defs[] = {json_string(kind), json_false(), json_integer(16), json_integer(50),
                          json_integer(20480)};
        json_t *o = with_defaults(e, keys, defs, 5);
        json_object_set_new(o, "SandboxKind", json_string(kind));
        json_int_t cnt = json_integer_value(json_object_get(o, "TargetCountPerNode"));
        json_int_t cpu = json_integer_value(json_object_get(o, "MaxCpuRatePerSandbox"));
        json_int_t mem = json_integer_value(json_object_get(o, "MaxMemoryMbPerSandbox"));
        json_array_append_new(out, o);
        if (cnt < 1 || cnt > 256 || cpu < 1 || cpu > 100 || mem < 200 || mem > 65536) {
            snprintf(err, errlen,
                     "sandbox policy: TargetCountPerNode must be 1..256 (up to twice the cores of "
                     "a node), MaxCpuRatePerSandbox 1..100, MaxMemoryMbPerSandbox 200..65536");
            goto bad;
        }
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

static json_t *finalize_capacity(json_t *v, char *err, size_t errlen)
{
    json_t *def = sim_kusto_policy_default("capacity");
    json_t *out = sim_kusto_deep_merge(def, v);
    json_decref(def);
    const char *k;
    json_t *sec;
    json_object_foreach(out, k, sec)
    {
        json_t *c = json_object_get(sec, "CoreUtilizationCoefficient");
        if (!json_is_object(sec)) {
            snprintf(err, errlen, "capacity policy: '%.60s' must be an object", k);
            json_decref(out);
            return NULL;
        }
        if (c && (json_number_value(c) <= 0 || json_number_value(c) > 1)) {
            snprintf(err, errlen,
                     "capacity policy: %.60s.CoreUtilizationCoefficient must be in "
                     "(0, 1]",
                     k);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* -1 or a value within [lo, hi] (the policy's "use the default" convention). */
static int qwc_ok(json_t *v, long lo, long hi)
{
    if (!json_is_integer(v)) return 0;
    json_int_t x = json_integer_value(v);
    return x == -1 || (x >= lo && x <= hi);
}

static json_t *finalize_qwc(json_t *v, char *err, size_t errlen)
{
    json_t *def = sim_kusto_policy_default("query_weak_consistency");
    json_t *defs[7];
    for (size_t i = 0; i < 7; i++)
        defs[i] = json_incref(json_object_get(def, QWC_KEYS[i]));
    json_decref(def);
    json_t *out = with_defaults(v, QWC_KEYS, defs, 7);
    json_t *mn = json_object_get(out, "MinimumNumberOfNodes");
    json_t *mx = json_object_get(out, "MaximumNumberOfNodes");
    const char *why = NULL;
    if (!qwc_ok(json_object_get(out, "PercentageOfNodes"), 1, 100))
        why = "PercentageOfNodes must be -1 or 1..100";
    else if (!qwc_ok(mn, 1, 1000000) || !qwc_ok(mx, 1, 1000000))
        why = "MinimumNumberOfNodes and MaximumNumberOfNodes must be -1 or positive";
    else if (json_integer_value(mn) > 0 && json_integer_value(mx) > 0 &&
             json_integer_value(mn) > json_integer_value(mx))
        why = "MinimumNumberOfNodes must not exceed MaximumNumberOfNodes";
    else if (!qwc_ok(json_object_get(out, "SuperSlackerNumberOfNodesThreshold"), 4, 1000000))
        why = "SuperSlackerNumberOfNodesThreshold must be -1 or at least 4";
    else if (!json_is_boolean(json_object_get(out, "EnableMetadataPrefetch")))
        why = "EnableMetadataPrefetch must be true or false";
    else if (!qwc_ok(json_object_get(out, "MaximumLagAllowedInMinutes"), 1, 60))
        why = "MaximumLagAllowedInMinutes must be -1 or 1..60";
    else if (!qwc_ok(json_object_get(out, "RefreshPeriodInSeconds"), 30, 1800))
        why = "RefreshPeriodInSeconds must be -1 or 30..1800";
    if (why) {
        snprintf(err, errlen, "query_weak_consistency policy: %s", why);
        json_decref(out);
        return NULL;
    }
    return out;
}

static int hot_windows_ok(json_t *w, const char *what, char *err, size_t errlen)
{
    size_t i;
    json_t *e;
    if (!w) return 0;
    if (!json_is_array(w)) {
        snprintf(err, errlen, "%s: HotWindows must be an array", what);
        return -1;
    }
    json_array_foreach(w, i, e)
    {
        const char *a = json_string_value(json_object_get(e, "MinValue"));
        const char *b = json_string_value(json_object_get(e, "MaxValue"));
        char ca[40], cb[40];
        if (!a || !b || sim_kusto_datetime_parse(a, ca, sizeof ca) ||
            sim_kusto_datetime_parse(b, cb, sizeof cb) || strcmp(ca, cb) > 0) {
            snprintf(err, errlen, "%s: HotWindows[%zu] needs MinValue <= MaxValue (datetimes)",
                     what, i);
            return -1;
        }
    }
    return 0;
}

static json_t *finalize_query_acceleration(json_t *v, char *err, size_t errlen)
{
    static const char *const req[] = {"IsEnabled", "Hot"};
    if (require_keys(v, req, 2, "query_acceleration policy", err, errlen)) return NULL;
    if (span_at(v, "Hot") < SIM_KUSTO_TICKS_PER_DAY) {
        snprintf(err, errlen, "query_acceleration policy: Hot must be at least 1.00:00:00");
        return NULL;
    }
    if (hot_windows_ok(json_object_get(v, "HotWindows"), "query_acceleration policy", err, errlen))
        return NULL;
    static const char *const keys[] = {"IsEnabled", "Hot", "MaxAge"};
    json_t *defs[] = {json_null(), json_null(), json_string("00:05:00")};
    json_t *out = with_defaults(v, keys, defs, 3);
    if (span_at(out, "MaxAge") < 60 * SIM_KUSTO_TICKS_PER_SECOND) {
        snprintf(err, errlen, "query_acceleration policy: MaxAge must be at least 00:01:00");
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *finalize_mirroring(json_t *v, char *err, size_t errlen)
{
    const char *fmt = json_string_value(json_object_get(v, "Format"));
    if (json_object_get(v, "Format") && (!fmt || strcasecmp(fmt, "parquet"))) {
        snprintf(err, errlen, "mirroring policy: Format must be 'parquet'");
        return NULL;
    }
    static const char *const keys[] = {"Format", "IsEnabled", "Partitions"};
    json_t *defs[] = {json_string("parquet"), json_null(), json_null()};
    json_t *out = with_defaults(v, keys, defs, 3);
    json_object_set_new(out, "Format", json_string("parquet"));
    return out;
}

static const char *const ENCODING_TYPES[] = {"Identifier", "BigObject", "BigObject32",
                                             "Vector16",   "Null",      NULL};

const char *sim_kusto_encoding_type(const char *name)
{
    return canon(name, ENCODING_TYPES);
}

static json_t *finalize_encoding(int at_column, json_t *v, char *err, size_t errlen)
{
    if (!at_column) return json_incref(v);
    json_t *t = json_object_get(v, "EncodingType");
    if (!t) return json_incref(v);
    const char *c = sim_kusto_encoding_type(json_string_value(t));
    if (!c) {
        snprintf(err, errlen,
                 "encoding policy: type '%.60s' is unknown (Identifier, BigObject, BigObject32, "
                 "Vector16, Null)",
                 json_string_value(t));
        return NULL;
    }
    if (!strcmp(c, "Null")) return json_null(); /* back to the default: no policy of its own */
    json_t *out = json_deep_copy(v);
    json_object_set_new(out, "EncodingType", json_string(c));
    return out;
}

/* request_properties.<name> references of a classification function, in order of first
 * appearance; string literals are skipped. */
json_t *sim_kusto_classification_properties(const char *body)
{
    static const char pfx[] = "request_properties.";
    json_t *out = json_array();
    for (const char *p = body; *p;) {
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            while (*p && *p != q) {
                if (*p == '\\' && p[1]) p++;
                p++;
            }
            if (*p) p++;
            continue;
        }
        if (!strncmp(p, pfx, sizeof pfx - 1) &&
            (p == body || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            const char *n = p + sizeof pfx - 1;
            size_t len = 0;
            while (isalnum((unsigned char)n[len]) || n[len] == '_')
                len++;
            if (len) {
                json_t *name = json_stringn(n, len), *e;
                size_t i;
                int dup = 0;
                json_array_foreach(out, i, e) dup |= json_equal(e, name);
                if (dup)
                    json_decref(name);
                else
                    json_array_append_new(out, name);
            }
            p = n + len;
            continue;
        }
        p++;
    }
    return out;
}

static json_t *finalize_classification(json_t *v, char *err, size_t errlen)
{
    const char *fn = json_string_value(json_object_get(v, "ClassificationFunction"));
    if (!fn || !*fn) {
        snprintf(err, errlen,
                 "request_classification policy: the classification function (after "
                 "'<|') must not be empty");
        return NULL;
    }
    static const char *const keys[] = {"ClassificationProperties", "IsEnabled",
                                       "ClassificationFunction"};
    json_t *defs[] = {sim_kusto_classification_properties(fn), json_false(), json_null()};
    json_t *out = with_defaults(v, keys, defs, 3);
    json_object_set_new(out, "ClassificationProperties", sim_kusto_classification_properties(fn));
    return out;
}

json_t *sim_kusto_policy_finalize(const char *kw, int at_column, json_t *v, json_t *cluster,
                                  char *err, size_t errlen)
{
    static const char *const arrays[] = {
        "update", "extent_tags_retention", "managed_identity", "callout", "sandbox", NULL};
    int is_array = canon(kw, arrays) != NULL;
    if (is_array) {
        size_t i;
        json_t *e;
        if (!json_is_array(v)) {
            snprintf(err, errlen, "%s policy must be a JSON array", kw);
            return NULL;
        }
        json_array_foreach(v, i, e)
        {
            if (!json_is_object(e)) {
                snprintf(err, errlen, "%s policy entries must be JSON objects", kw);
                return NULL;
            }
        }
        if (!strcmp(kw, "managed_identity"))
            return finalize_managed_identity(v, cluster, err, errlen);
        if (!strcmp(kw, "callout")) return finalize_callout(v, err, errlen);
        if (!strcmp(kw, "sandbox")) return finalize_sandbox(v, err, errlen);
        json_t *out = json_array();
        json_array_foreach(v, i, e)
        {
            if (!strcmp(kw, "update")) {
                static const char *const req[] = {"Source", "Query"};
                static const char *const keys[] = {"IsEnabled", "Source", "Query",
                                                   "IsTransactional",
                                                   "PropagateIngestionProperties"};
                if (require_keys(e, req, 2, "update policy", err, errlen)) goto bad;
                json_t *defs[] = {json_false(), json_null(), json_null(), json_false(),
                                  json_false()};
                json_array_append_new(out, with_defaults(e, keys, defs, 5));
            } else {
                static const char *const req[] = {"TagPrefix", "RetentionPeriod"};
                if (require_keys(e, req, 2, "extent_tags_retention policy", err, errlen)) goto bad;
                json_array_append(out, e);
            }
        }
        return out;
    bad:
        json_decref(out);
        return NULL;
    }
    if (!json_is_object(v)) {
        snprintf(err, errlen, "%s policy must be a JSON object", kw);
        return NULL;
    }
    if (!strcmp(kw, "retention")) {
        static const char *const keys[] = {"SoftDeletePeriod", "Recoverability"};
        json_t *defs[] = {json_string("365000.00:00:00"), json_string("Enabled")};
        return with_defaults(v, keys, defs, 2);
    }
    if (!strcmp(kw, "caching")) {
        json_t *out = sim_kusto_caching_display(v);
        if (!out) snprintf(err, errlen, "caching policy: DataHotSpan is required");
        return out;
    }
    if (!strcmp(kw, "ingestionbatching")) {
        static const char *const keys[] = {"MaximumBatchingTimeSpan", "MaximumNumberOfItems",
                                           "MaximumRawDataSizeMB"};
        json_t *defs[] = {json_string("00:05:00"), json_integer(500), json_integer(1024)};
        return with_defaults(v, keys, defs, 3);
    }
    if (!strcmp(kw, "streamingingestion")) {
        static const char *const keys[] = {"IsEnabled", "HintAllocatedRate"};
        json_t *defs[] = {json_false(), json_null()};
        return with_defaults(v, keys, defs, 2);
    }
    if (!strcmp(kw, "auto_delete")) {
        static const char *const req[] = {"ExpiryDate"};
        static const char *const keys[] = {"ExpiryDate", "DeleteIfNotEmpty"};
        if (require_keys(v, req, 1, "auto_delete policy", err, errlen)) return NULL;
        json_t *defs[] = {json_null(), json_false()};
        return with_defaults(v, keys, defs, 2);
    }
    if (!strcmp(kw, "partitioning") && !json_is_array(json_object_get(v, "PartitionKeys"))) {
        snprintf(err, errlen, "partitioning policy: 'PartitionKeys' must be an array");
        return NULL;
    }
    if (!strcmp(kw, "capacity")) return finalize_capacity(v, err, errlen);
    if (!strcmp(kw, "query_weak_consistency")) return finalize_qwc(v, err, errlen);
    if (!strcmp(kw, "query_acceleration")) return finalize_query_acceleration(v, err, errlen);
    if (!strcmp(kw, "mirroring")) return finalize_mirroring(v, err, errlen);
    if (!strcmp(kw, "encoding")) return finalize_encoding(at_column, v, err, errlen);
    if (!strcmp(kw, "request_classification")) return finalize_classification(v, err, errlen);
    if (!strcmp(kw, "row_level_security")) {
        const char *q = json_string_value(json_object_get(v, "Query"));
        if (!json_is_boolean(json_object_get(v, "IsEnabled")) || !q || !*q) {
            snprintf(err, errlen, "row_level_security policy: a query is required");
            return NULL;
        }
        return json_pack("{s:O, s:s}", "IsEnabled", json_object_get(v, "IsEnabled"), "Query", q);
    }
    if (!strcmp(kw, "roworder")) {
        json_t *o = json_object_get(v, "OrderBy");
        if (!json_is_array(o) || !json_array_size(o)) {
            snprintf(err, errlen, "roworder policy: at least one column is required");
            return NULL;
        }
        return json_pack("{s:O}", "OrderBy", o);
    }
    return json_incref(v);
}

/* ------------------------------------------------------------------ merging */

static json_t *merge_managed_identity(json_t *cur, json_t *in, json_t *cluster, char *err,
                                      size_t errlen)
{
    json_t *out = json_deep_copy(cur), *e;
    size_t i;
    json_array_foreach(in, i, e)
    {
        const char *oid = json_string_value(json_object_get(e, "ObjectId"));
        json_t *m = oid ? mi_lookup(cluster, oid) : NULL;
        const char *id = m ? json_string_value(json_object_get(m, "objectId")) : oid;
        json_t *p, *hit = NULL;
        size_t j;
        json_array_foreach(out, j, p)
        {
            const char *po = json_string_value(json_object_get(p, "ObjectId"));
            if (id && po && !strcasecmp(po, id)) hit = p;
        }
        if (!hit || !json_is_string(json_object_get(e, "AllowedUsages"))) {
            json_array_append(out, e); /* finalize checks it */
            continue;
        }
        const char *names[MAX_USAGES];
        size_t n = 0;
        if (usages_add(json_string_value(json_object_get(hit, "AllowedUsages")), names, &n, err,
                       errlen) ||
            usages_add(json_string_value(json_object_get(e, "AllowedUsages")), names, &n, err,
                       errlen)) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(hit, "AllowedUsages", usages_text(names, n));
    }
    return out;
}

static json_t *merge_callout(json_t *cur, json_t *in)
{
    json_t *out = json_deep_copy(cur), *e;
    size_t i;
    json_array_foreach(in, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "CalloutType"));
        const char *re = json_string_value(json_object_get(e, "CalloutUriRegex"));
        json_t *p, *hit = NULL;
        size_t j;
        json_array_foreach(out, j, p)
        {
            const char *pt = json_string_value(json_object_get(p, "CalloutType"));
            const char *pr = json_string_value(json_object_get(p, "CalloutUriRegex"));
            if (t && re && pt && pr && !strcasecmp(pt, t) && !strcmp(pr, re)) hit = p;
        }
        if (hit && json_object_get(e, "CanCall"))
            json_object_set(hit, "CanCall", json_object_get(e, "CanCall"));
        else
            json_array_append(out, e);
    }
    return out;
}

/* roworder: a column already in the policy gets its new direction in place; others go last. */
static json_t *merge_roworder(json_t *cur, json_t *in)
{
    json_t *out = json_deep_copy(cur), *e;
    json_t *ob = json_object_get(out, "OrderBy");
    size_t i;
    if (!json_is_array(ob)) {
        ob = json_array();
        json_object_set_new(out, "OrderBy", ob);
    }
    json_array_foreach(json_object_get(in, "OrderBy"), i, e)
    {
        const char *name = json_string_value(json_object_get(e, "ColumnName"));
        json_t *p, *hit = NULL;
        size_t j;
        json_array_foreach(ob, j, p)
        {
            const char *pn = json_string_value(json_object_get(p, "ColumnName"));
            if (name && pn && !strcmp(pn, name)) hit = p;
        }
        if (hit)
            json_object_set(hit, "Order", json_object_get(e, "Order"));
        else
            json_array_append(ob, e);
    }
    return out;
}

json_t *sim_kusto_policy_merge(const char *kw, json_t *cur, json_t *in, json_t *cluster, char *err,
                               size_t errlen)
{
    if (!strcmp(kw, "request_classification")) {
        if (!cur) {
            snprintf(err, errlen,
                     "the cluster has no request classification policy to merge into; set one "
                     "with .alter and a classification function ('<|')");
            return NULL;
        }
        if (json_object_get(in, "ClassificationFunction") ||
            json_object_get(in, "ClassificationProperties")) {
            snprintf(err, errlen,
                     "request_classification policy: the classification function "
                     "is set by .alter with '<|', not by .alter-merge");
            return NULL;
        }
    }
    if (!cur) return json_incref(in);
    if (json_is_array(cur) && json_is_array(in)) {
        if (!strcmp(kw, "managed_identity"))
            return merge_managed_identity(cur, in, cluster, err, errlen);
        if (!strcmp(kw, "callout")) return merge_callout(cur, in);
        json_t *out = json_deep_copy(cur); /* update: appends, no de-duplication */
        json_array_extend(out, in);
        return out;
    }
    if (json_is_object(cur) && json_is_object(in)) {
        if (!strcmp(kw, "roworder")) return merge_roworder(cur, in);
        return sim_kusto_deep_merge(cur, in);
    }
    snprintf(err, errlen, "cannot merge into the current %s policy", kw);
    return NULL;
}

/* ------------------------------------------------------------------ workload groups */

static const char DEFAULT_WORKLOAD_GROUP[] =
    "{\"RequestLimitsPolicy\":{"
    "\"DataScope\":{\"IsRelaxable\":true,\"Value\":\"All\"},"
    "\"MaxMemoryPerQueryPerNode\":{\"IsRelaxable\":true,\"Value\":8589934592},"
    "\"MaxMemoryPerIterator\":{\"IsRelaxable\":true,\"Value\":5368709120},"
    "\"MaxFanoutThreadsPercentage\":{\"IsRelaxable\":true,\"Value\":100},"
    "\"MaxFanoutNodesPercentage\":{\"IsRelaxable\":true,\"Value\":100},"
    "\"MaxResultRecords\":{\"IsRelaxable\":true,\"Value\":500000},"
    "\"MaxResultBytes\":{\"IsRelaxable\":true,\"Value\":67108864},"
    "\"MaxExecutionTime\":{\"IsRelaxable\":true,\"Value\":\"00:04:00\"}},"
    "\"RequestRateLimitPolicies\":[{\"IsEnabled\":true,\"Scope\":\"WorkloadGroup\","
    "\"LimitKind\":\"ConcurrentRequests\",\"Properties\":{\"MaxConcurrentRequests\":80}}],"
    "\"RequestRateLimitsEnforcementPolicy\":{\"QueriesEnforcementLevel\":\"QueryHead\","
    "\"CommandsEnforcementLevel\":\"Database\"},"
    "\"RequestQueuingPolicy\":{\"IsEnabled\":false},"
    "\"QueryConsistencyPolicy\":{\"QueryConsistency\":{\"IsRelaxable\":true,\"Value\":\"Strong\"},"
    "\"CachedResultsMaxAge\":{\"IsRelaxable\":true,\"Value\":null}}}";

json_t *sim_kusto_default_workload_group(void)
{
    return json_loads(DEFAULT_WORKLOAD_GROUP, 0, NULL);
}

/* The members of obj renamed to their canonical spelling in names (case-insensitive); other
 * members kept as they are.  A new object; NULL when a name appears twice. */
static json_t *canon_keys(json_t *obj, const char *const *names, const char *what, char *err,
                          size_t errlen)
{
    json_t *out = json_object(), *v;
    const char *k;
    json_object_foreach(obj, k, v)
    {
        const char *c = canon(k, names);
        if (!c) c = k;
        if (json_object_get(out, c)) {
            snprintf(err, errlen, "%s: '%.60s' appears twice", what, c);
            json_decref(out);
            return NULL;
        }
        json_object_set(out, c, v);
    }
    return out;
}

/* {"IsRelaxable": bool?, "Value": ...} with Value checked by kind: 's' timespan (or null
 * when nullable), 'p' percentage 1..100, 'n' positive integer, 'e' one of vals (or null). */
static int wg_limit(json_t *lim, const char *name, int kind, const char *const *vals, int nullable,
                    char *err, size_t errlen)
{
    static const char *const lk[] = {"IsRelaxable", "Value", NULL};
    json_t *o = json_is_object(lim) ? canon_keys(lim, lk, name, err, errlen) : NULL;
    const char *why = NULL;
    if (!o) {
        if (!json_is_object(lim)) snprintf(err, errlen, "%s must be {IsRelaxable, Value}", name);
        return -1;
    }
    json_t *r = json_object_get(o, "IsRelaxable"), *v = json_object_get(o, "Value");
    if (r && !json_is_boolean(r)) why = "IsRelaxable must be true or false";
    if (!why && (!v || (json_is_null(v) && !nullable))) why = "Value is required";
    if (!why && !json_is_null(v)) {
        int64_t t;
        switch (kind) {
        case 's':
            if (!json_is_string(v) || sim_kusto_timespan_parse_net(json_string_value(v), &t) ||
                t < 0)
                why = "Value must be a timespan";
            else
                json_object_set_new(o, "Value", ts_json(t));
            break;
        case 'p':
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100)
                why = "Value must be 1..100";
            break;
        case 'n':
            if (!json_is_integer(v) || json_integer_value(v) < 1)
                why = "Value must be a positive integer";
            break;
        default: {
            const char *c = canon(json_string_value(v), vals);
            if (!c)
                why = "Value is not one of the allowed values";
            else
                json_object_set_new(o, "Value", json_string(c));
        }
        }
    }
    if (why) {
        snprintf(err, errlen, "%s: %s", name, why);
        json_decref(o);
        return -1;
    }
    json_object_clear(lim);
    json_object_update(lim, o);
    json_decref(o);
    return 0;
}

/* RequestLimitsPolicy (pol, owned by the definition being checked): the known limits'
 * names spelled canonically and their values checked. */
static json_t *wg_limits(json_t *pol, char *err, size_t errlen)
{
    static const char *const names[] = {"DataScope",
                                        "MaxMemoryPerQueryPerNode",
                                        "MaxMemoryPerIterator",
                                        "MaxFanoutThreadsPercentage",
                                        "MaxFanoutNodesPercentage",
                                        "MaxResultRecords",
                                        "MaxResultBytes",
                                        "MaxExecutionTime",
                                        "QueryResultsCacheMaxAge",
                                        NULL};
    static const char kinds[] = "ennppnnss";
    static const char *const scopes[] = {"All", "HotCache", NULL};
    const char *k;
    json_t *v;
    json_t *out = canon_keys(pol, names, "RequestLimitsPolicy", err, errlen);
    if (!out) return NULL;
    json_object_foreach(out, k, v)
    {
        size_t idx = 0;
        while (names[idx] && strcmp(names[idx], k))
            idx++;
        if (!names[idx]) continue; /* other limits pass as they are */
        char what[96];
        snprintf(what, sizeof what, "RequestLimitsPolicy.%s", k);
        if (wg_limit(v, what, kinds[idx], scopes, idx == 0 || idx == 8, err, errlen)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static int wg_rate_limits(json_t *arr, char *err, size_t errlen)
{
    static const char *const keys[] = {"IsEnabled", "Scope", "LimitKind", "Properties", NULL};
    static const char *const scopes[] = {"WorkloadGroup", "Principal", NULL};
    static const char *const kinds[] = {"ConcurrentRequests", "ResourceUtilization", NULL};
    static const char *const rkinds[] = {"RequestCount", "TotalCpuSeconds", NULL};
    size_t i;
    json_t *e;
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "RequestRateLimitPolicies must be an array");
        return -1;
    }
    json_array_foreach(arr, i, e)
    {
        json_t *o =
            json_is_object(e) ? canon_keys(e, keys, "RequestRateLimitPolicies", err, errlen) : NULL;
        if (!o) {
            if (!json_is_object(e))
                snprintf(err, errlen, "RequestRateLimitPolicies[%zu] must be an object", i);
            return -1;
        }
        const char *scope = canon(json_string_value(json_object_get(o, "Scope")), scopes);
        const char *kind = canon(json_string_value(json_object_get(o, "LimitKind")), kinds);
        json_t *props = json_object_get(o, "Properties");
        const char *why = NULL;
        if (!json_is_boolean(json_object_get(o, "IsEnabled")))
            why = "IsEnabled must be true or false";
        else if (!scope)
            why = "Scope must be 'WorkloadGroup' or 'Principal'";
        else if (!kind)
            why = "LimitKind must be 'ConcurrentRequests' or 'ResourceUtilization'";
        else if (!json_is_object(props))
            why = "Properties must be an object";
        else if (!strcmp(kind, "ConcurrentRequests")) {
            json_t *m = json_object_get(props, "MaxConcurrentRequests");
            if (!json_is_integer(m) || json_integer_value(m) < 0 || json_integer_value(m) > 10000)
                why = "Properties.MaxConcurrentRequests must be 0..10000";
        } else {
            json_t *mu = json_object_get(props, "MaxUtilization");
            int64_t t;
            const char *tw = json_string_value(json_object_get(props, "TimeWindow"));
            if (!canon(json_string_value(json_object_get(props, "ResourceKind")), rkinds))
                why = "Properties.ResourceKind must be 'RequestCount' or 'TotalCpuSeconds'";
            else if (!json_is_number(mu) || json_number_value(mu) < 0)
                why = "Properties.MaxUtilization must be a non-negative number";
            else if (!tw || sim_kusto_timespan_parse_net(tw, &t) || t <= 0)
                why = "Properties.TimeWindow must be a positive timespan";
        }
        if (why) {
            snprintf(err, errlen, "RequestRateLimitPolicies[%zu]: %s", i, why);
            json_decref(o);
            return -1;
        }
        json_object_set_new(o, "Scope", json_string(scope));
        json_object_set_new(o, "LimitKind", json_string(kind));
        json_array_set_new(arr, i, o);
    }
    return 0;
}

static int wg_enum_member(json_t *obj, const char *key, const char *const *vals, const char *what,
                          char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    const char *c = canon(json_string_value(v), vals);
    if (!c) {
        snprintf(err, errlen, "%s.%s has a value that is not allowed", what, key);
        return -1;
    }
    json_object_set_new(obj, key, json_string(c));
    return 0;
}

json_t *sim_kusto_workload_group_check(json_t *def, char *err, size_t errlen)
{
    static const char *const top[] = {
        "RequestLimitsPolicy",  "RequestRateLimitPolicies", "RequestRateLimitsEnforcementPolicy",
        "RequestQueuingPolicy", "QueryConsistencyPolicy",   NULL};
    if (!json_is_object(def)) {
        snprintf(err, errlen, "a workload group definition must be a JSON object");
        return NULL;
    }
    json_t *out = canon_keys(def, top, "workload group", err, errlen);
    if (!out) return NULL;
    /* canon_keys shares the member values with def: work on copies */
    json_t *copy = json_deep_copy(out);
    json_decref(out);
    out = copy;
    json_t *v;
    if ((v = json_object_get(out, "RequestLimitsPolicy"))) {
        if (!json_is_object(v)) {
            snprintf(err, errlen, "RequestLimitsPolicy must be an object");
            goto bad;
        }
        json_t *lims = wg_limits(v, err, errlen);
        if (!lims) goto bad;
        json_object_set_new(out, "RequestLimitsPolicy", lims);
    }
    if ((v = json_object_get(out, "RequestRateLimitPolicies")) && wg_rate_limits(v, err, errlen))
        goto bad;
    if ((v = json_object_get(out, "RequestRateLimitsEnforcementPolicy"))) {
        static const char *const q[] = {"Cluster", "QueryHead", NULL};
        static const char *const c[] = {"Cluster", "Database", NULL};
        static const char *const keys[] = {"QueriesEnforcementLevel", "CommandsEnforcementLevel",
                                           NULL};
        json_t *o = json_is_object(v)
                        ? canon_keys(v, keys, "RequestRateLimitsEnforcementPolicy", err, errlen)
                        : NULL;
        if (!o) {
            if (!json_is_object(v))
                snprintf(err, errlen, "RequestRateLimitsEnforcementPolicy must be an object");
            goto bad;
        }
        json_object_set_new(out, "RequestRateLimitsEnforcementPolicy", o);
        if (wg_enum_member(o, "QueriesEnforcementLevel", q, "RequestRateLimitsEnforcementPolicy",
                           err, errlen) ||
            wg_enum_member(o, "CommandsEnforcementLevel", c, "RequestRateLimitsEnforcementPolicy",
                           err, errlen))
            goto bad;
    }
    if ((v = json_object_get(out, "RequestQueuingPolicy"))) {
        json_t *e = json_object_get(v, "IsEnabled");
        if (!json_is_object(v) || (e && !json_is_boolean(e))) {
            snprintf(err, errlen, "RequestQueuingPolicy must be {\"IsEnabled\": true|false}");
            goto bad;
        }
    }
    if ((v = json_object_get(out, "QueryConsistencyPolicy"))) {
        static const char *const modes[] = {"Strong", "Weak", "WeakAffinitizedByQuery",
                                            "WeakAffinitizedByDatabase", NULL};
        static const char *const keys[] = {"QueryConsistency", "CachedResultsMaxAge", NULL};
        json_t *qc, *age;
        if (!json_is_object(v)) {
            snprintf(err, errlen, "QueryConsistencyPolicy must be an object");
            goto bad;
        }
        v = canon_keys(v, keys, "QueryConsistencyPolicy", err, errlen);
        if (!v) goto bad;
        json_object_set_new(out, "QueryConsistencyPolicy", v);
        if ((qc = json_object_get(v, "QueryConsistency")) &&
            wg_limit(qc, "QueryConsistencyPolicy.QueryConsistency", 'e', modes, 0, err, errlen))
            goto bad;
        if ((age = json_object_get(v, "CachedResultsMaxAge")) &&
            wg_limit(age, "QueryConsistencyPolicy.CachedResultsMaxAge", 's', NULL, 1, err, errlen))
            goto bad;
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}
