/*
 * test_config.c — unit tests for config.c / config_yaml.c (TAP).
 *
 * argv[1] is the tests/ source directory. The test
 *  (a) loads the good configs and checks the parsed values (defaults,
 *      durations, split in basis points, IPv6, endpoint mappings, rules,
 *      sticky, health defaults);
 *  (b) loads every .yaml file in tests/configs/bad, whose leading `# expect: ` lines
 *      are the exact error lines (FILE standing for the path), all of them,
 *      in order;
 *  (c) runs config_validate on modified clones and checks config_clone is
 *      a deep copy;
 *  (d) loads every .yaml file in tests/configs/good and the shipped conf/weir.yaml;
 *  (e) feeds truncated and mangled files, which must never crash (ASan).
 */
#include "access_field.h"
#include "config.h"
#include "tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *srcdir = ".";

static char *path_of(const char *rel)
{
    size_t n = strlen(srcdir) + strlen(rel) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", srcdir, rel);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Load srcdir/REL; on failure print the errors as TAP diagnostics. */
static struct config *load_rel(const char *rel)
{
    char *path = path_of(rel);
    struct config_errors errs;
    config_errors_init(&errs, path);
    struct config *cfg = config_load(path, &errs);
    if (!cfg) {
        char buf[8192];
        config_errors_format(&errs, buf, sizeof(buf));
        printf("# %s", buf);
    }
    config_errors_dispose(&errs);
    free(path);
    return cfg;
}

/* Errors of loading TEXT, formatted, into buf. Returns the config (or NULL). */
static struct config *load_text(const char *text, char *buf, size_t buflen)
{
    struct config_errors errs;
    config_errors_init(&errs, "t.yaml");
    struct config *cfg = config_load_string("t.yaml", text, strlen(text), &errs);
    config_errors_format(&errs, buf, buflen);
    config_errors_dispose(&errs);
    return cfg;
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return -1;
}

/* ---- (a) good configs, value by value ----------------------------------- */

static void test_minimal(void)
{
    struct config *c = load_rel("configs/good/minimal.yaml");
    ok(c != NULL, "minimal.yaml loads");
    if (!c)
        return;
    is_str(c->listen, "127.0.0.1:8080", "listen as written");
    is_int(c->listen_sa.ss_family, AF_INET, "listen is IPv4");
    is_int(port_of(&c->listen_sa), 8080, "listen port");
    is_int(c->listen_sa_len, sizeof(struct sockaddr_in), "listen sa_len");
    is_str(c->control, "/run/weir/weir.sock", "control default");
    is_int(c->control_mode, 0600, "control_mode default 0600");
    ok(c->control_owner == NULL && c->control_group == NULL, "owner/group unset");
    is_str(c->state, "/run/weir/weir.sock.state", "state defaults to control + .state");
    ok(c->admin == NULL && c->admin_sa_len == 0, "no admin by default");
    ok(c->watch, "watch default true");
    ok(c->version_header == NULL, "no version_header by default");
    is_int(c->workers, 0, "workers default 0 (auto)");
    is_int(c->retries, 1, "retries default 1");
    is_int(c->client_header_timeout_ms, 10000, "client_header 10s");
    is_int(c->client_idle_timeout_ms, 60000, "client_idle 60s");
    is_int(c->client_body_timeout_ms, 60000, "client_body 60s");
    is_int(c->upstream_connect_timeout_ms, 2000, "upstream_connect 2s");
    is_int(c->upstream_response_timeout_ms, 30000, "upstream_response 30s");
    is_int(c->upstream_idle_timeout_ms, 30000, "upstream_idle 30s");
    is_int(c->drain_timeout_ms, 10000, "drain 10s");
    is_int(c->max_connections, 10000, "max_connections default");
    is_int(c->max_header_bytes, 16384, "max_header_bytes default");
    is_int(c->max_header_count, 100, "max_header_count default");
    is_int(c->max_idle_upstream, 256, "upstream_idle_per_endpoint default");
    is_int(c->n_versions, 1, "one version");
    is_str(c->versions[0].name, "v1", "version name");
    is_int(c->versions[0].pos.line, 4, "version position line");
    is_int(c->versions[0].pos.col, 3, "version position column");
    is_int(c->versions[0].n_endpoints, 1, "one endpoint");
    is_int(c->versions[0].endpoints[0].weight, 1, "weight default 1");
    ok(!c->versions[0].endpoints[0].draining, "not draining");
    is_int(c->versions[0].discover_interval_ms, 5000, "discover_interval default 5s");
    ok(!c->versions[0].health.enabled, "health off without a health key");
    is_str(c->versions[0].health.path, "/ready", "health path default even when off");
    is_int(c->split_bp[0], 10000, "split 100 %% = 10000 bp");
    is_int(c->split_pos.line, 6, "split position");
    is_int(c->n_rules, 0, "no rules");
    is_int(c->sticky.kind, STICKY_NONE, "no sticky");
    is_int(c->n_resolvers, 0, "no resolvers");
    ok(c->access_log.enabled, "access log on by default");
    is_int(c->access_log.format, LOG_F_JSON, "access log json by default");
    ok(c->access_log.path == NULL, "access log to stdout by default");
    is_int(config_version_index(c, "v1"), 0, "config_version_index finds v1");
    is_int(config_version_index(c, "v2"), -1, "config_version_index: -1 for unknown");
    config_free(c);
}

static void test_full(void)
{
    struct config *c = load_rel("configs/good/full.yaml");
    ok(c != NULL, "full.yaml loads");
    if (!c)
        return;
    is_int(port_of(&c->listen_sa), 80, "listen port 80");
    is_str(c->control, "/tmp/weir-test.sock", "control");
    is_int(c->control_mode, 0660, "control_mode \"0660\" is octal");
    is_str(c->control_owner, "weir", "control_owner");
    is_str(c->control_group, "1001", "control_group");
    is_str(c->state, "/var/lib/weir/state.json", "explicit state");
    is_str(c->admin, "localhost:9901", "admin as written");
    is_int(port_of(&c->admin_sa), 9901, "admin port");
    ok(!c->watch, "watch: off");
    is_str(c->version_header, "X-Weir-Version", "version_header");
    is_int(c->workers, 8, "workers 8");
    is_int(c->retries, 0, "retries 0");
    is_int(c->client_header_timeout_ms, 5000, "5s");
    is_int(c->client_idle_timeout_ms, 120000, "2m");
    is_int(c->client_body_timeout_ms, 250, "250ms");
    is_int(c->upstream_connect_timeout_ms, 1500, "1500ms");
    is_int(c->upstream_response_timeout_ms, 3600000, "1h");
    is_int(c->upstream_idle_timeout_ms, 45000, "45s");
    is_int(c->drain_timeout_ms, 0, "drain 0s allowed");
    is_int(c->max_connections, 50000, "max_connections");
    is_int(c->max_header_bytes, 1024, "max_header_bytes lower bound");
    is_int(c->max_header_count, 1000, "max_header_count upper bound");
    is_int(c->max_idle_upstream, 0, "upstream_idle_per_endpoint 0");
    is_int(c->n_versions, 3, "three versions");
    if (c->n_versions == 3) {
        const struct config_version *b = &c->versions[0], *g = &c->versions[1],
                                    *k = &c->versions[2];
        is_str(b->name, "blue", "versions keep file order (1)");
        is_str(g->name, "green", "versions keep file order (2)");
        is_str(k->name, "canary.v-3_x", "version name with . - _");
        is_int(b->n_endpoints, 2, "blue: two endpoints");
        is_str(b->endpoints[1].address, "10.0.0.12:8080", "mapping-form address");
        is_int(b->endpoints[1].weight, 3, "mapping-form weight");
        is_int(b->endpoints[0].weight, 1, "plain endpoint weight 1");
        ok(b->health.enabled, "blue health on");
        is_str(b->health.path, "/healthz", "health path");
        is_int(b->health.port, 8086, "health port");
        is_int(b->health.interval_ms, 5000, "health interval");
        is_int(b->health.timeout_ms, 500, "health timeout");
        is_int(b->health.rise, 3, "health rise");
        is_int(b->health.fall, 1, "health fall");
        is_str(b->fallback, "green", "fallback");
        ok(b->fallback_pos.line > 0, "fallback position kept");
        is_str(g->discover, "green.default.svc.cluster.local:8080", "discover");
        is_int(g->discover_interval_ms, 30000, "discover_interval");
        is_int(g->n_endpoints, 1, "endpoints + discover combine");
        is_int(k->n_endpoints, 0, "discover-only version");
        is_str(k->discover, "canary.example.:80", "discover with a trailing dot");
    }
    if (c->n_versions == 3) {
        is_int(c->split_bp[0], 1250, "12.5 %% = 1250 bp");
        is_int(c->split_bp[1], 8749, "quoted \"87.49\" = 8749 bp");
        is_int(c->split_bp[2], 1, "0.01 %% = 1 bp");
    }
    is_int(c->sticky.kind, STICKY_COOKIE, "sticky cookie");
    is_str(c->sticky.name, "session", "sticky cookie name");
    ok(c->sticky.assign, "sticky assign");
    is_int(c->n_rules, 3, "three rules");
    if (c->n_rules == 3) {
        is_int(c->rules[0].match, RULE_M_HEADER_VALUE, "rule 1: header value");
        is_str(c->rules[0].name, "X-Canary", "rule 1 header");
        is_str(c->rules[0].value, "always", "rule 1 value");
        is_str(c->rules[0].version, "canary.v-3_x", "rule 1 version");
        is_int(c->rules[0].pos.line, 57, "rule 1 position line");
        is_int(c->rules[0].pos.col, 5, "rule 1 position column");
        is_int(c->rules[0].version_pos.line, 59, "rule 1 version position");
        is_int(c->rules[1].match, RULE_M_HEADER_PRESENT, "rule 2: header present");
        ok(c->rules[1].value == NULL, "rule 2 has no value");
        is_int(c->rules[2].match, RULE_M_COOKIE_VALUE, "rule 3: cookie value");
        is_str(c->rules[2].value, "yes", "rule 3 value: quoted \"yes\" is a string");
    }
    is_int(c->n_resolvers, 4, "four resolvers");
    if (c->n_resolvers == 4) {
        is_str(c->resolvers[0], "10.0.0.53:53", "resolver port defaults to 53");
        is_str(c->resolvers[1], "127.0.0.1:5353", "resolver with port");
        is_str(c->resolvers[2], "[::1]:53", "bare IPv6 resolver");
        is_str(c->resolvers[3], "[fe80::1]:5300", "bracketed IPv6 resolver");
    }
    ok(!c->access_log.enabled, "access_log enabled: false");
    is_int(c->access_log.format, LOG_F_JSON, "access_log json");
    is_int(c->access_log.n_fields, 3, "access_log fields: three");
    is_int(c->log_format, ERRLOG_F_JSON, "log format json");
    is_int(c->log_level, 2, "log level warn");
    ok(c->access_log.fields && c->access_log.fields[0] == ACCESS_F_TIME && c->access_log.fields[2] == ACCESS_F_REQUEST_ID, "access_log fields in order");
    is_str(c->access_log.path, "/var/log/weir/access.log", "access_log path");
    config_free(c);
}

static void test_ipv6(void)
{
    struct config *c = load_rel("configs/good/ipv6.yaml");
    ok(c != NULL, "ipv6.yaml loads");
    if (!c)
        return;
    is_int(c->listen_sa.ss_family, AF_INET6, "IPv6 listen");
    is_int(port_of(&c->listen_sa), 8443, "IPv6 listen port");
    is_int(c->listen_sa_len, sizeof(struct sockaddr_in6), "IPv6 sa_len");
    is_int(c->admin_sa.ss_family, AF_INET6, "IPv6 admin");
    is_int(c->versions[0].n_endpoints, 2, "two mapping-form endpoints");
    is_int(c->versions[0].endpoints[0].weight, 1000, "weight 1000");
    is_int(c->versions[0].endpoints[1].weight, 1, "mapping without weight: 1");
    is_str(c->versions[0].endpoints[1].address, "[2001:db8::2]:8080", "IPv6 endpoint");
    is_int(c->versions[0].endpoints[1].sa.ss_family, AF_INET6, "IPv6 endpoint family");
    is_int(c->split_bp[0], 9999, "flow-style split 99.99");
    is_int(c->split_bp[1], 1, "flow-style split 0.01");
    is_int(c->sticky.kind, STICKY_HEADER, "sticky header");
    is_str(c->sticky.name, "X-User-Id", "sticky header name");
    ok(!c->sticky.assign, "assign off by default");
    config_free(c);
}

static void test_empty_optional(void)
{
    struct config *c = load_rel("configs/good/empty_optional.yaml");
    ok(c != NULL, "empty_optional.yaml loads");
    if (!c)
        return;
    is_str(c->control, "/run/weir/weir.sock", "control: (empty) keeps the default");
    ok(c->admin == NULL, "admin: ~ is unset");
    is_int(c->sticky.kind, STICKY_NONE, "sticky: (empty) is unset");
    is_int(c->n_rules, 0, "rules: (empty) is unset");
    ok(!c->access_log.enabled, "access_log: off");
    const struct config_health *h = &c->versions[0].health;
    ok(h->enabled, "health: {} turns checks on");
    is_str(h->path, "/ready", "health path default");
    is_int(h->port, 0, "health port default 0 (endpoint's)");
    is_int(h->interval_ms, 2000, "health interval default");
    is_int(h->timeout_ms, 1000, "health timeout default");
    is_int(h->rise, 2, "health rise default");
    is_int(h->fall, 2, "health fall default");
    is_int(c->split_bp[1], 0, "version left out of split gets 0");
    config_free(c);
}

/* ---- (b) bad configs --------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.yaml names in srcdir/REL; returns the count. */
static size_t list_yaml(const char *rel, char ***out)
{
    char *dir = path_of(rel);
    DIR *d = opendir(dir);
    size_t n = 0;
    char **names = NULL;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0)
                continue;
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrdup(de->d_name);
        }
        closedir(d);
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    free(dir);
    *out = names;
    return n;
}

