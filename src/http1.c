/*
 * http1.c — see http1.h. llhttp is used for the head only, over a complete
 * head already vetted by http1_scan_head(), paused at on_headers_complete;
 * weir makes the framing decision itself from the parsed headers and reads
 * bodies with its own length counter or chunk decoder.
 */
#include "http1.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

/* ---- head scanner -------------------------------------------------- */

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* The control bytes (< 0x20 or == 0x7f) among the 8 bytes at p, as a mask
 * with the high bit of each such byte set (SWAR: a byte b below n sets its
 * high bit in (b - n) & ~b; bytes >= 0x80 are masked out by ~b, so
 * obs-text passes, as in the byte loop). A borrow can only flag bytes
 * above a real match, so the lowest set bit is always a control byte. */
static inline uint64_t word_ctl_mask(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    uint64_t below = (x - ONES * 0x20) & ~x;
    uint64_t y = x ^ (ONES * 0x7f);
    uint64_t del = (y - ONES) & ~y;
    return (below | del) & HIGHS;
}

static inline bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* The index of the first control byte in p[i..len), or len. */
static inline size_t next_ctl(const char *p, size_t i, size_t len)
{
    /* Eight bytes at a time (CR, LF and HTAB are control bytes too; most
     * of a head is none), then straight to the first one found. */
    while (i + 8 <= len) {
        uint64_t m = word_ctl_mask(p + i);
        if (m) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + ((size_t)__builtin_ctzll(m) >> 3);
#else
            break; /* the byte loop below finds it */
#endif
        }
        i += 8;
    }
    while (i < len && !is_ctl((unsigned char)p[i]))
        i++;
    return i;
}

enum http1_scan_result http1_scan_head(struct http1_scan *scan, const char *p,
                                       size_t len, size_t *head_len,
                                       const char **err)
{
    size_t i = scan->pos;
    if (i == 0)
        scan->in_first_line = true;
    for (; i < len; i++) {
        i = next_ctl(p, i, len);
        if (i >= len)
            break;
        unsigned char c = (unsigned char)p[i];
        if (c == '\r') {
            if (i + 1 >= len)
                break; /* need the next byte to judge this CR */
            if (p[i + 1] != '\n') {
                *err = "bare CR in head";
                return H1_SCAN_BAD;
            }
            continue;
        }
        if (c == '\n') {
            if (i == 0 || p[i - 1] != '\r') {
                *err = "bare LF in head";
                return H1_SCAN_BAD;
            }
            /* CRLF CRLF: end of head (RFC 9112 §2.1). */
            if (i >= 3 && p[i - 2] == '\n') {
                *head_len = i + 1;
                scan->pos = i + 1;
                return H1_SCAN_DONE;
            }
            scan->in_first_line = false;
            /* obs-fold (RFC 9112 §5.2): a field line starting with SP/HTAB.
             * Rejected rather than unfolded. */
            if (i + 1 < len && (p[i + 1] == ' ' || p[i + 1] == '\t')) {
                *err = "obsolete line folding in head";
                return H1_SCAN_BAD;
            }
            continue;
        }
        if (c != '\t') {
            *err = "control character in head";
            return H1_SCAN_BAD;
        }
    }
    /* The byte after an LF is checked for obs-fold when it arrives: step
     * back so an LF at the end is revisited. */
    if (i > 0 && i == len && p[i - 1] == '\n')
        i--;
    scan->pos = i;
    return H1_SCAN_MORE;
}

/* ---- llhttp head parsing -------------------------------------------- */

struct parse_ctx {
    struct router_header *headers;
    size_t n, max;
    struct strview url;
    struct strview reason;
    bool too_many;
};

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct parse_ctx *c = p->data;
    c->url.p = at;
    c->url.len = len;
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    struct parse_ctx *c = p->data;
    c->reason.p = at;
    c->reason.len = len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct parse_ctx *c = p->data;
    if (c->n >= c->max) {
        c->too_many = true;
        return -1;
    }
    c->headers[c->n].name.p = at;
    c->headers[c->n].name.len = len;
    c->headers[c->n].value.p = at + len;
    c->headers[c->n].value.len = 0;
    c->n++;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct parse_ctx *c = p->data;
    struct strview *v = &c->headers[c->n - 1].value;
    v->p = at;
    /* Trailing whitespace is not part of the value (RFC 9112 §5). */
    while (len > 0 && (at[len - 1] == ' ' || at[len - 1] == '\t'))
        len--;
    v->len = len;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

static const llhttp_settings_t head_settings = {
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
};

/* Run llhttp over a complete head. Returns 0, or -1 with *err set. */
static int run_llhttp(llhttp_t *parser, llhttp_type_t type, struct parse_ctx *c,
                      const char *p, size_t len, const char **err)
{
    llhttp_init(parser, type, &head_settings);
    parser->data = c;
    llhttp_errno_t e = llhttp_execute(parser, p, len);
    if (e == HPE_PAUSED)
        return 0;
    *err = c->too_many ? "too many header fields" : llhttp_get_error_reason(parser);
    if (!*err)
        *err = llhttp_errno_name(e);
    return -1;
}

