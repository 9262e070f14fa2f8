/*
 * release.c — see release.h.
 *
 * One judgement per version name (a small fixed table: versions are at most
 * CONFIG_MAX_VERSIONS, and names that left the config are forgotten when
 * they stop being judged, except their trip count). A judgement records the
 * share and the baseline it was started for; a change of either restarts it
 * (start_ms = now), which also restarts guard_epoch()'s alpha spending.
 * A tripped judgement acts once: with `action: rollback` the version's
 * share moves to the baseline (runtime_edit, one generation, kept in the
 * state file like any change); with `action: pause` the split stays and the
 * verdict stays "fail" until the split changes.
 */
#include "release.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "events.h"
#include "guard.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "outcome.h"
#include "rollout.h"
#include "runtime.h"
#include "snapshot.h"
#include "state.h"
#include "util.h"
#include "config_edit.h"

struct judgement {
    bool used;    /* the slot holds a version name */
    bool active;  /* judged at the last tick */
    bool tripped; /* acted on a fail already */
    char name[CONFIG_NAME_MAX + 1];
    char baseline[CONFIG_NAME_MAX + 1];
    uint32_t share_bp;        /* the share the judgement started for */
    uint64_t start_ms;        /* util_now_ms() when it (re)started */
    uint64_t trips;           /* fails acted on, ever (a counter) */
    struct guard_result last; /* the latest verdict and its numbers */
    /* Both versions' outcomes since the judgement began (the pass tests),
     * over its whole slots before all_until_ms; the partial one is added
     * at each tick. */
    struct outcome_sum all_base, all_canary;
    uint64_t all_until_ms;
};

static struct judgement judgements[CONFIG_MAX_VERSIONS * 2];
static struct rollout ro;                          /* the rollout (state NONE: never started) */
static bool config_rollout_due;                    /* check the config's rollout: at the next tick */
static char current_baseline[CONFIG_NAME_MAX + 1]; /* "" when no guard */
static bool guard_on;
static struct release_fleet_hooks fleet;    /* all NULL without a fleet */
static char replica_name[ROLLOUT_NAME_MAX]; /* fleet.replica, copied */

static struct judgement *judgement_for(const char *name)
{
    struct judgement *free_slot = NULL;
    for (size_t i = 0; i < ARRAY_LEN(judgements); i++) {
        struct judgement *j = &judgements[i];
        if (j->used && strcmp(j->name, name) == 0)
            return j;
        if (!j->used && !free_slot)
            free_slot = j;
    }
    if (!free_slot) {
        /* Reuse one that is not judged now (keeps the table bounded). */
        for (size_t i = 0; i < ARRAY_LEN(judgements); i++)
            if (!judgements[i].active) {
                free_slot = &judgements[i];
                break;
            }
        if (!free_slot)
            return NULL;
    }
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = true;
    snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
    return free_slot;
}

static void guard_config_of(const struct config_guard *g, struct guard_config *gc)
{
    gc->window_ms = g->window_ms;
    gc->min_requests = g->min_requests;
    gc->max_increase_bp = g->max_increase_bp;
    gc->quantile_bp = g->quantile_bp;
    gc->max_ratio = (double)g->max_ratio_milli / 1000.0;
    gc->floor_us = g->floor_ms * 1000u;
    gc->false_alarm_bp = g->false_alarm_bp;
}

/* Sum one version's per-worker windows over [since_ms, now_ms]. */
static void sum_version(const char *name, uint64_t since_ms, uint64_t now_ms,
                        struct outcome_sum *sum)
{
    outcome_sum_clear(sum);
    struct vstats *vs = metrics_vstats(name);
    if (!vs)
        return;
    for (size_t w = 0; w < WORKERS_MAX; w++)
        if (vs->outcomes[w])
            outcome_window_add(vs->outcomes[w], since_ms, now_ms, sum);
    if (fleet.counts)
        fleet.counts(name, since_ms, now_ms, sum, fleet.arg);
}

/* The baseline: guard.baseline, or the version with the largest share
 * (the first of equals). */
static bool rollout_live(void)
{
    return ro.state == ROLLOUT_S_RUNNING || ro.state == ROLLOUT_S_PAUSED;
}

static int baseline_of(const struct config *cfg)
{
    if (cfg->guard.baseline)
        return config_version_index(cfg, cfg->guard.baseline);
    /* During a rollout its version is the canary even past 50 %. */
    const char *skip = rollout_live() ? ro.plan.version : NULL;
    int best = -1;
    for (size_t i = 0; i < cfg->n_versions; i++) {
        if (skip && strcmp(cfg->versions[i].name, skip) == 0)
            continue;
        if (best < 0 || cfg->split_bp[i] > cfg->split_bp[best])
            best = (int)i;
    }
    return best;
}

/* ---- the rollout: splits through runtime_edit, state in the state file -- */

struct rollout_edit {
    const struct rollout *r;
    const uint32_t *bp; /* per r->names */
};

