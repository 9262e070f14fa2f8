/*
 * metrics.c — see metrics.h. Recording side and the reader's sums and
 * window ring; the Prometheus rendering lives in metrics_prom.c.
 *
 * Window ring: sample k (k = 0, 1, ...) is stored at k % METRICS_WINDOW_SAMPLES
 * in every vstats' ring, with its time in sample_ms[]. A vstats registered
 * after some samples were taken has zeros there, which is right: it was
 * registered (by metrics_bind, before its snapshot is published) before any
 * txn could count against it.
 */
#include "metrics.h"
#include "outcome.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

/* clang-format off */
const uint64_t metrics_bucket_us[METRICS_BUCKETS - 1] = {
    50,     100,    250,    500,     1000,    2500,    5000,
    10000,  25000,  50000,  100000,  250000,  500000,  1000000,
    2500000, 5000000, 10000000, 30000000, 60000000,
};
/* clang-format on */

static struct vstats *registry[METRICS_MAX_VSTATS];
static atomic_size_t n_registry;
static struct metrics_unrouted_wslot unrouted[WORKERS_MAX];

/* Window ring bookkeeping (main thread only). */
static uint64_t sample_ms[METRICS_WINDOW_SAMPLES];
static uint64_t n_samples; /* samples taken so far */

/* Only the owning worker writes a slot: no read-modify-write needed. */
static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static inline uint64_t rd(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static unsigned n_outcome_workers; /* main thread */

static void alloc_outcomes(struct vstats *vs)
{
    for (unsigned i = 0; i < n_outcome_workers && i < WORKERS_MAX; i++)
        if (!vs->outcomes[i]) {
            vs->outcomes[i] = xmalloc(sizeof(*vs->outcomes[i]));
            outcome_window_init(vs->outcomes[i], OUTCOME_SLOT_MS);
        }
}

void metrics_outcomes_enable(unsigned n_workers)
{
    n_outcome_workers = n_workers;
    size_t n = atomic_load(&n_registry);
    for (size_t i = 0; i < n; i++)
        alloc_outcomes(registry[i]);
}

struct vstats *metrics_vstats(const char *name)
{
    size_t n = atomic_load(&n_registry);
    for (size_t i = 0; i < n; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    if (n == METRICS_MAX_VSTATS)
        return NULL; /* recording skips versions beyond the cap */
    struct vstats *vs = xcalloc(1, sizeof(*vs));
    vs->name = xstrdup(name);
    vs->ring = xcalloc(METRICS_WINDOW_SAMPLES, sizeof(*vs->ring));
    alloc_outcomes(vs);
    registry[n] = vs;
    atomic_store(&n_registry, n + 1);
    return vs;
}

void metrics_bind(struct snapshot *s)
{
    for (size_t v = 0; v < s->n_versions; v++)
        s->versions[v].stats = metrics_vstats(s->versions[v].name);
}

size_t metrics_vstats_count(void)
{
    return atomic_load(&n_registry);
}

struct vstats *metrics_vstats_at(size_t i)
{
    return registry[i];
}

int metrics_status_class(int status)
{
    if (status < 100 || status > 599)
        return -1;
    return status / 100 - 1;
}

void metrics_txn_done(const struct loop *loop, const struct snapshot *s, int version,
                      struct endpoint *ep, int status, enum txn_error err,
                      bool aborted, uint64_t duration_us)
{
    int cls = metrics_status_class(status);
    if (version < 0) {
        if (cls >= 0)
            bump(&unrouted[loop->id].requests[cls], 1);
        if (aborted || cls < 0)
            bump(&unrouted[loop->id].aborted, 1);
        return;
    }
    if (!s->versions[version].stats)
        return;
    struct vstats_wslot *vs = &s->versions[version].stats->slots[loop->id];
    if (aborted)
        bump(&vs->aborted, 1);
    if (err > TXN_E_NONE && err < TXN_E_COUNT)
        bump(&vs->errors[err], 1);
    if (cls < 0) {
        /* No status at all (every txn has one; defensive): kept out of the
         * request counters and the histogram, so their counts agree. */
        if (!aborted)
            bump(&vs->aborted, 1);
        return;
    }
    bump(&vs->requests[cls], 1);
    /* The endpoint after its version: a reader that sums endpoints first
     * and versions second never sees an endpoint ahead of its version. */
    if (ep)
        bump(&ep->slots[loop->id].requests[cls], 1);
    if (!ep) {
        bump(&vs->no_ep_requests[cls], 1);
        if (status == 503)
            bump(&vs->no_endpoint, 1);
    }
    size_t b = 0;
    while (b < METRICS_BUCKETS - 1 && duration_us > metrics_bucket_us[b])
        b++;
    bump(&vs->buckets[b], 1);
    bump(&vs->duration_us_sum, duration_us);
    /* The guard's evidence: only while a guard is configured. A client
     * that gave up counts with the time it waited, so a canary slow enough
     * to make clients leave shows as slow. */
    struct outcome_window *ow = s->cfg->guard.enabled
                                    ? s->versions[version].stats->outcomes[loop->id]
                                    : NULL;
    if (ow)
        outcome_record(ow, util_now_ms(), txn_error_is_failure(status, err), duration_us);
}

static size_t bucket_of(uint64_t us)
{
    size_t b = 0;
    while (b < METRICS_BUCKETS - 1 && us > metrics_bucket_us[b])
        b++;
    return b;
}

void metrics_txn_io(const struct loop *loop, const struct snapshot *s, int version,
                    uint64_t bytes_in, uint64_t bytes_out, int64_t upstream_us)
{
    if (version < 0 || !s->versions[version].stats)
        return;
    struct vstats_wslot *vs = &s->versions[version].stats->slots[loop->id];
    bump(&vs->bytes_received, bytes_in);
    bump(&vs->bytes_sent, bytes_out);
    if (upstream_us >= 0) {
        bump(&vs->up_buckets[bucket_of((uint64_t)upstream_us)], 1);
        bump(&vs->up_us_sum, (uint64_t)upstream_us);
    }
}

void metrics_connect_failure(const struct loop *loop, struct endpoint *ep)
{
    bump(&ep->slots[loop->id].connect_failures, 1);
}

void metrics_retry(const struct loop *loop, struct endpoint *ep)
{
    bump(&ep->slots[loop->id].retries, 1);
}

void metrics_upstream_conn(const struct loop *loop, struct endpoint *ep, int delta)
{
    _Atomic uint64_t *c = &ep->slots[loop->id].conns;
    atomic_store_explicit(c, rd(c) + (uint64_t)(int64_t)delta, memory_order_relaxed);
}

uint64_t metrics_vstats_requests(const struct vstats *vs, int status_class)
{
    uint64_t n = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++)
        n += rd(&vs->slots[i].requests[status_class]);
    return n;
}

void metrics_vstats_totals(const struct vstats *vs, struct metrics_vtotals *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < WORKERS_MAX; i++) {
        const struct vstats_wslot *s = &vs->slots[i];
        for (int c = 0; c < STATUS_CLASSES; c++) {
            out->requests[c] += rd(&s->requests[c]);
            out->no_ep_requests[c] += rd(&s->no_ep_requests[c]);
        }
        out->no_endpoint += rd(&s->no_endpoint);
        out->aborted += rd(&s->aborted);
        for (int e = 0; e < TXN_E_COUNT; e++)
            out->errors[e] += rd(&s->errors[e]);
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            out->buckets[b] += rd(&s->buckets[b]);
            out->up_buckets[b] += rd(&s->up_buckets[b]);
        }
        out->duration_us_sum += rd(&s->duration_us_sum);
        out->up_us_sum += rd(&s->up_us_sum);
        out->bytes_received += rd(&s->bytes_received);
        out->bytes_sent += rd(&s->bytes_sent);
    }
}

