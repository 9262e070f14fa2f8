/*
 * config.h — the validated configuration: YAML file → struct config.
 *
 * config.c owns parsing (libyaml event API, so every node knows its line and
 * column) and validation. The same validator (config_validate) checks a
 * config read from the file and a config changed at runtime by the control
 * socket, so a runtime change can never produce a state the file could not.
 *
 * A struct config is a plain tree of owned heap data; config_clone() deep-
 * copies it. Each key's default, range, YAML name and whether a reload may
 * change it are written once, in its row of the field table
 * (config_parse.c, described in config_yaml.h); the comments here do not
 * repeat them. Adding a key: a member here, a row there, its documentation
 * in conf/weir.yaml (unit_config_table checks the two agree). It is never shared between threads while mutable: the control
 * thread clones, modifies, validates, then hands it to snapshot_new().
 * Does not own: sockets, endpoints' runtime health (snapshot.c, health.c).
 */
#ifndef WEIR_CONFIG_H
#define WEIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

#define CONFIG_MAX_VERSIONS 32
#define CONFIG_MAX_ENDPOINTS 1024 /* per version */
#define CONFIG_MAX_LISTENERS 16   /* entries of `listen` */
#define CONFIG_MAX_RULES 256
#define CONFIG_NAME_MAX 63    /* version names: [A-Za-z0-9_.-]{1,63} */
#define SPLIT_TOTAL_BP 10000u /* 100 % in basis points */

/* Where a value came from in the file, for FILE:LINE:COL errors (1-based). */
struct config_pos {
    int line; /* 0 = not from the file (runtime change / default) */
    int col;
};

struct config_endpoint {
    char *address; /* owned: as written, "10.0.0.1:8080" / "[::1]:80" */
    struct sockaddr_storage sa;
    socklen_t sa_len;
    uint32_t weight; /* 1..1000; {address: A, weight: N} form */
    bool draining;   /* runtime: drained by control, gets no new requests */
    struct config_pos pos;
};

struct config_health {
    bool enabled;  /* true when the version has a `health:` map */
    char *path;    /* owned; has its default even when !enabled */
    uint16_t port; /* 0 = the endpoint's own port */
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint32_t rise;
    uint32_t fall;
    struct config_pos pos;
};

/* versions.X.tls: TLS toward the version's endpoints (tls_upstream.c). */
struct config_upstream_tls {
    bool enabled;          /* the key is present */
    struct config_pos pos; /* the `tls` key */
    char *ca;              /* owned, NULL: the system store */
    char *sni;             /* owned, NULL: no SNI */
    bool verify;           /* verify the peer's certificate (default true) */
};

struct config_version {
    char *name;                        /* owned */
    struct config_endpoint *endpoints; /* owned array */
    size_t n_endpoints;
    char *discover; /* owned, NULL if none: "name:port" */
    uint32_t discover_interval_ms;
    struct config_health health;
    char *fallback;                 /* owned, NULL: version taking traffic when none healthy */
    struct config_pos pos;          /* the version's name (its key under `versions`) */
    struct config_pos fallback_pos; /* the `fallback` value */
    struct config_upstream_tls tls;
};

/* listen: [{address, tls: {cert, key, sni: [{names, cert, key}], ocsp}}]. */
struct config_tls_cert {
    char **names; /* owned array of owned server names ("*.example.com") */
    size_t n_names;
    char *cert;            /* owned: PEM chain */
    char *key;             /* owned: PEM key */
    struct config_pos pos; /* the list item */
};

struct config_listen_tls {
    bool enabled;                /* the key is present */
    struct config_pos pos;       /* the `tls` key */
    char *cert;                  /* owned: PEM chain of the default certificate */
    char *key;                   /* owned */
    char *ocsp;                  /* owned, NULL: no staple (DER OCSP response file) */
    struct config_tls_cert *sni; /* owned array: more certificates by name */
    size_t n_sni;
};

struct config_listener {
    char *address; /* owned: as written */
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct config_listen_tls tls;
    struct config_pos pos; /* the address */
};

enum config_rule_match {
    RULE_M_HEADER_VALUE = 0, /* header NAME equals VALUE exactly */
    RULE_M_HEADER_PRESENT,   /* header NAME present (any value) */
    RULE_M_COOKIE_VALUE,     /* cookie NAME equals VALUE exactly */
};

struct config_rule {
    enum config_rule_match match;
    char *name;                    /* owned: header or cookie name, as written */
    char *value;                   /* owned; NULL for RULE_M_HEADER_PRESENT */
    char *version;                 /* owned: target version name */
    struct config_pos pos;         /* the rule (list item) */
    struct config_pos version_pos; /* the `version` value */
};

enum config_sticky_kind {
    STICKY_NONE = 0, /* no stickiness */
    STICKY_HEADER,   /* key is a request header's value */
    STICKY_COOKIE,   /* key is a cookie's value */
};

