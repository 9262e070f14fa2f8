/*
 * guard.c — the release guard's sequential tests (API and verdicts in
 * guard.h). Pure functions: no state, no clock, no allocation.
 *
 * Why not a fixed-sample test. A 99 % z-test of "canary error rate −
 * baseline's > 1 point" is valid once, on a sample size fixed in advance.
 * Re-run every second on a growing sample it is a new chance of a false
 * alarm each time, and those chances add up: by the law of the iterated
 * logarithm a random walk crosses any fixed z boundary with probability 1
 * if you wait long enough. On test_guard's simulated A/A traffic, a one-sided
 * 0.5 % z-test re-run every second for 10 minutes alarms in about half of
 * the runs; the guard's tests, at the same level, in none. The guard checks
 * continuously, so it needs bounds that hold at all sample sizes at once.
 *
 * Confidence sequences. For one version's error indicator (Bernoulli p) we
 * use Robbins' beta-binomial mixture: after n requests with S errors,
 *     M_n(p) = ∫ (θ/p)^S ((1-θ)/(1-p))^(n-S) dBeta(θ; a, b)
 *            = B(a+S, b+n-S) / B(a, b) / (p^S (1-p)^(n-S))
 * is, at the true p, a nonnegative martingale with M_0 = 1 (a mixture of
 * likelihood ratios), so by Ville's inequality P(∃n: M_n(p) ≥ 1/α) ≤ α and
 *     CS_n = { p : M_n(p) < 1/α }
 * covers p at every n simultaneously with probability ≥ 1 − α: an always-
 * valid confidence sequence (Robbins 1970, "Statistical methods related to
 * the law of the iterated logarithm"; Howard, Ramdas, McAuliffe, Sekhon
 * 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
 * Ann. Statist. 49(2), conjugate mixtures; the mixture SPRT of Johari et al.
 * 2017/2022, "Always valid inference", is the same construction as a test).
 * CS_n is an interval (log M_n is convex in p), found by bisection. Its
 * width adapts to the variance p(1-p), which matters at error rates near 0.
 * Stopping or checking at any data-dependent time keeps the guarantee.
 *
 * Pass. Errors pass when the upper bound of p_canary - p_baseline, i.e.
 * high(CS_canary) - low(CS_baseline), is below max_increase; latency passes
 * when high(Q_canary) <= max_ratio x low(Q_baseline) + floor, with a
 * confidence sequence for each version's q-quantile Q (Howard & Ramdas
 * 2022, "Sequential estimation of quantiles with applications to A/B-
 * testing and best-arm identification", Bernoulli 28(3), the fixed-
 * quantile case): N_n = #{samples <= Q} is Binomial(n, q), so the same
 * mixture at p = q gives integers [L_n, U_n] holding N_n at all n with
 * probability >= 1 - alpha; then x_(L_n) <= Q <= x_(U_n + 1) (order
 * statistics; by a monotone coupling this stays valid with ties). The
 * histogram knows each order statistic to its bucket only, so a lower
 * bound takes the bucket's floor and an upper its ceiling: buckets widen
 * the interval, never invalidate it. The four sequences (two per test) get
 * alpha / 2 each, over everything since the judgement began (a step of a
 * rollout). That bounds a wrong pass by alpha: a canary that breaks a
 * margin passes only if the test of that margin passes, i.e. one of its
 * two sequences misses (alpha / 2 + alpha / 2); the other test's
 * sequences need not be wrong, so they need no share of it. (alpha / 4
 * each, as a union over all four, was twice as strict as the bound needs:
 * 70 more canary requests before a p99 can pass.) Showing that a p99 is
 * within a limit takes some 900 canary requests whatever the test (about
 * log(1/alpha) / (1 - q) of them must be seen below it), more than a 1 %
 * step sees in a window, so a pass weighs the whole step while a fail
 * looks at the last window only.
 *
 * Fail. A confidence interval of the difference reacts slowly: it carries
 * the canary's good outcomes from before a fault, and a two-sided bound
 * spends part of alpha on the wrong side. The fail tests are e-processes
 * (test supermartingales under "within the margins") for the canary alone,
 * against a null value set by the baseline:
 *   errors:  p0 = high(CS_baseline, over its span) + max_increase, and the
 *            canary's indicators x_i = "request i failed";
 *   latency: L0 = max_ratio x high(Q_baseline) + floor, p0 = 1 - q, and
 *            x_i = "request i took longer than L0" (counted only in
 *            buckets wholly above L0, so never more than the true count).
 * For an alternative theta > p0 and a start slot j, the likelihood ratio
 *     LR_{j,theta} = theta^S (1-theta)^(N-S) / max_{p <= p0} p^S (1-p)^(N-S)
 * over the S of N canary outcomes since slot j is, at the true rate
 * p <= p_null <= p0, at most the likelihood ratio against p_null, a
 * supermartingale; the statistic
 *     E = sum_j w_j sum_theta v_theta LR_{j,theta}
 * (v: 1/G over the G rates of a fixed 1-2-5 grid from 0.1 % to 90 % that
 * lie above the margin (errors) or above 1 - q (latency), the mixture SPRT of Robbins
 * 1970 and Johari, Koomen, Pekelis, Walsh 2022, "Always valid inference",
 * Oper. Res. 70(3); w_j = 1 / (1 + j/tau)^2 over start slots, the mixture
 * over change points of the e-detectors of Shin, Ramdas, Rinaldo 2023,
 * "E-detectors: a nonparametric framework for sequential change
 * detection", NEJSDS) is at most a nonnegative martingale Z with
 * Z_0 = W = sum_j w_j (a start slot in the future counts 1, one older than
 * the window is dropped: both only lower E). By Ville's inequality
 * P(sup_t Z_t >= W / a) <= a, so "fail when E >= W / a" has a false alarm
 * probability at most a over a judgement of any length, checked at any
 * rate. The sum over start slots is what the Shiryaev-Roberts statistic
 * does for change detection, but weighted by a summable w so the bound is a
 * probability, not an average run length. A fault starting at slot j costs
 * log(W / w_j) = 2.1 nats at j = 0, 3.8 at 10 s, 6.2 at 60 s (tau = 8 s),
 * and no outcome from before it dilutes the evidence.
 *   p0 depends on the data (the baseline's bound shrinks as it grows); the
 * argument needs only p0 >= p_null at every check, which holds whenever the
 * baseline's sequence covers its parameter: P(wrong fail) <= a + a_b.
 * Budget (a union bound over the two fail tests, each the union of its
 * canary e-process and its baseline bound): errors 0.75 alpha for the
 * e-process and 0.05 alpha for the baseline's bound, latency 0.18 and
 * 0.02; a baseline's share is spent over epochs of half a window as
 * alpha_k = share / ((k + 1)(k + 2)) (the baseline's span forgets like the
 * canary's slots; the sum over k is the share): P(wrong fail) <= alpha.
 * The baseline has the larger share of the traffic, so its bound is tight
 * at a small level. The split is uneven because the two tests need very
 * different evidence: a slow request is log(0.9 / 0.01) = 4.5 nats of
 * latency evidence, so the latency test's threshold moving up by
 * log(0.45 / 0.18) = 0.9 nats costs it about one canary request, while
 * a failed request in a 5 % fault is 1.5 nats less the 0.04 of each good
 * one, and the error test's threshold coming down by log(0.75 / 0.45) =
 * 0.5 nats saves it ~15 canary requests (0.3 s at 50 req/s). (With 0.45 /
 * 0.05 for both: 5.8 s and 14 failed requests below.)
 *   What it buys (test_guard, 1000 req/s, 5 % canary, a fault 10 s into
 * a step, checks every 100 ms): 0 % -> 5 % errors with max_increase 0.2 %
 * fails a median 2.0 s (100 canary requests) after the fault; with the
 * default 1 point and weir-pod's exact pattern of 5 % (every 20th request
 * fails, the benchmark's fault) 5.5 s and 13 failed requests, 4.3-4.9 s
 * with random errors. The floor at 1 point: the oracle SPRT that knows
 * the fault's start and size needs log(100) = 4.6 nats, at KL(5 % ||
 * 1.14 %) = 0.036 nats a request (1.14 %: the margin over a 0 %
 * baseline's bound after ~10,000 requests) ~128 canary requests, 2.2-2.6 s
 * with that pattern; this test pays on top log W = 2.1 and 1.6 nats for a
 * change point 10 s into the step, log 6 = 1.8 for not knowing the size
 * (6 grid rates above 1 %) and 0.3 for sharing alpha with the latency
 * test: 10.4 nats, ~290 requests (a random walk crosses a little earlier).
 * +50 ms on every request: a mean 30 canary requests.
 *
 * Common mode. A stall of the host (or of a dependency both versions
 * share) slows every request in flight for a moment: a few canary requests
 * in a row over L0 are many nats of latency evidence (4.5 each), and the
 * baseline's bound, over 15-30 s, does not move with a 100 ms stall (on
 * the shared 2-core benchmark machine at load 6-8 this tripped an A/A
 * rollout: "7 of the last 23 canary requests (1 s) took over 46.5 ms").
 * So a latency fail also needs the baseline, over the same slots as the
 * canary's heaviest evidence, to have at most 1 - q of its requests above
 * L0; otherwise the test holds and says why. A condition added to a fail
 * can only lower the probability of a wrong fail, so the bound above
 * stands; the test loses only detections made while the baseline was as
 * slow as the canary.
 *
 * Assumptions: within a judgement, the baseline's outcomes are independent
 * with a constant rate, the canary's independent with rates that may change
 * (the null is "at every request within the margins"); requests are routed
 * to versions by a split that does not look at outcomes. A fault that hits
 * both versions alike raises the baseline's bound with the canary's rate
 * (both over the last window), but a sudden one can trip the canary before
 * the baseline's span catches up: the guard judges versions, not their
 * shared dependencies.
 *
 * Prior a = b = 1/2 (Jeffreys): mass near 0 and 1, where error rates and
 * tail quantiles live.
 */
