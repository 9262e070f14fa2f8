/*
 * control_view.c — the read-only answers of the control socket: status,
 * explain, history, and the split object every answer of a change
 * carries. The renderers (control_view_render_*) are pure functions of a
 * snapshot or config, for any caller that shows the same view (the admin
 * listener's /status serves the status answer byte for byte); the handlers
 * parse arguments and call them. Nothing here changes state. Main thread.
 */
#include "control_view.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "control_ctx.h"
#include "fleet.h"
#include "release.h"
#include "router.h"
#include "runtime.h"
#include "snapshot.h"
#include "state.h"
#include "tls_store.h"

#define EXPLAIN_HEADERS_MAX 64

void control_view_render_split(struct json_buf *b, const struct config *cfg)
{
    json_buf_puts(b, "\"split\":{");
    for (size_t i = 0; i < cfg->n_versions; i++) {
        char pct[16];
        util_format_bp(cfg->split_bp ? cfg->split_bp[i] : 0, pct, sizeof(pct));
        if (i)
            json_buf_puts(b, ",");
        json_buf_key(b, cfg->versions[i].name);
        json_buf_puts(b, pct);
    }
    json_buf_puts(b, "}");
}

static void emit_rule(struct json_buf *b, const struct config_rule *r, size_t i,
                      const char *file)
{
    json_buf_printf(b, "{\"index\":%zu,", i);
    json_buf_key(b, r->match == RULE_M_COOKIE_VALUE ? "cookie" : "header");
    json_buf_str(b, r->name);
    if (r->value) {
        json_buf_puts(b, ",\"value\":");
        json_buf_str(b, r->value);
    }
    json_buf_puts(b, ",\"version\":");
    json_buf_str(b, r->version);
    json_buf_puts(b, ",\"source\":");
    if (r->pos.line > 0) {
        char src[4200];
        snprintf(src, sizeof(src), "%s:%d", file ? file : "", r->pos.line);
        json_buf_str(b, src);
    } else {
        json_buf_str(b, "runtime");
    }
    json_buf_puts(b, "}");
}

void control_view_render_status(struct json_buf *b, const struct snapshot *s)
{
    const struct config *cfg = s->cfg;
    uint64_t now = util_now_ms();
    json_buf_printf(b, ",\"generation\":%" PRIu64 ",", s->generation);
    control_view_render_split(b, cfg);
    json_buf_puts(b, ",\"versions\":{");
    for (size_t v = 0; v < s->n_versions; v++) {
        const struct snap_version *sv = &s->versions[v];
        if (v)
            json_buf_puts(b, ",");
        json_buf_key(b, sv->name);
        char pct[16];
        util_format_bp(sv->split_bp, pct, sizeof(pct));
        json_buf_printf(b, "{\"split\":%s,", pct);
        if (sv->fallback >= 0) {
            json_buf_puts(b, "\"fallback\":");
            json_buf_str(b, s->versions[sv->fallback].name);
            json_buf_puts(b, ",");
        }
        if (cfg->versions[v].discover) {
            json_buf_puts(b, "\"discover\":");
            json_buf_str(b, cfg->versions[v].discover);
            json_buf_puts(b, ",");
        }
        json_buf_puts(b, "\"endpoints\":[");
        size_t avail = 0;
        for (size_t i = 0; i < sv->n_eps; i++) {
            const struct snap_endpoint *se = &sv->eps[i];
            const struct endpoint *ep = se->ep;
            uint64_t until = atomic_load_explicit(&ep->ejected_until_ms,
                                                  memory_order_relaxed);
            if (!se->draining && endpoint_is_available(ep, now))
                avail++;
            uint64_t reqs = 0;
            for (int c = 0; c < STATUS_CLASSES; c++)
                reqs += endpoint_requests(ep, c);
            if (i)
                json_buf_puts(b, ",");
            json_buf_puts(b, "{\"address\":");
            json_buf_str(b, ep->address);
            json_buf_printf(b,
                            ",\"healthy\":%s,\"draining\":%s,\"inflight\":%" PRIu64
                            ",\"weight\":%u,\"ejected\":%s,\"requests\":%" PRIu64,
                            endpoint_is_available(ep, now) ? "true" : "false",
                            se->draining ? "true" : "false", endpoint_inflight(ep),
                            se->weight, until > now ? "true" : "false", reqs);
            json_buf_printf(b, ",\"consecutive_failures\":%u",
                            atomic_load_explicit(&ep->consecutive_failures,
                                                 memory_order_relaxed));
            if (until > now) {
                /* ejected_until_ms is on the monotonic clock: show wall time. */
                char when[40];
                state_format_time(state_now_ms() + (int64_t)(until - now), when,
                                  sizeof(when));
                json_buf_printf(b, ",\"ejected_for_ms\":%" PRIu64 ",\"ejected_until\":",
                                until - now);
                json_buf_str(b, when);
            }
            uint64_t last = atomic_load_explicit(&ep->last_check_ms, memory_order_relaxed);
            if (last) {
                char when[40];
                state_format_time((int64_t)last, when, sizeof(when));
                json_buf_puts(b, ",\"last_check\":");
                json_buf_str(b, when);
                json_buf_printf(b, ",\"last_check_status\":%d",
                                atomic_load_explicit(&ep->last_check_status,
                                                     memory_order_relaxed));
            }
            json_buf_puts(b, "}");
        }
        /* With no endpoint available the version's requests go to its
         * fallback (proxy.c), or get 503. */
        json_buf_printf(b, "],\"available_endpoints\":%zu", avail);
        if (sv->fallback >= 0)
            json_buf_printf(b, ",\"fallback_active\":%s", avail ? "false" : "true");
        json_buf_puts(b, "}");
    }
    json_buf_puts(b, "},\"rules\":[");
    for (size_t r = 0; r < cfg->n_rules; r++) {
        if (r)
            json_buf_puts(b, ",");
        emit_rule(b, &cfg->rules[r], r, cfg->path);
    }
    json_buf_puts(b, "]");
    if (cfg->sticky.kind != STICKY_NONE) {
        json_buf_puts(b, ",\"sticky\":{");
        json_buf_key(b, cfg->sticky.kind == STICKY_HEADER ? "header" : "cookie");
        json_buf_str(b, cfg->sticky.name);
        json_buf_puts(b, "}");
    }
    json_buf_puts(b, ",\"config\":");
    json_buf_str(b, runtime_config_path());
    json_buf_puts(b, ",\"runtime_changes\":[");
    for (size_t i = 0; i < runtime_changes_len(); i++) {
        const char *value;
        int64_t ts;
        const char *key = runtime_change_at(i, &value, &ts);
        char when[40];
        state_format_time(ts, when, sizeof(when));
        if (i)
            json_buf_puts(b, ",");
        json_buf_puts(b, "{\"key\":");
        json_buf_str(b, key);
        json_buf_puts(b, ",\"value\":");
        json_buf_str(b, value);
        json_buf_puts(b, ",\"since\":");
        json_buf_str(b, when);
        json_buf_puts(b, "}");
    }
    json_buf_printf(b, "],\"history\":%zu", runtime_history_len());
    tls_store_render_status(b, s);
}

