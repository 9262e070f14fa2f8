/*
 * metrics_prom.c — see metrics_prom.h.
 *
 * One pass per metric family (the format wants a family's samples together,
 * after its HELP and TYPE lines). Label sets:
 *   {version, endpoint, code}  requests by endpoint of the published
 *       snapshot, all five classes (zeros included, so rate() has a start);
 *       plus endpoint="" for a version's answers without an endpoint (503
 *       no healthy endpoint) and version="", endpoint="" for requests that
 *       never reached routing (400, 431...), both only when non-zero.
 *       sum(weir_requests_total) is therefore every response weir sent.
 *   {version}  per version name ever configured (counters survive a
 *       version's removal from the config) or, for gauges of the current
 *       configuration, per version of the published snapshot.
 *   {version, endpoint}  per endpoint of the published snapshot.
 * Series are unique because version names are unique in a snapshot and in
 * the registry, and addresses are unique within a version (validator and
 * snapshot_new's discovery merge).
 */
#include "metrics_prom.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "client.h"
#include "h2_metrics.h"
#include "metrics.h"
#include "fleet.h"
#include "metrics_process.h"
#include "metrics_tls.h"
#include "mirror.h"
#include "release.h"
#include "snapshot.h"
#include "util.h"

#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

/* Window of the achieved-share gauge. */
#define SHARE_WINDOW_S 60

static const char *const class_names[STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

void metrics_prom_label_value(struct json_buf *out, const char *v)
{
    const char *run = v;
    for (const char *p = v; *p; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '"')
            esc = "\\\"";
        else if (*p == '\n')
            esc = "\\n";
        if (!esc)
            continue;
        json_buf_add(out, run, (size_t)(p - run));
        json_buf_puts(out, esc);
        run = p + 1;
    }
    json_buf_puts(out, run);
}

