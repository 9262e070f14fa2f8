/*
 * config_parse.c — the tree of config_yaml.c → struct config (config_yaml.h).
 *
 * It owns the field table: one `struct config_field` row per key (name,
 * type, where it is kept, default, restart flag; see config_yaml.h), which
 * config.c also walks for defaults, clone, free and the restart list.
 * parse_map() reports unknown keys (with a "did you
 * mean"), missing required keys and values of the wrong shape; set_field()
 * parses one value. A value that does not parse is reported and not
 * stored, so the default stays; every problem is collected, none stops the
 * walk. Checks that span several values are the validator's (config.c).
 *
 * Every error bumps rep.taint, and a silently skipped node (a duplicate key,
 * an alias: reported once already) does too. A section compares taint
 * before and after to know it is incomplete, and tells the validator through
 * struct config_skip, so only first-hand problems are reported.
 *
 * Wording: a value of the wrong kind reads `"KEY" must be WHAT, not GOT`;
 * addresses, which come with a reason of their own, read
 * `invalid THING "TEXT": REASON`.
 */
#include "config_yaml.h"

#include "access_field.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Parse state shared by every step. */
struct config_pctx {
    struct config_report rep; /* errors; rep.taint counts them and skipped nodes */
    struct config *cfg;       /* borrowed: the config being filled */
    struct config_skip *skip; /* borrowed */
    /* split entries, resolved to version indices after everything is read */
    /* clang-format off */
    struct split_ent {
        const char *name; /* borrowed from the tree */
        uint32_t bp;
        struct config_pos pos;
    } *split;
    /* clang-format on */
    size_t n_split;
    bool split_seen;    /* `split` was a mapping */
    bool split_bad;     /* ... with a problem in it */
    bool versions_seen; /* `versions` was a mapping */
};

static void perr(struct config_pctx *p, struct config_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(struct config_pctx *p, struct config_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_yaml_verror(&p->rep, pos, fmt, ap);
    va_end(ap);
}

static const char *quote(struct config_qbuf *q, const char *s)
{
    return config_yaml_quote(q, s);
}

static const char *describe(struct config_qbuf *q, const struct config_node *n)
{
    return config_yaml_describe(q, n);
}

/* ---- fields (the row types are in config_yaml.h) ---------------------- */

/* What parse_map() found: key and value node per field index. */
struct seen {
    const struct config_node *key[CONFIG_MAX_FIELDS];
    const struct config_node *val[CONFIG_MAX_FIELDS];
};

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

static void set_str(void *base, size_t off, const char *s)
{
    char **slot = AT(base, off, char *);
    free(*slot);
    *slot = s ? xstrdup(s) : NULL;
}

static int parse_uint(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int parse_mode(const char *s, uint32_t *out)
{
    if (strncmp(s, "0o", 2) == 0)
        s += 2;
    uint32_t v = 0;
    if (!*s || strlen(s) > 4)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '7')
            return -1;
        v = v * 8 + (uint32_t)(*s - '0');
    }
    if (v > 0777)
        return -1;
    *out = v;
    return 0;
}

/* Does s look like a user or group: a name or a number, nothing odd. */
static bool is_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '-')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == ':' || c == '/' || c == 0x7f)
            return false;
    }
    return true;
}

/* RFC 1123 host name: dot-separated labels of 1..63 letters, digits, hyphens. */
static bool is_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '-';
        if (!okc || (c == '-' && label == 0) || ++label > 63)
            return false;
    }
    return s[len - 1] != '-';
}

static const char *type_what(const struct config_field *f, char *buf, size_t buflen)
{
    if (f->what)
        return f->what;
    switch (f->type) {
    case F_STR:
        return "a string";
    case F_PATH:
        return "a path";
    case F_SOCKPATH:
        return "a socket path";
    case F_ID:
        return "a name or a number";
    case F_TOKEN:
        return "a header name";
    case F_ADDR:
        return "host:port";
    case F_DUR:
        return "a duration like 250ms, 2s or 1m30s";
    case F_UINT:
        snprintf(buf, buflen, "an integer %u..%u", f->min, f->max);
        return buf;
    case F_PORT:
        return "an integer 0..65535";
    case F_BOOL:
        return "true or false";
    case F_MODE:
        return "an octal mode like 0600";
    case F_MAP:
        return "a mapping";
    case F_FN:
    case F_DATA:
        break;
    }
    return "a value";
}

/* `"KEY" must be WHAT, not GOT` — the one wording for a value of the wrong kind. */
static void bad_value(struct config_pctx *p, const struct config_field *f, const struct config_node *val)
{
    char wbuf[48];
    struct config_qbuf q;
    perr(p, val->pos, "\"%s\" must be %s, not %s", f->name,
         type_what(f, wbuf, sizeof(wbuf)), describe(&q, val));
}

/* A scalar is needed: report anything else with the field's wording. */
static bool want_scalar(struct config_pctx *p, const struct config_field *f, const struct config_node *val)
{
    if (val->kind == CN_SCALAR)
        return true;
    bad_value(p, f, val);
    return false;
}

static bool want_map(struct config_pctx *p, const char *name, const struct config_node *val)
{
    if (val->kind == CN_MAP)
        return true;
    struct config_qbuf q;
    perr(p, val->pos, "\"%s\" must be a mapping, not %s", name, describe(&q, val));
    return false;
}

static bool want_seq(struct config_pctx *p, const char *name, const struct config_node *val)
{
    if (val->kind == CN_SEQ)
        return true;
    struct config_qbuf q;
    perr(p, val->pos, "\"%s\" must be a list, not %s", name, describe(&q, val));
    return false;
}

static void parse_map(struct config_pctx *p, const struct config_node *map,
                      const struct config_field *fields, void *base, struct seen *seen);

static void set_field(struct config_pctx *p, const struct config_field *f,
                      const struct config_node *key, const struct config_node *val, void *base)
{
    if (f->type == F_FN) {
        f->fn(p, f, key, val, base);
        return;
    }
    if (f->type == F_MAP) {
        if (want_map(p, f->name, val))
            parse_map(p, val, f->sub->rows, AT(base, f->off, char), NULL);
        return;
    }
    CHECK(f->type != F_DATA); /* parse_map() never matches a key to one */
    if (!want_scalar(p, f, val))
        return;
    const char *s = val->text;
    struct config_qbuf q;
    uint32_t u = 0;
    bool b = false;
    switch (f->type) {
    case F_STR:
        set_str(base, f->off, s);
        return;
    case F_PATH:
        if (!*s) {
            bad_value(p, f, val);
            return;
        }
        set_str(base, f->off, s);
        return;
    case F_SOCKPATH:
        if (!*s || strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            perr(p, val->pos, "\"%s\" must be a socket path of at most %zu bytes, not %s",
                 f->name, sizeof(((struct sockaddr_un *)0)->sun_path) - 1, quote(&q, s));
            return;
        }
        set_str(base, f->off, s);
        return;
    case F_ID:
        if (!is_id(s)) {
            bad_value(p, f, val);
            return;
        }
        set_str(base, f->off, s);
        return;
    case F_TOKEN:
        if (!config_is_token(s) || strlen(s) > 256) {
            bad_value(p, f, val);
            return;
        }
        set_str(base, f->off, s);
        return;
    case F_ADDR: {
        const char *why = NULL;
        if (util_parse_addr(s, AT(base, f->off_sa, struct sockaddr_storage),
                            AT(base, f->off_salen, socklen_t), &why) < 0) {
            perr(p, val->pos, "invalid \"%s\" address %s: %s", f->name, quote(&q, s), why);
            return;
        }
        set_str(base, f->off, s);
        return;
    }
    case F_DUR: {
        const char *why = NULL;
        if (util_parse_duration(s, &u, &why) < 0) {
            char wbuf[48];
            perr(p, val->pos, "\"%s\" must be %s, not %s: %s", f->name,
                 type_what(f, wbuf, sizeof(wbuf)), quote(&q, s), why);
            return;
        }
        if (u < f->min && f->min <= 1) {
            perr(p, val->pos, "\"%s\" must be greater than 0, not %s", f->name, quote(&q, s));
            return;
        }
        if (u < f->min) {
            perr(p, val->pos, "\"%s\" must be at least %ums, not %s", f->name, f->min,
                 quote(&q, s));
            return;
        }
        *AT(base, f->off, uint32_t) = u;
        return;
    }
    case F_UINT:
        if (parse_uint(s, f->max, &u) < 0 || u < f->min) {
            bad_value(p, f, val);
            return;
        }
        *AT(base, f->off, uint32_t) = u;
        return;
    case F_PORT:
        if (parse_uint(s, 65535, &u) < 0) {
            bad_value(p, f, val);
            return;
        }
        *AT(base, f->off, uint16_t) = (uint16_t)u;
        return;
    case F_BOOL:
        if (parse_bool(s, &b) < 0) {
            bad_value(p, f, val);
            return;
        }
        *AT(base, f->off, bool) = b;
        return;
    case F_MODE:
        if (parse_mode(s, &u) < 0) {
            bad_value(p, f, val);
            return;
        }
        *AT(base, f->off, uint32_t) = u;
        return;
    case F_MAP:
    case F_FN:
    case F_DATA:
        break;
    }
}

