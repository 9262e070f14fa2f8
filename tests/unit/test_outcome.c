/*
 * test_outcome.c — per-version outcome windows: histogram buckets and
 * quantile accuracy, window expiry, ring reuse, merging per-worker windows,
 * exact add/subtract, and a writer thread racing a reader (for TSan).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "outcome.h"
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

static double rng_lognormal(double median, double sigma)
{
    double u1 = rng_unit(), u2 = rng_unit();
    if (u1 < 1e-300)
        u1 = 1e-300;
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return median * exp(sigma * z);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_buckets(void)
{
    int bad = 0;
    uint32_t prev = 0;
    double worst = 0.0;
    for (uint64_t v = 0; v < (1ull << 28); v = v < 4096 ? v + 1 : v + v / 97 + 1) {
        uint32_t i = outcome_bucket(v);
        if (i < prev || i >= OUTCOME_BUCKETS)
            bad++;
        prev = i;
        uint64_t lo = outcome_bucket_low_us(i), hi = outcome_bucket_high_us(i);
        if (v < lo || v >= hi)
            bad++;
        if (hi != UINT64_MAX && v >= 100) {
            double mid = ((double)lo + (double)(hi - 1)) / 2.0;
            double err = fabs(mid - (double)v) / (double)v;
            if (err > worst)
                worst = err;
        }
    }
    is_int(bad, 0, "buckets are monotone and each value lies in [low, high) of its bucket");
    ok(worst <= 1.0 / 32.0 + 1e-9, "a bucket midpoint is within 3.125%% of its values (worst %.3f%%)",
       100.0 * worst);
    is_int(outcome_bucket(60000000u) < OUTCOME_BUCKETS - 1u, 1, "60 s is below the open top bucket");
    is_int(outcome_bucket(UINT64_MAX), OUTCOME_BUCKETS - 1u, "huge latencies land in the top bucket");
    for (uint32_t i = 1; i + 1 < OUTCOME_BUCKETS; i++)
        if (outcome_bucket_high_us(i - 1) != outcome_bucket_low_us(i))
            bad++;
    is_int(bad, 0, "buckets tile the scale without gaps");
}

static void test_quantiles(void)
{
    enum { N = 200000 };
    static uint64_t vals[N];
    struct outcome_sum *sum = calloc(1, sizeof(*sum));
    rng_state = 42;
    for (int i = 0; i < N; i++) {
        double v = rng_lognormal(20000.0, 1.2); /* median 20 ms, long tail */
        if (v < 100.0)
            v = 100.0;
        if (v > 60e6)
            v = 60e6;
        vals[i] = (uint64_t)v;
        sum->latency[outcome_bucket(vals[i])]++;
        sum->requests++;
    }
    qsort(vals, N, sizeof(vals[0]), cmp_u64);
    const double qs[] = {0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0};
    double worst = 0.0;
    for (size_t j = 0; j < sizeof(qs) / sizeof(qs[0]); j++) {
        size_t k = (size_t)ceil(qs[j] * N);
        if (k == 0)
            k = 1;
        double exact = (double)vals[k - 1];
        double got = outcome_sum_quantile_us(sum, qs[j]);
        double err = fabs(got - exact) / exact;
        if (err > worst)
            worst = err;
    }
    ok(worst <= 0.032, "quantiles p0..p100 of 200k lognormal latencies (100 µs .. 60 s) within 3.2%% "
                       "(worst %.2f%%)",
       100.0 * worst);
    uint64_t lo, hi;
    outcome_sum_rank_us(sum, N / 2, &lo, &hi);
    ok(lo <= vals[N / 2 - 1] && vals[N / 2 - 1] < hi, "rank bounds bracket the exact order statistic");
    outcome_sum_clear(sum);
    ok(outcome_sum_quantile_us(sum, 0.99) == 0.0, "an empty sum's quantile is 0");
    free(sum);
}