/*
 * The request line with octets >= 0x80 in its target. llhttp's strict mode
 * refuses them in a URL, yet raw UTF-8 targets are common from non-browser
 * clients and nginx forwards them. The line is parsed from a copy whose
 * target carries 'x' in their place (llhttp then checks every other byte as
 * before: the scanner already refused control characters and DEL, and a
 * space ends the target); the target view is then pointed back at the
 * original bytes, which are forwarded unchanged (no normalisation). Only
 * the target is treated so: obs-text in the method or the version still
 * fails. Returns 0, or -1 with *err set.
 */
static int run_llhttp_request(llhttp_t *parser, struct parse_ctx *c,
                              const char *p, size_t len, const char **err)
{
    const char *lf = memchr(p, '\n', len);
    const char *sp1 = lf ? memchr(p, ' ', (size_t)(lf - p)) : NULL;
    const char *sp2 = sp1 ? memrchr(p, ' ', (size_t)(lf - p)) : NULL;
    bool high = false;
    if (sp2 && sp2 > sp1)
        for (const char *q = sp1 + 1; q < sp2 && !high; q++)
            high = (unsigned char)*q >= 0x80;
    if (!high)
        return run_llhttp(parser, HTTP_REQUEST, c, p, len, err);

    size_t line_len = (size_t)(lf - p) + 1;
    char *copy = xmalloc(line_len);
    memcpy(copy, p, line_len);
    for (size_t i = (size_t)(sp1 - p) + 1; i < (size_t)(sp2 - p); i++)
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = 'x';
    llhttp_init(parser, HTTP_REQUEST, &head_settings);
    parser->data = c;
    llhttp_errno_t e = llhttp_execute(parser, copy, line_len);
    if (c->url.p >= copy && c->url.p < copy + line_len)
        c->url.p = p + (c->url.p - copy);
    free(copy);
    if (e == HPE_OK)
        e = llhttp_execute(parser, p + line_len, len - line_len);
    if (e == HPE_PAUSED)
        return 0;
    *err = c->too_many ? "too many header fields" : llhttp_get_error_reason(parser);
    if (!*err)
        *err = llhttp_errno_name(e);
    return -1;
}

/* RFC 9110 §5.6.2 tchar, as a table (a field name's '-' no longer costs
 * a strchr). */
#define TCHAR_ALNUM(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || \
                        ((c) >= '0' && (c) <= '9'))
