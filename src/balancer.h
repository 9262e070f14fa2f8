/*
 * balancer.h — which endpoint inside a version: smooth weighted round robin
 * (nginx's algorithm) over the endpoints that can take a request now
 * (healthy, not ejected, not draining, not excluded by a retry).
 *
 * State is per worker and per snapshot (struct balancer_state), so the hot
 * path touches no shared writable memory. O(endpoints) per pick.
 */
#ifndef WEIR_BALANCER_H
#define WEIR_BALANCER_H

#include <stdint.h>

#include "snapshot.h"

struct balancer_state {
    const struct snapshot *snap;      /* borrowed */
    int64_t *cw[CONFIG_MAX_VERSIONS]; /* owned: per version, one per endpoint */
};

/* Arm for snapshot s (allocates); dispose frees. */
void balancer_state_init(struct balancer_state *st, const struct snapshot *s);
void balancer_state_dispose(struct balancer_state *st);

/*
 * Pick an endpoint of version v. `exclude` (may be NULL) is skipped (the
 * endpoint that just failed, on a retry). Returns the index into
 * s->versions[v].eps, or -1 when no endpoint can take the request (or v
 * is not a version of s). When st was armed for another snapshot (a retry
 * in a txn's older snapshot after the worker moved on), st is left alone
 * and the pick is weighted but not smooth.
 */
int balancer_pick(const struct snapshot *s, struct balancer_state *st, int v,
                  const struct endpoint *exclude, uint64_t now_ms);

#endif