#include "guard.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define GUARD_PRIOR 0.5 /* a = b of the beta mixture */
#define GUARD_BISECT 44 /* 2^-44: far below any rate that matters */

/* log B(x, y); lgamma_r: lgamma's sign global is a data race. */
static double lbeta(double x, double y)
{
    int sx, sy, sxy;
    return lgamma_r(x, &sx) + lgamma_r(y, &sy) - lgamma_r(x + y, &sxy);
}

/* log of the mixture's marginal likelihood of S errors in n, divided by the
 * prior's normaliser: log B(a+S, b+n-S) - log B(a, b). */
static double log_marginal(double s, double n)
{
    return lbeta(GUARD_PRIOR + s, GUARD_PRIOR + n - s) - lbeta(GUARD_PRIOR, GUARD_PRIOR);
}

static double log_lik(double s, double n, double p)
{
    double l = 0.0;
    if (s > 0)
        l += s * log(p);
    if (n - s > 0)
        l += (n - s) * log1p(-p);
    return l;
}

void guard_rate_bounds(uint64_t errors, uint64_t n, double alpha, double *low, double *high)
{
    *low = 0.0;
    *high = 1.0;
    if (n == 0)
        return;
    if (errors > n)
        errors = n;
    double s = (double)errors, nd = (double)n;
    /* p is inside when log_lik(p) > log_marginal + log(alpha) (M_n(p) < 1/α).
     * The maximum likelihood S/n is always inside: the marginal likelihood
     * never exceeds the maximum. */
    double thr = log_marginal(s, nd) + log(alpha);
    double hat = s / nd;
    if (errors > 0) {
        double lo = 0.0, hi = hat; /* lo outside, hi inside */
        for (int i = 0; i < GUARD_BISECT; i++) {
            double mid = (lo + hi) / 2.0;
            if (log_lik(s, nd, mid) > thr)
                hi = mid;
            else
                lo = mid;
        }
        *low = lo;
    }
    if (errors < n) {
        double lo = hat, hi = 1.0; /* lo inside, hi outside */
        for (int i = 0; i < GUARD_BISECT; i++) {
            double mid = (lo + hi) / 2.0;
            if (log_lik(s, nd, mid) > thr)
                lo = mid;
            else
                hi = mid;
        }
        *high = hi;
    }
}

