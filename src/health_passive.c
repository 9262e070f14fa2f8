/*
 * health_passive.c — passive ejection (see health.h): consecutive failures
 * reported by workers eject an endpoint with exponential backoff.
 */
#include "health.h"

#include "log.h"
#include "util.h"

void health_report_failure(struct endpoint *ep)
{
    unsigned n = atomic_fetch_add_explicit(&ep->consecutive_failures, 1,
                                           memory_order_relaxed) + 1;
    if (n < HEALTH_EJECT_AFTER)
        return;
    unsigned shift = n - HEALTH_EJECT_AFTER;
    uint64_t backoff = shift >= 5 ? HEALTH_EJECT_MAX_MS
                                  : (uint64_t)HEALTH_EJECT_BASE_MS << shift;
    if (backoff > HEALTH_EJECT_MAX_MS)
        backoff = HEALTH_EJECT_MAX_MS;
    atomic_store_explicit(&ep->ejected_until_ms, util_now_ms() + backoff,
                          memory_order_relaxed);
    if (n == HEALTH_EJECT_AFTER)
        log_warn("endpoint %s/%s ejected for %llums after %u failures",
                 ep->version, ep->address, (unsigned long long)backoff, n);
}

void health_report_success(struct endpoint *ep)
{
    if (atomic_load_explicit(&ep->consecutive_failures, memory_order_relaxed))
        atomic_store_explicit(&ep->consecutive_failures, 0, memory_order_relaxed);
}