static int on_rollout_edit(struct config *cfg, void *arg, char *err, size_t errlen)
{
    const struct rollout_edit *e = arg;
    uint32_t bp[CONFIG_MAX_VERSIONS] = {0};
    for (unsigned i = 0; i < e->r->n_versions; i++) {
        int vi = config_version_index(cfg, e->r->names[i]);
        if (vi < 0 && e->bp[i]) {
            snprintf(err, errlen, "version %s of the rollout is no longer configured",
                     e->r->names[i]);
            return -1;
        }
        if (vi >= 0)
            bp[vi] = e->bp[i];
    }
    config_edit_set_split(cfg, bp);
    return 0;
}

static void save_rollout(void);

/* The rollout the last dry run of a rollout command would have made. */
static struct rollout ro_preview;

/*
 * Make next the rollout: apply its split bp (per next->names; NULL when the
 * split stays) through runtime_edit as the change `what`, then keep it.
 * opts (borrowed): NULL for weir's own transitions; a command's options
 * for those made by hand (availability.c's rule, dry run: next only goes
 * to ro_preview). Returns 0, or -1 with err when the split was refused
 * (nothing changed).
 */
static int commit_rollout(const char *what, const struct rollout *next, const uint32_t *bp,
                          const struct runtime_opts *opts, struct runtime_result *res,
                          char *err, size_t errlen)
{
    if (bp) {
        struct rollout_edit e = {next, bp};
        struct runtime_result scratch;
        if (runtime_edit_opts(what, on_rollout_edit, &e, opts, res ? res : &scratch, err,
                              errlen) < 0)
            return -1;
    }
    if (opts && opts->dry_run) {
        ro_preview = *next;
        return 0;
    }
    ro = *next;
    save_rollout();
    return 0;
}

/* Keep the rollout in the state file and tell the event stream. */
static void save_rollout(void)
{
    char line[2048];
    rollout_encode(&ro, line, sizeof(line));
    runtime_extra_set("rollout", line);
    char step[16], pct[16], members[1024];
    snprintf(step, sizeof(step), "%u", ro.step);
    util_format_bp(rollout_percent_bp(&ro), pct, sizeof(pct));
    events_members(members, sizeof(members), "version", ro.plan.version, "state",
                   rollout_state_name(ro.state), "step", step, "percent", pct, "reason",
                   ro.reason[0] ? ro.reason : NULL, (const char *)NULL);
    events_publish("rollout", snapshot_generation(), members);
    if (fleet.changed)
        fleet.changed(fleet.arg);
}

/* Every configured version and its share now, for rollout_start. */
static unsigned current_split(const struct config *cfg, char (*names)[ROLLOUT_NAME_MAX],
                              uint32_t *bp)
{
    unsigned n = 0;
    for (size_t i = 0; i < cfg->n_versions && n < ROLLOUT_VERSIONS_MAX; i++, n++) {
        snprintf(names[n], ROLLOUT_NAME_MAX, "%s", cfg->versions[i].name);
        bp[n] = cfg->split_bp[i];
    }
    return n;
}

static int start_plan(const struct rollout_plan *plan, const char *what,
                      const struct runtime_opts *opts, struct runtime_result *res, char *err,
                      size_t errlen)
{
    const struct config *cfg = runtime_config();
    if (cfg->guard.enabled && cfg->guard.baseline &&
        strcmp(cfg->guard.baseline, plan->version) == 0) {
        snprintf(err, errlen, "%s is the guard's baseline; it cannot be rolled out",
                 plan->version);
        return -1;
    }
    char names[ROLLOUT_VERSIONS_MAX][ROLLOUT_NAME_MAX];
    uint32_t bp[ROLLOUT_VERSIONS_MAX], out[ROLLOUT_VERSIONS_MAX];
    unsigned n = current_split(cfg, names, bp);
    struct rollout next = ro;
    if (rollout_start(&next, plan, (const char(*)[ROLLOUT_NAME_MAX])names, bp, n,
                      state_now_ms(), out, err, errlen) < 0)
        return -1;
    snprintf(next.starter, sizeof(next.starter), "%s", replica_name);
    if (commit_rollout(what, &next, out, opts, res, err, errlen) < 0)
        return -1;
    if (opts && opts->dry_run)
        return 0;
    log_info("rollout of %s started: step 1 of %u (%s)", ro.plan.version, ro.plan.n_steps, what);
    return 0;
}

int release_rollout_start(const char *version, const char *steps, const char *hold,
                          struct runtime_result *res, char *err, size_t errlen)
{
    return release_rollout_start_opts(version, steps, hold, NULL, res, err, errlen);
}

int release_rollout_start_opts(const char *version, const char *steps, const char *hold,
                               const struct runtime_opts *opts, struct runtime_result *res,
                               char *err, size_t errlen)
{
    struct rollout_plan plan;
    if (rollout_plan_parse(version, steps, hold, &plan, err, errlen) < 0)
        return -1;
    char what[256];
    snprintf(what, sizeof(what), "rollout start %s steps=%s hold=%s", version, steps, hold);
    return start_plan(&plan, what, opts, res, err, errlen);
}

