/*
 * config.c — the config model: defaults, loading (file → config_yaml.c →
 * validator), the validator shared by the file and every runtime change,
 * deep clone, free, the restart-only settings, and the error list.
 *
 * Defaults, clone, free and the restart list are not written per setting:
 * they walk the field table (rows in config_parse.c, see config_yaml.h),
 * which says for each key what it keeps where. A clone is a byte copy that
 * fields_deepen() then walks, replacing each owned pointer by a copy; so a
 * new string key is copied and freed by being a row, and cannot be freed
 * twice for want of a clone line.
 *
 * Loading is two passes. config_parse() checks syntax, shapes and
 * single values (unknown keys, types, durations, addresses...), storing
 * only what parsed. config_validate_skip() then checks what spans several
 * values (split sum, names that must exist, duplicate endpoints...), skipping
 * the checks the parser marked as already failed so no error is a mere echo
 * of another. All errors of one load are finally sorted into file order.
 *
 * Does not own: YAML reading (config_yaml.c, config_parse.c), resolving `workers: auto`,
 * user and group names (main.c), endpoint health (health.c).
 */
#include "config.h"
#include "config_yaml.h"
#include "rollout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_FILE_BYTES (4u << 20) /* far above any sane config */

/* ---- the rows: defaults, copy, free, restart ---------------------------- */

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))
#define RO_AT(base, off) ((const char *)(base) + (off)) /* AT for a const base, as bytes */

_Static_assert(sizeof(enum config_log_format) == sizeof(unsigned),
               "CS_ENUM rows keep their enum as an unsigned (the log format is one)");

enum config_store config_field_store(const struct config_field *f)
{
    if (f->store != CS_AUTO)
        return f->store;
    switch (f->type) {
    case F_STR:
    case F_PATH:
    case F_SOCKPATH:
    case F_ID:
    case F_TOKEN:
        return CS_STR;
    case F_ADDR:
        return CS_ADDR;
    case F_DUR:
    case F_UINT:
    case F_MODE:
        return CS_U32;
    case F_PORT:
        return CS_U16;
    case F_BOOL:
        return CS_BOOL;
    case F_MAP:
        return CS_SUB;
    case F_FN:
    case F_DATA:
        break;
    }
    CHECK(!"an F_FN or F_DATA row must say what it stores");
    return CS_NONE;
}

static bool owns_memory(enum config_store st)
{
    return st == CS_STR || st == CS_ADDR || st == CS_ARRAY || st == CS_STRV || st == CS_U32V;
}

/*
 * Two keys may write one slot (sticky's `header` and `cookie` both set its
 * name): only the first row naming a slot copies and frees it.
 */
static bool is_slot_owner(const struct config_field *rows, const struct config_field *f)
{
    for (const struct config_field *r = rows; r < f; r++)
        if (r->off == f->off && owns_memory(config_field_store(r)))
            return false;
    return true;
}

