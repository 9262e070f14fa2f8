/*
 * release.h — the release guard on the main thread: every tick it sums each
 * judged version's outcome windows (per worker, metrics.c's vstats) and the
 * baseline's over the span guard_epoch() gives, asks guard_judge() for a
 * verdict, and acts on "fail" through the snapshot path (runtime_edit): with
 * `action: rollback` the version's share goes to the baseline in one
 * generation (its sticky users go with it; header rules stay).
 *
 * Which versions are judged: with `guard:` configured, every version whose
 * share is above 0 and below 100 % except the baseline (guard.baseline, or
 * the version with the largest share). A judgement starts when a version
 * becomes judged and again whenever its share or the baseline changes, so
 * each step of a canary is judged on its own evidence.
 *
 * The rollout (rollout.c's state machine) lives here too: started by the
 * `rollout start` command or by `rollout:` in the config (once per plan: a
 * plan that ended, promoted or aborted, is not started again by a reload or
 * restart), advanced by each tick when its step's hold has passed and the
 * guard says "pass" (without a guard: when the hold has passed), rolled back
 * (aborted) or paused by a guard trip. It is kept in the state file
 * (runtime_extra_set) after every transition.
 *
 * Owns: the judgements (verdict, numbers, trips) per version name, the
 * rollout. Does not
 * own: the outcome windows (metrics.c), the statistics (guard.c), the split
 * (runtime.c). Main thread only.
 */
#ifndef WEIR_RELEASE_H
#define WEIR_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct json_buf;
struct config;
struct runtime_result;
struct runtime_opts;

/* Judge every judged version now (now_ms: util_now_ms()); act on "fail".
 * Call about every 100 ms. Main thread. */
void release_tick(uint64_t now_ms);

/*
 * The `guard` command's answer members after {"ok":true:
 * ,"guard":{"enabled":B,"baseline":"v1"|null,"versions":{"v2":{...}}}.
 * Main thread.
 */
void release_render_guard(struct json_buf *out);

/* The guard's Prometheus families (weir_guard_verdict, weir_guard_trips_total).
 * Main thread. */
void release_render_metrics(struct json_buf *out);

/*
 * Load the rollout kept in the state file and start the config's rollout:
 * (if its plan has not run yet). After runtime_start. Main thread.
 */
void release_start(void);

/* After a reload: start the config's rollout: when its plan is new. */
void release_on_reload(const struct config *cfg);

/*
 * The rollout commands. Each returns 0, with *res filled and *applied set
 * when the split changed (start, promote, abort), or -1 with a sentence in
 * err and nothing changed. Main thread.
 */
int release_rollout_start(const char *version, const char *steps, const char *hold,
                          struct runtime_result *res, char *err, size_t errlen);
int release_rollout_pause(char *err, size_t errlen);
int release_rollout_resume(char *err, size_t errlen);
int release_rollout_promote(struct runtime_result *res, char *err, size_t errlen);
int release_rollout_abort(struct runtime_result *res, char *err, size_t errlen);

/*
 * The same, for a change made by hand: opts (borrowed) as runtime.h's
 * struct runtime_opts (availability.c's rule on the split start, promote
 * and abort set; a dry run changes nothing and leaves the rollout it would
 * make for release_render_rollout_preview). NULL: as above.
 */
int release_rollout_start_opts(const char *version, const char *steps, const char *hold,
                               const struct runtime_opts *opts, struct runtime_result *res,
                               char *err, size_t errlen);
int release_rollout_pause_opts(const struct runtime_opts *opts, char *err, size_t errlen);
int release_rollout_resume_opts(const struct runtime_opts *opts, char *err, size_t errlen);
int release_rollout_promote_opts(const struct runtime_opts *opts, struct runtime_result *res,
                                 char *err, size_t errlen);
int release_rollout_abort_opts(const struct runtime_opts *opts, struct runtime_result *res,
                               char *err, size_t errlen);

/* The `rollout` command's answer members: ,"rollout":{...} (INTERFACE.md). */
void release_render_rollout(struct json_buf *out);

/* ---- the fleet's hooks (fleet.c; release.c knows no fleet) -------------- */

struct outcome_sum;
struct rollout;

/*
 * What the fleet plugs in. counts: add to *sum the peers' outcomes of a
 * version over [since_ms, now_ms] (util_now_ms() clock), after this
 * replica's own are summed, for every judgement. changed: the rollout
 * changed here (tell the peers now). hold_config_rollout: true while the
 * config's `rollout:` must wait (a joining replica takes up the fleet's
 * rollout first instead of starting its own). replica names this replica
 * as the starter of the rollouts it starts (copied). Any callback may be
 * NULL. Main thread.
 */
struct release_fleet_hooks {
    const char *replica;
    void (*counts)(const char *version, uint64_t since_ms, uint64_t now_ms,
                   struct outcome_sum *sum, void *arg);
    void (*changed)(void *arg);
    bool (*hold_config_rollout)(void *arg);
    void *arg; /* borrowed: the callbacks' argument */
};

/* Install the hooks (NULL removes them). Main thread. */
void release_set_fleet(const struct release_fleet_hooks *hooks);

/* The rollout in force (borrowed until the next change). Main thread. */
const struct rollout *release_rollout(void);

/*
 * Make next (the join of ours and a peer's) the rollout: its split through
 * the snapshot path when it differs from the split in force (a new
 * generation), kept in the state file, announced; from names the peer for
 * the change and the log. Returns 0, or -1 with err (nothing changed).
 * Main thread.
 */
int release_rollout_adopt(const struct rollout *next, const char *from, char *err,
                          size_t errlen) WUR;

/* The same members for the rollout the last dry run would have made. */
void release_render_rollout_preview(struct json_buf *out);

/* Forget every judgement (at exit). Main thread. */
void release_shutdown(void);

#endif
