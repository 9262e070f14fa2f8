/*
 * test_bench.c — unit tests for weir-bench's pure parts: the histogram
 * (percentiles against exact sorted data, the bucket error bound, merge),
 * the open-loop schedule (evenly spaced, no drift), the ramp split maths
 * (sums to 100.00, proportions, rounding), the control reply reader, the
 * URL parser and the JSON/verdict output.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../bench/bench_hist.h"
#include "../../bench/bench_report.h"
#include "../../bench/bench_sched.h"
#include "../../bench/bench_url.h"
#include "tap.h"
#include "util.h"

/* Deterministic xorshift64*, so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static double rng_unit(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted data (the histogram's definition). */
static uint64_t exact_pct(const uint64_t *sorted, size_t n, double pct)
{
    if (pct <= 0)
        return sorted[0];
    /* Integer maths in 1e-6 %: 99.9 % of 1000 must be rank 999. */
    uint64_t micro = (uint64_t)llround(pct * 1e6);
    size_t rank = (size_t)((micro * n + 100000000 - 1) / 100000000);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static void test_hist_buckets(void)
{
    for (unsigned bits = 5; bits <= 7; bits += 2) {
        struct bench_hist h;
        bench_hist_init(&h, bits);
        int bad_cover = 0, bad_width = 0, bad_order = 0;
        size_t prev = 0;
        /* Every value 0..2^16 and a random sweep up to 2^36. */
        for (uint64_t i = 0; i < 200000; i++) {
            uint64_t v = i < 65536 ? i
                                   : (uint64_t)exp(rng_unit() * log(68.0e9));
            size_t idx = bench_hist_index(&h, v);
            uint64_t low = bench_hist_bucket_low(&h, idx);
            uint64_t w = bench_hist_bucket_width(&h, idx);
            if (idx >= h.n_buckets || v < low || v >= low + w)
                bad_cover++;
            if (v >= (1u << bits) && (double)w / (double)low >
                                         1.0 / (double)(1u << bits) + 1e-12)
                bad_width++;
            if (i < 65536 && i > 0 && idx < prev)
                bad_order++;
            prev = idx;
        }
        is_int(bad_cover, 0, "S=%u: every value lies in its bucket", bits);
        is_int(bad_width, 0, "S=%u: bucket width <= 2^-S of its low bound",
               bits);
        is_int(bad_order, 0, "S=%u: index is monotonic in the value", bits);
        is_int(bench_hist_index(&h, (1ull << BENCH_HIST_MAX_BITS) - 1),
               h.n_buckets - 1, "S=%u: 2^36-1 is the last bucket", bits);
        is_int(bench_hist_index(&h, 1ull << 40), h.n_buckets - 1,
               "S=%u: values past the range clamp to the last bucket", bits);
        bench_hist_dispose(&h);
    }
}

static void test_hist_percentiles(void)
{
    enum { N = 200000 };
    static const double pcts[] = {0.1, 1, 10, 25, 50, 75, 90, 99, 99.9,
                                  99.99};
    uint64_t *data = malloc(N * sizeof(*data));
    struct bench_hist h, coarse;
    bench_hist_init(&h, 7);
    bench_hist_init(&coarse, 5);
    /* Log-uniform from 1 µs to 60 s (in ns): every decade exercised. */
    for (size_t i = 0; i < N; i++) {
        data[i] = (uint64_t)exp(log(1e3) + rng_unit() * (log(60e9) - log(1e3)));
        bench_hist_record(&h, data[i]);
        bench_hist_record(&coarse, data[i]);
    }
    qsort(data, N, sizeof(*data), cmp_u64);
    double worst = 0, worst_coarse = 0;
    for (size_t i = 0; i < ARRAY_LEN(pcts); i++) {
        double ex = (double)exact_pct(data, N, pcts[i]);
        double e1 = fabs((double)bench_hist_percentile(&h, pcts[i]) - ex) / ex;
        double e2 =
            fabs((double)bench_hist_percentile(&coarse, pcts[i]) - ex) / ex;
        if (e1 > worst)
            worst = e1;
        if (e2 > worst_coarse)
            worst_coarse = e2;
    }
    ok(worst <= 1.0 / 256 + 1e-9,
       "S=7 percentiles within 0.39 %% of exact (worst %.4f %%)", worst * 100);
    ok(worst_coarse <= 1.0 / 64 + 1e-9,
       "S=5 percentiles within 1.6 %% of exact (worst %.4f %%)",
       worst_coarse * 100);
    is_int(bench_hist_percentile(&h, 0), data[0], "p0 is the exact min");
    is_int(bench_hist_percentile(&h, 100), data[N - 1], "p100 is the exact max");
    is_int(h.total, N, "count");
    double mean = 0;
    for (size_t i = 0; i < N; i++)
        mean += (double)data[i];
    mean /= N;
    ok(fabs(bench_hist_mean(&h) - mean) / mean < 1e-9, "mean is exact");
    free(data);
    bench_hist_dispose(&h);
    bench_hist_dispose(&coarse);

    /* Small values are exact: 1..100 each once. */
    bench_hist_init(&h, 7);
    for (uint64_t v = 1; v <= 100; v++)
        bench_hist_record(&h, v);
    is_int(bench_hist_percentile(&h, 50), 50, "p50 of 1..100 is 50");
    is_int(bench_hist_percentile(&h, 99), 99, "p99 of 1..100 is 99");
    is_int(bench_hist_percentile(&h, 99.9), 100, "p99.9 of 1..100 is 100");
    bench_hist_reset(&h);
    is_int(bench_hist_percentile(&h, 50), 0, "empty histogram answers 0");
    is_int(h.total, 0, "reset empties");
    /* A stall of 100 s: past the bucketed range, max still exact. */
    bench_hist_record(&h, 1000);
    bench_hist_record(&h, 100000000000ull);
    is_int(bench_hist_percentile(&h, 100), 100000000000ull,
           "values past 68 s keep an exact max");
    ok(llabs((long long)bench_hist_percentile(&h, 50) - 1000) <= 1000 / 256,
       "p50 with one stall is 1000 within the bucket error");
    /* One outlier among many: p99.9 sees it only above the 99.9th rank. */
    bench_hist_reset(&h);
    for (int i = 0; i < 999; i++)
        bench_hist_record(&h, 200000);
    bench_hist_record(&h, 5000000000ull);
    ok(llabs((long long)bench_hist_percentile(&h, 99.9) - 200000) <= 200000 / 256,
       "p99.9 of 999 x 200 us + 1 x 5 s is 200 us");
    is_int(bench_hist_percentile(&h, 99.95), 5000000000ull,
           "p99.95 of the same is the 5 s stall");
    bench_hist_dispose(&h);
}

static void test_hist_merge(void)
{
    struct bench_hist a, b, all;
    bench_hist_init(&a, 7);
    bench_hist_init(&b, 7);
    bench_hist_init(&all, 7);
    for (int i = 0; i < 50000; i++) {
        uint64_t v = rng() % 5000000000ull;
        bench_hist_record(i % 3 ? &a : &b, v);
        bench_hist_record(&all, v);
    }
    bench_hist_merge(&a, &b);
    is_int(a.total, all.total, "merge adds counts");
    is_int(a.min, all.min, "merge keeps the min");
    is_int(a.max, all.max, "merge keeps the max");
    ok(memcmp(a.counts, all.counts, a.n_buckets * sizeof(uint64_t)) == 0,
       "merged buckets equal recording everything in one");
    is_int(bench_hist_percentile(&a, 99), bench_hist_percentile(&all, 99),
           "merged p99 equals the single histogram's");
    struct bench_hist empty;
    bench_hist_init(&empty, 7);
    bench_hist_merge(&empty, &b);
    is_int(empty.min, b.min, "merge into empty takes min");
    bench_hist_dispose(&a);
    bench_hist_dispose(&b);
    bench_hist_dispose(&all);
    bench_hist_dispose(&empty);
}

static void test_schedule(void)
{
    is_int(bench_sched_intended_ns(1000, 4, 0, 0), 0, "slot 0 at t0");
    is_int(bench_sched_intended_ns(1000, 4, 1, 0), 1000000,
           "conn 1 starts one period (1 ms at 1000/s) after conn 0");
    is_int(bench_sched_intended_ns(1000, 4, 0, 1), 4000000,
           "each conn sends every conns/rate (4 ms)");
    is_int(bench_sched_intended_ns(3, 1, 0, 1), 333333333,
           "1/3 s rounds to the nearest ns");
    is_int(bench_sched_intended_ns(3, 1, 0, 2), 666666667,
           "2/3 s rounds to the nearest ns");
    /* No drift: one hour at 60k/s over 16 conns lands on 3600 s exactly. */
    is_int(bench_sched_intended_ns(60000, 16, 0, 13500000), 3600000000000ull,
           "slot 216e6 at 60k/s is exactly 3600 s");
    is_int(bench_sched_intended_ns(60000, 16, 15, 13500000),
           3600000000000ull + 250000, "conn 15 in the same round: +15 slots");
    /* The union of all connections' times is evenly spaced. */
    enum { C = 7,
           K = 3000 };
    static uint64_t t[C * K];
    double rate = 12345.6;
    for (uint32_t c = 0; c < C; c++)
        for (uint64_t k = 0; k < K; k++)
            t[k * C + c] = bench_sched_intended_ns(rate, C, c, k);
    double period = 1e9 / rate;
    int bad = 0;
    for (size_t i = 1; i < C * K; i++) {
        double gap = (double)t[i] - (double)t[i - 1];
        if (fabs(gap - period) > 1.0)
            bad++;
    }
    is_int(bad, 0, "all connections together: one request every 1/rate "
                   "(+-1 ns rounding)");
    ok(fabs((double)t[C * K - 1] - (double)(C * K - 1) * period) <= 0.5,
       "the last time is where slot * period says (no accumulated error)");
}

static void set_split(struct bench_split *s, const char *spec)
{
    /* "a=10 b=90" */
    memset(s, 0, sizeof(*s));
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        snprintf(s->name[s->n], sizeof(s->name[0]), "%s", tok);
        s->bp[s->n++] = (uint32_t)lround(atof(eq + 1) * 100);
    }
}

