/*
 * bench_svg.c — weir-bench's --plot: bench_report_write_svg() (declared in
 * bench_report.h, which owns the data). The SVG is written by hand: three
 * panels sharing the time axis (request rate per version; p50 dashed and
 * p99 solid per version on a log scale; error % per version), ramp steps as
 * vertical markers, legends; no scripts, fonts or external references.
 * Reads a merged report only; main thread.
 */
#include "bench_report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* Three panels sharing the time axis, all x from PLOT_X0 to PLOT_X1. */
#define SVG_W 980
#define SVG_H 820
#define PLOT_X0 80.0
#define PLOT_X1 800.0 /* the legend lives right of it */

struct panel {
    double y0, y1; /* top and bottom edge */
    double lo, hi; /* value range (log10 of it when is_log) */
    bool is_log;
};

static const struct panel rate_panel0 = {76, 286, 0, 1, false};
static const struct panel lat_panel0 = {336, 546, -1, 1, true};
static const struct panel err_panel0 = {596, 746, 0, 1, false};

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c",
                                      "#ff7f0e", "#9467bd", "#8c564b",
                                      "#e377c2", "#17becf"};

static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if ((unsigned char)*s >= 0x20)
                fputc(*s, f);
        }
    }
}

/* A "nice" tick step (1, 2 or 5 × 10^k) for about want ticks over span. */
static double nice_step(double span, int want)
{
    if (span <= 0)
        return 1;
    double raw = span / want;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2
                     : f <= 5   ? 5
                                : 10) *
           mag;
}

static double px_x(double t, double tmax)
{
    return PLOT_X0 + (PLOT_X1 - PLOT_X0) * t / tmax;
}

static double px_y(const struct panel *p, double v)
{
    double x = p->is_log ? log10(v) : v;
    if (x < p->lo)
        x = p->lo;
    if (x > p->hi)
        x = p->hi;
    return p->y1 - (p->y1 - p->y0) * (x - p->lo) / (p->hi - p->lo);
}

/* Length of bucket b inside the run, or -1 past its end (a sliver under a
 * fifth of a bucket is dropped: its rate would be mostly noise). */
static double bucket_width(const struct bench_report *r,
                           const struct bench_run *run, size_t b)
{
    double start = (double)b * r->bucket_s;
    if (start >= run->duration_s)
        return -1;
    double width = run->duration_s - start;
    if (width > r->bucket_s)
        width = r->bucket_s;
    return width < 0.2 * r->bucket_s ? -1 : width;
}

static double bucket_mid(const struct bench_report *r,
                         const struct bench_run *run, size_t b)
{
    double t = ((double)b + 0.5) * r->bucket_s;
    return t > run->duration_s ? run->duration_s : t;
}

/* Frame, grid, y labels and title of one panel. */
static void svg_panel(FILE *f, const struct panel *p, double tmax,
                      double tstep, double ystep, const char *title,
                      const char *unit)
{
    fprintf(f, "<g stroke=\"#ddd\" fill=\"none\">\n");
    for (double t = 0; t <= tmax + 1e-9; t += tstep)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\"/>\n",
                px_x(t, tmax), p->y0, px_x(t, tmax), p->y1);
    for (double y = p->lo; y <= p->hi + 1e-9; y += ystep)
        fprintf(f, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\"/>\n",
                PLOT_X0, px_y(p, p->is_log ? pow(10, y) : y), PLOT_X1,
                px_y(p, p->is_log ? pow(10, y) : y));
    fprintf(f, "</g>\n<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
               "stroke=\"#333\" fill=\"none\"/>\n",
            PLOT_X0, p->y0, PLOT_X1 - PLOT_X0, p->y1 - p->y0);
    fprintf(f, "<g fill=\"#333\" text-anchor=\"middle\">\n");
    for (double t = 0; t <= tmax + 1e-9; t += tstep)
        fprintf(f, "<text x=\"%.1f\" y=\"%g\">%g</text>\n", px_x(t, tmax),
                p->y1 + 15, t);
    fprintf(f, "</g>\n<g fill=\"#333\" text-anchor=\"end\">\n");
    for (double y = p->lo; y <= p->hi + 1e-9; y += ystep) {
        double v = p->is_log ? pow(10, y) : y;
        char lab[32];
        if (!p->is_log && v >= 1000)
            snprintf(lab, sizeof(lab), "%gk", v / 1000);
        else
            snprintf(lab, sizeof(lab), "%g", v);
        fprintf(f, "<text x=\"%g\" y=\"%.1f\">%s</text>\n", PLOT_X0 - 6,
                px_y(p, v) + 4, lab);
    }
    fprintf(f, "</g>\n<text x=\"%g\" y=\"%g\" font-weight=\"bold\">%s</text>\n"
               "<text transform=\"translate(22 %g) rotate(-90)\" "
               "text-anchor=\"middle\">%s</text>\n",
            PLOT_X0, p->y0 - 6, title, (p->y0 + p->y1) / 2, unit);
}

