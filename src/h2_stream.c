/*
 * h2_stream.c — see h2_stream.h.
 *
 * The txn's client is a stream client (client_new_stream) over a pipe
 * conn: its input gets the translated request, its output the HTTP/1.1
 * response proxy.c writes, which process_output() parses: the head into
 * one HEADERS frame, the body (Content-Length or chunked, de-framed) into
 * `body`, from where on_data_read hands it to nghttp2 as DATA when the
 * client's windows allow. At most BODY_HIGH bytes are de-framed ahead;
 * the rest stays in the pipe, where proxy.c sees it as a full socket.
 */
#include "h2_stream.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "client.h"
#include "conn.h"
#include "conn_pipe.h"
#include "h2_metrics.h"
#include "h2_session.h"
#include "http1.h"
#include "log.h"
#include "proxy.h"
#include "snapshot.h"
#include "util.h"

#define H2_STREAM_MAGIC 0x48325354u /* "H2ST" */
#define BODY_HIGH (64u * 1024u)     /* de-framed response bytes kept ahead */
#define RES_HEAD_MAX (64u * 1024u)  /* as proxy.c's */
#define RES_FIELDS_MAX 256u
#define HPACK_BOMB_FACTOR 4u /* header list this many times the limit: GOAWAY */

struct h2_stream {
    uint32_t magic;
    int32_t id;
    struct h2_session *sess; /* borrowed: it owns us */
    struct h2_stream *next;  /* sess->streams list */
    struct client *vc;       /* owned (closed with client_close); NULL before
                                the txn and once its client is closed */
    struct conn *cn;         /* borrowed: vc's pipe conn, NULL with vc */
    bool closing_vc;         /* we close vc ourselves: no reset on its callback */
    bool txn_done;           /* proxy.c ended the txn (client_txn_done) */
    bool req_ended;          /* the request's END_STREAM arrived */
    bool req_chunked;        /* body re-framed chunked toward proxy.c */
    bool oversize;           /* header list over the limits: 431 */
    bool has_cl;             /* the request had content-length */
    bool is_head;            /* HEAD: the response has no body */
    bool grpc;               /* content-type application/grpc... */
    bool res_head_done;      /* the response HEADERS were submitted */
    bool res_done;           /* the whole response body is in `body` */
    bool deferred;           /* on_data_read said DEFERRED: resume on data */
    bool reset;              /* we reset the stream */
    size_t hdr_bytes, hdr_count;
    uint64_t unconsumed; /* DATA payload not yet acknowledged to nghttp2 */

    char *method, *path, *authority; /* owned, NUL-terminated */
    struct evbuffer *fields;         /* owned: "Name: value\r\n" lines */
    struct evbuffer *cookies;        /* owned: cookie values, "; "-joined */

    struct http1_scan scan;
    enum http1_framing framing;
    uint64_t remaining;
    struct http1_chunked chunk;
    struct evbuffer *body; /* owned: de-framed response body for DATA */
};

static void process_output(struct h2_stream *st);

int32_t h2_stream_id(const struct h2_stream *st)
{
    return st->id;
}

struct h2_stream **h2_stream_next(struct h2_stream *st)
{
    return &st->next;
}

static const struct config *cur_config(const struct h2_stream *st)
{
    return loop_snapshot(st->sess->c->loop)->cfg;
}

struct h2_stream *h2_stream_new(struct h2_session *s, int32_t id)
{
    struct h2_stream *st = xcalloc(1, sizeof(*st));
    st->magic = H2_STREAM_MAGIC;
    st->id = id;
    st->sess = s;
    st->fields = evbuffer_new();
    st->cookies = evbuffer_new();
    st->body = evbuffer_new();
    CHECK(st->fields && st->cookies && st->body);
    http1_chunked_init(&st->chunk);
    h2_metrics_stream();
    return st;
}

