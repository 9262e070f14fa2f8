/*
 * test_guard.c — the release guard's judgement on fixed and seeded
 * sequences: no false alarms beyond the bound under continuous monitoring
 * (and a fixed-sample test on the same traffic shown to exceed it), detection
 * of an error increase and of a latency regression, sparse traffic that
 * holds and never passes, forgetting a fault that ended, the confidence
 * bounds themselves.
 *
 * Traffic is simulated per second: baseline and canary requests, each an
 * error with its version's rate, latencies drawn from a fixed table of
 * lognormal samples (median 20 ms, sigma 0.3: p99 = 2 x median). Sums follow guard_epoch()'s
 * spans exactly (the outcome windows themselves are tested in test_outcome).
 * Measured numbers are printed as TAP comments.
 */
#include <math.h>
#include <stdlib.h>

#include "guard.h"
#include "tap.h"

static uint64_t rng_state;

static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

#define LAT_TABLE 4096
static uint64_t lat_us[LAT_TABLE]; /* the latency distribution both versions share */

static void lat_table_init(double sigma)
{
    rng_state = 1234;
    for (int i = 0; i < LAT_TABLE; i++) {
        double u1 = rng_unit(), u2 = rng_unit();
        if (u1 < 1e-300)
            u1 = 1e-300;
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        lat_us[i] = (uint64_t)(20000.0 * exp(sigma * z));
    }
}

/* One version's outcomes as the guard sees them: over guard_epoch()'s span
 * (the current epoch and the one before), since the start, and per 1 s
 * time slot (a ring, as the outcome windows). */
#define SLOT_MS 1000u
struct side {
    struct outcome_sum total; /* prev + cur: the baseline's span */
    struct outcome_sum prev;  /* outcomes of epoch k - 1 */
    struct outcome_sum cur;   /* outcomes of epoch k */
    struct outcome_sum all;   /* since the start */
    struct outcome_sum slots[GUARD_SLOTS_MAX];
    uint64_t slot_tag[GUARD_SLOTS_MAX]; /* slot number + 1 held, 0 = none */
    uint64_t now_ms;                    /* when the next outcomes happen */
    bool exact;                         /* errors as weir-pod's --error-rate: the k-th request
                                           fails iff floor(k p) > floor((k - 1) p) */
    uint64_t k;                         /* requests so far (exact) */
};

static void side_reset(struct side *s)
{
    bool exact = s->exact;
    memset(s, 0, sizeof(*s));
    s->exact = exact;
}

/* Entering the next epoch: forget epoch k - 2. */
static void side_next_epoch(struct side *s)
{
    CHECK(outcome_sum_sub(&s->total, &s->prev) == 0);
    s->prev = s->cur;
    outcome_sum_clear(&s->cur);
}

static void side_record(struct side *s, bool err, uint64_t latency_us)
{
    uint32_t b = outcome_bucket(latency_us);
    uint64_t tag = s->now_ms / SLOT_MS + 1u;
    struct outcome_sum *sl = &s->slots[tag % GUARD_SLOTS_MAX];
    if (s->slot_tag[tag % GUARD_SLOTS_MAX] != tag) {
        outcome_sum_clear(sl);
        s->slot_tag[tag % GUARD_SLOTS_MAX] = tag;
    }
    struct outcome_sum *to[] = {&s->cur, &s->total, &s->all, sl};
    for (size_t i = 0; i < ARRAY_LEN(to); i++) {
        to[i]->requests++;
        to[i]->latency[b]++;
        to[i]->errors += err;
    }
}

/* Judge canary against baseline at now_ms of a judgement started at 0. */
static void judge_at(const struct guard_config *cfg, struct side *base, struct side *can,
                     unsigned epoch, uint64_t now_ms, struct guard_result *r)
{
    static struct outcome_sum slots[GUARD_SLOTS_MAX], base_slots[GUARD_SLOTS_MAX];
    uint64_t first = outcome_window_since_ms(SLOT_MS, now_ms, cfg->window_ms);
    unsigned n = 0;
    for (uint64_t t = first; t <= now_ms; t += SLOT_MS, n++) {
        uint64_t tag = t / SLOT_MS + 1u;
        if (can->slot_tag[tag % GUARD_SLOTS_MAX] == tag)
            slots[n] = can->slots[tag % GUARD_SLOTS_MAX];
        else
            outcome_sum_clear(&slots[n]);
        if (base->slot_tag[tag % GUARD_SLOTS_MAX] == tag)
            base_slots[n] = base->slots[tag % GUARD_SLOTS_MAX];
        else
            outcome_sum_clear(&base_slots[n]);
    }
    struct guard_input in = {
        .baseline_all = &base->all,
        .canary_all = &can->all,
        .baseline_span = &base->total,
        .epoch = epoch,
        .baseline_slots = base_slots,
        .canary_slots = slots,
        .n_slots = n,
        .first_slot = first / SLOT_MS,
    };
    guard_judge(cfg, &in, r);
}