int release_rollout_pause(char *err, size_t errlen)
{
    return release_rollout_pause_opts(NULL, err, errlen);
}

int release_rollout_pause_opts(const struct runtime_opts *opts, char *err, size_t errlen)
{
    struct rollout next = ro;
    if (rollout_pause(&next, "paused by hand", err, errlen) < 0)
        return -1;
    if (commit_rollout("rollout pause", &next, NULL, opts, NULL, err, errlen) < 0)
        return -1;
    if (opts && opts->dry_run)
        return 0;
    log_info("rollout of %s paused by hand", ro.plan.version);
    return 0;
}

int release_rollout_resume(char *err, size_t errlen)
{
    return release_rollout_resume_opts(NULL, err, errlen);
}

int release_rollout_resume_opts(const struct runtime_opts *opts, char *err, size_t errlen)
{
    struct rollout next = ro;
    if (rollout_resume(&next, state_now_ms(), err, errlen) < 0)
        return -1;
    if (commit_rollout("rollout resume", &next, NULL, opts, NULL, err, errlen) < 0)
        return -1;
    if (opts && opts->dry_run)
        return 0;
    log_info("rollout of %s resumed", ro.plan.version);
    return 0;
}

/* promote or abort by hand: a transition with a split of its own. */
static int end_by_hand(bool promote, const struct runtime_opts *opts,
                       struct runtime_result *res, char *err, size_t errlen)
{
    struct rollout next = ro;
    uint32_t out[ROLLOUT_VERSIONS_MAX];
    int rc = promote ? rollout_promote(&next, state_now_ms(), out, err, errlen)
                     : rollout_abort(&next, "aborted by hand", out, err, errlen);
    if (rc < 0)
        return -1;
    char what[128];
    snprintf(what, sizeof(what), "rollout %s %s", promote ? "promote" : "abort",
             next.plan.version);
    if (commit_rollout(what, &next, out, opts, res, err, errlen) < 0)
        return -1;
    if (opts && opts->dry_run)
        return 0;
    log_msg(promote ? LOG_L_INFO : LOG_L_WARN, "rollout of %s %s by hand", ro.plan.version,
            promote ? "promoted" : "aborted");
    return 0;
}

int release_rollout_promote(struct runtime_result *res, char *err, size_t errlen)
{
    return end_by_hand(true, NULL, res, err, errlen);
}

int release_rollout_abort(struct runtime_result *res, char *err, size_t errlen)
{
    return end_by_hand(false, NULL, res, err, errlen);
}

int release_rollout_promote_opts(const struct runtime_opts *opts, struct runtime_result *res,
                                 char *err, size_t errlen)
{
    return end_by_hand(true, opts, res, err, errlen);
}

int release_rollout_abort_opts(const struct runtime_opts *opts, struct runtime_result *res,
                               char *err, size_t errlen)
{
    return end_by_hand(false, opts, res, err, errlen);
}

/* The config's rollout: as a plan; false when there is none. */
static bool config_plan(const struct config *cfg, struct rollout_plan *plan)
{
    const struct config_rollout *r = &cfg->rollout;
    if (!r->enabled || !r->version || r->n_steps > ROLLOUT_STEPS_MAX)
        return false;
    memset(plan, 0, sizeof(*plan));
    snprintf(plan->version, sizeof(plan->version), "%s", r->version);
    memcpy(plan->steps_bp, r->steps_bp, r->n_steps * sizeof(uint32_t));
    plan->n_steps = (unsigned)r->n_steps;
    plan->hold_ms = r->hold_ms;
    return true;
}

static bool same_plan(const struct rollout_plan *a, const struct rollout_plan *b)
{
    return strcmp(a->version, b->version) == 0 && a->n_steps == b->n_steps &&
           a->hold_ms == b->hold_ms &&
           memcmp(a->steps_bp, b->steps_bp, a->n_steps * sizeof(uint32_t)) == 0;
}

/* `rollout:` in the config starts once per plan: a plan that ran (whatever
 * its end) is not started again by a reload or a restart. */
static void check_config_rollout(void)
{
    struct rollout_plan plan;
    const struct config *cfg = runtime_config();
    if (!cfg || !config_plan(cfg, &plan))
        return;
    if (ro.state != ROLLOUT_S_NONE && same_plan(&ro.plan, &plan))
        return;
    if (rollout_live()) {
        log_warn("config rollout of %s not started: a rollout of %s is %s", plan.version,
                 ro.plan.version, rollout_state_name(ro.state));
        return;
    }
    char err[256];
    if (start_plan(&plan, "rollout start (config file)", NULL, NULL, err, sizeof(err)) < 0)
        log_error("config rollout of %s not started: %s", plan.version, err);
}