static void check_bad(const char *name)
{
    char rel[512];
    snprintf(rel, sizeof(rel), "configs/bad/%s", name);
    char *path = path_of(rel);
    char *text = slurp(path, NULL);
    ok(text != NULL, "%s: readable", name);
    if (!text) {
        free(path);
        return;
    }
    /* expected: the leading "# expect: " lines, FILE replaced by the path */
    size_t cap = strlen(text) * 2 + 4096, used = 0;
    char *want = xmalloc(cap);
    want[0] = '\0';
    int n_expect = 0;
    static const char tag[] = "# expect: ";
    for (const char *line = text; strncmp(line, tag, sizeof(tag) - 1) == 0;) {
        const char *msg = line + sizeof(tag) - 1;
        const char *eol = strchr(msg, '\n');
        size_t len = eol ? (size_t)(eol - msg) : strlen(msg);
        if (len >= 4 && strncmp(msg, "FILE", 4) == 0)
            used += (size_t)snprintf(want + used, cap - used, "%s%.*s\n", path,
                                     (int)(len - 4), msg + 4);
        else
            used += (size_t)snprintf(want + used, cap - used, "%.*s\n", (int)len, msg);
        n_expect++;
        if (!eol)
            break;
        line = eol + 1;
    }
    ok(n_expect > 0, "%s: has # expect: lines", name);

    struct config_errors errs;
    config_errors_init(&errs, path);
    struct config *cfg = config_load(path, &errs);
    ok(cfg == NULL, "%s: rejected", name);
    is_int(errs.n, n_expect, "%s: %d error(s)", name, n_expect);
    char got[16384];
    config_errors_format(&errs, got, sizeof(got));
    is_str(got, want, "%s: exact error lines", name);
    config_free(cfg);
    config_errors_dispose(&errs);
    free(want);
    free(text);
    free(path);
}