void metrics_unrouted_totals(uint64_t requests[STATUS_CLASSES], uint64_t *aborted)
{
    memset(requests, 0, STATUS_CLASSES * sizeof(requests[0]));
    *aborted = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++) {
        for (int c = 0; c < STATUS_CLASSES; c++)
            requests[c] += rd(&unrouted[i].requests[c]);
        *aborted += rd(&unrouted[i].aborted);
    }
}

/* One counter of an endpoint summed over the workers' slots; `off` is the
 * counter's offsetof() in struct endpoint_wslot. */
static uint64_t sum_slots(const struct endpoint *ep, size_t off)
{
    uint64_t n = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++)
        n += rd((const _Atomic uint64_t *)((const char *)&ep->slots[i] + off));
    return n;
}

uint64_t metrics_endpoint_conns(const struct endpoint *ep)
{
    return sum_slots(ep, offsetof(struct endpoint_wslot, conns));
}

uint64_t metrics_endpoint_connect_failures(const struct endpoint *ep)
{
    return sum_slots(ep, offsetof(struct endpoint_wslot, connect_failures));
}

uint64_t metrics_endpoint_retries(const struct endpoint *ep)
{
    return sum_slots(ep, offsetof(struct endpoint_wslot, retries));
}

uint64_t metrics_vtotals_count(const struct metrics_vtotals *t)
{
    uint64_t n = 0;
    for (int c = 0; c < STATUS_CLASSES; c++)
        n += t->requests[c];
    return n;
}