/* The rank test's statistic: log(1/M_n(q)) at count s; s is accepted while
 * it exceeds log(alpha). Concave in s. */
static double rank_score(double s, double n, double q)
{
    return log_lik(s, n, q) - log_marginal(s, n);
}

void guard_rank_bounds(uint64_t n, double q, double alpha, uint64_t *low, uint64_t *high)
{
    *low = 0;
    *high = n;
    if (n == 0)
        return;
    double nd = (double)n, la = log(alpha);
    uint64_t s0 = (uint64_t)floor(nd * q);
    if (s0 < n && rank_score((double)s0 + 1.0, nd, q) > rank_score((double)s0, nd, q))
        s0++;
    if (!(rank_score((double)s0, nd, q) > la)) {
        *low = *high = s0; /* cannot happen (the peak is >= ~0); stay sane */
        return;
    }
    /* Smallest accepted s in [0, s0]: the score rises up to s0. */
    uint64_t lo = 0, hi = s0;
    if (!(rank_score(0.0, nd, q) > la)) {
        while (hi - lo > 1) { /* lo rejected, hi accepted */
            uint64_t mid = lo + (hi - lo) / 2;
            if (rank_score((double)mid, nd, q) > la)
                hi = mid;
            else
                lo = mid;
        }
        *low = hi;
    }
    /* Largest accepted s in [s0, n]. */
    lo = s0;
    hi = n;
    if (!(rank_score(nd, nd, q) > la)) {
        while (hi - lo > 1) { /* lo accepted, hi rejected */
            uint64_t mid = lo + (hi - lo) / 2;
            if (rank_score((double)mid, nd, q) > la)
                lo = mid;
            else
                hi = mid;
        }
        *high = lo;
    }
}

