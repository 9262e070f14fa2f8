/*
 * pod_h2.c — weir-pod's h2c side: HTTP/2 with prior knowledge on the same
 * listeners as HTTP/1.1. pod_conn.c looks at a new connection's first
 * bytes; when they are the 24-byte client preface it calls pod_h2_start()
 * and from then on every byte read goes to an nghttp2 server session
 * (nghttp2_session_mem_recv on the connection's input buffer) and
 * everything nghttp2 has to send is copied into the connection's output
 * evbuffer (nghttp2_session_mem_send), so pod_conn.c's one writev(), its
 * backpressure (OUT_HIGH) and its closing states stay the same.
 *
 * Each stream is one request with the answers of the HTTP/1.1 path (same
 * routes via pod_http_route, same X-Pod/X-Version headers, the same
 * --latency, --latency-jitter and --error-rate via pod_http_faults, a
 * per-stream timer for the delay). /ws is refused (no RFC 8441), /close
 * answers and sends GOAWAY. gRPC paths (/weir.Echo/...) with a gRPC
 * content-type go to pod_grpc.c.
 *
 * Flow control: automatic WINDOW_UPDATE is off; received DATA is given back
 * (nghttp2_session_consume) after each read, except for a gRPC stream
 * whose echoed output is above H2_STREAM_OUT_HIGH: its client is then held
 * by its stream window until the echo has been sent (backpressure). The
 * connection window is raised to 16 MiB so one held stream does not stall
 * the others.
 */
#include "pod_h2.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define H2_MAX_STREAMS 256
#define H2_CONN_WINDOW (16 * 1024 * 1024)

struct pod_h2 {
    nghttp2_session *s; /* owned */
    struct pod_h2_stream *streams;
    size_t n_streams;
    size_t conn_unconsumed; /* DATA of streams closed before it was consumed */
    bool goaway_due;        /* a /close stream is over: send GOAWAY */
};

int pod_h2_detect(const struct conn *c)
{
    size_t n = c->in_len < NGHTTP2_CLIENT_MAGIC_LEN ? c->in_len : NGHTTP2_CLIENT_MAGIC_LEN;
    if (memcmp(c->in + c->in_off, NGHTTP2_CLIENT_MAGIC, n) != 0)
        return 0;
    return n == NGHTTP2_CLIENT_MAGIC_LEN ? 1 : -1;
}

size_t pod_h2_open_streams(const struct conn *c)
{
    return c->h2 ? c->h2->n_streams : 0;
}

/* ---- streams ------------------------------------------------------------ */

static void on_stream_timer(evutil_socket_t fd, short what, void *arg);

static struct pod_h2_stream *stream_new(struct conn *c, int32_t id)
{
    struct pod_h2_stream *st = xcalloc(1, sizeof(*st));
    st->c = c;
    st->id = id;
    st->timer = evtimer_new(c->w->base, on_stream_timer, st);
    st->in = evbuffer_new();
    st->out = evbuffer_new();
    CHECK(st->timer && st->in && st->out);
    st->next = c->h2->streams;
    if (st->next)
        st->next->prev = st;
    c->h2->streams = st;
    c->h2->n_streams++;
    return st;
}

static void stream_free(struct pod_h2_stream *st)
{
    struct pod_h2 *h = st->c->h2;
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->n_streams--;
    h->conn_unconsumed += st->unconsumed;
    event_free(st->timer);
    evbuffer_free(st->in);
    evbuffer_free(st->out);
    free(st->path);
    free(st);
}

static bool stream_is_grpc(const struct pod_h2_stream *st)
{
    enum route r = st->req.route;
    return pod_route_is_grpc(r) && !st->req.fail_status;
}

/* ---- the answer's head and body ----------------------------------------- */

/* nghttp2 copies names and values when a head is submitted. */
#define NV(n, v, vl) \
    ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE})

