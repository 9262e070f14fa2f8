/*
 * health_passive.c — passive ejection (see health.h): consecutive failures
 * reported by workers eject an endpoint with exponential backoff.
 *
 * One counter per endpoint (consecutive_failures) counts connect failures
 * and 5xx responses alike, as Envoy's consecutive_5xx does (a connect
 * failure is a gateway error); the threshold depends on what the latest
 * failure was: connect failures are unambiguous, so they eject sooner than
 * 5xx, which may be an application answering errors for one URL. The
 * counter is not reset by the ejection itself, so a recovered-then-failing
 * endpoint is ejected again at once, for twice as long. Only a good
 * response (or a passing active check, health.c, which lifts the ejection
 * but leaves the count) resets it.
 *
 * Runs on worker threads: atomics only; the guard against ejecting a
 * version's last available endpoint takes a snapshot reference, which is
 * rare (only when a threshold is crossed).
 */
#include "health.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Backoff for the n-th consecutive failure when `after` eject. */
static uint64_t backoff_ms(unsigned n, unsigned after)
{
    unsigned shift = n - after;
    if (shift >= 5)
        return HEALTH_EJECT_MAX_MS;
    uint64_t b = (uint64_t)HEALTH_EJECT_BASE_MS << shift;
    return b > HEALTH_EJECT_MAX_MS ? HEALTH_EJECT_MAX_MS : b;
}

static void eject(struct endpoint *ep, unsigned n, unsigned after,
                  const char *what)
{
    uint64_t now = util_now_ms();
    uint64_t backoff = backoff_ms(n, after);
    uint64_t prev = atomic_exchange_explicit(&ep->ejected_until_ms, now + backoff,
                                             memory_order_relaxed);
    /* Log when an ejection starts, not for failures of requests that were
     * already in flight while it lasts. */
    if (prev <= now) {
        atomic_fetch_add_explicit(&ep->ejections, 1, memory_order_relaxed);
        log_warn("endpoint %s/%s ejected for %llums after %u consecutive failures (last: %s)",
                 ep->version, ep->address, (unsigned long long)backoff, n, what);
    }
}

/* True when ep's version has another endpoint that could take requests. */
static bool has_other_available(const struct endpoint *ep)
{
    struct snapshot *s = snapshot_acquire();
    if (!s)
        return false;
    bool found = false;
    uint64_t now = util_now_ms();
    for (size_t v = 0; v < s->n_versions && !found; v++) {
        const struct snap_version *sv = &s->versions[v];
        if (strcmp(sv->name, ep->version) != 0)
            continue;
        for (size_t i = 0; i < sv->n_eps && !found; i++)
            found = sv->eps[i].ep != ep && !sv->eps[i].draining &&
                    endpoint_is_available(sv->eps[i].ep, now);
    }
    snapshot_unref(s);
    return found;
}

void health_report_failure(struct endpoint *ep)
{
    unsigned n = atomic_fetch_add_explicit(&ep->consecutive_failures, 1,
                                           memory_order_relaxed) +
                 1;
    if (n >= HEALTH_EJECT_AFTER)
        eject(ep, n, HEALTH_EJECT_AFTER, "connect failed");
}

void health_report_success(struct endpoint *ep)
{
    if (atomic_load_explicit(&ep->consecutive_failures, memory_order_relaxed))
        atomic_store_explicit(&ep->consecutive_failures, 0, memory_order_relaxed);
}

void health_report_response(struct endpoint *ep, int status)
{
    if (status < 500 || status > 599) {
        health_report_success(ep);
        return;
    }
    unsigned n = atomic_fetch_add_explicit(&ep->consecutive_failures, 1,
                                           memory_order_relaxed) +
                 1;
    if (n < HEALTH_EJECT_5XX_AFTER)
        return;
    if (!has_other_available(ep))
        return;
    char what[16];
    snprintf(what, sizeof(what), "status %d", status);
    eject(ep, n, HEALTH_EJECT_5XX_AFTER, what);
}
