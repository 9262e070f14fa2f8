/*
 * availability.h — the one rule that keeps a hand-made change from taking a
 * site down: a change that gives a version a larger share of the split is
 * refused when that version has no endpoint able to take a request (none at
 * all, or every one draining, failing its active health check or ejected
 * by passive health), unless the operator forces it.
 *
 * Who calls it: runtime.c, for every change made with struct runtime_opts
 * (the control commands: split, flip, rollback, rollout start/promote/
 * abort, and whatever command comes next). The guard's automatic rollback
 * to the baseline and the rollout's own steps pass no options and are
 * never refused here; a config file (reload) is the operator's declaration
 * and is applied, with the verdict as a warning.
 *
 * What it reads: the published snapshot's endpoints (their health atomics,
 * relaxed), so the verdict is the balancer's own view at that moment. An
 * endpoint the change adds is judged as snapshot_new() will start it: a
 * version with `health:` takes it only after its first passing check.
 * Main thread (any thread for a snapshot that is not published: tests).
 */
#ifndef WEIR_AVAILABILITY_H
#define WEIR_AVAILABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct config;
struct snapshot;

/* Why each of a version's endpoints can or cannot take a request. */
struct availability_count {
    size_t total;     /* endpoints the version would have */
    size_t available; /* can take a request now */
    size_t draining;  /* drained by hand (counted first) */
    size_t unhealthy; /* failing the active health check */
    size_t unchecked; /* new in a version with `health:`: not checked yet */
    size_t ejected;   /* ejected by passive health (connect failures, 5xx) */
};

/*
 * Count the endpoints version vi of next (a candidate config) would have,
 * with the health s (the published snapshot, borrowed, may be NULL) knows
 * at now_ms (util_now_ms clock). old is the running config s was built
 * from (borrowed): endpoints s holds beyond old's configured ones are the
 * discovered ones, kept when next's version still discovers. Pure over its
 * inputs.
 */
void availability_count_version(const struct config *old, const struct config *next,
                                size_t vi, const struct snapshot *s, uint64_t now_ms,
                                struct availability_count *c);

/*
 * The reason a version with count c cannot take requests, as a sentence
 * fragment into buf ("has no endpoint", "has no available endpoint: all 2
 * draining", ...); discover is the version's discover name or NULL. Returns
 * true when the version can take requests (buf then ""). Pure.
 */
bool availability_describe(const struct availability_count *c, const char *discover,
                           char *buf, size_t buflen);

/*
 * The rule: every version whose share grows from old to next must be able
 * to take requests, and so must the version of every header or cookie rule
 * next adds. Returns 0, or -1 with one sentence in err naming each
 * version, the share it would get and why it cannot take it. s and now_ms
 * as above. Pure over its inputs.
 */
int availability_check(const struct config *old, const struct config *next,
                       const struct snapshot *s, uint64_t now_ms, char *err,
                       size_t errlen) WUR;

/* availability_check() against the published snapshot, now. Main thread. */
int availability_check_now(const struct config *old, const struct config *next, char *err,
                           size_t errlen) WUR;

#endif