unsigned guard_epoch(uint32_t window_ms, uint64_t start_ms, uint64_t now_ms, uint64_t *since_ms)
{
    uint64_t len = window_ms / 2u;
    if (len == 0)
        len = 1;
    if (now_ms < start_ms)
        now_ms = start_ms;
    uint64_t k = (now_ms - start_ms) / len;
    if (k > 1000000u)
        k = 1000000u; /* α_k stays a normal double; 1e6 epochs is weeks */
    *since_ms = start_ms + (k > 0 ? (k - 1u) * len : 0);
    return (unsigned)k;
}

const char *guard_verdict_name(enum guard_verdict v)
{
    switch (v) {
    case GUARD_V_HOLD:
        return "hold";
    case GUARD_V_PASS:
        return "pass";
    case GUARD_V_FAIL:
        return "fail";
    }
    return "?";
}

/* Confidence bounds (µs) of the q-quantile of one version's latencies, and
 * its point estimate (the bucket midpoint of rank ceil(q n)): two passes
 * over the buckets. */
static void quantile_bounds(const struct outcome_sum *s, double q, double alpha, double *low_us,
                            double *high_us, double *est_us)
{
    uint64_t n = 0, l, u;
    for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
        n += s->latency[i];
    guard_rank_bounds(n, q, alpha, &l, &u);
    *low_us = 0.0;
    *high_us = INFINITY;
    *est_us = 0.0;
    if (n == 0)
        return;
    uint64_t k = (uint64_t)ceil(q * (double)n);
    if (k == 0)
        k = 1;
    /* Ranks wanted, ascending: l (if >= 1), k, u + 1 (if <= n). */
    uint64_t seen = 0;
    /* clang-format off */
    bool got_l = l < 1, got_k = false, got_u = u + 1u > n;
    /* clang-format on */
    for (uint32_t i = 0; i < OUTCOME_BUCKETS && !(got_l && got_k && got_u); i++) {
        if (s->latency[i] == 0)
            continue;
        seen += s->latency[i];
        uint64_t lo = outcome_bucket_low_us(i), hi = outcome_bucket_high_us(i);
        if (!got_l && seen >= l) {
            *low_us = (double)lo;
            got_l = true;
        }
        if (!got_k && seen >= k) {
            *est_us = hi == UINT64_MAX ? (double)lo : ((double)lo + (double)(hi - 1u)) / 2.0;
            got_k = true;
        }
        if (!got_u && seen >= u + 1u) {
            if (hi != UINT64_MAX)
                *high_us = (double)hi;
            got_u = true;
        }
    }
}

