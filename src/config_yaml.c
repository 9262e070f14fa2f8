/*
 * config_yaml.c — YAML text → a tree of struct config_node (config_yaml.h).
 *
 * libyaml's event API (not its document API) builds the tree, so that every
 * node keeps its 1-based line and column, and so that we see what the
 * document API would silently resolve. Rejected here, because YAML allows
 * them but a config must not have them: anchors and aliases, several
 * documents, duplicate keys, non-string keys, NUL characters, nesting deeper
 * than YAML_MAX_DEPTH, more than YAML_MAX_NODES nodes. A libyaml syntax error
 * ends the read: nothing after it is trustworthy. Everything else is
 * reported and the walk goes on; the offending node is kept as CN_BAD (or a
 * key is marked dup) so that config_parse.c skips it without a second error.
 *
 * Plain `~`, `null` and empty scalars become CN_NULL, which config_parse.c
 * treats as "key absent". Tags are ignored: a scalar is its text.
 *
 * Does not know what a weir config contains (config_parse.c does).
 */
#include "config_yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 32     /* a config needs 6 */
#define YAML_MAX_NODES 500000 /* far above any config: 32 x 1024 endpoints */

const char *config_yaml_quote(struct config_qbuf *q, const char *s)
{
    size_t o = 0, max = sizeof(q->s) - 6; /* room for ...", NUL */
    q->s[o++] = '"';
    for (; *s && o < max; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            q->s[o++] = '\\';
            q->s[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            if (o + 4 >= max)
                break;
            o += (size_t)snprintf(q->s + o, 5, "\\x%02x", c);
        } else {
            q->s[o++] = (char)c;
        }
    }
    if (*s) {
        memcpy(q->s + o, "...", 3);
        o += 3;
    }
    q->s[o++] = '"';
    q->s[o] = '\0';
    return q->s;
}

const char *config_yaml_describe(struct config_qbuf *q, const struct config_node *n)
{
    switch (n->kind) {
    case CN_MAP:
        return "a mapping";
    case CN_SEQ:
        return "a list";
    case CN_NULL:
        return "empty";
    default:
        return config_yaml_quote(q, n->text ? n->text : "");
    }
}

void config_yaml_verror(struct config_report *r, struct config_pos pos,
                        const char *fmt, va_list ap)
{
    r->taint++;
    size_t n = r->errs->n - r->errs_start;
    if (n > CONFIG_MAX_PARSE_ERRORS)
        return;
    if (n == CONFIG_MAX_PARSE_ERRORS) {
        config_errors_add(r->errs, (struct config_pos){0, 0},
                          "too many problems, only the first %d are shown",
                          CONFIG_MAX_PARSE_ERRORS);
        return;
    }
    char msg[sizeof(r->errs->v[0].msg)];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    config_errors_add(r->errs, pos, "%s", msg);
}

void config_yaml_error(struct config_report *r, struct config_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_yaml_verror(r, pos, fmt, ap);
    va_end(ap);
}

/* Reader state: where errors go, how many nodes so far. */
struct reader {
    struct config_report *rep; /* borrowed */
    size_t n_nodes;
};

#define perr(rd, ...) config_yaml_error((rd)->rep, __VA_ARGS__)

static struct config_node *node_new(struct reader *rd, enum config_node_kind kind, yaml_mark_t m)
{
    struct config_node *n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->pos.line = (int)m.line + 1;
    n->pos.col = (int)m.column + 1;
    rd->n_nodes++;
    return n;
}

void config_yaml_free(struct config_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        config_yaml_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static void node_add(struct config_node *parent, struct config_node *kid)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 4;
        parent->kids = xrealloc(parent->kids, parent->cap * sizeof(*parent->kids));
    }
    parent->kids[parent->n++] = kid;
}

struct keyref {
    const struct config_node *key;
    size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int c = strcmp(x->key->text, y->key->text);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* On a finished mapping: keys must be strings, each at most once. */
static void check_keys(struct reader *rd, struct config_node *map)
{
    size_t nk = map->n / 2, m = 0;
    struct keyref *refs = xcalloc(nk ? nk : 1, sizeof(*refs));
    for (size_t i = 0; i < nk; i++) {
        struct config_node *k = map->kids[2 * i];
        if (k->kind == CN_MAP || k->kind == CN_SEQ) {
            perr(rd, k->pos, "mapping keys must be strings, not %s",
                 k->kind == CN_MAP ? "a mapping" : "a list");
            k->dup = true;
        } else if (k->kind == CN_BAD) {
            k->dup = true; /* reported already */
        } else {
            refs[m++] = (struct keyref){k, i};
        }
    }
    qsort(refs, m, sizeof(*refs), keyref_cmp);
    for (size_t i = 1; i < m; i++) {
        size_t first = i - 1;
        while (i < m && strcmp(refs[i].key->text, refs[first].key->text) == 0) {
            struct config_node *k = map->kids[2 * refs[i].idx];
            struct config_qbuf q;
            perr(rd, k->pos, "duplicate key %s (first at line %d)",
                 config_yaml_quote(&q, k->text), refs[first].key->pos.line);
            k->dup = true;
            i++;
        }
    }
    free(refs);
}

static struct config_pos offset_pos(const char *text, size_t len, size_t off)
{
    struct config_pos pos = {1, 1};
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            pos.line++;
            pos.col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            pos.col++;
        }
    }
    return pos;
}

