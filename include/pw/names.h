/* pw/names.h: the naming rules for everything a request puts into a URL or a command:
 * Kusto entity names, ARM path segments (subscription, resource group, cluster) and
 * cluster URIs.  The worker validates and never escapes: a name that breaks a rule is
 * refused, so a valid name can be bracket-quoted or put into a path as it is. */
#ifndef PW_NAMES_H
#define PW_NAMES_H

#include <stddef.h>
#include "pw/status.h"

/* Each check returns PW_OK or PW_ERR_INVALID (the name breaks its rule; err says which);
 * pw_names_cluster_uri also PW_ERR_SYNTAX (not https://host) or PW_ERR_NOT_ALLOWED (the
 * host has no allowed suffix). */

/* Kusto entity name (databases, tables): 1..1024 characters of ASCII letters, digits,
 * '_', ' ', '.', '-'; not starting or ending with "__". */
pw_status pw_names_kusto_entity(const char *name, char *err, size_t errlen);

/* A Kusto entity name that also goes into an ARM path (a database on the arm route):
 * the Kusto rule, and no "..", no leading/trailing space, no trailing '.' (URL
 * normalization would drop it and address another database). */
pw_status pw_names_arm_database(const char *name, char *err, size_t errlen);

/* Subscription id: a GUID, 8-4-4-4-12 hexadecimal digits. */
/* The name of an ARM child resource in a path (a principal assignment): 1 to 128 of letters,
 * digits, '_', '.', '-', not ending with '.' or holding "..". */
#define PW_NAMES_ARM_CHILD_MAX 128
pw_status pw_names_arm_child(const char *name, char *err, size_t errlen);

pw_status pw_names_subscription_id(const char *id, char *err, size_t errlen);

/* Resource group: 1..90 of ASCII letters, digits, '_', '-', '.', '(', ')'; not ending
 * with '.'; no "..". */
pw_status pw_names_resource_group(const char *name, char *err, size_t errlen);

/* Kusto cluster name as ARM has it: 4..22 lower-case letters and digits, starting with
 * a letter. */
pw_status pw_names_cluster(const char *name, char *err, size_t errlen);

/* Cluster URI: "https://" + host, an optional single trailing '/', nothing else (no
 * user-info, port, path, query, fragment).  The host (compared lower-cased) must be
 * <label>[.<label>...] followed by one of suffixes (each like ".kusto.windows.net";
 * a suffix without a leading '.' is matched as if it had one).  suffixes == NULL or
 * count == 0 means the built-in list (public and sovereign clouds).  On success
 * normalized receives "https://<lower-cased host>" and cluster the first host label. */
pw_status pw_names_cluster_uri(const char *uri, const char *const *suffixes, size_t count,
                               char *normalized, size_t normalized_len, char *cluster,
                               size_t cluster_len, char *err, size_t errlen);

/* A principal FQN put into a Kusto string literal (aadapp=<id>;<tenant>, aaduser=<upn>):
 * 1..512 of ASCII letters, digits and @ . _ - ; = : (so no quote, backslash or space can
 * occur and the literal needs no escaping). */
pw_status pw_names_principal_fqn(const char *fqn, char *err, size_t errlen);

/* The Kusto host suffixes of the public and sovereign clouds (NULL-terminated): the default
 * of azure.kusto.host.suffixes, and what pw_names_cluster_uri uses when given none.  Other
 * hosts (Microsoft Fabric eventhouses, private endpoints) must be configured. */
extern const char *const pw_names_default_kusto_suffixes[];

#endif