/* Edit distance, for "did you mean"; names are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41] = {0};
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Report KEY as unknown; returns the index of the field suggested, or -1. */
static int unknown_key(struct config_pctx *p, const struct config_node *key,
                       const struct config_field *fields)
{
    struct config_qbuf q;
    int best = -1;
    size_t best_d = 3;
    for (int i = 0; fields[i].name; i++) {
        const char *name = fields[i].name;
        if (fields[i].type == F_DATA)
            continue;
        size_t d = strcasecmp(name, key->text) == 0 ? 0 : edit_distance(name, key->text);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    if (best >= 0) {
        perr(p, key->pos, "unknown key %s (did you mean \"%s\"?)", quote(&q, key->text),
             fields[best].name);
        return best;
    }
    char list[400];
    size_t o = 0;
    list[0] = '\0';
    for (const struct config_field *f = fields; f->name && o < sizeof(list); f++) {
        if (f->type == F_DATA)
            continue;
        int w = snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", f->name);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    perr(p, key->pos, "unknown key %s (expected one of: %s)", quote(&q, key->text), list);
    return -1;
}

/*
 * Walk the pairs of MAP: unknown keys, nulls (= absent), then set_field().
 * Reports missing required keys at the mapping. seen, if non-NULL, gets
 * the key and value node of each field present.
 */
static void parse_map(struct config_pctx *p, const struct config_node *map,
                      const struct config_field *fields, void *base, struct seen *seen)
{
    struct seen local;
    uint64_t suggested = 0; /* fields offered as "did you mean" */
    if (!seen)
        seen = &local;
    memset(seen, 0, sizeof(*seen));
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct config_node *key = map->kids[i], *val = map->kids[i + 1];
        if (key->dup) {
            p->rep.taint++;
            continue;
        }
        size_t fi = 0;
        while (fields[fi].name &&
               (fields[fi].type == F_DATA || strcmp(fields[fi].name, key->text) != 0))
            fi++;
        if (!fields[fi].name) {
            int sug = unknown_key(p, key, fields);
            if (sug >= 0 && sug < CONFIG_MAX_FIELDS)
                suggested |= UINT64_C(1) << sug;
            continue;
        }
        CHECK(fi < CONFIG_MAX_FIELDS);
        seen->key[fi] = key;
        if (val->kind == CN_BAD) {
            p->rep.taint++;
            continue;
        }
        if (val->kind == CN_NULL) {
            if (fields[fi].required)
                perr(p, key->pos, "\"%s\" needs a value", fields[fi].name);
            continue;
        }
        seen->val[fi] = val;
        set_field(p, &fields[fi], key, val, base);
    }
    for (size_t fi = 0; fields[fi].name; fi++) {
        if (!fields[fi].required || seen->key[fi])
            continue;
        if (suggested & (UINT64_C(1) << fi))
            p->rep.taint++; /* "lisen: ..." already said "did you mean listen" */
        else
            perr(p, map->pos, "missing required key \"%s\"", fields[fi].name);
    }
}

/* ---- versions ---------------------------------------------------------- */

#define EP(member) offsetof(struct config_endpoint, member)

static const struct config_type endpoint_type = {
    sizeof(struct config_endpoint),
    (const struct config_field[]){
        {.name = "address", .type = F_STR, .required = true, .off = EP(address)},
        {.name = "weight", .type = F_UINT, .min = 1, .max = 1000, .def = 1, .off = EP(weight)},
        {.name = NULL},
    },
};

static void add_endpoint(struct config_pctx *p, struct config_version *v, size_t cap,
                         const struct config_node *at, const char *address, uint32_t weight)
{
    struct config_endpoint e;
    memset(&e, 0, sizeof(e));
    const char *why = NULL;
    struct config_qbuf q;
    if (util_parse_addr(address, &e.sa, &e.sa_len, &why) < 0) {
        /* A DNS name where an address belongs: say where names go. */
        const char *colon = strrchr(address, ':');
        uint32_t port = 0;
        if (colon && is_hostname(address, (size_t)(colon - address)) &&
            parse_uint(colon + 1, 65535, &port) == 0 && port > 0)
            perr(p, at->pos, "invalid endpoint %s: %s; for a DNS name use "
                             "\"discover: %s\" (re-resolved)",
                 quote(&q, address), why, address);
        else
            perr(p, at->pos, "invalid endpoint %s: %s", quote(&q, address), why);
        return;
    }
    if (v->n_endpoints == cap) {
        perr(p, at->pos, "too many endpoints in version \"%s\" (at most %d)",
             v->name, CONFIG_MAX_ENDPOINTS);
        return;
    }
    e.address = xstrdup(address);
    e.weight = weight;
    e.pos = at->pos;
    v->endpoints[v->n_endpoints++] = e;
}

static void on_endpoints(struct config_pctx *p, const struct config_field *f,
                         const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config_version *v = base;
    if (!want_seq(p, f->name, val))
        return;
    size_t cap = val->n < CONFIG_MAX_ENDPOINTS ? val->n : CONFIG_MAX_ENDPOINTS;
    for (size_t i = 0; i < v->n_endpoints; i++)
        config_fields_dispose(f->sub, &v->endpoints[i]);
    free(v->endpoints);
    v->endpoints = xcalloc(cap ? cap : 1, sizeof(*v->endpoints));
    v->n_endpoints = 0;
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        struct config_qbuf q;
        if (it->kind == CN_SCALAR || it->kind == CN_MAP) {
            /* the rows' defaults also give the plain host:port form its weight */
            struct config_endpoint t;
            memset(&t, 0, sizeof(t));
            config_fields_init(f->sub, &t);
            if (it->kind == CN_SCALAR) {
                add_endpoint(p, v, cap, it, it->text, t.weight);
            } else {
                struct seen s;
                unsigned t0 = p->rep.taint;
                parse_map(p, it, f->sub->rows, &t, &s);
                if (p->rep.taint == t0 && t.address)
                    add_endpoint(p, v, cap, s.val[0], t.address, t.weight);
            }
            config_fields_dispose(f->sub, &t);
        } else if (it->kind == CN_BAD) {
            p->rep.taint++;
        } else {
            perr(p, it->pos, "endpoint must be host:port or a mapping with \"address\", not %s",
                 describe(&q, it));
        }
    }
}

static void on_discover(struct config_pctx *p, const struct config_field *f,
                        const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config_version *v = base;
    if (!want_scalar(p, f, val))
        return;
    const char *s = val->text, *colon = strrchr(s, ':');
    uint32_t port = 0;
    if (!colon || !is_hostname(s, (size_t)(colon - s)) ||
        parse_uint(colon + 1, 65535, &port) < 0 || port == 0) {
        bad_value(p, f, val);
        return;
    }
    set_str(v, f->off, s);
}

static void on_fallback(struct config_pctx *p, const struct config_field *f,
                        const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config_version *v = base;
    if (!want_scalar(p, f, val))
        return;
    set_str(v, f->off, val->text);
    v->fallback_pos = val->pos;
}

static void on_health_path(struct config_pctx *p, const struct config_field *f,
                           const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    if (!want_scalar(p, f, val))
        return;
    const char *s = val->text;
    bool okp = s[0] == '/' && strlen(s) <= 1024;
    for (const char *c = s; okp && *c; c++)
        okp = (unsigned char)*c > ' ' && *c != 0x7f;
    if (!okp) {
        bad_value(p, f, val);
        return;
    }
    set_str(base, f->off, s);
}

#define HC(member) offsetof(struct config_health, member)

/* The defaults apply even without a `health:` map (enabled stays false). */
/* clang-format off */
static const struct config_type health_type = {
    sizeof(struct config_health),
    (const struct config_field[]){
        {.name = "path", .type = F_FN, .fn = on_health_path, .store = CS_STR,
         .def_str = "/ready", .off = HC(path), .what = "a path starting with \"/\""},
        {.name = "port", .type = F_PORT, .off = HC(port)},
        {.name = "interval", .type = F_DUR, .min = 1, .def = 2000, .off = HC(interval_ms)},
        {.name = "timeout", .type = F_DUR, .min = 1, .def = 1000, .off = HC(timeout_ms)},
        {.name = "rise", .type = F_UINT, .min = 1, .max = 100, .def = 2, .off = HC(rise)},
        {.name = "fall", .type = F_UINT, .min = 1, .max = 100, .def = 2, .off = HC(fall)},
        {.name = NULL},
    },
};
/* clang-format on */

static void on_health(struct config_pctx *p, const struct config_field *f,
                      const struct config_node *key, const struct config_node *val, void *base)
{
    struct config_version *v = base;
    if (!want_map(p, f->name, val))
        return;
    v->health.enabled = true;
    v->health.pos = key->pos;
    parse_map(p, val, f->sub->rows, AT(base, f->off, char), NULL);
}

static void on_upstream_sni(struct config_pctx *p, const struct config_field *f,
                            const struct config_node *key, const struct config_node *val,
                            void *base)
{
    (void)key;
    if (!want_scalar(p, f, val))
        return;
    if (!is_hostname(val->text, strlen(val->text))) {
        bad_value(p, f, val);
        return;
    }
    set_str(base, f->off, val->text);
}

