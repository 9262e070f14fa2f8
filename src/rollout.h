/*
 * rollout.h — the progressive rollout as a pure state machine: a plan
 * (version, increasing steps ending at 100 %, a hold per step), its state,
 * and the split each transition asks for. No I/O, no clock, no globals: the
 * caller (the control commands, the guard's tick on the main thread) passes
 * the time and the guard's verdict in, and applies the split it gets back
 * through the snapshot path (runtime_edit), which bumps the generation.
 *
 *   NONE ──start──▶ RUNNING ──hold elapsed and "pass"──▶ next step … ──▶ PROMOTED
 *                    │  ▲ pause/resume                     (last step = 100 %)
 *                    ▼  │
 *                   PAUSED      promote (any live state) ──▶ PROMOTED
 *   RUNNING/PAUSED ──abort, or "fail" with action rollback──▶ ABORTED
 *   RUNNING ──"fail" with action pause──▶ PAUSED (the split stays)
 * PROMOTED and ABORTED latch: a new `rollout start` begins a new rollout
 * (a new id). Within one rollout the step index only grows and pause_seq
 * counts pause/resume transitions, so replicas that exchange this state can
 * join it (the fleet issue): the larger step, the latched end, the later
 * pause_seq win.
 *
 * Splits are in basis points (SPLIT_TOTAL_BP = 100 %). rollout_split_for()
 * gives the rolled-out version its step's share and the other versions the
 * rest in proportion to their shares in the split in force before the
 * rollout started (exactly, by largest remainder), so a rollout from
 * v1=90,v3=10 keeps v1:v3 at 9:1.
 *
 * Any thread (pure functions over caller-owned structs).
 */
#ifndef WEIR_ROLLOUT_H
#define WEIR_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define ROLLOUT_STEPS_MAX 32
#define ROLLOUT_VERSIONS_MAX 32 /* = CONFIG_MAX_VERSIONS */
#define ROLLOUT_NAME_MAX 64     /* version name and NUL */
#define ROLLOUT_REASON_MAX 256
#define ROLLOUT_TOTAL_BP 10000u

enum rollout_state {
    ROLLOUT_S_NONE = 0, /* no rollout was started */
    ROLLOUT_S_RUNNING,  /* advancing on "pass" after each hold */
    ROLLOUT_S_PAUSED,   /* by hand or by the guard; the split stays */
    ROLLOUT_S_PROMOTED, /* the version got 100 % (latched) */
    ROLLOUT_S_ABORTED,  /* back to the prior split (latched, kept on restart) */
};

enum rollout_verdict {
    ROLLOUT_V_HOLD = 0, /* not enough evidence yet */
    ROLLOUT_V_PASS,     /* evidence that the version is not worse */
    ROLLOUT_V_FAIL,     /* evidence that it is worse */
};

struct rollout_plan {
    char version[ROLLOUT_NAME_MAX];
    uint32_t steps_bp[ROLLOUT_STEPS_MAX]; /* strictly increasing, last = 100 % */
    unsigned n_steps;
    uint32_t hold_ms; /* > 0 */
};

struct rollout {
    enum rollout_state state;
    struct rollout_plan plan;
    unsigned step;           /* 1..n_steps once started (the one in force) */
    int64_t started_ms;      /* wall clock of `rollout start` (the id) */
    int64_t step_started_ms; /* wall clock the current step began */
    uint32_t pause_seq;      /* grows with every pause and resume */
    /* The split in force before the start (config order), for abort and
     * for the other versions' proportions. */
    unsigned n_versions;
    char names[ROLLOUT_VERSIONS_MAX][ROLLOUT_NAME_MAX];
    uint32_t prior_bp[ROLLOUT_VERSIONS_MAX];
    char reason[ROLLOUT_REASON_MAX]; /* why it paused/aborted/promoted; "" if none */
    /* Who started it (the fleet's replica name; "" for a lone weir): with
     * started_ms and the plan, the rollout's id (rollout_id_cmp). */
    char starter[ROLLOUT_NAME_MAX];
};

/*
 * Parse and check a plan: steps "1,5,25,50,100" (percents, at most two
 * decimals, strictly increasing, > 0, ending at 100) and hold "2m" (> 0).
 * Returns 0, or -1 with a sentence in err (plan untouched).
 */
int rollout_plan_parse(const char *version, const char *steps, const char *hold,
                       struct rollout_plan *plan, char *err, size_t errlen) WUR;

/* Check a plan built otherwise (the config file): same rules. */
int rollout_plan_check(const struct rollout_plan *plan, char *err,
                       size_t errlen) WUR;

