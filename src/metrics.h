/*
 * metrics.h — counters and latency histograms, recorded per worker without
 * locks and summed by the reader (admin /metrics, /stats.json, control
 * status).
 *
 * Per endpoint: finished txns by status class, in-flight, connect failures,
 * retries, open upstream conns (struct endpoint_wslot, in snapshot.h) and
 * passive ejections (struct endpoint). Per version name: a struct vstats
 * registered once by the main thread when a snapshot first names the
 * version and never freed (bounded by METRICS_MAX_VSTATS), with a
 * per-worker slot of requests by class (with and without an endpoint),
 * client aborts (499s, which are in the 4xx class too), requests by the
 * reason they did not end plainly (enum txn_error), weir's own no-endpoint
 * answers and a duration histogram (every request, aborted ones with the
 * time until the client left, so the histogram's count equals the sum of
 * the classes), an upstream-latency histogram (request head handed to the
 * upstream conn → first response byte, for requests an upstream answered)
 * and the bytes read from and queued to clients (metrics_txn_io).
 * Txns that never reached routing (400, 431...) are counted per worker in
 * an "unrouted" slot. Only the owning worker writes a slot (relaxed load +
 * store: no read-modify-write, no lock); readers sum the slots.
 *
 * Reader side, main thread only: a ring of once-a-second samples of every
 * vstats' totals (metrics_window_tick) gives windowed rates, shares and
 * quantiles (metrics_window_delta) for the status page and the achieved
 * share gauge, without any per-request cost.
 */
#ifndef WEIR_METRICS_H
#define WEIR_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"
#include "txn_error.h"

#define METRICS_MAX_VSTATS 256
/* Histogram buckets: upper bounds in microseconds, 50 µs .. 60 s (the last
 * bucket, index METRICS_BUCKETS - 1, is +Inf). */
#define METRICS_BUCKETS 20
extern const uint64_t metrics_bucket_us[METRICS_BUCKETS - 1];

/* Samples kept by the window ring (one per second): windows up to 60 s. */
#define METRICS_WINDOW_SAMPLES 64

/* Mirror results counted per shadow version (mirror_cmp.h's enum
 * mirror_result: match, differ, error, dropped). */
#define METRICS_MIRROR_RESULTS 4

struct vstats_wslot {
    _Atomic uint64_t requests[STATUS_CLASSES];       /* txns by status class */
    _Atomic uint64_t no_ep_requests[STATUS_CLASSES]; /* of which without endpoint */
    _Atomic uint64_t no_endpoint;                    /* answered 503: no endpoint available */
    _Atomic uint64_t aborted;                        /* the client went away first (499) */
    _Atomic uint64_t errors[TXN_E_COUNT];            /* by reason; [TXN_E_NONE] unused */
    _Atomic uint64_t buckets[METRICS_BUCKETS];       /* non-cumulative counts */
    _Atomic uint64_t duration_us_sum;
    _Atomic uint64_t up_buckets[METRICS_BUCKETS]; /* upstream latency, non-cumulative */
    _Atomic uint64_t up_us_sum;
    _Atomic uint64_t bytes_received;                 /* from clients: request heads and bodies */
    _Atomic uint64_t bytes_sent;                     /* to clients: response heads and bodies */
    _Atomic uint64_t mirror[METRICS_MIRROR_RESULTS]; /* as a shadow (mirror.c) */
} __attribute__((aligned(64)));

/* A version's counters summed over workers (a plain value, any thread). */
struct metrics_vtotals {
    uint64_t requests[STATUS_CLASSES];
    uint64_t no_ep_requests[STATUS_CLASSES];
    uint64_t no_endpoint;
    uint64_t aborted;
    uint64_t errors[TXN_E_COUNT];
    uint64_t buckets[METRICS_BUCKETS]; /* non-cumulative */
    uint64_t duration_us_sum;
    uint64_t up_buckets[METRICS_BUCKETS]; /* non-cumulative */
    uint64_t up_us_sum;
    uint64_t bytes_received;
    uint64_t bytes_sent;
};

struct outcome_window;

struct vstats {
    char *name; /* owned */
    struct vstats_wslot slots[WORKERS_MAX];
    struct metrics_vtotals *ring; /* owned, METRICS_WINDOW_SAMPLES; main thread only */
    /* The release guard's outcome windows, one per worker (owned; NULL
     * before metrics_outcomes_enable, and beyond the worker count). A
     * worker writes its own; the main thread sums them (release.c). */
    struct outcome_window *outcomes[WORKERS_MAX];
};

