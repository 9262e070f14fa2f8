/*
 * router.h — which version serves a request: rules, then sticky bucket, then
 * the split.
 *
 * The split is exact per worker: smooth weighted round robin over versions
 * with their shares in basis points as weights (nginx's SWRR), so over any
 * window of requests on one worker a version's count deviates from its share
 * by less than one request. The SWRR state lives in a per-worker struct
 * router_state tied to one snapshot (reset when the snapshot changes).
 *
 * Sticky: the key's bucket is fnv1a64(key) % 10000 (FNV-1a, 64-bit, offset
 * basis 14695981039346656037, prime 1099511628211, over the raw key bytes;
 * seedless, so every replica and any tool computes the same bucket). Buckets
 * map to versions by the fixed ranges in struct snap_version.
 *
 * Pure logic over a snapshot and a parsed head; no I/O, no allocation on the
 * hot path. Worker threads (router_pick) and the control thread (explain).
 */
#ifndef WEIR_ROUTER_H
#define WEIR_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"
#include "util.h"

#define STICKY_BUCKETS 10000u

/* A header as the router sees it (name as sent, any case). */
struct router_header {
    struct strview name;
    struct strview value;
};

/* What the router needs of a request. */
struct router_request {
    const struct router_header *headers; /* borrowed */
    size_t n_headers;
};

enum route_reason {
    ROUTE_R_SPLIT = 0, /* weighted split */
    ROUTE_R_RULE,      /* a rule matched */
    ROUTE_R_STICKY,    /* the sticky key's bucket */
    ROUTE_R_NONE,      /* nothing routable (all versions at 0 %: cannot happen after validation) */
};

struct route_decision {
    int version; /* index into snapshot versions, -1 if none */
    enum route_reason reason;
    int rule;       /* matching rule index, or -1 */
    int32_t bucket; /* sticky bucket, or -1 */
};

/* Per-worker SWRR state; one per worker, re-armed for each new snapshot. */
struct router_state {
    const struct snapshot *snap;     /* borrowed: the worker's cached snapshot */
    int64_t cw[CONFIG_MAX_VERSIONS]; /* SWRR current weights */
};

/* Reset the state for snapshot s. */
void router_state_init(struct router_state *st, const struct snapshot *s);

/*
 * Route one request. st may be NULL (explain: the split decision then names
 * the version with the largest share instead of stepping the SWRR).
 */
void router_pick(const struct snapshot *s, struct router_state *st,
                 const struct router_request *req, struct route_decision *out);

/*
 * Route by a sticky key the caller supplies (a key weir just assigned with
 * `sticky: {cookie: NAME, assign: true}`): the bucket decides, as if the
 * request had carried the key.
 */
void router_pick_key(const struct snapshot *s, const char *key, size_t len,
                     struct route_decision *out);

/* The sticky bucket of a key (0..9999). */
uint32_t router_bucket(const char *key, size_t len);

/* Short word for a reason: "split", "rule", "sticky", "none". */
const char *router_reason_name(enum route_reason r);

#endif
