/*
 * control_edit.c — the control commands that change something: split,
 * flip, rollback, reload, drain/undrain, add/remove endpoints and rules.
 * Each handler parses its words against the running config, then calls
 * runtime_edit() with a small edit callback, so every change goes through
 * the same clone → edit → validate → publish path (runtime.c); refusals
 * change nothing. The answer's common members (generation, change, split,
 * warning) are added by control_cmd.c once the change is published. Main
 * thread.
 *
 * Safety: every handler here passes the command's force=/dry-run= (ctx->opts)
 * down, so availability.c's rule (no larger share for a version with no
 * available endpoint) and the dry run cover split, flip, rollback and the
 * rollout's start, promote and abort alike; a new changing command gets
 * both by calling apply() or runtime_edit_opts(..., &ctx->opts, ...).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "control_ctx.h"
#include "release.h"
#include "runtime.h"
#include "snapshot.h"
#include "config_edit.h"
#include "mirror.h"

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
        control_ctx_fail(ctx, "unknown version \"%s\" (defined: %s)", name, list);
    }
    return vi;
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
    /* A dry run warns about the config it would install. */
    const struct config *cfg = ctx->res.preview ? ctx->res.preview : runtime_config();
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
             "get 503%s",
             used ? "; " : "", version,
             v->fallback ? " unless its fallback can take them" : "");
}

/* Run a runtime change with the command's force=/dry-run= (availability.c's
 * rule refuses a larger share for a version that cannot take it); on
 * success the answer gets the common members. */
static int apply(struct control_ctx *ctx, runtime_edit_cb edit, void *arg)
{
    if (runtime_edit_opts(ctx->line, edit, arg, &ctx->opts, &ctx->res, ctx->err,
                          sizeof(ctx->err)) < 0)
        return -1;
    ctx->applied = true;
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
    config_edit_set_split(cfg, ((struct split_edit *)arg)->bp);
    return 0;
}

int control_edit_split(struct control_ctx *ctx)
{
    if (ctx->argc == 0)
        return control_ctx_usage(ctx);
    const struct config *cfg = runtime_config();
    struct split_edit e;
    memset(&e, 0, sizeof(e));
    bool seen[CONFIG_MAX_VERSIONS] = {false};
    uint64_t sum = 0;
    for (size_t i = 0; i < ctx->argc; i++) {
        char *a = ctx->argv[i];
        char *eq = strchr(a, '=');
        if (!eq || eq == a)
            return control_ctx_fail(ctx, "bad argument \"%s\": expected VERSION=PERCENT, e.g. v1=90",
                                    a);
        *eq = '\0';
        int vi = find_version(ctx, a);
        if (vi < 0)
            return -1;
        if (seen[vi])
            return control_ctx_fail(ctx, "version %s is given twice", a);
        seen[vi] = true;
        char *pct = eq + 1;
        size_t pl = strlen(pct);
        if (pl > 1 && pct[pl - 1] == '%')
            pct[pl - 1] = '\0';
        uint32_t bp;
        if (util_parse_percent_bp(pct, &bp) < 0)
            return control_ctx_fail(ctx, "bad percent \"%s\" for %s: expected 0 to 100 with at most "
                                         "two decimals",
                                    pct, a);
        e.bp[vi] = bp;
        sum += bp;
    }
    if (sum != SPLIT_TOTAL_BP) {
        char pct[16];
        util_format_bp((uint32_t)sum, pct, sizeof(pct));
        return control_ctx_fail(ctx, "split sums to %s %%, must be exactly 100 (versions left out "
                                     "get 0)",
                                pct);
    }
    (void)cfg;
    return apply(ctx, on_edit_split, &e);
}

int control_edit_flip(struct control_ctx *ctx)
{
    if (ctx->argc != 1)
        return control_ctx_usage(ctx);
    int vi = find_version(ctx, ctx->argv[0]);
    if (vi < 0)
        return -1;
    struct split_edit e;
    memset(&e, 0, sizeof(e));
    e.bp[vi] = SPLIT_TOTAL_BP;
    return apply(ctx, on_edit_split, &e);
}

/* ---- rollback / reload ------------------------------------------------- */

int control_edit_rollback(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    if (runtime_rollback_opts(&ctx->opts, &ctx->res, ctx->err, sizeof(ctx->err)) < 0)
        return -1;
    ctx->applied = true;
    return 0;
}

int control_edit_reload(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    struct config_errors errs;
    config_errors_init(&errs, runtime_config_path());
    /* The config file is applied as written, even a split onto a version
     * that cannot take it (the answer warns); force= changes nothing here. */
    int rc = ctx->opts.dry_run ? runtime_reload_preview(&errs, &ctx->res)
                               : runtime_reload_result(&errs, &ctx->res);
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
        control_ctx_fail(ctx, "config file %s, the running config stays: %s",
                         ctx->opts.dry_run ? "would not be reloaded" : "not reloaded", joined.p);
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
    int i = config_edit_find_endpoint(v, e->address);
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
    int i = config_edit_find_endpoint(v, e->address);
    if (i >= 0) {
        snprintf(err, errlen, "version %s already has endpoint %s", v->name,
                 v->endpoints[i].address);
        return -1;
    }
    return config_edit_add_endpoint(v, e->address, e->weight, err, errlen);
}

