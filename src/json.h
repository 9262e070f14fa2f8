/*
 * json.h — the small amount of JSON weir speaks: a growable output buffer
 * with correctly escaped strings (control socket answers, state, admin), and
 * a strict little DOM parser for reading answers back (weirctl, tests).
 *
 * Output: strings are escaped per RFC 8259 §7 (", \, control characters as
 * \uXXXX); invalid UTF-8 bytes become U+FFFD so every answer is valid JSON
 * whatever bytes a client sent. Numbers are written by the caller
 * (json_buf_printf) — JSON has no NaN/Inf and weir never produces them.
 *
 * Parser: RFC 8259 values, nesting up to 64 levels, objects keep key order,
 * numbers kept as double plus their source text. Not for hot paths.
 * Owns nothing global; any thread.
 */
#ifndef WEIR_JSON_H
#define WEIR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* A growable, always NUL-terminated byte buffer. */
struct json_buf {
    char *p; /* owned */
    size_t len;
    size_t cap;
};

void json_buf_init(struct json_buf *b);
void json_buf_dispose(struct json_buf *b);
/* Empty the buffer, keeping its memory. */
void json_buf_reset(struct json_buf *b);
/* Append raw bytes / a raw NUL-terminated string (no escaping). */
void json_buf_add(struct json_buf *b, const char *s, size_t n);
void json_buf_puts(struct json_buf *b, const char *s);
void json_buf_printf(struct json_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * The one JSON string escaper (json_buf_str, the access log, weir-bench).
 * Styles differ only in how control characters other than DEL look:
 */
enum json_esc {
    JSON_ESC_SHORT = 0, /* \n \r \t as two-byte escapes, others as \u00XX */
    JSON_ESC_UNICODE,   /* every control character as \u00XX (access log) */
};
#define JSON_ESC_MAX 6 /* most bytes one input character escapes to */

/*
 * Escape the character at s[0..n) (n >= 1): '"' and '\\' get a backslash,
 * control characters and DEL an escape (see style), a valid UTF-8
 * sequence is copied, any other byte becomes \ufffd. Writes the escape
 * (no NUL) into out, its length into *out_len; returns the input bytes
 * consumed (1..4). Any thread.
 */
size_t json_escape_char(const char *s, size_t n, enum json_esc style,
                        char out[JSON_ESC_MAX], size_t *out_len);
/* Append s as a quoted, escaped JSON string (JSON_ESC_SHORT). */
void json_buf_str(struct json_buf *b, const char *s);
void json_buf_strn(struct json_buf *b, const char *s, size_t n);
/* True if s[0..n) is valid UTF-8 (RFC 3629: no overlongs, no surrogates). */
bool json_is_utf8(const char *s, size_t n);
/* Append `"key":` (key escaped). */
void json_buf_key(struct json_buf *b, const char *key);

enum json_type {
    JSON_T_NULL = 0, /* null */
    JSON_T_BOOL,     /* true / false */
    JSON_T_NUMBER,   /* any number */
    JSON_T_STRING,   /* a string (decoded, NUL-terminated; may hold NULs) */
    JSON_T_ARRAY,    /* items in order */
    JSON_T_OBJECT,   /* members in source order */
};

struct json_value {
    enum json_type type;
    bool b;
    double num;
    char *str; /* owned: decoded string, or the number's source text */
    size_t str_len;
    char **keys;               /* owned (objects): member names */
    struct json_value **items; /* owned: array items or member values */
    size_t n;
};

/*
 * Parse exactly one JSON value (surrounding whitespace allowed). Returns a
 * new tree (free with json_free) or NULL; err (if non-NULL) gets a short
 * reason with the byte offset.
 */
struct json_value *json_parse(const char *text, size_t len, char *err,
                              size_t errlen) WUR;
void json_free(struct json_value *v);

/* Member of an object by name, or NULL (also NULL when v is not an object). */
const struct json_value *json_get(const struct json_value *v, const char *key);
/* Typed shortcuts: the member's value or def when absent / of another type. */
const char *json_get_str(const struct json_value *v, const char *key,
                         const char *def);
double json_get_num(const struct json_value *v, const char *key, double def);
bool json_get_bool(const struct json_value *v, const char *key, bool def);

#endif