static double rate(uint64_t k, uint64_t n)
{
    return n ? (double)k / (double)n : 0.0;
}

static const char *fmt_ms(char *buf, size_t len, double ms)
{
    if (isinf(ms))
        snprintf(buf, len, "unbounded");
    else
        snprintf(buf, len, "%.1f ms", ms);
    return buf;
}

/* The false-alarm budget in shares of alpha, summing to 1 (the design
 * comment, "Budget"): each fail test's canary e-process and its baseline
 * bound. */
#define GUARD_ERR_CANARY 0.75
#define GUARD_ERR_BASE 0.05
#define GUARD_LAT_CANARY 0.18
#define GUARD_LAT_BASE 0.02

/* The fail tests' alternatives: a 1-2-5 series of rates, equal weights. */
static const double fail_grid[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.9};
#define GUARD_TAU_SLOTS 8.0 /* w_j = 1 / (1 + j / tau)^2 */

static double slot_weight(uint64_t j)
{
    double x = 1.0 + (double)j / GUARD_TAU_SLOTS;
    return 1.0 / (x * x);
}

/* log W, W = sum over j >= 0 of slot_weight(j): the first 4096 terms and an
 * upper bound of the rest (the integral from 4095), so W is never short. */
static double log_total_weight(void)
{
    double w = 0.0;
    for (uint64_t j = 0; j < 4096; j++)
        w += slot_weight(j);
    w += GUARD_TAU_SLOTS / (1.0 + 4095.0 / GUARD_TAU_SLOTS);
    return log(w);
}

static double log_add(double a, double b)
{
    if (a < b) {
        double t = a;
        a = b;
        b = t;
    }
    if (isinf(b))
        return a;
    return a + log1p(exp(b - a));
}

/* The alternatives of a fail test: the grid's rates above `above` (fixed
 * before any data: the margin, or 1 - q), equal weights. */
struct alts {
    double theta[ARRAY_LEN(fail_grid)];
    unsigned n;
    double log_v; /* log of each weight */
};

static void alts_init(struct alts *a, double above)
{
    a->n = 0;
    for (size_t g = 0; g < ARRAY_LEN(fail_grid); g++)
        if (fail_grid[g] > above)
            a->theta[a->n++] = fail_grid[g];
    a->log_v = a->n ? -log((double)a->n) : 0.0;
}

/* log of sum_theta v_theta LR_theta for S of N against p <= p0 (see the
 * design comment); -INFINITY when no alternative is above p0. */
static double log_mixture_lr(const struct alts *a, double s, double n, double p0)
{
    double hat = n > 0 ? s / n : 0.0;
    double den = log_lik(s, n, hat < p0 ? hat : p0);
    double acc = -INFINITY;
    for (unsigned g = 0; g < a->n; g++)
        if (a->theta[g] > p0)
            acc = log_add(acc, a->log_v + log_lik(s, n, a->theta[g]) - den);
    return acc;
}

/*
 * log E = log sum over start slots i of w_(first + i) x the mixture LR of
 * the counts from slot i to the newest (s[i], n[i], per slot). *best is
 * the start slot whose term is largest.
 */