static const struct config_type upstream_tls_type;

static void on_version_tls(struct config_pctx *p, const struct config_field *f,
                           const struct config_node *key, const struct config_node *val,
                           void *base)
{
    struct config_upstream_tls *t = AT(base, f->off, struct config_upstream_tls);
    if (!want_map(p, f->name, val))
        return;
    t->enabled = true;
    t->pos = key->pos;
    parse_map(p, val, f->sub->rows, t, NULL);
}

#define VER(member) offsetof(struct config_version, member)

/* clang-format off */
const struct config_type config_type_version = {
    sizeof(struct config_version),
    (const struct config_field[]){
        {.name = "endpoints", .type = F_FN, .fn = on_endpoints, .store = CS_ARRAY,
         .off = VER(endpoints), .off_n = VER(n_endpoints), .sub = &endpoint_type},
        {.name = "discover", .type = F_FN, .fn = on_discover, .store = CS_STR,
         .off = VER(discover), .what = "hostname:port"},
        {.name = "discover_interval", .type = F_DUR, .min = 1, .def = 5000,
         .off = VER(discover_interval_ms)},
        {.name = "health", .type = F_FN, .fn = on_health, .store = CS_SUB,
         .off = VER(health), .sub = &health_type},
        {.name = "fallback", .type = F_FN, .fn = on_fallback, .store = CS_STR,
         .off = VER(fallback), .what = "a version name"},
        {.name = "tls", .type = F_FN, .fn = on_version_tls, .store = CS_SUB, .off = VER(tls),
         .sub = &upstream_tls_type},
        {.name = "name", .type = F_DATA, .store = CS_STR, .off = VER(name)}, /* its key */
        {.name = NULL},
    },
};
/* clang-format on */

static void lose_name(struct config_pctx *p, const char *name)
{
    struct config_skip *s = p->skip;
    s->lost_names = xrealloc(s->lost_names, (s->n_lost + 1) * sizeof(char *));
    s->lost_names[s->n_lost++] = xstrdup(name);
}

static void on_versions(struct config_pctx *p, const struct config_field *f,
                        const struct config_node *key, const struct config_node *val, void *base)
{
    struct config *cfg = base;
    cfg->versions_pos = key->pos;
    if (!want_map(p, f->name, val))
        return;
    p->versions_seen = true;
    size_t pairs = val->n / 2;
    size_t cap = pairs < CONFIG_MAX_VERSIONS ? pairs : CONFIG_MAX_VERSIONS;
    cfg->versions = xcalloc(cap ? cap : 1, sizeof(*cfg->versions));
    for (size_t i = 0; i < pairs; i++) {
        const struct config_node *k = val->kids[2 * i], *body = val->kids[2 * i + 1];
        struct config_qbuf q;
        if (k->dup) {
            p->rep.taint++;
            continue;
        }
        if (!config_is_version_name(k->text)) {
            perr(p, k->pos, "invalid version name %s (1 to %d of A-Z a-z 0-9 _ . -)",
                 quote(&q, k->text), CONFIG_NAME_MAX);
            lose_name(p, k->text);
            continue;
        }
        if (cfg->n_versions == cap) {
            perr(p, k->pos, "too many versions (at most %d)", CONFIG_MAX_VERSIONS);
            lose_name(p, k->text);
            continue;
        }
        size_t vi = cfg->n_versions++;
        struct config_version *v = &cfg->versions[vi];
        config_version_init(v, k->text);
        v->pos = k->pos;
        unsigned t0 = p->rep.taint;
        if (body->kind == CN_MAP)
            parse_map(p, body, f->sub->rows, v, NULL);
        else if (body->kind == CN_BAD)
            p->rep.taint++;
        else if (body->kind != CN_NULL)
            want_map(p, k->text, body);
        p->skip->version[vi] = p->rep.taint != t0;
    }
}

/* ---- split, sticky, rules, resolvers, access log ------------------------ */

static void on_split(struct config_pctx *p, const struct config_field *f,
                     const struct config_node *key, const struct config_node *val, void *base)
{
    struct config *cfg = base;
    cfg->split_pos = key->pos;
    if (!want_map(p, f->name, val))
        return;
    p->split_seen = true;
    unsigned t0 = p->rep.taint;
    free(p->split);
    p->split = xcalloc(val->n / 2 + 1, sizeof(*p->split));
    p->n_split = 0;
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const struct config_node *k = val->kids[i], *v = val->kids[i + 1];
        uint32_t bp = 0;
        struct config_qbuf qk, qv;
        if (k->dup || v->kind == CN_BAD) {
            p->rep.taint++;
            continue;
        }
        if (v->kind != CN_SCALAR || util_parse_percent_bp(v->text, &bp) < 0) {
            perr(p, v->kind == CN_NULL ? k->pos : v->pos,
                 "split for %s must be a percentage 0..100 with at most two decimals, not %s",
                 quote(&qk, k->text), describe(&qv, v));
            continue;
        }
        p->split[p->n_split++] = (struct split_ent){k->text, bp, k->pos};
    }
    p->split_bad = p->rep.taint != t0;
}

/* After the whole file: split names → version indices. */
static void resolve_split(struct config_pctx *p)
{
    struct config *cfg = p->cfg;
    unsigned t0 = p->rep.taint;
    if (!p->split_seen) {
        p->skip->split = true;
        return;
    }
    cfg->split_bp = xcalloc(cfg->n_versions ? cfg->n_versions : 1, sizeof(uint32_t));
    for (size_t i = 0; i < p->n_split; i++) {
        const struct split_ent *e = &p->split[i];
        int vi = config_version_index(cfg, e->name);
        struct config_qbuf q;
        if (vi >= 0) {
            cfg->split_bp[vi] = e->bp;
        } else if (config_skip_name(p->skip, e->name)) {
            p->rep.taint++;
        } else {
            perr(p, e->pos, "split names undefined version %s", quote(&q, e->name));
        }
    }
    if (p->split_bad || p->rep.taint != t0)
        p->skip->split = true;
}

/*
 * `header` and `cookie` both write the one `name` slot (config.c copies and
 * frees a slot once); which key it was is in the seen set, and "not both"
 * is checked after the map is read.
 */
#define STK(member) offsetof(struct config_sticky, member)

static const struct config_type sticky_type = {
    sizeof(struct config_sticky),
    (const struct config_field[]){
        {.name = "header", .type = F_TOKEN, .off = STK(name)},
        {.name = "cookie", .type = F_TOKEN, .what = "a cookie name", .off = STK(name)},
        {.name = "assign", .type = F_BOOL, .off = STK(assign)},
        {.name = NULL},
    },
};

/* The later of two keys: where "not both" is reported. */
static const struct config_node *later(const struct config_node *a, const struct config_node *b)
{
    if (a->pos.line != b->pos.line)
        return a->pos.line > b->pos.line ? a : b;
    return a->pos.col > b->pos.col ? a : b;
}

static void on_sticky(struct config_pctx *p, const struct config_field *f,
                      const struct config_node *key, const struct config_node *val, void *base)
{
    struct config_sticky *st = AT(base, f->off, struct config_sticky);
    if (!want_map(p, f->name, val))
        return;
    struct config_sticky t;
    memset(&t, 0, sizeof(t));
    config_fields_init(f->sub, &t);
    struct seen s;
    unsigned t0 = p->rep.taint;
    parse_map(p, val, f->sub->rows, &t, &s);
    if (p->rep.taint != t0) {
        /* already reported */
    } else if (s.val[0] && s.val[1]) {
        perr(p, later(s.key[0], s.key[1])->pos,
             "sticky takes one of \"header\" or \"cookie\", not both");
    } else if (!s.val[0] && !s.val[1]) {
        perr(p, key->pos, "sticky needs \"header\" or \"cookie\"");
    } else if (s.val[0] && s.val[2]) {
        perr(p, s.key[2]->pos, "\"assign\" only applies to a sticky cookie");
    } else {
        t.kind = s.val[0] ? STICKY_HEADER : STICKY_COOKIE;
        t.pos = key->pos;
        config_fields_dispose(f->sub, st);
        *st = t;
        return;
    }
    config_fields_dispose(f->sub, &t);
}

#define RULE(member) offsetof(struct config_rule, member)

/* `header` and `cookie` share `name`, as in sticky_type. */
static const struct config_type rule_type = {
    sizeof(struct config_rule),
    (const struct config_field[]){
        {.name = "header", .type = F_TOKEN, .off = RULE(name)},
        {.name = "cookie", .type = F_TOKEN, .what = "a cookie name", .off = RULE(name)},
        {.name = "value", .type = F_STR, .off = RULE(value)},
        {.name = "version", .type = F_STR, .required = true, .off = RULE(version)},
        {.name = NULL},
    },
};

