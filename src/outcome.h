/*
 * outcome.h — per-version outcome windows: what the release guard judges.
 *
 * One struct outcome_window per worker per judged version, fixed size, no
 * allocation per request, no lock. It is a ring of OUTCOME_SLOTS time slots
 * of slot_ms each (1 s by default); a slot holds the requests, the errors and
 * a latency histogram of the txns that ended in it. A sum covers fewer than
 * (OUTCOME_SLOTS - 2) slots; windows up to 60 s use 1 s slots, longer ones
 * wider slots (outcome_slot_ms()).
 *
 * Threads: exactly one writer, the worker that owns the window
 * (outcome_record); readers on the main thread (outcome_window_add) sum the
 * per-worker copies into a struct outcome_sum. Counters are relaxed atomics
 * written with load + store (no read-modify-write: one writer). A slot is
 * reused for a new time slot under a seqlock on its `epoch` tag: the writer
 * clears the tag, zeroes the counters, then publishes the new tag (release);
 * a reader takes the tag (acquire), copies, and re-checks the tag after an
 * acquire fence, dropping the slot when it changed. A reader may see a txn's
 * request before its latency bucket (a sum off by the txns of this very
 * millisecond), never counts of another time slot.
 *
 * Latency histogram: log-linear buckets over microseconds (the HdrHistogram
 * layout, as bench/bench_hist.c): values below 2^S each own a bucket, every
 * power of two above is cut into 2^S equal buckets, S = OUTCOME_SUB_BITS = 4.
 * A bucket is at most 1/16 of its lower bound wide, so its midpoint is within
 * 3.1 % of any value in it (about 1.6 % on average); values from 2^27 µs
 * (134 s) on share the top bucket.
 *
 * struct outcome_sum is plain integers (exact add and subtract, ready to be
 * serialized when replicas exchange their counts). Does not own: what an
 * error is or when a txn ends (the txn lifecycle decides and calls
 * outcome_record once per txn), the judgement (guard.c).
 */
#ifndef WEIR_OUTCOME_H
#define WEIR_OUTCOME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define OUTCOME_SLOTS 64u
#define OUTCOME_SLOT_MS 1000u /* default slot width */
#define OUTCOME_SUB_BITS 4u
#define OUTCOME_MAX_BITS 27u /* values >= 2^27 µs land in the top bucket */
#define OUTCOME_BUCKETS (((OUTCOME_MAX_BITS - OUTCOME_SUB_BITS) + 1u) << OUTCOME_SUB_BITS)

struct outcome_slot {
    _Atomic uint64_t epoch; /* time slot number + 1 (now_ms / slot_ms + 1); 0 while unused or being reset */
    _Atomic uint32_t requests;
    _Atomic uint32_t errors;
    _Atomic uint32_t latency[OUTCOME_BUCKETS]; /* txns by latency bucket */
};

struct outcome_window {
    uint32_t slot_ms;    /* set at init, read-only afterwards */
    uint64_t last_epoch; /* writer only: the newest slot tag written */
    struct outcome_slot slots[OUTCOME_SLOTS];
};

/* Merged counts over a span of time: plain integers. */
struct outcome_sum {
    uint64_t requests;
    uint64_t errors;
    uint64_t latency[OUTCOME_BUCKETS]; /* by bucket; their total is `requests` */
};

/*
 * The slot width for a window of window_ms: OUTCOME_SLOT_MS, or wider (a whole
 * number of seconds) when the window would not fit in the ring. Pure.
 */
uint32_t outcome_slot_ms(uint32_t window_ms);

/* The longest window (ms) a window of slots of slot_ms can sum. Pure. */
uint64_t outcome_max_span_ms(uint32_t slot_ms);

/*
 * Make w empty with slots of slot_ms (> 0). Before the worker that will own it
 * runs (no reader may run concurrently). No allocation: w is embedded or
 * allocated by the caller (sizeof is about 100 KB).
 */
void outcome_window_init(struct outcome_window *w, uint32_t slot_ms);

/*
 * Count one ended txn at now_ms (a monotonic clock in ms): an error or not,
 * its latency in µs. Owning worker only. Constant time, no allocation. A
 * record older than the ring (now_ms behind the newest record by
 * OUTCOME_SLOTS slots or more) is dropped.
 */
void outcome_record(struct outcome_window *w, uint64_t now_ms, bool is_error, uint64_t latency_us);

/*
 * Add to *sum the outcomes of the slots from the one holding since_ms to the
 * one holding now_ms, both included (now_ms - since_ms < outcome_max_span_ms,
 * asserted). Any thread; concurrent with the writer. Sum the per-worker
 * windows of a version by calling it once per worker.
 */
void outcome_window_add(const struct outcome_window *w, uint64_t since_ms, uint64_t now_ms,
                        struct outcome_sum *sum);

/*
 * The first millisecond of the span outcome_window_add sums for "the last
 * window_ms": the ceil(window_ms / slot_ms) slots up to and including the one
 * holding now_ms, so an outcome older than window_ms is never included (one
 * younger than window_ms - slot_ms always is). Pure.
 */
uint64_t outcome_window_since_ms(uint32_t slot_ms, uint64_t now_ms, uint32_t window_ms);

/* Empty *sum. */
void outcome_sum_clear(struct outcome_sum *sum);

/* dst += src, exactly. */
void outcome_sum_add(struct outcome_sum *dst, const struct outcome_sum *src);

/* dst -= src, exactly. -1 (dst unchanged) when src holds more than dst in any
 * count. */
int outcome_sum_sub(struct outcome_sum *dst, const struct outcome_sum *src) WUR;

/* Bucket of a latency (exposed for tests and simulations). Pure. */
uint32_t outcome_bucket(uint64_t latency_us);

/* Lowest value and the first value above bucket i (µs). Pure. */
uint64_t outcome_bucket_low_us(uint32_t i);
uint64_t outcome_bucket_high_us(uint32_t i);

/*
 * Bounds of the k-th smallest recorded latency (1 <= k <= requests): it lies
 * in [*low_us, *high_us). Pure.
 */
void outcome_sum_rank_us(const struct outcome_sum *sum, uint64_t k, uint64_t *low_us,
                         uint64_t *high_us);

/*
 * The q-quantile (0 <= q <= 1) of the recorded latencies in µs: the midpoint
 * of the bucket holding the ceil(q * requests)-th smallest value (the smallest
 * for q = 0). 0 when the sum is empty. Pure.
 */
double outcome_sum_quantile_us(const struct outcome_sum *sum, double q);

#endif