static ssize_t on_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct pod_h2_stream *st = src->ptr;
    (void)id, (void)user;
    /* ServerStream: the copies are made as the stream's window takes them. */
    while (st->repeat_left > 0 && evbuffer_get_length(st->out) < length) {
        evbuffer_add(st->out, st->repeat_msg, st->repeat_len);
        st->repeat_left--;
    }
    size_t n = 0, ol = evbuffer_get_length(st->out);
    if (ol > 0) {
        int k = evbuffer_remove(st->out, buf, ol < length ? ol : length);
        n = k > 0 ? (size_t)k : 0;
    } else if (st->left > 0) {
        n = length < POD_PAGE ? length : POD_PAGE;
        if (n > st->left)
            n = (size_t)st->left;
        memcpy(buf, pod_http_x_page, n);
        st->left -= n;
    }
    if (n == 0 && st->out_open) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (evbuffer_get_length(st->out) == 0 && st->left == 0 && st->repeat_left == 0 &&
        !st->out_open) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->trailers) {
            char code[16];
            int cl = snprintf(code, sizeof(code), "%d", st->grpc_status);
            nghttp2_nv nv[2] = {NV("grpc-status", code, (size_t)cl)};
            size_t nn = 1;
            if (st->grpc_msg)
                nv[nn++] = NV("grpc-message", st->grpc_msg, strlen(st->grpc_msg));
            if (nghttp2_submit_trailer(s, st->id, nv, nn) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (ssize_t)n;
}

static void h2_log(const struct pod_h2_stream *st, int status)
{
    fprintf(stderr, "c#%u.%" PRIu64 " s#%d %s %.*s %d (h2)\n", st->c->w->id, st->c->id, st->id,
            st->method, (int)st->path_len, st->path ? st->path : "", status);
}

static void h2_submit_full(struct pod_h2_stream *st, int status, const char *ctype,
                           int64_t clen, bool body, bool trailers_only, const char *allow)
{
    struct worker *w = st->c->w;
    char status_s[8], clen_s[24], code[16];
    nghttp2_nv nv[10];
    size_t n = 0;
    int sl = snprintf(status_s, sizeof(status_s), "%d", status);
    pod_http_refresh_date(w);
    nv[n++] = NV(":status", status_s, (size_t)sl);
    nv[n++] = NV("date", w->date + 6, w->date_len - 8); /* "Date: ...\r\n" */
    nv[n++] = NV("x-pod", w->cfg->name, strlen(w->cfg->name));
    nv[n++] = NV("x-version", w->cfg->version, strlen(w->cfg->version));
    if (ctype)
        nv[n++] = NV("content-type", ctype, strlen(ctype));
    if (clen >= 0) {
        int l = snprintf(clen_s, sizeof(clen_s), "%" PRId64, clen);
        nv[n++] = NV("content-length", clen_s, (size_t)l);
    }
    if (allow)
        nv[n++] = NV("allow", allow, strlen(allow));
    if (trailers_only) {
        int l = snprintf(code, sizeof(code), "%d", st->grpc_status);
        nv[n++] = NV("grpc-status", code, (size_t)l);
        if (st->grpc_msg)
            nv[n++] = NV("grpc-message", st->grpc_msg, strlen(st->grpc_msg));
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_read_body};
    st->responded = true;
    int rv = nghttp2_submit_response(st->c->h2->s, st->id, nv, n, body ? &prd : NULL);
    if (rv != 0 && !w->cfg->quiet)
        fprintf(stderr, "weir-pod: c#%u.%" PRIu64 " s#%d: cannot answer: %s\n", w->id,
                st->c->id, st->id, nghttp2_strerror(rv));
    if (w->cfg->verbose)
        h2_log(st, status);
}

void pod_h2_submit(struct pod_h2_stream *st, int status, const char *ctype, int64_t clen,
                   bool body, bool trailers_only)
{
    h2_submit_full(st, status, ctype, clen, body, trailers_only, NULL);
}

void pod_h2_resume(struct pod_h2_stream *st)
{
    if (!st->deferred)
        return;
    st->deferred = false;
    nghttp2_session_resume_data(st->c->h2->s, st->id);
}

/* A complete answer with a small text body (not sent to HEAD). */
static void h2_answer(struct pod_h2_stream *st, int status, const char *body, size_t len,
                      const char *allow)
{
    bool send = !st->req.head && len > 0;
    if (send)
        evbuffer_add(st->out, body, len);
    h2_submit_full(st, status, "text/plain; charset=utf-8", (int64_t)len, send, false, allow);
}

static void h2_answer_str(struct pod_h2_stream *st, int status, const char *body)
{
    h2_answer(st, status, body, strlen(body), NULL);
}

static void h2_answer_probe(struct pod_h2_stream *st)
{
    struct req *r = &st->req;
    struct pod_config *cfg = st->c->w->cfg;
    bool get = strcmp(st->method, "GET") == 0 || strcmp(st->method, "HEAD") == 0;
    bool post = strcmp(st->method, "POST") == 0;

    switch (r->route) {
    case ROUTE_LIVE:
    case ROUTE_READY:
        if (!get) {
            h2_answer(st, 405, "method not allowed\n", 19, "GET, HEAD");
        } else if (r->route == ROUTE_LIVE) {
            h2_answer_str(st, 200, "ok\n");
        } else if (atomic_load_explicit(&cfg->ready, memory_order_relaxed)) {
            h2_answer_str(st, 200, "ready\n");
        } else {
            h2_answer_str(st, 503, "not ready\n");
        }
        return;
    case ROUTE_READY_ON:
    case ROUTE_READY_OFF:
        if (!post) {
            h2_answer(st, 405, "method not allowed\n", 19, "POST");
            return;
        }
        atomic_store(&cfg->ready, r->route == ROUTE_READY_ON);
        h2_answer_str(st, 200, r->route == ROUTE_READY_ON ? "ready\n" : "not ready\n");
        return;
    case ROUTE_FAULTS_ON:
    case ROUTE_FAULTS_OFF:
        if (!post) {
            h2_answer(st, 405, "method not allowed\n", 19, "POST");
            return;
        }
        atomic_store(&cfg->faults, r->route == ROUTE_FAULTS_ON);
        h2_answer_str(st, 200, r->route == ROUTE_FAULTS_ON ? "faults on\n" : "faults off\n");
        return;
    default:
        h2_answer_str(st, 404, "not found\n");
        return;
    }
}

/* Answer a (non-gRPC) request whose delay is over. */
static void stream_respond(struct pod_h2_stream *st)
{
    struct req *r = &st->req;
    struct pod_config *cfg = st->c->w->cfg;
    char body[128];
    int n;

    if (r->injected) {
        h2_answer_str(st, 500, "error injected\n");
        return;
    }
    if (r->fail_status) {
        h2_answer_str(st, r->fail_status, r->bad_msg);
        return;
    }
    switch (r->route) {
    case ROUTE_DEMO:
        h2_answer(st, 200, cfg->demo_body, cfg->demo_body_len, NULL);
        return;
    case ROUTE_ECHO:
        if (r->echo_too_large) {
            evbuffer_drain(st->out, evbuffer_get_length(st->out));
            h2_answer_str(st, 413, "echo body limited to 1 MiB; use /upload\n");
            return;
        }
        evbuffer_add_buffer(st->out, st->in);
        size_t len = evbuffer_get_length(st->out);
        if (r->head)
            evbuffer_drain(st->out, len);
        pod_h2_submit(st, 200, "text/plain; charset=utf-8", (int64_t)len, !r->head, false);
        return;
    case ROUTE_UPLOAD:
        n = snprintf(body, sizeof(body), "received %" PRIu64 " bytes\n", r->body_bytes);
        h2_answer(st, 200, body, (size_t)n, NULL);
        return;
    case ROUTE_STATUS:
        if (r->status == 204 || r->status == 304) {
            pod_h2_submit(st, r->status, NULL, -1, false, false);
            return;
        }
        n = snprintf(body, sizeof(body), "%d\n", r->status);
        h2_answer(st, r->status, body, (size_t)n, NULL);
        return;
    case ROUTE_BYTES:
    case ROUTE_CHUNKED: /* h2 has no chunked coding: the same as /bytes */
        st->left = r->head ? 0 : r->arg;
        pod_h2_submit(st, 200, "application/octet-stream", (int64_t)r->arg, st->left > 0, false);
        return;
    case ROUTE_SLEEP:
        n = snprintf(body, sizeof(body), "slept %" PRIu64 " ms\n", r->arg);
        h2_answer(st, 200, body, (size_t)n, NULL);
        return;
    case ROUTE_CLOSE:
        /* GOAWAY once the answer is out (pod_h2_run), not ahead of it. */
        h2_answer_str(st, 200, "closing\n");
        st->goaway_after = true;
        return;
    case ROUTE_WS:
        h2_answer_str(st, 400, "websocket over HTTP/2 is not supported; use HTTP/1.1\n");
        return;
    case ROUTE_BAD:
        h2_answer_str(st, 400, r->bad_msg);
        return;
    default:
        h2_answer_probe(st);
        return;
    }
}

static void on_stream_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pod_h2_stream *st = arg;
    struct conn *c = st->c;
    (void)fd, (void)what;
    CHECK(c->magic == CONN_MAGIC);
    if (stream_is_grpc(st))
        pod_grpc_respond(st);
    else
        stream_respond(st);
    pod_conn_run(c);
}