static void stream_dispose(struct h2_stream *st)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    st->magic = 0;
    free(st->method);
    free(st->path);
    free(st->authority);
    evbuffer_free(st->fields);
    evbuffer_free(st->cookies);
    evbuffer_free(st->body);
    free(st);
}

static char *dup_n(const uint8_t *p, size_t n)
{
    char *s = xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static bool name_is(const uint8_t *name, size_t nlen, const char *lit)
{
    size_t l = strlen(lit);
    return nlen == l && memcmp(name, lit, l) == 0;
}

int h2_stream_on_trailer(struct h2_stream *st, size_t nlen, size_t vlen)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    const struct config *cfg = cur_config(st);
    /* Dropped (HTTP/1.1 upstreams get none) but decoded: the head's and
     * the trailers' fields together stay under the bomb bound. */
    st->hdr_bytes += nlen + vlen + 32;
    st->hdr_count++;
    if (st->hdr_bytes > (size_t)cfg->max_header_bytes * HPACK_BOMB_FACTOR ||
        st->hdr_count > (size_t)cfg->max_header_count * HPACK_BOMB_FACTOR)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

int h2_stream_on_header(struct h2_stream *st, const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    const struct config *cfg = cur_config(st);
    /* RFC 9113 §6.5.2: a field's size is name + value + 32. */
    st->hdr_bytes += nlen + vlen + 32;
    /* Fields as HTTP/1.1 counts them: pseudo-fields but :authority (Host)
     * are the request line there. */
    if (nlen == 0 || name[0] != ':' || name_is(name, nlen, ":authority"))
        st->hdr_count++;
    if (st->hdr_bytes > (size_t)cfg->max_header_bytes * HPACK_BOMB_FACTOR ||
        st->hdr_count > (size_t)cfg->max_header_count * HPACK_BOMB_FACTOR)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* the session calls it a bomb */
    if (st->hdr_bytes > cfg->max_header_bytes || st->hdr_count > cfg->max_header_count)
        st->oversize = true;
    if (st->oversize)
        return 0; /* decode the rest (HPACK state), keep none of it */
    if (nlen > 0 && name[0] == ':') {
        char **slot = NULL;
        if (name_is(name, nlen, ":method"))
            slot = &st->method;
        else if (name_is(name, nlen, ":path"))
            slot = &st->path;
        else if (name_is(name, nlen, ":authority"))
            slot = &st->authority;
        if (slot) {
            free(*slot);
            *slot = dup_n(value, vlen);
        }
        return 0; /* :scheme, :protocol: not carried to HTTP/1.1 */
    }
    if (name_is(name, nlen, "cookie")) {
        /* RFC 9113 §8.2.3: split cookies are joined for HTTP/1.1. */
        if (evbuffer_get_length(st->cookies))
            evbuffer_add(st->cookies, "; ", 2);
        evbuffer_add(st->cookies, value, vlen);
        return 0;
    }
    /* nghttp2 already refused connection-specific fields; TE: trailers
     * is hop-by-hop too. */
    if (name_is(name, nlen, "te"))
        return 0;
    if (name_is(name, nlen, "host") && st->authority)
        return 0; /* :authority wins (RFC 9113 §8.3.1) */
    if (name_is(name, nlen, "content-length"))
        st->has_cl = true;
    if (name_is(name, nlen, "content-type") && vlen >= 16 &&
        strncasecmp((const char *)value, "application/grpc", 16) == 0)
        st->grpc = true;
    evbuffer_add(st->fields, name, nlen);
    evbuffer_add(st->fields, ": ", 2);
    evbuffer_add(st->fields, value, vlen);
    evbuffer_add(st->fields, "\r\n", 2);
    return 0;
}

/* Answer the stream ourselves with a bodiless status (weir's own refusals
 * before a txn exists); gRPC requests get a trailers-only gRPC status. */
static void answer_status(struct h2_stream *st, int status, const char *grpc_status,
                          const char *grpc_message)
{
    char sbuf[8];
    snprintf(sbuf, sizeof(sbuf), "%d", st->grpc ? 200 : status);
    nghttp2_nv nva[4] = {
        {(uint8_t *)":status", (uint8_t *)sbuf, 7, strlen(sbuf), NGHTTP2_NV_FLAG_NONE},
    };
    size_t n = 1;
    if (st->grpc) {
        nva[n++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16,
                                NGHTTP2_NV_FLAG_NONE};
        nva[n++] = (nghttp2_nv){(uint8_t *)"grpc-status", (uint8_t *)grpc_status, 11,
                                strlen(grpc_status), NGHTTP2_NV_FLAG_NONE};
        nva[n++] = (nghttp2_nv){(uint8_t *)"grpc-message", (uint8_t *)grpc_message, 12,
                                strlen(grpc_message), NGHTTP2_NV_FLAG_NONE};
    }
    st->res_head_done = st->res_done = true;
    if (nghttp2_submit_response(st->sess->ng, st->id, nva, n, NULL) != 0)
        nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_INTERNAL_ERROR);
}

