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
#include "guard.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "outcome.h"
#include "runtime.h"

struct judgement {
    bool used;                    /* the slot holds a version name */
    bool active;                  /* judged at the last tick */
    bool tripped;                 /* acted on a fail already */
    char name[CONFIG_NAME_MAX + 1];
    char baseline[CONFIG_NAME_MAX + 1];
    uint32_t share_bp;            /* the share the judgement started for */
    uint64_t start_ms;            /* util_now_ms() when it (re)started */
    uint64_t trips;               /* fails acted on, ever (a counter) */
    struct guard_result last;     /* the latest verdict and its numbers */
};

static struct judgement judgements[CONFIG_MAX_VERSIONS * 2];
static char current_baseline[CONFIG_NAME_MAX + 1]; /* "" when no guard */
static bool guard_on;

static struct judgement *judgement_for(const char *name)
{
    struct judgement *free_slot = NULL;
    for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++) {
        struct judgement *j = &judgements[i];
        if (j->used && strcmp(j->name, name) == 0)
            return j;
        if (!j->used && !free_slot)
            free_slot = j;
    }
    if (!free_slot) {
        /* Reuse one that is not judged now (keeps the table bounded). */
        for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++)
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
}

/* The baseline: guard.baseline, or the version with the largest share
 * (the first of equals). */
static int baseline_of(const struct config *cfg)
{
    if (cfg->guard.baseline)
        return config_version_index(cfg, cfg->guard.baseline);
    int best = -1;
    for (size_t i = 0; i < cfg->n_versions; i++)
        if (best < 0 || cfg->split_bp[i] > cfg->split_bp[best])
            best = (int)i;
    return best;
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
    runtime_cfg_set_split(cfg, bp);
    return 0;
}

static void trip(const struct config *cfg, struct judgement *j, int v, int b)
{
    j->tripped = true;
    j->trips++;
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

void release_tick(uint64_t now_ms)
{
    const struct config *cfg = runtime_config();
    for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++)
        judgements[i].active = false;
    guard_on = cfg && cfg->guard.enabled;
    current_baseline[0] = '\0';
    int b = guard_on ? baseline_of(cfg) : -1;
    if (b < 0) {
        for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++)
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
        }
        j->active = true;
        uint64_t since = 0;
        unsigned epoch = guard_epoch(gc.window_ms, j->start_ms, now_ms, &since);
        /* Never before the judgement began: earlier outcomes were judged
         * under another share (guard_epoch keeps within the window). */
        static struct outcome_sum base_sum, canary_sum; /* ~3 KiB each */
        sum_version(current_baseline, since, now_ms, &base_sum);
        sum_version(j->name, since, now_ms, &canary_sum);
        guard_judge(&gc, &base_sum, &canary_sum, epoch, &j->last);
        if (j->last.verdict == GUARD_V_FAIL && !j->tripped)
            trip(cfg, j, (int)v, b);
    }
    /* A version no longer judged starts afresh when it is judged again. */
    for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++)
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
    for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++) {
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

void release_render_metrics(struct json_buf *out)
{
    json_buf_puts(out, "# HELP weir_guard_verdict The guard's verdict on a judged version "
                       "(0 hold, 1 pass, 2 fail).\n# TYPE weir_guard_verdict gauge\n");
    for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++) {
        const struct judgement *j = &judgements[i];
        if (!j->used || !j->active)
            continue;
        json_buf_puts(out, "weir_guard_verdict{version=");
        json_buf_str(out, j->name);
        json_buf_printf(out, "} %d\n", (int)j->last.verdict);
    }
    json_buf_puts(out, "# HELP weir_guard_trips_total Times the guard acted on a failing "
                       "version.\n# TYPE weir_guard_trips_total counter\n");
    for (size_t i = 0; i < sizeof(judgements) / sizeof(judgements[0]); i++) {
        const struct judgement *j = &judgements[i];
        if (!j->used)
            continue;
        json_buf_puts(out, "weir_guard_trips_total{version=");
        json_buf_str(out, j->name);
        json_buf_printf(out, "} %" PRIu64 "\n", j->trips);
    }
}

void release_shutdown(void)
{
    memset(judgements, 0, sizeof(judgements));
    current_baseline[0] = '\0';
    guard_on = false;
}
