/*
 * test_http1.c — head vetting, request parsing (framing, smuggling shapes),
 * head rewriting toward the upstream and the client, chunked decoding.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http1.h"
#include "tap.h"

static struct router_header hdrs[64];

static int parse(const char *raw, struct http1_request *req, const char **err)
{
    size_t len = strlen(raw), head_len = 0;
    struct http1_scan sc = {0};
    *err = NULL;
    enum http1_scan_result r = http1_scan_head(&sc, raw, len, &head_len, err);
    if (r == H1_SCAN_BAD)
        return 400;
    if (r == H1_SCAN_MORE)
        return -1;
    memset(req, 0, sizeof(*req));
    req->headers = hdrs;
    req->max_headers = 64;
    return http1_parse_request(req, raw, head_len, err);
}

static char *drain_str(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

/*
 * Found by tests/fuzz (fuzz_http1_request, fuzz_http1_response): a head of
 * many "a:b" lines grows by one byte per line when rewritten ("a: b"), and
 * past 256 bytes of growth the rewrite was cut short — no blank line, so
 * the upstream (or the client) would read the next bytes as more headers.
 */
static void test_rewrite_many_fields(void)
{
    static struct router_header many[1000], back[1100];
    char raw[8192];
    size_t n = (size_t)snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 900; i++)
        n += (size_t)snprintf(raw + n, sizeof(raw) - n, "a:b\r\n");
    n += (size_t)snprintf(raw + n, sizeof(raw) - n, "\r\n");
    struct http1_request req = {.headers = many, .max_headers = 1000};
    const char *err = NULL;
    is_int(http1_parse_request(&req, raw, n, &err), 0, "900 short fields parse");
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    memset(&a6.sin6_addr, 0xfe, sizeof(a6.sin6_addr));
    struct evbuffer *b = evbuffer_new();
    http1_write_request(b, &req, &(struct http1_fwd){.client = (struct sockaddr *)&a6, .close = true});
    char *out = drain_str(b);
    size_t olen = strlen(out);
    ok(olen > 4 && strcmp(out + olen - 4, "\r\n\r\n") == 0 && strstr(out, "Connection: close\r\n"),
       "rewritten request with 900 fields is complete (%zu bytes)", olen);
    struct http1_request again = {.headers = back, .max_headers = 1100};
    is_int(http1_parse_request(&again, out, olen, &err), 0, "and parses back");
    is_int(again.n_headers, 905, "with every field plus XFF, XFP, Via, Connection");
    free(out);

    n = (size_t)snprintf(raw, sizeof(raw), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n");
    for (int i = 0; i < 250; i++)
        n += (size_t)snprintf(raw + n, sizeof(raw) - n, "a:b\r\n");
    n += (size_t)snprintf(raw + n, sizeof(raw) - n, "\r\n");
    struct http1_response res = {.headers = many, .max_headers = 256};
    is_int(http1_parse_response(&res, raw, n, false, &err), 0, "250 short response fields parse");
    enum http1_framing f = http1_write_response(b, &res, &(struct http1_back){.client_minor = 1, .close = true, .version_header = "X-Version", .version = "v2"});
    out = drain_str(b);
    olen = strlen(out);
    ok(f == H1_F_CHUNKED && olen > 4 && strcmp(out + olen - 4, "\r\n\r\n") == 0 &&
           strstr(out, "Transfer-Encoding: chunked\r\nConnection: close\r\n"),
       "rewritten response with 250 fields is complete and states its framing");
    free(out);

    /* Found by fuzz_http1_response under UBSan: an empty reason phrase
     * leaves reason.p NULL, which the writer passed to memcpy. */
    const char *empty = "HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n";
    is_int(http1_parse_response(&res, empty, strlen(empty), false, &err), 0,
           "empty reason phrase parses");
    http1_write_response(b, &res, &(struct http1_back){.client_minor = 1});
    out = drain_str(b);
    is_str(out, "HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n", "and is written back empty");
    free(out);

    /* Found by fuzz_http1_response: llhttp reads a missing status code as
     * 0; weir wrote "HTTP/1.1 0" and dropped the Content-Length framing
     * the body it then sent. A status must be three digits from 100. */
    const char *nocode = "HTTP/1.0 \r\nContent-Length:55\r\n\r\n";
    ok(http1_parse_response(&res, nocode, strlen(nocode), false, &err) < 0,
       "response without a status code refused (%s)", err ? err : "-");
    evbuffer_free(b);
}

/*
 * The scanner skips eight bytes at a time while it sees no control byte:
 * a control byte (and a DEL, a bare CR, a bare LF) must be found at every
 * offset of a long field value, and obs-text (0x80-0xff) and HTAB must not
 * be mistaken for one.
 */
