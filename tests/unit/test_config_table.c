/*
 * test_config_table.c — the config field table (config_yaml.h) against what
 * it promises (TAP). argv[1] is the tests/ source directory.
 *
 *  (a) the table and conf/weir.yaml list the same keys: every key the parser
 *      accepts is documented, every documented key is parsed. The example
 *      documents optional keys as commented-out YAML ("# key: value" at the
 *      indentation the key would have, prose comments start with a capital
 *      or a backtick); those lines are uncommented, the text is read with
 *      the config's own YAML reader and its keys, nested ones too, are
 *      compared as paths ("versions.*.health.path", "rules[].cookie");
 *  (b) a config with every owned string and list set (tests/configs/good/
 *      full.yaml; the test checks, from the table, that it sets each one)
 *      is cloned, the original freed, the clone compared and freed, twice
 *      over: under ASan a missing or doubled copy is a use after free or a
 *      double free, and the comparison finds shared pointers;
 *  (c) config_keep_restart() keeps exactly the restart rows, in table order.
 */
#include "config.h"
#include "config_yaml.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *srcdir = ".";

static char *slurp(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", srcdir, rel);
    return config_read_file(path, len, NULL);
}

/* ---- a growable set of strings ----------------------------------------- */

struct strset {
    char **v;
    size_t n;
};

static bool strset_has(const struct strset *s, const char *k)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], k) == 0)
            return true;
    return false;
}

static void strset_add(struct strset *s, const char *k)
{
    if (strset_has(s, k))
        return;
    s->v = xrealloc(s->v, (s->n + 1) * sizeof(char *));
    s->v[s->n++] = xstrdup(k);
}

static void strset_dispose(struct strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ---- (a) table vs conf/weir.yaml ---------------------------------------- */

/*
 * conf/weir.yaml with its commented-out examples turned into YAML: a line
 * "INDENT# REST" where REST is "[spaces][- ]key:" followed by a space or
 * the end becomes "INDENTREST". Returns a new string.
 */
static char *uncomment_examples(const char *text)
{
    regex_t re;
    CHECK(regcomp(&re, "^( *)# ( *(- )?[a-z_][a-z0-9_]*:( .*)?)$", REG_EXTENDED) == 0);
    size_t cap = strlen(text) + 1, o = 0;
    char *out = xmalloc(cap);
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *l = xstrndup(line, len);
        regmatch_t m[3];
        if (regexec(&re, l, 3, m, 0) == 0) {
            memcpy(out + o, l, (size_t)m[1].rm_eo);
            o += (size_t)m[1].rm_eo;
            memcpy(out + o, l + m[2].rm_so, (size_t)(m[2].rm_eo - m[2].rm_so));
            o += (size_t)(m[2].rm_eo - m[2].rm_so);
        } else {
            memcpy(out + o, l, len);
            o += len;
        }
        out[o++] = '\n';
        free(l);
        line += len + (nl ? 1 : 0);
    }
    out[o] = '\0';
    regfree(&re);
    return out;
}

/* Keys of the tree under node, as paths in config_schema_keys() notation. */
static void doc_keys(const struct config_node *n, const char *path,
                     const struct strset *schema, struct strset *out)
{
    char child[512];
    if (n->kind == CN_SEQ) {
        snprintf(child, sizeof(child), "%s[]", path);
        for (size_t i = 0; i < n->n; i++)
            doc_keys(n->kids[i], child, schema, out);
        return;
    }
    if (n->kind != CN_MAP)
        return;
    char named[512];
    snprintf(named, sizeof(named), "%s%s*", path, path[0] ? "." : "");
    bool is_named = strset_has(schema, named); /* versions' and split's keys are names */
    /* duplicates too: the example shows `sticky:` twice, once per form */
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        if (is_named)
            snprintf(child, sizeof(child), "%s", named);
        else
            snprintf(child, sizeof(child), "%s%s%s", path, path[0] ? "." : "",
                     n->kids[i]->text ? n->kids[i]->text : "?");
        strset_add(out, child);
        doc_keys(n->kids[i + 1], child, schema, out);
    }
}