void release_start(void)
{
    const char *line = runtime_extra_get("rollout");
    if (line) {
        struct rollout r;
        if (rollout_decode(line, &r) == 0) {
            ro = r;
            if (ro.state != ROLLOUT_S_NONE)
                log_info("rollout of %s restored from the state file: %s, step %u of %u",
                         ro.plan.version, rollout_state_name(ro.state), ro.step,
                         ro.plan.n_steps);
        } else {
            log_warn("ignoring a malformed rollout in the state file");
        }
    }
    config_rollout_due = true;
}

void release_on_reload(const struct config *cfg)
{
    (void)cfg;
    config_rollout_due = true; /* not from inside the reload: at the next tick */
}

/* Advance a running rollout whose hold passed on "pass" (or with no guard). */
static void advance_rollout(void)
{
    if (ro.state != ROLLOUT_S_RUNNING)
        return;
    enum rollout_verdict vd = guard_on ? ROLLOUT_V_HOLD : ROLLOUT_V_PASS;
    for (size_t i = 0; guard_on && i < ARRAY_LEN(judgements); i++) {
        const struct judgement *j = &judgements[i];
        if (j->used && j->active && strcmp(j->name, ro.plan.version) == 0)
            vd = (enum rollout_verdict)j->last.verdict;
    }
    struct rollout next = ro;
    uint32_t out[ROLLOUT_VERSIONS_MAX];
    if (!rollout_tick(&next, vd, state_now_ms(), out))
        return;
    char what[160], pct[16];
    util_format_bp(rollout_percent_bp(&next), pct, sizeof(pct));
    snprintf(what, sizeof(what), "rollout %s step %u of %u: %s%%%s", next.plan.version,
             next.step, next.plan.n_steps, pct,
             next.state == ROLLOUT_S_PROMOTED ? " (promoted)" : "");
    char err[256];
    if (commit_rollout(what, &next, out, NULL, NULL, err, sizeof(err)) < 0) {
        log_error("rollout of %s cannot advance: %s", next.plan.version, err);
        return;
    }
    log_info("%s", what);
}

struct trip_edit {
    int version, baseline;
};

/* The judged version's share goes to the baseline. */
static int on_trip_edit(struct config *cfg, void *arg, char *err, size_t errlen)
{
    const struct trip_edit *e = arg;
    if ((size_t)e->version >= cfg->n_versions || (size_t)e->baseline >= cfg->n_versions) {
        snprintf(err, errlen, "the versions changed meanwhile");
        return -1;
    }
    uint32_t bp[CONFIG_MAX_VERSIONS];
    memcpy(bp, cfg->split_bp, cfg->n_versions * sizeof(bp[0]));
    bp[e->baseline] += bp[e->version];
    bp[e->version] = 0;
    config_edit_set_split(cfg, bp);
    return 0;
}

/* A trip of the rolled-out version: the rollout aborts (rollback) or pauses. */
static void trip_rollout(const struct config *cfg, struct judgement *j)
{
    int b = -1;
    for (unsigned i = 0; i < ro.n_versions; i++)
        if (strcmp(ro.names[i], j->baseline) == 0)
            b = (int)i;
    char reason[ROLLOUT_REASON_MAX];
    size_t rl = strlen(j->last.reason);
    if (rl > sizeof(reason) - 8)
        rl = sizeof(reason) - 8;
    snprintf(reason, sizeof(reason), "guard: %.*s", (int)rl, j->last.reason);
    struct rollout next = ro;
    uint32_t out[ROLLOUT_VERSIONS_MAX];
    bool rollback = cfg->guard.action == GUARD_A_ROLLBACK;
    bool moves = rollout_trip(&next, rollback, b, reason, state_now_ms(), out);
    char what[512], err[256];
    snprintf(what, sizeof(what), "guard abort rollout %s -> %s: %s", next.plan.version,
             j->baseline, j->last.reason);
    if (commit_rollout(what, &next, moves ? out : NULL, NULL, NULL, err, sizeof(err)) < 0) {
        log_error("guard: aborting the rollout of %s failed: %s", next.plan.version, err);
        return;
    }
    log_warn("guard: rollout of %s %s (%s)", ro.plan.version,
             rollback ? "aborted, its share back to the baseline" : "paused", j->last.reason);
}