void pod_h2_delay(struct pod_h2_stream *st, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(st->timer, &tv);
}

/* ---- nghttp2 callbacks -------------------------------------------------- */

static void stream_route(struct pod_h2_stream *st)
{
    if (st->routed)
        return;
    st->routed = true;
    struct conn *c = st->c;
    pod_http_route(&st->req, st->path ? st->path : "", st->path_len, c->probe_listener,
                   c->w->cfg->has_probe, strcmp(st->method, "CONNECT") == 0);
    st->req.head = strcmp(st->method, "HEAD") == 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct conn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct pod_h2_stream *st = stream_new(c, f->hd.stream_id);
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags, (void)user;
    struct pod_h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) /* trailers: counted, not echoed */
        return 0;
    st->req.head_bytes += namelen + valuelen + 32; /* RFC 9113 §6.5.2 */
    if (st->req.head_bytes > HEAD_MAX)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
        size_t n = valuelen < H2_METHOD_MAX - 1 ? valuelen : H2_METHOD_MAX - 1;
        memcpy(st->method, value, n);
        st->method[n] = '\0';
        return 0;
    }
    if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        if (valuelen > URL_MAX) {
            st->req.fail_status = 414;
            st->req.bad_msg = "request target too long\n";
            return 0;
        }
        free(st->path);
        st->path = xmalloc(valuelen + 1);
        memcpy(st->path, value, valuelen);
        st->path[valuelen] = '\0';
        st->path_len = valuelen;
        return 0;
    }
    if (namelen > 0 && name[0] == ':')
        return 0;
    stream_route(st); /* pseudo-headers come first (RFC 9113 §8.3) */
    if (namelen == 8 && memcmp(name, "x-repeat", 8) == 0) {
        /* ServerStream: how many copies; 1..1000000, else INVALID_ARGUMENT. */
        uint64_t v = 0;
        bool ok = valuelen > 0 && valuelen <= 7;
        for (size_t i = 0; ok && i < valuelen; i++) {
            ok = value[i] >= '0' && value[i] <= '9';
            v = v * 10 + (uint64_t)(value[i] - '0');
        }
        st->repeat = ok && v >= 1 && v <= 1000000 ? (uint32_t)v : 0;
        st->repeat_bad = st->repeat == 0;
    }
    if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        st->grpc_ctype = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                         (valuelen == 16 || value[16] == '+' || value[16] == ';');
    if (st->req.route == ROUTE_ECHO) {
        evbuffer_add(st->out, name, namelen);
        evbuffer_add(st->out, ": ", 2);
        evbuffer_add(st->out, value, valuelen);
        evbuffer_add(st->out, "\n", 1);
    }
    return 0;
}