static void family(struct json_buf *out, const char *name, const char *type,
                   const char *help)
{
    json_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{version="V"[,endpoint="E"][,code="C"]} — opens the sample line. */
static void series(struct json_buf *out, const char *name, const char *version,
                   const char *endpoint, const char *code)
{
    json_buf_puts(out, name);
    json_buf_puts(out, "{version=\"");
    metrics_prom_label_value(out, version);
    json_buf_puts(out, "\"");
    if (endpoint) {
        json_buf_puts(out, ",endpoint=\"");
        metrics_prom_label_value(out, endpoint);
        json_buf_puts(out, "\"");
    }
    if (code)
        json_buf_printf(out, ",code=\"%s\"", code);
    json_buf_puts(out, "} ");
}

static void value_u(struct json_buf *out, uint64_t v)
{
    json_buf_printf(out, "%" PRIu64 "\n", v);
}

/* Microseconds as decimal seconds without float noise: 50 → "0.00005". */
static void us_seconds(uint64_t us, char *buf, size_t len)
{
    uint64_t frac = us % 1000000;
    if (!frac) {
        snprintf(buf, len, "%" PRIu64, us / 1000000);
        return;
    }
    char digits[8];
    snprintf(digits, sizeof(digits), "%06" PRIu64, frac);
    size_t n = 6;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    snprintf(buf, len, "%" PRIu64 ".%s", us / 1000000, digits);
}

/* Per endpoint of the snapshot, one gauge/counter value. */
typedef uint64_t (*ep_value_cb)(const struct snap_endpoint *se, uint64_t now_ms);

static void per_endpoint(struct json_buf *out, const struct snapshot *s,
                         const char *name, const char *type, const char *help,
                         ep_value_cb fn, uint64_t now_ms)
{
    family(out, name, type, help);
    for (size_t v = 0; v < s->n_versions; v++)
        for (size_t i = 0; i < s->versions[v].n_eps; i++) {
            const struct snap_endpoint *se = &s->versions[v].eps[i];
            series(out, name, s->versions[v].name, se->ep->address, NULL);
            value_u(out, fn(se, now_ms));
        }
}

static uint64_t on_connect_failures(const struct snap_endpoint *se, uint64_t now_ms)
{
    (void)now_ms;
    return metrics_endpoint_connect_failures(se->ep);
}

static uint64_t on_retries(const struct snap_endpoint *se, uint64_t now_ms)
{
    (void)now_ms;
    return metrics_endpoint_retries(se->ep);
}

static uint64_t on_ejections(const struct snap_endpoint *se, uint64_t now_ms)
{
    (void)now_ms;
    return atomic_load_explicit(&se->ep->ejections, memory_order_relaxed);
}

static uint64_t on_ejected(const struct snap_endpoint *se, uint64_t now_ms)
{
    return atomic_load_explicit(&se->ep->ejected_until_ms, memory_order_relaxed) > now_ms;
}

static uint64_t on_healthy(const struct snap_endpoint *se, uint64_t now_ms)
{
    return endpoint_is_available(se->ep, now_ms);
}

static uint64_t on_draining(const struct snap_endpoint *se, uint64_t now_ms)
{
    (void)now_ms;
    return se->draining;
}

static uint64_t on_weight(const struct snap_endpoint *se, uint64_t now_ms)
{
    (void)now_ms;
    return se->weight;
}

static uint64_t on_inflight(const struct snap_endpoint *se, uint64_t now_ms)
{
    (void)now_ms;
    return endpoint_inflight(se->ep);
}

static uint64_t on_conns(const struct snap_endpoint *se, uint64_t now_ms)
{
    (void)now_ms;
    return metrics_endpoint_conns(se->ep);
}

static void render_requests(struct json_buf *out, const struct snapshot *s,
                            const struct metrics_vtotals *tot, size_t n_vs)
{
    const char *name = "weir_requests_total";
    family(out, name, "counter",
           "Requests, by version, endpoint and status class of the answer (499: "
           "the client went away; endpoint=\"\": answered by weir without an "
           "endpoint; endpoint=\"retired\": by endpoints since removed; "
           "version=\"\": before routing).");
    /* What the current endpoints hold, per version: read before the
     * version totals below (metrics_txn_done counts the version first), so
     * the retired remainder is never negative. */
    uint64_t cur[CONFIG_MAX_VERSIONS][STATUS_CLASSES];
    memset(cur, 0, sizeof(cur));
    for (size_t v = 0; v < s->n_versions && v < CONFIG_MAX_VERSIONS; v++)
        for (size_t i = 0; i < s->versions[v].n_eps; i++) {
            const struct endpoint *ep = s->versions[v].eps[i].ep;
            for (int c = 0; c < STATUS_CLASSES; c++) {
                uint64_t n = endpoint_requests(ep, c);
                cur[v][c] += n;
                series(out, name, s->versions[v].name, ep->address, class_names[c]);
                value_u(out, n);
            }
        }
    /*
     * endpoint="retired": requests served by endpoints that no published
     * snapshot names any more (gone from DNS, a reload, remove-endpoint).
     * Their own series end with them; this one keeps what they served, so
     * the family's sum is every request, exactly, and never goes down.
     */
    for (size_t i = 0; i < n_vs; i++) {
        const struct vstats *vs = metrics_vstats_at(i);
        const uint64_t *held = NULL;
        for (size_t v = 0; v < s->n_versions && v < CONFIG_MAX_VERSIONS; v++)
            if (s->versions[v].stats == vs)
                held = cur[v];
        struct metrics_vtotals now;
        metrics_vstats_totals(vs, &now);
        for (int c = 0; c < STATUS_CLASSES; c++) {
            uint64_t with_ep = now.requests[c] - now.no_ep_requests[c];
            uint64_t h = held ? held[c] : 0;
            if (with_ep > h) {
                series(out, name, vs->name, "retired", class_names[c]);
                value_u(out, with_ep - h);
            }
        }
    }
    for (size_t i = 0; i < n_vs; i++)
        for (int c = 0; c < STATUS_CLASSES; c++)
            if (tot[i].no_ep_requests[c]) {
                series(out, name, metrics_vstats_at(i)->name, "", class_names[c]);
                value_u(out, tot[i].no_ep_requests[c]);
            }
    uint64_t unrouted[STATUS_CLASSES], aborted;
    metrics_unrouted_totals(unrouted, &aborted);
    for (int c = 0; c < STATUS_CLASSES; c++)
        if (unrouted[c]) {
            series(out, name, "", "", class_names[c]);
            value_u(out, unrouted[c]);
        }

    name = "weir_requests_aborted_total";
    family(out, name, "counter",
           "Requests whose client went away before the response was complete "
           "(logged as 499, also counted in weir_requests_total's 4xx), by "
           "version (\"\": before routing).");
    for (size_t i = 0; i < n_vs; i++) {
        series(out, name, metrics_vstats_at(i)->name, NULL, NULL);
        value_u(out, tot[i].aborted);
    }
    if (aborted) {
        series(out, name, "", NULL, NULL);
        value_u(out, aborted);
    }

    name = "weir_request_errors_total";
    family(out, name, "counter",
           "Requests that did not end as a plainly answered response, by version "
           "and reason (weir's errors, upstream failures, client aborts).");
    for (size_t i = 0; i < n_vs; i++)
        for (int e = TXN_E_NONE + 1; e < TXN_E_COUNT; e++)
            if (tot[i].errors[e]) {
                json_buf_puts(out, name);
                json_buf_puts(out, "{version=\"");
                metrics_prom_label_value(out, metrics_vstats_at(i)->name);
                json_buf_printf(out, "\",error=\"%s\"} ", txn_errors[e].label);
                value_u(out, tot[i].errors[e]);
            }

    name = "weir_no_endpoint_total";
    family(out, name, "counter",
           "Requests answered 503 because the chosen version had no available endpoint.");
    for (size_t i = 0; i < n_vs; i++) {
        series(out, name, metrics_vstats_at(i)->name, NULL, NULL);
        value_u(out, tot[i].no_endpoint);
    }
}

/* One histogram family per version from non-cumulative buckets (the
 * buckets and sum chosen by upstream). */
static void render_histogram_family(struct json_buf *out, const char *name, const char *help,
                                    const struct metrics_vtotals *tot, size_t n_vs,
                                    bool upstream)
{
    family(out, name, "histogram", help);
    for (size_t i = 0; i < n_vs; i++) {
        const char *vname = metrics_vstats_at(i)->name;
        const uint64_t *buckets = upstream ? tot[i].up_buckets : tot[i].buckets;
        uint64_t cum = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cum += buckets[b];
            char le[32];
            if (b == METRICS_BUCKETS - 1)
                snprintf(le, sizeof(le), "+Inf");
            else
                us_seconds(metrics_bucket_us[b], le, sizeof(le));
            json_buf_printf(out, "%s_bucket{version=\"", name);
            metrics_prom_label_value(out, vname);
            json_buf_printf(out, "\",le=\"%s\"} %" PRIu64 "\n", le, cum);
        }
        char sum[48];
        us_seconds(upstream ? tot[i].up_us_sum : tot[i].duration_us_sum, sum, sizeof(sum));
        json_buf_printf(out, "%s_sum{version=\"", name);
        metrics_prom_label_value(out, vname);
        json_buf_printf(out, "\"} %s\n", sum);
        json_buf_printf(out, "%s_count{version=\"", name);
        metrics_prom_label_value(out, vname);
        json_buf_printf(out, "\"} %" PRIu64 "\n", cum);
    }
}

