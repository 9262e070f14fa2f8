/*
 * control_cmd.c — see control_cmd.h. Parsing and execution of control
 * commands; no sockets here (control.c feeds lines in and writes answers
 * out).
 *
 * Flow of one line: validate bytes (UTF-8, no control characters) → split
 * into words → look the command up in control_cmd_table → pull out
 * if-generation=N (mutating commands only) and compare it → run the handler.
 * A mutating handler parses its arguments against the running config,
 * then calls runtime_edit() with a small edit callback, so every change
 * goes through the same clone → edit → validate → publish path; the answer
 * is built only after the new snapshot is published, so a client that
 * reads the answer knows every later request sees the change.
 */
#include "control_cmd.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "router.h"
#include "runtime.h"
#include "snapshot.h"
#include "state.h"

#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

#define EXPLAIN_HEADERS_MAX 64

struct control_ctx {
    const struct control_cmd *cmd;
    char **argv;  /* borrowed: arguments after the command word */
    size_t argc;
    const char *line; /* borrowed: the whole validated line */
    const struct control_caller *caller; /* borrowed */
    struct json_buf *out; /* borrowed: answer members after {"ok":true */
    char err[1024];
    struct runtime_result res;
    bool applied; /* res holds an applied runtime change */
};

static int fail(struct control_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct control_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    return -1;
}

static int usage(struct control_ctx *ctx)
{
    return fail(ctx, "usage: %s%s%s", ctx->cmd->name, ctx->cmd->args[0] ? " " : "",
                ctx->cmd->args);
}