static void sum_last(const struct outcome_window *w, uint64_t now_ms, uint32_t window_ms,
                     struct outcome_sum *s)
{
    outcome_sum_clear(s);
    outcome_window_add(w, outcome_window_since_ms(w->slot_ms, now_ms, window_ms), now_ms, s);
}

static void test_expiry(void)
{
    struct outcome_window *w = malloc(sizeof(*w));
    struct outcome_sum *s = malloc(sizeof(*s));
    outcome_window_init(w, OUTCOME_SLOT_MS);
    /* One txn per second at t = 100.5 s .. 159.5 s; every 10th an error. */
    for (int i = 0; i < 60; i++)
        outcome_record(w, 100500u + 1000u * (unsigned)i, i % 10 == 0, 1000u + (unsigned)i);
    sum_last(w, 159600, 30000, s);
    is_int(s->requests, 30, "the last 30 s hold the 30 txns of the last 30 slots");
    is_int(s->errors, 3, "and their 3 errors");
    is_int(s->latency[outcome_bucket(1059)] > 0, 1, "the newest latency is in");
    sum_last(w, 159600 + 20000, 30000, s);
    is_int(s->requests, 10, "20 s later, only the 10 younger than 30 s are left");
    sum_last(w, 159600 + 31000, 30000, s);
    is_int(s->requests, 0, "31 s after the last txn the window has forgotten everything");
    /* Age boundaries: an outcome older than window_ms is never in. */
    int bad = 0;
    for (uint64_t age = 0; age < 40000; age += 250) {
        outcome_window_init(w, OUTCOME_SLOT_MS);
        outcome_record(w, 500000, false, 10);
        sum_last(w, 500000 + age, 30000, s);
        if (age >= 30000 && s->requests != 0)
            bad++;
        if (age < 29000 && s->requests != 1)
            bad++;
    }
    is_int(bad, 0, "an outcome is in while younger than window - slot, out once older than window");
    /* Ring reuse and late records. */
    outcome_window_init(w, OUTCOME_SLOT_MS);
    outcome_record(w, 1000, true, 10);
    outcome_record(w, 1000 + OUTCOME_SLOTS * 1000u, false, 10); /* same slot, 64 s later */
    outcome_sum_clear(s);
    outcome_window_add(w, 1000 + OUTCOME_SLOTS * 1000u, 1000 + OUTCOME_SLOTS * 1000u, s);
    ok(s->requests == 1 && s->errors == 0, "a reused slot starts from zero");
    outcome_record(w, 1000, true, 10); /* older than the ring now */
    outcome_sum_clear(s);
    outcome_window_add(w, 1000 + OUTCOME_SLOTS * 1000u, 1000 + OUTCOME_SLOTS * 1000u, s);
    ok(s->requests == 1 && s->errors == 0, "a record older than the ring is dropped, not mixed in");
    /* Slot widths. */
    is_int(outcome_slot_ms(30000), 1000, "a 30 s window uses 1 s slots");
    is_int(outcome_slot_ms(60000), 1000, "a 60 s window uses 1 s slots");
    is_int(outcome_slot_ms(300000), 5000, "a 5 min window uses 5 s slots");
    ok(outcome_slot_ms(3600000) * (uint64_t)(OUTCOME_SLOTS - 4u) >= 3600000u,
       "an hour fits the ring with wider slots");
    free(w);
    free(s);
}