static void test_table_vs_example(void)
{
    char **keys;
    size_t nk = config_schema_keys(&keys);
    struct strset schema = {NULL, 0};
    for (size_t i = 0; i < nk; i++) {
        strset_add(&schema, keys[i]);
        free(keys[i]);
    }
    free(keys);
    ok(schema.n > 40, "the table lists %zu keys", schema.n);
    ok(strset_has(&schema, "timeouts.drain") && strset_has(&schema, "versions.*.health.rise") &&
           strset_has(&schema, "rules[].cookie") && strset_has(&schema, "split.*") &&
           strset_has(&schema, "versions.*.endpoints[].weight"),
       "nested keys are listed as paths");

    size_t len;
    char *text = slurp("../conf/weir.yaml", &len);
    ok(text != NULL, "conf/weir.yaml read");
    if (!text) {
        strset_dispose(&schema);
        return;
    }
    char *yaml = uncomment_examples(text);
    struct config_errors errs;
    config_errors_init(&errs, "weir.yaml");
    struct config_report rep = {&errs, 0, 0};
    bool failed = false;
    struct config_node *root = config_yaml_read(&rep, yaml, strlen(yaml), &failed);
    ok(!failed && root && root->kind == CN_MAP,
       "conf/weir.yaml with its examples uncommented is still YAML");
    struct strset doc = {NULL, 0};
    if (root)
        doc_keys(root, "", &schema, &doc);
    ok(doc.n > 40, "conf/weir.yaml documents %zu keys", doc.n);

    size_t missing = 0, unknown = 0;
    for (size_t i = 0; i < schema.n; i++)
        if (!strset_has(&doc, schema.v[i])) {
            printf("# parsed but not documented in conf/weir.yaml: %s\n", schema.v[i]);
            missing++;
        }
    for (size_t i = 0; i < doc.n; i++)
        if (!strset_has(&schema, doc.v[i])) {
            printf("# documented in conf/weir.yaml but not parsed: %s\n", doc.v[i]);
            unknown++;
        }
    is_int(missing, 0, "every key of the table is documented in conf/weir.yaml");
    is_int(unknown, 0, "every key documented in conf/weir.yaml is in the table");

    config_yaml_free(root);
    config_errors_dispose(&errs);
    strset_dispose(&doc);
    strset_dispose(&schema);
    free(yaml);
    free(text);
}

/* ---- (b) clone and free with everything set ---------------------------- */

static void *get_ptr(const void *base, size_t off)
{
    void *p;
    memcpy(&p, (const char *)base + off, sizeof(p));
    return p;
}

static size_t get_n(const void *base, const struct config_field *f)
{
    size_t n;
    memcpy(&n, (const char *)base + f->off_n, sizeof(n));
    return n;
}

static bool owns(enum config_store st)
{
    return st == CS_STR || st == CS_ADDR || st == CS_ARRAY || st == CS_STRV || st == CS_U32V;
}

/* Is f the first row of its table keeping memory at its offset (the one
 * that copies and frees it)? */
static bool slot_owner(const struct config_type *t, const struct config_field *f)
{
    for (const struct config_field *r = t->rows; r < f; r++)
        if (r->off == f->off && owns(config_field_store(r)))
            return false;
    return true;
}

/* Paths of every owning row (all), and of those set somewhere in base (set). */
static void owned_rows(const struct config_type *t, const void *base, const char *path,
                       struct strset *all, struct strset *set)
{
    for (const struct config_field *f = t->rows; f->name; f++) {
        enum config_store st = config_field_store(f);
        char p[512];
        snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", f->name);
        if (st == CS_SUB) {
            owned_rows(f->sub, base ? (const char *)base + f->off : NULL, p, all, set);
            continue;
        }
        if (!owns(st) || !slot_owner(t, f))
            continue;
        strset_add(all, p);
        if (!base)
            continue;
        const void *ptr = get_ptr(base, f->off);
        size_t n = st == CS_STR || st == CS_ADDR ? 1 : get_n(base, f);
        if (ptr && n)
            strset_add(set, p);
        if (st == CS_ARRAY) {
            for (size_t i = 0; i < n; i++)
                owned_rows(f->sub, (const char *)ptr + i * f->sub->size, p, all, set);
            if (!n)
                owned_rows(f->sub, NULL, p, all, set);
        }
    }
}

/* Same values in a and b, and no owned memory shared between them. */
static bool same_owned(const struct config_type *t, const void *a, const void *b)
{
    for (const struct config_field *f = t->rows; f->name; f++) {
        enum config_store st = config_field_store(f);
        if (st == CS_SUB) {
            if (!same_owned(f->sub, (const char *)a + f->off, (const char *)b + f->off))
                return false;
            continue;
        }
        if (!owns(st) || !slot_owner(t, f))
            continue;
        const void *pa = get_ptr(a, f->off), *pb = get_ptr(b, f->off);
        if (!pa || !pb) {
            if (pa != pb) {
                printf("# %s: set on one side only\n", f->name);
                return false;
            }
            continue;
        }
        if (pa == pb) {
            printf("# %s: shared between original and clone\n", f->name);
            return false;
        }
        size_t n = st == CS_STR || st == CS_ADDR ? 0 : get_n(a, f);
        if (n != (st == CS_STR || st == CS_ADDR ? 0 : get_n(b, f)))
            return false;
        if ((st == CS_STR || st == CS_ADDR) && strcmp(pa, pb) != 0)
            return false;
        if (st == CS_U32V && memcmp(pa, pb, n * sizeof(uint32_t)) != 0)
            return false;
        for (size_t i = 0; st == CS_STRV && i < n; i++) {
            const char *x = ((char *const *)pa)[i], *y = ((char *const *)pb)[i];
            if (x == y || strcmp(x, y) != 0)
                return false;
        }
        for (size_t i = 0; st == CS_ARRAY && i < n; i++)
            if (!same_owned(f->sub, (const char *)pa + i * f->sub->size,
                            (const char *)pb + i * f->sub->size))
                return false;
    }
    return true;
}