static void test_bad_dir(void)
{
    char **names;
    size_t n = list_yaml("configs/bad", &names);
    ok(n >= 25, "found %zu bad configs", n);
    for (size_t i = 0; i < n; i++) {
        check_bad(names[i]);
        free(names[i]);
    }
    free(names);
}

/* ---- (c) validate and clone -------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return a != b && strcmp(a, b) == 0; /* equal, and not shared */
}

static bool same_config(const struct config *a, const struct config *b)
{
    bool eq = same_str(a->path, b->path) && same_str(a->listen, b->listen) &&
              memcmp(&a->listen_sa, &b->listen_sa, sizeof(a->listen_sa)) == 0 &&
              same_str(a->control, b->control) && same_str(a->state, b->state) &&
              same_str(a->control_owner, b->control_owner) &&
              same_str(a->control_group, b->control_group) &&
              same_str(a->admin, b->admin) && same_str(a->version_header, b->version_header) &&
              a->control_mode == b->control_mode && a->watch == b->watch &&
              a->workers == b->workers && a->retries == b->retries &&
              a->client_body_timeout_ms == b->client_body_timeout_ms &&
              a->max_header_bytes == b->max_header_bytes &&
              a->n_versions == b->n_versions && a->n_rules == b->n_rules &&
              a->n_resolvers == b->n_resolvers && a->sticky.kind == b->sticky.kind &&
              same_str(a->sticky.name, b->sticky.name) && a->sticky.assign == b->sticky.assign &&
              a->access_log.enabled == b->access_log.enabled &&
              a->access_log.format == b->access_log.format &&
              same_str(a->access_log.path, b->access_log.path) &&
              a->split_bp != b->split_bp &&
              a->split_pos.line == b->split_pos.line;
    for (size_t i = 0; eq && i < a->n_versions; i++) {
        const struct config_version *x = &a->versions[i], *y = &b->versions[i];
        eq = same_str(x->name, y->name) && same_str(x->discover, y->discover) &&
             same_str(x->fallback, y->fallback) && same_str(x->health.path, y->health.path) &&
             x->health.enabled == y->health.enabled && x->health.rise == y->health.rise &&
             x->n_endpoints == y->n_endpoints && a->split_bp[i] == b->split_bp[i] &&
             (x->n_endpoints == 0 || x->endpoints != y->endpoints);
        for (size_t j = 0; eq && j < x->n_endpoints; j++)
            eq = same_str(x->endpoints[j].address, y->endpoints[j].address) &&
                 x->endpoints[j].weight == y->endpoints[j].weight &&
                 x->endpoints[j].sa_len == y->endpoints[j].sa_len &&
                 x->endpoints[j].pos.line == y->endpoints[j].pos.line;
    }
    for (size_t i = 0; eq && i < a->n_rules; i++)
        eq = same_str(a->rules[i].name, b->rules[i].name) &&
             same_str(a->rules[i].value, b->rules[i].value) &&
             same_str(a->rules[i].version, b->rules[i].version) &&
             a->rules[i].match == b->rules[i].match;
    for (size_t i = 0; eq && i < a->n_resolvers; i++)
        eq = same_str(a->resolvers[i], b->resolvers[i]);
    return eq;
}

