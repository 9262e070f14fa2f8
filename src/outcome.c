/*
 * outcome.c — per-version outcome windows (see outcome.h for the layout, the
 * threads and the seqlock on slot reuse).
 *
 * A slot's tag is its time slot number + 1, so the zeroed ring is empty. The
 * writer moves to a new slot when the tag of now_ms's slot differs: it resets
 * that slot (the one OUTCOME_SLOTS slots older, or never used) and publishes
 * the tag. Readers accept a slot only when its tag is inside the span they
 * sum, before and after copying. Nothing here allocates or locks.
 */
#include "outcome.h"

#include <string.h>

static inline uint32_t load32(const _Atomic uint32_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* One writer: a load and a store, no read-modify-write. */
static inline void bump32(_Atomic uint32_t *a)
{
    atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + 1u,
                          memory_order_relaxed);
}

uint32_t outcome_slot_ms(uint32_t window_ms)
{
    /* A span of a window plus the part-slots at both ends (guard_epoch's
     * spans are shorter than the window) must stay below
     * outcome_max_span_ms. */
    uint64_t usable = OUTCOME_SLOTS - 4u;
    if (window_ms <= usable * OUTCOME_SLOT_MS)
        return OUTCOME_SLOT_MS;
    uint64_t s = ((uint64_t)window_ms + usable * 1000u - 1u) / (usable * 1000u);
    return (uint32_t)(s * 1000u);
}

uint64_t outcome_max_span_ms(uint32_t slot_ms)
{
    return (uint64_t)(OUTCOME_SLOTS - 2u) * slot_ms;
}

void outcome_window_init(struct outcome_window *w, uint32_t slot_ms)
{
    CHECK(slot_ms > 0);
    memset(w, 0, sizeof(*w));
    w->slot_ms = slot_ms;
    for (uint32_t i = 0; i < OUTCOME_SLOTS; i++)
        atomic_init(&w->slots[i].epoch, 0);
}

uint32_t outcome_bucket(uint64_t v)
{
    const uint64_t sub = 1u << OUTCOME_SUB_BITS;
    if (v < sub)
        return (uint32_t)v;
    if (v >= (1ull << OUTCOME_MAX_BITS))
        return OUTCOME_BUCKETS - 1u;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);  /* v in [2^m, 2^(m+1)), m >= S */
    uint64_t k = (v >> (m - OUTCOME_SUB_BITS)) - sub; /* 0 .. sub-1 */
    return (uint32_t)(((uint64_t)(m - OUTCOME_SUB_BITS + 1u) << OUTCOME_SUB_BITS) + k);
}

uint64_t outcome_bucket_low_us(uint32_t i)
{
    const uint32_t sub = 1u << OUTCOME_SUB_BITS;
    if (i < sub)
        return i;
    uint32_t octave = i >> OUTCOME_SUB_BITS; /* >= 1: values in [2^(S+octave-1), ...) */
    uint32_t k = i & (sub - 1u);
    unsigned m = OUTCOME_SUB_BITS + octave - 1u;
    return (1ull << m) + ((uint64_t)k << (m - OUTCOME_SUB_BITS));
}

uint64_t outcome_bucket_high_us(uint32_t i)
{
    const uint32_t sub = 1u << OUTCOME_SUB_BITS;
    if (i + 1u >= OUTCOME_BUCKETS)
        return UINT64_MAX; /* the top bucket is open */
    if (i < sub)
        return (uint64_t)i + 1u;
    return outcome_bucket_low_us(i + 1u);
}

