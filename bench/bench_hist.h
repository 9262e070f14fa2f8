/*
 * bench_hist.h — a log-linear latency histogram (the HdrHistogram layout)
 * for weir-bench.
 *
 * Values are unsigned integers (weir-bench records nanoseconds). Values below
 * 2^S (S = sub_bits) each get their own bucket; above that, every power of two
 * [2^m, 2^(m+1)) is cut into 2^S equal buckets, so a bucket is never wider
 * than 2^-S of its lower bound. Queries answer with the bucket's midpoint,
 * clamped to the exact min/max, so the relative error of any answer is at most
 * 2^-(S+1): S = 7 gives 0.39 % (the ≤ 1 % weir-bench promises from 1 µs to
 * 60 s), S = 5 gives 1.6 % for the small per-second histograms of the plot.
 * Values at or above 2^BENCH_HIST_MAX_BITS (68.7 s in ns) share the top
 * bucket; min, max, count and sum stay exact.
 *
 * Owns its bucket array. Not thread-safe: one histogram per worker, merged by
 * the main thread after the run.
 */
#ifndef WEIR_BENCH_HIST_H
#define WEIR_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_HIST_MAX_BITS 36 /* values up to 2^36 ns = 68.7 s are bucketed */

struct bench_hist {
    unsigned sub_bits; /* S: 2^S buckets per power of two */
    size_t n_buckets;
    uint64_t *counts; /* owned; n_buckets entries */
    uint64_t total;   /* number of recorded values */
    uint64_t min;     /* exact; UINT64_MAX while empty */
    uint64_t max;     /* exact; 0 while empty */
    double sum;       /* for the mean */
};

/*
 * Set up an empty histogram with 2^sub_bits buckets per power of two
 * (1 <= sub_bits <= 12). Allocates; aborts on out-of-memory.
 */
void bench_hist_init(struct bench_hist *h, unsigned sub_bits);

/* Free the buckets; the struct may be re-initialised. NULL-safe. */
void bench_hist_dispose(struct bench_hist *h);

/* Forget all values, keep the buckets. */
void bench_hist_reset(struct bench_hist *h);

/* Bucket index of value v (exposed for tests). */
size_t bench_hist_index(const struct bench_hist *h, uint64_t v);

/* Lowest value and width of bucket i (exposed for tests). */
uint64_t bench_hist_bucket_low(const struct bench_hist *h, size_t i);
uint64_t bench_hist_bucket_width(const struct bench_hist *h, size_t i);

/* Record one value. The hot path: no allocation, no branches on errors. */
static inline void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->counts[bench_hist_index(h, v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/*
 * The value at percentile pct (0..100): the smallest recorded value v such
 * that at least pct % of the values are <= v, answered as its bucket's
 * midpoint clamped to [min, max]. 0 when empty; pct 0 gives min, 100 max.
 */
uint64_t bench_hist_percentile(const struct bench_hist *h, double pct);

/* Mean of the recorded values; 0 when empty. */
double bench_hist_mean(const struct bench_hist *h);

/*
 * Add every value of src into dst. Both must have the same sub_bits
 * (checked: a mismatch is a programming error and aborts).
 */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

#endif