static void expect_invalid(const struct config *c, const char *want, const char *what)
{
    struct config_errors errs;
    config_errors_init(&errs, "rt");
    is_int(config_validate(c, &errs), -1, "validate rejects: %s", what);
    char got[4096];
    config_errors_format(&errs, got, sizeof(got));
    is_str(got, want, "validate message: %s", what);
    config_errors_dispose(&errs);
}

static void test_validate_clone(void)
{
    struct config *orig = load_rel("configs/good/full.yaml");
    ok(orig != NULL, "full.yaml loads for clone tests");
    if (!orig)
        return;
    struct config *c = config_clone(orig);
    ok(same_config(orig, c), "clone equals the original, sharing no pointer");
    config_free(orig); /* the clone must survive on its own (ASan) */

    struct config_errors errs;
    config_errors_init(&errs, "rt");
    is_int(config_validate(c, &errs), 0, "clone validates");
    is_int(errs.n, 0, "no errors on the clone");
    config_errors_dispose(&errs);

    struct config *bad = config_clone(c);
    bad->split_bp[0] -= 1;
    char want[512];
    snprintf(want, sizeof(want),
             "rt:%d:%d: split sums to 99.99 %%, must be exactly 100\n",
             c->split_pos.line, c->split_pos.col);
    expect_invalid(bad, want, "split sum 99.99");
    bad->split_bp[0] += 2;
    bad->split_pos = (struct config_pos){0, 0}; /* as made at runtime */
    expect_invalid(bad, "rt: split sums to 100.01 %, must be exactly 100\n",
                   "runtime split without a position");
    config_free(bad);

    bad = config_clone(c);
    free(bad->rules[0].version);
    bad->rules[0].version = xstrdup("nope");
    bad->rules[0].version_pos = (struct config_pos){0, 0};
    expect_invalid(bad, "rt: rule targets undefined version \"nope\"\n", "rule version");
    config_free(bad);

    bad = config_clone(c);
    free(bad->versions[0].fallback);
    bad->versions[0].fallback = xstrdup("blue");
    snprintf(want, sizeof(want), "rt:%d:%d: version \"blue\" cannot fall back to itself\n",
             c->versions[0].fallback_pos.line, c->versions[0].fallback_pos.col);
    expect_invalid(bad, want, "fallback to itself");
    config_free(bad);

    bad = config_clone(c);
    struct config_version *v = &bad->versions[2]; /* discover-only */
    free(v->discover);
    v->discover = NULL;
    snprintf(want, sizeof(want),
             "rt:%d:%d: version \"canary.v-3_x\" has no endpoints and no discover\n",
             v->pos.line, v->pos.col);
    expect_invalid(bad, want, "version without endpoints");
    config_free(bad);

    bad = config_clone(c);
    v = &bad->versions[0];
    v->endpoints = xrealloc(v->endpoints, (v->n_endpoints + 1) * sizeof(*v->endpoints));
    v->endpoints[v->n_endpoints] = v->endpoints[0];
    v->endpoints[v->n_endpoints].address = xstrdup(v->endpoints[0].address);
    v->endpoints[v->n_endpoints].pos = (struct config_pos){0, 0};
    v->n_endpoints++;
    snprintf(want, sizeof(want),
             "rt: duplicate endpoint \"10.0.0.11:8080\" in version \"blue\" (first at line %d)\n",
             v->endpoints[0].pos.line);
    expect_invalid(bad, want, "duplicate endpoint added at runtime");
    config_free(bad);

    bad = config_clone(c);
    bad->sticky.kind = STICKY_HEADER;
    snprintf(want, sizeof(want), "rt:%d:%d: \"assign\" only applies to a sticky cookie\n",
             c->sticky.pos.line, c->sticky.pos.col);
    expect_invalid(bad, want, "sticky assign");
    config_free(bad);

    /* config_validate appends to an existing list and reports every problem */
    bad = config_clone(c);
    bad->split_bp[1] = 0;
    free(bad->versions[1].fallback);
    bad->versions[1].fallback = xstrdup("nope");
    config_errors_init(&errs, "rt");
    config_errors_add(&errs, (struct config_pos){1, 1}, "earlier");
    is_int(config_validate(bad, &errs), -1, "two problems rejected");
    is_int(errs.n, 3, "both appended after the existing error");
    config_errors_dispose(&errs);
    config_free(bad);

    config_free(c);
}