/* "v1, v2, v3" into buf. */
static void version_list(const struct config *cfg, char *buf, size_t buflen)
{
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < cfg->n_versions && used + 1 < buflen; i++) {
        int n = snprintf(buf + used, buflen - used, "%s%s", i ? ", " : "",
                         cfg->versions[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static int find_version(struct control_ctx *ctx, const char *name)
{
    const struct config *cfg = runtime_config();
    int vi = config_version_index(cfg, name);
    if (vi < 0) {
        char list[512];
        version_list(cfg, list, sizeof(list));
        fail(ctx, "unknown version \"%s\" (defined: %s)", name, list);
    }
    return vi;
}

static void emit_split(struct json_buf *b, const struct config *cfg)
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

/* Does version vi take traffic (split share or rule target)? */
static bool takes_traffic(const struct config *cfg, size_t vi)
{
    if (cfg->split_bp && cfg->split_bp[vi] > 0)
        return true;
    for (size_t r = 0; r < cfg->n_rules; r++)
        if (cfg->rules[r].version && strcmp(cfg->rules[r].version, cfg->versions[vi].name) == 0)
            return true;
    return false;
}

/* After a drain/remove: warn when a version with traffic has no endpoint left. */
static void warn_if_starved(struct control_ctx *ctx, const char *version)
{
    const struct config *cfg = runtime_config();
    int vi = config_version_index(cfg, version);
    if (vi < 0)
        return;
    const struct config_version *v = &cfg->versions[vi];
    for (size_t i = 0; i < v->n_endpoints; i++)
        if (!v->endpoints[i].draining)
            return;
    if (v->discover || !takes_traffic(cfg, (size_t)vi))
        return;
    size_t used = strlen(ctx->res.warning);
    snprintf(ctx->res.warning + used, sizeof(ctx->res.warning) - used,
             "%sversion %s now has no endpoint taking new requests: its requests "
             "get 503%s", used ? "; " : "", version,
             v->fallback ? " unless its fallback can take them" : "");
}

/* Run a runtime change; on success the answer gets the common members. */
static int apply(struct control_ctx *ctx, runtime_edit_cb edit, void *arg)
{
    if (runtime_edit(ctx->line, edit, arg, &ctx->res, ctx->err, sizeof(ctx->err)) < 0)
        return -1;
    ctx->applied = true;
    return 0;
}

/* ---- status ------------------------------------------------------------ */

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

static int cmd_status(struct control_ctx *ctx)
{
    if (ctx->argc)
        return usage(ctx);
    struct snapshot *s = snapshot_acquire();
    if (!s)
        return fail(ctx, "no configuration is loaded yet");
    struct json_buf *b = ctx->out;
    const struct config *cfg = s->cfg;
    uint64_t now = util_now_ms();
    json_buf_printf(b, ",\"generation\":%" PRIu64 ",", s->generation);
    emit_split(b, cfg);
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
    snapshot_unref(s);
    return 0;
}

/* ---- split / flip ------------------------------------------------------ */

struct split_edit {
    uint32_t bp[CONFIG_MAX_VERSIONS];
};

static int on_edit_split(struct config *cfg, void *arg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    runtime_cfg_set_split(cfg, ((struct split_edit *)arg)->bp);
    return 0;
}

static int cmd_split(struct control_ctx *ctx)
{
    if (ctx->argc == 0)
        return usage(ctx);
    const struct config *cfg = runtime_config();
    struct split_edit e;
    memset(&e, 0, sizeof(e));
    bool seen[CONFIG_MAX_VERSIONS] = {false};
    uint64_t sum = 0;
    for (size_t i = 0; i < ctx->argc; i++) {
        char *a = ctx->argv[i];
        char *eq = strchr(a, '=');
        if (!eq || eq == a)
            return fail(ctx, "bad argument \"%s\": expected VERSION=PERCENT, e.g. v1=90",
                        a);
        *eq = '\0';
        int vi = find_version(ctx, a);
        if (vi < 0)
            return -1;
        if (seen[vi])
            return fail(ctx, "version %s is given twice", a);
        seen[vi] = true;
        char *pct = eq + 1;
        size_t pl = strlen(pct);
        if (pl > 1 && pct[pl - 1] == '%')
            pct[pl - 1] = '\0';
        uint32_t bp;
        if (util_parse_percent_bp(pct, &bp) < 0)
            return fail(ctx, "bad percent \"%s\" for %s: expected 0 to 100 with at most "
                        "two decimals", pct, a);
        e.bp[vi] = bp;
        sum += bp;
    }
    if (sum != SPLIT_TOTAL_BP) {
        char pct[16];
        util_format_bp((uint32_t)sum, pct, sizeof(pct));
        return fail(ctx, "split sums to %s %%, must be exactly 100 (versions left out "
                    "get 0)", pct);
    }
    (void)cfg;
    return apply(ctx, on_edit_split, &e);
}

static int cmd_flip(struct control_ctx *ctx)
{
    if (ctx->argc != 1)
        return usage(ctx);
    int vi = find_version(ctx, ctx->argv[0]);
    if (vi < 0)
        return -1;
    struct split_edit e;
    memset(&e, 0, sizeof(e));
    e.bp[vi] = SPLIT_TOTAL_BP;
    return apply(ctx, on_edit_split, &e);
}

/* ---- rollback / reload ------------------------------------------------- */

static int cmd_rollback(struct control_ctx *ctx)
{
    if (ctx->argc)
        return usage(ctx);
    if (runtime_rollback(&ctx->res, ctx->err, sizeof(ctx->err)) < 0)
        return -1;
    ctx->applied = true;
    return 0;
}

static int cmd_reload(struct control_ctx *ctx)
{
    if (ctx->argc)
        return usage(ctx);
    struct config_errors errs;
    config_errors_init(&errs, runtime_config_path());
    int rc = runtime_reload_result(&errs, &ctx->res);
    if (rc < 0) {
        char buf[3000];
        config_errors_format(&errs, buf, sizeof(buf));
        /* One answer line: the FILE:LINE:COL lines joined by "; ". */
        struct json_buf joined;
        json_buf_init(&joined);
        for (char *p = buf, *nl; *p; p = nl + 1) {
            nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            if (*p) {
                if (joined.len)
                    json_buf_puts(&joined, "; ");
                json_buf_puts(&joined, p);
            }
            if (!nl)
                break;
        }
        config_errors_dispose(&errs);
        fail(ctx, "config file not reloaded, the running config stays: %s", joined.p);
        json_buf_dispose(&joined);
        return -1;
    }
    config_errors_dispose(&errs);
    ctx->applied = true;
    return 0;
}

/* ---- endpoints --------------------------------------------------------- */

struct endpoint_edit {
    int vi;
    const char *address; /* borrowed from argv */
    uint32_t weight;
    bool drain;
};

/* The edited endpoint's index in its version, or -1 with the error. */
static int find_edited(const struct config_version *v, const struct endpoint_edit *e,
                       char *err, size_t errlen)
{
    int i = runtime_cfg_find_endpoint(v, e->address);
    if (i < 0)
        snprintf(err, errlen, "version %s has no endpoint %s", v->name, e->address);
    return i;
}

static int on_edit_drain(struct config *cfg, void *arg, char *err, size_t errlen)
{
    struct endpoint_edit *e = arg;
    struct config_version *v = &cfg->versions[e->vi];
    int i = find_edited(v, e, err, errlen);
    if (i < 0)
        return -1;
    v->endpoints[i].draining = e->drain;
    return 0;
}

static int on_edit_add(struct config *cfg, void *arg, char *err, size_t errlen)
{
    struct endpoint_edit *e = arg;
    struct config_version *v = &cfg->versions[e->vi];
    int i = runtime_cfg_find_endpoint(v, e->address);
    if (i >= 0) {
        snprintf(err, errlen, "version %s already has endpoint %s", v->name,
                 v->endpoints[i].address);
        return -1;
    }
    return runtime_cfg_add_endpoint(v, e->address, e->weight, err, errlen);
}

static int on_edit_remove(struct config *cfg, void *arg, char *err, size_t errlen)
{
    struct endpoint_edit *e = arg;
    struct config_version *v = &cfg->versions[e->vi];
    int i = find_edited(v, e, err, errlen);
    if (i < 0)
        return -1;
    runtime_cfg_remove_endpoint(v, (size_t)i);
    return 0;
}

/* Parse "VERSION ADDRESS" (+ weight=N when allow_weight). */
static int endpoint_args(struct control_ctx *ctx, struct endpoint_edit *e,
                         bool allow_weight)
{
    memset(e, 0, sizeof(*e));
    e->weight = 1;
    size_t pos = 0;
    for (size_t i = 0; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];
        if (allow_weight && strncmp(a, "weight=", 7) == 0) {
            char *end;
            unsigned long w = strtoul(a + 7, &end, 10);
            if (!isdigit((unsigned char)a[7]) || *end || w < 1 || w > 1000)
                return fail(ctx, "bad weight \"%s\": expected 1 to 1000", a + 7);
            e->weight = (uint32_t)w;
            continue;
        }
        if (pos == 0) {
            e->vi = find_version(ctx, a);
            if (e->vi < 0)
                return -1;
        } else if (pos == 1) {
            e->address = a;
        } else {
            return usage(ctx);
        }
        pos++;
    }
    if (pos != 2)
        return usage(ctx);
    struct sockaddr_storage sa;
    socklen_t sl;
    const char *why = NULL;
    if (util_parse_addr(e->address, &sa, &sl, &why) < 0)
        return fail(ctx, "bad endpoint address \"%s\": %s", e->address, why);
    return 0;
}

/* Refuse clearly for an endpoint that only DNS discovery supplies. */
static int refuse_discovered(struct control_ctx *ctx, const struct endpoint_edit *e)
{
    const struct config_version *cv = &runtime_config()->versions[e->vi];
    if (runtime_cfg_find_endpoint(cv, e->address) >= 0)
        return 0;
    struct snapshot *s = snapshot_acquire();
    bool discovered = false;
    struct sockaddr_storage sa;
    socklen_t sl;
    bool parsed = util_parse_addr(e->address, &sa, &sl, NULL) == 0;
    for (size_t i = 0; s && (size_t)e->vi < s->n_versions && i < s->versions[e->vi].n_eps; i++) {
        const struct endpoint *ep = s->versions[e->vi].eps[i].ep;
        if (strcmp(ep->address, e->address) == 0 ||
            (parsed && ep->sa_len == sl && memcmp(&ep->sa, &sa, sl) == 0))
            discovered = true;
    }
    snapshot_unref(s);
    if (!discovered)
        return 0;
    return fail(ctx, "endpoint %s of version %s comes from DNS discovery (%s); only configured "
                "or added endpoints can be changed here", e->address, cv->name,
                cv->discover ? cv->discover : "discover");
}

static int drain_common(struct control_ctx *ctx, bool drain)
{
    struct endpoint_edit e;
    if (endpoint_args(ctx, &e, false) < 0 || refuse_discovered(ctx, &e) < 0)
        return -1;
    e.drain = drain;
    if (apply(ctx, on_edit_drain, &e) < 0)
        return -1;
    if (drain)
        warn_if_starved(ctx, runtime_config()->versions[e.vi].name);
    return 0;
}

static int cmd_drain(struct control_ctx *ctx)
{
    return drain_common(ctx, true);
}

static int cmd_undrain(struct control_ctx *ctx)
{
    return drain_common(ctx, false);
}

static int cmd_add_endpoint(struct control_ctx *ctx)
{
    struct endpoint_edit e;
    if (endpoint_args(ctx, &e, true) < 0)
        return -1;
    return apply(ctx, on_edit_add, &e);
}

static int cmd_remove_endpoint(struct control_ctx *ctx)
{
    struct endpoint_edit e;
    if (endpoint_args(ctx, &e, false) < 0 || refuse_discovered(ctx, &e) < 0)
        return -1;
    /* The version name may move in the config array; keep a copy. */
    char name[CONFIG_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", runtime_config()->versions[e.vi].name);
    if (apply(ctx, on_edit_remove, &e) < 0)
        return -1;
    warn_if_starved(ctx, name);
    return 0;
}

/* ---- rules ------------------------------------------------------------- */

struct rule_edit {
    struct config_rule rule; /* borrowed strings (argv) */
    size_t at;
};

static int on_edit_add_rule(struct config *cfg, void *arg, char *err, size_t errlen)
{
    struct rule_edit *e = arg;
    if (cfg->n_rules >= CONFIG_MAX_RULES) {
        snprintf(err, errlen, "there are already %d rules (the most allowed)",
                 CONFIG_MAX_RULES);
        return -1;
    }
    size_t at = e->at > cfg->n_rules ? cfg->n_rules : e->at;
    cfg->rules = xrealloc(cfg->rules, (cfg->n_rules + 1) * sizeof(*cfg->rules));
    memmove(&cfg->rules[at + 1], &cfg->rules[at],
            (cfg->n_rules - at) * sizeof(*cfg->rules));
    struct config_rule *r = &cfg->rules[at];
    memset(r, 0, sizeof(*r));
    r->match = e->rule.match;
    r->name = xstrdup(e->rule.name);
    r->value = e->rule.value ? xstrdup(e->rule.value) : NULL;
    r->version = xstrdup(e->rule.version);
    cfg->n_rules++;
    return 0;
}

static int on_edit_remove_rule(struct config *cfg, void *arg, char *err, size_t errlen)
{
    size_t at = *(size_t *)arg;
    if (at >= cfg->n_rules) {
        snprintf(err, errlen, "there is no rule %zu", at);
        return -1;
    }
    struct config_rule *r = &cfg->rules[at];
    free(r->name);
    free(r->value);
    free(r->version);
    memmove(r, r + 1, (cfg->n_rules - at - 1) * sizeof(*r));
    cfg->n_rules--;
    return 0;
}

static int parse_index(const char *s, size_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > 100000)
        return -1;
    *out = v;
    return 0;
}

static int cmd_add_rule(struct control_ctx *ctx)
{
    struct rule_edit e;
    memset(&e, 0, sizeof(e));
    e.at = SIZE_MAX;
    const char *header = NULL, *cookie = NULL;
    for (size_t i = 0; i < ctx->argc; i++) {
        char *a = ctx->argv[i];
        char *eq = strchr(a, '=');
        if (!eq)
            return fail(ctx, "bad argument \"%s\": expected header=, cookie=, value=, "
                        "version= or at=", a);
        *eq = '\0';
        const char *val = eq + 1;
        const char **slot = NULL;
        if (strcmp(a, "header") == 0)
            slot = &header;
        else if (strcmp(a, "cookie") == 0)
            slot = &cookie;
        else if (strcmp(a, "value") == 0)
            slot = (const char **)&e.rule.value;
        else if (strcmp(a, "version") == 0)
            slot = (const char **)&e.rule.version;
        else if (strcmp(a, "at") == 0) {
            if (parse_index(val, &e.at) < 0)
                return fail(ctx, "bad position \"%s\": expected a rule index (0 = first)",
                            val);
            continue;
        } else
            return fail(ctx, "unknown argument \"%s\": expected header=, cookie=, value=, "
                        "version= or at=", a);
        if (*slot)
            return fail(ctx, "%s= is given twice", a);
        *slot = val;
    }
    if ((header != NULL) == (cookie != NULL))
        return fail(ctx, "a rule matches either header=NAME or cookie=NAME");
    if (!e.rule.version)
        return fail(ctx, "a rule needs version=VERSION");
    if (find_version(ctx, e.rule.version) < 0)
        return -1;
    if (cookie && !e.rule.value)
        return fail(ctx, "a cookie rule needs value=VALUE");
    e.rule.name = (char *)(header ? header : cookie);
    e.rule.match = cookie ? RULE_M_COOKIE_VALUE
                          : e.rule.value ? RULE_M_HEADER_VALUE : RULE_M_HEADER_PRESENT;
    return apply(ctx, on_edit_add_rule, &e);
}

static int cmd_remove_rule(struct control_ctx *ctx)
{
    size_t at;
    if (ctx->argc != 1)
        return usage(ctx);
    if (parse_index(ctx->argv[0], &at) < 0)
        return fail(ctx, "bad rule index \"%s\" (status lists the rules with their index)",
                    ctx->argv[0]);
    return apply(ctx, on_edit_remove_rule, &at);
}

/* ---- explain ----------------------------------------------------------- */

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

static int cmd_explain(struct control_ctx *ctx)
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
                rc = fail(ctx, "too many headers (at most %d)", EXPLAIN_HEADERS_MAX);
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
            rc = fail(ctx, "expected a header \"Name: value\", got \"%s\" (usage: explain "
                      "%s)", w, ctx->cmd->args);
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
        rc = fail(ctx, "no configuration is loaded yet");
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
            emit_split(b, cfg);
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

/* ---- history / help / version ------------------------------------------ */

static int cmd_history(struct control_ctx *ctx)
{
    if (ctx->argc)
        return usage(ctx);
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

static int cmd_help(struct control_ctx *ctx)
{
    struct json_buf *b = ctx->out;
    json_buf_puts(b, ",\"commands\":[");
    for (size_t i = 0; i < control_cmd_count; i++) {
        const struct control_cmd *c = &control_cmd_table[i];
        char usage_s[256];
        snprintf(usage_s, sizeof(usage_s), "%s%s%s", c->name, c->args[0] ? " " : "",
                 c->args);
        if (i)
            json_buf_puts(b, ",");
        json_buf_puts(b, "{\"name\":");
        json_buf_str(b, c->name);
        json_buf_puts(b, ",\"usage\":");
        json_buf_str(b, usage_s);
        json_buf_puts(b, ",\"summary\":");
        json_buf_str(b, c->summary);
        json_buf_printf(b, ",\"mutating\":%s}", c->mutating ? "true" : "false");
    }
    json_buf_puts(b, "],\"note\":");
    json_buf_str(b, "commands that change something also take if-generation=N "
                    "(refused unless N is the current generation)");
    return 0;
}

static int cmd_version(struct control_ctx *ctx)
{
    if (ctx->argc)
        return usage(ctx);
    json_buf_puts(ctx->out, ",\"version\":");
    json_buf_str(ctx->out, WEIR_VERSION);
    return 0;
}

/* ---- the table --------------------------------------------------------- */

const struct control_cmd control_cmd_table[] = {
    {"status", "", "show the generation, the split, every version's endpoints "
     "(health, draining, in-flight requests), rules and runtime changes", false,
     cmd_status},
    {"split", "VERSION=PERCENT...", "set the split atomically; must sum to 100, "
     "at most two decimals; versions left out get 0", true, cmd_split},
    {"flip", "VERSION", "blue/green: VERSION gets 100 %, every other version 0", true,
     cmd_flip},
    {"rollback", "", "undo the last change (repeat to walk further back)", true,
     cmd_rollback},
    {"reload", "", "re-read the config file; on any error the running config stays",
     true, cmd_reload},
    {"drain", "VERSION ADDRESS", "stop sending new requests to an endpoint; "
     "in-flight requests finish (status shows how many)", true, cmd_drain},
    {"undrain", "VERSION ADDRESS", "let a drained endpoint take new requests again",
     true, cmd_undrain},
    {"add-endpoint", "VERSION ADDRESS [weight=N]", "add an endpoint to a version", true,
     cmd_add_endpoint},
    {"remove-endpoint", "VERSION ADDRESS", "remove an endpoint; in-flight requests "
     "finish", true, cmd_remove_endpoint},
    {"add-rule", "header=NAME|cookie=NAME [value=VALUE] version=VERSION [at=INDEX]",
     "route requests whose header (or cookie) matches to VERSION; without value= a "
     "header rule matches when the header is present", true, cmd_add_rule},
    {"remove-rule", "INDEX", "remove the rule with this index (as shown by status)",
     true, cmd_remove_rule},
    {"explain", "[METHOD] [PATH] [Name: value]...", "which version a request would go "
     "to, and why (rule, sticky bucket or split)", false, cmd_explain},
    {"history", "", "the changes rollback would undo, newest first", false,
     cmd_history},
    {"version", "", "the weir version", false, cmd_version},
    {"help", "", "list the commands", false, cmd_help},
};

const size_t control_cmd_count = ARRAY_LEN(control_cmd_table);

/* ---- lines, words ------------------------------------------------------ */

int control_cmd_split(const char *line, size_t len, char **argv, size_t max,
                      char **storage, char *err, size_t errlen)
{
    char *buf = xmalloc(len + 1);
    *storage = buf;
    size_t o = 0, n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            break;
        if (n == max) {
            snprintf(err, errlen, "too many words (at most %zu)", max);
            return -1;
        }
        argv[n++] = buf + o;
        bool quoted = false;
        while (i < len && (quoted || (line[i] != ' ' && line[i] != '\t'))) {
            char c = line[i++];
            if (c == '"') {
                quoted = !quoted;
            } else if (quoted && c == '\\' && i < len &&
                       (line[i] == '"' || line[i] == '\\')) {
                buf[o++] = line[i++];
            } else {
                buf[o++] = c;
            }
        }
        if (quoted) {
            snprintf(err, errlen, "unterminated quote");
            return -1;
        }
        buf[o++] = '\0';
    }
    return (int)n;
}

void control_cmd_quote(struct json_buf *b, const char *arg)
{
    bool plain = arg[0] != '\0';
    for (const char *p = arg; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '"')
            plain = false;
    if (plain) {
        json_buf_puts(b, arg);
        return;
    }
    json_buf_puts(b, "\"");
    for (const char *p = arg; *p; p++) {
        if (*p == '"' || *p == '\\')
            json_buf_puts(b, "\\");
        json_buf_add(b, p, 1);
    }
    json_buf_puts(b, "\"");
}

void control_cmd_error_line(struct json_buf *out, const char *msg)
{
    json_buf_puts(out, "{\"ok\":false,\"error\":");
    json_buf_str(out, msg);
    json_buf_puts(out, "}\n");
}

static const struct control_cmd *lookup(const char *name)
{
    for (size_t i = 0; i < control_cmd_count; i++)
        if (strcasecmp(control_cmd_table[i].name, name) == 0)
            return &control_cmd_table[i];
    return NULL;
}

/* Remove if-generation=N from the words; -1 with err when malformed. */
static int take_if_generation(struct control_ctx *ctx, bool *has, uint64_t *gen)
{
    *has = false;
    size_t o = 0;
    for (size_t i = 0; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];
        if (strncmp(a, "if-generation=", 14) != 0) {
            ctx->argv[o++] = ctx->argv[i];
            continue;
        }
        if (*has)
            return fail(ctx, "if-generation= is given twice");
        const char *v = a + 14;
        char *end;
        unsigned long long g = strtoull(v, &end, 10);
        if (!isdigit((unsigned char)v[0]) || *end || strlen(v) > 19)
            return fail(ctx, "bad if-generation \"%s\": expected a generation number", v);
        *has = true;
        *gen = g;
    }
    ctx->argc = o;
    return 0;
}

static void caller_text(const struct control_caller *c, char *buf, size_t buflen)
{
    if (c && c->known)
        snprintf(buf, buflen, "uid=%u pid=%d", (unsigned)c->uid, (int)c->pid);
    else
        snprintf(buf, buflen, "uid=? pid=?");
}

/* Append ,"restart_required":["a","b"] from "a, b". */
static void emit_restart(struct json_buf *b, const char *list)
{
    json_buf_puts(b, ",\"restart_required\":[");
    const char *p = list;
    bool first = true;
    while (*p) {
        const char *e = strstr(p, ", ");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!first)
            json_buf_puts(b, ",");
        json_buf_strn(b, p, n);
        first = false;
        p += n;
        if (e)
            p += 2;
    }
    json_buf_puts(b, "]");
}