/*
 * Start: refused while a rollout is RUNNING or PAUSED, or when the version
 * is not among names. names/prior_bp: every version and its share now
 * (n entries, config order). On success r is RUNNING at step 1 and out_bp
 * (n entries) is the split to apply. Returns 0 or -1 (err).
 */
int rollout_start(struct rollout *r, const struct rollout_plan *plan,
                  const char (*names)[ROLLOUT_NAME_MAX], const uint32_t *prior_bp,
                  unsigned n, int64_t now_ms, uint32_t *out_bp, char *err,
                  size_t errlen) WUR;

/*
 * One look at a running rollout: with verdict PASS and the hold elapsed,
 * move to the next step (or PROMOTED after the last). Returns true when the
 * split must change (out_bp filled, n_versions entries). FAIL is not
 * handled here (see rollout_trip). Never changes a non-RUNNING rollout.
 */
bool rollout_tick(struct rollout *r, enum rollout_verdict verdict, int64_t now_ms,
                  uint32_t *out_bp);

/*
 * The guard tripped on the rolled-out version: rollback → ABORTED with
 * reason and out_bp = the prior split with the version's share moved to
 * baseline; otherwise (pause) → PAUSED, split unchanged. Returns true when
 * the split must change. Only for a RUNNING or PAUSED rollout.
 */
bool rollout_trip(struct rollout *r, bool rollback, int baseline,
                  const char *reason, int64_t now_ms, uint32_t *out_bp);

/* Pause / resume by hand. Returns 0 or -1 (err: not running / not paused). */
int rollout_pause(struct rollout *r, const char *reason, char *err, size_t errlen) WUR;
int rollout_resume(struct rollout *r, int64_t now_ms, char *err, size_t errlen) WUR;

/* Promote now: the version gets 100 % (out_bp). Returns 0 or -1 (err). */
int rollout_promote(struct rollout *r, int64_t now_ms, uint32_t *out_bp, char *err,
                    size_t errlen) WUR;

/* Abort by hand: back to the prior split (out_bp). Returns 0 or -1 (err). */
int rollout_abort(struct rollout *r, const char *reason, uint32_t *out_bp, char *err,
                  size_t errlen) WUR;

/* The version's share at the current step, in bp (0 when not started). */
uint32_t rollout_percent_bp(const struct rollout *r);

/* Index of the rolled-out version in names, or -1. */
int rollout_version_index(const struct rollout *r);

/*
 * The split that gives version v target_bp and the other versions the rest
 * in proportion to prior_bp (versions at 0 stay at 0; when all others are
 * at 0 the rest goes to them equally). out_bp sums to ROLLOUT_TOTAL_BP.
 */
void rollout_split_for(const uint32_t *prior_bp, unsigned n, int v, uint32_t target_bp,
                       uint32_t *out_bp);

/*
 * The rollout as one line of text for the state file, and back:
 * "state=S;version=V;step=N;steps=BP,..;hold=MS;started=MS;step_started=MS;
 * pause_seq=N;versions=NAME:BP,..;starter=NAME;reason=TEXT" (reason last,
 * any bytes but NUL; starter= may be missing, as in lines of older weirs). encode returns the length written (truncated like snprintf);
 * decode returns 0, or -1 for a malformed line (r untouched).
 */
size_t rollout_encode(const struct rollout *r, char *buf, size_t buflen);
int rollout_decode(const char *text, struct rollout *r) WUR;

/*
 * The total order of rollout ids: (started_ms, starter, plan), a rollout
 * that never started (NONE) below every other. <0, 0, >0 like strcmp;
 * 0 means "the same rollout". Pure.
 */
int rollout_id_cmp(const struct rollout *a, const struct rollout *b);

/*
 * The join (least upper bound) of two views of the rollout, for replicas
 * that exchange their state in any order, with repeats and losses: the one
 * with the newer id wins whole; for one id the step is the larger, ABORTED
 * and PROMOTED latch (ABORTED over PROMOTED: the safe end), pause_seq is
 * the larger and decides paused (odd) or running (even), and the fields
 * that go with a step (step_started_ms, reason) come from the view furthest
 * along (step, then pause_seq; ties: the earlier step_started_ms, the
 * smaller reason). Commutative, associative, idempotent; an ABORTED
 * rollout is never made live again by a join (only a newer id replaces
 * it). out may alias a or b. Pure.
 */
void rollout_join(const struct rollout *a, const struct rollout *b, struct rollout *out);

/* "none", "running", "paused", "promoted", "aborted". */
const char *rollout_state_name(enum rollout_state s);

#endif