static void test_scan_every_offset(void)
{
    static const char ctl[] = {0x01, 0x00, 0x1f, 0x7f, '\r', '\n'};
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: ";
    size_t pl = strlen(pre);
    int missed = 0, wrong_ok = 0;
    for (size_t k = 0; k < sizeof(ctl); k++) {
        for (size_t off = 0; off < 40; off++) {
            char buf[160];
            memcpy(buf, pre, pl);
            memset(buf + pl, 'v', 40);
            buf[pl + off] = ctl[k];
            memcpy(buf + pl + 40, "\r\n\r\n", 4);
            struct http1_scan sc = {0};
            size_t hl = 0;
            const char *err = NULL;
            if (http1_scan_head(&sc, buf, pl + 44, &hl, &err) != H1_SCAN_BAD)
                missed++;
        }
    }
    is_int(missed, 0, "a control byte, DEL, bare CR or bare LF is refused at every offset");
    for (size_t off = 0; off < 40; off++) {
        char buf[160];
        memcpy(buf, pre, pl);
        memset(buf + pl, 'v', 40);
        buf[pl + off] = (char)(0x80 + off);
        buf[pl + (off + 7) % 40] = '\t';
        memcpy(buf + pl + 40, "\r\n\r\n", 4);
        struct http1_scan sc = {0};
        size_t hl = 0;
        const char *err = NULL;
        if (http1_scan_head(&sc, buf, pl + 44, &hl, &err) != H1_SCAN_DONE || hl != pl + 44)
            wrong_ok++;
    }
    is_int(wrong_ok, 0, "obs-text and HTAB in a value pass at every offset, the head end is exact");
}