void config_fields_init(const struct config_type *t, void *base)
{
    for (const struct config_field *f = t->rows; f->name; f++) {
        switch (config_field_store(f)) {
        case CS_STR:
        case CS_ADDR:
            if (f->def_str && is_slot_owner(t->rows, f))
                *AT(base, f->off, char *) = xstrdup(f->def_str);
            break;
        case CS_U32:
            *AT(base, f->off, uint32_t) = f->def;
            break;
        case CS_U16:
            *AT(base, f->off, uint16_t) = (uint16_t)f->def;
            break;
        case CS_BOOL:
            *AT(base, f->off, bool) = f->def != 0;
            break;
        case CS_ENUM:
            *AT(base, f->off, unsigned) = f->def;
            break;
        case CS_SUB:
            config_fields_init(f->sub, AT(base, f->off, char));
            break;
        case CS_AUTO:
        case CS_NONE:
        case CS_ARRAY: /* empty: elements get their defaults when added */
        case CS_STRV:
        case CS_U32V:
            break;
        }
    }
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* The pointer kept at base + off, whatever it points to (memcpy: the
 * members are `struct config_version *`, `char **`, ..., not `void *`). */
static void *get_ptr(const void *base, size_t off)
{
    void *p;
    memcpy(&p, (const char *)base + off, sizeof(p));
    return p;
}

static void set_ptr(void *base, size_t off, void *p)
{
    memcpy((char *)base + off, &p, sizeof(p));
}

/*
 * base is a byte copy of another struct of type t: replace every owned
 * pointer with a copy of what it points to, so the two share nothing.
 */
static void fields_deepen(const struct config_type *t, void *base)
{
    for (const struct config_field *f = t->rows; f->name; f++) {
        enum config_store st = config_field_store(f);
        if (st == CS_SUB) {
            fields_deepen(f->sub, AT(base, f->off, char));
            continue;
        }
        if (!owns_memory(st) || !is_slot_owner(t->rows, f))
            continue;
        void *src = get_ptr(base, f->off), *copy = NULL;
        size_t n = st == CS_STR || st == CS_ADDR ? 0 : *AT(base, f->off_n, size_t);
        if (st == CS_STR || st == CS_ADDR) {
            copy = dup_or_null(src);
        } else if (st == CS_ARRAY && n) {
            copy = memcpy(xmalloc(n * f->sub->size), src, n * f->sub->size);
            for (size_t i = 0; i < n; i++)
                fields_deepen(f->sub, (char *)copy + i * f->sub->size);
        } else if (st == CS_STRV && n) {
            char **v = memcpy(xmalloc(n * sizeof(char *)), src, n * sizeof(char *));
            for (size_t i = 0; i < n; i++)
                v[i] = dup_or_null(v[i]);
            copy = v;
        } else if (st == CS_U32V && src) {
            /* kept when present even with n = 0: a split that was read is
             * not a missing split */
            copy = memcpy(xcalloc(n ? n : 1, sizeof(uint32_t)), src, n * sizeof(uint32_t));
        }
        set_ptr(base, f->off, copy);
    }
}

void config_fields_dispose(const struct config_type *t, void *base)
{
    for (const struct config_field *f = t->rows; f->name; f++) {
        enum config_store st = config_field_store(f);
        if (st == CS_SUB) {
            config_fields_dispose(f->sub, AT(base, f->off, char));
            continue;
        }
        if (!owns_memory(st) || !is_slot_owner(t->rows, f))
            continue;
        void *p = get_ptr(base, f->off);
        if (st == CS_ARRAY)
            for (size_t i = 0; i < *AT(base, f->off_n, size_t); i++)
                config_fields_dispose(f->sub, (char *)p + i * f->sub->size);
        if (st == CS_STRV)
            for (size_t i = 0; i < *AT(base, f->off_n, size_t); i++)
                free(((char **)p)[i]);
        free(p);
        set_ptr(base, f->off, NULL);
    }
}

struct config *config_new_default(const char *file)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    config_fields_init(&config_type_top, cfg);
    cfg->path = xstrdup(file ? file : "");
    return cfg;
}

void config_version_init(struct config_version *v, const char *name)
{
    memset(v, 0, sizeof(*v));
    config_fields_init(&config_type_version, v);
    v->name = xstrdup(name);
}

struct config *config_clone(const struct config *cfg)
{
    struct config *c = xmalloc(sizeof(*c));
    *c = *cfg;
    fields_deepen(&config_type_top, c);
    return c;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    config_fields_dispose(&config_type_top, cfg);
    free(cfg);
}

static bool streq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static size_t store_size(enum config_store st)
{
    switch (st) {
    case CS_U32:
        return sizeof(uint32_t);
    case CS_U16:
        return sizeof(uint16_t);
    case CS_BOOL:
        return sizeof(bool);
    case CS_ENUM:
        return sizeof(unsigned);
    default:
        return 0;
    }
}

