/*
 * runtime_map.c — the codec between a config and its state map (the
 * tracked keys of state.h): the canonical text of the split, the rules,
 * each endpoint's weight and each drain; applying a key's value back to a
 * config; the diff of two maps and its human description. Pure functions
 * over a config and maps: no file, no publishing, no history (runtime.c's).
 * Main thread (like everything that edits configs).
 */
#include "runtime_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "config_edit.h"

static const char rule_kinds[] = {
    [RULE_M_HEADER_VALUE] = 'h',
    [RULE_M_HEADER_PRESENT] = 'p',
    [RULE_M_COOKIE_VALUE] = 'c',
};

static void rules_canon(const struct config *cfg, struct json_buf *b)
{
    json_buf_printf(b, "%zu;", cfg->n_rules);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct config_rule *r = &cfg->rules[i];
        const char *parts[3] = {r->name ? r->name : "", r->value ? r->value : "",
                                r->version ? r->version : ""};
        if (i > 0)
            json_buf_puts(b, ";");
        json_buf_printf(b, "%c", rule_kinds[r->match]);
        for (size_t k = 0; k < 3; k++) {
            char *e = state_escape(parts[k], ",;");
            json_buf_printf(b, ",%s", e);
            free(e);
        }
    }
}

/*
 * The split's canonical value lists only versions with a share, in config
 * order: adding a version at 0 % to the file is not a change of the split,
 * so it does not override a runtime split.
 */
static void split_canon(const struct config *cfg, char *buf, size_t buflen)
{
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_versions; i++) {
        uint32_t bp = cfg->split_bp ? cfg->split_bp[i] : 0;
        if (bp == 0)
            continue;
        char pct[16];
        util_format_bp(bp, pct, sizeof(pct));
        util_append(buf, buflen, ",", "%s=%s", cfg->versions[i].name, pct);
    }
    if (!buf[0])
        snprintf(buf, buflen, "none");
}

/* The mirror's canonical value: "off", or "VERSION,PERCENT" ("v2,12.5"). */
static void mirror_canon(const struct config *cfg, char *buf, size_t buflen)
{
    const struct config_mirror *mc = &cfg->mirror;
    if (!mc->enabled || !mc->version) {
        snprintf(buf, buflen, "off");
        return;
    }
    char pct[16];
    util_format_bp(mc->percent_bp, pct, sizeof(pct));
    snprintf(buf, buflen, "%s,%s", mc->version, pct);
}

/* "off" or "VERSION,PERCENT" back into cfg's mirror (a mirror the file did
 * not configure gets the defaults of its other keys). */
static int apply_mirror(struct config *cfg, const char *value, char *err, size_t errlen)
{
    struct config_mirror *mc = &cfg->mirror;
    if (strcmp(value, "off") == 0) {
        mc->enabled = false;
        return 0;
    }
    const char *comma = strrchr(value, ',');
    uint32_t bp;
    if (!comma || comma == value || (size_t)(comma - value) > CONFIG_NAME_MAX ||
        util_parse_percent_bp(comma + 1, &bp) < 0) {
        snprintf(err, errlen, "malformed mirror \"%s\"", value);
        return -1;
    }
    free(mc->version);
    mc->version = xstrndup(value, (size_t)(comma - value));
    mc->percent_bp = bp;
    if (mc->n_methods == 0)
        config_mirror_set_defaults(mc);
    mc->enabled = true;
    return 0;
}

void runtime_map_from_config(const struct config *cfg, struct state_map *m)
{
    state_map_init(m);
    if (!cfg)
        return;
    char split[CONFIG_MAX_VERSIONS * (CONFIG_NAME_MAX + 10) + 1];
    split_canon(cfg, split, sizeof(split));
    state_map_set(m, "split", split, 0);
    char mirror[CONFIG_NAME_MAX + 24];
    mirror_canon(cfg, mirror, sizeof(mirror));
    state_map_set(m, "mirror", mirror, 0);
    struct json_buf b;
    json_buf_init(&b);
    rules_canon(cfg, &b);
    state_map_set(m, "rules", b.p, 0);
    for (size_t v = 0; v < cfg->n_versions; v++) {
        const struct config_version *cv = &cfg->versions[v];
        for (size_t i = 0; i < cv->n_endpoints; i++) {
            const struct config_endpoint *e = &cv->endpoints[i];
            char w[16];
            snprintf(w, sizeof(w), "%u", e->weight);
            json_buf_reset(&b);
            json_buf_printf(&b, "endpoint/%s/%s", cv->name, e->address);
            state_map_set(m, b.p, w, 0);
            if (e->draining) {
                json_buf_reset(&b);
                json_buf_printf(&b, "drain/%s/%s", cv->name, e->address);
                state_map_set(m, b.p, "1", 0);
            }
        }
    }
    json_buf_dispose(&b);
}