/* Txns that ended before a version was chosen (bad request...). */
struct metrics_unrouted_wslot {
    _Atomic uint64_t requests[STATUS_CLASSES];
    _Atomic uint64_t aborted;
} __attribute__((aligned(64)));

struct loop;

/* The stats of a version name, created on first use. Main thread. */
struct vstats *metrics_vstats(const char *name);

/* Point every version of s (built, not yet published) at the stats of its
 * name (metrics_vstats). Main thread. */
void metrics_bind(struct snapshot *s);

/*
 * Give every vstats, present and future, an outcome window per worker (n
 * workers): the release guard's evidence. Before the workers start. Main
 * thread.
 */
void metrics_outcomes_enable(unsigned n_workers);

/* Every registered vstats, for readers. Any thread. */
size_t metrics_vstats_count(void);
struct vstats *metrics_vstats_at(size_t i);

/*
 * Record a finished request: status (what the client got; 499 when it went
 * away), err (why it did not end plainly, TXN_E_NONE if it did), aborted
 * (the client went away first), duration until the end. version < 0: it
 * ended before routing. Worker thread.
 */
void metrics_txn_done(const struct loop *loop, const struct snapshot *s, int version,
                      struct endpoint *ep, int status, enum txn_error err,
                      bool aborted, uint64_t duration_us);
/*
 * The bytes of a finished request and its upstream's latency: bytes_in
 * read from the client (head and body), bytes_out queued to it (head and
 * body, weir's own answers included), upstream_us from the request head
 * handed to the upstream conn to the first byte of the response (-1: no
 * response came from an upstream). version < 0: not counted. Worker thread.
 */
void metrics_txn_io(const struct loop *loop, const struct snapshot *s, int version,
                    uint64_t bytes_in, uint64_t bytes_out, int64_t upstream_us);
void metrics_connect_failure(const struct loop *loop, struct endpoint *ep);
void metrics_retry(const struct loop *loop, struct endpoint *ep);
/* An upstream conn to ep was opened (+1) or closed (-1). Worker thread. */
void metrics_upstream_conn(const struct loop *loop, struct endpoint *ep, int delta);

/* Sum of one counter over the worker slots. Any thread. */
uint64_t metrics_vstats_requests(const struct vstats *vs, int status_class);
/* All counters of vs summed over the worker slots. Any thread. */
void metrics_vstats_totals(const struct vstats *vs, struct metrics_vtotals *out);
/* Unrouted txns: requests by class and aborted, summed. Any thread. */
void metrics_unrouted_totals(uint64_t requests[STATUS_CLASSES], uint64_t *aborted);
/* Open upstream conns / connect failures / retries of ep, summed. Any thread. */
uint64_t metrics_endpoint_conns(const struct endpoint *ep);
uint64_t metrics_endpoint_connect_failures(const struct endpoint *ep);
uint64_t metrics_endpoint_retries(const struct endpoint *ep);

/* Index 0..4 of a status class (1xx..5xx), or -1. */
int metrics_status_class(int status);

/* Responses with any status in t (sum of the classes). */
uint64_t metrics_vtotals_count(const struct metrics_vtotals *t);

/*
 * Estimate quantile q (0..1) in microseconds from non-cumulative bucket
 * counts, interpolating linearly inside the bucket (as Prometheus'
 * histogram_quantile does). Returns -1 when the histogram is empty; a
 * quantile in the +Inf bucket reports the largest finite bound.
 */
double metrics_quantile_us(const uint64_t buckets[METRICS_BUCKETS], double q);

/*
 * Take a sample of every vstats' totals now (now_ms: util_now_ms()). Call
 * about once a second. Main thread.
 */
void metrics_window_tick(uint64_t now_ms);

/*
 * Counters of vstats i accrued over about the last `seconds` (the current
 * totals minus the sample closest to `seconds` ago, or the oldest sample,
 * or zero before the first sample). *span_ms gets the window length
 * actually covered (0 before any sample). Main thread.
 */
void metrics_window_delta(size_t i, unsigned seconds, uint64_t now_ms,
                          struct metrics_vtotals *out, uint64_t *span_ms);

/* Free the registry at exit. Main thread. */
void metrics_shutdown(void);

#endif