/* ---- (d) every good config, and the shipped example --------------------- */

static void test_good_dir(void)
{
    char **names;
    size_t n = list_yaml("configs/good", &names);
    ok(n >= 4, "found %zu good configs", n);
    for (size_t i = 0; i < n; i++) {
        char rel[512];
        snprintf(rel, sizeof(rel), "configs/good/%s", names[i]);
        struct config *c = load_rel(rel);
        ok(c != NULL, "good config %s loads", names[i]);
        config_free(c);
        free(names[i]);
    }
    free(names);

    struct config *c = load_rel("../conf/weir.yaml");
    ok(c != NULL, "conf/weir.yaml loads");
    if (c) {
        is_int(port_of(&c->listen_sa), 8080, "example: listen 8080");
        is_str(c->control, "/run/weir/weir.sock", "example: control");
        is_str(c->admin, "127.0.0.1:9901", "example: admin");
        is_int(c->n_versions, 2, "example: two versions");
        is_int(c->versions[0].n_endpoints, 2, "example: v1 has two endpoints");
        is_int(c->split_bp[0], 9000, "example: v1 90 %%");
        is_int(c->split_bp[1], 1000, "example: v2 10 %%");
    }
    config_free(c);
}

/* ---- inline cases ------------------------------------------------------ */