/* The client's END_STREAM: the request is complete. */
static void stream_end(struct pod_h2_stream *st)
{
    st->req_done = true;
    if (stream_is_grpc(st)) {
        pod_grpc_end(st);
        return;
    }
    uint64_t delay = pod_http_faults(st->c->w, &st->req);
    if (delay > 0)
        pod_h2_delay(st, delay);
    else
        stream_respond(st);
}

static void stream_headers_done(struct pod_h2_stream *st)
{
    stream_route(st);
    struct req *r = &st->req;
    r->in_body = true;
    if (r->route == ROUTE_ECHO) {
        char line[URL_MAX + 64];
        int n = snprintf(line, sizeof(line), "%s %.*s HTTP/2.0\n", st->method, (int)st->path_len,
                         st->path ? st->path : "");
        evbuffer_prepend(st->out, line, (size_t)n);
        evbuffer_add(st->out, "\n", 1);
    }
    if (pod_route_is_grpc(r->route) && !st->grpc_ctype && !r->fail_status) {
        r->fail_status = 415;
        r->bad_msg = "gRPC needs content-type: application/grpc\n";
    }
    if (stream_is_grpc(st))
        pod_grpc_headers(st);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    (void)user;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    struct pod_h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        stream_headers_done(st);
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !st->req_done)
        stream_end(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags, (void)user;
    struct pod_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    st->unconsumed += len;
    st->req.body_bytes += len;
    if (stream_is_grpc(st))
        return pod_grpc_data(st, data, len) < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    if (st->req.route == ROUTE_ECHO && !st->req.echo_too_large) {
        if (st->req.body_bytes > ECHO_BODY_MAX) {
            st->req.echo_too_large = true;
            evbuffer_drain(st->in, evbuffer_get_length(st->in));
        } else {
            evbuffer_add(st->in, data, len);
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    (void)code, (void)user;
    struct pod_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (st) {
        if (st->goaway_after)
            st->c->h2->goaway_due = true;
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_free(st);
    }
    return 0;
}

/* ---- the session -------------------------------------------------------- */

int pod_h2_start(struct conn *c)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, HEAD_MAX);
    struct pod_h2 *h = xcalloc(1, sizeof(*h));
    int rv = nghttp2_session_server_new2(&h->s, cb, c, opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    if (rv != 0) {
        free(h);
        return -1;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEAD_MAX},
    };
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(h->s);
        free(h);
        return -1;
    }
    c->h2 = h;
    c->state = CONN_S_H2;
    if (c->w->cfg->verbose)
        fprintf(stderr, "c#%u.%" PRIu64 " h2c\n", c->w->id, c->id);
    return 0;
}