/* n requests of one version: error rate p, latency scale x (+ add_us). */
static void side_traffic(struct side *s, unsigned n, double p, double scale, uint64_t add_us)
{
    uint64_t thr = (uint64_t)(p * 18446744073709551616.0);
    if (p >= 1.0)
        thr = UINT64_MAX;
    for (unsigned i = 0; i < n; i++) {
        bool err = rng_next() < thr;
        if (s->exact) {
            s->k++;
            err = floor((double)s->k * p) > floor((double)(s->k - 1u) * p);
        }
        uint64_t lat = lat_us[rng_next() % LAT_TABLE];
        side_record(s, err, (uint64_t)((double)lat * scale) + add_us);
    }
}

/* Requests per check that are not whole numbers (5 req/s): carry. */
static unsigned take(double rate, double *carry)
{
    *carry += rate;
    unsigned n = (unsigned)*carry;
    *carry -= n;
    return n;
}

static const struct guard_config defaults = {
    .window_ms = 30000,
    .min_requests = 100,
    .max_increase_bp = 100, /* 1 % */
    .quantile_bp = 9900,    /* p99 */
    .max_ratio = 1.5,
    .floor_us = 5000,
    .false_alarm_bp = 100, /* 1 % */
};

struct sim {
    struct guard_config cfg;
    double base_rps, canary_rps; /* per second */
    double base_err, canary_err;
    double canary_scale;
    uint64_t canary_add_us;
    unsigned checks;   /* one per second */
    unsigned step_ms;  /* time between checks */
    uint64_t fault_ms; /* the canary is as the baseline before this instant */
    uint64_t hold_ms;  /* > 0: a rollout step: it ends at the first pass at or after this */
};

struct sim_out {
    int first_fail;          /* check index, -1 if none */
    int first_pass;          /* check index, -1 if none */
    uint64_t canary_at_fail; /* canary requests judged when it failed */
    uint64_t canary_seen;    /* canary requests sent after the fault, before the fail */
    uint64_t fail_after_ms;  /* time from the fault to the fail */
    int naive_alarm;         /* a fixed-sample z-test re-run each check alarmed */
    int pass_below_min;
    struct guard_result last;
};

/* One judgement from t = 0; traffic arrives in steps of step_ms and the
 * guard checks after each. */
static void sim_run(const struct sim *sim, struct side *base, struct side *can,
                    struct sim_out *o)
{
    side_reset(base);
    side_reset(can);
    memset(o, 0, sizeof(*o));
    o->first_fail = o->first_pass = -1;
    unsigned epoch = 0;
    double cb = 0, cc = 0, per = sim->step_ms / 1000.0;
    uint64_t seen = 0;
    struct guard_result r;
    for (unsigned i = 0; i < sim->checks; i++) {
        uint64_t now = (uint64_t)(i + 1) * sim->step_ms, since;
        unsigned k = guard_epoch(sim->cfg.window_ms, 0, now, &since);
        while (epoch < k) {
            side_next_epoch(base);
            side_next_epoch(can);
            epoch++;
        }
        unsigned nc = take(sim->canary_rps * per, &cc);
        base->now_ms = can->now_ms = now - 1;
        side_traffic(base, take(sim->base_rps * per, &cb), sim->base_err, 1.0, 0);
        if (now <= sim->fault_ms) {
            side_traffic(can, nc, sim->base_err, 1.0, 0);
        } else {
            side_traffic(can, nc, sim->canary_err, sim->canary_scale, sim->canary_add_us);
            seen += nc;
        }
        judge_at(&sim->cfg, base, can, epoch, now - 1, &r);
        if (r.verdict == GUARD_V_PASS && o->first_pass < 0 &&
            (sim->hold_ms == 0 || now >= sim->hold_ms))
            o->first_pass = (int)i;
        if (r.verdict == GUARD_V_PASS &&
            (r.requests < sim->cfg.min_requests || r.baseline_requests < sim->cfg.min_requests))
            o->pass_below_min = 1;
        if (r.verdict == GUARD_V_FAIL && o->first_fail < 0) {
            o->first_fail = (int)i;
            o->canary_at_fail = r.requests;
            o->canary_seen = seen;
            o->fail_after_ms = now > sim->fault_ms ? now - sim->fault_ms : 0;
            o->last = r;
        }
        /* The invalid alternative: a one-sided two-proportion z-test at the
         * same level, on the same sums, re-run every check. */
        double nb = (double)base->total.requests, nc2 = (double)can->total.requests;
        if (nb >= sim->cfg.min_requests && nc2 >= sim->cfg.min_requests) {
            double pb = base->total.errors / nb, pc = can->total.errors / nc2;
            double pp = (base->total.errors + can->total.errors) / (nb + nc2);
            double se = sqrt(pp * (1 - pp) * (1 / nb + 1 / nc2));
            double z = se > 0 ? (pc - pb - sim->cfg.max_increase_bp / 10000.0) / se : 0;
            if (z > 2.5758) /* one-sided 0.5 %: half of false_alarm, as ours */
                o->naive_alarm = 1;
        }
        if (o->first_fail >= 0)
            break; /* judged: the rest of the run cannot undo it */
        if (sim->hold_ms && o->first_pass >= 0)
            break; /* the step is over */
    }
    if (o->first_fail < 0)
        o->last = r;
}