static const char *fmt(const struct bench_split *s)
{
    static char buf[512];
    return bench_sched_format_split(s, buf, sizeof(buf));
}

static uint32_t sum_bp(const struct bench_split *s)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->bp[i];
    return sum;
}

static void ramp_case(const char *from, const char *target, uint32_t bp,
                      const char *want)
{
    struct bench_split cur, out;
    const char *err = NULL;
    set_split(&cur, from);
    int rc = bench_sched_ramp_split(&cur, target, bp, &out, &err);
    is_int(rc, 0, "ramp %s: %s to %u bp succeeds", from, target, bp);
    if (rc == 0)
        is_str(fmt(&out), want, "ramp %s: %s to %u bp", from, target, bp);
}

static void test_ramp(void)
{
    char target[64];
    uint32_t steps[BENCH_SCHED_MAX_STEPS];
    size_t n = 0;
    const char *err = NULL;
    is_int(bench_sched_parse_ramp("v2=10,25,50,100", target, sizeof(target),
                                  steps, BENCH_SCHED_MAX_STEPS, &n, &err),
           0, "parse v2=10,25,50,100");
    is_str(target, "v2", "ramp target");
    is_int(n, 4, "four steps");
    ok(steps[0] == 1000 && steps[1] == 2500 && steps[2] == 5000 &&
           steps[3] == 10000,
       "steps in basis points");
    is_int(bench_sched_parse_ramp("canary=0.5,12.25", target, sizeof(target),
                                  steps, BENCH_SCHED_MAX_STEPS, &n, &err),
           0, "decimals parse");
    ok(n == 2 && steps[0] == 50 && steps[1] == 1225, "0.5 and 12.25 %%");
    static const char *const bad[] = {"v2", "=10", "v2=", "v2=101", "v2=10,,20",
                                      "v2=1.234", "v2=-5", "v 2=10", "v2=10,"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        is_int(bench_sched_parse_ramp(bad[i], target, sizeof(target), steps,
                                      BENCH_SCHED_MAX_STEPS, &n, &err),
               -1, "reject --ramp '%s'", bad[i]);

    ramp_case("v1=90 v2=10", "v2", 2500, "v1=75 v2=25");
    ramp_case("v1=60 v3=30 v2=10", "v2", 2500, "v1=50 v3=25 v2=25");
    ramp_case("v1=75 v2=25", "v2", 10000, "v1=0 v2=100");
    ramp_case("v1=0 v2=100", "v2", 5000, "v1=50 v2=50");
    ramp_case("v1=0 v3=0 v2=100", "v2", 3333, "v1=33.34 v3=33.33 v2=33.33");
    ramp_case("a=1 b=1 c=1 v2=97", "v2", 0, "a=33.34 b=33.33 c=33.33 v2=0");
    ramp_case("v1=1 v3=2 v2=97", "v2", 1, "v1=33.33 v3=66.66 v2=0.01");
    ramp_case("v1=100", "v2", 1000, "v1=90 v2=10");
    ramp_case("v1=50 v3=0 v2=50", "v2", 7500, "v1=25 v3=0 v2=75");

    struct bench_split cur, out;
    set_split(&cur, "v2=100");
    is_int(bench_sched_ramp_split(&cur, "v2", 5000, &out, &err), -1,
           "no other version to take the rest");
    is_int(bench_sched_ramp_split(&cur, "v2", 10000, &out, &err), 0,
           "v2 alone at 100 is fine");
    is_int(bench_sched_ramp_split(&cur, "v2", 10001, &out, &err), -1,
           "above 100 %% refused");

    /* Property: random splits always sum to 100.00, the target gets its
     * value, every other version is within 1 bp of its exact share. */
    int bad_sum = 0, bad_target = 0, bad_share = 0, bad_zero = 0;
    for (int it = 0; it < 20000; it++) {
        memset(&cur, 0, sizeof(cur));
        cur.n = 2 + rng() % 6;
        uint32_t left = 10000;
        for (size_t i = 0; i < cur.n; i++) {
            snprintf(cur.name[i], sizeof(cur.name[0]), "v%zu", i);
            uint32_t v = i + 1 == cur.n     ? left
                         : (rng() % 4 == 0) ? 0
                                            : (uint32_t)(rng() % (left + 1));
            cur.bp[i] = v;
            left -= v;
        }
        size_t t = rng() % cur.n;
        uint32_t bp = (uint32_t)(rng() % 10001);
        if (bench_sched_ramp_split(&cur, cur.name[t], bp, &out, &err) != 0) {
            bad_sum++;
            continue;
        }
        if (sum_bp(&out) != 10000)
            bad_sum++;
        if (out.bp[t] != bp)
            bad_target++;
        uint64_t others = 10000 - cur.bp[t];
        for (size_t i = 0; i < cur.n; i++) {
            if (i == t)
                continue;
            double exact = others ? (double)(10000 - bp) * cur.bp[i] / others
                                  : (double)(10000 - bp) / (double)(cur.n - 1);
            if (fabs(out.bp[i] - exact) >= 1.0)
                bad_share++;
            if (others && cur.bp[i] == 0 && out.bp[i] != 0)
                bad_zero++;
        }
    }
    is_int(bad_sum, 0, "20000 random ramps: every split sums to 100.00");
    is_int(bad_target, 0, "... the target gets exactly its percent");
    is_int(bad_share, 0, "... others within 0.01 %% of their proportional share");
    is_int(bad_zero, 0, "... a version at 0 stays at 0 unless all are 0");
}

static void test_control_text(void)
{
    const char *status =
        "{\"ok\":true,\"generation\":7,\"split\":{\"v1\":87.5,\"v2\":12.5},"
        "\"versions\":{\"v1\":{\"endpoints\":[{\"address\":\"10.0.0.11:8080\","
        "\"healthy\":true,\"draining\":false}]},\"v2\":{\"endpoints\":[]},"
        "\"v3\":{\"endpoints\":[],\"x\":[1,2.5e3,null,\"a\\\"b\"]}}}";
    struct bench_split s;
    uint64_t gen = 0;
    char err[256];
    is_int(bench_sched_parse_reply(status, strlen(status), &s, &gen, err,
                                   sizeof(err)),
           0, "status reply parses");
    is_int(gen, 7, "generation");
    is_str(fmt(&s), "v1=87.5 v2=12.5 v3=0",
           "split read, defined versions without a share at 0");
    char cmd[256];
    ok(bench_sched_format_split_cmd(&s, cmd, sizeof(cmd)) > 0 &&
           strcmp(cmd, "split v1=87.5 v2=12.5") == 0,
       "split command leaves zeros out: '%s'", cmd);
    is_int(bench_sched_format_split_cmd(&s, cmd, 8), 0,
           "split command refuses a short buffer");

    const char *refused = "{\"ok\":false,\"error\":\"split must sum to 100 "
                          "(got 99.99)\"}";
    is_int(bench_sched_parse_reply(refused, strlen(refused), NULL, NULL, err,
                                   sizeof(err)),
           -1, "ok:false is a failure");
    is_str(err, "split must sum to 100 (got 99.99)", "the error sentence");
    const char *okonly = "  {\"ok\" : true }\r\n";
    is_int(bench_sched_parse_reply(okonly, strlen(okonly), NULL, &gen, err,
                                   sizeof(err)),
           0, "{\"ok\":true} with whitespace");
    is_int(bench_sched_parse_reply(okonly, strlen(okonly), &s, &gen, err,
                                   sizeof(err)),
           -1, "status without split is an error when a split is wanted");
    static const char *const bad[] = {
        "", "ok", "{\"ok\":true", "{\"ok\":yes}", "{\"split\":{}}",
        "{\"ok\":true,\"split\":{\"v1\":\"90\"}}",
        "{\"ok\":true,\"split\":{\"v1\":90.123}}", "{\"ok\":true} trailing"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct bench_split sp;
        is_int(bench_sched_parse_reply(bad[i], strlen(bad[i]), &sp, NULL, err,
                                       sizeof(err)),
               -1, "reject reply '%s'", bad[i]);
    }
    const char *esc = "{\"ok\":true,\"split\":{\"v\\u0031\":100}}";
    is_int(bench_sched_parse_reply(esc, strlen(esc), &s, NULL, err,
                                   sizeof(err)),
           0, "escaped name parses");
    is_str(s.name[0], "v1", "\\u0031 decodes");
}

static void test_url(void)
{
    struct bench_url u;
    char err[256];
    is_int(bench_url_parse("http://127.0.0.1:8080/a/b?x=1#frag", &u, err,
                           sizeof(err)),
           0, "IPv4 URL");
    ok(strcmp(u.host, "127.0.0.1") == 0 && strcmp(u.port, "8080") == 0 &&
           strcmp(u.target, "/a/b?x=1") == 0 &&
           strcmp(u.authority, "127.0.0.1:8080") == 0,
       "host, port, target (no fragment), authority");
    is_int(bench_url_parse("http://[::1]:9/", &u, err, sizeof(err)), 0,
           "IPv6 URL");
    ok(strcmp(u.host, "::1") == 0 && strcmp(u.port, "9") == 0 &&
           strcmp(u.authority, "[::1]:9") == 0,
       "IPv6 host without brackets, Host header with");
    is_int(bench_url_parse("HTTP://example.com", &u, err, sizeof(err)), 0,
           "name, no port, no path");
    ok(strcmp(u.port, "80") == 0 && strcmp(u.target, "/") == 0,
       "defaults: port 80, target /");
    is_int(bench_url_parse("http://h?q", &u, err, sizeof(err)), 0,
           "query without path");
    is_str(u.target, "/?q", "target gets a leading /");
    is_int(bench_url_parse("https://127.0.0.1/", &u, err, sizeof(err)), -1,
           "https refused");
    ok(strstr(err, "https is not supported") != NULL, "https: clear message");
    static const char *const bad[] = {"127.0.0.1:80", "http://", "http://:80/",
                                      "http://h:0/", "http://h:65536/",
                                      "http://h:8a/", "http://::1/",
                                      "http://[::1/", "http://u@h/",
                                      "http://h/a b"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        is_int(bench_url_parse(bad[i], &u, err, sizeof(err)), -1,
               "reject URL '%s'", bad[i]);
}

/* A report with v1 (1000 x 1 ms, p99 1 ms) and v2 (900 x 2 ms + 100 x 503
 * at 2 ms, 10 resets). */
static void fill_report(struct bench_report *r)
{
    bench_report_init(r, 10, 2, 2);
    int v1 = bench_report_version(r, "v1", 2);
    int v2 = bench_report_version(r, "v2", 2);
    int again = bench_report_version(r, "v1", 2);
    is_int(again, v1, "version lookup finds the same slot");
    for (int i = 0; i < 1000; i++)
        bench_report_response(r, v1, (uint64_t)i * 10000000u, i < 500 ? 0 : 1,
                              1000000, 200);
    for (int i = 0; i < 1000; i++)
        bench_report_response(r, v2, (uint64_t)i * 10000000u, 1, 2000000,
                              i < 900 ? 200 : 503);
    bench_report_error(r, BENCH_REPORT_UNKNOWN, 5000000000u, 1,
                       BENCH_ERR_RESET, 10);
}

static void test_report(void)
{
    struct bench_report a, b;
    fill_report(&a);
    fill_report(&b);
    struct bench_report m;
    bench_report_init(&m, 10, 2, 2);
    bench_report_merge(&m, &a);
    bench_report_merge(&m, &b);
    is_int(bench_report_live_requests(&m), 2 * 2010, "merged requests");
    is_int(bench_report_live_errors(&m), 2 * 110, "merged errors (5xx + reset)");

    struct bench_split steps_split = {0};
    struct bench_ramp_step steps[2] = {
        {.at_s = 0, .target_bp = 1000, .applied = true, .split = steps_split},
        {.at_s = 5, .target_bp = 10000, .applied = true, .split = steps_split},
    };
    struct bench_run run = {
        .url = "http://127.0.0.1:8080/\"q\"",
        .version_header = "X-Weir-Version",
        .conns = 16,
        .threads = 1,
        .planned_s = 10,
        .duration_s = 10,
        .ramp_target = "v2",
        .n_steps = 2,
        .steps = steps,
    };
    char verdict[512];
    bench_report_verdict(&m, &run, verdict, sizeof(verdict));
    is_str(verdict,
           "v2 p99 is 2.00x v1's (2.000 ms vs 1.000 ms); v2 errors 10.0 % vs "
           "0.0 %",
           "verdict compares the ramp target with the baseline");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    bench_report_print_json(&m, &run, f);
    fclose(f);
    ok(strncmp(text, "{\"requests\":4020,\"errors\":220,\"duration_s\":10.000,"
                     "\"rps\":402.0,",
               strlen("{\"requests\":4020,\"errors\":220,\"duration_s\":10.000,"
                      "\"rps\":402.0,")) == 0,
       "JSON starts with the INTERFACE.md totals");
    ok(strstr(text, "\"v1\":{\"requests\":2000,\"errors\":0,\"share\":0.4975,"
                    "\"rps\":200.0,\"p50_ms\":1.000,\"p90_ms\":1.000,"
                    "\"p99_ms\":1.000,\"p999_ms\":1.000,\"max_ms\":1.000") !=
           NULL,
       "v1 entry has every INTERFACE.md field");
    ok(strstr(text, "\"v2\":{\"requests\":2000,\"errors\":200,\"share\":0.4975,"
                    "\"rps\":200.0,\"p50_ms\":2.000") != NULL,
       "v2 entry counts 5xx as errors");
    ok(strstr(text, "\"unknown\":{\"requests\":20,\"errors\":20") != NULL,
       "transport errors count under unknown");
    ok(strstr(text, "\"url\":\"http://127.0.0.1:8080/\\\"q\\\"\"") != NULL,
       "strings are JSON-escaped");
    ok(strstr(text, "\"achieved\":{\"v1\":1.0000,\"v2\":0.0000,"
                    "\"unknown\":0.0000}") != NULL,
       "ramp step 1: shares by the step requests were sent in");
    ok(strstr(text, "\"achieved\":{\"v1\":0.3311,\"v2\":0.6623,"
                    "\"unknown\":0.0066}") != NULL,
       "ramp step 2: shares by the step requests were sent in");
    ok(strstr(text, "nan") == NULL && strstr(text, "inf") == NULL,
       "no NaN or infinity");
    int depth = 0, min_depth = 0;
    bool in_str = false;
    for (char *p = text; *p; p++) {
        if (in_str) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_str = false;
            continue;
        }
        if (*p == '"')
            in_str = true;
        else if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        if (depth < min_depth)
            min_depth = depth;
    }
    ok(depth == 0 && min_depth == 0 && text[len - 1] == '\n' &&
           strchr(text, '\n') == text + len - 1,
       "JSON is one balanced line");
    free(text);

    /* The plot: well-formed enough to check by hand, names escaped. */
    struct bench_report odd;
    bench_report_init(&odd, 10, 2, 0);
    int lt = bench_report_version(&odd, "<v&2>", 5);
    for (int i = 0; i < 100; i++)
        bench_report_response(&odd, lt, (uint64_t)i * 100000000u, 0,
                              1000000, i % 10 ? 200 : 500);
    char svg_path[] = "/tmp/test_bench_XXXXXX";
    int fd = mkstemp(svg_path);
    ok(fd >= 0, "temp file for the SVG");
    if (fd >= 0)
        close(fd);
    is_int(bench_report_write_svg(&odd, &run, svg_path), 0, "SVG written");
    f = fopen(svg_path, "r");
    char svg[65536] = "";
    size_t got = f ? fread(svg, 1, sizeof(svg) - 1, f) : 0;
    if (f)
        fclose(f);
    svg[got] = '\0';
    ok(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "<svg ") &&
           strstr(svg, "</svg>\n") == svg + got - 7,
       "SVG document from <?xml to </svg>");
    ok(strstr(svg, "&lt;v&amp;2&gt;") && !strstr(svg, "<v&2>"),
       "version names are XML-escaped");
    ok(strstr(svg, "nan") == NULL && strstr(svg, "inf") == NULL,
       "no NaN or infinity in coordinates");
    is_int(bench_report_write_svg(&odd, &run, "/nonexistent/x.svg"), -1,
           "unwritable plot path fails");
    unlink(svg_path);
    bench_report_dispose(&odd);

    /* Without a ramp the baseline is the version with most requests. */
    run.ramp_target = NULL;
    run.n_steps = 0;
    struct bench_report one;
    bench_report_init(&one, 10, 2, 0);
    int v1 = bench_report_version(&one, "v1", 2);
    for (int i = 0; i < 100; i++)
        bench_report_response(&one, v1, 0, 0, 1000000, 200);
    bench_report_verdict(&one, &run, verdict, sizeof(verdict));
    is_str(verdict, "only v1 answered (0.0 % errors): nothing to compare",
           "single-version verdict");

    bench_report_dispose(&one);
    bench_report_dispose(&a);
    bench_report_dispose(&b);
    bench_report_dispose(&m);
}