static void on_rule(struct config_pctx *p, const struct config_type *rt, struct config *cfg,
                    const struct config_node *it)
{
    struct config_rule t;
    memset(&t, 0, sizeof(t));
    config_fields_init(rt, &t);
    struct seen s;
    unsigned t0 = p->rep.taint;
    parse_map(p, it, rt->rows, &t, &s);
    if (p->rep.taint != t0) {
        /* already reported */
    } else if (s.val[0] && s.val[1]) {
        perr(p, later(s.key[0], s.key[1])->pos,
             "rule takes one of \"header\" or \"cookie\", not both");
    } else if (!s.val[0] && !s.val[1]) {
        perr(p, it->pos, "rule needs \"header\" or \"cookie\"");
    } else if (s.val[1] && !t.value) {
        perr(p, s.key[1]->pos, "cookie rule needs a \"value\"");
    } else if (cfg->n_rules == CONFIG_MAX_RULES) {
        perr(p, it->pos, "too many rules (at most %d)", CONFIG_MAX_RULES);
    } else {
        t.match = s.val[1]  ? RULE_M_COOKIE_VALUE
                  : t.value ? RULE_M_HEADER_VALUE
                            : RULE_M_HEADER_PRESENT;
        t.pos = it->pos;
        t.version_pos = s.val[3]->pos;
        cfg->rules[cfg->n_rules++] = t;
        return;
    }
    config_fields_dispose(rt, &t);
}

static void on_rules(struct config_pctx *p, const struct config_field *f,
                     const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config *cfg = base;
    if (!want_seq(p, f->name, val))
        return;
    size_t cap = val->n < CONFIG_MAX_RULES ? val->n : CONFIG_MAX_RULES;
    cfg->rules = xcalloc(cap ? cap : 1, sizeof(*cfg->rules));
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        struct config_qbuf q;
        if (it->kind == CN_MAP)
            on_rule(p, f->sub, cfg, it);
        else if (it->kind == CN_BAD)
            p->rep.taint++;
        else
            perr(p, it->pos, "rule must be a mapping, not %s", describe(&q, it));
    }
}

/* "ip", "ip:port", "[v6]" or "[v6]:port" → "ip:port" in buf; -1 if none. */
static int normalize_resolver(const char *s, char *buf, size_t buflen)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    size_t n = strlen(s);
    if (n > 64)
        return -1;
    if (inet_pton(AF_INET, s, tmp) == 1)
        snprintf(buf, buflen, "%s:53", s);
    else if (inet_pton(AF_INET6, s, tmp) == 1)
        snprintf(buf, buflen, "[%s]:53", s);
    else if (n > 2 && s[0] == '[' && s[n - 1] == ']')
        snprintf(buf, buflen, "%s:53", s);
    else
        snprintf(buf, buflen, "%s", s);
    struct sockaddr_storage ss;
    socklen_t len;
    /* only numeric addresses: "localhost" is not a resolver */
    if (strncmp(buf, "localhost", 9) == 0 || util_parse_addr(buf, &ss, &len, NULL) < 0)
        return -1;
    return 0;
}

static void on_resolvers(struct config_pctx *p, const struct config_field *f,
                         const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config *cfg = base;
    if (!want_seq(p, f->name, val))
        return;
    cfg->resolvers = xcalloc(val->n ? val->n : 1, sizeof(char *));
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        char buf[80];
        struct config_qbuf q;
        if (it->kind == CN_BAD) {
            p->rep.taint++;
        } else if (it->kind != CN_SCALAR) {
            perr(p, it->pos, "resolver must be ip or ip:port, not %s", describe(&q, it));
        } else if (normalize_resolver(it->text, buf, sizeof(buf)) < 0) {
            perr(p, it->pos, "invalid resolver %s: expected ip or ip:port", quote(&q, it->text));
        } else {
            cfg->resolvers[cfg->n_resolvers++] = xstrdup(buf);
        }
    }
}

static void on_log_format(struct config_pctx *p, const struct config_field *f,
                          const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    enum config_log_format *fmt = AT(base, f->off, enum config_log_format);
    if (!want_scalar(p, f, val))
        return;
    if (strcmp(val->text, "json") == 0)
        *fmt = LOG_F_JSON;
    else if (strcmp(val->text, "combined") == 0)
        *fmt = LOG_F_COMBINED;
    else
        bad_value(p, f, val);
}

static void on_log_path(struct config_pctx *p, const struct config_field *f,
                        const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    if (!want_scalar(p, f, val))
        return;
    if (!*val->text) {
        bad_value(p, f, val);
        return;
    }
    /* "-" and "stdout" both mean the default: standard output */
    bool std = strcmp(val->text, "-") == 0 || strcmp(val->text, "stdout") == 0;
    set_str(base, f->off, std ? NULL : val->text);
    ((struct config_access_log *)base)->path_pos = val->pos;
}

/* access_log.fields: a list of JSON field names (access_field.h), each once. */
static void on_log_fields(struct config_pctx *p, const struct config_field *f,
                          const struct config_node *key, const struct config_node *val,
                          void *base)
{
    (void)key;
    struct config_access_log *al = base;
    if (!want_seq(p, f->name, val))
        return;
    uint32_t *ids = xcalloc(val->n ? val->n : 1, sizeof(uint32_t));
    size_t n = 0;
    bool bad = false;
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        struct config_qbuf q;
        int id = it->kind == CN_SCALAR ? access_field_id(it->text) : -1;
        if (it->kind == CN_BAD) {
            p->rep.taint++;
            bad = true;
            continue;
        }
        if (id < 0) {
            char list[512];
            size_t o = 0;
            list[0] = '\0';
            for (int k = 0; k < ACCESS_F_COUNT && o < sizeof(list); k++) {
                int w = snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "",
                                 access_field_name((enum access_field)k));
                if (w < 0)
                    break;
                o += (size_t)w;
            }
            perr(p, it->pos, "unknown access log field %s (one of: %s)", describe(&q, it),
                 list);
            bad = true;
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup |= ids[k] == (uint32_t)id;
        if (dup) {
            perr(p, it->pos, "access log field %s is listed twice", quote(&q, it->text));
            bad = true;
            continue;
        }
        ids[n++] = (uint32_t)id;
    }
    if (!bad && n == 0) {
        perr(p, val->pos, "\"fields\" needs at least one field");
        bad = true;
    }
    if (bad) {
        free(ids);
        return;
    }
    free(al->fields);
    al->fields = ids;
    al->n_fields = n;
}

#define LOG(member) offsetof(struct config_access_log, member)

/* clang-format off */
static const struct config_type access_log_type = {
    sizeof(struct config_access_log),
    (const struct config_field[]){
        {.name = "enabled", .type = F_BOOL, .def = true, .off = LOG(enabled)},
        {.name = "format", .type = F_FN, .fn = on_log_format, .store = CS_ENUM,
         .def = LOG_F_JSON, .off = LOG(format), .what = "json or combined"},
        {.name = "path", .type = F_FN, .fn = on_log_path, .store = CS_STR, .off = LOG(path),
         .what = "a path, - or stdout"},
        {.name = "fields", .type = F_FN, .fn = on_log_fields, .store = CS_U32V,
         .off = LOG(fields), .off_n = LOG(n_fields)},
        {.name = NULL},
    },
};
/* clang-format on */

static void on_access_log(struct config_pctx *p, const struct config_field *f,
                          const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config_access_log *al = AT(base, f->off, struct config_access_log);
    bool b;
    if (val->kind == CN_MAP) {
        struct seen sn;
        parse_map(p, val, f->sub->rows, al, &sn);
        /* rows: enabled, format, path, fields */
        if (sn.val[3] && al->format == LOG_F_COMBINED)
            perr(p, sn.key[3]->pos, "\"fields\" chooses the JSON line's fields; "
                                    "the combined format has fixed fields");
    } else if (val->kind == CN_SCALAR && parse_bool(val->text, &b) == 0)
        al->enabled = b; /* `access_log: false` */
    else
        bad_value(p, f, val);
}

/* ---- log: the diagnostic log ------------------------------------------- */

static void on_errlog_format(struct config_pctx *p, const struct config_field *f,
                             const struct config_node *key, const struct config_node *val,
                             void *base)
{
    (void)key;
    if (!want_scalar(p, f, val))
        return;
    enum config_errlog_format *fmt = AT(base, f->off, enum config_errlog_format);
    if (strcmp(val->text, "text") == 0)
        *fmt = ERRLOG_F_TEXT;
    else if (strcmp(val->text, "json") == 0)
        *fmt = ERRLOG_F_JSON;
    else
        bad_value(p, f, val);
}

static void on_errlog_level(struct config_pctx *p, const struct config_field *f,
                            const struct config_node *key, const struct config_node *val,
                            void *base)
{
    (void)key;
    static const char *const names[] = {"debug", "info", "warn", "error"}; /* log.h order */
    if (!want_scalar(p, f, val))
        return;
    for (uint32_t i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(val->text, names[i]) == 0) {
            *AT(base, f->off, uint32_t) = i;
            return;
        }
    bad_value(p, f, val);
}

/* ---- guard: and rollout: ------------------------------------------------ */

#define GRD(member) offsetof(struct config_guard, member)
#define RLT(member) offsetof(struct config_rollout, member)

/* "1%", "0.5%" or "1" → basis points (at most two decimals, 0..100). */
static int parse_percent_text(const char *s, uint32_t *bp)
{
    char buf[32];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n + 1);
    if (buf[n - 1] == '%')
        buf[n - 1] = '\0';
    return util_parse_percent_bp(buf, bp);
}

