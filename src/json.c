/*
 * json.c — see json.h. The buffer doubles on growth; the escaper walks
 * UTF-8 sequences (RFC 3629 ranges, no overlongs, no surrogates) and
 * replaces anything else by U+FFFD; the parser is a recursive descent over
 * RFC 8259 with a depth limit, so garbage input costs at most O(len) and
 * never more than 64 stack frames.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

/* ---- output ------------------------------------------------------------ */

void json_buf_init(struct json_buf *b)
{
    b->cap = 256;
    b->p = xmalloc(b->cap);
    b->p[0] = '\0';
    b->len = 0;
}

void json_buf_dispose(struct json_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void json_buf_reset(struct json_buf *b)
{
    b->len = 0;
    b->p[0] = '\0';
}

static void reserve(struct json_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void json_buf_add(struct json_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void json_buf_puts(struct json_buf *b, const char *s)
{
    json_buf_add(b, s, strlen(s));
}

void json_buf_printf(struct json_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        json_buf_add(b, small, (size_t)n);
        return;
    }
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

bool json_is_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

static const char hexdig[] = "0123456789abcdef";

size_t json_escape_char(const char *s, size_t n, enum json_esc style,
                        char out[JSON_ESC_MAX], size_t *out_len)
{
    unsigned char c = (unsigned char)s[0];
    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        *out_len = 2;
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        char short_esc = 0;
        if (style == JSON_ESC_SHORT)
            short_esc = c == '\n' ? 'n' : c == '\r' ? 'r'
                                      : c == '\t'   ? 't'
                                                    : 0;
        if (short_esc) {
            out[0] = '\\';
            out[1] = short_esc;
            *out_len = 2;
        } else {
            memcpy(out, "\\u00", 4);
            out[4] = hexdig[c >> 4];
            out[5] = hexdig[c & 15];
            *out_len = 6;
        }
        return 1;
    }
    size_t l = utf8_seq((const unsigned char *)s, n);
    if (l == 0) {
        memcpy(out, "\\ufffd", 6);
        *out_len = 6;
        return 1;
    }
    memcpy(out, s, l);
    *out_len = l;
    return l;
}

void json_buf_strn(struct json_buf *b, const char *s, size_t n)
{
    reserve(b, n + 2);
    json_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        char e[JSON_ESC_MAX];
        size_t elen;
        i += json_escape_char(s + i, n - i, JSON_ESC_SHORT, e, &elen);
        json_buf_add(b, e, elen);
    }
    json_buf_add(b, "\"", 1);
}

void json_buf_str(struct json_buf *b, const char *s)
{
    json_buf_strn(b, s ? s : "", s ? strlen(s) : 0);
}

void json_buf_key(struct json_buf *b, const char *key)
{
    json_buf_str(b, key);
    json_buf_add(b, ":", 1);
}

/* ---- parser ------------------------------------------------------------ */

struct parser {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
    bool failed;
};

static void fail(struct parser *p, const char *what)
{
    if (p->failed)
        return;
    p->failed = true;
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s at byte %zu", what, p->pos);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static bool literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static int hex4(struct parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static void put_utf8(struct json_buf *b, uint32_t cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    json_buf_add(b, o, n);
}

/* Parse a string at p->pos (which is at the opening quote). */
static int parse_string(struct parser *p, char **out, size_t *out_len)
{
    struct json_buf b;
    json_buf_init(&b);
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) {
            fail(p, "unterminated string");
            goto bad;
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            fail(p, "control character in string");
            goto bad;
        }
        if (c != '\\') {
            size_t l = utf8_seq((const unsigned char *)p->s + p->pos, p->len - p->pos);
            if (l == 0) {
                fail(p, "invalid UTF-8 in string");
                goto bad;
            }
            json_buf_add(&b, p->s + p->pos, l);
            p->pos += l;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) {
            fail(p, "unterminated escape");
            goto bad;
        }
        char e = p->s[p->pos++];
        switch (e) {
        case '"': json_buf_add(&b, "\"", 1); break;
        case '\\': json_buf_add(&b, "\\", 1); break;
        case '/': json_buf_add(&b, "/", 1); break;
        case 'b': json_buf_add(&b, "\b", 1); break;
        case 'f': json_buf_add(&b, "\f", 1); break;
        case 'n': json_buf_add(&b, "\n", 1); break;
        case 'r': json_buf_add(&b, "\r", 1); break;
        case 't': json_buf_add(&b, "\t", 1); break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp) < 0) {
                fail(p, "bad \\u escape");
                goto bad;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->len - p->pos >= 6 && p->s[p->pos] == '\\' &&
                    p->s[p->pos + 1] == 'u') {
                    p->pos += 2;
                    if (hex4(p, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                        fail(p, "bad surrogate pair");
                        goto bad;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            put_utf8(&b, cp);
            break;
        }
        default:
            fail(p, "bad escape");
            goto bad;
        }
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
bad:
    json_buf_dispose(&b);
    return -1;
}

