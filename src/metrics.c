/*
 * metrics.c — see metrics.h. Recording side; the Prometheus rendering lives
 * in metrics_prom.c.
 */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "worker.h"

const uint64_t metrics_bucket_us[METRICS_BUCKETS - 1] = {
    250,    500,    1000,    2500,    5000,    10000,   25000,  50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static struct vstats *registry[METRICS_MAX_VSTATS];
static atomic_size_t n_registry;

/* Only the owning worker writes a slot: no read-modify-write needed. */
static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
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
    registry[n] = vs;
    atomic_store(&n_registry, n + 1);
    return vs;
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

void metrics_txn_done(struct worker *w, const struct snapshot *s, int version,
                      struct endpoint *ep, int status, uint64_t duration_us)
{
    int cls = metrics_status_class(status);
    if (ep && cls >= 0)
        bump(&ep->slots[w->id].requests[cls], 1);
    if (version < 0 || !s->versions[version].stats)
        return;
    struct vstats_wslot *vs = &s->versions[version].stats->slots[w->id];
    if (cls >= 0)
        bump(&vs->requests[cls], 1);
    if (!ep && status == 503)
        bump(&vs->no_endpoint, 1);
    size_t b = 0;
    while (b < METRICS_BUCKETS - 1 && duration_us > metrics_bucket_us[b])
        b++;
    bump(&vs->buckets[b], 1);
    bump(&vs->duration_us_sum, duration_us);
}

void metrics_connect_failure(struct worker *w, struct endpoint *ep)
{
    bump(&ep->slots[w->id].connect_failures, 1);
}

void metrics_retry(struct worker *w, struct endpoint *ep)
{
    bump(&ep->slots[w->id].retries, 1);
}

uint64_t metrics_vstats_requests(const struct vstats *vs, int status_class)
{
    uint64_t n = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++)
        n += atomic_load_explicit(&vs->slots[i].requests[status_class],
                                  memory_order_relaxed);
    return n;
}

void metrics_shutdown(void)
{
    size_t n = atomic_load(&n_registry);
    for (size_t i = 0; i < n; i++) {
        free(registry[i]->name);
        free(registry[i]);
        registry[i] = NULL;
    }
    atomic_store(&n_registry, 0);
}
