/*
 * test_metrics.c — the reader side of metrics: status classes, histogram
 * bucketing and quantile interpolation, the window ring's deltas, and
 * Prometheus label escaping plus a rendering of a real snapshot (HELP/TYPE
 * pairs, cumulative buckets, escaped values).
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "json.h"
#include "loop.h"
#include "metrics.h"
#include "metrics_prom.h"
#include "snapshot.h"
#include "tap.h"

static void test_classes(void)
{
    is_int(metrics_status_class(200), 1, "200 is 2xx");
    is_int(metrics_status_class(101), 0, "101 is 1xx");
    is_int(metrics_status_class(599), 4, "599 is 5xx");
    is_int(metrics_status_class(0), -1, "0 has no class");
    is_int(metrics_status_class(600), -1, "600 has no class");
}

static void test_quantiles(void)
{
    uint64_t b[METRICS_BUCKETS] = {0};
    ok(metrics_quantile_us(b, 0.5) < 0, "empty histogram: no quantile");
    b[0] = 10; /* (0, 50 us] */
    ok(metrics_quantile_us(b, 0.5) == 25.0, "median of one bucket interpolates to its middle");
    memset(b, 0, sizeof(b));
    b[4] = 50; /* (500 us, 1 ms] */
    b[7] = 50; /* (5 ms, 10 ms] */
    ok(metrics_quantile_us(b, 0.5) == 1000.0, "p50 at the edge of the lower half");
    double p99 = metrics_quantile_us(b, 0.99);
    ok(p99 > 9800 && p99 <= 10000, "p99 inside the upper bucket (%.1f)", p99);
    memset(b, 0, sizeof(b));
    b[METRICS_BUCKETS - 1] = 3;
    ok(metrics_quantile_us(b, 0.5) == (double)metrics_bucket_us[METRICS_BUCKETS - 2],
       "+Inf bucket reports the largest finite bound");
    for (int i = 1; i < METRICS_BUCKETS - 1; i++)
        if (metrics_bucket_us[i] <= metrics_bucket_us[i - 1])
            ok(0, "bucket bounds ascend at %d", i);
    ok(metrics_bucket_us[0] < 1000 && metrics_bucket_us[METRICS_BUCKETS - 2] >= 10000000,
       "buckets span sub-millisecond to multi-second");
}

static void test_escape(void)
{
    struct json_buf b;
    json_buf_init(&b);
    metrics_prom_label_value(&b, "a\"b\\c\nd");
    is_str(b.p, "a\\\"b\\\\c\\nd", "label values escape \" \\ and newline");
    json_buf_reset(&b);
    metrics_prom_label_value(&b, "10.0.0.1:8080");
    is_str(b.p, "10.0.0.1:8080", "plain values unchanged");
    json_buf_dispose(&b);
}

static struct snapshot *make(const char *yaml)
{
    struct config_errors errs;
    config_errors_init(&errs, "test.yaml");
    struct config *cfg = config_load_string("test.yaml", yaml, strlen(yaml), &errs);
    config_errors_dispose(&errs);
    if (!cfg)
        return NULL;
    struct snapshot *s = snapshot_new(cfg, NULL, NULL, 0);
    metrics_bind(s);
    return s;
}

