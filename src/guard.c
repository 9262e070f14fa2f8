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
 * Errors: fail when the lower bound of p_canary − p_baseline, i.e.
 * low(CS_canary) − high(CS_baseline), exceeds max_increase; pass when the
 * upper bound high(CS_canary) − low(CS_baseline) is below it. Two separate
 * sequences cope with any interleaving and any imbalance of the two
 * versions' traffic (each is indexed by its own version's count).
 *
 * Latency: a confidence sequence for each version's q-quantile Q (Howard &
 * Ramdas 2022, "Sequential estimation of quantiles with applications to
 * A/B-testing and best-arm identification", Bernoulli 28(3), the fixed-
 * quantile case). The count N_n = #{samples ≤ Q} is Binomial(n, q), so the
 * same mixture at p = q gives integers [L_n, U_n] holding N_n at all n with
 * probability ≥ 1 − α; then x_(L_n) ≤ Q ≤ x_(U_n + 1) (order statistics;
 * by a monotone coupling this stays valid when latencies have ties). The
 * histogram only knows each order statistic to its bucket, so the lower
 * bound takes the bucket's floor and the upper its ceiling: the buckets
 * widen the interval, never invalidate it. Fail when
 * low(Q_canary) > max_ratio × high(Q_baseline) + floor, pass when
 * high(Q_canary) ≤ max_ratio × low(Q_baseline) + floor. This compares the
 * canary's quantile with the baseline's limit while accounting for the
 * uncertainty of both (a plug-in baseline quantile would not be valid).
 *
 * Budget. Four sequences (two per test) share α: each gets α_k / 4, so with
 * probability ≥ 1 − α_k all four cover their parameter during epoch k and
 * no wrong verdict (fail or pass) is possible in it.
 *
 * Forgetting. Outcomes older than `window` must not be judged (a fault has
 * to show within a window, not be diluted by an hour of good traffic), but
 * a confidence sequence is about a growing sample. So a judgement runs in
 * epochs of window/2: epoch k judges the growing sample that starts at the
 * beginning of epoch k-1 (between half a window and a window of outcomes),
 * and each epoch is its own confidence sequence, spending
 *     α_k = α / ((k + 1)(k + 2)),   Σ_k α_k = α,
 * so the false-alarm bound holds over a judgement of any length, checked at
 * any rate. The price is log((k+1)(k+2)) more evidence in later epochs: the
 * boundary log(4/α_k) is 6.7 nats in epoch 0 and 17 after an hour (k = 240,
 * 30 s window), so an hour-old judgement needs about 2.5 × the outcomes to
 * decide; a rollout should start a judgement per step.
 *
 * Assumptions: within a span, each version's outcomes are independent with
 * a constant rate (requests are routed to versions by a split that does not
 * look at outcomes); a load that changes both versions alike shifts the
 * point estimates of both, the difference stays the quantity judged.
 *
 * What it costs (measured in test_guard, 1000 req/s, 5 % canary, defaults):
 * 0 % -> 5 % errors fails after a median of about 300 canary requests (6 s),
 * 1 % -> 6 % after about 570; +50 ms latency after 150. A p99 bound
 * needs the canary's tail, so "pass" on latency takes some 1,500 canary
 * requests in a span, which a 5 % canary of 1000 req/s does not reach within
 * a 30 s window: it holds (never a wrong pass) until the share grows.
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

