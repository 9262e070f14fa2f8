/*
 * bench_hist.c — see bench_hist.h. Index maths:
 *
 *   v < 2^S:   index = v                                  (group 0, width 1)
 *   v >= 2^S:  m = floor(log2 v), shift = m - S,
 *              index = (m - S + 1) * 2^S + (v >> shift) - 2^S   (width 2^shift)
 *
 * so group g >= 1 covers [2^(g+S-1), 2^(g+S)) in 2^S buckets. Values of
 * 2^MAX_BITS and above are clamped into the last bucket.
 */
#include "bench_hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void bench_hist_init(struct bench_hist *h, unsigned sub_bits)
{
    CHECK(sub_bits >= 1 && sub_bits <= 12 && sub_bits < BENCH_HIST_MAX_BITS);
    h->sub_bits = sub_bits;
    h->n_buckets = (size_t)(BENCH_HIST_MAX_BITS - sub_bits + 1) << sub_bits;
    h->counts = xcalloc(h->n_buckets, sizeof(*h->counts));
    h->total = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->sum = 0;
}

void bench_hist_dispose(struct bench_hist *h)
{
    if (!h)
        return;
    free(h->counts);
    h->counts = NULL;
    h->n_buckets = 0;
}

void bench_hist_reset(struct bench_hist *h)
{
    memset(h->counts, 0, h->n_buckets * sizeof(*h->counts));
    h->total = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->sum = 0;
}

size_t bench_hist_index(const struct bench_hist *h, uint64_t v)
{
    unsigned s = h->sub_bits;
    if (v < ((uint64_t)1 << s))
        return (size_t)v;
    if (v >= ((uint64_t)1 << BENCH_HIST_MAX_BITS))
        return h->n_buckets - 1;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - s;
    return ((size_t)(m - s + 1) << s) + (size_t)(v >> shift) - ((size_t)1 << s);
}

uint64_t bench_hist_bucket_low(const struct bench_hist *h, size_t i)
{
    unsigned s = h->sub_bits;
    size_t group = i >> s;
    uint64_t sub = i & (((size_t)1 << s) - 1);
    if (group == 0)
        return sub;
    unsigned shift = (unsigned)group - 1;
    return (((uint64_t)1 << s) + sub) << shift;
}

uint64_t bench_hist_bucket_width(const struct bench_hist *h, size_t i)
{
    size_t group = i >> h->sub_bits;
    return group == 0 ? 1 : (uint64_t)1 << (group - 1);
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double pct)
{
    if (h->total == 0)
        return 0;
    if (pct <= 0)
        return h->min;
    if (pct >= 100)
        return h->max;
    /* rank = ceil(pct/100 * total), at least 1: the nearest-rank definition.
     * In integers of 1e-6 %, because 99.9 / 100 * 1000 is 999.0000000000001
     * in doubles and would pick the 1000th value. */
    unsigned __int128 micro = (unsigned __int128)llround(pct * 1e6);
    uint64_t rank =
        (uint64_t)((micro * h->total + 100000000 - 1) / 100000000);
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n_buckets; i++) {
        cum += h->counts[i];
        if (cum >= rank) {
            uint64_t v = bench_hist_bucket_low(h, i) +
                         (bench_hist_bucket_width(h, i) - 1) / 2;
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->total ? h->sum / (double)h->total : 0;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    CHECK(dst->sub_bits == src->sub_bits && dst->n_buckets == src->n_buckets);
    if (src->total == 0)
        return;
    for (size_t i = 0; i < src->n_buckets; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}