static double log_evidence(const struct alts *a, const uint64_t *s, const uint64_t *n,
                           unsigned n_slots, uint64_t first, double p0, unsigned *best)
{
    double acc = -INFINITY, top = -INFINITY;
    uint64_t ss = 0, nn = 0;
    *best = n_slots ? n_slots - 1 : 0;
    for (unsigned i = n_slots; i-- > 0;) {
        ss += s[i];
        nn += n[i];
        if (ss > nn)
            ss = nn; /* a reader racing the writer may see an error first */
        double t = log(slot_weight(first + i)) + log_mixture_lr(a, (double)ss, (double)nn, p0);
        if (t > top) {
            top = t;
            *best = i;
        }
        acc = log_add(acc, t);
    }
    return acc;
}

void guard_judge(const struct guard_config *cfg, const struct guard_input *in,
                 struct guard_result *out)
{
    /* The config validator guarantees these; the logs below need them. */
    CHECK(cfg->quantile_bp > 0 && cfg->quantile_bp < 10000u);
    CHECK(cfg->false_alarm_bp > 0 && cfg->false_alarm_bp < 10000u);
    CHECK(in->n_slots <= GUARD_SLOTS_MAX);
    memset(out, 0, sizeof(*out));
    double alpha = (double)cfg->false_alarm_bp / 10000.0;
    double k = (double)in->epoch;
    double spend = 1.0 / ((k + 1.0) * (k + 2.0)); /* epoch k's share of a baseline's budget */
    double a_base_err = GUARD_ERR_BASE * alpha * spend, a_base_lat = GUARD_LAT_BASE * alpha * spend;
    double a_pass = alpha / 2.0; /* each pass bound (the design comment, "Pass") */
    double q = (double)cfg->quantile_bp / 10000.0;
    double margin = (double)cfg->max_increase_bp / 10000.0;
    double floor_ms = (double)cfg->floor_us / 1000.0;
    char qname[16];
    snprintf(qname, sizeof(qname), "p%g", (double)cfg->quantile_bp / 100.0);
    out->alpha = a_pass;
    out->errors_threshold = log_total_weight() - log(GUARD_ERR_CANARY * alpha);
    out->latency_threshold = log_total_weight() - log(GUARD_LAT_CANARY * alpha);

    /* The canary's last window, slot by slot, and its sum. */
    uint64_t s_err[GUARD_SLOTS_MAX], s_req[GUARD_SLOTS_MAX];
    struct outcome_sum canary; /* ~3 KiB */
    outcome_sum_clear(&canary);
    for (unsigned i = 0; i < in->n_slots; i++) {
        outcome_sum_add(&canary, &in->canary_slots[i]);
        s_err[i] = in->canary_slots[i].errors;
        s_req[i] = in->canary_slots[i].requests;
    }
    const struct outcome_sum *base = in->baseline_span;
    out->requests = canary.requests;
    out->errors = canary.errors;
    out->baseline_requests = base->requests;
    out->baseline_errors = base->errors;
    out->requests_all = in->canary_all->requests;
    out->baseline_requests_all = in->baseline_all->requests;
    out->error_rate = rate(canary.errors, canary.requests);
    out->baseline_error_rate = rate(base->errors, base->requests);

    /* Errors, fail: the canary's slots against the baseline's bound. */
    double bl, bh;
    guard_rate_bounds(base->errors, base->requests, a_base_err, &bl, &bh);
    double p0_err = bh + margin;
    unsigned best_err = 0;
    struct alts alt;
    alts_init(&alt, margin);
    out->errors_evidence = p0_err < 1.0 ? log_evidence(&alt, s_err, s_req, in->n_slots,
                                                       in->first_slot, p0_err, &best_err)
                                        : -INFINITY;
    /* Errors, pass: everything since the start. */
    double cl, ch, al, ah;
    guard_rate_bounds(in->canary_all->errors, in->canary_all->requests, a_pass, &cl, &ch);
    guard_rate_bounds(in->baseline_all->errors, in->baseline_all->requests, a_pass, &al, &ah);
    out->diff_low = cl - ah;
    out->diff_high = ch - al;
    if (out->errors_evidence >= out->errors_threshold)
        out->errors_verdict = GUARD_V_FAIL;
    else if (out->diff_high < margin)
        out->errors_verdict = GUARD_V_PASS;
    else
        out->errors_verdict = GUARD_V_HOLD;

