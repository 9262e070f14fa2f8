/*
 * test_bench_gate.c — weir-bench's thresholds (bench_gate.c): parsing of
 * --max-error-rate / --max-p99 / --max-p99-ratio (good forms and usage
 * errors), judging against a report with known counts (a broken and a
 * kept threshold of each kind, a version that never answered), and the
 * "thresholds" JSON.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../bench/bench_gate.h"
#include "json.h"
#include "tap.h"

static void test_parse(void)
{
    struct bench_gates g;
    memset(&g, 0, sizeof(g));
    char err[256];
    ok(bench_gate_parse(&g, BENCH_GATE_ERROR_RATE, "v2=1%", err, sizeof(err)) == 0 &&
           fabs(g.v[0].limit - 0.01) < 1e-12 && strcmp(g.v[0].version, "v2") == 0,
       "v2=1%% is a rate of 0.01 for v2");
    ok(bench_gate_parse(&g, BENCH_GATE_ERROR_RATE, "all=0.005", err, sizeof(err)) == 0 &&
           fabs(g.v[1].limit - 0.005) < 1e-12 && strcmp(g.v[1].version, "all") == 0,
       "all=0.005 is a fraction for the whole run");
    ok(bench_gate_parse(&g, BENCH_GATE_P99, "v2=200ms", err, sizeof(err)) == 0 &&
           fabs(g.v[2].limit - 200) < 1e-9,
       "v2=200ms");
    ok(bench_gate_parse(&g, BENCH_GATE_P99, "v1=0.5s", err, sizeof(err)) == 0 &&
           fabs(g.v[3].limit - 500) < 1e-9,
       "0.5s is 500 ms");
    ok(bench_gate_parse(&g, BENCH_GATE_P99_RATIO, "v2/v1=1.5", err, sizeof(err)) == 0 &&
           strcmp(g.v[4].version, "v2") == 0 && strcmp(g.v[4].base, "v1") == 0 &&
           fabs(g.v[4].limit - 1.5) < 1e-12,
       "v2/v1=1.5");
    is_int(g.n, 5, "five thresholds kept");
    static const struct {
        enum bench_gate_kind k;
        const char *arg;
        const char *why;
    } bad[] = {
        {BENCH_GATE_ERROR_RATE, "v2", "wants VERSION=RATE"},
        {BENCH_GATE_ERROR_RATE, "=1%", "wants"},
        {BENCH_GATE_ERROR_RATE, "v2=", "wants"},
        {BENCH_GATE_ERROR_RATE, "v2=abc", "bad limit"},
        {BENCH_GATE_ERROR_RATE, "v2=101%", "bad limit"},
        {BENCH_GATE_ERROR_RATE, "v2=2", "bad limit"},
        {BENCH_GATE_ERROR_RATE, "v2=-1%", "bad limit"},
        {BENCH_GATE_P99, "v2=0ms", "bad limit"},
        {BENCH_GATE_P99, "v2=fast", "bad limit"},
        {BENCH_GATE_P99_RATIO, "v2=1.5", "bad version name"},
        {BENCH_GATE_P99_RATIO, "v2/v2=1.5", "two different versions"},
        {BENCH_GATE_P99_RATIO, "v2/v1=x", "bad limit"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ok(bench_gate_parse(&g, bad[i].k, bad[i].arg, err, sizeof(err)) < 0 &&
               strstr(err, bad[i].why),
           "--%s %s refused: %s (%s)", bench_gate_option(bad[i].k),
           bad[i].arg, bad[i].why, err);
    }
    is_int(g.n, 5, "refused thresholds are not kept");
}

/* v1: 1000 requests, 0 errors, 1 ms each; v2: 500 requests, 10 errors (2 %),
 * 3 ms each; "gone" never answered. */
static void fill(struct bench_report *r)
{
    bench_report_init(r, 10, 2, 0);
    int v1 = bench_report_version(r, "v1", 2);
    int v2 = bench_report_version(r, "v2", 2);
    for (int i = 0; i < 1000; i++)
        bench_report_response(r, v1, 1000, 0, 1000000, 200);
    for (int i = 0; i < 500; i++)
        bench_report_response(r, v2, 1000, 0, 3000000, i < 10 ? 500 : 200);
}

static void test_eval(void)
{
    struct bench_report r;
    fill(&r);
    struct bench_gates g;
    memset(&g, 0, sizeof(g));
    char err[256];
    const char *rates[] = {"v2=1%", "v2=5%", "v1=0%", "all=1%", "gone=50%"};
    for (size_t i = 0; i < 5; i++)
        ok(bench_gate_parse(&g, BENCH_GATE_ERROR_RATE, rates[i], err, sizeof(err)) == 0,
           "parse %s", rates[i]);
    ok(bench_gate_parse(&g, BENCH_GATE_P99_RATIO, "v2/v1=1.5", err, sizeof(err)) == 0 &&
           bench_gate_parse(&g, BENCH_GATE_P99_RATIO, "v2/v1=4", err, sizeof(err)) == 0 &&
           bench_gate_parse(&g, BENCH_GATE_P99, "v2=2ms", err, sizeof(err)) == 0 &&
           bench_gate_parse(&g, BENCH_GATE_P99, "v1=2ms", err, sizeof(err)) == 0,
       "parse the latency thresholds");
    size_t broken = bench_gate_eval(&g, &r);
    is_int(broken, 4, "four thresholds broken");
    ok(!g.v[0].pass && fabs(g.v[0].value - 0.02) < 1e-9, "v2 at 2 %% breaks v2=1%%");
    ok(g.v[1].pass, "v2 at 2 %% keeps v2=5%%");
    ok(g.v[2].pass, "v1 without errors keeps v1=0%%");
    ok(g.v[3].pass && fabs(g.v[3].value - 10.0 / 1500) < 1e-9,
       "all: 10 errors of 1500 requests (0.67 %%) keeps all=1%%");
    ok(!g.v[4].pass && isnan(g.v[4].value) && strstr(g.v[4].why, "no request"),
       "a version that never answered breaks its threshold");
    ok(!g.v[5].pass && g.v[5].value > 2.5 && g.v[5].value < 3.5, "v2 p99 ~3x v1's breaks 1.5");
    ok(g.v[6].pass, "... and keeps 4");
    ok(!g.v[7].pass && g.v[7].value > 2.5, "v2 p99 ~3 ms breaks 2ms");
    ok(g.v[8].pass, "v1 p99 ~1 ms keeps 2ms");

    struct json_buf b;
    json_buf_init(&b);
    json_buf_puts(&b, "{\"x\":1");
    bench_gate_json(&g, &b);
    json_buf_puts(&b, "}");
    char perr[128];
    struct json_value *v = json_parse(b.p, b.len, perr, sizeof(perr));
    ok(v != NULL, "the thresholds JSON parses (%s)", v ? "ok" : perr);
    ok(strstr(b.p, "\"thresholds\":[{\"option\":\"max-error-rate\",\"threshold\":\"v2=1%\","
                   "\"version\":\"v2\",\"limit\":0.01,\"value\":0.02,\"pass\":false") != NULL,
       "each threshold: option, threshold, version, limit, value, pass");
    ok(strstr(b.p, "\"baseline\":\"v1\"") != NULL, "a ratio names its baseline");
    ok(strstr(b.p, "\"value\":null,\"pass\":false") != NULL, "an unknown value is null");
    json_free(v);
    json_buf_dispose(&b);
    bench_report_dispose(&r);
}

int main(void)
{
    test_parse();
    test_eval();
    return tap_done();
}