static struct json_value *parse_value(struct parser *p, int depth);

static void push_item(struct json_value *v, char *key, struct json_value *item,
                      size_t *cap)
{
    if (v->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        v->items = xrealloc(v->items, *cap * sizeof(*v->items));
        if (v->type == JSON_T_OBJECT)
            v->keys = xrealloc(v->keys, *cap * sizeof(*v->keys));
    }
    if (v->type == JSON_T_OBJECT)
        v->keys[v->n] = key;
    v->items[v->n++] = item;
}

static struct json_value *parse_container(struct parser *p, int depth,
                                          bool object)
{
    struct json_value *v = xcalloc(1, sizeof(*v));
    v->type = object ? JSON_T_OBJECT : JSON_T_ARRAY;
    size_t cap = 0;
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        if (object) {
            skip_ws(p);
            size_t klen;
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                fail(p, "expected a member name");
                goto bad;
            }
            if (parse_string(p, &key, &klen) < 0)
                goto bad;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                fail(p, "expected ':'");
                goto bad;
            }
            p->pos++;
        }
        struct json_value *item = parse_value(p, depth + 1);
        if (!item) {
            free(key);
            goto bad;
        }
        push_item(v, key, item, &cap);
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return v;
        }
        fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        goto bad;
    }
bad:
    json_free(v);
    return NULL;
}

static struct json_value *parse_number(struct parser *p)
{
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len)
        goto bad;
    if (p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    } else {
        goto bad;
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == d)
            goto bad;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (p->pos == d)
            goto bad;
    }
    struct json_value *v = xcalloc(1, sizeof(*v));
    v->type = JSON_T_NUMBER;
    v->str = xstrndup(p->s + start, p->pos - start);
    v->str_len = p->pos - start;
    v->num = strtod(v->str, NULL);
    return v;
bad:
    fail(p, "bad number");
    return NULL;
}

static struct json_value *parse_value(struct parser *p, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        fail(p, "nested too deeply");
        return NULL;
    }
    skip_ws(p);
    if (p->pos >= p->len) {
        fail(p, "unexpected end of input");
        return NULL;
    }
    char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return parse_container(p, depth, c == '{');
    if (c == '"') {
        struct json_value *v = xcalloc(1, sizeof(*v));
        v->type = JSON_T_STRING;
        if (parse_string(p, &v->str, &v->str_len) < 0) {
            free(v);
            return NULL;
        }
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(p);
    struct json_value *v = xcalloc(1, sizeof(*v));
    if (literal(p, "true")) {
        v->type = JSON_T_BOOL;
        v->b = true;
    } else if (literal(p, "false")) {
        v->type = JSON_T_BOOL;
    } else if (literal(p, "null")) {
        v->type = JSON_T_NULL;
    } else {
        free(v);
        fail(p, "unexpected character");
        return NULL;
    }
    return v;
}

struct json_value *json_parse(const char *text, size_t len, char *err,
                              size_t errlen)
{
    struct parser p = {.s = text, .len = len, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    struct json_value *v = parse_value(&p, 0);
    if (!v)
        return NULL;
    skip_ws(&p);
    if (p.pos != p.len) {
        fail(&p, "trailing characters");
        json_free(v);
        return NULL;
    }
    return v;
}

void json_free(struct json_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys)
            free(v->keys[i]);
        json_free(v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    free(v);
}

const struct json_value *json_get(const struct json_value *v, const char *key)
{
    if (!v || v->type != JSON_T_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return v->items[i];
    return NULL;
}

const char *json_get_str(const struct json_value *v, const char *key,
                         const char *def)
{
    const struct json_value *m = json_get(v, key);
    return m && m->type == JSON_T_STRING ? m->str : def;
}

double json_get_num(const struct json_value *v, const char *key, double def)
{
    const struct json_value *m = json_get(v, key);
    return m && m->type == JSON_T_NUMBER ? m->num : def;
}

bool json_get_bool(const struct json_value *v, const char *key, bool def)
{
    const struct json_value *m = json_get(v, key);
    return m && m->type == JSON_T_BOOL ? m->b : def;
}