static void keep_restart(const struct config_type *t, void *dst, const void *old,
                         bool all, const char *prefix, char *list, size_t listlen)
{
    for (const struct config_field *f = t->rows; f->name; f++) {
        enum config_store st = config_field_store(f);
        bool restart = all || f->restart;
        if (st == CS_SUB) {
            char sub[128];
            snprintf(sub, sizeof(sub), "%s%s.", prefix, f->name);
            keep_restart(f->sub, AT(dst, f->off, char), RO_AT(old, f->off), restart,
                         sub, list, listlen);
            continue;
        }
        if (!restart)
            continue;
        if (st == CS_STR || st == CS_ADDR) {
            char **d = AT(dst, f->off, char *);
            const char *o = get_ptr(old, f->off);
            if (streq_null(*d, o))
                continue;
            free(*d);
            *d = dup_or_null(o);
            if (st == CS_ADDR) {
                memcpy(AT(dst, f->off_sa, char), RO_AT(old, f->off_sa),
                       sizeof(struct sockaddr_storage));
                memcpy(AT(dst, f->off_salen, char), RO_AT(old, f->off_salen),
                       sizeof(socklen_t));
            }
        } else {
            size_t sz = store_size(st);
            CHECK(sz > 0); /* lists cannot be restart-only (none is yet) */
            if (memcmp(AT(dst, f->off, char), RO_AT(old, f->off), sz) == 0)
                continue;
            memcpy(AT(dst, f->off, char), RO_AT(old, f->off), sz);
        }
        size_t used = strnlen(list, listlen);
        if (used + 1 < listlen)
            snprintf(list + used, listlen - used, "%s%s%s", used ? ", " : "", prefix, f->name);
    }
}

void config_keep_listeners(struct config *dst, const struct config *old)
{
    if (!old || streq_null(dst->listen, old->listen))
        return;
    const struct config_field *f = config_type_top.rows;
    while (f->name && strcmp(f->name, "listeners") != 0)
        f++;
    CHECK(f->name && f->sub);
    for (size_t i = 0; i < dst->n_listeners; i++)
        config_fields_dispose(f->sub, &dst->listeners[i]);
    free(dst->listeners);
    size_t n = old->n_listeners;
    dst->listeners = memcpy(xmalloc((n ? n : 1) * f->sub->size), old->listeners, n * f->sub->size);
    dst->n_listeners = n;
    for (size_t i = 0; i < n; i++)
        fields_deepen(f->sub, &dst->listeners[i]);
}

void config_keep_restart(struct config *dst, const struct config *old, char *list,
                         size_t listlen)
{
    if (listlen)
        list[0] = '\0';
    if (old)
        keep_restart(&config_type_top, dst, old, false, "", list, listlen);
}

struct keylist {
    char **v;
    size_t n;
};

static void add_key(struct keylist *kl, const char *prefix, const char *name)
{
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *k = xmalloc(len);
    snprintf(k, len, "%s%s", prefix, name);
    kl->v = xrealloc(kl->v, (kl->n + 1) * sizeof(char *));
    kl->v[kl->n++] = k;
}

static void schema_keys(const struct config_type *t, const char *prefix, struct keylist *kl)
{
    size_t rows = 0;
    for (const struct config_field *f = t->rows; f->name; f++, rows++) {
        if (f->type == F_DATA)
            continue;
        add_key(kl, prefix, f->name);
        enum config_store st = config_field_store(f);
        char sub[256];
        if (f->named) {
            snprintf(sub, sizeof(sub), "%s%s.*", prefix, f->name);
            add_key(kl, sub, "");
        }
        /* `listen`: a string, or a list of the rows of sub */
        bool str_or_list = f->type == F_FN && st == CS_ADDR && f->sub;
        if (st != CS_SUB && st != CS_ARRAY && !str_or_list)
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", prefix, f->name,
                 st == CS_SUB ? "." : f->named ? ".*."
                                               : "[].");
        schema_keys(f->sub, sub, kl);
    }
    CHECK(rows <= CONFIG_MAX_FIELDS);
}

size_t config_schema_keys(char ***out)
{
    struct keylist kl = {NULL, 0};
    schema_keys(&config_type_top, "", &kl);
    *out = kl.v;
    return kl.n;
}

/* ---- small syntax predicates -------------------------------------------- */