static void on_percent(struct config_pctx *p, const struct config_field *f,
                       const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    uint32_t bp;
    if (!want_scalar(p, f, val))
        return;
    if (parse_percent_text(val->text, &bp) < 0 || bp < f->min || bp > f->max)
        bad_value(p, f, val);
    else
        *AT(base, f->off, uint32_t) = bp;
}

/* "p99", "p99.9", "p50" → basis points of the quantile (0 < q < 100 %). */
static void on_quantile(struct config_pctx *p, const struct config_field *f,
                        const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    uint32_t bp;
    if (!want_scalar(p, f, val))
        return;
    const char *t = val->text;
    if ((t[0] != 'p' && t[0] != 'P') || util_parse_percent_bp(t + 1, &bp) < 0 || bp == 0 ||
        bp >= 10000)
        bad_value(p, f, val);
    else
        *AT(base, f->off, uint32_t) = bp;
}

/* A ratio "1.5" (at most three decimals, 0.001..1000) → thousandths. */
static void on_ratio(struct config_pctx *p, const struct config_field *f,
                     const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    if (!want_scalar(p, f, val))
        return;
    const char *t = val->text;
    uint64_t whole = 0, frac = 0;
    unsigned digits = 0, fdigits = 0;
    bool ok = true;
    for (; *t >= '0' && *t <= '9'; t++, digits++)
        whole = whole * 10 + (uint64_t)(*t - '0');
    if (*t == '.') {
        for (t++; *t >= '0' && *t <= '9'; t++, fdigits++)
            if (fdigits < 3)
                frac = frac * 10 + (uint64_t)(*t - '0');
        ok = fdigits > 0 && fdigits <= 3;
    }
    while (fdigits < 3) {
        frac *= 10;
        fdigits++;
    }
    uint64_t milli = whole * 1000 + frac;
    if (!ok || *t || digits == 0 || digits > 4 || milli == 0 || milli > 1000000)
        bad_value(p, f, val);
    else
        *AT(base, f->off, uint32_t) = (uint32_t)milli;
}

static void on_guard_action(struct config_pctx *p, const struct config_field *f,
                            const struct config_node *key, const struct config_node *val,
                            void *base)
{
    (void)key;
    enum config_guard_action *a = AT(base, f->off, enum config_guard_action);
    if (!want_scalar(p, f, val))
        return;
    if (strcmp(val->text, "rollback") == 0)
        *a = GUARD_A_ROLLBACK;
    else if (strcmp(val->text, "pause") == 0)
        *a = GUARD_A_PAUSE;
    else
        bad_value(p, f, val);
}

static void on_guard_baseline(struct config_pctx *p, const struct config_field *f,
                              const struct config_node *key, const struct config_node *val,
                              void *base)
{
    (void)key;
    struct config_guard *g = base;
    if (!want_scalar(p, f, val))
        return;
    g->baseline_pos = val->pos;
    set_str(base, f->off, val->text);
}

static void on_rollout_version(struct config_pctx *p, const struct config_field *f,
                               const struct config_node *key, const struct config_node *val,
                               void *base)
{
    (void)key;
    struct config_rollout *r = base;
    if (!want_scalar(p, f, val))
        return;
    r->version_pos = val->pos;
    set_str(base, f->off, val->text);
}

static void on_rollout_steps(struct config_pctx *p, const struct config_field *f,
                             const struct config_node *key, const struct config_node *val,
                             void *base)
{
    struct config_rollout *r = base;
    r->steps_pos = key->pos;
    if (!want_seq(p, f->name, val))
        return;
    free(r->steps_bp);
    r->steps_bp = xcalloc(val->n ? val->n : 1, sizeof(uint32_t));
    r->n_steps = 0;
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        uint32_t bp;
        struct config_qbuf q;
        if (it->kind == CN_BAD) {
            p->rep.taint++;
        } else if (it->kind != CN_SCALAR || parse_percent_text(it->text, &bp) < 0) {
            perr(p, it->pos, "rollout step must be a percentage 0..100 with at most two "
                             "decimals, not %s",
                 describe(&q, it));
        } else {
            r->steps_bp[r->n_steps++] = bp;
        }
    }
}

/* clang-format off */
static const struct config_type guard_errors_type = {
    sizeof(struct config_guard),
    (const struct config_field[]){
        {.name = "max_increase", .type = F_FN, .fn = on_percent, .store = CS_U32,
         .min = 0, .max = 10000, .def = 100, .off = GRD(max_increase_bp),
         .what = "a percentage like 1%"},
        {.name = NULL},
    },
};
/* clang-format on */

/* clang-format off */
static const struct config_type guard_latency_type = {
    sizeof(struct config_guard),
    (const struct config_field[]){
        {.name = "quantile", .type = F_FN, .fn = on_quantile, .store = CS_U32, .def = 9900,
         .off = GRD(quantile_bp), .what = "a quantile like p99 or p99.9"},
        {.name = "max_ratio", .type = F_FN, .fn = on_ratio, .store = CS_U32, .def = 1500,
         .off = GRD(max_ratio_milli), .what = "a ratio like 1.5"},
        {.name = "floor", .type = F_DUR, .min = 0, .def = 5, .off = GRD(floor_ms)},
        {.name = NULL},
    },
};
/* clang-format on */

/* clang-format off */
static const struct config_type guard_type = {
    sizeof(struct config_guard),
    (const struct config_field[]){
        {.name = "baseline", .type = F_FN, .fn = on_guard_baseline, .store = CS_STR,
         .off = GRD(baseline), .what = "a version name"},
        {.name = "window", .type = F_DUR, .min = 2000, .def = 30000, .off = GRD(window_ms)},
        {.name = "min_requests", .type = F_UINT, .min = 1, .max = 100000000, .def = 100,
         .off = GRD(min_requests)},
        {.name = "errors", .type = F_MAP, .sub = &guard_errors_type},
        {.name = "latency", .type = F_MAP, .sub = &guard_latency_type},
        {.name = "false_alarm", .type = F_FN, .fn = on_percent, .store = CS_U32, .min = 1,
         .max = 5000, .def = 100, .off = GRD(false_alarm_bp),
         .what = "a percentage from 0.01% to 50%"},
        {.name = "action", .type = F_FN, .fn = on_guard_action, .store = CS_ENUM,
         .def = GUARD_A_ROLLBACK, .off = GRD(action), .what = "rollback or pause"},
        {.name = NULL},
    },
};
/* clang-format on */

/* clang-format off */
static const struct config_type rollout_type = {
    sizeof(struct config_rollout),
    (const struct config_field[]){
        {.name = "version", .type = F_FN, .fn = on_rollout_version, .store = CS_STR,
         .required = true, .off = RLT(version), .what = "a version name"},
        {.name = "steps", .type = F_FN, .fn = on_rollout_steps, .store = CS_U32V,
         .required = true, .off = RLT(steps_bp), .off_n = RLT(n_steps)},
        {.name = "hold", .type = F_DUR, .min = 1, .def = 120000, .off = RLT(hold_ms)},
        {.name = NULL},
    },
};
/* clang-format on */

static void on_guard(struct config_pctx *p, const struct config_field *f,
                     const struct config_node *key, const struct config_node *val, void *base)
{
    struct config_guard *g = AT(base, f->off, struct config_guard);
    if (!want_map(p, f->name, val))
        return;
    g->enabled = true;
    g->pos = key->pos;
    parse_map(p, val, f->sub->rows, g, NULL);
}

static void on_rollout(struct config_pctx *p, const struct config_field *f,
                       const struct config_node *key, const struct config_node *val, void *base)
{
    struct config_rollout *r = AT(base, f->off, struct config_rollout);
    if (!want_map(p, f->name, val))
        return;
    r->enabled = true;
    r->pos = key->pos;
    parse_map(p, val, f->sub->rows, r, NULL);
}

/* ---- fleet: ------------------------------------------------------------- */

#define FLT(member) offsetof(struct config_fleet, member)

/* host:port with a port 1..65535 and a host that is an IP or a DNS name. */
static bool is_peer(const char *s)
{
    struct sockaddr_storage sa;
    socklen_t len;
    const char *why;
    if (util_parse_addr(s, &sa, &len, &why) == 0)
        return ((struct sockaddr_in *)&sa)->sin_port != 0;
    const char *colon = strrchr(s, ':');
    uint32_t port = 0;
    return colon && is_hostname(s, (size_t)(colon - s)) &&
           parse_uint(colon + 1, 65535, &port) == 0 && port > 0;
}

/* `peers`: one DNS name:port (re-resolved, every address a peer) or a list
 * of host:port. */