static void render_histogram(struct json_buf *out, const struct metrics_vtotals *tot,
                             size_t n_vs)
{
    render_histogram_family(out, "weir_request_duration_seconds",
                            "Time from the request head read to the response's end, by "
                            "version.",
                            tot, n_vs, false);
    render_histogram_family(out, "weir_upstream_duration_seconds",
                            "Upstream latency: time from the request head handed to the "
                            "upstream connection to the first byte of its response (connect "
                            "time and the client's side excluded), by version; requests "
                            "answered by an upstream only.",
                            tot, n_vs, true);
}

/* Bytes both ways, per version name. */
static void render_bytes(struct json_buf *out, const struct metrics_vtotals *tot, size_t n_vs)
{
    family(out, "weir_bytes_received_total", "counter",
           "Bytes read from clients for routed requests (request heads and bodies), by "
           "version.");
    for (size_t i = 0; i < n_vs; i++) {
        series(out, "weir_bytes_received_total", metrics_vstats_at(i)->name, NULL, NULL);
        value_u(out, tot[i].bytes_received);
    }
    family(out, "weir_bytes_sent_total", "counter",
           "Bytes sent to clients for routed requests (response heads and bodies, weir's "
           "own answers included), by version.");
    for (size_t i = 0; i < n_vs; i++) {
        series(out, "weir_bytes_sent_total", metrics_vstats_at(i)->name, NULL, NULL);
        value_u(out, tot[i].bytes_sent);
    }
}