bool config_is_version_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!okc || n >= CONFIG_NAME_MAX)
            return false;
    }
    return n > 0;
}

bool config_is_token(const char *s)
{
    /* RFC 9110 §5.6.2: token = 1*tchar */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || strchr(extra, c);
        if (!okc)
            return false;
    }
    return true;
}

/* ---- skip set ---------------------------------------------------------- */

void config_skip_dispose(struct config_skip *skip)
{
    for (size_t i = 0; i < skip->n_lost; i++)
        free(skip->lost_names[i]);
    free(skip->lost_names);
    memset(skip, 0, sizeof(*skip));
}

bool config_skip_name(const struct config_skip *skip, const char *name)
{
    if (!skip)
        return false;
    if (skip->all_names)
        return true;
    for (size_t i = 0; i < skip->n_lost; i++)
        if (strcmp(skip->lost_names[i], name) == 0)
            return true;
    return false;
}

/* ---- validation -------------------------------------------------------- */

static bool same_addr(const struct config_endpoint *a,
                      const struct config_endpoint *b)
{
    return a->sa_len == b->sa_len && a->sa_len > 0 &&
           memcmp(&a->sa, &b->sa, a->sa_len) == 0;
}

static void validate_version(const struct config *cfg, size_t vi,
                             struct config_errors *errs,
                             const struct config_skip *skip)
{
    const struct config_version *v = &cfg->versions[vi];
    if (!v->name || !config_is_version_name(v->name)) {
        config_errors_add(errs, v->pos,
                          "invalid version name \"%s\" (1 to %d of A-Z a-z 0-9 _ . -)",
                          v->name ? v->name : "", CONFIG_NAME_MAX);
        return;
    }
    for (size_t j = 0; j < vi; j++)
        if (strcmp(cfg->versions[j].name, v->name) == 0)
            config_errors_add(errs, v->pos, "duplicate version \"%s\"", v->name);

    if (v->n_endpoints == 0 && !v->discover && !(skip && skip->version[vi]))
        config_errors_add(errs, v->pos,
                          "version \"%s\" has no endpoints and no discover",
                          v->name);
    if (v->n_endpoints > CONFIG_MAX_ENDPOINTS)
        config_errors_add(errs, v->pos,
                          "version \"%s\" has too many endpoints (at most %d)",
                          v->name, CONFIG_MAX_ENDPOINTS);
    for (size_t i = 0; i < v->n_endpoints; i++) {
        const struct config_endpoint *e = &v->endpoints[i];
        if (!e->address || e->sa_len == 0) {
            config_errors_add(errs, e->pos, "endpoint without an address in version \"%s\"",
                              v->name);
            continue;
        }
        if (e->weight < 1 || e->weight > 1000)
            config_errors_add(errs, e->pos,
                              "endpoint \"%s\" has weight %u, must be 1..1000",
                              e->address, e->weight);
        for (size_t j = 0; j < i; j++) {
            if (!same_addr(e, &v->endpoints[j]))
                continue;
            if (v->endpoints[j].pos.line > 0)
                config_errors_add(errs, e->pos,
                                  "duplicate endpoint \"%s\" in version \"%s\" (first at line %d)",
                                  e->address, v->name, v->endpoints[j].pos.line);
            else
                config_errors_add(errs, e->pos,
                                  "duplicate endpoint \"%s\" in version \"%s\"",
                                  e->address, v->name);
            break;
        }
    }
    if (v->discover && v->discover_interval_ms == 0)
        config_errors_add(errs, v->pos, "version \"%s\": discover_interval must be greater than 0",
                          v->name);
    const struct config_health *h = &v->health;
    if (h->enabled) {
        if (!h->path || h->path[0] != '/')
            config_errors_add(errs, h->pos, "version \"%s\": health path must start with \"/\"",
                              v->name);
        if (h->interval_ms == 0 || h->timeout_ms == 0)
            config_errors_add(errs, h->pos,
                              "version \"%s\": health interval and timeout must be greater than 0",
                              v->name);
        if (h->rise < 1 || h->fall < 1 || h->rise > 100 || h->fall > 100)
            config_errors_add(errs, h->pos,
                              "version \"%s\": health rise and fall must be 1..100",
                              v->name);
    }
    if (v->fallback) {
        if (strcmp(v->fallback, v->name) == 0)
            config_errors_add(errs, v->fallback_pos,
                              "version \"%s\" cannot fall back to itself", v->name);
        else if (config_version_index(cfg, v->fallback) < 0 &&
                 !config_skip_name(skip, v->fallback))
            config_errors_add(errs, v->fallback_pos,
                              "fallback names undefined version \"%s\"", v->fallback);
    }
}