static void test_inline(void)
{
    char buf[4096];
    struct config_errors errs;
    config_errors_init(&errs, "/nonexistent/weir.yaml");
    ok(config_load("/nonexistent/weir.yaml", &errs) == NULL, "missing file fails");
    config_errors_format(&errs, buf, sizeof(buf));
    is_str(buf, "/nonexistent/weir.yaml: cannot read: No such file or directory\n",
           "missing file message");
    config_errors_dispose(&errs);

    ok(load_text("", buf, sizeof(buf)) == NULL, "empty string fails");
    is_str(buf, "t.yaml: empty config (it needs at least listen, versions and split)\n",
           "empty string message");

    ok(load_text("listen: 1.2.3.4:80\nversions: {v1: {endpoints: [1.2.3.4:81]}}\n"
                 "split: {v1: 100}\nrules: [{header: X-A, value: b, version: v1}]\n"
                 "bogus: 1\n",
                 buf, sizeof(buf)) == NULL,
       "unknown key after valid content fails");
    is_str(buf,
           "t.yaml:5:1: unknown key \"bogus\" (expected one of: listen, control, control_mode, "
           "control_owner, control_group, state, admin, watch, version_header, workers, "
           "retries, timeouts, limits, versions, split, sticky, rules, resolvers, "
           "access_log, log, guard, rollout, fleet, mirror)\n",
           "unknown key lists the keys");

    ok(load_text("listen: 1.2.3.4:80\nversions: {v1: {endpoints: [1.2.3.4:81]}}\n"
                 "split: {v1: 100}\nworkers: auto\nLISTEN: 1.2.3.4:81\n",
                 buf, sizeof(buf)) == NULL,
       "key case matters");
    is_str(buf, "t.yaml:5:1: unknown key \"LISTEN\" (did you mean \"listen\"?)\n",
           "case-insensitive suggestion");

    /* messages quote untrusted text safely */
    ok(load_text("listen: 1.2.3.4:80\nversions: {v1: {endpoints: [1.2.3.4:81]}}\n"
                 "split: {v1: 100}\n\"a\\tb\\\"c\": 1\n",
                 buf, sizeof(buf)) == NULL,
       "odd key fails");
    is_str(buf, "t.yaml:4:1: unknown key \"a\\x09b\\\"c\" (expected one of: listen, control, "
                "control_mode, control_owner, control_group, state, admin, watch, "
                "version_header, workers, retries, timeouts, limits, versions, split, sticky, "
                "rules, resolvers, access_log, log, guard, rollout, fleet, mirror)\n",
           "control characters and quotes escaped");

    /* formatting: position-less errors, truncation */
    config_errors_init(&errs, "f");
    config_errors_add(&errs, (struct config_pos){0, 0}, "a %s", "b");
    config_errors_add(&errs, (struct config_pos){3, 7}, "c");
    config_errors_format(&errs, buf, sizeof(buf));
    is_str(buf, "f: a b\nf:3:7: c\n", "format with and without position");
    char small[8];
    config_errors_format(&errs, small, sizeof(small));
    is_str(small, "f: a b\n", "format truncates safely");
    config_errors_format(&errs, small, 3);
    is_str(small, "f:", "format truncates mid-line");
    config_errors_dispose(&errs);

    /* a long list of problems is capped, not unbounded */
    size_t cap = 300 * 16 + 128, o = 0;
    char *text = xmalloc(cap);
    o += (size_t)snprintf(text + o, cap - o, "listen: 1.2.3.4:80\n");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(text + o, cap - o, "k%d: 1\n", i);
    config_errors_init(&errs, "t.yaml");
    ok(config_load_string("t.yaml", text, o, &errs) == NULL, "300 unknown keys fail");
    ok(errs.n > 100 && errs.n < 110, "errors capped (%zu)", errs.n);
    config_errors_dispose(&errs);
    free(text);
}