struct config_sticky {
    enum config_sticky_kind kind;
    char *name;  /* owned: header or cookie name */
    bool assign; /* cookie only: issue a random key when absent */
    struct config_pos pos;
};

enum config_log_format {
    LOG_F_JSON = 0, /* JSON lines (default) */
    LOG_F_COMBINED, /* Apache/nginx combined log format */
};

struct config_access_log {
    bool enabled;
    enum config_log_format format;
    char *path;                 /* owned; NULL = stdout */
    struct config_pos path_pos; /* the `path` value (weir -t's open check) */
    uint32_t *fields;           /* owned: enum access_field ids (access_field.h)
                                   in line order; NULL = the default list */
    size_t n_fields;
};

/* log: the diagnostic (error) log on stderr. */
enum config_errlog_format {
    ERRLOG_F_TEXT = 0, /* "TIME weir[PID] LEVEL: message" (default) */
    ERRLOG_F_JSON,     /* one JSON object per line */
};

enum config_guard_action {
    GUARD_A_ROLLBACK = 0, /* a failed version's share goes to the baseline */
    GUARD_A_PAUSE,        /* the rollout stops advancing; the split stays */
};

/* guard: (INTERFACE.md, "Progressive rollout and the guard"). */
struct config_guard {
    bool enabled;          /* the key is present */
    struct config_pos pos; /* the `guard` key */
    char *baseline;        /* owned; NULL = the version with the largest share */
    struct config_pos baseline_pos;
    uint32_t window_ms;       /* outcomes older than this are forgotten */
    uint32_t min_requests;    /* per side; below it: hold */
    uint32_t max_increase_bp; /* errors.max_increase, points in bp (1 % = 100) */
    uint32_t quantile_bp;     /* latency.quantile: p99 = 9900 */
    uint32_t max_ratio_milli; /* latency.max_ratio x 1000 */
    uint32_t floor_ms;        /* latency.floor */
    uint32_t false_alarm_bp;  /* bound on a wrong fail, bp */
    enum config_guard_action action;
};

/* rollout: the same as `rollout start` at load time. */
struct config_rollout {
    bool enabled;          /* the key is present */
    struct config_pos pos; /* the `rollout` key */
    char *version;         /* owned */
    struct config_pos version_pos;
    uint32_t *steps_bp; /* owned array of n_steps */
    size_t n_steps;
    struct config_pos steps_pos;
    uint32_t hold_ms;
};

/* fleet: (INTERFACE.md, "Fleet"): the other replicas and the shared key. */
struct config_fleet {
    bool enabled;          /* the key is present */
    struct config_pos pos; /* the `fleet` key */
    char **peers;          /* owned array of owned "host:port" (n_peers) */
    size_t n_peers;
    bool peers_dns; /* peers was one DNS name:port, re-resolved */
    struct config_pos peers_pos;
    char *key_file;       /* owned; required when peers is set */
    uint32_t interval_ms; /* how often each peer is told the state */
};

/* mirror: (INTERFACE.md, "Mirroring with response comparison"). */
struct config_mirror {
    bool enabled;          /* mirroring is on (the key is present; `mirror off` clears it) */
    struct config_pos pos; /* the `mirror` key */
    char *version;         /* owned: the shadow version */
    struct config_pos version_pos;
    uint32_t percent_bp; /* share of the other versions' requests copied */
    char **methods;      /* owned array of owned method tokens */
    size_t n_methods;
    struct config_pos methods_pos;
    uint32_t max_body_bytes; /* larger request bodies are not mirrored */
    uint32_t max_inflight;   /* per worker; past it a mirror is dropped */
    uint32_t timeout_ms;     /* the shadow's whole exchange, connect to last byte */
    bool compare_status;
    char **compare_headers; /* owned array of owned header names */
    size_t n_compare_headers;
    bool compare_body;
};

struct config {
    char *path; /* owned: the file this came from (for errors and reload) */

    char *listen; /* owned: the addresses (one, as written; or several joined) */
    struct sockaddr_storage listen_sa;
    socklen_t listen_sa_len;           /* listen_sa: the first listener's */
    struct config_listener *listeners; /* owned array, in file order (at least one) */
    size_t n_listeners;
    char *control; /* owned */
    uint32_t control_mode;
    char *control_owner; /* owned, NULL = unchanged (user name or uid) */
    char *control_group; /* owned, NULL = unchanged (group name or gid) */
    char *state;         /* owned; default control + ".state" */
    char *admin;         /* owned, NULL = no admin listener */
    struct sockaddr_storage admin_sa;
    socklen_t admin_sa_len;
    bool watch;           /* reload when the file changes */
    char *version_header; /* owned, NULL = none */

    uint32_t workers; /* 0 in the file = one per core (resolved by main) */