    /* Latency, fail: canary requests above L0 = ratio x the baseline's
     * upper bound + floor, counted in buckets wholly above L0. */
    double f_lo, f_hi, f_est;
    quantile_bounds(base, q, a_base_lat, &f_lo, &f_hi, &f_est);
    double l0_us = cfg->max_ratio * f_hi + (double)cfg->floor_us;
    unsigned best_lat = 0;
    out->latency_evidence = -INFINITY;
    if (!isinf(l0_us)) {
        uint32_t b0 = 0;
        while (b0 < OUTCOME_BUCKETS && !((double)outcome_bucket_low_us(b0) > l0_us))
            b0++;
        for (unsigned i = 0; i < in->n_slots; i++) {
            uint64_t slow = 0;
            for (uint32_t b = b0; b < OUTCOME_BUCKETS; b++)
                slow += in->canary_slots[i].latency[b];
            s_err[i] = slow;
            uint64_t n = 0;
            for (uint32_t b = 0; b < OUTCOME_BUCKETS; b++)
                n += in->canary_slots[i].latency[b];
            s_req[i] = n;
        }
        alts_init(&alt, 1.0 - q);
        out->latency_evidence = log_evidence(&alt, s_err, s_req, in->n_slots, in->first_slot,
                                             1.0 - q, &best_lat);
        /* The same seconds on the baseline: as slow there, it is the host
         * or a shared dependency, not the canary (see "Common mode"). */
        if (in->baseline_slots && out->latency_evidence >= out->latency_threshold) {
            uint64_t bs = 0, bn = 0;
            for (unsigned i = best_lat; i < in->n_slots; i++)
                for (uint32_t b = 0; b < OUTCOME_BUCKETS; b++) {
                    bn += in->baseline_slots[i].latency[b];
                    if (b >= b0)
                        bs += in->baseline_slots[i].latency[b];
                }
            out->latency_common = bn > 0 && (double)bs > (1.0 - q) * (double)bn;
            out->baseline_slow = rate(bs, bn);
        }
    }
    /* Latency, pass: everything since the start. */
    double c_lo, c_hi, c_est, b_lo, b_hi, b_est;
    quantile_bounds(in->canary_all, q, a_pass, &c_lo, &c_hi, &c_est);
    quantile_bounds(in->baseline_all, q, a_pass, &b_lo, &b_hi, &b_est);
    /* The estimates shown: over the windows the fail tests judge. */
    double w_lo, w_hi;
    quantile_bounds(&canary, q, a_pass, &w_lo, &w_hi, &c_est); /* only c_est is used */
    out->latency_ms = c_est / 1000.0;
    out->baseline_latency_ms = f_est / 1000.0;
    out->latency_low_ms = c_lo / 1000.0;
    out->latency_high_ms = c_hi / 1000.0;
    out->baseline_latency_low_ms = b_lo / 1000.0;
    out->baseline_latency_high_ms = b_hi / 1000.0;
    double limit_pass_ms = cfg->max_ratio * out->baseline_latency_low_ms + floor_ms;
    if (out->latency_evidence >= out->latency_threshold && !out->latency_common)
        out->latency_verdict = GUARD_V_FAIL;
    else if (!isinf(out->latency_high_ms) && out->latency_high_ms <= limit_pass_ms)
        out->latency_verdict = GUARD_V_PASS;
    else
        out->latency_verdict = GUARD_V_HOLD;

