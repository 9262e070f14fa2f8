/*
 * snapshot.h — the published routing snapshot and the endpoints it names.
 *
 * A snapshot is an immutable view of everything a worker needs to route a
 * request: the validated config it was built from, and per version its
 * endpoints, split share in basis points (precomputed), rules with
 * lower-cased header names and the sticky key. Every change (config load,
 * split, flip, rollback, drain, discovery...) builds a new snapshot from a
 * modified config clone and publishes it with one atomic store; nothing
 * mutates a published snapshot.
 *
 * Lifetime: refcounted. The published pointer holds one reference; a worker
 * holds one for its cached copy and each txn holds one to its end. The last
 * holder frees it, on whatever thread that is (freeing touches no
 * thread-confined state).
 *
 * Endpoints are refcounted too and carried over from one snapshot to the next
 * when the version name and address are unchanged, so their health state,
 * counters and per-worker idle pools (upstream.c's tables, indexed by the
 * endpoint's small `index`) survive a change. Health lives in
 * atomics (read relaxed on the hot path); counters are per worker slots,
 * summed by the reader.
 */
#ifndef WEIR_SNAPSHOT_H
#define WEIR_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct discovery_set;
struct tls_set;
struct vstats;

#define WORKERS_MAX 64
#define ENDPOINT_MAGIC 0x45504e54u /* "EPNT" */

/* Status classes counted per endpoint: 1xx..5xx → index 0..4. */
#define STATUS_CLASSES 5

/* One worker's counters for one endpoint; only that worker writes. */
struct endpoint_wslot {
    _Atomic uint64_t requests[STATUS_CLASSES]; /* finished txns by class */
    _Atomic uint64_t inflight;                 /* txns currently using the endpoint (gauge) */
    _Atomic uint64_t connect_failures;
    _Atomic uint64_t retries;
    _Atomic uint64_t conns; /* open upstream conns, idle or lent (gauge) */
} __attribute__((aligned(64)));

struct endpoint {
    uint32_t magic;
    atomic_uint refs;
    uint32_t id;    /* unique for the process lifetime */
    uint32_t index; /* small and dense: per-worker tables are indexed by
                       it; the same for the endpoint's whole life (so
                       across snapshots), reused only once it is freed */
    char *version;  /* owned: version name */
    char *address;  /* owned: "10.0.0.1:8080" */
    struct sockaddr_storage sa;
    socklen_t sa_len;
    atomic_bool healthy;               /* health.c: active check verdict (default true) */
    _Atomic uint64_t ejected_until_ms; /* passive ejection, util_now_ms() clock */
    atomic_bool retired;               /* no published snapshot names it any more */
    atomic_uint consecutive_failures;  /* passive: connect failures / 5xx */
    _Atomic uint64_t ejections;        /* passive ejections so far (counter) */
    /* health.c's bookkeeping for status (written by main thread only): */
    _Atomic uint64_t last_check_ms;              /* wall clock (ms since epoch), 0 = never */
    atomic_int last_check_status;                /* HTTP status or -1 for failure */
    atomic_uint check_successes, check_failures; /* consecutive, for rise/fall */
    struct endpoint_wslot slots[WORKERS_MAX];
};

/* An endpoint as one snapshot sees it. */
struct snap_endpoint {
    struct endpoint *ep; /* refcounted */
    uint32_t weight;
    bool draining; /* gets no new requests */
};

struct snap_version {
    const char *name;   /* borrowed from cfg */
    uint32_t split_bp;  /* share of unmatched, keyless requests */
    uint32_t sticky_lo; /* sticky buckets [lo, hi) map to this version */
    uint32_t sticky_hi;
    int fallback;              /* version index taking traffic when none healthy, -1 none */
    struct snap_endpoint *eps; /* owned array */
    size_t n_eps;
    struct vstats *stats; /* borrowed from metrics.c's registry (never freed),
                           * set by metrics_bind() before publishing; NULL:
                           * not counted */
};

struct snap_rule {
    enum config_rule_match match;
    char *name_lc; /* owned: lower-cased header / cookie name as written */
    size_t name_len;
    const char *value; /* borrowed from cfg; NULL = presence */
    size_t value_len;
    int version; /* target version index */
};

struct snapshot {
    atomic_uint refs;
    uint64_t generation;
    struct config *cfg;            /* owned, validated */
    struct snap_version *versions; /* owned array, cfg order */
    size_t n_versions;
    struct snap_rule *rules; /* owned array */
    size_t n_rules;
    struct tls_set *tls;  /* owned ref (tls_store.h), NULL: no TLS anywhere yet */
    char *sticky_name_lc; /* owned, NULL if no sticky */
    size_t sticky_name_len;
};

/*
 * Build a snapshot from its inputs alone (a pure function of them, apart
 * from the endpoint ids it hands out):
 *   cfg    a validated config; ownership passes to the snapshot;
 *   prev   the snapshot it follows (borrowed, may be NULL): an endpoint with
 *          the same version and address is carried over (same object: its
 *          health, ejection and counters stay), the rest are new; a new
 *          endpoint of a version with `health:` starts unhealthy when prev
 *          is not NULL (it takes traffic after its first passing check);
 *   found  endpoints discovered per version (borrowed, may be NULL with
 *          n_found 0): merged after a version's configured endpoints, for
 *          versions whose cfg has `discover` only; an address also
 *          configured explicitly is taken once, as configured.
 * Each version's stats are left NULL for metrics_bind() to fill. Returns a
 * snapshot with refs == 1. Main thread (any thread for a snapshot that is
 * not published: the unit tests).
 */
struct snapshot *snapshot_new(struct config *cfg, const struct snapshot *prev,
                              const struct discovery_set *found, size_t n_found);

void snapshot_ref(struct snapshot *s);
/* Drop a reference; frees on last. NULL is a no-op. Any thread. */
void snapshot_unref(struct snapshot *s);

/*
 * Publish s as the current snapshot: assigns the next generation, stores the
 * pointer, marks endpoints of the previous snapshot that s does not name as
 * retired, and drops the previous published reference. Takes over the
 * caller's reference to s. Main thread only.
 */
void snapshot_publish(struct snapshot *s);

/*
 * The current snapshot with a new reference (caller unrefs). Any thread;
 * NULL before the first publish.
 */
struct snapshot *snapshot_acquire(void);

/*
 * Hot path for workers: true when s is the published snapshot (one acquire
 * load). When false, the worker takes snapshot_acquire(). Any thread.
 */
bool snapshot_is_current(const struct snapshot *s);

/* The current generation number (0 before the first publish). Any thread. */
uint64_t snapshot_generation(void);

/* Release all global state at exit (unpublishes). Main thread. */
void snapshot_shutdown(void);

/* Endpoint refcounting. */
void endpoint_ref(struct endpoint *ep);
void endpoint_unref(struct endpoint *ep);

/* True if the endpoint may take new requests now (healthy, not ejected). */
bool endpoint_is_available(const struct endpoint *ep, uint64_t now_ms);

/* Sum of the per-worker slots. Any thread. */
uint64_t endpoint_inflight(const struct endpoint *ep);
uint64_t endpoint_requests(const struct endpoint *ep, int status_class);

#endif