/* Order in which items apply: split, rules, endpoints, then drains. */
int runtime_map_key_order(const char *key)
{
    if (strcmp(key, "split") == 0)
        return 0;
    if (strcmp(key, "rules") == 0)
        return 1;
    if (strncmp(key, "endpoint/", 9) == 0)
        return 2;
    if (strncmp(key, "drain/", 6) == 0)
        return 3;
    if (strcmp(key, "mirror") == 0)
        return 4;
    return -1;
}

/* Split "endpoint/V/ADDR" after its prefix into version and address. */
static int split_ep_key(const char *rest, char *ver, size_t verlen,
                        const char **addr)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || (size_t)(slash - rest) >= verlen || !slash[1])
        return -1;
    memcpy(ver, rest, (size_t)(slash - rest));
    ver[slash - rest] = '\0';
    *addr = slash + 1;
    return 0;
}

static void rule_dispose(struct config_rule *r)
{
    free(r->name);
    free(r->value);
    free(r->version);
}

static int apply_split(struct config *cfg, const char *value, char *err,
                       size_t errlen)
{
    uint32_t bp[CONFIG_MAX_VERSIONS] = {0};
    char *copy = xstrdup(strcmp(value, "none") == 0 ? "" : value), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(t, '=');
        uint32_t v;
        if (!eq || util_parse_percent_bp(eq + 1, &v) < 0) {
            snprintf(err, errlen, "malformed split \"%s\"", value);
            rc = -1;
            break;
        }
        *eq = '\0';
        int vi = config_version_index(cfg, t);
        if (vi < 0) {
            if (v == 0)
                continue;
            snprintf(err, errlen, "version %s is no longer defined", t);
            rc = -1;
            break;
        }
        bp[vi] = v;
    }
    free(copy);
    if (rc == 0 && cfg->n_versions <= CONFIG_MAX_VERSIONS)
        config_edit_set_split(cfg, bp);
    return rc;
}

static int apply_rules(struct config *cfg, const char *value, char *err,
                       size_t errlen)
{
    char *copy = xstrdup(value), *save = NULL;
    char *count = strtok_r(copy, ";", &save);
    char *end;
    unsigned long n = count ? strtoul(count, &end, 10) : 0;
    if (!count || *end || n > CONFIG_MAX_RULES) {
        free(copy);
        snprintf(err, errlen, "malformed rules value");
        return -1;
    }
    struct config_rule *rules = xcalloc(n ? n : 1, sizeof(*rules));
    size_t got = 0;
    int rc = 0;
    for (char *t = strtok_r(NULL, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        char *f[4];
        size_t nf = 0;
        /* Empty fields (a presence rule's value) survive: walk by hand. */
        for (char *q = t; nf < 4; nf++) {
            f[nf] = q;
            char *c = strchr(q, ',');
            if (!c) {
                nf++;
                break;
            }
            *c = '\0';
            q = c + 1;
        }
        if (got >= n || nf != 4 || strlen(f[0]) != 1) {
            rc = -1;
            break;
        }
        struct config_rule *r = &rules[got];
        switch (f[0][0]) {
        case 'h': r->match = RULE_M_HEADER_VALUE; break;
        case 'p': r->match = RULE_M_HEADER_PRESENT; break;
        case 'c': r->match = RULE_M_COOKIE_VALUE; break;
        default: rc = -1;
        }
        if (rc < 0 || state_unescape(f[1]) < 0 || state_unescape(f[2]) < 0 ||
            state_unescape(f[3]) < 0) {
            rc = -1;
            break;
        }
        r->name = xstrdup(f[1]);
        r->value = r->match == RULE_M_HEADER_PRESENT ? NULL : xstrdup(f[2]);
        r->version = xstrdup(f[3]);
        got++;
    }
    free(copy);
    if (rc == 0 && got != n)
        rc = -1;
    if (rc < 0) {
        for (size_t i = 0; i < got; i++)
            rule_dispose(&rules[i]);
        free(rules);
        snprintf(err, errlen, "malformed rules value");
        return -1;
    }
    /* Rules that are the file's own keep their position (status, explain). */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < cfg->n_rules; k++) {
            const struct config_rule *o = &cfg->rules[k];
            if (o->match == rules[i].match && util_streq_null(o->name, rules[i].name) &&
                util_streq_null(o->value, rules[i].value) &&
                util_streq_null(o->version, rules[i].version)) {
                rules[i].pos = o->pos;
                rules[i].version_pos = o->version_pos;
                break;
            }
        }
    }
    for (size_t i = 0; i < cfg->n_rules; i++)
        rule_dispose(&cfg->rules[i]);
    free(cfg->rules);
    cfg->rules = rules;
    cfg->n_rules = n;
    return 0;
}