    /* timeouts: */
    uint32_t client_header_timeout_ms;
    uint32_t client_idle_timeout_ms; /* keep-alive idle */
    uint32_t client_body_timeout_ms; /* between body reads */
    uint32_t upstream_connect_timeout_ms;
    uint32_t upstream_response_timeout_ms; /* idle while waiting */
    uint32_t upstream_idle_timeout_ms;     /* pooled idle conn */
    uint32_t drain_timeout_ms;             /* graceful stop */
    uint32_t tls_handshake_timeout_ms;     /* accept to finished TLS handshake */

    /* limits: */
    uint32_t max_connections;  /* per process */
    uint32_t max_header_bytes; /* request head */
    uint32_t max_header_count;
    uint32_t h2_max_concurrent_streams; /* per HTTP/2 client connection */
    uint32_t max_idle_upstream;         /* idle pooled conns per endpoint per worker */
    uint32_t listen_backlog;            /* per worker listener (capped by somaxconn) */

    uint32_t retries; /* extra attempts on another endpoint */

    struct config_version *versions; /* owned array, in file order */
    size_t n_versions;
    struct config_pos versions_pos; /* the `versions` key */
    uint32_t *split_bp;             /* owned, n_versions entries, sums to SPLIT_TOTAL_BP */
    struct config_pos split_pos;    /* the `split` key */

    struct config_rule *rules; /* owned array */
    size_t n_rules;
    struct config_sticky sticky;

    char **resolvers; /* owned array of owned "ip:port" strings */
    size_t n_resolvers;

    struct config_access_log access_log;
    enum config_errlog_format log_format;
    uint32_t log_level; /* enum log_level (log.h): 0 debug .. 3 error */
    /* Where these values are in the file, for weir -t's checks of what
     * start-up opens (config_check.c); {0,0} when absent. */
    struct config_pos control_pos, control_owner_pos, control_group_pos;

    struct config_guard guard;
    struct config_rollout rollout;
    struct config_fleet fleet;
    struct config_mirror mirror;
};

/* One problem found; messages are collected, every problem not only the first. */
struct config_error {
    struct config_pos pos;
    char msg[512];
};

struct config_errors {
    char *file;             /* owned */
    struct config_error *v; /* owned array */
    size_t n, cap;
};

/*
 * Read and validate FILE. Returns a new config (caller owns) or NULL, in which
 * case errs holds at least one error. errs must be initialised with
 * config_errors_init(). Main/control thread only (not thread-unsafe, but slow).
 */
struct config *config_load(const char *file, struct config_errors *errs) WUR;

/*
 * Read a whole regular file (at most 4 MiB) into a new buffer (caller
 * frees); *mtime_ms (may be NULL) gets its modification time. Returns NULL
 * with errno set (EISDIR, EINVAL for other non-regular files, EFBIG, ...).
 */
char *config_read_file(const char *file, size_t *len, int64_t *mtime_ms) WUR;

/* Append the "cannot read: ..." error for errno value err. */
void config_errors_add_read_error(struct config_errors *errs, int err);

/* Same, from an in-memory YAML text (file is used for messages only). */
struct config *config_load_string(const char *file, const char *text,
                                  size_t len, struct config_errors *errs) WUR;

/*
 * Check the cross-field rules (split sums to 100 %, names exist, rule
 * targets exist, no duplicate endpoints, fallback exists...). Used by
 * config_load and by every runtime change. Appends to errs; returns 0 when
 * valid, -1 otherwise.
 */
int config_validate(const struct config *cfg, struct config_errors *errs) WUR;

/* Deep copy. Never fails (aborts on OOM). */
struct config *config_clone(const struct config *cfg);

/* Free a config; NULL is a no-op. */
void config_free(struct config *cfg);

/*
 * For a reload: every setting that only takes effect at start and differs
 * between dst (the new config) and old (the running one) gets old's value
 * back in dst, and its key is appended to list (", "-separated, in table
 * order; "" when none). old NULL: nothing to keep. Main thread.
 */
/* `listen` changed (restart-only): keep old's listeners, TLS settings
 * included, so they go on matching the sockets weir has open; dst->listen
 * stays as read, for config_keep_restart to report. No-op otherwise. */
void config_keep_listeners(struct config *dst, const struct config *old);

void config_keep_restart(struct config *dst, const struct config *old,
                         char *list, size_t listlen);

/*
 * The defaults of the mirror's lists (methods GET and HEAD, headers
 * content-type) into m, replacing what it holds; the parser starts from
 * them, and so does a runtime `mirror set` on a config without `mirror`.
 */
void config_mirror_set_defaults(struct config_mirror *m);

/* Index of the named version, or -1. */
int config_version_index(const struct config *cfg, const char *name);

void config_errors_init(struct config_errors *errs, const char *file);
void config_errors_dispose(struct config_errors *errs);
/* Append one error (printf-style message). */
void config_errors_add(struct config_errors *errs, struct config_pos pos,
                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Render all errors, one per line "FILE:LINE:COL: message" (errors without a
 * position are rendered "FILE: message"). Writes into buf (NUL-terminated,
 * truncated if needed).
 */
void config_errors_format(const struct config_errors *errs, char *buf,
                          size_t buflen);

#endif