static bool method_has_body(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "DELETE") != 0 &&
           strcmp(m, "OPTIONS") != 0 && strcmp(m, "TRACE") != 0;
}

static void on_pipe_output(struct conn *cn, void *arg);
static void on_pipe_taken(struct conn *cn, void *arg);

static void ops_txn_done(void *arg, bool close)
{
    h2_stream_txn_done(arg, close);
}

static void ops_close(void *arg, const char *why)
{
    h2_stream_client_closed(arg, why);
}

static const struct client_ops stream_ops = {
    .on_txn_done = ops_txn_done,
    .on_close = ops_close,
};

void h2_stream_on_headers_done(struct h2_stream *st, bool end_stream)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    struct client *parent = st->sess->c;
    st->req_ended = end_stream;
    if (st->oversize) {
        char label[96];
        client_label(parent, label, sizeof(label));
        log_warn("%s HTTP/2 stream %d: header list over the limits: 431", label, (int)st->id);
        h2_metrics_refused(H2_RF_HEADER_LIST);
        proxy_log_refused(parent, 431, TXN_E_HEAD_TOO_LARGE, "HTTP/2 header list too large");
        answer_status(st, 431, "8", "header list too large");
        return;
    }
    if (!st->method || !st->path) {
        /* nghttp2 lets CONNECT through without :path: weir refuses it. */
        proxy_log_refused(parent, 405, TXN_E_BAD_REQUEST, "HTTP/2 CONNECT");
        answer_status(st, 405, "12", "method not allowed");
        return;
    }
    if (st->grpc) {
        /* gRPC needs an HTTP/2 upstream (trailers): versions speak
         * HTTP/1.1 only for now, so say so the gRPC way. */
        proxy_log_refused(parent, 502, TXN_E_BAD_REQUEST, "gRPC to an HTTP/1.1 upstream");
        answer_status(st, 502, "12", "gRPC needs an h2c upstream");
        return;
    }
    st->is_head = strcmp(st->method, "HEAD") == 0;
    struct evbuffer *head = evbuffer_new();
    CHECK(head);
    evbuffer_add_printf(head, "%s %s HTTP/1.1\r\n", st->method, st->path);
    if (st->authority)
        evbuffer_add_printf(head, "Host: %s\r\n", st->authority);
    evbuffer_add_buffer(head, st->fields);
    if (evbuffer_get_length(st->cookies)) {
        evbuffer_add(head, "Cookie: ", 8);
        evbuffer_add_buffer(head, st->cookies);
        evbuffer_add(head, "\r\n", 2);
    }
    if (end_stream) {
        if (!st->has_cl && method_has_body(st->method))
            evbuffer_add(head, "Content-Length: 0\r\n", 19);
    } else if (!st->has_cl) {
        evbuffer_add(head, "Transfer-Encoding: chunked\r\n", 28);
        st->req_chunked = true;
    }
    evbuffer_add(head, "\r\n", 2);
    size_t len = evbuffer_get_length(head);
    const char *p = (const char *)evbuffer_pullup(head, -1);
    struct http1_scan scan = {0};
    size_t head_len = 0;
    const char *err = NULL;
    if (http1_scan_head(&scan, p, len, &head_len, &err) != H1_SCAN_DONE || head_len != len) {
        char label[96];
        client_label(parent, label, sizeof(label));
        log_warn("%s HTTP/2 stream %d: bad request: %s", label, (int)st->id,
                 err ? err : "head");
        proxy_log_refused(parent, 400, TXN_E_BAD_REQUEST, err);
        answer_status(st, 400, "13", "bad request");
        evbuffer_free(head);
        return;
    }
    struct conn *cn = conn_pipe_new(parent->loop, on_pipe_output, st);
    if (!cn) {
        evbuffer_free(head);
        proxy_log_refused(parent, 503, TXN_E_STOPPED, "out of resources");
        answer_status(st, 503, "14", "out of resources");
        return;
    }
    conn_pipe_set_taken(cn, on_pipe_taken);
    evbuffer_add_buffer(cn->in, head);
    evbuffer_free(head);
    st->cn = cn;
    st->vc = client_new_stream(parent, &stream_ops, st, cn);
    proxy_start(st->vc, head_len);
}