static void trip(const struct config *cfg, struct judgement *j, int v, int b)
{
    j->tripped = true;
    j->trips++;
    char members[1024];
    events_publish("guard", snapshot_generation(),
                   events_members(members, sizeof(members), "version", j->name, "baseline",
                                  j->baseline, "verdict", "fail", "action",
                                  cfg->guard.action == GUARD_A_ROLLBACK ? "rollback" : "pause",
                                  "reason", j->last.reason, (const char *)NULL));
    if (rollout_live() && strcmp(ro.plan.version, j->name) == 0) {
        trip_rollout(cfg, j);
        return;
    }
    if (cfg->guard.action != GUARD_A_ROLLBACK) {
        log_warn("guard: %s fails against %s (%s); action pause: the split stays", j->name,
                 j->baseline, j->last.reason);
        return;
    }
    char what[512];
    snprintf(what, sizeof(what), "guard rollback %s -> %s: %s", j->name, j->baseline,
             j->last.reason);
    struct trip_edit e = {v, b};
    struct runtime_result res;
    char err[256];
    if (runtime_edit(what, on_trip_edit, &e, &res, err, sizeof(err)) < 0) {
        log_error("guard: rolling %s back failed: %s", j->name, err);
        return;
    }
    log_warn("guard: %s rolled back to %s in generation %" PRIu64 " (%s): %s", j->name,
             j->baseline, res.generation, res.change, j->last.reason);
}

/*
 * One check of judgement j at now_ms: the baseline over guard_epoch()'s
 * span, the canary slot by slot over the last window (not before the
 * judgement began: earlier outcomes were judged under another share), both
 * since the start for the pass tests.
 */
static void judge_one(const struct guard_config *gc, struct judgement *j, uint64_t now_ms)
{
    static struct outcome_sum base_span, base_all, canary_all; /* ~3 KiB each */
    static struct outcome_sum slots[GUARD_SLOTS_MAX], base_slots[GUARD_SLOTS_MAX];
    const uint64_t slot = OUTCOME_SLOT_MS;
    /* One slot is asked for at its middle: the local windows sum the slot
     * holding it, the fleet's hook each replica's slots whose middle lies
     * within a slot of it, so a replica's slot lands in one local slot
     * (the boundaries aside) and is not counted twice. */
    const uint64_t half = slot / 2;
    uint64_t start_slot = j->start_ms - j->start_ms % slot, now_slot = now_ms - now_ms % slot;
    /* Whole slots since the last tick join the sums since the start (a
     * stall longer than the ring loses the oldest). */
    if (now_slot > j->all_until_ms + (OUTCOME_SLOTS - 4u) * slot)
        j->all_until_ms = now_slot - (OUTCOME_SLOTS - 4u) * slot;
    for (; j->all_until_ms < now_slot; j->all_until_ms += slot) {
        sum_version(j->baseline, j->all_until_ms + half, j->all_until_ms + half, &base_span);
        outcome_sum_add(&j->all_base, &base_span);
        sum_version(j->name, j->all_until_ms + half, j->all_until_ms + half, &base_span);
        outcome_sum_add(&j->all_canary, &base_span);
    }
    base_all = j->all_base;
    canary_all = j->all_canary;
    sum_version(j->baseline, now_slot + half, now_slot + half, &base_span);
    outcome_sum_add(&base_all, &base_span);
    sum_version(j->name, now_slot + half, now_slot + half, &base_span);
    outcome_sum_add(&canary_all, &base_span);

    uint64_t first = outcome_window_since_ms((uint32_t)slot, now_ms, gc->window_ms);
    if (first < start_slot)
        first = start_slot;
    unsigned n = 0;
    for (uint64_t t = first; t <= now_slot && n < GUARD_SLOTS_MAX; t += slot, n++) {
        sum_version(j->name, t + half, t + half, &slots[n]);
        sum_version(j->baseline, t + half, t + half, &base_slots[n]);
    }

    uint64_t since = 0;
    unsigned epoch = guard_epoch(gc->window_ms, j->start_ms, now_ms, &since);
    sum_version(j->baseline, since, now_ms, &base_span);
    struct guard_input in = {
        .baseline_all = &base_all,
        .canary_all = &canary_all,
        .baseline_span = &base_span,
        .epoch = epoch,
        .baseline_slots = base_slots,
        .canary_slots = slots,
        .n_slots = n,
        .first_slot = (first - start_slot) / slot,
    };
    guard_judge(gc, &in, &j->last);
}

static void judge(uint64_t now_ms);

void release_tick(uint64_t now_ms)
{
    if (config_rollout_due && !(fleet.hold_config_rollout &&
                                fleet.hold_config_rollout(fleet.arg))) {
        config_rollout_due = false;
        check_config_rollout();
    }
    judge(now_ms);
    advance_rollout();
}

