/*
 * access_format.c — see access_format.h. Appends go into a bounded line
 * (struct line): they stop at its end, and the fields that can be long
 * (target, User-Agent, Referer, names) are cut earlier with "...", so a
 * line of hostile input is still one well-formed line. Strings go through
 * json.c's escaper (JSON) or nginx's \xHH escaping (combined).
 */
#include "access_format.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conn_tls.h"
#include "json.h"

#define ACCESS_TARGET_MAX 2048 /* bytes of the target kept in a line */
#define ACCESS_HEADER_MAX 512  /* bytes of User-Agent / Referer kept */

/* A bounded line under construction: appends stop at cap (fields that
 * could be long are cut earlier, with "...", so the line stays whole). */
struct line {
    char *p; /* borrowed: the caller's stack buffer */
    size_t len;
    size_t cap; /* bytes p may take */
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putc_(struct line *l, char c)
{
    if (l->len < l->cap)
        l->p[l->len++] = c;
}

static void putu(struct line *l, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && l->len < l->cap)
        l->p[l->len++] = tmp[--n];
}

/* Microseconds as milliseconds with three decimals: 1234 → "1.234". */
static void put_ms(struct line *l, uint64_t us)
{
    putu(l, us / 1000);
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    put(l, frac, sizeof(frac));
}

static const char hexdig[] = "0123456789abcdef";

/* s as JSON string contents (RFC 8259 §7, json.c's escaper, every control
 * character as \u00XX), at most max bytes of input; invalid UTF-8 becomes
 * U+FFFD so the line is always valid JSON. */
static void put_json(struct line *l, const char *s, size_t n, size_t max)
{
    bool cut = n > max;
    if (cut)
        n = max;
    for (size_t i = 0; i < n;) {
        if (l->cap - l->len < 8)
            return;
        /* Fast path: a run of printable ASCII that needs no escape. */
        size_t run = 0, room = l->cap - l->len - 8;
        while (i + run < n && run < room) {
            unsigned char c = (unsigned char)s[i + run];
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
                break;
            run++;
        }
        if (run) {
            memcpy(l->p + l->len, s + i, run);
            l->len += run;
            i += run;
            continue;
        }
        size_t elen;
        i += json_escape_char(s + i, n - i, JSON_ESC_UNICODE, l->p + l->len, &elen);
        l->len += elen;
    }
    if (cut)
        puts_(l, "...");
}

/* s as the inside of a quoted combined-log field: ", \, control bytes and
 * non-ASCII as \xHH (nginx's escaping), at most max bytes of input. */
static void put_clf(struct line *l, const char *s, size_t n, size_t max)
{
    bool cut = n > max;
    if (cut)
        n = max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (l->cap - l->len < 4)
            return;
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
            char esc[4] = {'\\', 'x', hexdig[c >> 4], hexdig[c & 15]};
            put(l, esc, 4);
        } else {
            l->p[l->len++] = (char)c;
        }
    }
    if (cut)
        puts_(l, "...");
}

/* A JSON string value or null. */
static void put_json_opt(struct line *l, const char *s, size_t n, size_t max)
{
    if (!s) {
        puts_(l, "null");
        return;
    }
    putc_(l, '"');
    put_json(l, s, n, max);
    putc_(l, '"');
}

static const struct router_header *find_header(const struct access_entry *e,
                                               const char *name)
{
    for (size_t i = 0; e->headers && i < e->n_headers; i++)
        if (util_sv_ieq(e->headers[i].name, name))
            return &e->headers[i];
    return NULL;
}

/* Append the decimal digits of v (0..255) at p; returns the new end. */
static char *put_octet(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* The client's IP (no port) and port. IPv4 is written by hand: this runs
 * for every logged request, and inet_ntop plus snprintf (and reading the
 * port back out of the text) was 9 % of weir's instructions with the log
 * on. iplen must hold an IPv6 text (INET6_ADDRSTRLEN). */
static void client_addr(const struct sockaddr *sa, char *ip, size_t iplen,
                        unsigned *port)
{
    *port = 0;
    ip[0] = '\0';
    if (sa->sa_family == AF_INET && iplen >= INET_ADDRSTRLEN) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        const unsigned char *b = (const unsigned char *)&in4->sin_addr;
        char *p = ip;
        for (int k = 0; k < 4; k++) {
            if (k)
                *p++ = '.';
            p = put_octet(p, b[k]);
        }
        *p = '\0';
        *port = ntohs(in4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen))
            ip[0] = '\0';
        *port = ntohs(in6->sin6_port);
    } else if (iplen > 4) {
        memcpy(ip, "unix", 5);
    }
}