/* Acknowledge request DATA that proxy.c took (WINDOW_UPDATE). */
static void consume(struct h2_stream *st)
{
    if (st->unconsumed == 0 || st->sess->freeing)
        return;
    nghttp2_session_consume(st->sess->ng, st->id, (size_t)st->unconsumed);
    st->unconsumed = 0;
    h2_session_flush(st->sess);
}

static void on_pipe_taken(struct conn *cn, void *arg)
{
    struct h2_stream *st = arg;
    CHECK(st->magic == H2_STREAM_MAGIC);
    if (evbuffer_get_length(cn->in) == 0)
        consume(st);
}

void h2_stream_on_data(struct h2_stream *st, const uint8_t *data, size_t len)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    if (!st->cn) {
        /* No txn reads it (answered already): acknowledge and drop. */
        nghttp2_session_consume(st->sess->ng, st->id, len);
        return;
    }
    st->unconsumed += len;
    if (len == 0)
        return;
    if (st->req_chunked)
        evbuffer_add_printf(st->cn->in, "%zx\r\n", len);
    evbuffer_add(st->cn->in, data, len);
    if (st->req_chunked)
        evbuffer_add(st->cn->in, "\r\n", 2);
    conn_pipe_input(st->cn);
}

void h2_stream_on_end(struct h2_stream *st)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    if (st->req_ended)
        return;
    st->req_ended = true;
    if (st->cn && st->req_chunked) {
        http1_chunk_end(st->cn->in);
        conn_pipe_input(st->cn);
    }
}

/* Close the txn's client ourselves (its txn is over or must end). */
static void close_vc(struct h2_stream *st, const char *why)
{
    struct client *vc = st->vc;
    if (!vc)
        return;
    st->closing_vc = true;
    st->vc = NULL;
    st->cn = NULL;
    client_close(vc, why);
    st->closing_vc = false;
    /* What proxy.c did not take of the request body is acknowledged: the
     * connection's window must not shrink by it. */
    if (st->unconsumed && !st->sess->freeing) {
        nghttp2_session_consume(st->sess->ng, st->id, (size_t)st->unconsumed);
        st->unconsumed = 0;
    }
}

static void reset_stream(struct h2_stream *st, uint32_t code)
{
    if (st->reset || st->sess->freeing)
        return;
    st->reset = true;
    nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, code);
}

void h2_stream_on_close(struct h2_stream *st, uint32_t error_code)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    (void)error_code;
    /* A txn still running: the client reset the stream (or the response
     * could not be completed): it ends as the client leaving. */
    close_vc(st, CLIENT_CLOSE_PEER);
    h2_session_stream_gone(st->sess, st);
    stream_dispose(st);
}