static void judge(uint64_t now_ms)
{
    const struct config *cfg = runtime_config();
    for (size_t i = 0; i < ARRAY_LEN(judgements); i++)
        judgements[i].active = false;
    guard_on = cfg && cfg->guard.enabled;
    current_baseline[0] = '\0';
    int b = guard_on ? baseline_of(cfg) : -1;
    if (b < 0) {
        for (size_t i = 0; i < ARRAY_LEN(judgements); i++)
            judgements[i].start_ms = 0;
        return;
    }
    snprintf(current_baseline, sizeof(current_baseline), "%s", cfg->versions[b].name);
    struct guard_config gc;
    guard_config_of(&cfg->guard, &gc);
    for (size_t v = 0; v < cfg->n_versions; v++) {
        uint32_t share = cfg->split_bp[v];
        if ((int)v == b || share == 0 || share >= SPLIT_TOTAL_BP)
            continue;
        struct judgement *j = judgement_for(cfg->versions[v].name);
        if (!j)
            continue;
        if (j->share_bp != share || strcmp(j->baseline, current_baseline) != 0 ||
            j->start_ms == 0) {
            j->share_bp = share;
            snprintf(j->baseline, sizeof(j->baseline), "%s", current_baseline);
            j->start_ms = now_ms;
            j->tripped = false;
            outcome_sum_clear(&j->all_base);
            outcome_sum_clear(&j->all_canary);
            j->all_until_ms = now_ms - now_ms % OUTCOME_SLOT_MS;
        }
        j->active = true;
        judge_one(&gc, j, now_ms);
        if (j->last.verdict == GUARD_V_FAIL && !j->tripped) {
            trip(cfg, j, (int)v, b);
            /* A rollback replaced the running config (the old one is
             * freed); the same versions, only the split moved. */
            cfg = runtime_config();
        }
    }
    /* A version no longer judged starts afresh when it is judged again. */
    for (size_t i = 0; i < ARRAY_LEN(judgements); i++)
        if (!judgements[i].active)
            judgements[i].start_ms = 0;
}

/* ,"key":NUMBER (null when not finite). */
static void num(struct json_buf *out, const char *key, double v)
{
    json_buf_puts(out, ",");
    json_buf_key(out, key);
    if (isfinite(v))
        json_buf_printf(out, "%.6g", v);
    else
        json_buf_puts(out, "null");
}

void release_render_guard(struct json_buf *out)
{
    /* Enabled and baseline from the running config (the tick may not have
     * run since a reload); the verdicts from the last tick. */
    const struct config *cfg = runtime_config();
    bool on = cfg && cfg->guard.enabled;
    int b = on ? baseline_of(cfg) : -1;
    json_buf_puts(out, ",\"guard\":{\"enabled\":");
    json_buf_puts(out, on ? "true" : "false");
    json_buf_puts(out, ",\"baseline\":");
    if (b >= 0)
        json_buf_str(out, cfg->versions[b].name);
    else
        json_buf_puts(out, "null");
    json_buf_puts(out, ",\"versions\":{");
    bool first = true;
    for (size_t i = 0; i < ARRAY_LEN(judgements); i++) {
        const struct judgement *j = &judgements[i];
        if (!on || !j->used || !j->active)
            continue;
        const struct guard_result *r = &j->last;
        if (!first)
            json_buf_puts(out, ",");
        first = false;
        json_buf_key(out, j->name);
        json_buf_puts(out, "{\"verdict\":");
        json_buf_str(out, guard_verdict_name(r->verdict));
        json_buf_printf(out, ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64, r->requests,
                        r->errors);
        num(out, "error_rate", r->error_rate);
        json_buf_printf(out, ",\"baseline_requests\":%" PRIu64 ",\"baseline_errors\":%" PRIu64,
                        r->baseline_requests, r->baseline_errors);
        num(out, "baseline_error_rate", r->baseline_error_rate);
        num(out, "latency_ms", r->latency_ms);
        num(out, "baseline_latency_ms", r->baseline_latency_ms);
        json_buf_printf(out, ",\"share\":%.2f", (double)j->share_bp / 100.0);
        json_buf_printf(out, ",\"trips\":%" PRIu64 ",\"reason\":", j->trips);
        json_buf_str(out, r->reason);
        json_buf_puts(out, "}");
    }
    json_buf_puts(out, "}}");
}

/* What happens next to the rollout, as one sentence. */
static void rollout_next_text(double on_step_s, char *buf, size_t len)
{
    const struct config *cfg = runtime_config();
    bool guarded = cfg && cfg->guard.enabled;
    enum guard_verdict v = GUARD_V_HOLD;
    for (size_t i = 0; guarded && i < ARRAY_LEN(judgements); i++)
        if (judgements[i].used && judgements[i].active &&
            strcmp(judgements[i].name, ro.plan.version) == 0)
            v = judgements[i].last.verdict;
    char pct[16];
    switch (ro.state) {
    case ROLLOUT_S_NONE:
        snprintf(buf, len, "no rollout: start one with rollout start VERSION");
        return;
    case ROLLOUT_S_PROMOTED:
    case ROLLOUT_S_ABORTED:
        snprintf(buf, len, "nothing: the rollout is %s", rollout_state_name(ro.state));
        return;
    case ROLLOUT_S_PAUSED:
        snprintf(buf, len, "nothing until rollout resume (or promote, abort)");
        return;
    case ROLLOUT_S_RUNNING:
        break;
    }
    bool last = ro.step >= ro.plan.n_steps;
    if (!last)
        util_format_bp(ro.plan.steps_bp[ro.step], pct, sizeof(pct));
    double left = (double)ro.plan.hold_ms / 1000.0 - on_step_s;
    const char *to = last ? "promote" : "step";
    if (!guarded) {
        if (left > 0)
            snprintf(buf, len, "%s%s%s%s in %.0f s (hold; no guard)", to, last ? "" : " to ",
                     last ? "" : pct, last ? "" : "%", left);
        else
            snprintf(buf, len, "%s at the next tick", to);
        return;
    }
    snprintf(buf, len, "%s%s%s%s %s%.0f s on the guard's pass (now %s)", to,
             last ? "" : " to ", last ? "" : pct, last ? "" : "%",
             left > 0 ? "in at least " : "as soon as the guard says pass, hold done ",
             left > 0 ? left : 0.0, guard_verdict_name(v));
}
static void render_rollout(struct json_buf *out, const struct rollout *r);

