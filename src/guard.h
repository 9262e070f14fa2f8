/*
 * guard.h — the release guard's judgement: is the canary worse than the
 * baseline? A pure function over the merged outcome sums of both versions
 * (outcome.h), unit tested with fixed and seeded sequences. The maths, and
 * why a fixed-sample test re-run every second would not do, are in the
 * design comment of guard.c.
 *
 * Verdicts (INTERFACE.md, "Progressive rollout and the guard"):
 *   hold  not enough evidence either way, and always while either side has
 *         fewer than min_requests in the span judged ("no data is never a
 *         pass");
 *   pass  with confidence, the canary's error rate is less than max_increase
 *         points above the baseline's AND its latency quantile is within
 *         max_ratio x the baseline's + floor;
 *   fail  with confidence, one of the two is violated.
 *
 * How the caller drives it (one judgement = one canary against one baseline
 * from a start instant, e.g. a rollout step or a hand-set split): every check
 * (each tick) fill a struct guard_input from the outcome windows and call
 * guard_judge(). The probability that any check of the judgement, however
 * long it runs and however often it checks, says "fail" while the canary is
 * in fact within both margins is at most false_alarm; the same bound holds
 * for a wrong "pass" (for outcomes independent within a judgement; see
 * guard.c).
 *
 * Does not own: the outcome windows, what happens on a verdict (rollout,
 * rollback), which versions are judged.
 */
#ifndef WEIR_GUARD_H
#define WEIR_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "outcome.h"

enum guard_verdict {
    GUARD_V_HOLD = 0, /* not enough evidence yet (the metric's 0) */
    GUARD_V_PASS = 1, /* the canary is not worse than the margins allow */
    GUARD_V_FAIL = 2, /* the canary is worse than the margins allow */
};

struct guard_config {
    uint32_t window_ms;       /* outcomes older than this are not judged */
    uint32_t min_requests;    /* per side; below it: hold */
    uint32_t max_increase_bp; /* errors: canary rate - baseline's, basis points (1 % = 100) */
    uint32_t quantile_bp;     /* latency quantile, basis points: p99 = 9900 (0 < q < 10000) */
    double max_ratio;         /* canary q <= max_ratio x baseline q + floor (> 0) */
    uint32_t floor_us;        /* the floor of that limit */
    uint32_t false_alarm_bp;  /* bound on P(a wrong fail) over a judgement (0 < a < 10000) */
};

#define GUARD_REASON_MAX 256

/* A verdict and the numbers it judged (rates are fractions, 0.01 = 1 %). */
struct guard_result {
    enum guard_verdict verdict;
    enum guard_verdict errors_verdict;                        /* the error test alone */
    enum guard_verdict latency_verdict;                       /* the latency test alone */
    uint64_t requests, errors;                                /* canary, in its slots (the last window) */
    uint64_t baseline_requests, baseline_errors;              /* baseline, in its span */
    double error_rate, baseline_error_rate;                   /* point estimates over those */
    double diff_low, diff_high;                               /* confidence bounds of canary - baseline error rate
                                                                 since the judgement began (the pass test) */
    double latency_ms, baseline_latency_ms;                   /* quantile estimates (bucket midpoints) */
    double latency_low_ms, latency_high_ms;                   /* confidence bounds of the canary's quantile
                                                                (high: INFINITY while unbounded) */
    double baseline_latency_low_ms, baseline_latency_high_ms; /* same, baseline */
    double alpha;                                             /* error probability of each pass bound */
    double errors_evidence;                                   /* log of the error test's e-value for "fail" */
    double latency_evidence;                                  /* log of the latency test's (natural logs) */
    double errors_threshold;                                  /* each fails at or above its threshold */
    double latency_threshold;
    double fail_span_s;                           /* the span (s) of the canary slots that weigh most in a fail */
    uint64_t requests_all, baseline_requests_all; /* since the judgement began (pass) */
    bool latency_common;                          /* the latency evidence was also on the baseline: no fail */
    double baseline_slow;                         /* the baseline's share above the fail limit in those slots */
    char reason[GUARD_REASON_MAX];                /* one line, for people: what decided, with numbers */
};

/*
 * The baseline's span and its epoch for a check at now_ms of a judgement
 * started at start_ms (both on the clock the outcome windows use): sum the
 * baseline from *since_ms to now_ms into guard_input.baseline_span and pass
 * the returned epoch. Epochs are window_ms / 2 long; epoch k > 0 judges the
 * outcomes since the start of epoch k - 1, so a span is between half a
 * window and a window long. Pure.
 */
unsigned guard_epoch(uint32_t window_ms, uint64_t start_ms, uint64_t now_ms, uint64_t *since_ms);

#define GUARD_SLOTS_MAX 64 /* canary time slots a check may pass (the ring's size) */

/*
 * What one check judges (all borrowed). The fail tests look at the last
 * window: the baseline over guard_epoch()'s span and the canary slot by slot
 * (each slot a possible start of a fault); the pass tests at everything
 * since the judgement began.
 */
struct guard_input {
    const struct outcome_sum *baseline_all;   /* since the judgement began */
    const struct outcome_sum *canary_all;     /* since the judgement began */
    const struct outcome_sum *baseline_span;  /* guard_epoch()'s span */
    unsigned epoch;                           /* guard_epoch()'s epoch */
    const struct outcome_sum *baseline_slots; /* the baseline in the same n_slots slots
                                                 (NULL: no common-mode check, see guard.c) */
    const struct outcome_sum *canary_slots;   /* n_slots time slots, oldest first, the
                                                 newest (partial) one last; at most a window */
    unsigned n_slots;                         /* 0 .. GUARD_SLOTS_MAX */
    uint64_t first_slot;                      /* canary_slots[0]'s slot number counted from the judgement's
                                                 first slot (0) */
};

/*
 * Judge canary against baseline. Fills *out (verdict, numbers, reason).
 * cfg must be valid (0 < quantile_bp, false_alarm_bp < 10000; asserted).
 * Pure; any thread. The verdict values equal enum rollout_verdict's.
 */
void guard_judge(const struct guard_config *cfg, const struct guard_input *in,
                 struct guard_result *out);

/*
 * The time-uniform confidence interval of a Bernoulli rate after `errors` of
 * `n` (beta-binomial mixture, see guard.c) at error probability alpha:
 * [*low, *high]. n = 0 gives [0, 1]. Pure; exposed for tests.
 */
void guard_rate_bounds(uint64_t errors, uint64_t n, double alpha, double *low, double *high);

/*
 * The time-uniform confidence set of N = #{samples <= the true q-quantile}
 * after n samples, at error probability alpha: N in [*low, *high], so the
 * quantile lies between the low-th and the (high+1)-th smallest sample.
 * Pure; exposed for tests.
 */
void guard_rank_bounds(uint64_t n, double q, double alpha, uint64_t *low, uint64_t *high);

/* The human name of a verdict: "hold", "pass", "fail". */
const char *guard_verdict_name(enum guard_verdict v);

#endif
