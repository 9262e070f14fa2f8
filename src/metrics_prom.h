/*
 * metrics_prom.h — the Prometheus text exposition (format 0.0.4) of weir's
 * metrics, for the admin listener's GET /metrics.
 */
#ifndef WEIR_METRICS_PROM_H
#define WEIR_METRICS_PROM_H

#include "json.h"

/* Content-Type of the rendering. */
#define METRICS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Append every metric family (HELP, TYPE, samples) to out, reading the
 * published snapshot, the per-worker counters and the window ring.
 * Main thread.
 */
void metrics_prom_render(struct json_buf *out);

/*
 * Append v as the inside of a Prometheus label value: backslash, double
 * quote and newline escaped (the exposition format's only escapes).
 */
void metrics_prom_label_value(struct json_buf *out, const char *v);

#endif
