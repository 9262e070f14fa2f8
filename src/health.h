/*
 * health.h — endpoint health: passive ejection fed by the data path, and
 * (health.c, main thread) active probes and DNS discovery.
 *
 * Passive: HEALTH_EJECT_AFTER consecutive connect failures eject an endpoint
 * for a backoff that doubles while it keeps failing (1s → 30s); any success
 * resets the count. Ejection is an atomic deadline on the endpoint, read by
 * the balancer.
 */
#ifndef WEIR_HEALTH_H
#define WEIR_HEALTH_H

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
 * Start active probes and DNS discovery for the running config on the main
 * thread's base, and follow later snapshots (health_config_changed).
 * Main thread.
 */
void health_start(struct event_base *base);

/* The running config changed (new snapshot published): re-plan probes and
 * discovery. Main thread. */
void health_config_changed(void);

/* Stop all probes and resolvers. Main thread. */
void health_stop(void);

#endif