/* Give received DATA back to flow control; true if any was. */
static bool h2_consume(struct pod_h2 *h)
{
    bool any = false;
    if (h->conn_unconsumed) {
        nghttp2_session_consume_connection(h->s, h->conn_unconsumed);
        h->conn_unconsumed = 0;
        any = true;
    }
    for (struct pod_h2_stream *st = h->streams; st; st = st->next) {
        if (!st->unconsumed)
            continue;
        /* A gRPC stream echo holds its client while its output is high. */
        if (st->req.route == ROUTE_GRPC_STREAM && stream_is_grpc(st) && !st->grpc_over &&
            (evbuffer_get_length(st->out) >= H2_STREAM_OUT_HIGH ||
             evbuffer_get_length(st->in) > ECHO_BODY_MAX + 5))
            continue;
        nghttp2_session_consume(h->s, st->id, st->unconsumed);
        st->unconsumed = 0;
        any = true;
    }
    return any;
}

static void h2_fail(struct conn *c, const char *what, int rv)
{
    if (c->w->cfg->verbose)
        fprintf(stderr, "c#%u.%" PRIu64 " h2 %s: %s\n", c->w->id, c->id, what,
                nghttp2_strerror(rv));
    c->state = CONN_S_CLOSING;
}

void pod_h2_run(struct conn *c)
{
    struct pod_h2 *h = c->h2;
    if (c->in_len > 0) {
        ssize_t n = nghttp2_session_mem_recv(h->s, (const uint8_t *)c->in + c->in_off, c->in_len);
        pod_conn_consume(c, c->in_len);
        if (n < 0) {
            /* A GOAWAY for the peer, if nghttp2 still can, then close. */
            nghttp2_session_terminate_session(h->s, NGHTTP2_PROTOCOL_ERROR);
            const uint8_t *d;
            ssize_t k = nghttp2_session_mem_send(h->s, &d);
            if (k > 0)
                evbuffer_add(c->out, d, (size_t)k);
            h2_fail(c, "read", (int)n);
            return;
        }
    }
    c->h2_more = false;
    for (int round = 0; round < 4; round++) {
        bool consumed = h2_consume(h);
        bool progress = false;
        if (h->goaway_due) {
            h->goaway_due = false;
            nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(h->s),
                                  NGHTTP2_NO_ERROR, NULL, 0);
        }
        while (evbuffer_get_length(c->out) < OUT_HIGH) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(h->s, &d);
            if (n < 0) {
                h2_fail(c, "send", (int)n);
                return;
            }
            if (n == 0)
                break;
            evbuffer_add(c->out, d, (size_t)n);
            progress = true;
        }
        if (evbuffer_get_length(c->out) >= OUT_HIGH) {
            c->h2_more = nghttp2_session_want_write(h->s) != 0;
            break;
        }
        if (!consumed && !progress)
            break;
    }
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s))
        c->state = CONN_S_CLOSING;
}

void pod_h2_free(struct conn *c)
{
    struct pod_h2 *h = c->h2;
    if (!h)
        return;
    nghttp2_session_del(h->s); /* does not call on_stream_close */
    while (h->streams)
        stream_free(h->streams);
    free(h);
    c->h2 = NULL;
}