/* --grpc: a non-zero grpc-status is an error of kind grpc, a 5xx stays http_5xx. */
static void test_report_grpc(void)
{
    struct bench_report r;
    bench_report_init(&r, 10, 2, 0);
    int v = bench_report_version(&r, "v1", 2);
    bench_report_grpc_response(&r, v, 0, 0, 1000000, 200, 0);
    bench_report_grpc_response(&r, v, 0, 0, 1000000, 200, 14);
    bench_report_grpc_response(&r, v, 0, 0, 1000000, 503, 14);
    bench_report_grpc_response(&r, v, 0, 0, 1000000, 200, 0);
    is_int((int)r.v[v]->requests, 4, "grpc: every answer is a request");
    is_int((int)r.v[v]->errors, 2, "grpc: UNAVAILABLE and a 503 are errors, OK ones not");
    is_int((int)r.v[v]->err_kind[BENCH_ERR_GRPC], 1, "grpc: the 200 with grpc-status 14 is kind grpc");
    is_int((int)r.v[v]->err_kind[BENCH_ERR_HTTP5XX], 1, "grpc: the 503 stays http_5xx");
    is_str(bench_report_err_name(BENCH_ERR_GRPC), "grpc", "grpc: the kind's name");
    is_int((int)bench_report_live_errors(&r), 2, "grpc: the live error count follows");
    bench_report_dispose(&r);
}

int main(void)
{
    test_hist_buckets();
    test_hist_percentiles();
    test_hist_merge();
    test_schedule();
    test_ramp();
    test_control_text();
    test_url();
    test_report();
    test_report_grpc();
    return tap_done();
}
