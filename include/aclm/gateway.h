/* aclm gateway: a TLS-terminating HTTP/1.1 reverse proxy.
 *
 * A configuration file (gw.yaml, docs/gateway.md) names listeners, sites by
 * server name (exact or "*.wildcard") with their certificates and upstream
 * pools, the TLS policy (groups, post-quantum rollout), timeouts and limits.
 * N worker threads each run their own libev loop on SO_REUSEPORT listeners;
 * the configuration in use is one reference-counted snapshot that a reload
 * replaces atomically (connections keep the snapshot they started with).
 *
 * Internals: docs/internals/gateway.md. */
#ifndef ACLM_GATEWAY_H
#define ACLM_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

struct aclm_gw_config;
struct aclm_gateway;

/* Parse and check path: every error names the file and line.  Certificate
 * files are read and matched against their keys, upstream hosts resolved.
 * *out is reference-counted (one reference for the caller). */
int aclm_gw_config_load(const char *path, struct aclm_gw_config **out);
void aclm_gw_config_unref(struct aclm_gw_config *cfg);
/* Summary for `aclm gateway check`: number of sites, listeners, workers. */
size_t aclm_gw_config_n_sites(const struct aclm_gw_config *cfg);
const char *aclm_gw_config_pid_file(const struct aclm_gw_config *cfg);

/* A gateway from a loaded configuration (takes the caller's reference).
 * Loads the aclm-pq provider into the default library context. */
int aclm_gateway_new(struct aclm_gw_config *cfg, struct aclm_gateway **out);
/* Bind the listeners and start the workers and the admin listener. */
int aclm_gateway_start(struct aclm_gateway *gw);
/* Load the configuration file again and, when it is valid, make it the one
 * new connections use (certificates, sites, upstreams, TLS policy).
 * Listeners, workers and the admin address stay as started.  On error the
 * running configuration stays and the message says why. */
int aclm_gateway_reload(struct aclm_gateway *gw);
/* Periodic work of the daemon's main thread (call it a few times a
 * second): rotates the session-ticket key every tls.ticket_rotation. */
void aclm_gateway_tick(struct aclm_gateway *gw);
/* True when a certificate or key file of the running configuration changed
 * on disk since it was loaded (checked by the daemon once a second). */
bool aclm_gateway_certs_changed(struct aclm_gateway *gw);
/* True when some site has cert_source acme. */
bool aclm_gw_config_needs_acme(const struct aclm_gw_config *cfg);
/* True when some site has cert_source ca (the built-in CA). */
bool aclm_gw_config_needs_ca(const struct aclm_gw_config *cfg);
struct aclm_store;
struct aclm_ca_policy;
/* Every CA named by a site with cert_source ca (default_ca for those that
 * name none) exists in st, and the site's names are within policy (NULL:
 * not checked); else an error naming the file and line (and `aclm ca
 * init` for a missing CA). */
int aclm_gw_config_check_cas(const struct aclm_gw_config *cfg, struct aclm_store *st,
                             const char *default_ca, const struct aclm_ca_policy *policy);

/* What sites with cert_source acme need: the store (used by the gateway's
 * ACME thread only, from now on), the KEK and the CAs of aclm.yaml
 * (acme.cas).  All must outlive the gateway.  Call before start. */
struct aclm_store;
struct aclm_kek;
struct aclm_acme_ca;
int aclm_gateway_set_acme(struct aclm_gateway *gw, struct aclm_store *store,
                          const struct aclm_kek *kek, const struct aclm_acme_ca *cas,
                          size_t n_cas);
/* What sites with cert_source ca need besides the store and KEK given to
 * aclm_gateway_set_acme (n_cas may be 0 then): aclm.yaml, whose ca.name is
 * the default CA and whose ca.url, ca.dns_suffixes and ca.ip_ranges shape
 * the certificates as for `aclm ca issue`.  cfg must outlive the gateway.
 * Call before start. */
struct aclm_config;
int aclm_gateway_set_builtin_ca(struct aclm_gateway *gw, const struct aclm_config *cfg);
/* Stop the workers (open connections are closed) and free everything. */
void aclm_gateway_free(struct aclm_gateway *gw);

#endif
