/*
 * fuzz_http1_request.c — a request head from a hostile client, through what
 * client.c and proxy.c call on it: http1_scan_head (one shot, and again
 * incrementally over prefixes the input's hash picks), http1_parse_request
 * over an exact-size copy of the vetted head (so ASan sees any read past
 * it), and http1_write_request toward the upstream.
 *
 * Invariants:
 *  - the scanner's verdict does not depend on how the bytes arrived;
 *  - a vetted head is a prefix of the input ending in CRLF CRLF;
 *  - the rewritten head is itself a clean head (the scanner accepts it and
 *    it ends exactly at the end of what was written: no bare CR/LF, no
 *    truncation), parses back with the same method, path and framing, and
 *    carries exactly one X-Forwarded-For, X-Forwarded-Proto and Via.
 * The parser's limit is the largest max_header_count a config allows.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "fuzz.h"
#include "http1.h"

#define MAX_HEADERS 1000 /* config_parse.c: max_header_count's maximum */

static struct router_header hdrs[MAX_HEADERS];
static struct router_header hdrs2[MAX_HEADERS + 16];

static size_t count_named(const struct router_header *h, size_t n, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == strlen(name) && strncasecmp(h[i].name.p, name, h[i].name.len) == 0)
            k++;
    return k;
}

/* Some Connection field lists "host" (comma-separated, OWS around). */
static bool connection_names_host(const struct router_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i].name.len != 10 || strncasecmp(h[i].name.p, "connection", 10) != 0)
            continue;
        const char *v = h[i].value.p, *end = v + h[i].value.len;
        while (v < end) {
            const char *c = memchr(v, ',', (size_t)(end - v));
            const char *e = c ? c : end;
            const char *a = v, *b = e;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            if (b - a == 4 && strncasecmp(a, "host", 4) == 0)
                return true;
            v = c ? c + 1 : end;
        }
    }
    return false;
}

static void check_rewrite(const struct http1_request *req, const struct sockaddr *sa,
                          bool close)
{
    struct evbuffer *out = evbuffer_new();
    struct http1_fwd fwd = {.client = sa, .close = close};
    http1_write_request(out, req, &fwd);
    size_t len = evbuffer_get_length(out);
    char *w = malloc(len);
    evbuffer_remove(out, w, len);
    evbuffer_free(out);

    struct http1_scan sc = {0};
    size_t hl = 0;
    const char *err = NULL;
    FUZZ_CHECK(http1_scan_head(&sc, w, len, &hl, &err) == H1_SCAN_DONE);
    FUZZ_CHECK(hl == len);

    struct http1_request back;
    memset(&back, 0, sizeof(back));
    back.headers = hdrs2;
    back.max_headers = MAX_HEADERS + 16;
    int st = http1_parse_request(&back, w, len, &err);
    /* A head without Host goes upstream without one: HTTP/1.0 without
     * Host, or a Host the client named in Connection (RFC 9110 §7.6.1
     * makes that hop-by-hop). Everything else must parse back. */
    if (st != 0) {
        FUZZ_CHECK(st == 400 && strcmp(err, "missing Host field") == 0);
        FUZZ_CHECK(count_named(req->headers, req->n_headers, "host") == 0 ||
                   connection_names_host(req->headers, req->n_headers));
        free(w);
        return;
    }
    FUZZ_CHECK(back.minor == 1);
    FUZZ_CHECK(back.method.len == req->method.len &&
               memcmp(back.method.p, req->method.p, req->method.len) == 0);
    if (req->path.p[0] == '?') {
        FUZZ_CHECK(back.path.len == req->path.len + 1 && back.path.p[0] == '/' &&
                   memcmp(back.path.p + 1, req->path.p, req->path.len) == 0);
    } else {
        FUZZ_CHECK(back.path.len == req->path.len &&
                   memcmp(back.path.p, req->path.p, req->path.len) == 0);
    }
    FUZZ_CHECK(back.framing == req->framing);
    if (req->framing == H1_F_LENGTH)
        FUZZ_CHECK(back.content_length == req->content_length);
    FUZZ_CHECK(back.upgrade == req->upgrade);
    FUZZ_CHECK(count_named(back.headers, back.n_headers, "x-forwarded-for") == 1);
    FUZZ_CHECK(count_named(back.headers, back.n_headers, "x-forwarded-proto") == 1);
    FUZZ_CHECK(count_named(back.headers, back.n_headers, "via") == 1);
    FUZZ_CHECK(count_named(back.headers, back.n_headers, "transfer-encoding") +
               count_named(back.headers, back.n_headers, "content-length") <= 1);
    free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct http1_scan sc = {0};
    size_t head_len = 0;
    const char *err = NULL;
    enum http1_scan_result r = http1_scan_head(&sc, p, size, &head_len, &err);

    /* The same bytes arriving in pieces (client.c rescans the grown buffer). */
    uint64_t seed = fuzz_hash(data, size);
    struct http1_scan inc = {0};
    size_t inc_len = 0;
    const char *inc_err = NULL;
    enum http1_scan_result ri = H1_SCAN_MORE;
    for (size_t n = 0; n < size && ri == H1_SCAN_MORE;) {
        n += 1 + fuzz_rand(&seed) % 64;
        if (n > size)
            n = size;
        ri = http1_scan_head(&inc, p, n, &inc_len, &inc_err);
    }
    if (size == 0)
        ri = http1_scan_head(&inc, p, 0, &inc_len, &inc_err);
    FUZZ_CHECK(ri == r);
    if (r == H1_SCAN_DONE)
        FUZZ_CHECK(inc_len == head_len);
    if (r == H1_SCAN_BAD)
        FUZZ_CHECK(err != NULL);
    if (r != H1_SCAN_DONE)
        return 0;
    FUZZ_CHECK(head_len >= 4 && head_len <= size);
    FUZZ_CHECK(memcmp(p + head_len - 4, "\r\n\r\n", 4) == 0);

    /* proxy.c parses its own copy of exactly head_len bytes. */
    char *head = malloc(head_len);
    memcpy(head, p, head_len);
    struct http1_request req;
    memset(&req, 0, sizeof(req));
    req.headers = hdrs;
    req.max_headers = MAX_HEADERS;
    err = NULL;
    int status = http1_parse_request(&req, head, head_len, &err);
    if (status != 0) {
        FUZZ_CHECK(status == 400 || status == 405 || status == 431 || status == 505);
        FUZZ_CHECK(err != NULL);
        free(head);
        return 0;
    }
    FUZZ_CHECK(req.n_headers <= MAX_HEADERS);
    FUZZ_CHECK(req.minor <= 1);
    FUZZ_CHECK(req.path.len > 0);
    FUZZ_CHECK(req.framing == H1_F_NONE || req.framing == H1_F_LENGTH ||
               req.framing == H1_F_CHUNKED);

    /* The longest client address text (IPv6), and an IPv4 one. */
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    memset(&a6.sin6_addr, 0xfe, sizeof(a6.sin6_addr));
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_addr.s_addr = htonl(0x0a000001);
    check_rewrite(&req, (const struct sockaddr *)&a6, true);
    check_rewrite(&req, (const struct sockaddr *)&a4, false);
    free(head);
    return 0;
}