int main(void)
{
    struct http1_request req;
    const char *err;

    /* scanner is incremental and byte-exact */
    const char *head = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET";
    struct http1_scan sc = {0};
    size_t hl = 0;
    int r = 0;
    for (size_t n = 1; n <= strlen(head); n++) {
        r = http1_scan_head(&sc, head, n, &hl, &err);
        if (r != H1_SCAN_MORE)
            break;
    }
    ok(r == H1_SCAN_DONE && hl == 27, "scanner finds the head end byte by byte (%zu)", hl);

    is_int(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &req, &err), 0, "simple GET parses");
    ok(req.framing == H1_F_NONE && req.keep_alive && req.minor == 1, "no body, keep-alive, 1.1");
    is_int(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", &req, &err), 0, "CL parses");
    ok(req.framing == H1_F_LENGTH && req.content_length == 12, "CL framing");
    is_int(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &req, &err), 0, "TE parses");
    ok(req.framing == H1_F_CHUNKED, "chunked framing (case-insensitive)");
    is_int(parse("GET / HTTP/1.0\r\n\r\n", &req, &err), 0, "1.0 without Host is fine");
    ok(!req.keep_alive, "1.0 closes by default");
    is_int(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &req, &err), 0, "1.0 keep-alive");
    ok(req.keep_alive, "1.0 with Connection: keep-alive stays open");
    is_int(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &req, &err), 0, "close");
    ok(!req.keep_alive, "Connection: close honoured");

    struct {
        const char *raw;
        int status;
    } bad[] = {
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405},
        {"GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(parse(bad[i].raw, &req, &err), bad[i].status, "bad shape %zu refused (%s)", i,
               err ? err : "-");

    /* rewrite toward the upstream */
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    struct http1_fwd fwd = {.client = (struct sockaddr *)&sin};
    struct evbuffer *b = evbuffer_new();
    parse("POST http://h/p?q HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
          "X-Forwarded-For: 2.2.2.2\r\nConnection: X-Drop\r\nX-Drop: 1\r\nVia: 1.0 edge\r\n"
          "Transfer-Encoding: chunked\r\nUpgrade: h2c\r\n\r\n",
          &req, &err);
    http1_write_request(b, &req, &fwd);
    char *out = drain_str(b);
    is_str(out,
           "POST /p?q HTTP/1.1\r\nHost: h\r\nVia: 1.0 edge, 1.1 weir\r\n"
           "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           "request head rewritten (origin-form, XFF merged+appended, hop-by-hop gone)");
    free(out);

    /* rewrite toward the client */
    struct router_header rh[16];
    struct http1_response res = {.headers = rh, .max_headers = 16};
    const char *rraw = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, X-Hop\r\n"
                       "X-Hop: 1\r\nX-Weir-Version: spoofed\r\nX-App: 1\r\n\r\n";
    is_int(http1_parse_response(&res, rraw, strlen(rraw), false, &err), 0, "response parses");
    struct http1_back back = {.version_header = "X-Weir-Version", .version = "v2", .client_minor = 1};
    enum http1_framing f = http1_write_response(b, &res, &back);
    out = drain_str(b);
    is_str(out, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-App: 1\r\nX-Weir-Version: v2\r\n\r\n",
           "response head rewritten (version header set, upstream's copy dropped)");
    ok(f == H1_F_LENGTH, "framing kept");
    free(out);
    rraw = "HTTP/1.0 200 OK\r\n\r\n";
    http1_parse_response(&res, rraw, strlen(rraw), false, &err);
    ok(res.framing == H1_F_CLOSE && !res.keep_alive, "close-delimited response");
    f = http1_write_response(b, &res, &(struct http1_back){.client_minor = 1});
    out = drain_str(b);
    ok(f == H1_F_CHUNKED && strstr(out, "Transfer-Encoding: chunked"), "re-framed as chunked for a 1.1 client");
    free(out);

    /* chunked decoding, fed byte by byte */
    const char *body = "4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    struct http1_chunked ch;
    http1_chunked_init(&ch);
    struct evbuffer *in = evbuffer_new();
    int rc = 0;
    for (size_t i = 0; body[i] && rc == 0; i++) {
        evbuffer_add(in, body + i, 1);
        rc = http1_chunked_step(&ch, in, b, false, SIZE_MAX, &err);
    }
    out = drain_str(b);
    ok(rc == 1 && strcmp(out, "Wikipedia") == 0, "chunked decoded byte by byte: '%s'", out);
    free(out);
    is_int(evbuffer_get_length(in), 0, "byte by byte: every byte of the message consumed");

    /* The message followed by the next pipelined request in the same
     * buffer, in one piece and cut at every byte: the decoder must stop at
     * the end of the terminating CRLF and leave the next request unread. */
    const char *msg = "4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
    const char *next = "GET /next HTTP/1.1\r\n\r\n";
    size_t msg_len = strlen(msg), next_len = strlen(next);
    size_t bad_cut = 0, bad_rest = 0;
    for (size_t cut = 0; cut <= msg_len; cut++) {
        http1_chunked_init(&ch);
        evbuffer_drain(in, evbuffer_get_length(in));
        evbuffer_drain(b, evbuffer_get_length(b));
        evbuffer_add(in, msg, cut);
        rc = http1_chunked_step(&ch, in, b, false, SIZE_MAX, &err);
        const char *want_rest = ""; /* the whole message was there: nothing follows */
        if (rc == 0) {
            want_rest = next;
            evbuffer_add(in, msg + cut, msg_len - cut);
            evbuffer_add(in, next, next_len);
            while (rc == 0 && evbuffer_get_length(in) > 0)
                rc = http1_chunked_step(&ch, in, b, false, SIZE_MAX, &err);
        }
        char rest[64] = {0};
        size_t left = evbuffer_get_length(in);
        if (left < sizeof(rest))
            evbuffer_copyout(in, rest, left);
        out = drain_str(b);
        if (rc != 1 || strcmp(out, "Wikipedia") != 0)
            bad_cut++;
        if (strcmp(rest, want_rest) != 0)
            bad_rest++;
        free(out);
    }
    is_int(bad_cut, 0, "message followed by the next request, cut at every byte: decoded completely");
    is_int(bad_rest, 0, "decoder stops exactly at the message end: the next request is left unconsumed");

    /* a trailer-less message and the next request in one buffer, one call,
     * re-chunked toward the upstream */
    http1_chunked_init(&ch);
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_add_printf(in, "3\r\nabc\r\n0\r\n\r\n%s", next);
    rc = http1_chunked_step(&ch, in, b, true, SIZE_MAX, &err);
    out = drain_str(b);
    ok(rc == 1 && strcmp(out, "3\r\nabc\r\n0\r\n\r\n") == 0,
       "re-chunked without trailers (terminating chunk written once)");
    free(out);
    is_int(evbuffer_get_length(in), next_len, "the next request's %zu bytes are left in the input", next_len);

    const char *badc[] = {"5\r\nhelloX\r\n", "g\r\n", "5\nhello\r\n", "5\r\nhello\r0\r\n"};
    for (size_t i = 0; i < 4; i++) {
        http1_chunked_init(&ch);
        evbuffer_drain(in, evbuffer_get_length(in));
        evbuffer_add(in, badc[i], strlen(badc[i]));
        rc = http1_chunked_step(&ch, in, b, true, SIZE_MAX, &err);
        is_int(rc, -1, "bad chunk framing %zu refused (%s)", i, err ? err : "-");
        evbuffer_drain(b, evbuffer_get_length(b));
    }

    /* issue 13: chunk sizes with leading zeros (33 zeros, then 4e) */
    {
        char big[256];
        char data[0x4e];
        memset(data, 'z', sizeof(data));
        int k = snprintf(big, sizeof(big), "%s4e\r\n", "000000000000000000000000000000000");
        http1_chunked_init(&ch);
        evbuffer_drain(in, evbuffer_get_length(in));
        evbuffer_add(in, big, (size_t)k);
        evbuffer_add(in, data, sizeof(data));
        evbuffer_add(in, "\r\n0000\r\n\r\n", 11);
        rc = http1_chunked_step(&ch, in, b, false, SIZE_MAX, &err);
        is_int(rc, 1, "33 leading zeros in a chunk size accepted (%s)", rc < 0 ? err : "-");
        is_int((int)evbuffer_get_length(b), 0x4e, "all 0x4e data bytes decoded");
        evbuffer_drain(b, evbuffer_get_length(b));
        const char *sizes[] = {"0000000000000000000fffffffffffffff\r\n", "1000000000000000\r\n"};
        for (size_t i = 0; i < 2; i++) {
            http1_chunked_init(&ch);
            evbuffer_drain(in, evbuffer_get_length(in));
            evbuffer_add(in, sizes[i], strlen(sizes[i]));
            rc = http1_chunked_step(&ch, in, b, false, 0, &err);
            is_int(rc, i == 0 ? 0 : -1, "chunk size %zu: %s", i,
                   i == 0 ? "2^60-1 behind zeros accepted" : "2^60 refused as too large");
        }
    }

    /* issue 13: Host must be uri-host [":" port] (RFC 9112 §3.2) */
    struct {
        const char *raw;
        int status;
    } hosts[] = {
        {"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", 400},
        {"GET http://a/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        {"GET http://a/ HTTP/1.1\r\nHost: a\tb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\xd1\x81\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400},
        {"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET http://a b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: xn--e1a.b-c_d~e%41\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
        is_int(parse(hosts[i].raw, &req, &err), hosts[i].status, "Host case %zu (%s)", i,
               err ? err : "-");

    /* issue 21: the absolute-form target's authority wins over Host */
    parse("GET http://target:81/p HTTP/1.1\r\nHost: other\r\n\r\n", &req, &err);
    http1_write_request(b, &req, &fwd);
    out = drain_str(b);
    ok(strncmp(out, "GET /p HTTP/1.1\r\nHost: target:81\r\n", 34) == 0 && !strstr(out, "other"),
       "absolute-form: Host upstream is the target's authority");
    free(out);
    is_int(parse("GET http://t/x HTTP/1.0\r\n\r\n", &req, &err), 0, "1.0 absolute-form without Host");
    http1_write_request(b, &req, &fwd);
    out = drain_str(b);
    ok(strstr(out, "\r\nHost: t\r\n") != NULL, "1.0 absolute-form: Host added from the target");
    free(out);

    /* issue 21: TRACE refused */
    is_int(parse("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", &req, &err), 405, "TRACE gets 405");

    /* issue 13: raw octets >= 0x80 in the target pass unchanged */
    const char *utf = "GET /\xd1\x81\xd1\x82?q=\xff HTTP/1.1\r\nHost: a\r\n\r\n";
    is_int(parse(utf, &req, &err), 0, "raw UTF-8 target accepted (%s)", err ? err : "-");
    ok(req.target.len == 9 && memcmp(req.target.p, "/\xd1\x81\xd1\x82?q=\xff", 9) == 0,
       "target view holds the original octets");
    http1_write_request(b, &req, &fwd);
    out = drain_str(b);
    ok(strncmp(out, "GET /\xd1\x81\xd1\x82?q=\xff HTTP/1.1\r\nHost: a\r\n", 33) == 0,
       "raw octets forwarded byte for byte");
    free(out);
    /* clang-format off */
    const char *badt[] = {
        "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",   /* DEL */
        "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",   /* control */
        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",      /* space */
        "GET /\xd1 b HTTP/1.1\r\nHost: a\r\n\r\n",  /* space next to obs-text */
        "G\xd1T / HTTP/1.1\r\nHost: a\r\n\r\n",     /* obs-text in the method */
        "GET /\xd1 HTTP/1.\xd1\r\nHost: a\r\n\r\n", /* ... in the version */
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof(badt) / sizeof(badt[0]); i++)
        is_int(parse(badt[i], &req, &err), 400, "bad target %zu refused (%s)", i, err ? err : "-");

    /* issue 21: no Content-Length on 204 and 1xx toward the client; 304 keeps it */
    const char *r204 = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n";
    is_int(http1_parse_response(&res, r204, strlen(r204), false, &err), 0, "204 parses");
    http1_write_response(b, &res, &(struct http1_back){.client_minor = 1});
    out = drain_str(b);
    is_str(out, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", "204: Content-Length removed");
    free(out);
    const char *r304 = "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n";
    http1_parse_response(&res, r304, strlen(r304), false, &err);
    http1_write_response(b, &res, &(struct http1_back){.client_minor = 1});
    out = drain_str(b);
    is_str(out, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "304 keeps its Content-Length");
    free(out);

    evbuffer_free(in);
    evbuffer_free(b);
    test_rewrite_many_fields();
    test_scan_every_offset();
    return tap_done();
}