/* Apply one tracked key's value (STATE_ABSENT = remove) to cfg. */
int runtime_map_apply_item(struct config *cfg, const char *key, const char *value,
                           char *err, size_t errlen)
{
    int cat = runtime_map_key_order(key);
    bool absent = strcmp(value, STATE_ABSENT) == 0;
    if (cat == 0)
        return absent ? 0 : apply_split(cfg, value, err, errlen);
    if (cat == 1)
        return absent ? 0 : apply_rules(cfg, value, err, errlen);
    if (cat == 4)
        return absent ? 0 : apply_mirror(cfg, value, err, errlen);
    if (cat < 0) {
        snprintf(err, errlen, "unknown runtime setting \"%s\"", key);
        return -1;
    }
    char ver[CONFIG_NAME_MAX + 1];
    const char *addr;
    if (split_ep_key(key + (cat == 2 ? 9 : 6), ver, sizeof(ver), &addr) < 0) {
        snprintf(err, errlen, "malformed runtime setting \"%s\"", key);
        return -1;
    }
    int vi = config_version_index(cfg, ver);
    if (vi < 0) {
        if (absent)
            return 0;
        snprintf(err, errlen, "version %s is no longer defined", ver);
        return -1;
    }
    struct config_version *v = &cfg->versions[vi];
    int ei = config_edit_find_endpoint(v, addr);
    if (cat == 2) {
        if (absent) {
            if (ei >= 0)
                config_edit_remove_endpoint(v, (size_t)ei);
            return 0;
        }
        char *end;
        unsigned long w = strtoul(value, &end, 10);
        if (*end || w < 1 || w > 1000) {
            snprintf(err, errlen, "malformed weight \"%s\" for %s", value, key);
            return -1;
        }
        if (ei >= 0) {
            v->endpoints[ei].weight = (uint32_t)w;
            return 0;
        }
        return config_edit_add_endpoint(v, addr, (uint32_t)w, err, errlen);
    }
    if (ei < 0) {
        if (absent)
            return 0;
        snprintf(err, errlen, "endpoint %s of version %s is no longer defined",
                 addr, ver);
        return -1;
    }
    v->endpoints[ei].draining = !absent;
    return 0;
}

/* Items of `to` that differ from `from` (absent keys as STATE_ABSENT). */
void runtime_map_diff(const struct state_map *from, const struct state_map *to,
                      struct state_map *out)
{
    state_map_init(out);
    for (size_t i = 0; i < to->n; i++)
        if (strcmp(state_map_value(from, to->v[i].key), to->v[i].value) != 0)
            state_map_set(out, to->v[i].key, to->v[i].value, to->v[i].ts_ms);
    for (size_t i = 0; i < from->n; i++)
        if (!state_map_find(to, from->v[i].key))
            state_map_set(out, from->v[i].key, STATE_ABSENT, 0);
}

/* Apply all items of diff to cfg in category order. Stops at the first failure. */
int runtime_map_apply_all(struct config *cfg, const struct state_map *diff, char *err,
                          size_t errlen)
{
    for (int cat = 0; cat < RUNTIME_MAP_ORDERS; cat++)
        for (size_t i = 0; i < diff->n; i++)
            if (runtime_map_key_order(diff->v[i].key) == cat &&
                runtime_map_apply_item(cfg, diff->v[i].key, diff->v[i].value, err, errlen) < 0)
                return -1;
    return 0;
}

/* Human text of one key's change, for answers and logs. */
static void describe_item(const char *key, const char *from, const char *to,
                          char *buf, size_t buflen)
{
    int cat = runtime_map_key_order(key);
    bool from_abs = strcmp(from, STATE_ABSENT) == 0;
    bool to_abs = strcmp(to, STATE_ABSENT) == 0;
    if (cat == 0) {
        util_append(buf, buflen, "; ", "split %s -> %s", from, to);
        return;
    }
    if (cat == 4) {
        util_append(buf, buflen, "; ", "mirror %s -> %s", from, to);
        return;
    }
    if (cat == 1) {
        util_append(buf, buflen, "; ", "rules: %lu -> %lu",
                    from_abs ? 0ul : strtoul(from, NULL, 10),
                    to_abs ? 0ul : strtoul(to, NULL, 10));
        return;
    }
    char ver[CONFIG_NAME_MAX + 1];
    const char *addr;
    if (cat < 0 || split_ep_key(key + (cat == 2 ? 9 : 6), ver, sizeof(ver), &addr) < 0) {
        util_append(buf, buflen, "; ", "%s %s -> %s", key, from, to);
        return;
    }
    if (cat == 3)
        util_append(buf, buflen, "; ", "%s %s %s", to_abs ? "undrain" : "drain", ver, addr);
    else if (to_abs)
        util_append(buf, buflen, "; ", "remove-endpoint %s %s", ver, addr);
    else if (from_abs)
        util_append(buf, buflen, "; ", "add-endpoint %s %s weight=%s", ver, addr, to);
    else
        util_append(buf, buflen, "; ", "weight %s %s %s -> %s", ver, addr, from, to);
}

void runtime_map_describe(const struct state_map *a, const struct state_map *b,
                          char *buf, size_t buflen)
{
    buf[0] = '\0';
    struct state_map d;
    runtime_map_diff(a, b, &d);
    for (size_t i = 0; i < d.n; i++)
        describe_item(d.v[i].key, state_map_value(a, d.v[i].key), d.v[i].value,
                      buf, buflen);
    state_map_dispose(&d);
    if (!buf[0])
        snprintf(buf, buflen, "no change");
}