void guard_judge(const struct guard_config *cfg, const struct outcome_sum *baseline,
                 const struct outcome_sum *canary, unsigned epoch, struct guard_result *out)
{
    /* The config validator guarantees these; the logs below need them. */
    CHECK(cfg->quantile_bp > 0 && cfg->quantile_bp < 10000u);
    CHECK(cfg->false_alarm_bp > 0 && cfg->false_alarm_bp < 10000u);
    memset(out, 0, sizeof(*out));
    double k = (double)epoch;
    double alpha_k = (double)cfg->false_alarm_bp / 10000.0 / ((k + 1.0) * (k + 2.0));
    double a = alpha_k / 4.0;
    double q = (double)cfg->quantile_bp / 10000.0;
    double margin = (double)cfg->max_increase_bp / 10000.0;
    double floor_ms = (double)cfg->floor_us / 1000.0;
    char qname[16];
    snprintf(qname, sizeof(qname), "p%g", (double)cfg->quantile_bp / 100.0);
    out->alpha = a;

    out->requests = canary->requests;
    out->errors = canary->errors;
    out->baseline_requests = baseline->requests;
    out->baseline_errors = baseline->errors;
    out->error_rate = rate(canary->errors, canary->requests);
    out->baseline_error_rate = rate(baseline->errors, baseline->requests);

    /* Errors. */
    double cl, ch, bl, bh;
    guard_rate_bounds(canary->errors, canary->requests, a, &cl, &ch);
    guard_rate_bounds(baseline->errors, baseline->requests, a, &bl, &bh);
    out->diff_low = cl - bh;
    out->diff_high = ch - bl;
    if (out->diff_low > margin)
        out->errors_verdict = GUARD_V_FAIL;
    else if (out->diff_high < margin)
        out->errors_verdict = GUARD_V_PASS;
    else
        out->errors_verdict = GUARD_V_HOLD;

    /* Latency. */
    double c_lo, c_hi, b_lo, b_hi;
    double c_est, b_est;
    quantile_bounds(canary, q, a, &c_lo, &c_hi, &c_est);
    quantile_bounds(baseline, q, a, &b_lo, &b_hi, &b_est);
    out->latency_ms = c_est / 1000.0;
    out->baseline_latency_ms = b_est / 1000.0;
    out->latency_low_ms = c_lo / 1000.0;
    out->latency_high_ms = c_hi / 1000.0;
    out->baseline_latency_low_ms = b_lo / 1000.0;
    out->baseline_latency_high_ms = b_hi / 1000.0;
    double limit_fail_ms = cfg->max_ratio * out->baseline_latency_high_ms + floor_ms;
    double limit_pass_ms = cfg->max_ratio * out->baseline_latency_low_ms + floor_ms;
    if (!isinf(limit_fail_ms) && out->latency_low_ms > limit_fail_ms)
        out->latency_verdict = GUARD_V_FAIL;
    else if (!isinf(out->latency_high_ms) && out->latency_high_ms <= limit_pass_ms)
        out->latency_verdict = GUARD_V_PASS;
    else
        out->latency_verdict = GUARD_V_HOLD;

    char b1[24], b2[24];
    double pct = 100.0;
    if (canary->requests < cfg->min_requests || baseline->requests < cfg->min_requests) {
        out->verdict = GUARD_V_HOLD;
        snprintf(out->reason, sizeof(out->reason),
                 "hold: %llu canary and %llu baseline requests in the span judged, "
                 "%u each needed (min_requests)",
                 (unsigned long long)canary->requests, (unsigned long long)baseline->requests,
                 cfg->min_requests);
    } else if (out->errors_verdict == GUARD_V_FAIL) {
        out->verdict = GUARD_V_FAIL;
        snprintf(out->reason, sizeof(out->reason),
                 "fail: error rate %.2f%% vs baseline %.2f%%: at least +%.2f points, "
                 "more than the %.2f allowed",
                 pct * out->error_rate, pct * out->baseline_error_rate, pct * out->diff_low,
                 pct * margin);
    } else if (out->latency_verdict == GUARD_V_FAIL) {
        out->verdict = GUARD_V_FAIL;
        snprintf(out->reason, sizeof(out->reason),
                 "fail: %s latency %.1f ms vs baseline %.1f ms: at least %.1f ms, above "
                 "%g x %.1f ms + %.1f ms = %.1f ms",
                 qname, out->latency_ms, out->baseline_latency_ms, out->latency_low_ms,
                 cfg->max_ratio, out->baseline_latency_high_ms, floor_ms, limit_fail_ms);
    } else if (out->errors_verdict == GUARD_V_PASS && out->latency_verdict == GUARD_V_PASS) {
        out->verdict = GUARD_V_PASS;
        snprintf(out->reason, sizeof(out->reason),
                 "pass: error rate %.2f%% vs %.2f%% (at most %+.2f points, below %.2f); "
                 "%s %.1f ms vs %.1f ms (at most %.1f ms, within %.1f ms)",
                 pct * out->error_rate, pct * out->baseline_error_rate, pct * out->diff_high,
                 pct * margin, qname, out->latency_ms, out->baseline_latency_ms,
                 out->latency_high_ms, limit_pass_ms);
    } else {
        out->verdict = GUARD_V_HOLD;
        snprintf(out->reason, sizeof(out->reason),
                 "hold: not enough evidence yet: error rate %.2f%% vs %.2f%% "
                 "(%+.2f to %+.2f points, limit %.2f)%s; %s %.1f ms vs %.1f ms "
                 "(at most %s, limit %s)%s",
                 pct * out->error_rate, pct * out->baseline_error_rate, pct * out->diff_low,
                 pct * out->diff_high, pct * margin,
                 out->errors_verdict == GUARD_V_PASS ? " ok" : "", qname, out->latency_ms,
                 out->baseline_latency_ms, fmt_ms(b1, sizeof(b1), out->latency_high_ms),
                 fmt_ms(b2, sizeof(b2), limit_pass_ms),
                 out->latency_verdict == GUARD_V_PASS ? " ok" : "");
    }
}