/* What one JSON line needs besides the entry: computed once per line. */
struct json_ctx {
    struct access_format_clock *clock;
    const struct timespec *ts;
    char ip[64];
    unsigned port;
    bool have_addr;
};

static void json_field(struct line *l, struct json_ctx *x, enum access_field f,
                       const struct access_entry *e)
{
    const struct router_header *h;
    switch (f) {
    case ACCESS_F_TIME: {
        struct access_format_clock *r = x->clock;
        const struct timespec *ts = x->ts;
        if (r->iso_sec != ts->tv_sec || !r->iso[0]) {
            struct tm tm;
            gmtime_r(&ts->tv_sec, &tm);
            strftime(r->iso, sizeof(r->iso), "%Y-%m-%dT%H:%M:%S", &tm);
            r->iso_sec = ts->tv_sec;
        }
        long ms = ts->tv_nsec / 1000000;
        char msbuf[6] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
                         (char)('0' + ms % 10), 'Z', '"'};
        putc_(l, '"');
        puts_(l, r->iso);
        put(l, msbuf, sizeof(msbuf));
        return;
    }
    case ACCESS_F_REQUEST_ID:
        put_json_opt(l, e->request_id.len ? e->request_id.p : NULL, e->request_id.len, 256);
        return;
    case ACCESS_F_CLIENT:
    case ACCESS_F_CLIENT_PORT:
        if (!x->have_addr) {
            client_addr(e->client, x->ip, sizeof(x->ip), &x->port);
            x->have_addr = true;
        }
        if (f == ACCESS_F_CLIENT) {
            putc_(l, '"');
            puts_(l, x->ip);
            putc_(l, '"');
        } else {
            putu(l, x->port);
        }
        return;
    case ACCESS_F_METHOD:
        putc_(l, '"');
        put_json(l, e->method.p, e->method.len, 64);
        putc_(l, '"');
        return;
    case ACCESS_F_HOST:
        h = find_header(e, "host");
        put_json_opt(l, h ? h->value.p : NULL, h ? h->value.len : 0, ACCESS_HEADER_MAX);
        return;
    case ACCESS_F_TARGET:
        putc_(l, '"');
        put_json(l, e->target.p, e->target.len, ACCESS_TARGET_MAX);
        putc_(l, '"');
        return;
    case ACCESS_F_PROTOCOL:
        if (e->method.len && e->http2) {
            puts_(l, "\"HTTP/2.0\"");
        } else if (e->method.len) {
            puts_(l, "\"HTTP/1.");
            putu(l, e->http_minor);
            putc_(l, '"');
        } else {
            puts_(l, "null"); /* the request line did not parse */
        }
        return;
    case ACCESS_F_STATUS:
        putu(l, (uint64_t)(e->status < 0 ? 0 : e->status));
        return;
    case ACCESS_F_BYTES:
        putu(l, e->bytes);
        return;
    case ACCESS_F_BYTES_RECEIVED:
        putu(l, e->bytes_received);
        return;
    case ACCESS_F_VERSION:
        put_json_opt(l, e->version, e->version ? strlen(e->version) : 0, 256);
        return;
    case ACCESS_F_ENDPOINT:
        put_json_opt(l, e->endpoint, e->endpoint ? strlen(e->endpoint) : 0, 256);
        return;
    case ACCESS_F_ROUTE:
        if (e->version) {
            putc_(l, '"');
            puts_(l, router_reason_name(e->reason));
            putc_(l, '"');
        } else {
            puts_(l, "null");
        }
        return;
    case ACCESS_F_RULE:
        if (e->version && e->reason == ROUTE_R_RULE && e->rule >= 0)
            putu(l, (uint64_t)e->rule);
        else
            puts_(l, "null");
        return;
    case ACCESS_F_BUCKET:
        if (e->version && e->bucket >= 0)
            putu(l, (uint64_t)e->bucket);
        else
            puts_(l, "null");
        return;
    case ACCESS_F_UPSTREAM_MS:
        if (e->upstream_us)
            put_ms(l, e->upstream_us);
        else
            puts_(l, "null");
        return;
    case ACCESS_F_UPSTREAM_CONNECT_MS:
        if (e->connected)
            put_ms(l, e->upstream_connect_us);
        else
            puts_(l, "null"); /* a pooled conn, or no upstream at all */
        return;
    case ACCESS_F_DURATION_MS:
        put_ms(l, e->total_us);
        return;
    case ACCESS_F_RETRIES:
        putu(l, e->retries);
        return;
    case ACCESS_F_USER_AGENT:
        h = find_header(e, "user-agent");
        put_json_opt(l, h ? h->value.p : NULL, h ? h->value.len : 0, ACCESS_HEADER_MAX);
        return;
    case ACCESS_F_REFERER:
        h = find_header(e, "referer");
        put_json_opt(l, h ? h->value.p : NULL, h ? h->value.len : 0, ACCESS_HEADER_MAX);
        return;
    case ACCESS_F_ERROR:
        put_json_opt(l, e->error, e->error ? strlen(e->error) : 0, 256);
        return;
    case ACCESS_F_TLS:
    case ACCESS_F_SNI:
    case ACCESS_F_ALPN: {
        char alpn[64] = "";
        const char *v = NULL;
        if (e->tls && f == ACCESS_F_TLS)
            v = conn_tls_version(e->tls);
        else if (e->tls && f == ACCESS_F_SNI)
            v = conn_tls_sni(e->tls);
        else if (e->tls) {
            conn_tls_alpn(e->tls, alpn, sizeof(alpn));
            v = alpn;
        }
        put_json_opt(l, v && *v ? v : NULL, v ? strlen(v) : 0, 256);
        return;
    }
    case ACCESS_F_COUNT:
        break;
    }
    puts_(l, "null");
}