#define TCHAR_PUNCT(c) ((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||  \
                        (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || \
                        (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||  \
                        (c) == '`' || (c) == '|' || (c) == '~')
#define TCHAR(c) (TCHAR_ALNUM(c) || TCHAR_PUNCT(c))
#define TC4(c) TCHAR(c), TCHAR((c) + 1), TCHAR((c) + 2), TCHAR((c) + 3)
#define TC16(c) TC4(c), TC4((c) + 4), TC4((c) + 8), TC4((c) + 12)
static const bool tchar_table[256] = {
    TC16(0x00),
    TC16(0x10),
    TC16(0x20),
    TC16(0x30),
    TC16(0x40),
    TC16(0x50),
    TC16(0x60),
    TC16(0x70),
};

static inline bool is_tchar(unsigned char c)
{
    return tchar_table[c];
}

/*
 * Every field name is a token followed directly by ':' (RFC 9112 §5.1:
 * whitespace before the colon MUST be rejected; llhttp 8.1 lets it pass).
 */
static bool names_are_tokens(const struct parse_ctx *c, const char *end)
{
    for (size_t i = 0; i < c->n; i++) {
        struct strview n = c->headers[i].name;
        if (n.len == 0 || n.p + n.len >= end || n.p[n.len] != ':')
            return false;
        for (size_t k = 0; k < n.len; k++)
            if (!is_tchar((unsigned char)n.p[k]))
                return false;
    }
    return true;
}

/* Case-insensitive equality with a C string; inlined, so a literal's length
 * is a constant and most names are told apart by length alone. */
static inline bool sv_eq_lit(struct strview v, const char *lit)
{
    size_t n = strlen(lit);
    return v.len == n && strncasecmp(v.p, lit, n) == 0;
}

/* Trim OWS from both ends of a view. */
static struct strview sv_trim(struct strview v)
{
    while (v.len && (v.p[0] == ' ' || v.p[0] == '\t')) {
        v.p++;
        v.len--;
    }
    while (v.len && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
        v.len--;
    return v;
}

/*
 * Iterate comma-separated list elements: returns false at the end. *pos is
 * the cursor into v.
 */
static bool list_next(struct strview v, size_t *pos, struct strview *elem)
{
    while (*pos < v.len) {
        size_t start = *pos;
        const char *comma = memchr(v.p + start, ',', v.len - start);
        size_t end = comma ? (size_t)(comma - v.p) : v.len;
        *pos = end + 1;
        struct strview e = {v.p + start, end - start};
        e = sv_trim(e);
        if (e.len) {
            *elem = e;
            return true;
        }
    }
    return false;
}

static bool list_has(struct strview v, const char *token)
{
    size_t pos = 0;
    struct strview e;
    while (list_next(v, &pos, &e))
        if (sv_eq_lit(e, token))
            return true;
    return false;
}

static bool parse_u64(struct strview v, uint64_t *out)
{
    if (v.len == 0 || v.len > 19)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (!isdigit((unsigned char)v.p[i]))
            return false;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = n;
    return true;
}

/*
 * The framing decision shared by requests and responses (RFC 9112 §6.1,
 * §6.3): any Transfer-Encoding must be exactly "chunked" and excludes
 * Content-Length; all Content-Length fields must agree.
 */
static int decide_framing(const struct router_header *h, size_t n,
                          uint8_t minor, bool is_request,
                          enum http1_framing *framing, uint64_t *length,
                          const char **err)
{
    bool te = false, cl = false, chunked = false;
    uint64_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (sv_eq_lit(h[i].name, "transfer-encoding")) {
            if (te) {
                *err = "multiple Transfer-Encoding fields";
                return -1;
            }
            te = true;
            chunked = sv_eq_lit(sv_trim(h[i].value), "chunked");
        } else if (sv_eq_lit(h[i].name, "content-length")) {
            uint64_t v;
            if (!parse_u64(sv_trim(h[i].value), &v)) {
                *err = "invalid Content-Length";
                return -1;
            }
            if (cl && v != len) {
                *err = "conflicting Content-Length fields";
                return -1;
            }
            cl = true;
            len = v;
        }
    }
    if (te) {
        if (is_request && minor == 0) {
            *err = "Transfer-Encoding on HTTP/1.0";
            return -1;
        }
        if (!chunked) {
            *err = "Transfer-Encoding other than chunked";
            return -1;
        }
        if (cl && is_request) {
            *err = "both Content-Length and Transfer-Encoding";
            return -1;
        }
        /* A response with both: TE wins (§6.3 rule 3); CL is dropped. */
        *framing = H1_F_CHUNKED;
        return 0;
    }
    if (cl) {
        *framing = len ? H1_F_LENGTH : H1_F_NONE;
        *length = len;
        return 0;
    }
    *framing = is_request ? H1_F_NONE : H1_F_CLOSE;
    return 0;
}

static enum http1_method method_id(struct strview m)
{
    static const struct {
        const char *name;
        enum http1_method id;
    } table[] = {
        {"GET", H1_M_GET},
        {"HEAD", H1_M_HEAD},
        {"OPTIONS", H1_M_OPTIONS},
        {"CONNECT", H1_M_CONNECT},
        {"PUT", H1_M_PUT},
        {"DELETE", H1_M_DELETE},
        {"TRACE", H1_M_TRACE},
    };
    for (size_t i = 0; i < ARRAY_LEN(table); i++)
        if (m.len == strlen(table[i].name) &&
            memcmp(m.p, table[i].name, m.len) == 0)
            return table[i].id;
    return H1_M_OTHER;
}

/* RFC 3986 §2.3 unreserved and §2.2 sub-delims. */
static bool is_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("-._~!$&'()*+,;=", c));
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * True when v is `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2,
 * §3.2.3): an IP-literal in brackets (IPv6 or IPvFuture characters), or a
 * reg-name / IPv4 of unreserved, sub-delims and pct-encoded octets; then
 * optionally ':' and digits. Empty is allowed (a target without authority,
 * RFC 9112 §3.2); no whitespace, no userinfo, no path.
 */
static bool host_is_valid(struct strview v)
{
    size_t i = 0;
    if (v.len && v.p[0] == '[') {
        for (i = 1; i < v.len && v.p[i] != ']'; i++) {
            unsigned char c = (unsigned char)v.p[i];
            if (!is_host_char(c) && c != ':')
                return false;
        }
        if (i == v.len || i == 1)
            return false;
        i++; /* past ']' */
    } else {
        for (; i < v.len && v.p[i] != ':'; i++) {
            unsigned char c = (unsigned char)v.p[i];
            if (c == '%') {
                if (i + 2 >= v.len || !is_hex((unsigned char)v.p[i + 1]) ||
                    !is_hex((unsigned char)v.p[i + 2]))
                    return false;
                i += 2;
            } else if (!is_host_char(c)) {
                return false;
            }
        }
    }
    if (i == v.len)
        return true;
    if (v.p[i] != ':')
        return false;
    for (i++; i < v.len; i++)
        if (!isdigit((unsigned char)v.p[i]))
            return false;
    return true;
}

/*
 * Turn the request target into origin-form (RFC 9112 §3.2). Absolute-form
 * keeps only path and query for the request line: weir connects to
 * configured endpoints only, never to the authority named in a request.
 * Its authority is kept in req->authority (it replaces Host, §3.2.2).
 */
static int origin_form(struct http1_request *req, const char **err)
{
    struct strview t = req->target;
    if (t.len > 0 && t.p[0] == '/') {
        req->path = t;
        return 0;
    }
    if (t.len == 1 && t.p[0] == '*' && req->method_id == H1_M_OPTIONS) {
        req->path = t;
        return 0;
    }
    size_t scheme = 0;
    if (t.len > 7 && strncasecmp(t.p, "http://", 7) == 0)
        scheme = 7;
    else if (t.len > 8 && strncasecmp(t.p, "https://", 8) == 0)
        scheme = 8;
    if (!scheme) {
        *err = "invalid request target";
        return -1;
    }
    const char *p = t.p + scheme, *end = t.p + t.len;
    while (p < end && *p != '/' && *p != '?')
        p++;
    /* An http(s) URI needs a host (RFC 9110 §4.2.1); userinfo is refused
     * (§4.2.4) and whatever else the authority holds must be a valid Host. */
    struct strview auth = {t.p + scheme, (size_t)(p - (t.p + scheme))};
    if (auth.len == 0 || auth.p[0] == ':' || memchr(auth.p, '@', auth.len) ||
        !host_is_valid(auth)) {
        *err = "invalid authority in request target";
        return -1;
    }
    req->authority = auth;
    if (p == end) {
        req->path.p = "/";
        req->path.len = 1;
    } else {
        /* "http://h?q" keeps "?q"; the writer puts the '/' before it. */
        req->path.p = p;
        req->path.len = (size_t)(end - p);
    }
    return 0;
}

int http1_parse_request(struct http1_request *req, const char *p, size_t len,
                        const char **err)
{
    llhttp_t parser;
    struct parse_ctx c = {.headers = req->headers, .max = req->max_headers};
    if (run_llhttp_request(&parser, &c, p, len, err) < 0)
        return c.too_many ? 431 : 400;
    if (!names_are_tokens(&c, p + len)) {
        *err = "invalid header field name";
        return 400;
    }
    req->n_headers = c.n;
    req->head_len = len;
    req->target = c.url;
    const char *sp = memchr(p, ' ', len);
    req->method.p = p;
    req->method.len = sp ? (size_t)(sp - p) : 0;
    req->method_id = method_id(req->method);
    if (parser.http_major != 1 || parser.http_minor > 1) {
        *err = "unsupported HTTP version";
        return 505;
    }
    req->minor = parser.http_minor;
    if (req->method_id == H1_M_CONNECT) {
        *err = "CONNECT is not supported";
        return 405;
    }
    /* TRACE echoes the request, headers added by proxies included (cookies,
     * X-Forwarded-For): refused as nginx does (RFC 9110 §9.3.8 lets a
     * server refuse it). */
    if (req->method_id == H1_M_TRACE) {
        *err = "TRACE is not supported";
        return 405;
    }
    req->authority.p = NULL;
    req->authority.len = 0;
    if (origin_form(req, err) < 0)
        return 400;
    if (decide_framing(req->headers, req->n_headers, req->minor, true,
                       &req->framing, &req->content_length, err) < 0)
        return 400;

    size_t hosts = 0, host_i = 0;
    bool conn_close = false, conn_keep = false, conn_upgrade = false;
    bool has_upgrade = false;
    req->expect_continue = false;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct router_header *h = &req->headers[i];
        if (sv_eq_lit(h->name, "host")) {
            hosts++;
            host_i = i;
        } else if (sv_eq_lit(h->name, "connection")) {
            conn_close |= list_has(h->value, "close");
            conn_keep |= list_has(h->value, "keep-alive");
            conn_upgrade |= list_has(h->value, "upgrade");
        } else if (sv_eq_lit(h->name, "upgrade")) {
            has_upgrade = true;
        } else if (sv_eq_lit(h->name, "expect")) {
            req->expect_continue = sv_eq_lit(sv_trim(h->value), "100-continue");
        }
    }
    /* RFC 9112 §3.2: exactly one Host in HTTP/1.1; at most one in 1.0. */
    if (hosts > 1 || (hosts == 0 && req->minor == 1)) {
        *err = hosts ? "multiple Host fields" : "missing Host field";
        return 400;
    }
    if (hosts) {
        /* §3.2: 400 for a Host whose value is not uri-host [":" port],
         * also when an absolute-form target makes it moot. */
        struct strview hv = sv_trim(req->headers[host_i].value);
        if (!host_is_valid(hv)) {
            *err = "invalid Host field";
            return 400;
        }
        /* §3.2.2: an absolute-form target's authority replaces Host, for
         * the rules and toward the upstream alike. */
        req->headers[host_i].value = req->authority.len ? req->authority : hv;
    }
    req->keep_alive = req->minor == 1 ? !conn_close : (conn_keep && !conn_close);
    req->upgrade = conn_upgrade && has_upgrade && req->minor == 1;
    return 0;
}

int http1_parse_response(struct http1_response *res, const char *p, size_t len,
                         bool head_request, const char **err)
{
    llhttp_t parser;
    struct parse_ctx c = {.headers = res->headers, .max = res->max_headers};
    if (run_llhttp(&parser, HTTP_RESPONSE, &c, p, len, err) < 0)
        return -1;
    if (parser.http_major != 1) {
        *err = "unsupported HTTP version from upstream";
        return -1;
    }
    if (!names_are_tokens(&c, p + len)) {
        *err = "invalid header field name from upstream";
        return -1;
    }
    res->n_headers = c.n;
    res->head_len = len;
    res->status = parser.status_code;
    /* RFC 9112 §4: status-code = 3DIGIT. llhttp 8.1 takes "HTTP/1.0 \r\n"
     * as status 0, which weir would write as "HTTP/1.1 0" and frame as 1xx. */
    if (res->status < 100 || res->status > 999) {
        *err = "invalid status code from upstream";
        return -1;
    }
    res->minor = parser.http_minor;
    res->reason = c.reason;
    if (decide_framing(res->headers, res->n_headers, res->minor, false,
                       &res->framing, &res->content_length, err) < 0)
        return -1;
    if (head_request || http1_status_has_no_body(res->status))
        res->framing = H1_F_NONE;
    bool conn_close = false, conn_keep = false;
    for (size_t i = 0; i < res->n_headers; i++) {
        if (sv_eq_lit(res->headers[i].name, "connection")) {
            conn_close |= list_has(res->headers[i].value, "close");
            conn_keep |= list_has(res->headers[i].value, "keep-alive");
        }
    }
    res->keep_alive = res->framing != H1_F_CLOSE && !conn_close &&
                      (res->minor == 1 || conn_keep);
    return 0;
}

bool http1_status_has_no_body(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* ---- head rewriting ------------------------------------------------ */

/* Hop-by-hop fields (RFC 9110 §7.6.1) and those weir re-states itself. */
static bool is_hop_by_hop(struct strview name)
{
/* clang-format off */
#define HOP(s) {s, sizeof(s) - 1}
    /* clang-format on */
    static const struct {
        const char *name;
        size_t len;
    } hop[] = {
        HOP("connection"),
        HOP("keep-alive"),
        HOP("proxy-connection"),
        HOP("te"),
        HOP("transfer-encoding"),
        HOP("upgrade"),
        HOP("trailer"),
        HOP("content-length"),
    };
#undef HOP
    for (size_t i = 0; i < ARRAY_LEN(hop); i++)
        if (name.len == hop[i].len && strncasecmp(name.p, hop[i].name, name.len) == 0)
            return true;
    return false;
}

/* The Connection fields of a message, found once per rewrite. */
struct conn_fields {
    const struct strview *v[8]; /* their values; more than 8 fields: see all */
    size_t n;
    bool all; /* too many to list: scan every field */
};

static void find_connection(const struct router_header *h, size_t n,
                            struct conn_fields *cf)
{
    cf->n = 0;
    cf->all = false;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name.len != 10 || !sv_eq_lit(h[i].name, "connection"))
            continue;
        if (cf->n == ARRAY_LEN(cf->v)) {
            cf->all = true;
            return;
        }
        cf->v[cf->n++] = &h[i].value;
    }
}

static bool token_in_list(struct strview list, struct strview name)
{
    size_t pos = 0;
    struct strview e;
    while (list_next(list, &pos, &e))
        if (e.len == name.len && strncasecmp(e.p, name.p, e.len) == 0)
            return true;
    return false;
}

/* True when a Connection field of the message names this field. */
static bool named_in_connection(const struct router_header *h, size_t n,
                                const struct conn_fields *cf, struct strview name)
{
    if (cf->all) {
        for (size_t i = 0; i < n; i++)
            if (sv_eq_lit(h[i].name, "connection") && token_in_list(h[i].value, name))
                return true;
        return false;
    }
    for (size_t i = 0; i < cf->n; i++)
        if (token_in_list(*cf->v[i], name))
            return true;
    return false;
}

/* A growing view into evbuffer-reserved memory. */
struct out {
    char *p;
    size_t len, cap;
};

static void out_add(struct out *o, const void *p, size_t n)
{
    /* The capacity is computed to fit; a cut head would let the next
     * message's bytes read as its headers, so never write one. */
    CHECK(o->len + n <= o->cap);
    if (n == 0)
        return; /* p may be NULL: an empty reason phrase is never set */
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

static void out_sv(struct out *o, struct strview v)
{
    out_add(o, v.p, v.len);
}

static void out_str(struct out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

static void out_fmt(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void out_fmt(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < o->cap - o->len ? (size_t)n : o->cap - o->len - 1;
}

static void out_begin(struct out *o, struct evbuffer *buf, size_t cap,
                      struct evbuffer_iovec *iov)
{
    int n = evbuffer_reserve_space(buf, (ev_ssize_t)cap, iov, 1);
    CHECK(n == 1 && iov->iov_len >= cap);
    o->p = iov->iov_base;
    o->len = 0;
    o->cap = cap;
}

static void out_commit(struct out *o, struct evbuffer *buf,
                       struct evbuffer_iovec *iov)
{
    iov->iov_len = o->len;
    int rc = evbuffer_commit_space(buf, iov, 1);
    CHECK(rc == 0);
}

/*
 * The client's address as text, for X-Forwarded-For. A worker formats the
 * same few addresses over and over (once per request; inet_ntop goes
 * through sprintf), so the last one is kept per thread. The returned text
 * stays valid until the next call on this thread.
 */
static const char *client_ip(const struct sockaddr *sa)
{
    static _Thread_local struct {
        sa_family_t family; /* AF_UNSPEC: empty */
        unsigned char addr[16];
        char text[INET6_ADDRSTRLEN];
    } last;
    const void *a;
    size_t alen;
    if (sa->sa_family == AF_INET) {
        a = &((const struct sockaddr_in *)sa)->sin_addr;
        alen = 4;
    } else if (sa->sa_family == AF_INET6) {
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        alen = 16;
    } else {
        return "unknown";
    }
    if (last.family != sa->sa_family || memcmp(last.addr, a, alen) != 0) {
        if (!inet_ntop(sa->sa_family, a, last.text, sizeof(last.text))) {
            last.family = AF_UNSPEC;
            return "unknown";
        }
        memcpy(last.addr, a, alen);
        last.family = sa->sa_family;
    }
    return last.text;
}

void http1_write_request(struct evbuffer *buf, const struct http1_request *req,
                         const struct http1_fwd *fwd)
{
    const char *ip = client_ip(fwd->client);
    /* Each field line can grow by one byte ("a:b" is written "a: b"); the
     * lines weir adds fit in 256 bytes. */
    size_t cap = req->head_len + req->n_headers + 256 + strlen(ip) +
                 (fwd->request_id.len ? fwd->request_id.len + 16 : 0);
    struct evbuffer_iovec iov;
    struct out o;
    out_begin(&o, buf, cap, &iov);

    out_sv(&o, req->method);
    out_str(&o, req->path.p[0] == '?' ? " /" : " ");
    out_sv(&o, req->path);
    out_str(&o, " HTTP/1.1\r\n");
    const struct router_header *h = req->headers;
    size_t n = req->n_headers;
    struct conn_fields cf;
    find_connection(h, n, &cf);
    bool have_xff = false, have_via = false, have_host = false;
    for (size_t i = 0; i < n; i++) {
        have_host |= h[i].name.len == 4 && sv_eq_lit(h[i].name, "host");
        /* X-Weir-Mirror is weir's own: only its copies to a shadow carry
         * it (mirror.c), so a client cannot make an app take a live
         * request for a mirror (and skip its side effects). */
        if (is_hop_by_hop(h[i].name) || named_in_connection(h, n, &cf, h[i].name) ||
            sv_eq_lit(h[i].name, "x-forwarded-proto") || sv_eq_lit(h[i].name, "x-weir-mirror"))
            continue;
        if (sv_eq_lit(h[i].name, "x-forwarded-for")) {
            have_xff = true; /* merged into one list below */
            continue;
        }
        if (fwd->request_id.len && sv_eq_lit(h[i].name, "x-request-id"))
            continue; /* replaced by the one weir logs, below */
        if (sv_eq_lit(h[i].name, "via")) {
            if (have_via)
                continue;
            have_via = true;
            out_str(&o, "Via: ");
            out_sv(&o, h[i].value);
            out_str(&o, ", 1.1 weir\r\n");
            continue;
        }
        out_sv(&o, h[i].name);
        out_str(&o, ": ");
        out_sv(&o, h[i].value);
        out_str(&o, "\r\n");
    }
    /* HTTP/1.0 with an absolute-form target and no Host: the target's
     * authority is the Host (RFC 9112 §3.2.2). */
    if (!have_host && req->authority.len) {
        out_str(&o, "Host: ");
        out_sv(&o, req->authority);
        out_str(&o, "\r\n");
    }
    /* Every X-Forwarded-For the client sent, merged, then the client. */
    out_str(&o, "X-Forwarded-For: ");
    if (have_xff) {
        for (size_t i = 0; i < n; i++)
            if (sv_eq_lit(h[i].name, "x-forwarded-for") && h[i].value.len) {
                out_sv(&o, h[i].value);
                out_str(&o, ", ");
            }
    }
    out_str(&o, ip);
    out_str(&o, "\r\n");
    out_str(&o, fwd->https ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
    if (fwd->request_id.len) {
        out_str(&o, "X-Request-Id: ");
        out_sv(&o, fwd->request_id);
        out_str(&o, "\r\n");
    }
    if (!have_via)
        out_str(&o, "Via: 1.1 weir\r\n");
    if (req->framing == H1_F_LENGTH)
        out_fmt(&o, "Content-Length: %llu\r\n",
                (unsigned long long)req->content_length);
    else if (req->framing == H1_F_CHUNKED)
        out_str(&o, "Transfer-Encoding: chunked\r\n");
    else if (req->method_id == H1_M_OTHER || req->method_id == H1_M_PUT) {
        /* A body-carrying method without a body: say so explicitly, since
         * the client's framing fields were removed (RFC 9110 §8.6). */
        for (size_t i = 0; i < n; i++)
            if (sv_eq_lit(h[i].name, "content-length")) {
                out_str(&o, "Content-Length: 0\r\n");
                break;
            }
    }
    if (req->upgrade) {
        for (size_t i = 0; i < n; i++)
            if (sv_eq_lit(h[i].name, "upgrade")) {
                out_str(&o, "Upgrade: ");
                out_sv(&o, h[i].value);
                out_str(&o, "\r\n");
                break;
            }
        out_str(&o, "Connection: upgrade\r\n");
    } else if (fwd->close) {
        out_str(&o, "Connection: close\r\n");
    }
    out_str(&o, "\r\n");
    out_commit(&o, buf, &iov);
}

enum http1_framing http1_write_response(struct evbuffer *buf,
                                        const struct http1_response *res,
                                        const struct http1_back *back)
{
    size_t cap = res->head_len + res->n_headers + 256 + /* see write_request */
                 (back->version_header ? strlen(back->version_header) +
                                             strlen(back->version)
                                       : 0) +
                 (back->set_cookie ? strlen(back->set_cookie) + 16 : 0);
    struct evbuffer_iovec iov;
    struct out o;
    out_begin(&o, buf, cap, &iov);

    bool upgrade = res->status == 101;
    enum http1_framing f = res->framing;
    bool close = back->close;
    if (f == H1_F_CHUNKED || f == H1_F_CLOSE) {
        if (back->client_minor == 0) {
            f = H1_F_CLOSE; /* 1.0 clients cannot take chunked */
            close = true;
        } else {
            f = H1_F_CHUNKED;
        }
    }
    if (res->status >= 100 && res->status <= 999) {
        char line[] = "HTTP/1.1 000 ";
        line[9] = (char)('0' + res->status / 100);
        line[10] = (char)('0' + res->status / 10 % 10);
        line[11] = (char)('0' + res->status % 10);
        out_add(&o, line, sizeof(line) - 1);
    } else {
        out_fmt(&o, "HTTP/1.1 %d ", res->status);
    }
    out_sv(&o, res->reason);
    out_str(&o, "\r\n");
    const struct router_header *h = res->headers;
    size_t n = res->n_headers;
    struct conn_fields cf;
    find_connection(h, n, &cf);
    for (size_t i = 0; i < n; i++) {
        struct strview name = h[i].name;
        if (sv_eq_lit(name, "content-length")) {
            /* Kept when it frames the body, or states the length for HEAD
             * and 304; dropped when TE overrode it, and on 1xx and 204,
             * which must not carry one (RFC 9110 §8.6). */
            if (res->framing == H1_F_CHUNKED || res->status < 200 ||
                res->status == 204)
                continue;
        } else if (upgrade && (sv_eq_lit(name, "upgrade") ||
                               sv_eq_lit(name, "connection"))) {
            /* 101: Upgrade and Connection pass through unchanged. */
        } else if (is_hop_by_hop(name) || named_in_connection(h, n, &cf, name)) {
            continue;
        }
        if (back->version_header && sv_eq_lit(name, back->version_header))
            continue;
        out_sv(&o, name);
        out_str(&o, ": ");
        out_sv(&o, h[i].value);
        out_str(&o, "\r\n");
    }
    if (back->version_header) {
        out_str(&o, back->version_header);
        out_str(&o, ": ");
        out_str(&o, back->version);
        out_str(&o, "\r\n");
    }
    if (back->set_cookie) {
        out_str(&o, "Set-Cookie: ");
        out_str(&o, back->set_cookie);
        out_str(&o, "\r\n");
    }
    if (!upgrade) {
        if (f == H1_F_CHUNKED)
            out_str(&o, "Transfer-Encoding: chunked\r\n");
        if (close)
            out_str(&o, "Connection: close\r\n");
        else if (back->client_minor == 0)
            out_str(&o, "Connection: keep-alive\r\n");
    }
    out_str(&o, "\r\n");
    out_commit(&o, buf, &iov);
    return f;
}

/* ---- chunked decoding ------------------------------------------------ */

void http1_chunked_init(struct http1_chunked *c)
{
    memset(c, 0, sizeof(*c));
}

void http1_chunk_move(struct evbuffer *in, struct evbuffer *out, size_t n)
{
    char hdr[24];
    int k = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
    evbuffer_add(out, hdr, (size_t)k);
    evbuffer_remove_buffer(in, out, n);
    evbuffer_add(out, "\r\n", 2);
}

void http1_chunk_end(struct evbuffer *out)
{
    evbuffer_add(out, "0\r\n\r\n", 5);
}

/*
 * Consume framing bytes (everything but chunk data) from the front of in.
 * Returns 1 when it stopped at data or the end, 0 when it needs more input,
 * -1 on malformed framing.
 */
static int chunked_framing(struct http1_chunked *c, struct evbuffer *in,
                           const char **err)
{
    for (;;) {
        if (c->state == H1_C_DATA || c->state == H1_C_DONE)
            return 1;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return 0;
        const unsigned char *p = v.iov_base;
        size_t i = 0;
        for (; i < v.iov_len && c->state != H1_C_DATA && c->state != H1_C_DONE;
             i++) {
            unsigned char ch = p[i];
            switch (c->state) {
            case H1_C_SIZE: {
                int hv = util_hexval(ch);
                if (hv >= 0) {
                    /* chunk-size = 1*HEXDIG of any length (RFC 9112 §7.1):
                     * leading zeros are fine, only the value is bounded
                     * (below 2^60, so the sum never overflows). */
                    if (c->remaining >= (UINT64_C(1) << 56)) {
                        *err = "chunk size too large";
                        return -1;
                    }
                    c->ndigits = 1;
                    c->remaining = c->remaining * 16 + (uint64_t)hv;
                } else if (c->ndigits == 0) {
                    *err = "invalid chunk size";
                    return -1;
                } else if (ch == ';') {
                    c->state = H1_C_EXT;
                    c->ext_len = 0;
                } else if (ch == '\r') {
                    c->state = H1_C_SIZE_LF;
                } else {
                    *err = "invalid chunk size";
                    return -1;
                }
                break;
            }
            case H1_C_EXT:
                if (ch == '\r') {
                    c->state = H1_C_SIZE_LF;
                } else if (ch == '\n' || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
                    *err = "invalid chunk extension";
                    return -1;
                } else if (++c->ext_len > HTTP1_CHUNK_EXT_MAX) {
                    *err = "chunk extensions too long";
                    return -1;
                }
                break;
            case H1_C_SIZE_LF:
                if (ch != '\n') {
                    *err = "bare CR in chunk size line";
                    return -1;
                }
                c->ndigits = 0;
                if (c->remaining == 0) {
                    c->state = H1_C_TRAILER;
                    c->line_len = 0;
                } else {
                    c->state = H1_C_DATA;
                }
                break;
            case H1_C_DATA_CR:
                if (ch != '\r') {
                    *err = "missing CRLF after chunk data";
                    return -1;
                }
                c->state = H1_C_DATA_LF;
                break;
            case H1_C_DATA_LF:
                if (ch != '\n') {
                    *err = "missing CRLF after chunk data";
                    return -1;
                }
                c->state = H1_C_SIZE;
                c->remaining = 0;
                break;
            case H1_C_TRAILER:
                if (ch == '\r') {
                    c->state = H1_C_TRAILER_LF;
                } else if (ch == '\n' || (ch < 0x20 && ch != '\t') || ch == 0x7f ||
                           (c->line_len == 0 && (ch == ' ' || ch == '\t'))) {
                    *err = "invalid trailer";
                    return -1;
                } else {
                    c->line_len++;
                    if (++c->trailer_len > HTTP1_TRAILER_MAX) {
                        *err = "trailer section too large";
                        return -1;
                    }
                }
                break;
            case H1_C_TRAILER_LF:
                if (ch != '\n') {
                    *err = "bare CR in trailer";
                    return -1;
                }
                if (c->line_len == 0)
                    c->state = H1_C_DONE;
                else {
                    c->state = H1_C_TRAILER;
                    c->line_len = 0;
                }
                break;
            case H1_C_DATA:
            case H1_C_DONE:
                break;
            }
        }
        evbuffer_drain(in, i);
    }
}

int http1_chunked_step(struct http1_chunked *c, struct evbuffer *in,
                       struct evbuffer *out, bool rechunk, size_t max_out,
                       const char **err)
{
    size_t moved = 0;
    for (;;) {
        int r = chunked_framing(c, in, err);
        if (r <= 0)
            return r;
        if (c->state == H1_C_DONE) {
            if (rechunk)
                http1_chunk_end(out);
            return 1;
        }
        size_t avail = evbuffer_get_length(in);
        if (avail == 0 || moved >= max_out)
            return 0;
        size_t n = avail;
        if (n > c->remaining)
            n = (size_t)c->remaining;
        if (n > max_out - moved)
            n = max_out - moved;
        if (rechunk)
            http1_chunk_move(in, out, n);
        else
            evbuffer_remove_buffer(in, out, n);
        moved += n;
        c->remaining -= n;
        if (c->remaining == 0)
            c->state = H1_C_DATA_CR;
    }
}

/* ---- errors weir answers itself -------------------------------------- */

const char *http1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

void http1_write_error(struct evbuffer *out, int status, bool close)
{
    const char *reason = http1_reason(status);
    char body[96];
    int blen = snprintf(body, sizeof(body), "%d %s\n", status, reason);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: %d\r\n"
                        "%s"
                        "\r\n%s",
                        status, reason, blen,
                        close ? "Connection: close\r\n" : "", body);
}