int control_view_status(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    struct snapshot *s = snapshot_acquire();
    if (!s)
        return control_ctx_fail(ctx, "no configuration is loaded yet");
    control_view_render_status(ctx->out, s);
    snapshot_unref(s);
    return 0;
}

static bool is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Length of the header name if word starts "Name:", else 0. */
static size_t header_start(const char *word)
{
    size_t n = 0;
    while (is_tchar(word[n]))
        n++;
    return n > 0 && word[n] == ':' ? n : 0;
}

static bool is_method(const char *w)
{
    if (!*w)
        return false;
    for (const char *p = w; *p; p++)
        if (!isupper((unsigned char)*p))
            return false;
    return true;
}

int control_view_explain(struct control_ctx *ctx)
{
    const char *method = "GET", *path = "/";
    size_t i = 0;
    if (i < ctx->argc && is_method(ctx->argv[i]))
        method = ctx->argv[i++];
    if (i < ctx->argc && (ctx->argv[i][0] == '/' || strcmp(ctx->argv[i], "*") == 0 ||
                          strncmp(ctx->argv[i], "http://", 7) == 0 ||
                          strncmp(ctx->argv[i], "https://", 8) == 0))
        path = ctx->argv[i++];

    struct router_header hdr[EXPLAIN_HEADERS_MAX];
    struct json_buf val[EXPLAIN_HEADERS_MAX];
    size_t nh = 0;
    int rc = 0;
    for (; i < ctx->argc; i++) {
        const char *w = ctx->argv[i];
        size_t nl = header_start(w);
        if (nl) {
            if (nh == EXPLAIN_HEADERS_MAX) {
                rc = control_ctx_fail(ctx, "too many headers (at most %d)", EXPLAIN_HEADERS_MAX);
                break;
            }
            hdr[nh].name = (struct strview){w, nl};
            json_buf_init(&val[nh]);
            const char *v = w + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            json_buf_puts(&val[nh], v);
            nh++;
        } else if (nh == 0) {
            rc = control_ctx_fail(ctx, "expected a header \"Name: value\", got \"%s\" (usage: explain "
                                       "%s)",
                                  w, ctx->args);
            break;
        } else {
            /* A value with spaces given as several words: join them back. */
            if (val[nh - 1].len)
                json_buf_puts(&val[nh - 1], " ");
            json_buf_puts(&val[nh - 1], w);
        }
    }
    struct snapshot *s = rc == 0 ? snapshot_acquire() : NULL;
    if (rc == 0 && !s)
        rc = control_ctx_fail(ctx, "no configuration is loaded yet");
    if (rc == 0) {
        for (size_t h = 0; h < nh; h++) {
            /* Trailing spaces are not part of a field value (RFC 9112 §5). */
            while (val[h].len && val[h].p[val[h].len - 1] == ' ')
                val[h].p[--val[h].len] = '\0';
            hdr[h].value = (struct strview){val[h].p, val[h].len};
        }
        struct router_request req = {.headers = hdr, .n_headers = nh};
        struct route_decision d;
        router_pick(s, NULL, &req, &d);
        struct json_buf *b = ctx->out;
        json_buf_printf(b, ",\"generation\":%" PRIu64 ",\"method\":", s->generation);
        json_buf_str(b, method);
        json_buf_puts(b, ",\"path\":");
        json_buf_str(b, path);
        json_buf_puts(b, ",\"version\":");
        if (d.version >= 0)
            json_buf_str(b, s->versions[d.version].name);
        else
            json_buf_puts(b, "null");
        json_buf_puts(b, ",\"reason\":");
        json_buf_str(b, router_reason_name(d.reason));
        char detail[1024];
        const struct config *cfg = s->cfg;
        if (d.reason == ROUTE_R_RULE) {
            const struct config_rule *r = &cfg->rules[d.rule];
            json_buf_printf(b, ",\"rule\":%d", d.rule);
            char src[300] = "added at runtime";
            if (r->pos.line > 0)
                snprintf(src, sizeof(src), "%s line %d", cfg->path, r->pos.line);
            if (r->match == RULE_M_HEADER_PRESENT)
                snprintf(detail, sizeof(detail), "rule %d (%s): header %s is present",
                         d.rule, src, r->name);
            else
                snprintf(detail, sizeof(detail), "rule %d (%s): %s %s is \"%s\"", d.rule,
                         src, r->match == RULE_M_COOKIE_VALUE ? "cookie" : "header",
                         r->name, r->value);
        } else if (d.reason == ROUTE_R_STICKY) {
            const struct snap_version *sv = &s->versions[d.version];
            json_buf_printf(b, ",\"bucket\":%d", (int)d.bucket);
            snprintf(detail, sizeof(detail),
                     "no rule matched; sticky %s %s hashes to bucket %d, and %s holds "
                     "buckets %u..%u",
                     cfg->sticky.kind == STICKY_COOKIE ? "cookie" : "header",
                     cfg->sticky.name, (int)d.bucket, sv->name, sv->sticky_lo,
                     sv->sticky_hi - 1);
        } else if (d.reason == ROUTE_R_SPLIT) {
            char pct[16];
            util_format_bp(s->versions[d.version].split_bp, pct, sizeof(pct));
            snprintf(detail, sizeof(detail),
                     "no rule matched%s; the split decides: %s gets %s %% of such "
                     "requests (the version with the largest share is shown)",
                     cfg->sticky.kind != STICKY_NONE ? " and the request has no sticky key"
                                                     : "",
                     s->versions[d.version].name, pct);
            json_buf_puts(b, ",");
            control_view_render_split(b, cfg);
        } else {
            snprintf(detail, sizeof(detail), "no version takes this request");
        }
        json_buf_puts(b, ",\"detail\":");
        json_buf_str(b, detail);
        if (d.version >= 0) {
            const struct snap_version *sv = &s->versions[d.version];
            uint64_t now = util_now_ms();
            size_t avail = 0;
            for (size_t e = 0; e < sv->n_eps; e++)
                if (!sv->eps[e].draining && endpoint_is_available(sv->eps[e].ep, now))
                    avail++;
            json_buf_printf(b, ",\"available_endpoints\":%zu", avail);
            if (avail == 0 && sv->fallback >= 0) {
                json_buf_puts(b, ",\"fallback\":");
                json_buf_str(b, s->versions[sv->fallback].name);
            }
        }
    }
    snapshot_unref(s);
    for (size_t h = 0; h < nh; h++)
        json_buf_dispose(&val[h]);
    return rc;
}

int control_view_history(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    struct json_buf *b = ctx->out;
    json_buf_printf(b, ",\"generation\":%" PRIu64 ",\"history\":[", snapshot_generation());
    for (size_t i = 0; i < runtime_history_len(); i++) {
        int64_t ts;
        const char *what = runtime_history_what(i, &ts);
        char when[40];
        state_format_time(ts, when, sizeof(when));
        if (i)
            json_buf_puts(b, ",");
        json_buf_puts(b, "{\"what\":");
        json_buf_str(b, what);
        json_buf_puts(b, ",\"when\":");
        json_buf_str(b, when);
        json_buf_puts(b, "}");
    }
    json_buf_puts(b, "]");
    return 0;
}

int control_view_guard(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    release_render_guard(ctx->out);
    return 0;
}

int control_view_fleet(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    fleet_render(ctx->out);
    return 0;
}

/* Reached only when `events` is not a line of its own on the control socket
 * (control.c turns that connection into a stream before dispatch). */
int control_view_events(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    return control_ctx_fail(ctx, "events streams on the control socket: send \"events\" "
                                 "as a line of its own");
}