void outcome_record(struct outcome_window *w, uint64_t now_ms, bool is_error, uint64_t latency_us)
{
    uint64_t tag = now_ms / w->slot_ms + 1u;
    struct outcome_slot *s = &w->slots[tag % OUTCOME_SLOTS];
    uint64_t have = atomic_load_explicit(&s->epoch, memory_order_relaxed);
    if (have != tag) {
        if (have > tag || tag + OUTCOME_SLOTS <= w->last_epoch)
            return; /* older than the ring: that slot holds newer outcomes */
        /* Seqlock write side: untag, zero, publish the new tag. */
        atomic_store_explicit(&s->epoch, 0, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(&s->requests, 0, memory_order_relaxed);
        atomic_store_explicit(&s->errors, 0, memory_order_relaxed);
        for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
            atomic_store_explicit(&s->latency[i], 0, memory_order_relaxed);
        atomic_store_explicit(&s->epoch, tag, memory_order_release);
    }
    if (tag > w->last_epoch)
        w->last_epoch = tag;
    bump32(&s->latency[outcome_bucket(latency_us)]);
    if (is_error)
        bump32(&s->errors);
    bump32(&s->requests);
}

uint64_t outcome_window_since_ms(uint32_t slot_ms, uint64_t now_ms, uint32_t window_ms)
{
    uint64_t n = ((uint64_t)window_ms + slot_ms - 1u) / slot_ms;
    if (n == 0)
        n = 1;
    uint64_t back = (n - 1u) * slot_ms;
    uint64_t first = now_ms - now_ms % slot_ms;
    return first >= back ? first - back : 0;
}

void outcome_window_add(const struct outcome_window *w, uint64_t since_ms, uint64_t now_ms,
                        struct outcome_sum *sum)
{
    CHECK(since_ms <= now_ms);
    uint64_t lo = since_ms / w->slot_ms + 1u, hi = now_ms / w->slot_ms + 1u;
    CHECK(hi - lo < OUTCOME_SLOTS - 2u);
    struct outcome_sum part;
    for (uint64_t tag = lo; tag <= hi; tag++) {
        const struct outcome_slot *s = &w->slots[tag % OUTCOME_SLOTS];
        if (atomic_load_explicit(&s->epoch, memory_order_acquire) != tag)
            continue; /* no outcome in that time slot, or it is being reset */
        part.requests = load32(&s->requests);
        part.errors = load32(&s->errors);
        for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
            part.latency[i] = load32(&s->latency[i]);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != tag)
            continue; /* reused while we copied: those counts are of another slot */
        outcome_sum_add(sum, &part);
    }
}

void outcome_sum_clear(struct outcome_sum *sum)
{
    memset(sum, 0, sizeof(*sum));
}

void outcome_sum_add(struct outcome_sum *dst, const struct outcome_sum *src)
{
    dst->requests += src->requests;
    dst->errors += src->errors;
    for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
        dst->latency[i] += src->latency[i];
}

int outcome_sum_sub(struct outcome_sum *dst, const struct outcome_sum *src)
{
    if (src->requests > dst->requests || src->errors > dst->errors)
        return -1;
    for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
        if (src->latency[i] > dst->latency[i])
            return -1;
    dst->requests -= src->requests;
    dst->errors -= src->errors;
    for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
        dst->latency[i] -= src->latency[i];
    return 0;
}

void outcome_sum_rank_us(const struct outcome_sum *sum, uint64_t k, uint64_t *low_us,
                         uint64_t *high_us)
{
    uint64_t seen = 0;
    for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++) {
        seen += sum->latency[i];
        if (seen >= k && sum->latency[i] > 0) {
            *low_us = outcome_bucket_low_us(i);
            *high_us = outcome_bucket_high_us(i);
            return;
        }
    }
    /* k beyond the recorded values (a reader racing the writer's last
     * increments, or a caller's bug): the open top of the scale. */
    *low_us = outcome_bucket_low_us(OUTCOME_BUCKETS - 1u);
    *high_us = UINT64_MAX;
}

double outcome_sum_quantile_us(const struct outcome_sum *sum, double q)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < OUTCOME_BUCKETS; i++)
        n += sum->latency[i];
    if (n == 0)
        return 0.0;
    if (q < 0.0)
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    double kd = q * (double)n;
    uint64_t k = (uint64_t)kd;
    if ((double)k < kd)
        k++;
    if (k == 0)
        k = 1;
    uint64_t lo, hi;
    outcome_sum_rank_us(sum, k, &lo, &hi);
    if (hi == UINT64_MAX)
        return (double)lo; /* the open top bucket: its floor */
    return ((double)lo + (double)(hi - 1u)) / 2.0;
}