/* `"name":` of every field, with its length, built at compile time. */
#define ACCESS_FIELD_KEY(id, name) [ACCESS_F_##id] = {"\"" name "\":", sizeof(name) + 2},
static const struct {
    const char *s;
    size_t len;
} field_keys[ACCESS_F_COUNT] = {ACCESS_FIELDS(ACCESS_FIELD_KEY)};
#undef ACCESS_FIELD_KEY

static void format_json(struct line *l, struct access_format_clock *r,
                        const struct timespec *ts, const uint32_t *fields, size_t n,
                        const struct access_entry *e)
{
    struct json_ctx x = {.clock = r, .ts = ts};
    putc_(l, '{');
    size_t count = fields ? n : ACCESS_F_COUNT;
    bool first = true;
    for (size_t i = 0; i < count; i++) {
        enum access_field f = fields ? (enum access_field)fields[i] : (enum access_field)i;
        if ((unsigned)f >= ACCESS_F_COUNT)
            continue;
        if (!first)
            putc_(l, ',');
        first = false;
        put(l, field_keys[f].s, field_keys[f].len);
        json_field(l, &x, f, e);
    }
    putc_(l, '}');
}

/*
 * Combined log format (Apache/nginx), then weir's fields as key=value:
 *   IP - - [28/Nov/2026:14:30:07 +0000] "GET /x HTTP/1.1" 200 512 "REFERER" "UA"
 *   version=v1 endpoint=10.0.0.1:8080 route=split rule=- bucket=- upstream_ms=0.412
 *   duration_ms=0.530 retries=0 error="-" request_id=5f0c... bytes_received=78
 *   upstream_connect_ms=0.120 host="api.example.com"
 * (on one line). Absent values are "-", as in the combined format itself.
 */