static struct side base_side, canary_side;

static void test_bounds(void)
{
    double lo, hi;
    guard_rate_bounds(0, 0, 0.01, &lo, &hi);
    ok(lo == 0.0 && hi == 1.0, "no data: the rate is anywhere in [0, 1]");
    guard_rate_bounds(10, 1000, 0.0025, &lo, &hi);
    ok(lo > 0.0 && lo < 0.01 && hi > 0.01 && hi < 0.05,
       "10 errors in 1000: [%.4f, %.4f] holds 1 %%", lo, hi);
    double lo2, hi2;
    guard_rate_bounds(100, 10000, 0.0025, &lo2, &hi2);
    ok(lo2 > lo && hi2 < hi, "ten times the data narrows it: [%.4f, %.4f]", lo2, hi2);
    guard_rate_bounds(0, 1000, 0.0025, &lo, &hi);
    ok(lo == 0.0 && hi > 0.0 && hi < 0.01, "no error in 1000: at most %.4f", hi);
    uint64_t l, u;
    guard_rank_bounds(1000, 0.99, 0.0025, &l, &u);
    ok(l < 990 && u >= 990 && u < 1000, "p99 of 1000: rank in [%llu, %llu]", (unsigned long long)l,
       (unsigned long long)u);
    guard_rank_bounds(100, 0.99, 0.0025, &l, &u);
    is_int(u, 100, "p99 of 100 has no upper bound yet");

    /* Coverage at fixed sample sizes (a weaker property than time-uniform,
     * but a wrong formula fails it): 10,000 samples of 2,000 at p = 2 %. */
    rng_state = 99;
    int miss = 0;
    uint64_t thr = (uint64_t)(0.02 * 18446744073709551616.0);
    for (int r = 0; r < 10000; r++) {
        uint64_t s = 0;
        for (int i = 0; i < 2000; i++)
            s += rng_next() < thr;
        guard_rate_bounds(s, 2000, 0.05, &lo, &hi);
        miss += !(lo <= 0.02 && 0.02 <= hi);
    }
    ok(miss <= 500, "the 95 %% sequence misses p = 2 %% in %d of 10000 fixed samples", miss);
}

/* A/A: equal versions, checked every second for 10 minutes, never fail more
 * often than false_alarm. The margins are set to 0 (any increase, any
 * slowdown) so both tests sit exactly on their null: the hardest case. */
static void test_false_alarms(void)
{
    enum { RUNS = 400 };
    struct sim sim = {
        .cfg = defaults,
        .base_rps = 95,
        .canary_rps = 25,
        .base_err = 0.02,
        .canary_err = 0.02,
        .canary_scale = 1.0,
        .checks = 600,
        .step_ms = 1000,
    };
    sim.cfg.max_increase_bp = 0;
    sim.cfg.max_ratio = 1.0;
    sim.cfg.floor_us = 0;
    struct sim_out o;
    int fails = 0, naive = 0, err_fails = 0;
    rng_state = 2026;
    for (int r = 0; r < RUNS; r++) {
        sim_run(&sim, &base_side, &canary_side, &o);
        fails += o.first_fail >= 0;
        err_fails += o.first_fail >= 0 && o.last.errors_verdict == GUARD_V_FAIL;
        naive += o.naive_alarm;
    }
    double bound = sim.cfg.false_alarm_bp / 10000.0;
    printf("# A/A, margins 0: %d of %d runs x 600 checks failed (%.2f %%, bound %.2f %%; %d on "
           "errors); a fixed-sample z-test re-run each second: %d (%.1f %%)\n",
           fails, RUNS, 100.0 * fails / RUNS, 100.0 * bound, err_fails, naive,
           100.0 * naive / RUNS);
    ok(fails <= (int)(2.0 * bound * RUNS), "A/A at the null: %d false fails in %d runs of 600 "
                                           "checks (bound %.0f)",
       fails, RUNS, bound * RUNS);
    ok(naive > (int)(3.0 * bound * RUNS), "the same traffic makes a re-run fixed-sample test "
                                          "alarm in %d runs: the simulation can tell",
       naive);

    /* The documented defaults (1 point, 1.5 x p99 + 5 ms): no fails. Passing
     * needs an upper bound on the canary's p99, i.e. enough of its tail:
     * some 1,500 canary requests in a span (0.5-1 window). */
    sim.cfg = defaults;
    sim.base_err = sim.canary_err = 0.01;
    const double shares[] = {5, 25, 50};
    for (int j = 0; j < 3; j++) {
        sim.canary_rps = 10 * shares[j];
        sim.base_rps = 1000 - sim.canary_rps;
        int passes = 0, fails2 = 0, late = 0;
        for (int r = 0; r < 20; r++) {
            sim.checks = 300;
            sim_run(&sim, &base_side, &canary_side, &o);
            fails2 += o.first_fail >= 0;
            passes += o.first_pass >= 0;
            if (o.first_pass > late)
                late = o.first_pass;
        }
        printf("# A/A defaults, %.0f %% canary of 1000 req/s: %d of 20 runs pass within 5 min",
               shares[j], passes);
        if (passes)
            printf(" (the latest after %d s)", late + 1);
        printf(", %d fail\n", fails2);
        is_int(fails2, 0, "A/A with the defaults, %.0f %% canary: no fail in 20 runs", shares[j]);
        if (shares[j] >= 25)
            is_int(passes, 20, "and every run passes (the latest after %d s)", late + 1);
    }
}

