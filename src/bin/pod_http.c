/*
 * pod_http.c — weir-pod's HTTP side: parsing requests with llhttp (in place,
 * from the client's input buffer, one request per llhttp_execute() call),
 * routing the target to an answer, and queueing that answer in the
 * client's output. Owns struct req and the answers' bytes; does not own
 * sockets, timers or the connection state machine (pod_conn.c), except
 * that an answer moves c->state on (READ, WAIT, STREAM, TUNNEL, CLOSING).
 *
 * Hot path: the keep-alive demo answer is one memcpy of a per-worker
 * prebuilt response, rebuilt when the Date second changes. Streamed
 * bodies are references to one static page of 'x'.
 */
#include "pod.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define STREAM_PIECE POD_PAGE /* one reference to pod_http_x_page */

/* Head-building flags. */
enum {
    HF_CHUNKED = 1,    /* Transfer-Encoding: chunked */
    HF_NO_LENGTH = 2,  /* no Content-Length (1xx, 204, 304) */
    HF_CLOSE = 4,      /* Connection: close */
    HF_KEEP_ALIVE = 8, /* Connection: keep-alive (HTTP/1.0 clients) */
    HF_UPGRADE = 16,   /* Connection: Upgrade + Upgrade: websocket */
};

char pod_http_x_page[POD_PAGE]; /* 'x' bytes; written once by pod_http_init */

/* ---- small buffers ------------------------------------------------------ */

struct outbuf {
    char *p; /* borrowed */
    size_t len, cap;
};

static void ob_put(struct outbuf *b, const char *s, size_t n)
{
    CHECK(b->len + n <= b->cap);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

__attribute__((format(printf, 2, 3))) static void ob_putf(struct outbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < b->cap - b->len);
    b->len += (size_t)n;
}