static void on_fleet_peers(struct config_pctx *p, const struct config_field *f,
                           const struct config_node *key, const struct config_node *val,
                           void *base)
{
    struct config_fleet *fl = base;
    struct config_qbuf q;
    fl->peers_pos = key->pos;
    if (val->kind == CN_SCALAR) {
        if (!is_peer(val->text)) {
            perr(p, val->pos, "invalid fleet peer %s: expected host:port", quote(&q, val->text));
            return;
        }
        fl->peers = xcalloc(1, sizeof(char *));
        fl->peers[0] = xstrdup(val->text);
        fl->n_peers = 1;
        struct sockaddr_storage sa;
        socklen_t len;
        const char *why;
        fl->peers_dns = util_parse_addr(val->text, &sa, &len, &why) < 0;
        return;
    }
    if (!want_seq(p, f->name, val))
        return;
    if (val->n > 64) {
        perr(p, val->pos, "too many fleet peers (at most 64)");
        return;
    }
    fl->peers = xcalloc(val->n ? val->n : 1, sizeof(char *));
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        if (it->kind == CN_BAD) {
            p->rep.taint++;
        } else if (it->kind != CN_SCALAR) {
            perr(p, it->pos, "fleet peer must be host:port, not %s", describe(&q, it));
        } else if (!is_peer(it->text)) {
            perr(p, it->pos, "invalid fleet peer %s: expected host:port", quote(&q, it->text));
        } else {
            fl->peers[fl->n_peers++] = xstrdup(it->text);
        }
    }
}

static const struct config_type fleet_type = {
    sizeof(struct config_fleet),
    (const struct config_field[]){
        {.name = "peers", .type = F_FN, .fn = on_fleet_peers, .store = CS_STRV, .off = FLT(peers), .off_n = FLT(n_peers), .what = "a DNS name:port or a list of host:port"},
        {.name = "key_file", .type = F_PATH, .restart = true, .off = FLT(key_file)},
        {.name = "interval", .type = F_DUR, .min = 50, .def = 250, .restart = true, .off = FLT(interval_ms)},
        {.name = NULL},
    },
};

/* ---- mirror: ------------------------------------------------------------ */

#define MIR(member) offsetof(struct config_mirror, member)
#define MIRROR_BODY_MAX (16u * 1024u * 1024u)

static void strv_free(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

static void strv_set(char ***v, size_t *n, const char *const *items, size_t n_items)
{
    strv_free(v, n);
    *v = xcalloc(n_items ? n_items : 1, sizeof(char *));
    for (size_t i = 0; i < n_items; i++)
        (*v)[i] = xstrdup(items[i]);
    *n = n_items;
}

void config_mirror_set_defaults(struct config_mirror *m)
{
    static const char *const methods[] = {"GET", "HEAD"};
    static const char *const headers[] = {"content-type"};
    strv_set(&m->methods, &m->n_methods, methods, ARRAY_LEN(methods));
    strv_set(&m->compare_headers, &m->n_compare_headers, headers, ARRAY_LEN(headers));
}

/* "64KiB", "1MiB", "512", "8k" → bytes (binary multiples), 0..16 MiB. */
static int parse_size_text(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    const char *t = s;
    for (; *t >= '0' && *t <= '9'; t++) {
        v = v * 10 + (uint64_t)(*t - '0');
        if (v > MIRROR_BODY_MAX)
            return -1;
    }
    if (t == s)
        return -1;
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1}, {"B", 1}, {"k", 1024}, {"K", 1024}, {"KB", 1024}, {"KiB", 1024}, {"m", 1u << 20}, {"M", 1u << 20}, {"MB", 1u << 20}, {"MiB", 1u << 20}};
    for (size_t i = 0; i < ARRAY_LEN(units); i++) {
        if (strcmp(t, units[i].suffix) != 0)
            continue;
        v *= units[i].mult;
        if (v > MIRROR_BODY_MAX)
            return -1;
        *out = (uint32_t)v;
        return 0;
    }
    return -1;
}

static void on_size(struct config_pctx *p, const struct config_field *f,
                    const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    uint32_t u;
    if (!want_scalar(p, f, val))
        return;
    if (parse_size_text(val->text, &u) < 0)
        bad_value(p, f, val);
    else
        *AT(base, f->off, uint32_t) = u;
}

static void on_mirror_version(struct config_pctx *p, const struct config_field *f,
                              const struct config_node *key, const struct config_node *val,
                              void *base)
{
    (void)key;
    struct config_mirror *m = base;
    if (!want_scalar(p, f, val))
        return;
    m->version_pos = val->pos;
    set_str(base, f->off, val->text);
}

/* A list of tokens (methods, header names) into the CS_STRV at f->off. */
static void on_token_list(struct config_pctx *p, const struct config_field *f,
                          const struct config_node *key, const struct config_node *val,
                          void *base)
{
    char ***v = AT(base, f->off, char **);
    size_t *n = AT(base, f->off_n, size_t);
    if (f->off == MIR(methods))
        ((struct config_mirror *)base)->methods_pos = key->pos;
    if (!want_seq(p, f->name, val))
        return;
    strv_free(v, n);
    *v = xcalloc(val->n ? val->n : 1, sizeof(char *));
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        struct config_qbuf q;
        if (it->kind == CN_BAD)
            p->rep.taint++;
        else if (it->kind != CN_SCALAR || !config_is_token(it->text) || strlen(it->text) > 64)
            perr(p, it->pos, "\"%s\" must list %s, not %s", f->name, f->what,
                 describe(&q, it));
        else
            (*v)[(*n)++] = xstrdup(it->text);
    }
}

static const struct config_type mirror_compare_type = {
    sizeof(struct config_mirror),
    (const struct config_field[]){
        {.name = "status", .type = F_BOOL, .def = true, .off = MIR(compare_status)},
        {.name = "headers", .type = F_FN, .fn = on_token_list, .store = CS_STRV, .off = MIR(compare_headers), .off_n = MIR(n_compare_headers), .what = "header names"},
        {.name = "body", .type = F_BOOL, .def = true, .off = MIR(compare_body)},
        {.name = NULL},
    },
};

static void on_fleet(struct config_pctx *p, const struct config_field *f,
                     const struct config_node *key, const struct config_node *val, void *base)
{
    struct config_fleet *fl = AT(base, f->off, struct config_fleet);
    if (!want_map(p, f->name, val))
        return;
    fl->enabled = true;
    fl->pos = key->pos;
    unsigned t0 = p->rep.taint;
    parse_map(p, val, f->sub->rows, fl, NULL);
    if (p->rep.taint == t0 && fl->n_peers && !fl->key_file)
        perr(p, key->pos, "fleet: \"key_file\" is required when \"peers\" is set "
                          "(the replicas' shared key)");
}

static const struct config_type mirror_type = {
    sizeof(struct config_mirror),
    (const struct config_field[]){
        {.name = "version", .type = F_FN, .fn = on_mirror_version, .store = CS_STR, .required = true, .off = MIR(version), .what = "a version name"},
        {.name = "percent", .type = F_FN, .fn = on_percent, .store = CS_U32, .min = 0, .max = 10000, .def = 10000, .off = MIR(percent_bp), .what = "a percentage 0..100 with at most two decimals"},
        {.name = "methods", .type = F_FN, .fn = on_token_list, .store = CS_STRV, .off = MIR(methods), .off_n = MIR(n_methods), .what = "request methods"},
        {.name = "max_body", .type = F_FN, .fn = on_size, .store = CS_U32, .def = 65536, .off = MIR(max_body_bytes), .what = "a size like 64KiB (at most 16MiB)"},
        {.name = "max_inflight", .type = F_UINT, .min = 1, .max = 100000, .def = 256, .off = MIR(max_inflight)},
        {.name = "timeout", .type = F_DUR, .min = 1, .def = 2000, .off = MIR(timeout_ms)},
        {.name = "compare", .type = F_MAP, .sub = &mirror_compare_type},
        {.name = NULL},
    },
};

static void on_mirror(struct config_pctx *p, const struct config_field *f,
                      const struct config_node *key, const struct config_node *val, void *base)
{
    struct config_mirror *m = AT(base, f->off, struct config_mirror);
    if (!want_map(p, f->name, val))
        return;
    m->enabled = true;
    m->pos = key->pos;
    config_mirror_set_defaults(m);
    parse_map(p, val, f->sub->rows, m, NULL);
}

static void on_workers(struct config_pctx *p, const struct config_field *f,
                       const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    uint32_t u;
    if (!want_scalar(p, f, val))
        return;
    if (strcmp(val->text, "auto") == 0)
        *AT(base, f->off, uint32_t) = 0;
    else if (parse_uint(val->text, 64, &u) == 0)
        *AT(base, f->off, uint32_t) = u;
    else
        bad_value(p, f, val);
}

/* ---- listen and TLS ----------------------------------------------------- */

/* A server name of a certificate: a host name, or "*." and one. */
static bool is_server_name(const char *s)
{
    if (s[0] == '*' && s[1] == '.')
        s += 2;
    return is_hostname(s, strlen(s));
}