static void validate_split(const struct config *cfg, struct config_errors *errs,
                           const struct config_skip *skip)
{
    if (skip && skip->split)
        return;
    if (!cfg->split_bp) {
        config_errors_add(errs, cfg->split_pos, "missing split");
        return;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < cfg->n_versions; i++)
        sum += cfg->split_bp[i];
    if (sum != SPLIT_TOTAL_BP) {
        char pct[32];
        util_format_bp(sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum, pct, sizeof(pct));
        config_errors_add(errs, cfg->split_pos,
                          "split sums to %s %%, must be exactly 100", pct);
    }
}

static void validate_routing(const struct config *cfg, struct config_errors *errs,
                             const struct config_skip *skip)
{
    if (cfg->n_rules > CONFIG_MAX_RULES)
        config_errors_add(errs, cfg->rules[CONFIG_MAX_RULES].pos,
                          "too many rules (at most %d)", CONFIG_MAX_RULES);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct config_rule *r = &cfg->rules[i];
        if (!r->name || !config_is_token(r->name))
            config_errors_add(errs, r->pos, "rule needs a valid %s name",
                              r->match == RULE_M_COOKIE_VALUE ? "cookie" : "header");
        if (r->match != RULE_M_HEADER_PRESENT && !r->value)
            config_errors_add(errs, r->pos, "rule needs a \"value\"");
        if (!r->version)
            config_errors_add(errs, r->pos, "rule needs a \"version\"");
        else if (config_version_index(cfg, r->version) < 0 &&
                 !config_skip_name(skip, r->version))
            config_errors_add(errs, r->version_pos,
                              "rule targets undefined version \"%s\"", r->version);
    }
    const struct config_sticky *s = &cfg->sticky;
    if (s->kind != STICKY_NONE && (!s->name || !config_is_token(s->name)))
        config_errors_add(errs, s->pos, "sticky needs a valid %s name",
                          s->kind == STICKY_COOKIE ? "cookie" : "header");
    if (s->assign && s->kind != STICKY_COOKIE)
        config_errors_add(errs, s->pos, "\"assign\" only applies to a sticky cookie");
}

/* guard: and rollout: name defined versions; the plan's steps make sense. */
static void validate_guard(const struct config *cfg, struct config_errors *errs,
                           const struct config_skip *skip)
{
    const struct config_guard *g = &cfg->guard;
    const struct config_rollout *r = &cfg->rollout;
    if (g->enabled && g->window_ms > 60000)
        config_errors_add(errs, g->pos, "guard window must be at most 60s (it is %ums)",
                          g->window_ms);
    if (g->enabled && g->baseline && config_version_index(cfg, g->baseline) < 0 &&
        !config_skip_name(skip, g->baseline))
        config_errors_add(errs, g->baseline_pos, "guard baseline names undefined version \"%s\"",
                          g->baseline);
    if (!r->enabled || !r->version)
        return;
    if (config_version_index(cfg, r->version) < 0 && !config_skip_name(skip, r->version)) {
        config_errors_add(errs, r->version_pos, "rollout names undefined version \"%s\"",
                          r->version);
        return;
    }
    if (g->enabled && g->baseline && strcmp(g->baseline, r->version) == 0)
        config_errors_add(errs, g->baseline_pos,
                          "guard baseline \"%s\" is the version being rolled out",
                          g->baseline);
    if (cfg->n_versions < 2)
        config_errors_add(errs, r->pos, "a rollout needs another version to take traffic from");
    struct rollout_plan plan;
    memset(&plan, 0, sizeof(plan));
    snprintf(plan.version, sizeof(plan.version), "%s", r->version);
    if (r->n_steps > ROLLOUT_STEPS_MAX) {
        config_errors_add(errs, r->steps_pos, "rollout: at most %d steps", ROLLOUT_STEPS_MAX);
        return;
    }
    if (r->n_steps) /* steps_bp is NULL when `steps` was missing or bad */
        memcpy(plan.steps_bp, r->steps_bp, r->n_steps * sizeof(uint32_t));
    plan.n_steps = (unsigned)r->n_steps;
    plan.hold_ms = r->hold_ms;
    char why[160];
    if (rollout_plan_check(&plan, why, sizeof(why)) < 0)
        config_errors_add(errs, r->steps_pos, "rollout %s", why);
}