static void test_clone_everything_set(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/configs/good/full.yaml", srcdir);
    struct config_errors errs;
    config_errors_init(&errs, path);
    struct config *orig = config_load(path, &errs);
    config_errors_dispose(&errs);
    ok(orig != NULL, "full.yaml loads");
    if (!orig)
        return;

    struct strset all = {NULL, 0}, set = {NULL, 0};
    owned_rows(&config_type_top, orig, "", &all, &set);
    size_t unset = 0;
    for (size_t i = 0; i < all.n; i++)
        if (!strset_has(&set, all.v[i])) {
            printf("# full.yaml leaves %s unset: set it so clone and free are tested\n",
                   all.v[i]);
            unset++;
        }
    ok(all.n >= 18, "the table names %zu owned strings and lists", all.n);
    is_int(unset, 0, "full.yaml sets every owned string and list of the table");

    struct config *c1 = config_clone(orig);
    ok(same_owned(&config_type_top, orig, c1), "clone equals the original, sharing nothing");
    config_free(orig); /* c1 must survive on its own (ASan: use after free) */
    struct config *c2 = config_clone(c1);
    ok(same_owned(&config_type_top, c1, c2), "clone of a clone equals it, sharing nothing");
    is_str(c2->sticky.name, "session", "the slot header/cookie share is copied once");
    is_str(c2->versions[0].name, "blue", "F_DATA rows (a version's name) are copied");
    config_free(c2);
    ok(c1->rules[2].name && strcmp(c1->rules[2].name, "beta") == 0,
       "freeing the second clone leaves the first intact");
    config_free(c1); /* ASan: a double free would abort here */

    /* defaults alone (what the parser starts from) clone and free too */
    struct config *d = config_new_default("x");
    struct config *dc = config_clone(d);
    ok(same_owned(&config_type_top, d, dc), "the default config clones");
    is_str(dc->control, "/run/weir/weir.sock", "default control from the table");
    ok(dc->split_bp == NULL && dc->versions == NULL, "empty lists stay NULL");
    config_free(d);
    config_free(dc);
    strset_dispose(&all);
    strset_dispose(&set);
}

/* ---- (c) restart-only settings ------------------------------------------ */

static struct config *load_text(const char *text)
{
    struct config_errors errs;
    config_errors_init(&errs, "t.yaml");
    struct config *cfg = config_load_string("t.yaml", text, strlen(text), &errs);
    if (!cfg) {
        char buf[2048];
        config_errors_format(&errs, buf, sizeof(buf));
        printf("# %s", buf);
    }
    config_errors_dispose(&errs);
    return cfg;
}

static int port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port) : -1;
}

static void test_keep_restart(void)
{
    struct config *old = load_text("listen: 127.0.0.1:8080\n"
                                   "workers: 2\nretries: 1\n"
                                   "timeouts: {client_idle: 5s}\n"
                                   "versions: {v1: {endpoints: [127.0.0.1:9001]}}\n"
                                   "split: {v1: 100}\n");
    struct config *neu = load_text("listen: 127.0.0.1:8081\n"
                                   "admin: 127.0.0.1:9901\n"
                                   "workers: 4\nretries: 3\ncontrol_mode: \"0600\"\n"
                                   "timeouts: {client_idle: 7s}\n"
                                   "versions: {v1: {endpoints: [127.0.0.1:9001]}}\n"
                                   "split: {v1: 100}\n");
    ok(old && neu, "two configs for the restart list");
    if (!old || !neu) {
        config_free(old);
        config_free(neu);
        return;
    }
    char list[256];
    config_keep_restart(neu, old, list, sizeof(list));
    is_str(list, "listen, admin, workers", "restart-only changes listed in table order");
    is_str(neu->listen, "127.0.0.1:8080", "listen kept");
    is_int(port_of(&neu->listen_sa), 8080, "listen's address kept with it");
    ok(neu->admin == NULL && neu->admin_sa_len == 0, "admin kept (none)");
    is_int(neu->workers, 2, "workers kept");
    is_int(neu->retries, 3, "retries (not restart-only) takes the new value");
    is_int(neu->client_idle_timeout_ms, 7000, "a timeout takes the new value");

    config_keep_restart(neu, old, list, sizeof(list));
    is_str(list, "", "nothing left to keep: empty list");
    config_keep_restart(neu, NULL, list, sizeof(list));
    is_str(list, "", "no running config: empty list");
    config_free(old);
    config_free(neu);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        srcdir = argv[1];
    test_table_vs_example();
    test_clone_everything_set();
    test_keep_restart();
    return tap_done();
}
