/*
 * status_page.h — the admin listener's human view: a self-contained HTML
 * status page (GET /) in the spirit of HAProxy's stats page, and the JSON it
 * polls every 2 s (GET /stats.json).
 *
 * Per version: configured split and achieved share, requests/s, error rate
 * (5xx share), p50/p99 from the duration histogram — all over the last
 * STATUS_PAGE_WINDOW_S seconds of the metrics window ring — and lifetime
 * totals; per endpoint: health, draining, ejection, weight, in-flight,
 * upstream conns, requests, 5xx, connect failures. The page carries its
 * first data inline (first paint needs no round trip) and loads nothing
 * from anywhere else (its Content-Security-Policy forbids it).
 */
#ifndef WEIR_STATUS_PAGE_H
#define WEIR_STATUS_PAGE_H

#include "json.h"

#define STATUS_PAGE_WINDOW_S 10

/* Content-Security-Policy for the page: inline script and style, fetch
 * from the same origin only, nothing external. */
#define STATUS_PAGE_CSP                                                           \
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " \
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "    \
    "frame-ancestors 'none'"

/* Append the stats JSON document (see status_page.c). Main thread. */
void status_page_render_stats(struct json_buf *out);

/* Append the whole HTML page, with the current stats inlined. Main thread. */
void status_page_render_html(struct json_buf *out);

#endif
