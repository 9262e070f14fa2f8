/*
 * runtime_map.h — a config's tracked part as a state map and back (see
 * state.h for the keys and their canonical values). runtime.c expresses
 * change, rollback and reload through these; nothing else should need
 * them. Main thread.
 */
#ifndef WEIR_RUNTIME_MAP_H
#define WEIR_RUNTIME_MAP_H

#include <stddef.h>

#include "config.h"
#include "state.h"
#include "util.h"

/* Fill m (initialised here) with cfg's tracked keys; cfg NULL gives an
 * empty map. Timestamps are 0. */
void runtime_map_from_config(const struct config *cfg, struct state_map *m);

/* The order keys apply in (split 0, rules 1, endpoints 2, drains 3,
 * mirror 4), -1 for a key that is not tracked. */
#define RUNTIME_MAP_ORDERS 5
int runtime_map_key_order(const char *key);

/*
 * Set one tracked key of cfg to value (STATE_ABSENT removes: the endpoint,
 * the drain). Returns 0, or -1 with a human sentence in err (unknown or
 * malformed key or value, a version or endpoint no longer in cfg); cfg may
 * then be partly changed (callers apply to a clone).
 */
int runtime_map_apply_item(struct config *cfg, const char *key, const char *value,
                           char *err, size_t errlen) WUR;

/* Apply every item of diff to cfg in key order; stops at the first
 * failure (-1, err filled). */
int runtime_map_apply_all(struct config *cfg, const struct state_map *diff, char *err,
                          size_t errlen) WUR;

/* out (initialised here) = the items of `to` that differ from `from`,
 * plus STATE_ABSENT for keys only `from` has. */
void runtime_map_diff(const struct state_map *from, const struct state_map *to,
                      struct state_map *out);

/* What changes from a to b, human ("split v1=90 -> v1=50,v2=50; drain v2
 * 10.0.0.7:8080"), or "no change". */
void runtime_map_describe(const struct state_map *a, const struct state_map *b,
                          char *buf, size_t buflen);

#endif