void release_render_rollout(struct json_buf *out)
{
    render_rollout(out, &ro);
}

void release_render_rollout_preview(struct json_buf *out)
{
    render_rollout(out, &ro_preview);
}

static void render_rollout(struct json_buf *out, const struct rollout *r)
{
    json_buf_puts(out, ",\"rollout\":{\"version\":");
    if (r->state != ROLLOUT_S_NONE)
        json_buf_str(out, r->plan.version);
    else
        json_buf_puts(out, "null");
    json_buf_puts(out, ",\"state\":");
    json_buf_str(out, rollout_state_name(r->state));
    json_buf_printf(out, ",\"step\":%u,\"steps\":[", r->state ? r->step : 0);
    char pct[16];
    for (unsigned i = 0; r->state && i < r->plan.n_steps; i++) {
        util_format_bp(r->plan.steps_bp[i], pct, sizeof(pct));
        json_buf_printf(out, "%s%s", i ? "," : "", pct);
    }
    util_format_bp(rollout_percent_bp(r), pct, sizeof(pct));
    json_buf_printf(out, "],\"percent\":%s,\"hold_s\":%.3f,\"step_started\":", pct,
                    r->state ? (double)r->plan.hold_ms / 1000.0 : 0.0);
    if (r->state != ROLLOUT_S_NONE) {
        char when[64];
        state_format_time(r->step_started_ms, when, sizeof(when));
        json_buf_str(out, when);
    } else {
        json_buf_puts(out, "null");
    }
    json_buf_puts(out, ",\"reason\":");
    if (r->reason[0])
        json_buf_str(out, r->reason);
    else
        json_buf_puts(out, "null");
    /* Beyond the contract: for people (weirctl, the status page). */
    double on_step_s = 0.0;
    if (ro.state == ROLLOUT_S_RUNNING || ro.state == ROLLOUT_S_PAUSED) {
        int64_t d = state_now_ms() - ro.step_started_ms;
        on_step_s = d > 0 ? (double)d / 1000.0 : 0.0;
    }
    json_buf_printf(out, ",\"time_on_step_s\":%.1f,\"next\":", on_step_s);
    char next[256];
    rollout_next_text(on_step_s, next, sizeof(next));
    json_buf_str(out, next);
    json_buf_puts(out, "}");
}

void release_render_metrics(struct json_buf *out)
{
    json_buf_puts(out, "# HELP weir_rollout_percent The rolled-out version's share at its "
                       "current step.\n# TYPE weir_rollout_percent gauge\n");
    if (ro.state != ROLLOUT_S_NONE) {
        char pct[16];
        util_format_bp(rollout_percent_bp(&ro), pct, sizeof(pct));
        json_buf_puts(out, "weir_rollout_percent{version=");
        json_buf_str(out, ro.plan.version);
        json_buf_printf(out, "} %s\n", pct);
    }
    /* The contract's name is in percent; the ratio twin keeps the one unit
     * convention (0..1) of every other share. */
    json_buf_puts(out, "# HELP weir_rollout_ratio The rolled-out version's share at its "
                       "current step (0..1; weir_rollout_percent / 100).\n"
                       "# TYPE weir_rollout_ratio gauge\n");
    if (ro.state != ROLLOUT_S_NONE) {
        json_buf_puts(out, "weir_rollout_ratio{version=");
        json_buf_str(out, ro.plan.version);
        json_buf_printf(out, "} %.4f\n", rollout_percent_bp(&ro) / 10000.0);
    }
    json_buf_puts(out, "# HELP weir_rollout_state The rollout's state (1 for the current "
                       "one).\n# TYPE weir_rollout_state gauge\n");
    for (int st = ROLLOUT_S_NONE; st <= ROLLOUT_S_ABORTED; st++)
        json_buf_printf(out, "weir_rollout_state{state=\"%s\"} %d\n",
                        rollout_state_name((enum rollout_state)st), st == (int)ro.state);

    json_buf_puts(out, "# HELP weir_guard_verdict The guard's verdict on a judged version "
                       "(0 hold, 1 pass, 2 fail).\n# TYPE weir_guard_verdict gauge\n");
    for (size_t i = 0; i < ARRAY_LEN(judgements); i++) {
        const struct judgement *j = &judgements[i];
        if (!j->used || !j->active)
            continue;
        json_buf_puts(out, "weir_guard_verdict{version=");
        json_buf_str(out, j->name);
        json_buf_printf(out, "} %d\n", (int)j->last.verdict);
    }
    json_buf_puts(out, "# HELP weir_guard_trips_total Times the guard acted on a failing "
                       "version.\n# TYPE weir_guard_trips_total counter\n");
    for (size_t i = 0; i < ARRAY_LEN(judgements); i++) {
        const struct judgement *j = &judgements[i];
        if (!j->used)
            continue;
        json_buf_puts(out, "weir_guard_trips_total{version=");
        json_buf_str(out, j->name);
        json_buf_printf(out, "} %" PRIu64 "\n", j->trips);
    }
}

