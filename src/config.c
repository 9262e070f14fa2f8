/*
 * config.c — the config model: defaults, loading (file → config_yaml.c →
 * validator), the validator shared by the file and every runtime change,
 * deep clone, free, and the error list.
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

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_FILE_BYTES (4u << 20) /* far above any sane config */

/* ---- defaults ---------------------------------------------------------- */

struct config *config_new_default(const char *file)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    cfg->path = xstrdup(file ? file : "");
    cfg->control = xstrdup("/run/weir/weir.sock");
    cfg->control_mode = 0600;
    cfg->watch = true;
    cfg->client_header_timeout_ms = 10000;
    cfg->client_idle_timeout_ms = 60000;
    cfg->client_body_timeout_ms = 60000;
    cfg->upstream_connect_timeout_ms = 2000;
    cfg->upstream_response_timeout_ms = 30000;
    cfg->upstream_idle_timeout_ms = 30000;
    cfg->drain_timeout_ms = 10000;
    cfg->max_connections = 10000;
    cfg->max_header_bytes = 16384;
    cfg->max_header_count = 100;
    cfg->max_idle_upstream = 256;
    cfg->retries = 1;
    cfg->access_log.enabled = true;
    cfg->access_log.format = LOG_F_JSON;
    return cfg;
}

void config_version_init(struct config_version *v, const char *name)
{
    memset(v, 0, sizeof(*v));
    v->name = xstrdup(name);
    v->discover_interval_ms = 5000;
    v->health.path = xstrdup("/ready");
    v->health.interval_ms = 2000;
    v->health.timeout_ms = 1000;
    v->health.rise = 2;
    v->health.fall = 2;
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

/* ---- clone and free ---------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void version_copy(struct config_version *dst, const struct config_version *src)
{
    *dst = *src;
    dst->name = dup_or_null(src->name);
    dst->discover = dup_or_null(src->discover);
    dst->fallback = dup_or_null(src->fallback);
    dst->health.path = dup_or_null(src->health.path);
    dst->endpoints = NULL;
    if (src->n_endpoints) {
        dst->endpoints = xcalloc(src->n_endpoints, sizeof(*dst->endpoints));
        for (size_t i = 0; i < src->n_endpoints; i++) {
            dst->endpoints[i] = src->endpoints[i];
            dst->endpoints[i].address = dup_or_null(src->endpoints[i].address);
        }
    }
}

struct config *config_clone(const struct config *cfg)
{
    struct config *c = xmalloc(sizeof(*c));
    *c = *cfg;
    c->path = dup_or_null(cfg->path);
    c->listen = dup_or_null(cfg->listen);
    c->control = dup_or_null(cfg->control);
    c->control_owner = dup_or_null(cfg->control_owner);
    c->control_group = dup_or_null(cfg->control_group);
    c->state = dup_or_null(cfg->state);
    c->admin = dup_or_null(cfg->admin);
    c->version_header = dup_or_null(cfg->version_header);
    c->access_log.path = dup_or_null(cfg->access_log.path);

    c->versions = NULL;
    c->split_bp = NULL;
    if (cfg->n_versions) {
        c->versions = xcalloc(cfg->n_versions, sizeof(*c->versions));
        for (size_t i = 0; i < cfg->n_versions; i++)
            version_copy(&c->versions[i], &cfg->versions[i]);
    }
    if (cfg->split_bp) {
        c->split_bp = xcalloc(cfg->n_versions ? cfg->n_versions : 1, sizeof(uint32_t));
        memcpy(c->split_bp, cfg->split_bp, cfg->n_versions * sizeof(uint32_t));
    }
    c->rules = NULL;
    if (cfg->n_rules) {
        c->rules = xcalloc(cfg->n_rules, sizeof(*c->rules));
        for (size_t i = 0; i < cfg->n_rules; i++) {
            c->rules[i] = cfg->rules[i];
            c->rules[i].name = dup_or_null(cfg->rules[i].name);
            c->rules[i].value = dup_or_null(cfg->rules[i].value);
            c->rules[i].version = dup_or_null(cfg->rules[i].version);
        }
    }
    c->sticky.name = dup_or_null(cfg->sticky.name);
    c->resolvers = NULL;
    if (cfg->n_resolvers) {
        c->resolvers = xcalloc(cfg->n_resolvers, sizeof(char *));
        for (size_t i = 0; i < cfg->n_resolvers; i++)
            c->resolvers[i] = dup_or_null(cfg->resolvers[i]);
    }
    return c;
}

static void version_dispose(struct config_version *v)
{
    free(v->name);
    for (size_t i = 0; i < v->n_endpoints; i++)
        free(v->endpoints[i].address);
    free(v->endpoints);
    free(v->discover);
    free(v->fallback);
    free(v->health.path);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->listen);
    free(cfg->control);
    free(cfg->control_owner);
    free(cfg->control_group);
    free(cfg->state);
    free(cfg->admin);
    free(cfg->version_header);
    for (size_t i = 0; i < cfg->n_versions; i++)
        version_dispose(&cfg->versions[i]);
    free(cfg->versions);
    free(cfg->split_bp);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        free(cfg->rules[i].name);
        free(cfg->rules[i].value);
        free(cfg->rules[i].version);
    }
    free(cfg->rules);
    free(cfg->sticky.name);
    for (size_t i = 0; i < cfg->n_resolvers; i++)
        free(cfg->resolvers[i]);
    free(cfg->resolvers);
    free(cfg->access_log.path);
    free(cfg);
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
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
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