    char b1[24], b2[24];
    double pct = 100.0;
    if (canary.requests < cfg->min_requests || base->requests < cfg->min_requests) {
        out->verdict = GUARD_V_HOLD;
        snprintf(out->reason, sizeof(out->reason),
                 "hold: %llu canary and %llu baseline requests in the span judged, "
                 "%u each needed (min_requests)",
                 (unsigned long long)canary.requests, (unsigned long long)base->requests,
                 cfg->min_requests);
    } else if (out->errors_verdict == GUARD_V_FAIL) {
        out->verdict = GUARD_V_FAIL;
        uint64_t fs = 0, fn = 0;
        for (unsigned i = best_err; i < in->n_slots; i++) {
            fs += in->canary_slots[i].errors;
            fn += in->canary_slots[i].requests;
        }
        out->fail_span_s = (double)(in->n_slots - best_err);
        snprintf(out->reason, sizeof(out->reason),
                 "fail: error rate %.2f%% vs baseline %.2f%%: %llu of the last %llu canary "
                 "requests (%.0f s) failed, more than baseline (at most %.2f%%) + %.2f points "
                 "allows (evidence e^%.1f > e^%.1f)",
                 pct * rate(fs, fn), pct * out->baseline_error_rate, (unsigned long long)fs,
                 (unsigned long long)fn, out->fail_span_s, pct * bh, pct * margin,
                 out->errors_evidence, out->errors_threshold);
    } else if (out->latency_verdict == GUARD_V_FAIL) {
        out->verdict = GUARD_V_FAIL;
        uint64_t fs = 0, fn = 0;
        for (unsigned i = best_lat; i < in->n_slots; i++) {
            fs += s_err[i];
            fn += s_req[i];
        }
        out->fail_span_s = (double)(in->n_slots - best_lat);
        snprintf(out->reason, sizeof(out->reason),
                 "fail: %s latency %.1f ms vs baseline %.1f ms: %llu of the last %llu canary "
                 "requests (%.0f s) took over %g x %.1f ms + %.1f ms = %.1f ms, more than "
                 "the %g%% a %s allows (evidence e^%.1f > e^%.1f)",
                 qname, out->latency_ms, out->baseline_latency_ms, (unsigned long long)fs,
                 (unsigned long long)fn, out->fail_span_s, cfg->max_ratio, f_hi / 1000.0,
                 floor_ms, l0_us / 1000.0, 100.0 * (1.0 - q), qname, out->latency_evidence,
                 out->latency_threshold);
    } else if (out->errors_verdict == GUARD_V_PASS && out->latency_verdict == GUARD_V_PASS) {
        out->verdict = GUARD_V_PASS;
        snprintf(out->reason, sizeof(out->reason),
                 "pass: error rate %.2f%% vs %.2f%% (at most %+.2f points, below %.2f); "
                 "%s %.1f ms vs %.1f ms (at most %.1f ms, within %.1f ms), %llu canary "
                 "requests since the start",
                 pct * rate(in->canary_all->errors, in->canary_all->requests),
                 pct * rate(in->baseline_all->errors, in->baseline_all->requests),
                 pct * out->diff_high, pct * margin, qname, out->latency_ms,
                 out->baseline_latency_ms, out->latency_high_ms, limit_pass_ms,
                 (unsigned long long)in->canary_all->requests);
    } else {
        out->verdict = GUARD_V_HOLD;
        snprintf(out->reason, sizeof(out->reason),
                 "hold: not enough evidence yet: error rate %.2f%% vs %.2f%% "
                 "(at most %+.2f points, limit %.2f)%s; %s %.1f ms vs %.1f ms "
                 "(at most %s, limit %s)%s; %llu canary requests since the start",
                 pct * out->error_rate, pct * out->baseline_error_rate, pct * out->diff_high,
                 pct * margin, out->errors_verdict == GUARD_V_PASS ? " ok" : "", qname,
                 out->latency_ms, out->baseline_latency_ms,
                 fmt_ms(b1, sizeof(b1), out->latency_high_ms),
                 fmt_ms(b2, sizeof(b2), limit_pass_ms),
                 out->latency_verdict == GUARD_V_PASS ? " ok"
                 : out->latency_common                ? " (baseline as slow then)"
                                                      : "",
                 (unsigned long long)in->canary_all->requests);
    }
}
