/*
 * fuzz_json.c — the JSON parser (json_parse) and the string escaper
 * (json_buf_strn) on arbitrary bytes.
 *
 * Invariants:
 *  - a parsed tree's strings are valid UTF-8 (escapes decode to scalar
 *    values, lone surrogates to U+FFFD);
 *  - written back with weir's own writer (strings escaped by json_buf_strn,
 *    numbers as their source text) the tree parses again to an equal tree;
 *  - any bytes escaped as a JSON string give valid UTF-8 JSON that parses
 *    back to the same bytes when they were valid UTF-8 — the promise that
 *    every control answer is valid JSON whatever a client sent.
 */
#include <string.h>

#include "fuzz.h"
#include "json.h"

static void write_value(struct json_buf *b, const struct json_value *v)
{
    switch (v->type) {
    case JSON_T_NULL:
        json_buf_puts(b, "null");
        break;
    case JSON_T_BOOL:
        json_buf_puts(b, v->b ? "true" : "false");
        break;
    case JSON_T_NUMBER:
        json_buf_add(b, v->str, v->str_len);
        break;
    case JSON_T_STRING:
        json_buf_strn(b, v->str, v->str_len);
        break;
    case JSON_T_ARRAY:
    case JSON_T_OBJECT:
        json_buf_puts(b, v->type == JSON_T_ARRAY ? "[" : "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                json_buf_puts(b, ",");
            if (v->type == JSON_T_OBJECT)
                json_buf_key(b, v->keys[i]);
            write_value(b, v->items[i]);
        }
        json_buf_puts(b, v->type == JSON_T_ARRAY ? "]" : "}");
        break;
    }
}

static bool equal(const struct json_value *a, const struct json_value *b)
{
    if (a->type != b->type || a->n != b->n || a->b != b->b)
        return false;
    if (a->type == JSON_T_STRING || a->type == JSON_T_NUMBER)
        if (a->str_len != b->str_len || memcmp(a->str, b->str, a->str_len) != 0)
            return false;
    for (size_t i = 0; i < a->n; i++) {
        /* Member names are C strings: a \u0000 in one ends it (json.h). */
        if (a->type == JSON_T_OBJECT && strcmp(a->keys[i], b->keys[i]) != 0)
            return false;
        if (!equal(a->items[i], b->items[i]))
            return false;
    }
    return true;
}

static void check_utf8(const struct json_value *v)
{
    if (v->type == JSON_T_STRING)
        FUZZ_CHECK(json_is_utf8(v->str, v->str_len) && v->str[v->str_len] == '\0');
    for (size_t i = 0; i < v->n; i++) {
        if (v->type == JSON_T_OBJECT)
            FUZZ_CHECK(json_is_utf8(v->keys[i], strlen(v->keys[i])));
        check_utf8(v->items[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char err[128];
    struct json_value *v = json_parse(text, size, err, sizeof(err));
    if (!v) {
        FUZZ_CHECK(err[0] != '\0');
    } else {
        check_utf8(v);
        struct json_buf b;
        json_buf_init(&b);
        write_value(&b, v);
        FUZZ_CHECK(json_is_utf8(b.p, b.len));
        struct json_value *again = json_parse(b.p, b.len, err, sizeof(err));
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(equal(v, again));
        json_free(again);
        json_buf_dispose(&b);
        json_free(v);
    }

    /* The escaper over the raw bytes. */
    struct json_buf s;
    json_buf_init(&s);
    json_buf_strn(&s, text, size);
    FUZZ_CHECK(json_is_utf8(s.p, s.len) && strlen(s.p) == s.len);
    struct json_value *str = json_parse(s.p, s.len, err, sizeof(err));
    FUZZ_CHECK(str != NULL && str->type == JSON_T_STRING);
    if (json_is_utf8(text, size))
        FUZZ_CHECK(str->str_len == size && memcmp(str->str, text, size) == 0);
    json_free(str);
    json_buf_dispose(&s);
    return 0;
}