static void render_split(struct json_buf *out, const struct snapshot *s, uint64_t now_ms)
{
    family(out, "weir_split_percent", "gauge",
           "Configured share of split-routed requests per version, in percent (0..100).");
    for (size_t v = 0; v < s->n_versions; v++) {
        char pct[16];
        util_format_bp(s->versions[v].split_bp, pct, sizeof(pct));
        series(out, "weir_split_percent", s->versions[v].name, NULL, NULL);
        json_buf_printf(out, "%s\n", pct);
    }
    /* The same as a ratio: the one unit convention of every other share. */
    family(out, "weir_split_ratio", "gauge",
           "Configured share of split-routed requests per version (0..1; "
           "weir_split_percent / 100).");
    for (size_t v = 0; v < s->n_versions; v++) {
        series(out, "weir_split_ratio", s->versions[v].name, NULL, NULL);
        json_buf_printf(out, "%.4f\n", s->versions[v].split_bp / 10000.0);
    }

    /* Achieved share: every routed response over the window, whatever the
     * reason (rule, sticky, split, fallback), so it shows what users got. */
    size_t n_vs = metrics_vstats_count();
    uint64_t all = 0;
    uint64_t mine[CONFIG_MAX_VERSIONS] = {0};
    for (size_t i = 0; i < n_vs; i++) {
        struct metrics_vtotals d;
        uint64_t span;
        metrics_window_delta(i, SHARE_WINDOW_S, now_ms, &d, &span);
        uint64_t n = metrics_vtotals_count(&d);
        all += n;
        for (size_t v = 0; v < s->n_versions && v < CONFIG_MAX_VERSIONS; v++)
            if (s->versions[v].stats == metrics_vstats_at(i))
                mine[v] = n;
    }
    family(out, "weir_achieved_share_ratio", "gauge",
           "Share of responses served by each version over the last 60 s (0..1; "
           "0 when there were none).");
    for (size_t v = 0; v < s->n_versions && v < CONFIG_MAX_VERSIONS; v++) {
        series(out, "weir_achieved_share_ratio", s->versions[v].name, NULL, NULL);
        json_buf_printf(out, "%.6g\n", all ? (double)mine[v] / (double)all : 0.0);
    }
}

/* Per version: endpoints available now (healthy, not ejected, not drained),
 * and whether its fallback takes its traffic (none available: proxy.c
 * routes the version's requests to the fallback). */
static void render_availability(struct json_buf *out, const struct snapshot *s,
                                uint64_t now_ms)
{
    size_t avail[CONFIG_MAX_VERSIONS] = {0};
    for (size_t v = 0; v < s->n_versions && v < CONFIG_MAX_VERSIONS; v++)
        for (size_t i = 0; i < s->versions[v].n_eps; i++) {
            const struct snap_endpoint *se = &s->versions[v].eps[i];
            if (!se->draining && endpoint_is_available(se->ep, now_ms))
                avail[v]++;
        }
    family(out, "weir_version_available_endpoints", "gauge",
           "Endpoints of a version that may take requests now (healthy, not ejected, "
           "not drained).");
    for (size_t v = 0; v < s->n_versions && v < CONFIG_MAX_VERSIONS; v++) {
        series(out, "weir_version_available_endpoints", s->versions[v].name, NULL, NULL);
        value_u(out, avail[v]);
    }
    family(out, "weir_version_fallback_active", "gauge",
           "1 while a version has no available endpoint and its fallback version takes "
           "its traffic.");
    for (size_t v = 0; v < s->n_versions && v < CONFIG_MAX_VERSIONS; v++) {
        int fb = s->versions[v].fallback;
        if (fb < 0)
            continue;
        json_buf_puts(out, "weir_version_fallback_active{version=\"");
        metrics_prom_label_value(out, s->versions[v].name);
        json_buf_puts(out, "\",fallback=\"");
        metrics_prom_label_value(out, s->versions[fb].name);
        json_buf_printf(out, "\"} %d\n", avail[v] ? 0 : 1);
    }
}