static const char *status_reason(int code)
{
    switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

/* Refresh the cached Date line and the prebuilt demo answer once a second. */
void pod_http_refresh_date(struct worker *w)
{
    time_t now = time(NULL);
    if (now == w->date_sec)
        return;
    w->date_sec = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    w->date_len = strftime(w->date, sizeof(w->date),
                           "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    struct outbuf b = {w->demo, 0, sizeof(w->demo)};
    ob_put(&b, "HTTP/1.1 200 OK\r\n", 17);
    ob_put(&b, w->date, w->date_len);
    ob_put(&b, w->cfg->ident, w->cfg->ident_len);
    ob_putf(&b, "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: %zu\r\n\r\n",
            w->cfg->demo_body_len);
    w->demo_head_len = b.len;
    ob_put(&b, w->cfg->demo_body, w->cfg->demo_body_len);
    w->demo_len = b.len;
}

/* ---- answers ------------------------------------------------------------ */

/* --verbose: one line per answer. */
static void conn_log(const struct conn *c, int status)
{
    fprintf(stderr, "c#%u.%" PRIu64 " %s %.*s %d\n", c->w->id, c->id,
            llhttp_method_name((llhttp_method_t)c->parser.method),
            (int)c->url_len, c->url, status);
}

/* Queue a response head; Connection handling follows the request. */
static void conn_write_head(struct conn *c, int status, const char *ctype,
                            uint64_t clen, unsigned hf, const char *extra)
{
    struct req *r = &c->req;
    char hb[1024 + 2 * IDENT_MAX];
    struct outbuf b = {hb, 0, sizeof(hb)};

    if (!r->keep_alive)
        hf |= HF_CLOSE;
    else if (!r->http11)
        hf |= HF_KEEP_ALIVE;
    pod_http_refresh_date(c->w);
    ob_putf(&b, "HTTP/1.1 %d %s\r\n", status, status_reason(status));
    ob_put(&b, c->w->date, c->w->date_len);
    ob_put(&b, c->w->cfg->ident, c->w->cfg->ident_len);
    if (ctype)
        ob_putf(&b, "Content-Type: %s\r\n", ctype);
    if (hf & HF_CHUNKED)
        ob_put(&b, "Transfer-Encoding: chunked\r\n", 28);
    else if (!(hf & HF_NO_LENGTH))
        ob_putf(&b, "Content-Length: %" PRIu64 "\r\n", clen);
    /* 101 ignores keep-alive: the connection stops being HTTP (RFC 9110 §7.8). */
    if ((hf & HF_UPGRADE) && status == 101)
        ob_put(&b, "Connection: Upgrade\r\nUpgrade: websocket\r\n", 41);
    else if (hf & HF_UPGRADE) /* 426 must name the protocol (RFC 9110 §15.5.22) */
        ob_putf(&b, "Connection: Upgrade%s\r\nUpgrade: websocket\r\n",
                (hf & HF_CLOSE) ? ", close" : "");
    else if (hf & HF_CLOSE)
        ob_put(&b, "Connection: close\r\n", 19);
    else if (hf & HF_KEEP_ALIVE)
        ob_put(&b, "Connection: keep-alive\r\n", 24);
    if (extra)
        ob_put(&b, extra, strlen(extra));
    ob_put(&b, "\r\n", 2);
    evbuffer_add(c->out, hb, b.len);
    if (c->w->cfg->verbose)
        conn_log(c, status);
}

/* The answer is fully queued: go on with the next request, or close. */
static void conn_response_done(struct conn *c)
{
    c->state = c->req.keep_alive ? CONN_S_READ : CONN_S_CLOSING;
}

/* Queue a complete answer with a small body. */
static void conn_answer(struct conn *c, int status, const char *body,
                        size_t len, const char *extra)
{
    conn_write_head(c, status, "text/plain; charset=utf-8", len, 0, extra);
    if (!c->req.head)
        evbuffer_add(c->out, body, len);
    conn_response_done(c);
}

static void conn_answer_str(struct conn *c, int status, const char *body)
{
    conn_answer(c, status, body, strlen(body), NULL);
}

/* Answer a request the parser rejected, then close (RFC 9112 §2.2). */
static void conn_fail(struct conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s: %s\n", status_reason(status), why);
    c->req.keep_alive = false;
    c->req.head = false;
    conn_answer(c, status, body, (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1,
                NULL);
}

void pod_http_fill(struct conn *c)
{
    while (c->stream_left > 0 && evbuffer_get_length(c->out) < OUT_HIGH) {
        size_t n = c->stream_left < STREAM_PIECE ? (size_t)c->stream_left : STREAM_PIECE;
        if (c->stream_chunked) {
            char h[32];
            int hl = snprintf(h, sizeof(h), "%zx\r\n", n);
            evbuffer_add(c->out, h, (size_t)hl);
        }
        evbuffer_add_reference(c->out, pod_http_x_page, n, NULL, NULL);
        if (c->stream_chunked)
            evbuffer_add(c->out, "\r\n", 2);
        c->stream_left -= n;
    }
    if (c->stream_left == 0) {
        if (c->stream_chunked)
            evbuffer_add(c->out, "0\r\n\r\n", 5);
        conn_response_done(c);
    }
}

static void conn_answer_probe(struct conn *c)
{
    struct req *r = &c->req;
    llhttp_method_t m = (llhttp_method_t)c->parser.method;
    bool get = m == HTTP_GET || m == HTTP_HEAD;

    switch (r->route) {
    case ROUTE_LIVE:
        if (!get)
            break;
        conn_answer_str(c, 200, "ok\n");
        return;
    case ROUTE_READY:
        if (!get)
            break;
        if (atomic_load_explicit(&c->w->cfg->ready, memory_order_relaxed))
            conn_answer_str(c, 200, "ready\n");
        else
            conn_answer_str(c, 503, "not ready\n");
        return;
    case ROUTE_READY_ON:
    case ROUTE_READY_OFF:
        if (m != HTTP_POST) {
            conn_answer(c, 405, "method not allowed\n", 19, "Allow: POST\r\n");
            return;
        }
        atomic_store(&c->w->cfg->ready, r->route == ROUTE_READY_ON);
        conn_answer_str(c, 200, r->route == ROUTE_READY_ON ? "ready\n" : "not ready\n");
        return;
    case ROUTE_FAULTS_ON:
    case ROUTE_FAULTS_OFF:
        if (m != HTTP_POST) {
            conn_answer(c, 405, "method not allowed\n", 19, "Allow: POST\r\n");
            return;
        }
        atomic_store(&c->w->cfg->faults, r->route == ROUTE_FAULTS_ON);
        conn_answer_str(c, 200, r->route == ROUTE_FAULTS_ON ? "faults on\n" : "faults off\n");
        return;
    default:
        conn_answer_str(c, 404, "not found\n");
        return;
    }
    conn_answer(c, 405, "method not allowed\n", 19, "Allow: GET, HEAD\r\n");
}

void pod_http_respond(struct conn *c)
{
    struct req *r = &c->req;
    char body[128];
    int n;

    if (r->injected) {
        conn_answer_str(c, 500, "error injected\n");
        return;
    }
    switch (r->route) {
    case ROUTE_DEMO:
        if (r->keep_alive && r->http11) {
            pod_http_refresh_date(c->w);
            evbuffer_add(c->out, c->w->demo, r->head ? c->w->demo_head_len : c->w->demo_len);
            if (c->w->cfg->verbose)
                conn_log(c, 200);
            conn_response_done(c);
        } else {
            conn_answer(c, 200, c->w->cfg->demo_body, c->w->cfg->demo_body_len, NULL);
        }
        return;
    case ROUTE_ECHO:
        if (r->echo_too_large) {
            conn_answer_str(c, 413, "echo body limited to 1 MiB; use /upload\n");
            return;
        }
        conn_write_head(c, 200, "text/plain; charset=utf-8",
                        evbuffer_get_length(c->echo), 0, NULL);
        if (r->head)
            evbuffer_drain(c->echo, evbuffer_get_length(c->echo));
        else
            evbuffer_add_buffer(c->out, c->echo);
        conn_response_done(c);
        return;
    case ROUTE_UPLOAD:
        n = snprintf(body, sizeof(body), "received %" PRIu64 " bytes\n", r->body_bytes);
        conn_answer(c, 200, body, (size_t)n, NULL);
        return;
    case ROUTE_STATUS:
        /* RFC 9110 §8.6: no Content-Length (and no body) in 204; 304 has no body. */
        if (r->status == 204 || r->status == 304) {
            conn_write_head(c, r->status, NULL, 0, HF_NO_LENGTH, NULL);
            conn_response_done(c);
            return;
        }
        n = snprintf(body, sizeof(body), "%d %s\n", r->status, status_reason(r->status));
        conn_answer(c, r->status, body, (size_t)n, NULL);
        return;
    case ROUTE_BYTES:
    case ROUTE_CHUNKED:
        /* RFC 9112 §7: never chunked to an HTTP/1.0 client. */
        c->stream_chunked = r->route == ROUTE_CHUNKED && r->http11;
        conn_write_head(c, 200, "application/octet-stream", r->arg,
                        c->stream_chunked ? HF_CHUNKED : 0, NULL);
        c->stream_left = r->head ? 0 : r->arg;
        if (r->head || (r->arg == 0 && !c->stream_chunked))
            conn_response_done(c);
        else
            c->state = CONN_S_STREAM;
        return;
    case ROUTE_SLEEP:
        n = snprintf(body, sizeof(body), "slept %" PRIu64 " ms\n", r->arg);
        conn_answer(c, 200, body, (size_t)n, NULL);
        return;
    case ROUTE_CLOSE:
        r->keep_alive = false;
        conn_answer_str(c, 200, "closing\n");
        return;
    case ROUTE_WS:
        if (r->will_upgrade) {
            conn_write_head(c, 101, NULL, 0, HF_NO_LENGTH | HF_UPGRADE, NULL);
            c->state = CONN_S_TUNNEL;
            return;
        }
        conn_write_head(c, 426, "text/plain; charset=utf-8", 17, HF_UPGRADE, NULL);
        if (!r->head)
            evbuffer_add(c->out, "upgrade required\n", 17);
        conn_response_done(c);
        return;
    case ROUTE_BAD:
        conn_answer_str(c, 400, r->bad_msg);
        return;
    case ROUTE_GRPC_UNARY:
    case ROUTE_GRPC_STREAM:
    case ROUTE_GRPC_CLIENT:
    case ROUTE_GRPC_SERVER:
    case ROUTE_GRPC_UNKNOWN:
        conn_answer_str(c, 505, "gRPC needs HTTP/2 (h2c with prior knowledge)\n");
        return;
    default:
        conn_answer_probe(c);
        return;
    }
}

/* ---- routing ------------------------------------------------------------- */

/* Does path start with prefix? If so, *out = the decimal number after it,
 * *malformed = it is not all digits or is above max. */
static bool path_number(struct strview path, const char *prefix, uint64_t max,
                        uint64_t *out, bool *malformed)
{
    size_t pl = strlen(prefix);
    if (path.len < pl || memcmp(path.p, prefix, pl) != 0)
        return false;
    uint64_t v = 0;
    *malformed = path.len == pl;
    for (size_t i = pl; i < path.len && !*malformed; i++) {
        if (path.p[i] < '0' || path.p[i] > '9' || v > max / 10)
            *malformed = true;
        else
            v = v * 10 + (uint64_t)(path.p[i] - '0');
    }
    *malformed = *malformed || v > max;
    *out = v;
    return true;
}

static bool path_is(struct strview path, const char *s)
{
    return path.len == strlen(s) && memcmp(path.p, s, path.len) == 0;
}

void pod_http_route(struct req *r, const char *url, size_t url_len, bool probe_listener,
                    bool has_probe, bool is_connect)
{
    struct strview path = {url, url_len};
    const char *q = memchr(url, '?', url_len);
    if (q)
        path.len = (size_t)(q - url);
    /* absolute-form (RFC 9112 §3.2.2): skip scheme and authority. */
    const char *sep = path.len > 7 ? memmem(path.p, path.len, "://", 3) : NULL;
    if (sep && path.p[0] != '/') {
        const char *slash = memchr(sep + 3, '/', (size_t)(path.p + path.len - sep - 3));
        path.len = slash ? (size_t)(path.p + path.len - slash) : 1;
        path.p = slash ? slash : "/";
    }

    bool probes = probe_listener || !has_probe;
    bool bad = false;
    if (probes && path_is(path, "/live"))
        r->route = ROUTE_LIVE;
    else if (probes && path_is(path, "/ready"))
        r->route = ROUTE_READY;
    else if (probes && path_is(path, "/ready/on"))
        r->route = ROUTE_READY_ON;
    else if (probes && path_is(path, "/ready/off"))
        r->route = ROUTE_READY_OFF;
    else if (probes && path_is(path, "/faults/on"))
        r->route = ROUTE_FAULTS_ON;
    else if (probes && path_is(path, "/faults/off"))
        r->route = ROUTE_FAULTS_OFF;
    else if (probe_listener)
        r->route = ROUTE_NOT_FOUND;
    else if (path_is(path, "/weir.Echo/Unary"))
        r->route = ROUTE_GRPC_UNARY;
    else if (path_is(path, "/weir.Echo/Stream"))
        r->route = ROUTE_GRPC_STREAM;
    else if (path_is(path, "/weir.Echo/ClientStream"))
        r->route = ROUTE_GRPC_CLIENT;
    else if (path_is(path, "/weir.Echo/ServerStream"))
        r->route = ROUTE_GRPC_SERVER;
    else if (path.len > 11 && memcmp(path.p, "/weir.Echo/", 11) == 0)
        r->route = ROUTE_GRPC_UNKNOWN;
    else if (path_is(path, "/echo") || (path.len > 5 && memcmp(path.p, "/echo/", 6) == 0))
        r->route = ROUTE_ECHO;
    else if (path_is(path, "/upload"))
        r->route = ROUTE_UPLOAD;
    else if (path_is(path, "/close"))
        r->route = ROUTE_CLOSE;
    else if (path_is(path, "/ws"))
        r->route = ROUTE_WS;
    else if (path_number(path, "/status/", 999, &r->arg, &bad)) {
        r->route = ROUTE_STATUS;
        r->status = (int)r->arg;
        bad = bad || r->status < 200; /* a 1xx is not a final answer */
    } else if (path_number(path, "/bytes/", UINT64_C(1) << 50, &r->arg, &bad))
        r->route = ROUTE_BYTES;
    else if (path_number(path, "/chunked/", UINT64_C(1) << 50, &r->arg, &bad))
        r->route = ROUTE_CHUNKED;
    else if (path_number(path, "/sleep/", 86400000, &r->arg, &bad))
        r->route = ROUTE_SLEEP;
    else
        r->route = ROUTE_DEMO;
    if (bad) {
        r->bad_msg = r->route == ROUTE_STATUS ? "status must be 200..999\n"
                                              : "malformed number in path\n";
        r->route = ROUTE_BAD;
    }
    /* A 2xx to CONNECT would mean "tunnel open" (RFC 9110 §9.3.6). */
    if (is_connect && !probe_listener) {
        r->bad_msg = "CONNECT is not supported\n";
        r->route = ROUTE_BAD;
    }
}

/* Pick the route from the target (origin-form or absolute-form). */
static void conn_route(struct conn *c)
{
    pod_http_route(&c->req, c->url, c->url_len, c->probe_listener, c->w->cfg->has_probe,
                   c->parser.method == HTTP_CONNECT);
}

/* ---- llhttp callbacks ---------------------------------------------------- */

static int on_message_begin(llhttp_t *p)
{
    struct conn *c = p->data;
    memset(&c->req, 0, sizeof(c->req));
    c->url_len = 0;
    if (c->echo)
        evbuffer_drain(c->echo, evbuffer_get_length(c->echo));
    return 0;
}

static int on_head_bytes(struct conn *c, size_t len)
{
    c->req.head_bytes += len;
    if (c->req.head_bytes <= HEAD_MAX)
        return 0;
    c->req.fail_status = 431;
    return -1;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->url_len + len > URL_MAX) {
        c->req.fail_status = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return on_head_bytes(c, len);
}

static int on_url_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->req.head = p->method == HTTP_HEAD;
    conn_route(c);
    if (c->req.route == ROUTE_ECHO && !c->echo)
        c->echo = evbuffer_new();
    CHECK(c->req.route != ROUTE_ECHO || c->echo);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = &c->req;
    if (r->in_body) /* trailers: counted, not echoed */
        return on_head_bytes(c, len);
    if (r->route == ROUTE_ECHO)
        evbuffer_add(c->echo, at, len);
    if (r->name_len != UINT8_MAX) {
        if (r->name_len + len < sizeof(r->name)) {
            memcpy(r->name + r->name_len, at, len);
            r->name_len = (uint8_t)(r->name_len + len);
        } else {
            r->name_len = UINT8_MAX;
        }
    }
    return on_head_bytes(c, len);
}

static int on_header_field_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    struct req *r = &c->req;
    if (r->in_body)
        return 0;
    if (r->route == ROUTE_ECHO)
        evbuffer_add(c->echo, ": ", 2);
    struct strview name = {r->name, r->name_len == UINT8_MAX ? 0 : r->name_len};
    r->hdr = util_sv_ieq(name, "upgrade")  ? HDR_UPGRADE
             : util_sv_ieq(name, "expect") ? HDR_EXPECT
                                           : HDR_OTHER;
    r->value_len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = &c->req;
    if (r->in_body)
        return on_head_bytes(c, len);
    if (r->route == ROUTE_ECHO)
        evbuffer_add(c->echo, at, len);
    if (r->hdr != HDR_OTHER) {
        size_t room = sizeof(r->value) - 1 - r->value_len;
        size_t n = len < room ? len : room;
        memcpy(r->value + r->value_len, at, n);
        r->value_len = (uint8_t)(r->value_len + n);
    }
    return on_head_bytes(c, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    struct req *r = &c->req;
    if (r->in_body)
        return 0;
    if (r->route == ROUTE_ECHO)
        evbuffer_add(c->echo, "\n", 1);
    r->value[r->value_len] = '\0';
    /* Upgrade is a list of protocols (RFC 9110 §7.8); Expect a token list. */
    if (r->hdr == HDR_UPGRADE && strcasestr(r->value, "websocket"))
        r->ws_header = true;
    else if (r->hdr == HDR_EXPECT && strcasestr(r->value, "100-continue"))
        r->expect_continue = true;
    r->hdr = HDR_OTHER;
    r->name_len = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    struct req *r = &c->req;
    r->in_body = true;
    r->http11 = p->http_major == 1 && p->http_minor >= 1;
    if (r->route == ROUTE_ECHO) {
        char line[URL_MAX + 64];
        int n = snprintf(line, sizeof(line), "%s %.*s HTTP/%u.%u\n",
                         llhttp_method_name((llhttp_method_t)p->method),
                         (int)c->url_len, c->url, p->http_major, p->http_minor);
        evbuffer_prepend(c->echo, line, (size_t)n);
        evbuffer_add(c->echo, "\n", 1);
    }
    /* RFC 9110 §10.1.1: tell a waiting client to send the body. Earlier
     * answers are already queued, so the interim one keeps its order. */
    if (r->expect_continue && r->http11 &&
        ((p->flags & F_CHUNKED) || p->content_length > 0))
        evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = &c->req;
    r->body_bytes += len;
    if (r->route == ROUTE_ECHO && !r->echo_too_large) {
        if (r->body_bytes > ECHO_BODY_MAX) {
            r->echo_too_large = true;
            evbuffer_drain(c->echo, evbuffer_get_length(c->echo));
        } else {
            evbuffer_add(c->echo, at, len);
        }
    }
    return 0;
}

static uint64_t worker_random(struct worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

/*
 * --error-rate R: the k-th application request of the process (1-based,
 * counted over all workers) fails iff floor(k*R) > floor((k-1)*R), so
 * exactly R of every 1/R requests fail, evenly spread (R=0.1 → 10th, 20th..).
 */
static bool should_inject_error(struct pod_config *cfg)
{
    uint64_t ppm = cfg->error_ppm;
    uint64_t k = atomic_fetch_add_explicit(&cfg->app_requests, 1, memory_order_relaxed) + 1;
    return (k * ppm) / 1000000 > ((k - 1) * ppm) / 1000000;
}

uint64_t pod_http_faults(struct worker *w, struct req *r)
{
    uint64_t delay_ms = 0;
    if (r->route < ROUTE_LIVE) {
        bool faults = atomic_load_explicit(&w->cfg->faults, memory_order_relaxed);
        r->injected = faults && w->cfg->error_ppm > 0 && should_inject_error(w->cfg);
        delay_ms = faults ? w->cfg->latency_ms : 0;
        if (w->cfg->jitter_ms)
            delay_ms += worker_random(w) % ((uint64_t)w->cfg->jitter_ms + 1);
        if (r->route == ROUTE_SLEEP)
            delay_ms += r->arg;
    }
    return delay_ms;
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    struct req *r = &c->req;
    uint64_t delay_ms = 0;

    r->keep_alive = llhttp_should_keep_alive(p) != 0;
    delay_ms = pod_http_faults(c->w, r);
    r->will_upgrade = r->route == ROUTE_WS && r->ws_header && p->upgrade && !r->injected;
    if (delay_ms > 0) {
        struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
        c->state = CONN_S_WAIT;
        evtimer_add(c->timer, &tv);
    } else {
        pod_http_respond(c);
    }
    /* One request per llhttp_execute(): pause so the next pipelined request
     * is parsed only after this answer is queued. An upgrade pauses itself
     * (HPE_PAUSED_UPGRADE) right after this callback. */
    return p->upgrade ? 0 : HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void pod_http_parse(struct conn *c)
{
    while (c->state == CONN_S_READ && c->in_len > 0 &&
           evbuffer_get_length(c->out) < OUT_HIGH) {
        const char *base = c->in + c->in_off;
        enum llhttp_errno err = llhttp_execute(&c->parser, base, c->in_len);
        size_t used = c->in_len;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - base);
            if (err == HPE_PAUSED)
                llhttp_resume(&c->parser);
            else if (!c->req.will_upgrade) /* declined: still HTTP (RFC 9110 §7.8) */
                llhttp_resume_after_upgrade(&c->parser);
        } else if (err != HPE_OK) {
            pod_conn_consume(c, c->in_len);
            if (c->req.fail_status)
                conn_fail(c, c->req.fail_status, c->req.fail_status == 414 ? "request target too long" : "request head too large");
            else
                conn_fail(c, 400, llhttp_get_error_reason(&c->parser));
            return;
        }
        pod_conn_consume(c, used);
    }
}

void pod_http_init(void)
{
    memset(pod_http_x_page, 'x', sizeof(pod_http_x_page));
}

void pod_http_parser_init(struct conn *c)
{
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
}