static void report_syntax(struct reader *rd, const yaml_parser_t *ps,
                          const char *text, size_t len)
{
    struct config_pos pos;
    if (ps->error == YAML_READER_ERROR)
        pos = offset_pos(text, len, ps->problem_offset);
    else
        pos = (struct config_pos){(int)ps->problem_mark.line + 1,
                                  (int)ps->problem_mark.column + 1};
    const char *problem = ps->problem ? ps->problem : "cannot parse";
    if (ps->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    if (ps->context)
        perr(rd, pos, "invalid YAML: %s (%s at line %zu)", problem, ps->context,
             (size_t)ps->context_mark.line + 1);
    else
        perr(rd, pos, "invalid YAML: %s", problem);
}

static bool is_null_text(const char *s)
{
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* One event → node. Returns the new node or NULL (none for this event). */
static struct config_node *node_from_event(struct reader *rd, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL;
    struct config_node *n = NULL;
    struct config_qbuf q;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        n = node_new(rd, CN_BAD, ev->start_mark);
        perr(rd, n->pos, "anchors and aliases are not supported (alias %s)",
             config_yaml_quote(&q, (const char *)ev->data.alias.anchor));
        return n;
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        anchor = ev->data.scalar.anchor;
        n = node_new(rd, CN_SCALAR, ev->start_mark);
        n->text = xstrndup(v, len);
        if (memchr(v, '\0', len)) {
            perr(rd, n->pos, "NUL characters are not allowed");
            n->kind = CN_BAD;
        } else if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                   !ev->data.scalar.tag && is_null_text(n->text)) {
            n->kind = CN_NULL;
        }
        break;
    }
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        n = node_new(rd, CN_SEQ, ev->start_mark);
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        n = node_new(rd, CN_MAP, ev->start_mark);
        break;
    default:
        return NULL;
    }
    if (anchor)
        perr(rd, n->pos, "anchors and aliases are not supported (anchor %s)",
             config_yaml_quote(&q, (const char *)anchor));
    return n;
}

struct config_node *config_yaml_read(struct config_report *rep, const char *text,
                                     size_t len, bool *failed)
{
    struct reader reader = {rep, 0};
    struct reader *rd = &reader;
    yaml_parser_t ps;
    CHECK(yaml_parser_initialize(&ps));
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    struct config_node *stack[YAML_MAX_DEPTH];
    size_t depth = 0;
    struct config_node *root = NULL;
    int docs = 0;
    bool done = false;
    *failed = false;
    while (!done && !*failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ps, &ev)) {
            report_syntax(rd, &ps, text, len);
            *failed = true;
            break;
        }
        struct config_pos pos = {(int)ev.start_mark.line + 1,
                                 (int)ev.start_mark.column + 1};
        if (ev.type == YAML_STREAM_END_EVENT) {
            done = true;
        } else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            perr(rd, pos, "only one YAML document is allowed");
            *failed = true;
        } else if (ev.type == YAML_SEQUENCE_END_EVENT ||
                   ev.type == YAML_MAPPING_END_EVENT) {
            CHECK(depth > 0);
            struct config_node *n = stack[--depth];
            if (n->kind == CN_MAP)
                check_keys(rd, n);
        } else {
            struct config_node *n = node_from_event(rd, &ev);
            if (n) {
                if (depth > 0) {
                    node_add(stack[depth - 1], n);
                } else {
                    CHECK(!root); /* one document has one root node */
                    root = n;
                }
                if (n->kind == CN_MAP || n->kind == CN_SEQ) {
                    if (depth == YAML_MAX_DEPTH) {
                        perr(rd, n->pos, "nesting deeper than %d levels", YAML_MAX_DEPTH);
                        *failed = true;
                    } else {
                        stack[depth++] = n;
                    }
                }
                if (rd->n_nodes > YAML_MAX_NODES) {
                    perr(rd, pos, "too many values (more than %d)", YAML_MAX_NODES);
                    *failed = true;
                }
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ps);
    if (*failed) {
        config_yaml_free(root);
        return NULL;
    }
    return root;
}