double metrics_quantile_us(const uint64_t buckets[METRICS_BUCKETS], double q)
{
    uint64_t total = 0;
    for (int b = 0; b < METRICS_BUCKETS; b++)
        total += buckets[b];
    if (total == 0)
        return -1;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    double rank = q * (double)total;
    uint64_t below = 0;
    for (int b = 0; b < METRICS_BUCKETS; b++) {
        if (buckets[b] && (double)(below + buckets[b]) >= rank) {
            if (b == METRICS_BUCKETS - 1)
                return (double)metrics_bucket_us[METRICS_BUCKETS - 2];
            double lo = b ? (double)metrics_bucket_us[b - 1] : 0;
            double hi = (double)metrics_bucket_us[b];
            return lo + (hi - lo) * (rank - (double)below) / (double)buckets[b];
        }
        below += buckets[b];
    }
    return (double)metrics_bucket_us[METRICS_BUCKETS - 2];
}

void metrics_window_tick(uint64_t now_ms)
{
    size_t slot = (size_t)(n_samples % METRICS_WINDOW_SAMPLES);
    size_t n = metrics_vstats_count();
    for (size_t i = 0; i < n; i++)
        metrics_vstats_totals(registry[i], &registry[i]->ring[slot]);
    sample_ms[slot] = now_ms;
    n_samples++;
}

/* out = a - b, counter by counter (counters only grow). */
static void vtotals_sub(struct metrics_vtotals *a, const struct metrics_vtotals *b)
{
    for (int c = 0; c < STATUS_CLASSES; c++) {
        a->requests[c] -= b->requests[c];
        a->no_ep_requests[c] -= b->no_ep_requests[c];
    }
    a->no_endpoint -= b->no_endpoint;
    a->aborted -= b->aborted;
    for (int e = 0; e < TXN_E_COUNT; e++)
        a->errors[e] -= b->errors[e];
    for (int k = 0; k < METRICS_BUCKETS; k++) {
        a->buckets[k] -= b->buckets[k];
        a->up_buckets[k] -= b->up_buckets[k];
    }
    a->duration_us_sum -= b->duration_us_sum;
    a->up_us_sum -= b->up_us_sum;
    a->bytes_received -= b->bytes_received;
    a->bytes_sent -= b->bytes_sent;
}

void metrics_window_delta(size_t i, unsigned seconds, uint64_t now_ms,
                          struct metrics_vtotals *out, uint64_t *span_ms)
{
    metrics_vstats_totals(registry[i], out);
    *span_ms = 0;
    if (n_samples == 0)
        return;
    /* Walk back from the newest sample to the newest one at least
     * `seconds` old, stopping at the oldest still in the ring. */
    uint64_t want = (uint64_t)seconds * 1000;
    uint64_t avail = n_samples < METRICS_WINDOW_SAMPLES ? n_samples
                                                        : METRICS_WINDOW_SAMPLES;
    uint64_t k = n_samples - 1;
    for (uint64_t walked = 1; walked < avail; walked++) {
        if (now_ms - sample_ms[k % METRICS_WINDOW_SAMPLES] >= want)
            break;
        k--;
    }
    size_t slot = (size_t)(k % METRICS_WINDOW_SAMPLES);
    vtotals_sub(out, &registry[i]->ring[slot]);
    *span_ms = now_ms > sample_ms[slot] ? now_ms - sample_ms[slot] : 0;
}

void metrics_shutdown(void)
{
    size_t n = atomic_load(&n_registry);
    for (size_t i = 0; i < n; i++) {
        free(registry[i]->name);
        free(registry[i]->ring);
        for (size_t w = 0; w < WORKERS_MAX; w++)
            free(registry[i]->outcomes[w]);
        free(registry[i]);
        registry[i] = NULL;
    }
    atomic_store(&n_registry, 0);
    n_samples = 0;
}
