/*
 * bench_report.c — see bench_report.h.
 *
 * Recording is a handful of counter bumps and two histogram records per
 * request, no allocation except the first use of a time-series bucket of a
 * version. Output functions work on the merged report only: they order the
 * versions (by name, natural order, "unknown" last, empty ones hidden),
 * derive shares, rates and percentiles, and print the table and the JSON
 * document. The SVG plot is bench_svg.c's.
 */
#include "bench_report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

static const char *const err_names[BENCH_ERR__COUNT] = {
    [BENCH_ERR_CONNECT] = "connect",
    [BENCH_ERR_RESET] = "reset",
    [BENCH_ERR_CLOSED] = "closed",
    [BENCH_ERR_TIMEOUT] = "timeout",
    [BENCH_ERR_PARSE] = "parse",
    [BENCH_ERR_HTTP5XX] = "http_5xx",
    [BENCH_ERR_GRPC] = "grpc",
};

const char *bench_report_err_name(enum bench_err kind)
{
    return (unsigned)kind < BENCH_ERR__COUNT ? err_names[kind] : "?";
}

static struct bench_version *version_new(const struct bench_report *r,
                                         const char *name, size_t len)
{
    struct bench_version *v = xcalloc(1, sizeof(*v));
    if (len >= sizeof(v->name))
        len = sizeof(v->name) - 1;
    memcpy(v->name, name, len);
    v->name[len] = '\0';
    v->name_len = len;
    bench_hist_init(&v->hist, BENCH_REPORT_HIST_BITS);
    v->series_requests = xcalloc(r->n_buckets, sizeof(uint64_t));
    v->series_errors = xcalloc(r->n_buckets, sizeof(uint64_t));
    v->series_hist = xcalloc(r->n_buckets, sizeof(struct bench_hist));
    if (r->n_steps) {
        v->step_requests = xcalloc(r->n_steps, sizeof(uint64_t));
        v->step_errors = xcalloc(r->n_steps, sizeof(uint64_t));
    }
    atomic_init(&v->live_requests, 0);
    atomic_init(&v->live_errors, 0);
    return v;
}

static void version_free(struct bench_version *v, size_t n_buckets)
{
    if (!v)
        return;
    bench_hist_dispose(&v->hist);
    for (size_t i = 0; i < n_buckets; i++)
        bench_hist_dispose(&v->series_hist[i]);
    free(v->series_hist);
    free(v->series_requests);
    free(v->series_errors);
    free(v->step_requests);
    free(v->step_errors);
    free(v);
}

void bench_report_init(struct bench_report *r, double planned_s,
                       double grace_s, size_t n_steps)
{
    memset(r, 0, sizeof(*r));
    /* At most ~600 buckets keeps memory flat for long runs. */
    r->bucket_s = 1;
    while (planned_s / r->bucket_s > 600)
        r->bucket_s *= 2;
    r->n_buckets = (size_t)ceil((planned_s + grace_s) / r->bucket_s) + 2;
    r->n_steps = n_steps;
    r->v[BENCH_REPORT_UNKNOWN] = version_new(r, "unknown", 7);
    bench_hist_init(&r->send_lag, BENCH_REPORT_HIST_BITS);
    atomic_init(&r->n_versions, 1);
}

void bench_report_dispose(struct bench_report *r)
{
    if (!r)
        return;
    size_t n = atomic_load(&r->n_versions);
    for (size_t i = 0; i < n; i++)
        version_free(r->v[i], r->n_buckets);
    bench_hist_dispose(&r->send_lag);
    memset(r, 0, sizeof(*r));
}

