/*
 * metrics.h — counters and latency histograms, recorded per worker without
 * locks and summed by the reader (admin /metrics, control status).
 *
 * Per endpoint: finished txns by status class, in-flight, connect failures,
 * retries (struct endpoint_wslot, in snapshot.h). Per version name: a
 * struct vstats registered once by the main thread when a snapshot first
 * names the version and never freed (bounded by METRICS_MAX_VSTATS), with a
 * per-worker slot of requests by class, weir's own errors and a duration
 * histogram. Only the owning worker writes a slot (relaxed load + store).
 */
#ifndef WEIR_METRICS_H
#define WEIR_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "snapshot.h"

#define METRICS_MAX_VSTATS 256
/* Histogram upper bounds in microseconds (the last bucket is +Inf). */
#define METRICS_BUCKETS 16
extern const uint64_t metrics_bucket_us[METRICS_BUCKETS - 1];

struct vstats_wslot {
    _Atomic uint64_t requests[STATUS_CLASSES]; /* txns by status class */
    _Atomic uint64_t no_endpoint;  /* answered 503: no endpoint available */
    _Atomic uint64_t buckets[METRICS_BUCKETS]; /* non-cumulative counts */
    _Atomic uint64_t duration_us_sum;
} __attribute__((aligned(64)));

struct vstats {
    char *name; /* owned */
    struct vstats_wslot slots[WORKERS_MAX];
};

struct worker;

/* The stats of a version name, created on first use. Main thread. */
struct vstats *metrics_vstats(const char *name);

/* Every registered vstats, for readers. Any thread. */
size_t metrics_vstats_count(void);
struct vstats *metrics_vstats_at(size_t i);

/* Record a finished txn (status 0 = no response). Worker thread. */
void metrics_txn_done(struct worker *w, const struct snapshot *s, int version,
                      struct endpoint *ep, int status, uint64_t duration_us);
void metrics_connect_failure(struct worker *w, struct endpoint *ep);
void metrics_retry(struct worker *w, struct endpoint *ep);

/* Sum of one counter over the worker slots. */
uint64_t metrics_vstats_requests(const struct vstats *vs, int status_class);

/* Index 0..4 of a status class (1xx..5xx), or -1. */
int metrics_status_class(int status);

/* Free the registry at exit. Main thread. */
void metrics_shutdown(void);

#endif