/* mirror: names a defined version and copies at least one method. */
static void validate_mirror(const struct config *cfg, struct config_errors *errs,
                            const struct config_skip *skip)
{
    const struct config_mirror *m = &cfg->mirror;
    if (!m->enabled || !m->version)
        return;
    if (config_version_index(cfg, m->version) < 0 && !config_skip_name(skip, m->version))
        config_errors_add(errs, m->version_pos, "mirror names undefined version \"%s\"",
                          m->version);
    if (m->n_methods == 0)
        config_errors_add(errs, m->methods_pos.line ? m->methods_pos : m->pos,
                          "mirror needs at least one method to copy");
    if (m->percent_bp > SPLIT_TOTAL_BP)
        config_errors_add(errs, m->pos, "mirror percent must be 0..100");
    if (m->n_compare_headers > 8) /* MIRROR_CMP_HEADERS_MAX (mirror_cmp.h) */
        config_errors_add(errs, m->pos, "mirror compares at most 8 headers, not %zu",
                          m->n_compare_headers);
}

int config_validate_skip(const struct config *cfg, struct config_errors *errs,
                         const struct config_skip *skip)
{
    size_t before = errs->n;
    if (cfg->n_versions == 0 && !(skip && (skip->all_names || skip->n_lost)))
        config_errors_add(errs, cfg->versions_pos, "no versions defined (at least one is needed)");
    if (cfg->n_versions > CONFIG_MAX_VERSIONS)
        config_errors_add(errs, cfg->versions_pos, "too many versions (at most %d)",
                          CONFIG_MAX_VERSIONS);
    for (size_t i = 0; i < cfg->n_versions; i++)
        validate_version(cfg, i, errs, skip);
    validate_split(cfg, errs, skip);
    validate_routing(cfg, errs, skip);
    validate_guard(cfg, errs, skip);
    validate_mirror(cfg, errs, skip);
    if (cfg->version_header && !config_is_token(cfg->version_header))
        config_errors_add(errs, (struct config_pos){0, 0},
                          "version_header \"%s\" is not a valid header name",
                          cfg->version_header);
    if (cfg->workers > 64)
        config_errors_add(errs, (struct config_pos){0, 0}, "workers must be 0..64");
    if (cfg->retries > 10)
        config_errors_add(errs, (struct config_pos){0, 0}, "retries must be 0..10");
    return errs->n == before ? 0 : -1;
}

int config_validate(const struct config *cfg, struct config_errors *errs)
{
    return config_validate_skip(cfg, errs, NULL);
}

/* ---- loading ----------------------------------------------------------- */

/* Stable sort of errs->v[from..] by position; position-less errors first. */
static void sort_errors(struct config_errors *errs, size_t from)
{
    /* Insertion sort stays linear on the common, almost sorted case; the
     * count is bounded by the parser's error cap plus the validator's. */
    for (size_t i = from + 1; i < errs->n; i++) {
        struct config_error e = errs->v[i];
        size_t j = i;
        while (j > from && (errs->v[j - 1].pos.line > e.pos.line ||
                            (errs->v[j - 1].pos.line == e.pos.line &&
                             errs->v[j - 1].pos.col > e.pos.col))) {
            errs->v[j] = errs->v[j - 1];
            j--;
        }
        errs->v[j] = e;
    }
}