/* A canary exactly on a margin (errors: baseline + 1 point; latency: every
 * request 1.5 x + 5 ms, so its p99 is 1.5 x the baseline's + 5 ms) breaks
 * it as little as possible: a pass then is a wrong pass, which each test's
 * two sequences (alpha / 2 each) bound by alpha. 50 % canary, 1000 req/s,
 * 5 minutes checked every second, 50 runs each. */
static void test_wrong_pass(void)
{
    enum { RUNS = 50 };
    struct sim sim = {
        .cfg = defaults,
        .base_rps = 500,
        .canary_rps = 500,
        .base_err = 0.01,
        .canary_err = 0.02,
        .canary_scale = 1.0,
        .checks = 300,
        .step_ms = 1000,
    };
    struct sim_out o;
    int err_pass = 0, lat_pass = 0;
    rng_state = 31;
    for (int r = 0; r < RUNS; r++) {
        sim_run(&sim, &base_side, &canary_side, &o);
        err_pass += o.first_pass >= 0;
    }
    sim.canary_err = 0.01;
    sim.canary_scale = 1.5;
    sim.canary_add_us = 5000;
    for (int r = 0; r < RUNS; r++) {
        sim_run(&sim, &base_side, &canary_side, &o);
        lat_pass += o.first_pass >= 0;
    }
    double bound = defaults.false_alarm_bp / 10000.0 * RUNS;
    printf("# on the margin, 50 %% canary, 5 min: %d of %d runs pass on errors + 1 point, %d on "
           "p99 x 1.5 + 5 ms (bound %.1f each)\n",
           err_pass, RUNS, lat_pass, bound);
    ok(err_pass <= 2 * bound, "a canary on the error margin passes in %d of %d runs", err_pass,
       RUNS);
    ok(lat_pass <= 2 * bound, "a canary on the latency margin passes in %d of %d runs", lat_pass,
       RUNS);
}

/* Sort runs' numbers ascending (insertion sort: few runs). */
static void sort_u64(uint64_t *v, int n);

/*
 * The benchmark's A/A rollouts (bench/guard_bench.py --only aa), 60 of
 * them: 3,000 req/s, steps 1, 5, 25, 50 % (100 ends the rollout), hold
 * 10 s, checks every 100 ms, the guard's defaults, both versions alike
 * (no errors, the same latencies). A step is a judgement of its own (the
 * release restarts it when the share changes); it advances on the first
 * pass after the hold. Counts the fails over all the judgements and the
 * time each step took; a step that has not passed in 5 min is a miss.
 */
static void test_aa_rollouts(void)
{
    enum {
        ROLLOUTS = 60,
        STEPS = 4,
        MAX_CHECKS = 3000
    };
    static const double share[STEPS] = {1, 5, 25, 50};
    uint64_t took[STEPS][ROLLOUTS];
    int fails = 0, missed = 0, promoted = 0, judged = 0;
    for (int st = 0; st < STEPS; st++)
        for (int r = 0; r < ROLLOUTS; r++)
            took[st][r] = UINT64_MAX; /* not reached */
    rng_state = 4242;
    for (int r = 0; r < ROLLOUTS; r++) {
        bool ok_all = true;
        for (int st = 0; st < STEPS; st++) {
            struct sim sim = {
                .cfg = defaults,
                .base_rps = 3000 * (1 - share[st] / 100),
                .canary_rps = 3000 * share[st] / 100,
                .canary_scale = 1.0,
                .checks = MAX_CHECKS,
                .step_ms = 100,
                .hold_ms = 10000,
            };
            struct sim_out o;
            sim_run(&sim, &base_side, &canary_side, &o);
            judged++;
            if (o.first_fail >= 0) {
                fails++;
                ok_all = false;
                break;
            }
            if (o.first_pass < 0) {
                missed++;
                ok_all = false;
                break;
            }
            took[st][r] = (uint64_t)(o.first_pass + 1) * sim.step_ms;
        }
        promoted += ok_all;
    }
    printf("# A/A rollouts 1,5,25,50,100 hold 10 s at 3000 req/s: %d of %d promoted, %d fails in "
           "%d judgements (bound: 1 %% of each), %d steps not passed in 5 min;",
           promoted, ROLLOUTS, fails, judged, missed);
    for (int st = 0; st < STEPS; st++) {
        sort_u64(took[st], ROLLOUTS);
        printf(" step %d (%g %%) %.1f / %.1f s", st + 1, share[st],
               took[st][ROLLOUTS / 2] / 1000.0, took[st][ROLLOUTS - 1] / 1000.0);
    }
    printf(" (median / max)\n");
    ok(fails <= 4, "A/A rollouts: %d false fails in %d rollouts", fails, ROLLOUTS);
    is_int(promoted, ROLLOUTS, "every A/A rollout promotes");
}