static int on_edit_remove(struct config *cfg, void *arg, char *err, size_t errlen)
{
    struct endpoint_edit *e = arg;
    struct config_version *v = &cfg->versions[e->vi];
    int i = find_edited(v, e, err, errlen);
    if (i < 0)
        return -1;
    config_edit_remove_endpoint(v, (size_t)i);
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
                return control_ctx_fail(ctx, "bad weight \"%s\": expected 1 to 1000", a + 7);
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
            return control_ctx_usage(ctx);
        }
        pos++;
    }
    if (pos != 2)
        return control_ctx_usage(ctx);
    struct sockaddr_storage sa;
    socklen_t sl;
    const char *why = NULL;
    if (util_parse_addr(e->address, &sa, &sl, &why) < 0)
        return control_ctx_fail(ctx, "bad endpoint address \"%s\": %s", e->address, why);
    return 0;
}

/* Refuse clearly for an endpoint that only DNS discovery supplies. */
static int refuse_discovered(struct control_ctx *ctx, const struct endpoint_edit *e)
{
    const struct config_version *cv = &runtime_config()->versions[e->vi];
    if (config_edit_find_endpoint(cv, e->address) >= 0)
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
    return control_ctx_fail(ctx, "endpoint %s of version %s comes from DNS discovery (%s); only configured "
                                 "or added endpoints can be changed here",
                            e->address, cv->name,
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

int control_edit_drain(struct control_ctx *ctx)
{
    return drain_common(ctx, true);
}

int control_edit_undrain(struct control_ctx *ctx)
{
    return drain_common(ctx, false);
}

int control_edit_add_endpoint(struct control_ctx *ctx)
{
    struct endpoint_edit e;
    if (endpoint_args(ctx, &e, true) < 0)
        return -1;
    return apply(ctx, on_edit_add, &e);
}

int control_edit_remove_endpoint(struct control_ctx *ctx)
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

int control_edit_add_rule(struct control_ctx *ctx)
{
    struct rule_edit e;
    memset(&e, 0, sizeof(e));
    e.at = SIZE_MAX;
    const char *header = NULL, *cookie = NULL;
    for (size_t i = 0; i < ctx->argc; i++) {
        char *a = ctx->argv[i];
        char *eq = strchr(a, '=');
        if (!eq)
            return control_ctx_fail(ctx, "bad argument \"%s\": expected header=, cookie=, value=, "
                                         "version= or at=",
                                    a);
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
                return control_ctx_fail(ctx, "bad position \"%s\": expected a rule index (0 = first)",
                                        val);
            continue;
        } else
            return control_ctx_fail(ctx, "unknown argument \"%s\": expected header=, cookie=, value=, "
                                         "version= or at=",
                                    a);
        if (*slot)
            return control_ctx_fail(ctx, "%s= is given twice", a);
        *slot = val;
    }
    if ((header != NULL) == (cookie != NULL))
        return control_ctx_fail(ctx, "a rule matches either header=NAME or cookie=NAME");
    if (!e.rule.version)
        return control_ctx_fail(ctx, "a rule needs version=VERSION");
    if (find_version(ctx, e.rule.version) < 0)
        return -1;
    if (cookie && !e.rule.value)
        return control_ctx_fail(ctx, "a cookie rule needs value=VALUE");
    e.rule.name = (char *)(header ? header : cookie);
    e.rule.match = cookie         ? RULE_M_COOKIE_VALUE
                   : e.rule.value ? RULE_M_HEADER_VALUE
                                  : RULE_M_HEADER_PRESENT;
    return apply(ctx, on_edit_add_rule, &e);
}

int control_edit_remove_rule(struct control_ctx *ctx)
{
    size_t at;
    if (ctx->argc != 1)
        return control_ctx_usage(ctx);
    if (parse_index(ctx->argv[0], &at) < 0)
        return control_ctx_fail(ctx, "bad rule index \"%s\" (status lists the rules with their index)",
                                ctx->argv[0]);
    return apply(ctx, on_edit_remove_rule, &at);
}

/* ---- rollout ------------------------------------------------------------- */

int control_edit_rollout(struct control_ctx *ctx)
{
    const char *sub = ctx->argc ? ctx->argv[0] : NULL;
    int rc = 0;
    bool changes_split = false;
    if (!sub) {
        /* just show it */
    } else if (strcmp(sub, "start") == 0) {
        const char *version = NULL, *steps = NULL, *hold = NULL;
        for (size_t i = 1; i < ctx->argc; i++) {
            char *a = ctx->argv[i];
            if (strncmp(a, "steps=", 6) == 0)
                steps = a + 6;
            else if (strncmp(a, "hold=", 5) == 0)
                hold = a + 5;
            else if (!strchr(a, '=') && !version)
                version = a;
            else
                return control_ctx_fail(ctx, "bad argument \"%s\": expected VERSION "
                                             "steps=P,P,... hold=DUR",
                                        a);
        }
        if (!version)
            return control_ctx_usage(ctx);
        if (find_version(ctx, version) < 0)
            return -1;
        rc = release_rollout_start_opts(version, steps, hold, &ctx->opts, &ctx->res, ctx->err,
                                        sizeof(ctx->err));
        changes_split = true;
    } else if (ctx->argc > 1) {
        return control_ctx_usage(ctx);
    } else if (strcmp(sub, "pause") == 0) {
        rc = release_rollout_pause_opts(&ctx->opts, ctx->err, sizeof(ctx->err));
    } else if (strcmp(sub, "resume") == 0) {
        rc = release_rollout_resume_opts(&ctx->opts, ctx->err, sizeof(ctx->err));
    } else if (strcmp(sub, "promote") == 0) {
        rc = release_rollout_promote_opts(&ctx->opts, &ctx->res, ctx->err, sizeof(ctx->err));
        changes_split = true;
    } else if (strcmp(sub, "abort") == 0) {
        rc = release_rollout_abort_opts(&ctx->opts, &ctx->res, ctx->err, sizeof(ctx->err));
        changes_split = true;
    } else {
        return control_ctx_fail(ctx, "unknown rollout command \"%s\": expected start, pause, "
                                     "resume, promote or abort",
                                sub);
    }
    if (rc < 0)
        return -1;
    if (changes_split)
        ctx->applied = true;
    if (ctx->opts.dry_run && sub)
        release_render_rollout_preview(ctx->out);
    else
        release_render_rollout(ctx->out);
    return 0;
}

/* ---- mirror ----------------------------------------------------------------- */

struct mirror_edit {
    const char *version; /* borrowed; NULL: keep the configured one */
    bool has_percent;
    uint32_t percent_bp;
    bool off;
};

static int on_edit_mirror(struct config *cfg, void *arg, char *err, size_t errlen)
{
    const struct mirror_edit *e = arg;
    struct config_mirror *mc = &cfg->mirror;
    if (e->off) {
        mc->enabled = false;
        return 0;
    }
    if (e->version) {
        free(mc->version);
        mc->version = xstrdup(e->version);
    } else if (!mc->version) {
        snprintf(err, errlen, "no shadow version is configured: mirror set needs version=VERSION");
        return -1;
    }
    if (e->has_percent)
        mc->percent_bp = e->percent_bp;
    if (mc->n_methods == 0)
        config_mirror_set_defaults(mc); /* the file had no mirror: its defaults */
    mc->enabled = true;
    return 0;
}

int control_edit_mirror(struct control_ctx *ctx)
{
    const char *sub = ctx->argc ? ctx->argv[0] : NULL;
    struct mirror_edit e;
    memset(&e, 0, sizeof(e));
    if (!sub) {
        /* just show it */
    } else if (strcmp(sub, "off") == 0) {
        if (ctx->argc > 1)
            return control_ctx_usage(ctx);
        e.off = true;
    } else if (strcmp(sub, "set") == 0) {
        if (ctx->argc < 2)
            return control_ctx_usage(ctx);
        for (size_t i = 1; i < ctx->argc; i++) {
            char *a = ctx->argv[i];
            if (strncmp(a, "version=", 8) == 0 && a[8]) {
                if (find_version(ctx, a + 8) < 0)
                    return -1;
                e.version = a + 8;
            } else if (strncmp(a, "percent=", 8) == 0) {
                char pct[16];
                size_t n = strlen(a + 8);
                if (n >= sizeof(pct))
                    n = sizeof(pct) - 1;
                memcpy(pct, a + 8, n);
                pct[n] = '\0';
                if (n && pct[n - 1] == '%')
                    pct[n - 1] = '\0';
                if (util_parse_percent_bp(pct, &e.percent_bp) < 0)
                    return control_ctx_fail(ctx, "bad percent \"%s\": expected 0..100 with at "
                                                 "most two decimals, e.g. percent=5",
                                            a + 8);
                e.has_percent = true;
            } else {
                return control_ctx_fail(ctx, "bad argument \"%s\": expected version=VERSION "
                                             "and/or percent=PERCENT",
                                        a);
            }
        }
    } else {
        return control_ctx_fail(ctx, "unknown mirror command \"%s\": expected set or off", sub);
    }
    if (sub && apply(ctx, on_edit_mirror, &e) < 0)
        return -1;
    json_buf_puts(ctx->out, ",");
    mirror_render(ctx->out, runtime_config());
    return 0;
}