/* A polyline over the buckets; value() < 0 leaves a gap. */
typedef double (*svg_value_cb)(const struct bench_report *r,
                               const struct bench_run *run,
                               const struct bench_version *v,
                               const uint64_t *tot, size_t b);

static void svg_line(FILE *f, const struct bench_report *r,
                     const struct bench_run *run, const struct panel *p,
                     double tmax, const struct bench_version *v,
                     const uint64_t *tot, svg_value_cb value,
                     const char *color, const char *style)
{
    fprintf(f, "<path fill=\"none\" stroke=\"%s\" %s d=\"", color, style);
    bool pen = false;
    for (size_t b = 0; b < r->n_buckets; b++) {
        double y = bucket_width(r, run, b) < 0 ? -1 : value(r, run, v, tot, b);
        if (y < 0) {
            pen = false;
            continue;
        }
        fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M",
                px_x(bucket_mid(r, run, b), tmax), px_y(p, y));
        pen = true;
    }
    fprintf(f, "\"/>\n");
}

static double val_rate(const struct bench_report *r,
                       const struct bench_run *run,
                       const struct bench_version *v, const uint64_t *tot,
                       size_t b)
{
    return (double)(v ? v->series_requests[b] : tot[b]) /
           bucket_width(r, run, b);
}

static double val_err_pct(const struct bench_report *r,
                          const struct bench_run *run,
                          const struct bench_version *v, const uint64_t *tot,
                          size_t b)
{
    (void)r, (void)run, (void)tot;
    uint64_t n = v->series_requests[b];
    return n ? 100.0 * (double)v->series_errors[b] / (double)n : -1;
}

static double val_pct(const struct bench_version *v, size_t b, double pct)
{
    const struct bench_hist *h = &v->series_hist[b];
    return h->counts && h->total ? ms(bench_hist_percentile(h, pct)) : -1;
}

static double val_p50(const struct bench_report *r,
                      const struct bench_run *run,
                      const struct bench_version *v, const uint64_t *tot,
                      size_t b)
{
    (void)r, (void)run, (void)tot;
    return val_pct(v, b, 50);
}

static double val_p99(const struct bench_report *r,
                      const struct bench_run *run,
                      const struct bench_version *v, const uint64_t *tot,
                      size_t b)
{
    (void)r, (void)run, (void)tot;
    return val_pct(v, b, 99);
}

static void svg_legend_line(FILE *f, double y, const char *color,
                            const char *style, const char *label)
{
    fprintf(f, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" "
               "stroke=\"%s\" %s/><text x=\"%g\" y=\"%.1f\">",
            PLOT_X1 + 20, y, PLOT_X1 + 44, y, color, style, PLOT_X1 + 50,
            y + 4);
    svg_text(f, label);
    fprintf(f, "</text>\n");
}