/* ---- (e) robustness: truncated and mangled input ----------------------- */

static void test_robust(void)
{
    size_t len;
    char *path = path_of("configs/good/full.yaml");
    char *text = slurp(path, &len);
    free(path);
    ok(text != NULL, "full.yaml read for truncation");
    if (!text)
        return;
    size_t good = 0, bad_ok = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        struct config_errors errs;
        config_errors_init(&errs, "cut");
        struct config *c = config_load_string("cut", text, cut, &errs);
        if (c)
            good++;
        else if (errs.n > 0)
            bad_ok++;
        config_free(c);
        config_errors_dispose(&errs);
    }
    ok(good + bad_ok == len + 1, "every truncation loads or reports an error");
    ok(good >= 1, "the whole file loads");

    /* put a YAML-significant character at every offset */
    static const char subst[] = ":[&\"\n";
    unsigned fails = 0;
    for (size_t i = 0; i < len; i++) {
        char saved = text[i];
        for (const char *s = subst; *s; s++) {
            text[i] = *s;
            struct config_errors errs;
            config_errors_init(&errs, "flip");
            struct config *c = config_load_string("flip", text, len, &errs);
            if (!c && errs.n == 0)
                fails++;
            config_free(c);
            config_errors_dispose(&errs);
        }
        text[i] = saved;
    }
    is_int(fails, 0, "every mangled file loads or reports an error");

    /* nesting beyond the limit is an error, not a stack overflow */
    char deep[4096];
    size_t o = 0;
    o += (size_t)snprintf(deep, sizeof(deep), "listen: ");
    for (int i = 0; i < 1000; i++)
        deep[o++] = '[';
    deep[o] = '\0';
    char buf[1024];
    ok(load_text(deep, buf, sizeof(buf)) == NULL, "deep nesting rejected");
    ok(strstr(buf, "nesting deeper than") != NULL, "deep nesting message: %s", buf);
    free(text);
}