static void sort_u64(uint64_t *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* 1000 req/s, 5 % canary, checked every 100 ms; the canary goes from
 * base_err to canary_err at fault_ms into the judgement. Reports the time
 * from the fault to the fail (median, p90, max over RUNS) in *p50 .. *max
 * (ms), and how many runs missed (no fail within 60 s of the fault) or
 * failed on the wrong test. */
static void detect_errors(uint32_t margin_bp, double canary_rps, double base_err,
                          double canary_err, uint64_t fault_ms, uint64_t *p50, uint64_t *p90, uint64_t *max,
                          int *missed_out)
{
    enum { RUNS = 100 };
    struct sim sim = {
        .cfg = defaults,
        .base_rps = 1000 - canary_rps,
        .canary_rps = canary_rps,
        .base_err = base_err,
        .canary_err = canary_err,
        .canary_scale = 1.0,
        .checks = (unsigned)(600 + fault_ms / 100),
        .step_ms = 100,
        .fault_ms = fault_ms,
    };
    sim.cfg.max_increase_bp = margin_bp;
    struct sim_out o;
    uint64_t at[RUNS], reqs[RUNS];
    int missed = 0, wrong = 0, early = 0;
    for (int r = 0; r < RUNS; r++) {
        sim_run(&sim, &base_side, &canary_side, &o);
        if (o.first_fail < 0) {
            missed++;
            at[r] = reqs[r] = UINT64_MAX;
            continue;
        }
        wrong += o.last.errors_verdict != GUARD_V_FAIL;
        early += o.canary_seen == 0; /* a fail before the fault: a false alarm */
        at[r] = o.fail_after_ms;
        reqs[r] = o.canary_seen;
    }
    sort_u64(at, RUNS);
    sort_u64(reqs, RUNS);
    printf("# errors %.1f %% -> %.1f %% at %.1f s, margin %.2f points, %.0f %% canary of 1000 "
           "req/s: fails %.1f / %.1f / %.1f s after the fault (median / p90 / max; %llu / %llu "
           "canary requests), %d missed\n",
           100 * base_err, 100 * canary_err, fault_ms / 1000.0, margin_bp / 100.0,
           canary_rps / 10.0, at[RUNS / 2] / 1000.0, at[RUNS * 9 / 10] / 1000.0, at[RUNS - 1] / 1000.0,
           (unsigned long long)reqs[RUNS / 2], (unsigned long long)reqs[RUNS * 9 / 10], missed);
    is_int(wrong + early, 0, "%.1f %% -> %.1f %%, margin %.2f: every fail is on the error test, "
                             "after the fault",
           100 * base_err, 100 * canary_err, margin_bp / 100.0);
    *p50 = at[RUNS / 2];
    *p90 = at[RUNS * 9 / 10];
    *max = at[RUNS - 1];
    *missed_out = missed;
}

static void test_detect_errors(void)
{
    uint64_t p50, p90, max;
    int missed;
    rng_state = 5;
    detect_errors(100, 50, 0.01, 0.06, 0, &p50, &p90, &max, &missed);
    is_int(missed, 0, "1 %% -> 6 %% errors: every run fails within 60 s");
    ok(p90 <= 30000, "1 %% -> 6 %%: 9 in 10 runs fail within 30 s (%.1f s)", p90 / 1000.0);
    detect_errors(100, 50, 0.0, 0.05, 0, &p50, &p90, &max, &missed);
    is_int(missed, 0, "0 %% -> 5 %% errors from the start: every run fails within 60 s");
    ok(p90 <= 15000, "0 %% -> 5 %%: 9 in 10 runs fail within 15 s (%.1f s)", p90 / 1000.0);
    /* A fault in the middle of a step: the good outcomes before it do not
     * slow the fail down much (the evidence starts at the fault's slot). */
    uint64_t mid50;
    detect_errors(100, 50, 0.0, 0.05, 10000, &mid50, &p90, &max, &missed);
    is_int(missed, 0, "0 %% -> 5 %% at 10 s into the step: every run fails");
    ok(mid50 <= p50 + 3000, "a fault 10 s into the step fails within 3 s of one from the start "
                            "(median %.1f vs %.1f s)",
       mid50 / 1000.0, p50 / 1000.0);
    /* The benchmark's fault: not on a slot boundary (half a slot of good
     * outcomes in the fault's slot). */
    uint64_t off50;
    detect_errors(100, 50, 0.0, 0.05, 10500, &off50, &p90, &max, &missed);
    is_int(missed, 0, "0 %% -> 5 %% at 10.5 s into the step: every run fails");
    /* The benchmark's settings: a 0.2-point margin. */
    detect_errors(20, 50, 0.0, 0.05, 10000, &p50, &p90, &max, &missed);
    is_int(missed, 0, "margin 0.2 points, 0 %% -> 5 %% at 10 s: every run fails");
    ok(p50 <= 3000, "and the median is within 3 s of the fault (%.1f s)", p50 / 1000.0);
    /* +0.5 points is below what a 5 % canary (50 req/s) can show within
     * 30 s at this confidence (some 7 errors in 1,500 requests); at 25 %
     * with a 0.1-point margin it is. */
    detect_errors(10, 50, 0.0, 0.005, 10000, &p50, &p90, &max, &missed);
    detect_errors(10, 250, 0.0, 0.005, 10000, &p50, &p90, &max, &missed);
    ok(missed <= 10, "margin 0.1 points, 0 %% -> 0.5 %% on a 25 %% canary: 9 in 10 runs fail "
                     "(%d missed)",
       missed);
    ok(p50 <= 30000, "half of them within 30 s of the fault (%.1f s)", p50 / 1000.0);
}

/* The benchmark's fault exactly (bench/guard_bench.py --only errors): 1,000
 * req/s, 5 % canary, v2 from 0 % to weir-pod's exact 5 % pattern 10 s into
 * the step, at ten offsets within a slot (the benchmark's fault falls
 * anywhere in one), the default 1-point margin. Random routing, so runs
 * still differ. Prints the time from the fault to the fail. */
static void test_detect_pattern(void)
{
    enum { RUNS = 50 };
    struct sim sim = {
        .cfg = defaults,
        .base_rps = 950,
        .canary_rps = 50,
        .base_err = 0.0,
        .canary_err = 0.05,
        .canary_scale = 1.0,
        .checks = 300,
        .step_ms = 100,
    };
    struct sim_out o;
    uint64_t at[RUNS], failed[RUNS];
    int missed = 0;
    rng_state = 77;
    canary_side.exact = true;
    for (int r = 0; r < RUNS; r++) {
        sim.fault_ms = 10000u + 100u * (unsigned)(r % 10);
        canary_side.k = 0;
        sim_run(&sim, &base_side, &canary_side, &o);
        if (o.first_fail < 0) {
            missed++;
            at[r] = failed[r] = UINT64_MAX;
            continue;
        }
        at[r] = o.fail_after_ms;
        failed[r] = o.canary_seen / 20u; /* every 20th canary request after the fault */
    }
    canary_side.exact = false;
    sort_u64(at, RUNS);
    sort_u64(failed, RUNS);
    printf("# the benchmark's fault (0 %% -> exactly 5 %% at 10.0-10.9 s, margin 1 point, 5 %% "
           "canary of 1000 req/s): fails %.1f / %.1f / %.1f s after the fault (median / p90 / "
           "max), %llu / %llu failed canary requests (median / max)\n",
           at[RUNS / 2] / 1000.0, at[RUNS * 9 / 10] / 1000.0, at[RUNS - 1] / 1000.0,
           (unsigned long long)failed[RUNS / 2], (unsigned long long)failed[RUNS - 1]);
    is_int(missed, 0, "the benchmark's fault: every run fails");
    ok(failed[RUNS - 1] < 20, "with fewer than 20 failed canary requests (worst %llu)",
       (unsigned long long)failed[RUNS - 1]);
}

/* A stall of the host: for the first 200 ms of second 20 every request of
 * both versions takes +100 ms (a 5 % canary of 1000 req/s, checked every
 * 100 ms). Seen on the canary alone it fails; seen on both it holds, and
 * says why. */
static void test_common_mode(void)
{
    for (int both = 0; both <= 1; both++) {
        struct guard_result r;
        side_reset(&base_side);
        side_reset(&canary_side);
        rng_state = 21;
        int failed = 0, said = 0;
        for (unsigned t = 100; t <= 22000; t += 100) {
            bool stall = t > 20000 && t <= 20200;
            base_side.now_ms = canary_side.now_ms = t - 1;
            side_traffic(&base_side, 95, 0.0, 1.0, stall && both ? 100000 : 0);
            side_traffic(&canary_side, 5, 0.0, 1.0, stall ? 100000 : 0);
            /* epoch 0 throughout: the baseline span is the whole 22 s run */
            judge_at(&defaults, &base_side, &canary_side, 0, t - 1, &r);
            failed |= r.verdict == GUARD_V_FAIL;
            said |= strstr(r.reason, "baseline as slow then") != NULL;
        }
        if (both) {
            is_int(failed, 0, "a 200 ms stall of both versions: no fail");
            ok(said, "and the hold says the baseline was as slow");
        } else {
            is_int(failed, 1, "the same 200 ms of +100 ms on the canary alone: fail");
        }
    }
}

/* Canary requests until a latency fail; -1 if none within 60 s. */
static void latency_runs(double canary_rps, double scale, uint64_t add_us, uint64_t fault_ms,
                         int runs,
                         int *missed, int *wrong, double *mean, uint64_t *worst,
                         struct guard_result *last)
{
    struct sim sim = {
        .cfg = defaults,
        .base_rps = 1000 - canary_rps,
        .canary_rps = canary_rps,
        .base_err = 0.01,
        .canary_err = 0.01,
        .canary_scale = scale,
        .canary_add_us = add_us,
        .checks = (unsigned)(600 + fault_ms / 100),
        .step_ms = 100,
        .fault_ms = fault_ms,
    };
    struct sim_out o;
    uint64_t total = 0;
    *missed = *wrong = 0;
    *worst = 0;
    for (int r = 0; r < runs; r++) {
        sim_run(&sim, &base_side, &canary_side, &o);
        *last = o.last;
        if (o.first_fail < 0) {
            (*missed)++;
            continue;
        }
        *wrong += o.last.latency_verdict != GUARD_V_FAIL;
        total += o.canary_seen;
        if (o.canary_seen > *worst)
            *worst = o.canary_seen;
    }
    *mean = runs > *missed ? (double)total / (runs - *missed) : NAN;
}

static void test_detect_latency(void)
{
    int missed, wrong;
    double mean;
    uint64_t worst;
    struct guard_result last;
    rng_state = 11;
    /* +50 ms on every request (weir-pod's --latency) on a 5 % canary, from
     * 10 s into the step (a p99 bound of the baseline needs some 3,000 of
     * its requests: before that a latency fail cannot be told). */
    latency_runs(50, 1.0, 50000, 10000, 50, &missed, &wrong, &mean, &worst, &last);
    printf("# 5 %% canary, +50 ms at 10 s (p99 %.0f -> %.0f ms): fails after a mean %.0f, "
           "max %llu canary requests (%.1f / %.1f s at 50 req/s)\n",
           last.baseline_latency_ms,
           last.latency_ms, mean, (unsigned long long)worst, mean / 50, worst / 50.0);
    ok(missed == 0 && wrong == 0, "+50 ms on a 5 %% canary: all 50 runs fail, on latency");
    ok(worst <= 250, "within 5 s of the fault (the slowest after %llu canary requests)",
       (unsigned long long)worst);
    /* 2 x p99 on a 5 % canary: 750-1500 canary samples per span are at the
     * edge of what a p99 bound can tell at this confidence. Measured only. */
    latency_runs(50, 2.0, 0, 0, 50, &missed, &wrong, &mean, &worst, &last);
    printf("# 5 %% canary, latency x2: %d of 50 runs fail within 60 s (mean %.0f canary "
           "requests)\n",
           50 - missed, mean);
    latency_runs(50, 3.0, 0, 0, 50, &missed, &wrong, &mean, &worst, &last);
    printf("# 5 %% canary, latency x3: %d of 50 runs fail within 60 s (mean %.0f, max %llu "
           "canary requests)\n",
           50 - missed, mean, (unsigned long long)worst);
    is_int(missed, 0, "3 x latency on a 5 %% canary: every run fails");
}

/* 2 x p99 (every request twice as slow) on a 50 % canary. */
static void test_detect_latency_x2(void)
{
    int missed, wrong;
    double mean;
    uint64_t worst;
    struct guard_result last;
    rng_state = 11;
    latency_runs(500, 2.0, 0, 0, 50, &missed, &wrong, &mean, &worst, &last);
    printf("# 50 %% canary, latency x2 (p99 %.0f -> %.0f ms): fails after a mean %.0f, max %llu "
           "canary requests; reason: %s\n",
           last.baseline_latency_ms, last.latency_ms, mean,
           (unsigned long long)worst, last.reason);
    is_int(missed, 0, "2 x p99 latency on a 50 %% canary: every run fails within 60 s");
    is_int(wrong, 0, "and on the latency test");
    ok(strstr(last.reason, "fail: p99 latency") != NULL, "the reason names the p99 latency");
}

static void test_sparse(void)
{
    /* 5 req/s in total, canary 5 %: ten minutes never reach min_requests on
     * the canary side; the verdict stays hold and says why. */
    struct sim sim = {
        .cfg = defaults,
        .base_rps = 4.75,
        .canary_rps = 0.25,
        .base_err = 0.0,
        .canary_err = 0.0,
        .canary_scale = 1.0,
        .checks = 600,
        .step_ms = 1000,
    };
    struct sim_out o;
    rng_state = 3;
    sim_run(&sim, &base_side, &canary_side, &o);
    ok(o.first_pass < 0 && o.first_fail < 0, "5 req/s for 10 min: never pass, never fail");
    ok(o.last.verdict == GUARD_V_HOLD && strstr(o.last.reason, "min_requests") != NULL,
       "hold, because: %s", o.last.reason);

    /* Right below min_requests even a flawless canary with plenty of baseline
     * holds, and even a canary failing every request is not judged yet. */
    struct guard_result r;
    side_reset(&base_side);
    side_reset(&canary_side);
    side_traffic(&base_side, 100000, 0.0, 1.0, 0);
    side_traffic(&canary_side, 99, 0.0, 1.0, 0);
    judge_at(&defaults, &base_side, &canary_side, 0, 500, &r);
    is_int(r.verdict, GUARD_V_HOLD, "99 flawless canary requests: hold");
    side_reset(&canary_side);
    side_traffic(&canary_side, 99, 1.0, 1.0, 0);
    judge_at(&defaults, &base_side, &canary_side, 0, 500, &r);
    is_int(r.verdict, GUARD_V_HOLD, "99 failed canary requests: still hold (min_requests)");
    side_traffic(&canary_side, 1, 1.0, 1.0, 0);
    judge_at(&defaults, &base_side, &canary_side, 0, 500, &r);
    is_int(r.verdict, GUARD_V_FAIL, "the 100th: fail");
    ok(strstr(r.reason, "fail: error rate 100.00% vs baseline 0.00%") != NULL, "reason: %s",
       r.reason);
    side_reset(&base_side);
    side_reset(&canary_side);
    judge_at(&defaults, &base_side, &canary_side, 0, 500, &r);
    is_int(r.verdict, GUARD_V_HOLD, "no data at all: hold");

    /* Sweep: low traffic from 1 to 30 req/s never passes below min_requests. */
    int bad = 0;
    for (double rps = 1; rps <= 30; rps += 1) {
        sim.base_rps = rps * 0.9;
        sim.canary_rps = rps * 0.1;
        sim.checks = 300;
        sim_run(&sim, &base_side, &canary_side, &o);
        bad += o.pass_below_min;
    }
    is_int(bad, 0, "1..30 req/s: no pass with fewer than min_requests on a side");
}

/* A canary bad for 30 s and then fixed: the guard forgets the bad outcomes
 * within a window and a half and no longer fails. */
static void test_forgets(void)
{
    struct guard_config cfg = defaults;
    struct guard_result r;
    side_reset(&base_side);
    side_reset(&canary_side);
    rng_state = 8;
    unsigned epoch = 0;
    int failed_early = 0, failing_late = 0;
    for (unsigned s = 1; s <= 120; s++) {
        uint64_t since;
        unsigned k = guard_epoch(cfg.window_ms, 0, s * 1000u, &since);
        for (; epoch < k; epoch++) {
            side_next_epoch(&base_side);
            side_next_epoch(&canary_side);
        }
        base_side.now_ms = canary_side.now_ms = s * 1000u - 1u;
        side_traffic(&base_side, 950, 0.01, 1.0, 0);
        side_traffic(&canary_side, 50, s <= 30 ? 0.2 : 0.01, 1.0, 0);
        judge_at(&cfg, &base_side, &canary_side, epoch, s * 1000u - 1u, &r);
        if (s <= 30 && r.verdict == GUARD_V_FAIL)
            failed_early = 1;
        if (s > 75 && r.verdict == GUARD_V_FAIL)
            failing_late = 1;
    }
    ok(failed_early, "20 %% errors for the first 30 s fail");
    ok(!failing_late, "45 s after the fix the old errors are forgotten (now %s)",
       guard_verdict_name(r.verdict));

    /* guard_epoch: spans between half a window and a window. */
    uint64_t since;
    is_int(guard_epoch(30000, 1000, 1000, &since), 0, "epoch 0 at the start");
    is_int(since, 1000, "judging from the start");
    is_int(guard_epoch(30000, 1000, 1000 + 15000, &since), 1, "epoch 1 after half a window");
    is_int(since, 1000, "still from the start");
    is_int(guard_epoch(30000, 1000, 1000 + 44999, &since), 2, "epoch 2");
    is_int(since, 1000 + 15000, "from the start of epoch 1");
}

int main(void)
{
    lat_table_init(0.3);
    test_bounds();
    test_sparse();
    test_forgets();
    test_detect_errors();
    test_detect_pattern();
    test_common_mode();
    test_detect_latency();
    test_detect_latency_x2();
    test_false_alarms();
    test_aa_rollouts();
    test_wrong_pass();
    return tap_done();
}