void h2_stream_free(struct h2_stream *st, const char *why)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    close_vc(st, why);
    stream_dispose(st);
}

void h2_stream_txn_done(struct h2_stream *st, bool close)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    (void)close; /* other streams go on: the connection is not this txn's */
    st->txn_done = true;
    if (st->cn)
        conn_pipe_notify(st->cn); /* process_output closes vc when all is parsed */
}

void h2_stream_client_closed(struct h2_stream *st, const char *why)
{
    CHECK(st->magic == H2_STREAM_MAGIC);
    (void)why;
    if (st->closing_vc)
        return;
    /* proxy.c cut the response (client_close): reset the stream. */
    st->vc = NULL;
    st->cn = NULL;
    if (st->sess->freeing)
        return;
    reset_stream(st, NGHTTP2_INTERNAL_ERROR);
    if (st->unconsumed) {
        nghttp2_session_consume(st->sess->ng, st->id, (size_t)st->unconsumed);
        st->unconsumed = 0;
    }
    h2_session_flush(st->sess);
}

bool h2_stream_request_ended(const struct h2_stream *st)
{
    return st->req_ended;
}

bool h2_stream_is_blocked(const struct h2_stream *st)
{
    bool pending = evbuffer_get_length(st->body) > 0 ||
                   (st->cn && st->res_head_done && evbuffer_get_length(st->cn->out) > 0);
    if (!pending || st->reset)
        return false;
    return nghttp2_session_get_stream_remote_window_size(st->sess->ng, st->id) <= 0 ||
           nghttp2_session_get_remote_window_size(st->sess->ng) <= 0;
}

/* ---- response: HTTP/1.1 from proxy.c → HEADERS + DATA ------------------ */

/* Move de-framed body bytes from the pipe into `body`, up to BODY_HIGH. */
static int deframe(struct h2_stream *st)
{
    struct conn *cn = st->cn;
    if (!cn || st->res_done)
        return 0;
    struct evbuffer *out = cn->out;
    while (!st->res_done && evbuffer_get_length(st->body) < BODY_HIGH) {
        size_t before = evbuffer_get_length(out);
        if (before == 0)
            break;
        size_t room = BODY_HIGH - evbuffer_get_length(st->body);
        if (st->framing == H1_F_LENGTH) {
            size_t n = before < room ? before : room;
            if (n > st->remaining)
                n = (size_t)st->remaining;
            evbuffer_remove_buffer(out, st->body, n);
            st->remaining -= n;
            if (st->remaining == 0)
                st->res_done = true;
        } else if (st->framing == H1_F_CHUNKED) {
            const char *err = NULL;
            int rv = http1_chunked_step(&st->chunk, out, st->body, false, room, &err);
            if (rv < 0)
                return -1;
            if (rv == 1)
                st->res_done = true;
        } else {
            evbuffer_remove_buffer(out, st->body, before < room ? before : room);
        }
        size_t after = evbuffer_get_length(out);
        conn_pipe_consumed(cn, before, before - after);
        if (after == before)
            break;
    }
    if (!st->res_done && st->framing == H1_F_CLOSE && st->txn_done &&
        evbuffer_get_length(out) == 0)
        st->res_done = true;
    return 0;
}

static ssize_t on_data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    (void)ng;
    (void)id;
    (void)user_data;
    struct h2_stream *st = source->ptr;
    CHECK(st->magic == H2_STREAM_MAGIC);
    if (deframe(st) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    int n = evbuffer_remove(st->body, buf, length);
    if (n < 0)
        n = 0;
    if (st->res_done && evbuffer_get_length(st->body) == 0) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->cn)
            conn_pipe_notify(st->cn); /* close the txn's client after this */
        return n;
    }
    if (n == 0) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return n;
}

static bool hop_by_hop(const char *n, size_t len)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade", "te"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (len == strlen(names[i]) && strncasecmp(n, names[i], len) == 0)
            return true;
    return false;
}

