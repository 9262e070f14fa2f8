/*
 * health.h — endpoint health: passive ejection fed by the data path, and
 * (health.c, main thread) active probes of the published snapshot's
 * endpoints.
 *
 * Passive: HEALTH_EJECT_AFTER consecutive connect failures, or
 * HEALTH_EJECT_5XX_AFTER consecutive failures of which the last is a 5xx
 * response, eject an endpoint for a backoff that doubles while it keeps
 * failing (1s → 30s); any non-5xx response resets the count. Ejection is an
 * atomic deadline on the endpoint, read by the balancer; a passing active
 * check lifts it early.
 *
 * Active (health.c): see the design comment there. The verdict is the
 * endpoint's `healthy` atomic; the balancer skips endpoints that are
 * unhealthy or ejected.
 */
#ifndef WEIR_HEALTH_H
#define WEIR_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "snapshot.h"

#define HEALTH_EJECT_AFTER 3u
#define HEALTH_EJECT_BASE_MS 1000u
#define HEALTH_EJECT_MAX_MS 30000u

/* A connect failure or a failed response. Any thread. */
void health_report_failure(struct endpoint *ep);

/* A good response. Any thread. */
void health_report_success(struct endpoint *ep);

#include <event2/event.h>

/*
 * Start active probes for the published snapshot on the main thread's base
 * (borrowed), and follow later snapshots: within 100 ms of a publish, or at
 * once after health_snapshot_changed(). Main thread.
 */
void health_start(struct event_base *base);

/* A new snapshot was published: sync the probes now rather than at the
 * next poll (no-op before health_start). Main thread. */
void health_snapshot_changed(void);

/* Stop all probes. Main thread. */
void health_stop(void);

/*
 * A response from the endpoint (any status, from the upstream itself, not
 * one of weir's own errors). 5xx counts as a failure toward ejection
 * (HEALTH_EJECT_5XX_AFTER in a row, shared count with connect failures),
 * unless ejecting would leave the version without an available endpoint:
 * an application failing everywhere is better answered by itself than by
 * a 503. Anything else is a success. Any thread (worker).
 */
void health_report_response(struct endpoint *ep, int status);

#define HEALTH_EJECT_5XX_AFTER 5u

/* ---- active-check logic as pure functions (health.c; unit tested) ---- */

/* Rise/fall hysteresis of one endpoint's active checks. */
struct health_hyst {
    bool healthy;       /* current verdict */
    bool confirmed;     /* false until the first check result is applied */
    unsigned successes; /* consecutive, saturating */
    unsigned failures;  /* consecutive, saturating */
};

enum health_transition {
    HEALTH_T_NONE = 0, /* verdict unchanged */
    HEALTH_T_UP,       /* became healthy */
    HEALTH_T_DOWN,     /* became unhealthy */
};

/*
 * Apply one check result. Until the first result (confirmed == false) the
 * verdict is the initial one the caller chose, and the first result alone
 * decides (like HAProxy's "up" initial state and Envoy's pending first
 * check); after that an unhealthy endpoint needs `rise` successes in a row
 * and a healthy one `fall` failures in a row to change. rise/fall of 0 are
 * treated as 1. Pure.
 */
enum health_transition health_hyst_step(struct health_hyst *h, bool ok,
                                        unsigned rise, unsigned fall);

/*
 * Parse the status line at the start of a response: returns the status
 * (100..999), 0 when more bytes are needed (no line end within len), -1
 * when it is not "HTTP/1.x NNN ..." (RFC 9112 section 4). Pure.
 */
int health_parse_status_line(const char *p, size_t len);

/* An active check counts as passed for 2xx and 3xx (like Kubernetes and
 * HAProxy). Pure. */
bool health_status_is_ok(int status);

#endif
