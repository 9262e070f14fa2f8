/*
 * bench_gate.c — see bench_gate.h.
 */
#include "bench_gate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bench_gate_option(enum bench_gate_kind kind)
{
    switch (kind) {
    case BENCH_GATE_ERROR_RATE:
        return "max-error-rate";
    case BENCH_GATE_P99:
        return "max-p99";
    case BENCH_GATE_P99_RATIO:
        return "max-p99-ratio";
    }
    return "?";
}

/* A non-negative finite decimal number taking all of s[0..n). */
static int parse_number(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '.'))
            return -1;
    char *end;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

static bool has_suffix(const char *s, size_t n, const char *suf, size_t *stem)
{
    size_t k = strlen(suf);
    if (n < k || memcmp(s + n - k, suf, k) != 0)
        return false;
    *stem = n - k;
    return true;
}

static int copy_name(char *dst, const char *s, size_t n)
{
    if (n == 0 || n >= BENCH_SCHED_NAME_MAX)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int bench_gate_parse(struct bench_gates *g, enum bench_gate_kind kind, const char *arg,
                     char *err, size_t errlen)
{
    const char *opt = bench_gate_option(kind);
    if (g->n == BENCH_GATE_MAX) {
        snprintf(err, errlen, "too many thresholds (at most %d)", BENCH_GATE_MAX);
        return -1;
    }
    struct bench_gate t;
    memset(&t, 0, sizeof(t));
    t.kind = kind;
    t.value = NAN;
    snprintf(t.text, sizeof(t.text), "%s", arg);
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        snprintf(err, errlen, "--%s wants %s, not '%s'", opt,
                 kind == BENCH_GATE_P99_RATIO ? "VERSION/BASELINE=FACTOR (v2/v1=1.5)"
                 : kind == BENCH_GATE_P99     ? "VERSION=TIME (v2=200ms)"
                                              : "VERSION=RATE (v2=1% or all=0.5%)",
                 arg);
        return -1;
    }
    const char *val = eq + 1;
    size_t vlen = strlen(val), stem;
    size_t klen = (size_t)(eq - arg);
    switch (kind) {
    case BENCH_GATE_ERROR_RATE:
        if (copy_name(t.version, arg, klen) < 0)
            goto bad_name;
        if (has_suffix(val, vlen, "%", &stem)) {
            if (parse_number(val, stem, &t.limit) < 0 || t.limit > 100)
                goto bad_value;
            t.limit /= 100;
        } else if (parse_number(val, vlen, &t.limit) < 0 || t.limit > 1) {
            goto bad_value;
        }
        break;
    case BENCH_GATE_P99: {
        if (copy_name(t.version, arg, klen) < 0)
            goto bad_name;
        double scale = 1;
        if (has_suffix(val, vlen, "ms", &stem))
            scale = 1;
        else if (has_suffix(val, vlen, "us", &stem))
            scale = 0.001;
        else if (has_suffix(val, vlen, "s", &stem))
            scale = 1000;
        else
            stem = vlen;
        if (parse_number(val, stem, &t.limit) < 0 || t.limit <= 0)
            goto bad_value;
        t.limit *= scale;
        break;
    }
    case BENCH_GATE_P99_RATIO: {
        const char *slash = memchr(arg, '/', klen);
        if (!slash || copy_name(t.version, arg, (size_t)(slash - arg)) < 0 ||
            copy_name(t.base, slash + 1, (size_t)(eq - slash - 1)) < 0)
            goto bad_name;
        if (strcmp(t.version, "all") == 0 || strcmp(t.base, "all") == 0 ||
            strcmp(t.version, t.base) == 0) {
            snprintf(err, errlen, "--%s compares two different versions, not '%s'", opt,
                     arg);
            return -1;
        }
        if (parse_number(val, vlen, &t.limit) < 0 || t.limit <= 0)
            goto bad_value;
        break;
    }
    }
    g->v[g->n++] = t;
    return 0;
bad_name:
    snprintf(err, errlen, "--%s: bad version name in '%s'", opt, arg);
    return -1;
bad_value:
    snprintf(err, errlen, "--%s: bad limit '%s' in '%s' (%s)", opt, val, arg,
             kind == BENCH_GATE_ERROR_RATE ? "a percentage like 1% or a fraction 0..1"
             : kind == BENCH_GATE_P99      ? "a time like 200ms or 0.5s"
                                           : "a factor above 0 like 1.5");
    return -1;
}

static const struct bench_version *find(const struct bench_report *r, const char *name)
{
    size_t n = atomic_load(&((struct bench_report *)r)->n_versions);
    for (size_t i = 0; i < n; i++)
        if (r->v[i] && strcmp(r->v[i]->name, name) == 0)
            return r->v[i];
    return NULL;
}