/* The response head is complete in out[0..head_len): submit HEADERS. */
static int submit_head(struct h2_stream *st, const char *p, size_t head_len)
{
    static _Thread_local struct router_header fields[RES_FIELDS_MAX];
    struct http1_response res = {.headers = fields, .max_headers = RES_FIELDS_MAX};
    const char *err = NULL;
    if (http1_parse_response(&res, p, head_len, st->is_head, &err) < 0)
        return -1;
    if (res.status >= 100 && res.status < 200)
        return 1; /* interim (100 Continue): not relayed */
    nghttp2_nv *nva = xmalloc((res.n_headers + 1) * sizeof(*nva));
    char *lower = xmalloc(head_len + 1);
    size_t off = 0, n = 0;
    char sbuf[8];
    snprintf(sbuf, sizeof(sbuf), "%d", res.status);
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)sbuf, 7, strlen(sbuf),
                            NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < res.n_headers; i++) {
        const struct router_header *h = &res.headers[i];
        if (hop_by_hop(h->name.p, h->name.len))
            continue;
        for (size_t k = 0; k < h->name.len; k++)
            lower[off + k] = (char)tolower((unsigned char)h->name.p[k]);
        nva[n++] = (nghttp2_nv){(uint8_t *)lower + off, (uint8_t *)h->value.p, h->name.len,
                                h->value.len, NGHTTP2_NV_FLAG_NONE};
        off += h->name.len;
    }
    st->framing = res.framing;
    st->remaining = res.content_length;
    if (st->framing == H1_F_LENGTH && st->remaining == 0)
        st->framing = H1_F_NONE;
    if (st->framing == H1_F_NONE)
        st->res_done = true;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_data_read};
    int rv = nghttp2_submit_response(st->sess->ng, st->id, nva, n,
                                     st->framing == H1_F_NONE ? NULL : &prd);
    free(nva);
    free(lower);
    st->res_head_done = true;
    return rv == 0 ? 0 : -1;
}

static void process_output(struct h2_stream *st)
{
    struct conn *cn = st->cn;
    if (!cn || st->reset)
        return;
    struct evbuffer *out = cn->out;
    while (!st->res_head_done) {
        size_t len = evbuffer_get_length(out);
        if (len == 0)
            return;
        size_t n = len < RES_HEAD_MAX ? len : RES_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(out, (ev_ssize_t)n);
        size_t head_len = 0;
        const char *err = NULL;
        enum http1_scan_result r = http1_scan_head(&st->scan, p, n, &head_len, &err);
        if (r == H1_SCAN_MORE && n < RES_HEAD_MAX)
            return;
        int rv = r == H1_SCAN_DONE ? submit_head(st, p, head_len) : -1;
        if (rv < 0) {
            /* proxy.c writes only vetted heads: this is weir's own bug */
            log_error("HTTP/2 stream %d: response head from proxy.c did not parse",
                      (int)st->id);
            reset_stream(st, NGHTTP2_INTERNAL_ERROR);
            close_vc(st, "bad response head");
            return;
        }
        evbuffer_drain(out, head_len);
        conn_pipe_consumed(cn, len, head_len);
        memset(&st->scan, 0, sizeof(st->scan));
    }
    if (deframe(st) < 0) {
        reset_stream(st, NGHTTP2_INTERNAL_ERROR);
        close_vc(st, "bad response body");
        return;
    }
    if (st->deferred && (evbuffer_get_length(st->body) > 0 || st->res_done)) {
        st->deferred = false;
        nghttp2_session_resume_data(st->sess->ng, st->id);
    }
    if (st->res_done && st->txn_done)
        close_vc(st, NULL); /* all of the response is ours now */
}

static void on_pipe_output(struct conn *cn, void *arg)
{
    struct h2_stream *st = arg;
    (void)cn;
    CHECK(st->magic == H2_STREAM_MAGIC);
    struct h2_session *s = st->sess;
    process_output(st);
    h2_session_flush(s);
}