static void on_server_names(struct config_pctx *p, const struct config_field *f,
                            const struct config_node *key, const struct config_node *val,
                            void *base)
{
    (void)key;
    char ***v = AT(base, f->off, char **);
    size_t *n = AT(base, f->off_n, size_t);
    if (val->kind == CN_SCALAR) {
        /* one name, as a scalar */
    } else if (!want_seq(p, f->name, val)) {
        return;
    }
    strv_free(v, n);
    size_t cnt = val->kind == CN_SCALAR ? 1 : val->n;
    *v = xcalloc(cnt ? cnt : 1, sizeof(char *));
    for (size_t i = 0; i < cnt; i++) {
        const struct config_node *it = val->kind == CN_SCALAR ? val : val->kids[i];
        struct config_qbuf q;
        if (it->kind == CN_BAD) {
            p->rep.taint++;
        } else if (it->kind != CN_SCALAR || !is_server_name(it->text)) {
            perr(p, it->pos, "\"%s\" must list %s, not %s", f->name, f->what,
                 describe(&q, it));
        } else {
            char *name = xstrdup(it->text);
            for (char *c = name; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            (*v)[(*n)++] = name;
        }
    }
    if (*n == 0 && cnt == 0)
        perr(p, val->pos, "\"%s\" must list at least one server name", f->name);
}

#define TC(member) offsetof(struct config_tls_cert, member)

/* clang-format off */
static const struct config_type tls_cert_type = {
    sizeof(struct config_tls_cert),
    (const struct config_field[]){
        {.name = "names", .type = F_FN, .fn = on_server_names, .store = CS_STRV,
         .required = true, .off = TC(names), .off_n = TC(n_names),
         .what = "server names (host names, \"*.\" wildcards)"},
        {.name = "cert", .type = F_PATH, .required = true, .off = TC(cert)},
        {.name = "key", .type = F_PATH, .required = true, .off = TC(key)},
        {.name = NULL},
    },
};
/* clang-format on */

static void on_sni(struct config_pctx *p, const struct config_field *f,
                   const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config_listen_tls *t = base;
    if (!want_seq(p, f->name, val))
        return;
    for (size_t i = 0; i < t->n_sni; i++)
        config_fields_dispose(f->sub, &t->sni[i]);
    free(t->sni);
    t->sni = xcalloc(val->n ? val->n : 1, sizeof(*t->sni));
    t->n_sni = 0;
    for (size_t i = 0; i < val->n; i++) {
        const struct config_node *it = val->kids[i];
        struct config_qbuf q;
        if (it->kind == CN_BAD) {
            p->rep.taint++;
            continue;
        }
        if (it->kind != CN_MAP) {
            perr(p, it->pos, "an sni entry must be a mapping with names, cert and key, not %s",
                 describe(&q, it));
            continue;
        }
        struct config_tls_cert *c = &t->sni[t->n_sni++];
        memset(c, 0, sizeof(*c));
        config_fields_init(f->sub, c);
        c->pos = it->pos;
        parse_map(p, it, f->sub->rows, c, NULL);
    }
}

#define LTLS(member) offsetof(struct config_listen_tls, member)

/* clang-format off */
static const struct config_type listen_tls_type = {
    sizeof(struct config_listen_tls),
    (const struct config_field[]){
        {.name = "cert", .type = F_PATH, .required = true, .off = LTLS(cert)},
        {.name = "key", .type = F_PATH, .required = true, .off = LTLS(key)},
        {.name = "sni", .type = F_FN, .fn = on_sni, .store = CS_ARRAY, .off = LTLS(sni),
         .off_n = LTLS(n_sni), .sub = &tls_cert_type},
        {.name = "ocsp", .type = F_PATH, .off = LTLS(ocsp)},
        {.name = NULL},
    },
};
/* clang-format on */

static void on_listen_tls(struct config_pctx *p, const struct config_field *f,
                          const struct config_node *key, const struct config_node *val,
                          void *base)
{
    struct config_listen_tls *t = AT(base, f->off, struct config_listen_tls);
    if (!want_map(p, f->name, val))
        return;
    t->enabled = true;
    t->pos = key->pos;
    parse_map(p, val, f->sub->rows, t, NULL);
}

#define LST(member) offsetof(struct config_listener, member)

/* clang-format off */
static const struct config_type listener_type = {
    sizeof(struct config_listener),
    (const struct config_field[]){
        {.name = "address", .type = F_ADDR, .required = true, .off = LST(address),
         .off_sa = LST(sa), .off_salen = LST(sa_len)},
        {.name = "tls", .type = F_FN, .fn = on_listen_tls, .store = CS_SUB, .off = LST(tls),
         .sub = &listen_tls_type},
        {.name = NULL},
    },
};
/* clang-format on */

/* Two listeners on one address (port 0 excepted: each gets its own). */
static bool same_addr(const struct config_listener *a, const struct config_listener *b)
{
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->sa;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->sa;
    unsigned port = a->sa.ss_family == AF_INET6 ? in6->sin6_port : in4->sin_port;
    return a->sa_len == b->sa_len && memcmp(&a->sa, &b->sa, a->sa_len) == 0 && port != 0;
}

/*
 * `listen`: one address (a string), or a list of addresses and
 * {address, tls} mappings. cfg->listeners gets them all; cfg->listen the
 * addresses joined (", ", " tls" after a TLS one: the restart-only part)
 * and listen_sa the first one.
 */
static void on_listen(struct config_pctx *p, const struct config_field *f,
                      const struct config_node *key, const struct config_node *val, void *base)
{
    (void)key;
    struct config *cfg = base;
    struct config_qbuf q;
    const struct config_type *lt = &listener_type;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        config_fields_dispose(lt, &cfg->listeners[i]);
    free(cfg->listeners);
    cfg->listeners = NULL;
    cfg->n_listeners = 0;
    if (val->kind != CN_SCALAR && val->kind != CN_SEQ) {
        perr(p, val->pos, "\"%s\" must be host:port or a list of them (with tls), not %s",
             f->name, describe(&q, val));
        return;
    }
    size_t cnt = val->kind == CN_SCALAR ? 1 : val->n;
    if (cnt == 0) {
        perr(p, val->pos, "\"%s\" must list at least one address", f->name);
        return;
    }
    if (cnt > CONFIG_MAX_LISTENERS) {
        perr(p, val->pos, "too many listeners (at most %d)", CONFIG_MAX_LISTENERS);
        return;
    }
    cfg->listeners = xcalloc(cnt, sizeof(*cfg->listeners));
    unsigned t0 = p->rep.taint;
    for (size_t i = 0; i < cnt; i++) {
        const struct config_node *it = val->kind == CN_SCALAR ? val : val->kids[i];
        struct config_listener *ls = &cfg->listeners[cfg->n_listeners];
        memset(ls, 0, sizeof(*ls));
        config_fields_init(lt, ls);
        ls->pos = it->pos;
        unsigned t1 = p->rep.taint;
        if (it->kind == CN_SCALAR) {
            const char *why = NULL;
            if (util_parse_addr(it->text, &ls->sa, &ls->sa_len, &why) < 0)
                perr(p, it->pos, "invalid \"%s\" address %s: %s", f->name, quote(&q, it->text),
                     why);
            else
                ls->address = xstrdup(it->text);
        } else if (it->kind == CN_MAP) {
            parse_map(p, it, lt->rows, ls, NULL);
        } else if (it->kind == CN_BAD) {
            p->rep.taint++;
        } else {
            perr(p, it->pos, "a listener must be host:port or a mapping with \"address\" "
                             "(and \"tls\"), not %s",
                 describe(&q, it));
        }
        if (p->rep.taint != t1 || !ls->address) {
            config_fields_dispose(lt, ls);
            continue;
        }
        for (size_t j = 0; j < cfg->n_listeners; j++)
            if (same_addr(&cfg->listeners[j], ls)) {
                perr(p, it->pos, "listener %s is listed twice", quote(&q, ls->address));
                break;
            }
        if (p->rep.taint != t1) {
            config_fields_dispose(lt, ls);
            continue;
        }
        cfg->n_listeners++;
    }
    if (p->rep.taint != t0 || cfg->n_listeners == 0)
        return;
    char joined[2048] = "";
    for (size_t i = 0; i < cfg->n_listeners; i++)
        util_append(joined, sizeof(joined), ", ", "%s%s", cfg->listeners[i].address,
                    cfg->listeners[i].tls.enabled ? " tls" : "");
    set_str(cfg, f->off, joined);
    memcpy(&cfg->listen_sa, &cfg->listeners[0].sa, sizeof(cfg->listen_sa));
    cfg->listen_sa_len = cfg->listeners[0].sa_len;
}

#define UTLS(member) offsetof(struct config_upstream_tls, member)

/* clang-format off */
static const struct config_type upstream_tls_type = {
    sizeof(struct config_upstream_tls),
    (const struct config_field[]){
        {.name = "ca", .type = F_PATH, .off = UTLS(ca)},
        {.name = "sni", .type = F_FN, .fn = on_upstream_sni, .store = CS_STR, .off = UTLS(sni),
         .what = "a host name"},
        {.name = "verify", .type = F_BOOL, .def = true, .off = UTLS(verify)},
        {.name = NULL},
    },
};
/* clang-format on */

/* ---- the top level ----------------------------------------------------- */

#define CFG(member) offsetof(struct config, member)

/*
 * The tables, one row per key. A new key: its member in struct config
 * (config.h), one row here, its documentation in conf/weir.yaml (the unit
 * test compares the two). Defaults, copy, free and the restart list follow
 * from the row (config.c). Keep each table's order: it is the order of
 * "expected one of" in messages and of the restart list.
 */
/* clang-format off */
static const struct config_type timeout_type = {
    sizeof(struct config),
    (const struct config_field[]){
        {.name = "client_header", .type = F_DUR, .min = 1, .def = 10000,
         .off = CFG(client_header_timeout_ms)},
        {.name = "client_idle", .type = F_DUR, .min = 1, .def = 60000,
         .off = CFG(client_idle_timeout_ms)},
        {.name = "client_body", .type = F_DUR, .min = 1, .def = 60000,
         .off = CFG(client_body_timeout_ms)},
        {.name = "upstream_connect", .type = F_DUR, .min = 1, .def = 2000,
         .off = CFG(upstream_connect_timeout_ms)},
        {.name = "upstream_response", .type = F_DUR, .min = 1, .def = 30000,
         .off = CFG(upstream_response_timeout_ms)},
        {.name = "upstream_idle", .type = F_DUR, .min = 1, .def = 30000,
         .off = CFG(upstream_idle_timeout_ms)},
        {.name = "drain", .type = F_DUR, .min = 0, .def = 10000, .off = CFG(drain_timeout_ms)},
        {.name = "tls_handshake", .type = F_DUR, .min = 1, .def = 10000,
         .off = CFG(tls_handshake_timeout_ms)},
        {.name = NULL},
    },
};
/* clang-format on */

/* clang-format off */
static const struct config_type limit_type = {
    sizeof(struct config),
    (const struct config_field[]){
        {.name = "max_connections", .type = F_UINT, .min = 1, .max = 10000000, .def = 10000,
         .off = CFG(max_connections)},
        {.name = "max_header_bytes", .type = F_UINT, .min = 1024, .max = 1048576, .def = 16384,
         .off = CFG(max_header_bytes)},
        {.name = "max_header_count", .type = F_UINT, .min = 1, .max = 1000, .def = 100,
         .off = CFG(max_header_count)},
        {.name = "h2_max_concurrent_streams", .type = F_UINT, .min = 1, .max = 10000,
         .def = 100, .off = CFG(h2_max_concurrent_streams)},
        {.name = "upstream_idle_per_endpoint", .type = F_UINT, .min = 0, .max = 100000,
         .def = 256, .off = CFG(max_idle_upstream)},
        {.name = "listen_backlog", .type = F_UINT, .min = 1, .max = 65535, .def = 4096,
         .restart = true, .off = CFG(listen_backlog)},
        {.name = NULL},
    },
};
/* clang-format on */

/* clang-format off */
static const struct config_type errlog_type = {
    sizeof(struct config),
    (const struct config_field[]){
        {.name = "format", .type = F_FN, .fn = on_errlog_format, .store = CS_ENUM,
         .def = ERRLOG_F_TEXT, .off = CFG(log_format), .what = "text or json"},
        {.name = "level", .type = F_FN, .fn = on_errlog_level, .store = CS_U32, .def = 1,
         .off = CFG(log_level), .what = "debug, info, warn or error"},
        {.name = NULL},
    },
};

const struct config_type config_type_top = {
    sizeof(struct config),
    (const struct config_field[]){
        {.name = "listen", .type = F_FN, .fn = on_listen, .store = CS_ADDR, .required = true,
         .restart = true, .off = CFG(listen), .off_sa = CFG(listen_sa),
         .off_salen = CFG(listen_sa_len), .sub = &listener_type,
         .what = "host:port or a list of listeners"},
        {.name = "control", .type = F_SOCKPATH, .restart = true,
         .def_str = "/run/weir/weir.sock", .off = CFG(control)},
        {.name = "control_mode", .type = F_MODE, .restart = true, .def = 0600,
         .off = CFG(control_mode)},
        {.name = "control_owner", .type = F_ID, .restart = true, .what = "a user name or uid",
         .off = CFG(control_owner)},
        {.name = "control_group", .type = F_ID, .restart = true, .what = "a group name or gid",
         .off = CFG(control_group)},
        /* default: control + ".state", filled in by config_parse() */
        {.name = "state", .type = F_PATH, .restart = true, .off = CFG(state)},
        {.name = "admin", .type = F_ADDR, .restart = true, .off = CFG(admin),
         .off_sa = CFG(admin_sa), .off_salen = CFG(admin_sa_len)},
        {.name = "watch", .type = F_BOOL, .def = true, .off = CFG(watch)},
        {.name = "version_header", .type = F_TOKEN, .off = CFG(version_header)},
        {.name = "workers", .type = F_FN, .fn = on_workers, .store = CS_U32, .restart = true,
         .off = CFG(workers), .what = "an integer 0..64 or \"auto\""},
        {.name = "retries", .type = F_UINT, .min = 0, .max = 10, .def = 1, .off = CFG(retries)},
        {.name = "timeouts", .type = F_MAP, .sub = &timeout_type},
        {.name = "limits", .type = F_MAP, .sub = &limit_type},
        {.name = "versions", .type = F_FN, .required = true, .fn = on_versions,
         .store = CS_ARRAY, .named = true, .off = CFG(versions), .off_n = CFG(n_versions),
         .sub = &config_type_version},
        {.name = "split", .type = F_FN, .required = true, .fn = on_split, .store = CS_U32V,
         .named = true, .off = CFG(split_bp), .off_n = CFG(n_versions)},
        {.name = "sticky", .type = F_FN, .fn = on_sticky, .store = CS_SUB, .off = CFG(sticky),
         .sub = &sticky_type},
        {.name = "rules", .type = F_FN, .fn = on_rules, .store = CS_ARRAY, .off = CFG(rules),
         .off_n = CFG(n_rules), .sub = &rule_type},
        {.name = "resolvers", .type = F_FN, .fn = on_resolvers, .store = CS_STRV,
         .off = CFG(resolvers), .off_n = CFG(n_resolvers)},
        {.name = "access_log", .type = F_FN, .fn = on_access_log, .store = CS_SUB,
         .off = CFG(access_log), .sub = &access_log_type, .what = "a mapping or true/false"},
        {.name = "log", .type = F_MAP, .sub = &errlog_type},
        {.name = "guard", .type = F_FN, .fn = on_guard, .store = CS_SUB, .off = CFG(guard),
         .sub = &guard_type},
        {.name = "rollout", .type = F_FN, .fn = on_rollout, .store = CS_SUB,
         .off = CFG(rollout), .sub = &rollout_type},
        {.name = "fleet", .type = F_FN, .fn = on_fleet, .store = CS_SUB, .off = CFG(fleet),
         .sub = &fleet_type},
        {.name = "mirror", .type = F_FN, .fn = on_mirror, .store = CS_SUB, .off = CFG(mirror),
         .sub = &mirror_type},
        {.name = "path", .type = F_DATA, .store = CS_STR, .off = CFG(path)}, /* the file */
        /* all of `listen` (on_listen) */
        {.name = "listeners", .type = F_DATA, .store = CS_ARRAY, .off = CFG(listeners),
         .off_n = CFG(n_listeners), .sub = &listener_type},
        {.name = NULL},
    },
};
/* clang-format on */

struct config *config_parse(const char *file, const char *text, size_t len,
                            struct config_errors *errs, struct config_skip *skip)
{
    struct config_pctx p;
    memset(&p, 0, sizeof(p));
    p.rep.errs = errs;
    p.rep.errs_start = errs->n;
    p.skip = skip;
    bool failed = false;
    struct config_node *root = config_yaml_read(&p.rep, text, len, &failed);
    if (failed)
        return NULL;
    struct config_qbuf q;
    if (root && root->kind == CN_BAD) {
        config_yaml_free(root); /* an alias: reported */
        return NULL;
    }
    if (!root || root->kind == CN_NULL) {
        perr(&p, (struct config_pos){0, 0},
             "empty config (it needs at least listen, versions and split)");
        config_yaml_free(root);
        return NULL;
    }
    if (root->kind != CN_MAP) {
        perr(&p, root->pos, "the config must be a mapping of keys, not %s",
             describe(&q, root));
        config_yaml_free(root);
        return NULL;
    }
    struct config *cfg = config_new_default(file);
    p.cfg = cfg;
    struct seen top;
    parse_map(&p, root, config_type_top.rows, cfg, &top);
    /* Where the values start-up opens or looks up are, for weir -t
     * (config_check.c). */
    for (size_t i = 0; config_type_top.rows[i].name; i++) {
        const char *name = config_type_top.rows[i].name;
        struct config_pos *at = strcmp(name, "control") == 0         ? &cfg->control_pos
                                : strcmp(name, "control_owner") == 0 ? &cfg->control_owner_pos
                                : strcmp(name, "control_group") == 0 ? &cfg->control_group_pos
                                                                     : NULL;
        if (at && top.val[i])
            *at = top.val[i]->pos;
    }
    if (!p.versions_seen)
        skip->all_names = true; /* `versions` missing or not a mapping: reported */
    resolve_split(&p);
    if (cfg->fleet.n_peers && !cfg->admin)
        perr(&p, cfg->fleet.pos, "fleet: peers talk to each other's admin listener; set "
                                 "\"admin\" too");
    if (!cfg->state) {
        size_t n = strlen(cfg->control) + sizeof(".state");
        cfg->state = xmalloc(n);
        snprintf(cfg->state, n, "%s.state", cfg->control);
    }
    free(p.split);
    config_yaml_free(root);
    return cfg;
}