void control_cmd_execute(const char *line, size_t len,
                         const struct control_caller *caller, struct json_buf *out)
{
    char who[64];
    caller_text(caller, who, sizeof(who));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            control_cmd_error_line(out, "the command contains control characters");
            return;
        }
    }
    if (!json_is_utf8(line, len)) {
        control_cmd_error_line(out, "the command is not valid UTF-8");
        return;
    }
    char *argv[CONTROL_ARGS_MAX];
    char *storage = NULL;
    char err[256];
    int n = control_cmd_split(line, len, argv, ARRAY_LEN(argv), &storage, err,
                              sizeof(err));
    if (n <= 0) {
        control_cmd_error_line(out, n < 0 ? err : "empty command (try help)");
        free(storage);
        return;
    }
    char *text = xstrndup(line, len);
    struct control_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.argv = argv + 1;
    ctx.argc = (size_t)n - 1;
    ctx.line = text;
    ctx.caller = caller;
    ctx.cmd = lookup(argv[0]);
    struct json_buf body;
    json_buf_init(&body);
    ctx.out = &body;
    int rc;
    bool has_gen = false;
    uint64_t gen = 0;
    if (!ctx.cmd) {
        rc = fail(&ctx, "unknown command \"%s\" (try help)", argv[0]);
    } else if ((rc = take_if_generation(&ctx, &has_gen, &gen)) < 0) {
        /* err set */
    } else if (has_gen && !ctx.cmd->mutating) {
        rc = fail(&ctx, "if-generation applies only to commands that change something");
    } else if (has_gen && gen != snapshot_generation()) {
        rc = fail(&ctx, "generation is %" PRIu64 ", not %" PRIu64
                  ": something changed in between; nothing done",
                  snapshot_generation(), gen);
    } else {
        rc = ctx.cmd->run(&ctx);
    }

    if (rc < 0) {
        control_cmd_error_line(out, ctx.err);
        if (ctx.cmd && ctx.cmd->mutating)
            log_info("control %s: \"%s\" refused: %s", who, text, ctx.err);
    } else {
        json_buf_puts(out, "{\"ok\":true");
        if (ctx.applied) {
            json_buf_printf(out, ",\"generation\":%" PRIu64 ",\"change\":",
                            ctx.res.generation);
            json_buf_str(out, ctx.res.change);
            json_buf_puts(out, ",");
            emit_split(out, runtime_config());
            if (ctx.res.restart[0])
                emit_restart(out, ctx.res.restart);
            if (ctx.res.warning[0]) {
                json_buf_puts(out, ",\"warning\":");
                json_buf_str(out, ctx.res.warning);
            }
            log_info("control %s: \"%s\" applied, generation %" PRIu64 ": %s%s%s", who,
                     text, ctx.res.generation, ctx.res.change,
                     ctx.res.warning[0] ? "; warning: " : "", ctx.res.warning);
        }
        json_buf_add(out, body.p, body.len);
        json_buf_puts(out, "}\n");
    }
    json_buf_dispose(&body);
    free(text);
    free(storage);
}
