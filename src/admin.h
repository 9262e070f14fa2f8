/*
 * admin.h — the read-only admin HTTP listener (`admin:` in the config) on
 * the main thread: GET /metrics (Prometheus text), /healthz (200 serving,
 * 503 draining), /status (the control `status` JSON), / (HTML status page).
 */
#ifndef WEIR_ADMIN_H
#define WEIR_ADMIN_H

#include <event2/event.h>

#include "config.h"

/* Start listening when cfg->admin is set (no-op otherwise). Returns 0/-1. */
int admin_start(struct event_base *base, const struct config *cfg) WUR;

/* From now on /healthz answers 503 (graceful stop in progress). */
void admin_set_draining(void);

/* Stop listening and drop admin connections. */
void admin_stop(void);

#endif