int bench_report_write_svg(const struct bench_report *r,
                           const struct bench_run *run, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const struct bench_version *vs[BENCH_REPORT_MAX_VERSIONS];
    size_t n = bench_report_ordered(r, vs);
    double tmax = run->duration_s > 0 ? run->duration_s : 1;
    size_t nb = r->n_buckets;
    struct panel rate_p = rate_panel0, lat_p = lat_panel0, err_p = err_panel0;

    /* Scales from the data. */
    uint64_t *tot = xcalloc(nb, sizeof(uint64_t));
    double rmax = 1, lmin = INFINITY, lmax = 0, emax = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < nb; b++) {
            tot[b] += vs[i]->series_requests[b];
            if (bucket_width(r, run, b) < 0)
                continue;
            double p50 = val_pct(vs[i], b, 50), p99 = val_pct(vs[i], b, 99);
            double e = val_err_pct(r, run, vs[i], tot, b);
            if (p50 > 0 && p50 < lmin)
                lmin = p50;
            if (p99 > lmax)
                lmax = p99;
            if (e > emax)
                emax = e;
        }
    }
    for (size_t b = 0; b < nb; b++)
        if (bucket_width(r, run, b) > 0 && val_rate(r, run, NULL, tot, b) > rmax)
            rmax = val_rate(r, run, NULL, tot, b);
    double rstep = nice_step(rmax, 5);
    rate_p.hi = ceil(rmax * 1.05 / rstep) * rstep;
    if (!(lmin < INFINITY) || lmax <= 0)
        lmin = 0.1, lmax = 10;
    lat_p.lo = floor(log10(lmin));
    lat_p.hi = ceil(log10(lmax));
    if (lat_p.hi <= lat_p.lo)
        lat_p.hi = lat_p.lo + 1;
    double estep = nice_step(emax < 1 ? 1 : emax, 4);
    err_p.hi = ceil((emax < 1 ? 1 : emax) * 1.05 / estep) * estep;
    if (err_p.hi > 100)
        err_p.hi = 100;
    double tstep = nice_step(tmax, 8);

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(f, "<text x=\"%g\" y=\"24\" font-size=\"15\" font-weight=\"bold\">"
               "weir-bench ",
            PLOT_X0);
    svg_text(f, run->url);
    fprintf(f, "</text>\n<text x=\"%g\" y=\"42\" fill=\"#555\">", PLOT_X0);
    if (run->open_loop)
        fprintf(f, "open loop at %.0f req/s, ", run->rate_per_s);
    else
        fprintf(f, "closed loop, ");
    fprintf(f, "%u connections, %.1f s; versions by ", run->conns,
            run->duration_s);
    svg_text(f, run->version_header);
    fprintf(f, "</text>\n");

    svg_panel(f, &rate_p, tmax, tstep, rstep, "requests/s by version",
              "req/s");
    svg_panel(f, &lat_p, tmax, tstep, 1,
              "latency (ms, log scale): p99 solid, p50 dashed", "ms");
    svg_panel(f, &err_p, tmax, tstep, estep,
              "errors (% of the version's requests)", "%");
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">time (s)"
               "</text>\n",
            (PLOT_X0 + PLOT_X1) / 2, err_p.y1 + 34);

    /* Ramp step markers across all panels. */
    const struct panel *panels[] = {&rate_p, &lat_p, &err_p};
    for (size_t s = 0; s < run->n_steps; s++) {
        const struct bench_ramp_step *st = &run->steps[s];
        if (!st->applied || st->at_s > tmax)
            continue;
        double x = px_x(st->at_s, tmax);
        fprintf(f, "<g stroke=\"#888\" stroke-dasharray=\"2 3\">");
        for (size_t k = 0; k < ARRAY_LEN(panels); k++)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\"/>", x,
                    panels[k]->y0, x, panels[k]->y1);
        char pct[16];
        util_format_bp(st->target_bp, pct, sizeof(pct));
        fprintf(f, "</g>\n<text x=\"%.1f\" y=\"%g\" fill=\"#555\" "
                   "font-size=\"11\">",
                x + 3, rate_p.y0 + 12);
        svg_text(f, run->ramp_target ? run->ramp_target : "");
        fprintf(f, " %s%%</text>\n", pct);
    }

    /* weir's events (--events): a red mark for a guard trip, grey for
     * other changes, each labelled. */
    for (size_t i = 0; i < run->n_events; i++) {
        const struct bench_event *e = &run->events[i];
        if (e->at_s < 0 || e->at_s > tmax)
            continue;
        double x = px_x(e->at_s, tmax);
        bool trip = strcmp(e->event, "guard") == 0;
        fprintf(f, "<g stroke=\"%s\" stroke-dasharray=\"4 2\">", trip ? "#d62728" : "#7f7f7f");
        for (size_t k = 0; k < ARRAY_LEN(panels); k++)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\"/>", x,
                    panels[k]->y0, x, panels[k]->y1);
        fprintf(f, "</g>\n<text x=\"%.1f\" y=\"%g\" fill=\"%s\" font-size=\"11\">", x + 3,
                err_p.y0 + 12 + 12.0 * (double)(i % 4), trip ? "#d62728" : "#555");
        char label[96];
        snprintf(label, sizeof(label), "%.1f s %s %s", e->at_s, e->event, e->version);
        svg_text(f, label);
        fprintf(f, "</text>\n");
    }

    /* Data. */
    if (n >= 2)
        svg_line(f, r, run, &rate_p, tmax, NULL, tot, val_rate, "#999",
                 "stroke-width=\"1\"");
    for (size_t i = 0; i < n; i++) {
        const char *color = palette[i % ARRAY_LEN(palette)];
        svg_line(f, r, run, &rate_p, tmax, vs[i], tot, val_rate, color,
                 "stroke-width=\"2\"");
        svg_line(f, r, run, &lat_p, tmax, vs[i], tot, val_p50, color,
                 "stroke-width=\"1.5\" stroke-dasharray=\"5 3\"");
        svg_line(f, r, run, &lat_p, tmax, vs[i], tot, val_p99, color,
                 "stroke-width=\"2\"");
        svg_line(f, r, run, &err_p, tmax, vs[i], tot, val_err_pct, color,
                 "stroke-width=\"2\"");
    }

    /* Legends. */
    fprintf(f, "<g font-size=\"12\">\n");
    double ly = rate_p.y0 + 10;
    for (size_t i = 0; i < n; i++, ly += 20)
        svg_legend_line(f, ly, palette[i % ARRAY_LEN(palette)],
                        "stroke-width=\"3\"", vs[i]->name);
    if (n >= 2)
        svg_legend_line(f, ly, "#999", "stroke-width=\"1\"", "all");
    svg_legend_line(f, lat_p.y0 + 10, "#333", "stroke-width=\"2\"", "p99");
    svg_legend_line(f, lat_p.y0 + 30, "#333",
                    "stroke-width=\"1.5\" stroke-dasharray=\"5 3\"", "p50");
    fprintf(f, "</g>\n</svg>\n");
    free(tot);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    return 0;
}