/* requests, errors and p99 (ms; NAN without responses) of a version or "all". */
static bool measure(const struct bench_report *r, const char *name, uint64_t *req,
                    uint64_t *err, double *p99_ms)
{
    *req = *err = 0;
    *p99_ms = NAN;
    if (strcmp(name, "all") == 0) {
        size_t n = atomic_load(&((struct bench_report *)r)->n_versions);
        struct bench_hist all;
        bench_hist_init(&all, BENCH_REPORT_HIST_BITS);
        for (size_t i = 0; i < n; i++) {
            *req += r->v[i]->requests;
            *err += r->v[i]->errors;
            bench_hist_merge(&all, &r->v[i]->hist);
        }
        if (all.total)
            *p99_ms = (double)bench_hist_percentile(&all, 99) / 1e6;
        bench_hist_dispose(&all);
        return *req > 0;
    }
    const struct bench_version *v = find(r, name);
    if (!v)
        return false;
    *req = v->requests;
    *err = v->errors;
    if (v->hist.total)
        *p99_ms = (double)bench_hist_percentile(&v->hist, 99) / 1e6;
    return *req > 0;
}

/* The explanation for people, cut to fit. Through vsnprintf because
 * t->why and t->version share a struct, which GCC's -Wrestrict (under
 * ASan) takes for overlapping snprintf arguments. */
__attribute__((format(printf, 2, 3))) static void set_why(struct bench_gate *t, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
}

size_t bench_gate_eval(struct bench_gates *g, const struct bench_report *r)
{
    size_t broken = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct bench_gate *t = &g->v[i];
        uint64_t req, err, breq, berr;
        double p99, bp99;
        bool have = measure(r, t->version, &req, &err, &p99);
        t->evaluated = true;
        t->value = NAN;
        t->pass = false;
        if (!have) {
            set_why(t, "%s finished no request", t->version);
        } else if (t->kind == BENCH_GATE_ERROR_RATE) {
            t->value = (double)err / (double)req;
            t->pass = t->value <= t->limit;
            set_why(t, "%s error rate %.2f %% (%llu of %llu), limit %.2f %%",
                    t->version, 100 * t->value, (unsigned long long)err,
                    (unsigned long long)req, 100 * t->limit);
        } else if (isnan(p99)) {
            set_why(t, "%s got no response to time", t->version);
        } else if (t->kind == BENCH_GATE_P99) {
            t->value = p99;
            t->pass = p99 <= t->limit;
            set_why(t, "%s p99 %.3f ms, limit %.3f ms", t->version, p99,
                    t->limit);
        } else if (!measure(r, t->base, &breq, &berr, &bp99) || isnan(bp99) || bp99 <= 0) {
            set_why(t, "baseline %s got no response to time", t->base);
        } else {
            t->value = p99 / bp99;
            t->pass = t->value <= t->limit;
            set_why(t, "%s p99 %.3f ms is %.2fx %s's %.3f ms, limit %.2fx",
                    t->version, p99, t->value, t->base, bp99, t->limit);
        }
        if (!t->pass)
            broken++;
    }
    return broken;
}

void bench_gate_json(const struct bench_gates *g, struct json_buf *out)
{
    if (g->n == 0)
        return;
    json_buf_puts(out, ",\"thresholds\":[");
    for (size_t i = 0; i < g->n; i++) {
        const struct bench_gate *t = &g->v[i];
        json_buf_printf(out, "%s{\"option\":\"%s\",\"threshold\":", i ? "," : "",
                        bench_gate_option(t->kind));
        json_buf_str(out, t->text);
        json_buf_puts(out, ",\"version\":");
        json_buf_str(out, t->version);
        if (t->kind == BENCH_GATE_P99_RATIO) {
            json_buf_puts(out, ",\"baseline\":");
            json_buf_str(out, t->base);
        }
        json_buf_printf(out, ",\"limit\":%.6g,\"value\":", t->limit);
        if (isfinite(t->value))
            json_buf_printf(out, "%.6g", t->value);
        else
            json_buf_puts(out, "null");
        json_buf_printf(out, ",\"pass\":%s,\"reason\":", t->pass ? "true" : "false");
        json_buf_str(out, t->why);
        json_buf_puts(out, "}");
    }
    json_buf_puts(out, "]");
}

void bench_gate_print_broken(const struct bench_gates *g, FILE *f)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->v[i].evaluated && !g->v[i].pass)
            fprintf(f, "weir-bench: threshold broken: --%s %s: %s\n",
                    bench_gate_option(g->v[i].kind), g->v[i].text, g->v[i].why);
}

void bench_gate_print_table(const struct bench_gates *g, FILE *f)
{
    if (g->n == 0)
        return;
    fprintf(f, "\nthresholds:\n");
    for (size_t i = 0; i < g->n; i++)
        fprintf(f, "  %-4s --%s %s: %s\n", g->v[i].pass ? "ok" : "FAIL",
                bench_gate_option(g->v[i].kind), g->v[i].text, g->v[i].why);
}