/* weir_mirror_requests_total{version,result} and weir_mirror_in_flight. */
static void render_mirror(struct json_buf *out)
{
    struct snapshot *s = snapshot_acquire();
    const struct config *cfg = s ? s->cfg : NULL;
    const char *name = "weir_mirror_requests_total";
    json_buf_printf(out, "# HELP %s Mirrored requests by shadow version and result: "
                         "match, differ (status, a compared header or the body), error "
                         "(the shadow failed), dropped (weir gave up: max_inflight, the "
                         "shadow's timeout, the primary did not complete).\n"
                         "# TYPE %s counter\n",
                    name, name);
    for (size_t i = 0; i < metrics_vstats_count(); i++) {
        const struct vstats *vs = metrics_vstats_at(i);
        uint64_t c[MIRROR_R_COUNT];
        mirror_counts(vs, c);
        if (!mirror_is_shown(vs, cfg, c))
            continue;
        for (int r = 0; r < MIRROR_R_COUNT; r++) {
            json_buf_printf(out, "%s{version=\"", name);
            metrics_prom_label_value(out, vs->name);
            json_buf_printf(out, "\",result=\"%s\"} %llu\n",
                            mirror_result_name((enum mirror_result)r),
                            (unsigned long long)c[r]);
        }
    }
    json_buf_puts(out, "# HELP weir_mirror_in_flight Mirrored requests under way.\n"
                       "# TYPE weir_mirror_in_flight gauge\n");
    json_buf_printf(out, "weir_mirror_in_flight %llu\n", (unsigned long long)mirror_inflight());
    snapshot_unref(s);
}

void metrics_prom_render(struct json_buf *out)
{
    struct snapshot *s = snapshot_acquire();
    if (!s)
        return;
    uint64_t now_ms = util_now_ms();
    size_t n_vs = metrics_vstats_count();
    struct metrics_vtotals *tot = xcalloc(n_vs ? n_vs : 1, sizeof(*tot));
    for (size_t i = 0; i < n_vs; i++)
        metrics_vstats_totals(metrics_vstats_at(i), &tot[i]);

    render_requests(out, s, tot, n_vs);
    render_histogram(out, tot, n_vs);
    render_bytes(out, tot, n_vs);
    release_render_metrics(out);
    fleet_render_metrics(out);
    render_mirror(out);
    per_endpoint(out, s, "weir_upstream_connect_failures_total", "counter",
                 "Failed connects to an endpoint.", on_connect_failures, now_ms);
    per_endpoint(out, s, "weir_upstream_retries_total", "counter",
                 "Requests retried on another endpoint after failing on this one.",
                 on_retries, now_ms);
    per_endpoint(out, s, "weir_endpoint_ejections_total", "counter",
                 "Passive ejections of an endpoint (consecutive failures).",
                 on_ejections, now_ms);
    per_endpoint(out, s, "weir_endpoint_ejected", "gauge",
                 "1 while an endpoint is passively ejected.", on_ejected, now_ms);
    per_endpoint(out, s, "weir_endpoint_healthy", "gauge",
                 "1 when an endpoint may take requests (active check passing, not ejected).",
                 on_healthy, now_ms);
    per_endpoint(out, s, "weir_endpoint_draining", "gauge",
                 "1 when an endpoint is drained (gets no new requests).", on_draining,
                 now_ms);
    per_endpoint(out, s, "weir_endpoint_weight", "gauge",
                 "Balancing weight of an endpoint inside its version.", on_weight, now_ms);
    per_endpoint(out, s, "weir_upstream_requests_in_flight", "gauge",
                 "Requests currently using an endpoint.", on_inflight, now_ms);
    per_endpoint(out, s, "weir_upstream_connections", "gauge",
                 "Open upstream connections to an endpoint (idle in the pool or in use).",
                 on_conns, now_ms);

    family(out, "weir_client_connections", "gauge", "Open client connections.");
    json_buf_printf(out, "weir_client_connections %u\n",
                    client_open_count());

    h2_metrics_render(out);
    metrics_tls_render(out, s);
    render_availability(out, s, now_ms);
    render_split(out, s, now_ms);

    family(out, "weir_config_generation", "gauge",
           "Generation of the routing configuration in force (grows with every change).");
    json_buf_printf(out, "weir_config_generation %" PRIu64 "\n", snapshot_generation());

    family(out, "weir_access_log_dropped_total", "counter",
           "Access log lines dropped because the writer could not keep up.");
    json_buf_printf(out, "weir_access_log_dropped_total %" PRIu64 "\n", access_dropped());
    family(out, "weir_access_log_write_errors_total", "counter",
           "Failed writes of the access log (each loses a batch of lines).");
    json_buf_printf(out, "weir_access_log_write_errors_total %" PRIu64 "\n",
                    access_write_errors());

    family(out, "weir_build_info", "gauge", "Always 1; the label names weir's release.");
    json_buf_puts(out, "weir_build_info{release=\"");
    metrics_prom_label_value(out, WEIR_VERSION);
    json_buf_puts(out, "\"} 1\n");

    metrics_process_render(out);
    free(tot);
    snapshot_unref(s);
}
