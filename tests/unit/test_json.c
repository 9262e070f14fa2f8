/*
 * test_json.c — json.c: the writer and its one escaper (quotes,
 * backslashes, every control character, DEL, valid UTF-8 kept, invalid
 * UTF-8 — stray continuations, overlongs, surrogates, truncated and
 * out-of-range sequences — as U+FFFD; the two control-character styles),
 * the growable buffer, and the parser (every value kind, escapes and
 * surrogate pairs, refusals with a byte offset, the depth limit), plus a
 * round trip: whatever bytes go in, the writer's output parses back to
 * the same string when it was valid UTF-8.
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"

/* s[0..n) through json_buf_strn, as a static NUL-terminated string. */
static const char *esc(const char *s, size_t n)
{
    static char out[4096];
    struct json_buf b;
    json_buf_init(&b);
    json_buf_strn(&b, s, n);
    snprintf(out, sizeof(out), "%s", b.p);
    json_buf_dispose(&b);
    return out;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

static const char *esc_unicode(const char *s, size_t n)
{
    static char out[4096];
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        size_t el;
        i += json_escape_char(s + i, n - i, JSON_ESC_UNICODE, out + len, &el);
        len += el;
    }
    out[len] = '\0';
    return out;
}

static void test_escaper(void)
{
    is_str(ESC("plain"), "\"plain\"", "plain text is only quoted");
    is_str(ESC(""), "\"\"", "the empty string");
    is_str(ESC("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"", "quote and backslash escaped, slash not");
    is_str(ESC("\n\r\t"), "\"\\n\\r\\t\"", "newline, CR, tab short");
    is_str(ESC("\x01\x08\x0c\x1f\x7f"), "\"\\u0001\\u0008\\u000c\\u001f\\u007f\"",
           "other control characters and DEL as \\u00XX (lower-case hex)");
    static const char nul[] = {'a', 0, 'b'};
    is_str(esc(nul, 3), "\"a\\u0000b\"", "a NUL byte inside the view is escaped");
    is_str(ESC("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbf"),
           "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbf\"",
           "valid 2-, 3- and 4-byte UTF-8 kept, up to U+10FFFF");
    is_str(ESC("\x80"), "\"\\ufffd\"", "a stray continuation byte");
    is_str(ESC("\xc0\xaf"), "\"\\ufffd\\ufffd\"", "an overlong '/' (C0 AF)");
    is_str(ESC("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"", "an overlong 3-byte sequence");
    is_str(ESC("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"", "a UTF-16 surrogate (ED A0 80)");
    is_str(ESC("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "above U+10FFFF");
    is_str(ESC("\xf5\xff\xfe"), "\"\\ufffd\\ufffd\\ufffd\"", "bytes that never occur in UTF-8");
    is_str(ESC("a\xe2\x82"), "\"a\\ufffd\\ufffd\"", "a sequence cut by the end of input");
    is_str(ESC("\xe2\x82z"), "\"\\ufffd\\ufffdz\"", "a sequence cut by an ASCII byte");
    is_str(esc("\xc3\xa9", 1), "\"\\ufffd\"", "the view's length is honoured (no over-read)");

    is_str(esc_unicode("a\n\r\t\x01\x7f\"\\\xc3\xa9\xff", 11),
           "a\\u000a\\u000d\\u0009\\u0001\\u007f\\\"\\\\\xc3\xa9\\ufffd",
           "JSON_ESC_UNICODE: every control character as \\u00XX, the rest alike");
    char out[JSON_ESC_MAX];
    size_t el = 0;
    size_t used = json_escape_char("\xf0\x9f\x98\x80z", 5, JSON_ESC_SHORT, out, &el);
    ok(used == 4 && el == 4, "json_escape_char consumes a whole 4-byte sequence");

    ok(json_is_utf8("\xc3\xa9x", 3) && !json_is_utf8("\xc3", 1) &&
           !json_is_utf8("\xed\xa0\x80", 3) && json_is_utf8("", 0),
       "json_is_utf8 agrees with the escaper");
}

static void test_buffer(void)
{
    struct json_buf b;
    json_buf_init(&b);
    json_buf_puts(&b, "{");
    json_buf_key(&b, "k\"ey");
    json_buf_printf(&b, "%d,", 42);
    json_buf_key(&b, "s");
    json_buf_str(&b, NULL);
    json_buf_puts(&b, "}");
    is_str(b.p, "{\"k\\\"ey\":42,\"s\":\"\"}", "keys escaped, NULL string is \"\"");
    json_buf_reset(&b);
    ok(b.len == 0 && b.p[0] == '\0', "reset empties, still NUL-terminated");
    char big[1000];
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 20; i++)
        json_buf_printf(&b, "%s", big); /* longer than printf's small buffer */
    ok(b.len == 20 * 999 && strlen(b.p) == b.len, "grows through long printf output");
    json_buf_dispose(&b);
}

static struct json_value *parse(const char *s, char *err, size_t errlen)
{
    return json_parse(s, strlen(s), err, errlen);
}

static void test_parser(void)
{
    char err[128];
    struct json_value *v =
        parse(" {\"a\":[1,-2.5e3,0,true,false,null],\"b\":{\"c\":\"d\"},\"a\":\"dup\"} ",
              err, sizeof(err));
    ok(v && v->type == JSON_T_OBJECT && v->n == 3, "object with members in order: %s",
       v ? "" : err);
    if (v) {
        const struct json_value *a = json_get(v, "a");
        ok(a && a->type == JSON_T_ARRAY && a->n == 6, "first of duplicate keys wins in json_get");
        if (a && a->n == 6) {
            ok(a->items[0]->num == 1 && a->items[1]->num == -2500 &&
                   strcmp(a->items[1]->str, "-2.5e3") == 0,
               "numbers keep value and source text");
            ok(a->items[3]->type == JSON_T_BOOL && a->items[3]->b &&
                   a->items[4]->type == JSON_T_BOOL && !a->items[4]->b &&
                   a->items[5]->type == JSON_T_NULL,
               "true, false, null");
        }
        is_str(json_get_str(json_get(v, "b"), "c", NULL), "d", "nested member");
        is_str(json_get_str(v, "b", "def"), "def", "typed getter falls back on a wrong type");
        ok(json_get_num(v, "missing", 7) == 7 && json_get_bool(v, "missing", true),
           "absent member gives the default");
        ok(json_get(json_get(v, "a"), "x") == NULL, "json_get on an array is NULL");
    }
    json_free(v);

    v = parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\\u0000z\"", err,
              sizeof(err));
    ok(v && v->type == JSON_T_STRING && v->str_len == 19 &&
           memcmp(v->str, "\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0z", 19) == 0,
       "string escapes, \\u to UTF-8, a surrogate pair, an escaped NUL kept by length");
    json_free(v);
    v = parse("\"\\ud83dx\\ude00\"", err, sizeof(err));
    ok(v && strcmp(v->str, "\xef\xbf\xbdx\xef\xbf\xbd") == 0,
       "lone surrogates become U+FFFD");
    json_free(v);

    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        {"", "unexpected end of input at byte 0"},
        {"{\"a\":1,}", "expected a member name at byte 7"},
        {"[1 2]", "expected ',' or ']' at byte 3"},
        {"{\"a\" 1}", "expected ':' at byte 5"},
        {"\"abc", "unterminated string at byte 4"},
        {"\"a\nb\"", "control character in string at byte 2"},
        {"\"\xc3\x28\"", "invalid UTF-8 in string at byte 1"},
        {"\"\\x\"", "bad escape at byte 3"},
        {"\"\\u12g4\"", "bad \\u escape at byte 3"},
        {"\"\\ud83d\\u0041\"", "bad surrogate pair at byte 13"},
        {"01", "trailing characters at byte 1"},
        {"1.", "bad number at byte 2"},
        {"-", "bad number at byte 1"},
        {"1e+", "bad number at byte 3"},
        {"tru", "unexpected character at byte 0"},
        {"nul", "unexpected character at byte 0"},
        {"{} {}", "trailing characters at byte 3"},
        {"NaN", "unexpected character at byte 0"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        v = parse(bad[i].text, err, sizeof(err));
        ok(v == NULL && strcmp(err, bad[i].err) == 0, "refused: %s (%s)", bad[i].err, err);
        json_free(v);
    }

    char deep[200];
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    v = parse(deep, err, sizeof(err));
    ok(v != NULL, "65 levels of nesting parse");
    json_free(v);
    memset(deep, '[', 66);
    memset(deep + 66, ']', 66);
    deep[132] = '\0';
    v = parse(deep, err, sizeof(err));
    ok(v == NULL && strstr(err, "nested too deeply"), "66 levels refused: %s", err);
    json_free(v);
}

static void test_round_trip(void)
{
    /* Every byte value, as one string: the writer's output must parse, and
     * to the input where the input was valid UTF-8 (all of 0x00..0x7f). */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    struct json_buf b;
    json_buf_init(&b);
    json_buf_strn(&b, all, 128);
    char err[128];
    struct json_value *v = json_parse(b.p, b.len, err, sizeof(err));
    ok(v && v->type == JSON_T_STRING && v->str_len == 128 && memcmp(v->str, all, 128) == 0,
       "ASCII 0x00..0x7f round-trips through writer and parser");
    json_free(v);
    json_buf_reset(&b);
    json_buf_strn(&b, all, 256);
    v = json_parse(b.p, b.len, err, sizeof(err));
    ok(v && json_is_utf8(v->str, v->str_len) && v->str_len == 128 + 128 * 3,
       "all 256 bytes: valid JSON, each high byte one U+FFFD");
    json_free(v);
    json_buf_dispose(&b);
}

int main(void)
{
    test_escaper();
    test_buffer();
    test_parser();
    test_round_trip();
    return tap_done();
}