static void test_merge(void)
{
    enum { WORKERS = 3 };
    struct outcome_window *one = malloc(sizeof(*one));
    struct outcome_window *per = malloc(WORKERS * sizeof(*per));
    struct outcome_sum *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    outcome_window_init(one, OUTCOME_SLOT_MS);
    for (int i = 0; i < WORKERS; i++)
        outcome_window_init(&per[i], OUTCOME_SLOT_MS);
    rng_state = 7;
    uint64_t now = 1000000;
    for (int i = 0; i < 100000; i++) {
        now += rng_next() % 3; /* ~1 ms apart: 100 s of traffic */
        bool err = rng_next() % 50 == 0;
        uint64_t lat = (uint64_t)rng_lognormal(5000.0, 1.0);
        outcome_record(one, now, err, lat);
        outcome_record(&per[rng_next() % WORKERS], now, err, lat);
    }
    sum_last(one, now, 30000, a);
    outcome_sum_clear(b);
    uint64_t since = outcome_window_since_ms(OUTCOME_SLOT_MS, now, 30000);
    for (int i = 0; i < WORKERS; i++)
        outcome_window_add(&per[i], since, now, b);
    ok(a->requests > 10000 && memcmp(a, b, sizeof(*a)) == 0,
       "3 per-worker windows summed equal one window fed the same txns (%llu requests)",
       (unsigned long long)a->requests);
    uint64_t n = 0;
    for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
        n += a->latency[i];
    is_int(n, a->requests, "the latency histogram counts every request");

    /* Exact add and subtract: (a + b) - b == a; subtracting more refuses. */
    struct outcome_sum *c = malloc(sizeof(*c));
    sum_last(one, now - 40000, 30000, b);
    memcpy(c, a, sizeof(*c));
    outcome_sum_add(c, b);
    is_int(c->requests, a->requests + b->requests, "add sums requests");
    is_int(outcome_sum_sub(c, b), 0, "subtracting a part succeeds");
    ok(memcmp(c, a, sizeof(*c)) == 0, "(a + b) - b == a, bucket for bucket");
    outcome_sum_clear(b);
    b->latency[0] = c->latency[0] + 1;
    memcpy(a, c, sizeof(*a));
    is_int(outcome_sum_sub(c, b), -1, "subtracting more than is there is refused");
    ok(memcmp(c, a, sizeof(*c)) == 0, "and leaves the sum unchanged");
    free(one);
    free(per);
    free(a);
    free(b);
    free(c);
}

/* A worker records while the main thread sums: the reader never sees more
 * than was written (plus the txn in flight), and the final sum is exact.
 * Meant for the TSan build as much as for the assertions. */
struct race {
    struct outcome_window *w; /* borrowed */
    _Atomic uint64_t written;
    _Atomic uint64_t now_ms;
};

static void *on_writer(void *arg)
{
    struct race *r = arg;
    for (uint64_t i = 0; i < 400000; i++) {
        uint64_t now = 1000000 + i / 20; /* 20 txns per ms: ~20 s of slots */
        outcome_record(r->w, now, i % 4 == 0, 100 + i % 1000);
        atomic_store_explicit(&r->now_ms, now, memory_order_release);
        atomic_store_explicit(&r->written, i + 1, memory_order_release);
    }
    return NULL;
}

static void test_race(void)
{
    struct race r;
    r.w = malloc(sizeof(*r.w));
    outcome_window_init(r.w, OUTCOME_SLOT_MS);
    atomic_init(&r.written, 0);
    atomic_init(&r.now_ms, 1000000);
    struct outcome_sum *s = malloc(sizeof(*s));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, on_writer, &r) == 0);
    int bad = 0, reads = 0;
    while (atomic_load_explicit(&r.written, memory_order_acquire) < 400000) {
        uint64_t now = atomic_load_explicit(&r.now_ms, memory_order_acquire);
        outcome_sum_clear(s);
        outcome_window_add(r.w, 1000000, now + 1000, s);
        uint64_t after = atomic_load_explicit(&r.written, memory_order_acquire);
        /* The txn being recorded may show before `written` counts it. */
        if (s->requests > after + 1)
            bad++;
        reads++;
    }
    pthread_join(th, NULL);
    outcome_sum_clear(s);
    outcome_window_add(r.w, 1000000, 1000000 + 400000 / 20, s);
    is_int(bad, 0, "%d concurrent reads never saw more than was written", reads);
    is_int(s->requests, 400000, "after the writer stops the sum is exact");
    is_int(s->errors, 100000, "errors too");
    free(r.w);
    free(s);
}

int main(void)
{
    test_buckets();
    test_quantiles();
    test_expiry();
    test_merge();
    test_race();
    return tap_done();
}