/* ---- durations as Go and Kubernetes write them ------------------------- */

static void test_durations(void)
{
    static const struct {
        const char *text;
        uint32_t ms;
    } good[] = {
        {"250ms", 250},
        {"2s", 2000},
        {"1m", 60000},
        {"5m30s", 330000},
        {"1m30s", 90000},
        {"1h2m3.5s", 3723500},
        {"1.5h", 5400000},
        {"0", 0},
        {"0s", 0},
        {"2000us", 2},
        {"2000000ns", 2},
        {".5s", 500},
        {"1s500ms", 1500},
        {"24h", 86400000},
        {"23h59m60s", 86400000},
        {"3000\xc2\xb5s", 3},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint32_t ms = 12345;
        const char *why = NULL;
        int rc = util_parse_duration(good[i].text, &ms, &why);
        ok(rc == 0 && ms == good[i].ms, "duration %s = %u ms (got %d, %u, %s)", good[i].text,
           good[i].ms, rc, ms, why ? why : "-");
    }
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"5m30", "without a unit"},
        {"1x", "unknown unit"},
        {"1d", "unknown unit"},
        {"24h1ms", "24h"},
        {"99999999999999999999h", "24h"},
        {"184467440737095516160ns", "24h"},
        {"-1s", "expected a number"},
        {"s", "expected a number"},
        {"1s.", "after the unit"},
        {"1.5ms", "millisecond"},
        {"1500us", "millisecond"},
        {"1 s", "unknown unit"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t ms = 777;
        const char *why = NULL;
        int rc = util_parse_duration(bad[i].text, &ms, &why);
        ok(rc < 0 && ms == 777 && why && strstr(why, bad[i].why),
           "duration \"%s\" refused: %s (got %s)", bad[i].text, bad[i].why, why ? why : "-");
    }
    /* In a config, compound durations land in every duration key. */
    static const char yaml[] =
        "listen: 127.0.0.1:8080\n"
        "timeouts: {client_header: 1m30s, drain: 5m30s, upstream_response: 1h2m3.5s}\n"
        "versions:\n  v1:\n    endpoints: [127.0.0.1:9001]\n"
        "    health: {interval: 1s500ms}\n"
        "split: {v1: 100}\n";
    struct config_errors errs;
    config_errors_init(&errs, "inline.yaml");
    struct config *c = config_load_string("inline.yaml", yaml, sizeof(yaml) - 1, &errs);
    ok(c != NULL, "config with compound durations loads (%zu errors)", errs.n);
    if (c) {
        is_int(c->client_header_timeout_ms, 90000, "client_header 1m30s");
        is_int(c->drain_timeout_ms, 330000, "drain 5m30s");
        is_int(c->upstream_response_timeout_ms, 3723500, "upstream_response 1h2m3.5s");
        is_int(c->versions[0].health.interval_ms, 1500, "health.interval 1s500ms");
    }
    config_free(c);
    config_errors_dispose(&errs);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        srcdir = argv[1];
    test_minimal();
    test_full();
    test_ipv6();
    test_empty_optional();
    test_bad_dir();
    test_validate_clone();
    test_good_dir();
    test_inline();
    test_robust();
    test_durations();
    return tap_done();
}