static void test_window_and_render(void)
{
    struct snapshot *s = make("listen: 127.0.0.1:1\ncontrol: /tmp/x.sock\n"
                              "versions:\n  v1:\n    endpoints: [127.0.0.1:2]\n"
                              "  v2:\n    endpoints: [127.0.0.1:3]\n"
                              "split: {v1: 70, v2: 30}\n");
    ok(s != NULL, "snapshot builds");
    if (!s)
        return;
    struct loop w; /* metrics only read its id */
    memset(&w, 0, sizeof(w));
    w.id = 3;
    struct endpoint *ep1 = s->versions[0].eps[0].ep;
    metrics_txn_done(&w, s, 0, ep1, 200, TXN_E_NONE, false, 40);      /* bucket 0 */
    metrics_txn_done(&w, s, 0, ep1, 503, TXN_E_NONE, false, 2000000); /* 2 s */
    metrics_txn_done(&w, s, 1, NULL, 503, TXN_E_NO_ENDPOINT, false, 10);
    metrics_txn_done(&w, s, 0, ep1, 499, TXN_E_CLIENT_HEAD, true, 10);   /* client left */
    metrics_txn_done(&w, s, -1, NULL, 400, TXN_E_BAD_REQUEST, false, 5); /* unrouted */
    metrics_txn_io(&w, s, 0, 100, 1000, 30);                             /* upstream 30 µs: bucket 0 */
    metrics_txn_io(&w, s, 0, 50, 200, 1500000);                          /* 1.5 s */
    metrics_txn_io(&w, s, 1, 70, 90, -1);                                /* weir answered: no upstream time */
    metrics_txn_io(&w, s, -1, 999, 999, 5);                              /* unrouted: not counted */

    struct metrics_vtotals t;
    metrics_vstats_totals(s->versions[0].stats, &t);
    is_int(metrics_vtotals_count(&t), 3, "v1: three requests, the client abort among them");
    is_int(t.requests[1], 1, "v1: one 2xx");
    is_int(t.requests[3], 1, "v1: the 499 is a 4xx");
    is_int(t.requests[4], 1, "v1: one 5xx");
    is_int(t.aborted, 1, "v1: one aborted, also in the 4xx class");
    is_int(t.errors[TXN_E_CLIENT_HEAD], 1, "v1: the abort counted by its reason");
    is_int(t.errors[TXN_E_NONE], 0, "v1: plain answers are no error");
    is_int(t.buckets[0], 2, "40 us and 10 us land in the first bucket");
    is_int(t.duration_us_sum, 2000050, "duration sum includes the aborted request's time");
    metrics_vstats_totals(s->versions[1].stats, &t);
    is_int(t.no_ep_requests[4], 1, "v2: the 503 without endpoint");
    is_int(t.no_endpoint, 1, "v2: counted as no endpoint");
    is_int(t.errors[TXN_E_NO_ENDPOINT], 1, "v2: the 503 counted by its reason");
    is_int(endpoint_requests(ep1, 1), 1, "endpoint counts its 2xx");

    /* Window: a sample at t=1000 ms, two more txns, then a delta at t=2000. */
    size_t i1 = 0;
    for (size_t i = 0; i < metrics_vstats_count(); i++)
        if (metrics_vstats_at(i) == s->versions[0].stats)
            i1 = i;
    metrics_window_tick(1000);
    metrics_txn_done(&w, s, 0, ep1, 200, TXN_E_NONE, false, 300);
    metrics_txn_done(&w, s, 0, ep1, 200, TXN_E_NONE, false, 300);
    uint64_t span;
    metrics_window_delta(i1, 10, 2000, &t, &span);
    is_int(metrics_vtotals_count(&t), 2, "window: only the txns after the sample");
    is_int(span, 1000, "window: spans 1 s");
    metrics_window_tick(2000);
    metrics_window_tick(13000);
    metrics_window_delta(i1, 10, 13000, &t, &span);
    is_int(metrics_vtotals_count(&t), 0, "window: a 10 s window starting at the 2 s sample is empty");
    is_int(span, 11000, "window: covers back to the newest sample at least 10 s old");

    struct json_buf b;
    json_buf_init(&b);
    metrics_prom_render(&b); /* nothing published: renders nothing */
    is_int(b.len, 0, "no snapshot published: empty exposition");
    snapshot_ref(s);
    snapshot_publish(s);
    metrics_prom_render(&b);
    ok(strstr(b.p, "# HELP weir_requests_total ") && strstr(b.p, "# TYPE weir_requests_total counter\n"),
       "requests family has HELP and TYPE");
    ok(strstr(b.p, "weir_requests_total{version=\"v1\",endpoint=\"127.0.0.1:2\",code=\"2xx\"} 3\n") != NULL,
       "per endpoint 2xx count");
    ok(strstr(b.p, "weir_requests_total{version=\"v2\",endpoint=\"\",code=\"5xx\"} 1\n") != NULL,
       "no-endpoint answers have endpoint=\"\"");
    ok(strstr(b.p, "weir_requests_total{version=\"\",endpoint=\"\",code=\"4xx\"} 1\n") != NULL,
       "unrouted answers have version=\"\"");
    ok(strstr(b.p, "weir_request_duration_seconds_bucket{version=\"v1\",le=\"0.00005\"} 2\n") &&
           strstr(b.p, "weir_request_duration_seconds_bucket{version=\"v1\",le=\"0.0005\"} 4\n") &&
           strstr(b.p, "weir_request_duration_seconds_bucket{version=\"v1\",le=\"2.5\"} 5\n") &&
           strstr(b.p, "weir_request_duration_seconds_bucket{version=\"v1\",le=\"+Inf\"} 5\n") &&
           strstr(b.p, "weir_request_duration_seconds_count{version=\"v1\"} 5\n") &&
           strstr(b.p, "weir_request_duration_seconds_sum{version=\"v1\"} 2.00065\n"),
       "histogram buckets are cumulative, with _sum and _count");
    ok(strstr(b.p, "weir_split_percent{version=\"v1\"} 70\n") != NULL, "split gauge");
    ok(strstr(b.p, "weir_split_ratio{version=\"v1\"} 0.7000\n") &&
           strstr(b.p, "weir_split_ratio{version=\"v2\"} 0.3000\n"),
       "split ratio twin (0..1)");
    ok(strstr(b.p, "# TYPE weir_upstream_duration_seconds histogram\n") &&
           strstr(b.p, "weir_upstream_duration_seconds_bucket{version=\"v1\",le=\"0.00005\"} 1\n") &&
           strstr(b.p, "weir_upstream_duration_seconds_bucket{version=\"v1\",le=\"1\"} 1\n") &&
           strstr(b.p, "weir_upstream_duration_seconds_bucket{version=\"v1\",le=\"2.5\"} 2\n") &&
           strstr(b.p, "weir_upstream_duration_seconds_count{version=\"v1\"} 2\n") &&
           strstr(b.p, "weir_upstream_duration_seconds_sum{version=\"v1\"} 1.50003\n") &&
           strstr(b.p, "weir_upstream_duration_seconds_count{version=\"v2\"} 0\n"),
       "upstream latency histogram per version; weir's own answers are not in it");
    ok(strstr(b.p, "weir_bytes_received_total{version=\"v1\"} 150\n") &&
           strstr(b.p, "weir_bytes_sent_total{version=\"v1\"} 1200\n") &&
           strstr(b.p, "weir_bytes_received_total{version=\"v2\"} 70\n") &&
           strstr(b.p, "weir_bytes_sent_total{version=\"v2\"} 90\n"),
       "bytes in and out per version");
    ok(strstr(b.p, "# TYPE process_cpu_seconds_total counter\n") &&
           strstr(b.p, "\nprocess_resident_memory_bytes ") && strstr(b.p, "\nprocess_open_fds ") &&
           strstr(b.p, "\nprocess_max_fds ") && strstr(b.p, "\nprocess_start_time_seconds ") &&
           strstr(b.p, "\nprocess_virtual_memory_bytes "),
       "process_* families");
    ok(strstr(b.p, "weir_requests_aborted_total{version=\"v1\"} 1\n") != NULL, "aborted counter");
    ok(strstr(b.p, "weir_requests_total{version=\"v1\",endpoint=\"127.0.0.1:2\",code=\"4xx\"} 1\n") != NULL,
       "the client abort is in the endpoint's 4xx");
    ok(strstr(b.p, "weir_request_errors_total{version=\"v1\",error=\"client_closed_head\"} 1\n") &&
           strstr(b.p, "weir_request_errors_total{version=\"v2\",error=\"no_endpoint\"} 1\n"),
       "errors by reason");
    json_buf_dispose(&b);
    snapshot_unref(s);
    snapshot_shutdown();
    metrics_shutdown();
}

int main(void)
{
    test_classes();
    test_quantiles();
    test_escape();
    test_window_and_render();
    return tap_done();
}