static void format_combined(struct line *l, struct access_format_clock *r,
                            const struct timespec *ts, const struct access_entry *e)
{
    if (r->clf_sec != ts->tv_sec || !r->clf[0]) {
        struct tm tm;
        gmtime_r(&ts->tv_sec, &tm);
        strftime(r->clf, sizeof(r->clf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        r->clf_sec = ts->tv_sec;
    }
    char ip[64];
    unsigned port;
    client_addr(e->client, ip, sizeof(ip), &port);
    puts_(l, ip);
    puts_(l, " - - [");
    puts_(l, r->clf);
    puts_(l, "] \"");
    if (e->method.len) {
        put_clf(l, e->method.p, e->method.len, 64);
        putc_(l, ' ');
        put_clf(l, e->target.p, e->target.len, ACCESS_TARGET_MAX);
        if (e->http2) {
            puts_(l, " HTTP/2.0");
        } else {
            puts_(l, " HTTP/1.");
            putu(l, e->http_minor);
        }
    } else {
        putc_(l, '-');
    }
    puts_(l, "\" ");
    putu(l, (uint64_t)(e->status < 0 ? 0 : e->status));
    putc_(l, ' ');
    putu(l, e->bytes);
    const struct router_header *ua = find_header(e, "user-agent");
    const struct router_header *ref = find_header(e, "referer");
    puts_(l, " \"");
    if (ref)
        put_clf(l, ref->value.p, ref->value.len, ACCESS_HEADER_MAX);
    else
        putc_(l, '-');
    puts_(l, "\" \"");
    if (ua)
        put_clf(l, ua->value.p, ua->value.len, ACCESS_HEADER_MAX);
    else
        putc_(l, '-');
    puts_(l, "\" version=");
    puts_(l, e->version ? e->version : "-");
    puts_(l, " endpoint=");
    puts_(l, e->endpoint ? e->endpoint : "-");
    puts_(l, " route=");
    puts_(l, e->version ? router_reason_name(e->reason) : "-");
    puts_(l, " rule=");
    if (e->version && e->reason == ROUTE_R_RULE && e->rule >= 0)
        putu(l, (uint64_t)e->rule);
    else
        putc_(l, '-');
    puts_(l, " bucket=");
    if (e->version && e->bucket >= 0)
        putu(l, (uint64_t)e->bucket);
    else
        putc_(l, '-');
    puts_(l, " upstream_ms=");
    if (e->upstream_us)
        put_ms(l, e->upstream_us);
    else
        putc_(l, '-');
    puts_(l, " duration_ms=");
    put_ms(l, e->total_us);
    puts_(l, " retries=");
    putu(l, e->retries);
    puts_(l, " error=\"");
    if (e->error)
        put_clf(l, e->error, strlen(e->error), 256);
    else
        putc_(l, '-');
    puts_(l, "\" request_id=");
    if (e->request_id.len)
        put_clf(l, e->request_id.p, e->request_id.len, 256);
    else
        putc_(l, '-');
    puts_(l, " bytes_received=");
    putu(l, e->bytes_received);
    puts_(l, " upstream_connect_ms=");
    if (e->connected)
        put_ms(l, e->upstream_connect_us);
    else
        putc_(l, '-');
    const struct router_header *host = find_header(e, "host");
    puts_(l, " host=\"");
    if (host)
        put_clf(l, host->value.p, host->value.len, ACCESS_HEADER_MAX);
    else
        putc_(l, '-');
    putc_(l, '"');
}

size_t access_format_line_fields(char *buf, size_t cap, enum config_log_format format,
                                 const uint32_t *fields, size_t n,
                                 struct access_format_clock *clock,
                                 const struct timespec *ts, const struct access_entry *e)
{
    struct line l = {buf, 0, cap};
    if (format == LOG_F_COMBINED)
        format_combined(&l, clock, ts, e);
    else
        format_json(&l, clock, ts, fields, n, e);
    return l.len;
}

size_t access_format_line(char *buf, size_t cap, enum config_log_format format,
                          struct access_format_clock *clock,
                          const struct timespec *ts, const struct access_entry *e)
{
    return access_format_line_fields(buf, cap, format, NULL, 0, clock, ts, e);
}