/* ---- the fleet ------------------------------------------------------------ */

void release_set_fleet(const struct release_fleet_hooks *hooks)
{
    if (hooks) {
        fleet = *hooks;
        snprintf(replica_name, sizeof(replica_name), "%s", hooks->replica ? hooks->replica : "");
    } else {
        memset(&fleet, 0, sizeof(fleet));
        replica_name[0] = '\0';
    }
    fleet.replica = replica_name;
}

const struct rollout *release_rollout(void)
{
    return &ro;
}

/*
 * The split the state r asks for, per r->names; false for none (NONE). An
 * abort goes back to the split before the start, and a guard's abort
 * (reason "guard: ...") moves the version's share of that split to the
 * baseline, as trip_rollout() does where the guard tripped.
 */
static bool split_of(const struct rollout *r, const struct config *cfg, uint32_t *out)
{
    int v = rollout_version_index(r);
    if (v < 0 || r->step == 0 || r->step > r->plan.n_steps)
        return false;
    switch (r->state) {
    case ROLLOUT_S_NONE:
        return false;
    case ROLLOUT_S_RUNNING:
    case ROLLOUT_S_PAUSED:
        rollout_split_for(r->prior_bp, r->n_versions, v, r->plan.steps_bp[r->step - 1], out);
        return true;
    case ROLLOUT_S_PROMOTED:
        rollout_split_for(r->prior_bp, r->n_versions, v, ROLLOUT_TOTAL_BP, out);
        return true;
    case ROLLOUT_S_ABORTED:
        memcpy(out, r->prior_bp, r->n_versions * sizeof(*out));
        if (strncmp(r->reason, "guard:", 6) == 0) {
            int b = -1;
            for (unsigned i = 0; i < r->n_versions; i++) {
                if ((int)i == v)
                    continue;
                if (cfg->guard.baseline ? strcmp(r->names[i], cfg->guard.baseline) == 0
                                        : (b < 0 || r->prior_bp[i] > r->prior_bp[b]))
                    b = (int)i;
            }
            if (b >= 0) {
                out[b] += out[v];
                out[v] = 0;
            }
        }
        return true;
    }
    return false;
}

/* Is bp (per r->names) the split in force already? */
static bool split_in_force(const struct config *cfg, const struct rollout *r,
                           const uint32_t *bp)
{
    uint32_t want[CONFIG_MAX_VERSIONS] = {0};
    for (unsigned i = 0; i < r->n_versions; i++) {
        int vi = config_version_index(cfg, r->names[i]);
        if (vi < 0 && bp[i])
            return false; /* the edit says why */
        if (vi >= 0)
            want[vi] = bp[i];
    }
    return memcmp(want, cfg->split_bp, cfg->n_versions * sizeof(want[0])) == 0;
}

int release_rollout_adopt(const struct rollout *next, const char *from, char *err,
                          size_t errlen)
{
    const struct config *cfg = runtime_config();
    uint32_t bp[ROLLOUT_VERSIONS_MAX];
    bool moves = cfg && split_of(next, cfg, bp) && !split_in_force(cfg, next, bp);
    char what[384], pct[16];
    util_format_bp(rollout_percent_bp(next), pct, sizeof(pct));
    snprintf(what, sizeof(what), "fleet: rollout %s %s, step %u of %u: %s%% (from %s)",
             next->plan.version, rollout_state_name(next->state), next->step,
             next->plan.n_steps, pct, from);
    if (commit_rollout(what, next, moves ? bp : NULL, NULL, NULL, err, errlen) < 0)
        return -1;
    log_msg(next->state == ROLLOUT_S_ABORTED ? LOG_L_WARN : LOG_L_INFO, "%s", what);
    return 0;
}

void release_shutdown(void)
{
    memset(judgements, 0, sizeof(judgements));
    memset(&ro, 0, sizeof(ro));
    config_rollout_due = false;
    current_baseline[0] = '\0';
    guard_on = false;
    release_set_fleet(NULL);
}