int bench_report_version(struct bench_report *r, const char *name, size_t len)
{
    size_t n = atomic_load_explicit(&r->n_versions, memory_order_relaxed);
    if (len >= BENCH_SCHED_NAME_MAX)
        len = BENCH_SCHED_NAME_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        if (r->v[i]->name_len == len && memcmp(r->v[i]->name, name, len) == 0)
            return (int)i;
    }
    if (n == BENCH_REPORT_MAX_VERSIONS)
        return BENCH_REPORT_UNKNOWN;
    r->v[n] = version_new(r, name, len);
    atomic_store_explicit(&r->n_versions, n + 1, memory_order_release);
    return (int)n;
}

static size_t bucket_of(const struct bench_report *r, uint64_t t_ns)
{
    uint64_t b = (uint64_t)((double)t_ns / (r->bucket_s * 1e9));
    return b < r->n_buckets ? (size_t)b : r->n_buckets - 1;
}

void bench_report_response(struct bench_report *r, int slot, uint64_t t_ns,
                           uint32_t step, uint64_t latency_ns, unsigned status)
{
    struct bench_version *v = r->v[slot];
    size_t b = bucket_of(r, t_ns);
    bool is_err = status >= 500 && status <= 599;
    v->requests++;
    v->series_requests[b]++;
    v->status_class[status >= 100 && status <= 599 ? status / 100 : 0]++;
    bench_hist_record(&v->hist, latency_ns);
    struct bench_hist *sh = &v->series_hist[b];
    if (__builtin_expect(sh->counts == NULL, 0))
        bench_hist_init(sh, BENCH_REPORT_SERIES_BITS);
    bench_hist_record(sh, latency_ns);
    if (step < r->n_steps)
        v->step_requests[step]++;
    if (is_err) {
        v->errors++;
        v->err_kind[BENCH_ERR_HTTP5XX]++;
        v->series_errors[b]++;
        if (step < r->n_steps)
            v->step_errors[step]++;
        atomic_store_explicit(&v->live_errors, v->errors,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&v->live_requests, v->requests,
                          memory_order_relaxed);
}

void bench_report_grpc_response(struct bench_report *r, int slot, uint64_t t_ns,
                                uint32_t step, uint64_t latency_ns, unsigned status,
                                int grpc_status)
{
    bench_report_response(r, slot, t_ns, step, latency_ns, status);
    if (grpc_status == 0 || (status >= 500 && status <= 599))
        return;
    struct bench_version *v = r->v[slot];
    size_t b = bucket_of(r, t_ns);
    v->errors++;
    v->err_kind[BENCH_ERR_GRPC]++;
    v->series_errors[b]++;
    if (step < r->n_steps)
        v->step_errors[step]++;
    atomic_store_explicit(&v->live_errors, v->errors, memory_order_relaxed);
}

void bench_report_send_lag(struct bench_report *r, uint64_t lag_ns)
{
    bench_hist_record(&r->send_lag, lag_ns);
}

void bench_report_error(struct bench_report *r, int slot, uint64_t t_ns,
                        uint32_t step, enum bench_err kind, uint64_t n)
{
    struct bench_version *v = r->v[slot];
    size_t b = bucket_of(r, t_ns);
    v->requests += n;
    v->errors += n;
    v->err_kind[kind] += n;
    v->series_requests[b] += n;
    v->series_errors[b] += n;
    if (step < r->n_steps) {
        v->step_requests[step] += n;
        v->step_errors[step] += n;
    }
    atomic_store_explicit(&v->live_errors, v->errors, memory_order_relaxed);
    atomic_store_explicit(&v->live_requests, v->requests,
                          memory_order_relaxed);
}

void bench_report_merge(struct bench_report *dst,
                        const struct bench_report *src)
{
    CHECK(dst->n_buckets == src->n_buckets && dst->n_steps == src->n_steps);
    bench_hist_merge(&dst->send_lag, &src->send_lag);
    size_t n = atomic_load(&src->n_versions);
    for (size_t i = 0; i < n; i++) {
        const struct bench_version *s = src->v[i];
        int slot = bench_report_version(dst, s->name, s->name_len);
        struct bench_version *d = dst->v[slot];
        d->requests += s->requests;
        d->errors += s->errors;
        for (size_t k = 0; k < BENCH_ERR__COUNT; k++)
            d->err_kind[k] += s->err_kind[k];
        for (size_t k = 0; k < ARRAY_LEN(d->status_class); k++)
            d->status_class[k] += s->status_class[k];
        bench_hist_merge(&d->hist, &s->hist);
        for (size_t b = 0; b < src->n_buckets; b++) {
            d->series_requests[b] += s->series_requests[b];
            d->series_errors[b] += s->series_errors[b];
            if (s->series_hist[b].counts) {
                if (!d->series_hist[b].counts)
                    bench_hist_init(&d->series_hist[b],
                                    BENCH_REPORT_SERIES_BITS);
                bench_hist_merge(&d->series_hist[b], &s->series_hist[b]);
            }
        }
        for (size_t k = 0; k < src->n_steps; k++) {
            d->step_requests[k] += s->step_requests[k];
            d->step_errors[k] += s->step_errors[k];
        }
        atomic_store(&d->live_requests, d->requests);
        atomic_store(&d->live_errors, d->errors);
    }
}

uint64_t bench_report_live_requests(struct bench_report *r)
{
    size_t n = atomic_load_explicit(&r->n_versions, memory_order_acquire);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += atomic_load_explicit(&r->v[i]->live_requests,
                                    memory_order_relaxed);
    return sum;
}

uint64_t bench_report_live_errors(struct bench_report *r)
{
    size_t n = atomic_load_explicit(&r->n_versions, memory_order_acquire);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += atomic_load_explicit(&r->v[i]->live_errors,
                                    memory_order_relaxed);
    return sum;
}

/* ---- derived numbers ---- */

size_t bench_report_ordered(const struct bench_report *r,
                            const struct bench_version **out)
{
    size_t n = atomic_load(&((struct bench_report *)r)->n_versions);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (r->v[i]->requests == 0)
            continue;
        size_t j = k++;
        while (j > 0 && strverscmp(out[j - 1]->name, r->v[i]->name) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = r->v[i];
    }
    if (r->v[BENCH_REPORT_UNKNOWN]->requests)
        out[k++] = r->v[BENCH_REPORT_UNKNOWN];
    return k;
}

static bool is_unknown(const struct bench_report *r,
                       const struct bench_version *v)
{
    return v == r->v[BENCH_REPORT_UNKNOWN];
}

static uint64_t total_requests(const struct bench_report *r)
{
    size_t n = atomic_load(&((struct bench_report *)r)->n_versions);
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += r->v[i]->requests;
    return s;
}

static uint64_t total_errors(const struct bench_report *r)
{
    size_t n = atomic_load(&((struct bench_report *)r)->n_versions);
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += r->v[i]->errors;
    return s;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* All versions' histograms merged (caller disposes). */
static void total_hist(const struct bench_report *r, struct bench_hist *h)
{
    size_t n = atomic_load(&((struct bench_report *)r)->n_versions);
    bench_hist_init(h, BENCH_REPORT_HIST_BITS);
    for (size_t i = 0; i < n; i++)
        bench_hist_merge(h, &r->v[i]->hist);
}

/* ---- verdict ---- */

static const struct bench_version *
find_version(const struct bench_report *r, const char *name)
{
    size_t n = atomic_load(&((struct bench_report *)r)->n_versions);
    for (size_t i = 1; i < n; i++)
        if (strcmp(r->v[i]->name, name) == 0)
            return r->v[i];
    return NULL;
}

static double err_pct(const struct bench_version *v)
{
    return v->requests ? 100.0 * (double)v->errors / (double)v->requests : 0;
}

const char *bench_report_verdict(const struct bench_report *r,
                                 const struct bench_run *run, char *buf,
                                 size_t len)
{
    const struct bench_version *vs[BENCH_REPORT_MAX_VERSIONS];
    size_t n = bench_report_ordered(r, vs);
    const struct bench_version *base = NULL, *target = NULL;
    size_t pos = 0;
    buf[0] = '\0';

    if (run->ramp_target)
        target = find_version(r, run->ramp_target);
    for (size_t i = 0; i < n; i++) {
        if (is_unknown(r, vs[i]) || vs[i] == target)
            continue;
        if (!base || vs[i]->requests > base->requests)
            base = vs[i];
    }
    if (!base && target)
        base = target, target = NULL;
    if (!base) {
        snprintf(buf, len,
                 "no response carried the %s header: nothing to compare",
                 run->version_header);
        return buf;
    }
    for (size_t i = 0; i < n; i++) {
        const struct bench_version *v = vs[i];
        if (v == base || is_unknown(r, v) || (target && v != target))
            continue;
        char line[512];
        if (v->hist.total == 0) {
            snprintf(line, sizeof(line),
                     "%s answered no request; %s errors %.1f %% vs %.1f %%",
                     v->name, v->name, err_pct(v), err_pct(base));
        } else {
            double p99 = ms(bench_hist_percentile(&v->hist, 99));
            double bp99 = ms(bench_hist_percentile(&base->hist, 99));
            char rough[160] = "";
            if (v->hist.total < 1000)
                snprintf(rough, sizeof(rough),
                         " (only %llu %s responses: p99 is rough)",
                         (unsigned long long)v->hist.total, v->name);
            snprintf(line, sizeof(line),
                     "%s p99 is %.2fx %s's (%.3f ms vs %.3f ms); "
                     "%s errors %.1f %% vs %.1f %%%s",
                     v->name, ratio(p99, bp99), base->name, p99, bp99,
                     v->name, err_pct(v), err_pct(base), rough);
        }
        int w = snprintf(buf + pos, len - pos, "%s%s", pos ? "\n" : "", line);
        if (w < 0 || (size_t)w >= len - pos)
            break;
        pos += (size_t)w;
    }
    if (pos == 0)
        snprintf(buf, len, "only %s answered (%.1f %% errors): nothing to "
                           "compare",
                 base->name, err_pct(base));
    return buf;
}

/* ---- table ---- */

static void print_kinds(FILE *out, const uint64_t *kinds)
{
    const char *sep = "";
    for (size_t k = 0; k < BENCH_ERR__COUNT; k++) {
        if (!kinds[k])
            continue;
        fprintf(out, "%s%llu %s", sep, (unsigned long long)kinds[k],
                bench_report_err_name((enum bench_err)k));
        sep = ", ";
    }
}

static void print_mode(FILE *out, const struct bench_run *run)
{
    if (run->open_loop)
        fprintf(out, "open loop at %.0f req/s", run->rate_per_s);
    else
        fprintf(out, "closed loop");
    fprintf(out, ", %u connection%s", run->conns, run->conns == 1 ? "" : "s");
    if (run->streams)
        fprintf(out, " x %u %s stream%s", run->streams, run->protocol,
                run->streams == 1 ? "" : "s");
    fprintf(out, ", %u thread%s, %.2f s", run->threads, run->threads == 1 ? "" : "s",
            run->duration_s);
}

static void print_row(FILE *out, int nw, const char *name, uint64_t req,
                      uint64_t errs, double share, const char *configured,
                      double rps, const struct bench_hist *h)
{
    char e[48];
    snprintf(e, sizeof(e), "%llu (%.2f%%)", (unsigned long long)errs,
             req ? 100.0 * (double)errs / (double)req : 0.0);
    fprintf(out, "%-*s %10llu %7.2f%%%s %10.1f %15s", nw, name,
            (unsigned long long)req, 100 * share, configured, rps, e);
    if (h->total) {
        fprintf(out, " %9.3f %9.3f %9.3f %9.3f %9.3f\n",
                ms(bench_hist_percentile(h, 50)),
                ms(bench_hist_percentile(h, 90)),
                ms(bench_hist_percentile(h, 99)),
                ms(bench_hist_percentile(h, 99.9)), ms(h->max));
    } else {
        fprintf(out, " %9s %9s %9s %9s %9s\n", "-", "-", "-", "-", "-");
    }
}

static void step_achieved(const struct bench_report *r, size_t step,
                          const struct bench_version **vs, size_t n,
                          double *share)
{
    uint64_t tot = 0;
    for (size_t i = 0; i < n; i++)
        tot += vs[i]->step_requests ? vs[i]->step_requests[step] : 0;
    for (size_t i = 0; i < n; i++)
        share[i] = tot ? (double)vs[i]->step_requests[step] / (double)tot : 0;
    (void)r;
}

uint64_t bench_report_errors_until(const struct bench_report *r, const char *version,
                                   double at_s)
{
    size_t n = atomic_load_explicit(&r->n_versions, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        const struct bench_version *v = r->v[i];
        if (!v || strcmp(v->name, version) != 0)
            continue;
        uint64_t e = 0;
        for (size_t b = 0; b < r->n_buckets && (double)b * r->bucket_s <= at_s; b++)
            e += v->series_errors[b];
        return e;
    }
    return 0;
}

/* The events of the run, one line each; a guard trip says how many of the
 * judged version's requests had failed by then. */
static void print_events(const struct bench_report *r, const struct bench_run *run, FILE *out)
{
    if (!run->n_events)
        return;
    fprintf(out, "\nevents (weir's event stream):\n");
    for (size_t i = 0; i < run->n_events; i++) {
        const struct bench_event *e = &run->events[i];
        fprintf(out, "  %8.2f s  gen %-4llu %s", e->at_s, (unsigned long long)e->generation,
                e->what);
        if (strcmp(e->event, "guard") == 0 && e->version[0])
            fprintf(out, " [%llu %s requests had failed by then]",
                    (unsigned long long)bench_report_errors_until(r, e->version, e->at_s),
                    e->version);
        fprintf(out, "\n");
    }
}

void bench_report_print_table(const struct bench_report *r,
                              const struct bench_run *run, FILE *out)
{
    const struct bench_version *vs[BENCH_REPORT_MAX_VERSIONS];
    size_t n = bench_report_ordered(r, vs);
    uint64_t treq = total_requests(r), terr = total_errors(r);
    double dur = run->duration_s > 0 ? run->duration_s : 1e-9;
    int nw = 7;
    for (size_t i = 0; i < n; i++)
        if ((int)vs[i]->name_len > nw)
            nw = (int)vs[i]->name_len;

    fprintf(out, "weir-bench %s: ", run->url);
    print_mode(out, run);
    fprintf(out, "\n\n");
    fprintf(out, "%-*s %10s %8s%s %10s %15s %9s %9s %9s %9s %9s\n", nw,
            "version", "requests", "share",
            run->has_configured ? "  configured" : "", "req/s", "errors",
            "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
    for (size_t i = 0; i < n; i++) {
        const struct bench_version *v = vs[i];
        char conf[32] = "";
        if (run->has_configured) {
            int k = bench_sched_split_find(&run->configured, v->name);
            if (k >= 0)
                snprintf(conf, sizeof(conf), "  %9.2f%%",
                         run->configured.bp[k] / 100.0);
            else
                snprintf(conf, sizeof(conf), "  %10s", "-");
        }
        print_row(out, nw, v->name, v->requests, v->errors,
                  ratio((double)v->requests, (double)treq), conf,
                  (double)v->requests / dur, &v->hist);
    }
    struct bench_hist all;
    total_hist(r, &all);
    print_row(out, nw, "total", treq, terr, treq ? 1.0 : 0.0,
              run->has_configured ? "            " : "", (double)treq / dur,
              &all);
    bench_hist_dispose(&all);

    if (terr) {
        fprintf(out, "\nerrors:");
        const char *sep = " ";
        for (size_t i = 0; i < n; i++) {
            if (!vs[i]->errors)
                continue;
            fprintf(out, "%s%s ", sep, vs[i]->name);
            print_kinds(out, vs[i]->err_kind);
            sep = "; ";
        }
        fprintf(out, "\n");
    }
    uint64_t classes[6] = {0};
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < 6; c++)
            classes[c] += vs[i]->status_class[c];
    fprintf(out, "%sresponses:", terr ? "" : "\n");
    bool any = false;
    for (size_t c = 1; c < 6; c++) {
        if (classes[c]) {
            fprintf(out, " %zuxx %llu", c, (unsigned long long)classes[c]);
            any = true;
        }
    }
    if (classes[0])
        fprintf(out, " other %llu", (unsigned long long)classes[0]);
    fprintf(out, "%s\n", any || classes[0] ? "" : " none");

    if (run->ramp_target && run->n_steps) {
        fprintf(out, "\nramp of %s:\n  %4s %7s  %-28s %s\n", run->ramp_target,
                "step", "at s", "split set", "achieved");
        for (size_t s = 0; s < run->n_steps && s < r->n_steps; s++) {
            const struct bench_ramp_step *st = &run->steps[s];
            char sp[256];
            double share[BENCH_REPORT_MAX_VERSIONS];
            bench_sched_format_split(&st->split, sp, sizeof(sp));
            fprintf(out, "  %4zu %7.1f  %-28s", s + 1, st->at_s,
                    st->applied ? sp : "(not applied)");
            step_achieved(r, s, vs, n, share);
            for (size_t i = 0; i < n; i++)
                fprintf(out, " %s %.2f%%", vs[i]->name, 100 * share[i]);
            fprintf(out, "\n");
        }
    }
    uint64_t answered = 0;
    for (size_t c = 0; c < 6; c++)
        answered += classes[c];
    if (run->open_loop && run->rate_per_s > 0 &&
        (double)answered / dur < 0.95 * run->rate_per_s)
        fprintf(out,
                "\nnote: the target was %.0f req/s but only %.0f req/s were "
                "answered; requests queued behind busy connections, their "
                "wait counts in their latency, and those still unanswered at "
                "the end count as timeouts\n",
                run->rate_per_s, (double)answered / dur);
    if (run->open_loop && r->send_lag.total) {
        double lag99 = ms(bench_hist_percentile(&r->send_lag, 99));
        fprintf(out, "\nschedule: requests due on a free connection left "
                     "weir-bench %.3f ms (p99) after their due time%s\n",
                lag99,
                lag99 > 1 ? "; that lateness is weir-bench's own and inflates "
                            "the latencies above (try -t or fewer connections)"
                          : "");
    }
    print_events(r, run, out);
    char verdict[2048];
    fprintf(out, "\n%s\n", bench_report_verdict(r, run, verdict, sizeof(verdict)));
}

/* ---- JSON ---- */

/* A finite number with dec decimals (JSON has no NaN or Infinity). */
static void json_num(struct json_buf *out, double v, int dec)
{
    if (!isfinite(v))
        v = 0;
    json_buf_printf(out, "%.*f", dec, v);
}

static void json_latency(struct json_buf *out, const struct bench_hist *h)
{
    static const struct {
        const char *key;
        double pct;
    } ps[] = {{"p50_ms", 50}, {"p90_ms", 90}, {"p99_ms", 99}, {"p999_ms", 99.9}, {"max_ms", 100}};
    for (size_t i = 0; i < ARRAY_LEN(ps); i++) {
        json_buf_printf(out, ",\"%s\":", ps[i].key);
        json_num(out, ms(bench_hist_percentile(h, ps[i].pct)), 3);
    }
    json_buf_printf(out, ",\"mean_ms\":");
    json_num(out, bench_hist_mean(h) / 1e6, 3);
}

static void json_kinds(struct json_buf *out, const uint64_t *kinds,
                       const uint64_t *classes)
{
    json_buf_printf(out, ",\"errors_by_kind\":{");
    for (size_t k = 0; k < BENCH_ERR__COUNT; k++)
        json_buf_printf(out, "%s\"%s\":%llu", k ? "," : "",
                        bench_report_err_name((enum bench_err)k),
                        (unsigned long long)kinds[k]);
    json_buf_printf(out, "},\"status\":{\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,"
                         "\"4xx\":%llu,\"5xx\":%llu,\"other\":%llu}",
                    (unsigned long long)classes[1], (unsigned long long)classes[2],
                    (unsigned long long)classes[3], (unsigned long long)classes[4],
                    (unsigned long long)classes[5], (unsigned long long)classes[0]);
}

static void json_split(struct json_buf *out, const struct bench_split *s)
{
    json_buf_add(out, "{", 1);
    for (size_t i = 0; i < s->n; i++) {
        char pct[16];
        util_format_bp(s->bp[i], pct, sizeof(pct));
        if (i)
            json_buf_add(out, ",", 1);
        json_buf_str(out, s->name[i]);
        json_buf_printf(out, ":%s", pct);
    }
    json_buf_add(out, "}", 1);
}

static void print_json(const struct bench_report *r, const struct bench_run *run,
                       struct json_buf *out)
{
    const struct bench_version *vs[BENCH_REPORT_MAX_VERSIONS];
    size_t n = bench_report_ordered(r, vs);
    uint64_t treq = total_requests(r), terr = total_errors(r);
    double dur = run->duration_s > 0 ? run->duration_s : 1e-9;
    uint64_t kinds[BENCH_ERR__COUNT] = {0}, classes[6] = {0};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < BENCH_ERR__COUNT; k++)
            kinds[k] += vs[i]->err_kind[k];
        for (size_t c = 0; c < 6; c++)
            classes[c] += vs[i]->status_class[c];
    }

    json_buf_printf(out, "{\"requests\":%llu,\"errors\":%llu,\"duration_s\":",
                    (unsigned long long)treq, (unsigned long long)terr);
    json_num(out, run->duration_s, 3);
    json_buf_printf(out, ",\"rps\":");
    json_num(out, (double)treq / dur, 1);
    json_buf_printf(out, ",\"url\":");
    json_buf_str(out, run->url);
    json_buf_printf(out, ",\"mode\":\"%s\",\"connections\":%u,\"threads\":%u",
                    run->open_loop ? "open" : "closed", run->conns, run->threads);
    if (run->protocol)
        json_buf_printf(out, ",\"protocol\":\"%s\"", run->protocol);
    if (run->streams)
        json_buf_printf(out, ",\"streams\":%u", run->streams);
    if (run->open_loop) {
        json_buf_printf(out, ",\"target_rps\":");
        json_num(out, run->rate_per_s, 1);
        json_buf_printf(out, ",\"send_lag_p50_ms\":");
        json_num(out, ms(bench_hist_percentile(&r->send_lag, 50)), 3);
        json_buf_printf(out, ",\"send_lag_p99_ms\":");
        json_num(out, ms(bench_hist_percentile(&r->send_lag, 99)), 3);
    }
    json_buf_printf(out, ",\"version_header\":");
    json_buf_str(out, run->version_header);
    struct bench_hist all;
    total_hist(r, &all);
    json_latency(out, &all);
    bench_hist_dispose(&all);
    json_kinds(out, kinds, classes);

    json_buf_printf(out, ",\"versions\":{");
    for (size_t i = 0; i < n; i++) {
        const struct bench_version *v = vs[i];
        if (i)
            json_buf_add(out, ",", 1);
        json_buf_str(out, v->name);
        json_buf_printf(out, ":{\"requests\":%llu,\"errors\":%llu,\"share\":",
                        (unsigned long long)v->requests,
                        (unsigned long long)v->errors);
        json_num(out, ratio((double)v->requests, (double)treq), 4);
        json_buf_printf(out, ",\"rps\":");
        json_num(out, (double)v->requests / dur, 1);
        json_latency(out, &v->hist);
        json_kinds(out, v->err_kind, v->status_class);
        if (run->has_configured) {
            int k = bench_sched_split_find(&run->configured, v->name);
            if (k >= 0) {
                json_buf_printf(out, ",\"configured_share\":");
                json_num(out, run->configured.bp[k] / 10000.0, 4);
            }
        }
        json_buf_add(out, "}", 1);
    }
    json_buf_add(out, "}", 1);

    if (run->has_configured) {
        json_buf_printf(out, ",\"configured_split\":");
        json_split(out, &run->configured);
    }
    if (run->ramp_target) {
        json_buf_printf(out, ",\"ramp\":{\"version\":");
        json_buf_str(out, run->ramp_target);
        json_buf_printf(out, ",\"steps\":[");
        for (size_t s = 0; s < run->n_steps && s < r->n_steps; s++) {
            const struct bench_ramp_step *st = &run->steps[s];
            char pct[16];
            double share[BENCH_REPORT_MAX_VERSIONS];
            util_format_bp(st->target_bp, pct, sizeof(pct));
            json_buf_printf(out, "%s{\"at_s\":", s ? "," : "");
            json_num(out, st->at_s, 3);
            json_buf_printf(out, ",\"percent\":%s,\"applied\":%s,\"generation\":%llu,"
                                 "\"split\":",
                            pct, st->applied ? "true" : "false",
                            (unsigned long long)st->generation);
            json_split(out, &st->split);
            uint64_t step_req = 0;
            for (size_t i = 0; i < n; i++)
                step_req += vs[i]->step_requests ? vs[i]->step_requests[s] : 0;
            json_buf_printf(out, ",\"requests\":%llu,\"achieved\":{",
                            (unsigned long long)step_req);
            step_achieved(r, s, vs, n, share);
            for (size_t i = 0; i < n; i++) {
                if (i)
                    json_buf_add(out, ",", 1);
                json_buf_str(out, vs[i]->name);
                json_buf_add(out, ":", 1);
                json_num(out, share[i], 4);
            }
            json_buf_printf(out, "}}");
        }
        json_buf_printf(out, "]}");
    }
    if (run->n_events) {
        json_buf_printf(out, ",\"events\":[");
        for (size_t i = 0; i < run->n_events; i++) {
            const struct bench_event *e = &run->events[i];
            json_buf_printf(out, "%s{\"at_s\":", i ? "," : "");
            json_num(out, e->at_s, 3);
            json_buf_printf(out, ",\"event\":");
            json_buf_str(out, e->event);
            json_buf_printf(out, ",\"version\":");
            json_buf_str(out, e->version);
            json_buf_printf(out, ",\"generation\":%llu,\"what\":",
                            (unsigned long long)e->generation);
            json_buf_str(out, e->what);
            if (strcmp(e->event, "guard") == 0 && e->version[0])
                json_buf_printf(out, ",\"failed_before\":%llu",
                                (unsigned long long)bench_report_errors_until(r, e->version,
                                                                              e->at_s));
            json_buf_printf(out, "}");
        }
        json_buf_printf(out, "]");
    }
    char verdict[2048];
    json_buf_printf(out, ",\"verdict\":");
    json_buf_str(out, bench_report_verdict(r, run, verdict,
                                           sizeof(verdict)));
    if (run->extra_json)
        json_buf_puts(out, run->extra_json);
    json_buf_printf(out, "}\n");
}

void bench_report_print_json(const struct bench_report *r,
                             const struct bench_run *run, FILE *out)
{
    struct json_buf b;
    json_buf_init(&b);
    print_json(r, run, &b);
    fwrite(b.p, 1, b.len, out);
    json_buf_dispose(&b);
}
