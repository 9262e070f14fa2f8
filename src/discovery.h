/*
 * discovery.h — endpoints found by DNS (`discover: NAME:PORT`), per version.
 *
 * A producer: discovery.c (main thread) resolves each version's name with
 * libevent's evdns (A and AAAA, `resolvers` honoured) on its interval,
 * keeps the last good answer when a lookup fails, and when the sets change
 * tells its creator through the on_change callback given to
 * discovery_new(). It knows none of its consumers: server.c wires the
 * callback to the running config (runtime.c keeps the sets and publishes),
 * and snapshot_new() takes the sets as an argument, merging them after the
 * configured endpoints.
 */
#ifndef WEIR_DISCOVERY_H
#define WEIR_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct event_base;

/*
 * The endpoints found for one version: "ip:port" addresses, sorted, no
 * duplicates, weight 1. A plain value: the holder of an array of these owns
 * what they point to (discovery for the arrays its callback passes, which
 * the callee borrows for the call; the caller of discovery_sets_copy() for
 * the copy).
 */
struct discovery_set {
    char *version;               /* owned by the holder: the version name */
    struct config_endpoint *eps; /* owned by the holder: n_eps endpoints */
    size_t n_eps;
};

struct discovery;

/*
 * The sets changed: sets holds every version's current set (borrowed for
 * the call), why a line for the log ("discovery: v2 +1 -0 (...)"). Called
 * on the main thread from discovery's own events or from
 * discovery_configure(), at the end of its work there; it must not call
 * discovery_configure() or discovery_free() itself.
 */
typedef void (*discovery_change_cb)(const struct discovery_set *sets, size_t n_sets,
                                    const char *why, void *arg);

/*
 * A discovery with no sets, reporting to on_change(…, arg) (both
 * borrowed). Lookups run on base (borrowed). Main thread.
 */
struct discovery *discovery_new(struct event_base *base, discovery_change_cb on_change,
                                void *arg);

/*
 * Follow a config (borrowed for the call): start resolving for versions
 * with `discover`, stop for those without, take over intervals and
 * resolvers. When a set with endpoints goes away, on_change is called
 * once, at the end. Main thread.
 */
void discovery_configure(struct discovery *dy, const struct config *cfg);

/* Stop every lookup and free everything, without calling on_change. The
 * event loop must not run the base's DNS events again. NULL is a no-op.
 * Main thread. */
void discovery_free(struct discovery *dy);

/* ---- sets as values (pure; any thread) ---------------------------------- */

/* The set of `version` in sets, or NULL. */
const struct discovery_set *discovery_sets_find(const struct discovery_set *sets,
                                                size_t n_sets, const char *version);

/* Same addresses in the same order; NULL counts as an empty set. */
bool discovery_set_equal(const struct discovery_set *a, const struct discovery_set *b);

/* A deep copy of n_sets sets (caller frees with discovery_sets_free). */
struct discovery_set *discovery_sets_copy(const struct discovery_set *sets, size_t n_sets);

/* Free an array from discovery_sets_copy() and what it owns. NULL is a no-op. */
void discovery_sets_free(struct discovery_set *sets, size_t n_sets);

#endif