struct config *config_load_string(const char *file, const char *text,
                                  size_t len, struct config_errors *errs)
{
    if (!errs->file)
        errs->file = xstrdup(file ? file : "");
    size_t before = errs->n;
    struct config_skip skip;
    memset(&skip, 0, sizeof(skip));
    struct config *cfg = config_parse(file, text, len, errs, &skip);
    if (cfg) {
        /* The validator's result is read from errs below. */
        if (config_validate_skip(cfg, errs, &skip) < 0)
            CHECK(errs->n > before);
    }
    config_skip_dispose(&skip);
    sort_errors(errs, before);
    if (errs->n > before) {
        config_free(cfg);
        return NULL;
    }
    CHECK(cfg != NULL);
    return cfg;
}

char *config_read_file(const char *file, size_t *len, int64_t *mtime_ms)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return NULL;
    }
    if (mtime_ms)
        *mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= CONFIG_MAX_FILE_BYTES) {
                free(buf);
                close(fd);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

void config_errors_add_read_error(struct config_errors *errs, int err)
{
    config_errors_add(errs, (struct config_pos){0, 0}, "cannot read: %s",
                      err == EFBIG    ? "file larger than 4 MiB"
                      : err == EINVAL ? "not a regular file"
                                      : strerror(err));
}

struct config *config_load(const char *file, struct config_errors *errs)
{
    if (!errs->file)
        errs->file = xstrdup(file);
    size_t len = 0;
    char *text = config_read_file(file, &len, NULL);
    if (!text) {
        config_errors_add_read_error(errs, errno);
        return NULL;
    }
    struct config *cfg = config_load_string(file, text, len, errs);
    free(text);
    return cfg;
}

int config_version_index(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_versions; i++)
        if (cfg->versions[i].name && strcmp(cfg->versions[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- errors ------------------------------------------------------------ */

void config_errors_init(struct config_errors *errs, const char *file)
{
    memset(errs, 0, sizeof(*errs));
    errs->file = file ? xstrdup(file) : NULL;
}

void config_errors_dispose(struct config_errors *errs)
{
    free(errs->file);
    free(errs->v);
    memset(errs, 0, sizeof(*errs));
}

void config_errors_add(struct config_errors *errs, struct config_pos pos,
                       const char *fmt, ...)
{
    if (errs->n == errs->cap) {
        errs->cap = errs->cap ? errs->cap * 2 : 8;
        errs->v = xrealloc(errs->v, errs->cap * sizeof(*errs->v));
    }
    struct config_error *e = &errs->v[errs->n++];
    e->pos = pos;
    char raw[sizeof(e->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* Names in messages come from the file or a control client: control
     * bytes are written \xNN (as config_yaml_quote does), so no message
     * carries a raw tab or terminal escape into a log or an answer. */
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            if (o + 1 >= sizeof(e->msg))
                break;
            e->msg[o++] = (char)*p;
        } else {
            if (o + 5 > sizeof(e->msg))
                break;
            o += (size_t)snprintf(e->msg + o, 5, "\\x%02x", *p);
        }
    }
    e->msg[o] = '\0';
}

void config_errors_format(const struct config_errors *errs, char *buf,
                          size_t buflen)
{
    if (buflen == 0)
        return;
    buf[0] = '\0';
    const char *file = errs->file ? errs->file : "config";
    size_t used = 0;
    for (size_t i = 0; i < errs->n && used < buflen - 1; i++) {
        const struct config_error *e = &errs->v[i];
        int w;
        if (e->pos.line > 0)
            w = snprintf(buf + used, buflen - used, "%s:%d:%d: %s\n", file,
                         e->pos.line, e->pos.col, e->msg);
        else
            w = snprintf(buf + used, buflen - used, "%s: %s\n", file, e->msg);
        if (w < 0)
            break;
        used += (size_t)w;
        if (used >= buflen)
            used = buflen - 1;
    }
}
