/*
 * proxy.c — see proxy.h.
 *
 * txn states are implied by a few flags rather than one enum, because the
 * two directions progress independently (an upstream may answer before the
 * request body is complete):
 *   uc == NULL            no upstream conn yet / between retry attempts
 *   uc->connected         request head may be written
 *   head_sent             request head written upstream
 *   req_done              request body completely forwarded
 *   res_head_done         response head written to the client
 *   res_done              response complete (txn finishing)
 *   tunnel                101 seen: raw bytes both ways
 */
#include "proxy.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "access.h"
#include "health.h"
#include "client.h"
#include "conn.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "upstream.h"
#include "worker.h"

#define TXN_MAGIC 0x54584e31u /* "TXN1" */
#define RES_HEAD_MAX (64u * 1024u)
#define RES_HEADERS_MAX 256u
#define TXN_FREE_MAX 64u

/* Async error reasons (compared by pointer). */
static const char ERR_CONNECT[] = "upstream connect failed";
static const char ERR_CONNECT_TIMEOUT[] = "upstream connect timeout";
static const char ERR_TIMEOUT[] = "upstream response timeout";
static const char ERR_RESET[] = "upstream closed before responding";
static const char ERR_BAD_RESPONSE[] = "bad response from upstream";
static const char ERR_TRUNCATED[] = "upstream closed mid-response";
static const char ERR_BAD_BODY[] = "bad request body framing";
static const char ERR_NO_ENDPOINT[] = "no healthy endpoint";

struct txn {
    uint32_t magic;
    struct client *c;             /* borrowed */
    struct worker *w;             /* borrowed */
    struct snapshot *snap;        /* refcounted */
    struct route_decision route;
    int version;                  /* serving version (after fallback) */
    struct endpoint *ep;          /* borrowed from snap */
    struct upstream_conn *uc;     /* owned while running */
    struct endpoint *failed_ep;   /* borrowed: excluded on retry */
    unsigned attempts;
    bool stale_retry_used;
    bool head_sent, body_sent, req_done;
    bool res_started;             /* any response byte from upstream */
    bool res_head_done, res_done, tunnel;
    bool client_eof;
    bool close_client;            /* response said Connection: close */
    bool up_paused, client_paused;
    int status;
    char set_cookie[128 + CONFIG_NAME_MAX]; /* assigned sticky key, "" if none */
    const char *error;            /* static reason, NULL if none */

    char *head;                   /* owned: the request head bytes */
    size_t head_cap;
    struct http1_request req;
    struct router_header *req_headers; /* owned */
    size_t req_headers_cap;
    uint64_t req_remaining;
    struct http1_chunked req_chunk;
    uint64_t req_body_bytes;

    struct http1_scan res_scan;
    char *res_head;               /* owned */
    size_t res_head_cap;
    struct http1_response res;
    enum http1_framing res_out;   /* framing toward the client */
    uint64_t res_remaining;
    struct http1_chunked res_chunk;
    uint64_t res_body_bytes;

    uint64_t start_us, upstream_start_us, first_byte_us;
    struct txn *next_free;
    struct reap_item reap;        /* deferred-free link */

    /* Last, and not cleared by txn_new (8 KiB): only the first
     * res.n_headers entries are ever read, and the parser sets those. */
    struct router_header res_headers[RES_HEADERS_MAX];
};

static _Thread_local struct txn *free_txns;
static _Thread_local unsigned n_free_txns;

static void on_up_read(struct conn *cn, void *arg);
static void on_up_write(struct conn *cn, void *arg);
static void on_up_event(struct conn *cn, short what, void *arg);
static void up_event(struct conn *cn, short what, struct txn *t);
static void connect_upstream(struct txn *t);
static void finish(struct txn *t);
static void assign_sticky_key(struct txn *t);

/* ---- allocation ---------------------------------------------------- */

static struct txn *txn_new(void)
{
    struct txn *t = free_txns;
    if (t) {
        free_txns = t->next_free;
        n_free_txns--;
    } else {
        t = xcalloc(1, sizeof(*t));
    }
    char *head = t->head, *res_head = t->res_head;
    size_t head_cap = t->head_cap, res_head_cap = t->res_head_cap;
    struct router_header *rh = t->req_headers;
    size_t rh_cap = t->req_headers_cap;
    memset(t, 0, offsetof(struct txn, res_headers));
    t->head = head;
    t->head_cap = head_cap;
    t->res_head = res_head;
    t->res_head_cap = res_head_cap;
    t->req_headers = rh;
    t->req_headers_cap = rh_cap;
    t->magic = TXN_MAGIC;
    return t;
}

static void txn_dispose(void *obj)
{
    struct txn *t = obj;
    CHECK(t->magic == TXN_MAGIC);
    t->magic = 0;
    if (n_free_txns < TXN_FREE_MAX) {
        t->next_free = free_txns;
        free_txns = t;
        n_free_txns++;
        return;
    }
    free(t->head);
    free(t->res_head);
    free(t->req_headers);
    free(t);
}

void proxy_thread_cleanup(void)
{
    while (free_txns) {
        struct txn *t = free_txns;
        free_txns = t->next_free;
        free(t->head);
        free(t->res_head);
        free(t->req_headers);
        free(t);
    }
    n_free_txns = 0;
}

static void grow(char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return;
    *cap = need < 1024 ? 1024 : need;
    free(*buf);
    *buf = xmalloc(*cap);
}

/* ---- flow control: the only two places reading is paused/resumed ----- */

static void flow_pause(struct conn *src, bool *paused)
{
    if (!*paused) {
        conn_read_stop(src);
        *paused = true;
    }
}

static void flow_resume(struct conn *src, bool *paused)
{
    if (*paused) {
        conn_read_start(src);
        *paused = false;
    }
}

/* The endpoint's in-flight gauge in this worker's slot (only this worker
 * writes it: a relaxed load and store, no read-modify-write). */
static void inflight_add(struct worker *w, struct endpoint *ep, int delta)
{
    _Atomic uint64_t *g = &ep->slots[w->id].inflight;
    uint64_t v = atomic_load_explicit(g, memory_order_relaxed);
    atomic_store_explicit(g, v + (uint64_t)(int64_t)delta, memory_order_relaxed);
}

/* The client's output, after a callback of the upstream side. The client
 * struct outlives the callback (its free is deferred); cn is NULL once it
 * was closed. */
static void send_client(struct client *c)
{
    if (c->state != CL_S_CLOSED && c->cn)
        conn_send(c->cn);
}

/* ---- logging helpers ------------------------------------------------- */

static void log_txn(struct txn *t, const char *what)
{
    char label[96];
    client_label(t->c, label, sizeof(label));
    log_warn("%s → %s/%s: %s", label,
             t->version >= 0 ? t->snap->versions[t->version].name : "-",
             t->ep ? t->ep->address : "-", what);
}

/* ---- ending a txn ------------------------------------------------------ */

/* Detach from the client and recycle; the client continues. */
static void release(struct txn *t, bool close_client)
{
    struct client *c = t->c;
    if (t->ep)
        inflight_add(t->w, t->ep, -1);
    metrics_txn_done(t->w, t->snap, t->version, t->ep, t->status,
                     util_now_us() - t->start_us);
    access_log_txn(t->w, &(struct access_entry){
        .client = (const struct sockaddr *)&c->addr,
        .method = t->req.method,
        .target = t->req.target,
        .http_minor = t->req.minor,
        .headers = t->req.headers,
        .n_headers = t->req.n_headers,
        .status = t->status,
        .bytes = t->res_body_bytes,
        .version = t->version >= 0 ? t->snap->versions[t->version].name : NULL,
        .endpoint = t->ep ? t->ep->address : NULL,
        .reason = t->route.reason,
        .rule = t->route.rule,
        .bucket = t->route.bucket,
        .upstream_us = t->first_byte_us ? t->first_byte_us - t->upstream_start_us : 0,
        .total_us = util_now_us() - t->start_us,
        .retries = t->attempts > 1 ? t->attempts - 1 : 0,
        .error = t->error,
    });
    snapshot_unref(t->snap);
    t->snap = NULL;
    c->txn = NULL;
    worker_defer_free(t->w, &t->reap, txn_dispose, t);
    send_client(c);
    client_txn_done(c, close_client);
}

void proxy_log_refused(struct client *c, int status, const char *why)
{
    metrics_txn_done(c->w, NULL, -1, NULL, status, 0);
    access_log_txn(c->w, &(struct access_entry){
        .client = (const struct sockaddr *)&c->addr,
        .http_minor = 1,
        .status = status,
        .reason = ROUTE_R_NONE,
        .rule = -1,
        .bucket = -1,
        .error = why,
    });
}

/* Answer an error of weir's own, if nothing of a response was sent yet;
 * otherwise the client connection is cut (the only honest signal left). */
static void fail(struct txn *t, int status, const char *why)
{
    t->error = why;
    if (t->uc) {
        upstream_close(t->uc, UPSTREAM_CLOSE_ERROR);
        t->uc = NULL;
    }
    if (why != ERR_NO_ENDPOINT || status != 503)
        log_txn(t, why);
    if (t->res_head_done) {
        t->status = t->status ? t->status : status;
        struct client *c = t->c;
        release(t, true);
        client_close(c, why);
        return;
    }
    t->status = status;
    /* The connection can carry on only if the request was read whole. */
    bool close = !t->req_done || !t->req.keep_alive;
    http1_write_error(t->c->cn->out, status, close);
    release(t, close);
}

static void finish(struct txn *t)
{
    t->res_done = true;
    struct upstream_conn *uc = t->uc;
    t->uc = NULL;
    bool reusable = t->res.keep_alive && t->req_done && !t->tunnel &&
                    evbuffer_get_length(uc->cn->in) == 0;
    upstream_release(uc, reusable);
    if (t->client_paused)
        flow_resume(t->c->cn, &t->client_paused);
    bool close = t->close_client || !t->req_done || t->client_eof ||
                 t->res_out == H1_F_CLOSE;
    release(t, close);
}

/* ---- start ------------------------------------------------------------ */

void proxy_start(struct client *c, size_t head_len)
{
    struct worker *w = c->w;
    struct txn *t = txn_new();
    t->c = c;
    t->w = w;
    t->version = -1;
    t->start_us = util_now_us();
    c->txn = t;
    t->snap = worker_snapshot(w);
    snapshot_ref(t->snap);
    const struct config *cfg = t->snap->cfg;

    grow(&t->head, &t->head_cap, head_len);
    evbuffer_remove(c->cn->in, t->head, head_len);
    if (t->req_headers_cap < cfg->max_header_count) {
        free(t->req_headers);
        t->req_headers_cap = cfg->max_header_count;
        t->req_headers = xcalloc(t->req_headers_cap, sizeof(*t->req_headers));
    }
    t->req.headers = t->req_headers;
    t->req.max_headers = cfg->max_header_count;
    const char *err = NULL;
    int status = http1_parse_request(&t->req, t->head, head_len, &err);
    if (status) {
        char label[96];
        client_label(c, label, sizeof(label));
        log_warn("%s bad request: %s: %d", label, err, status);
        t->status = status;
        t->error = err;
        t->req.keep_alive = false;
        http1_write_error(c->cn->out, status, true);
        release(t, true);
        return;
    }
    t->req_remaining = t->req.content_length;
    http1_chunked_init(&t->req_chunk);
    t->req_done = t->req.framing == H1_F_NONE;
    if (!t->req.keep_alive)
        t->close_client = true;

    struct router_request rr = {t->req.headers, t->req.n_headers};
    router_pick(t->snap, &w->router, &rr, &t->route);
    if (t->route.reason == ROUTE_R_SPLIT && cfg->sticky.assign)
        assign_sticky_key(t);
    t->version = t->route.version;
    if (t->version < 0) {
        fail(t, 503, ERR_NO_ENDPOINT);
        return;
    }
    t->attempts = 0;
    connect_upstream(t);
}

/*
 * `sticky: {cookie: NAME, assign: true}` and the request had no key: make a
 * random one, route by it, and hand it to the client in a Set-Cookie so its
 * next requests carry it (weir does what the app would otherwise have to).
 */
static void assign_sticky_key(struct txn *t)
{
    static _Thread_local uint64_t rng;
    if (!rng)
        rng = util_random_u64() | 1;
    /* xorshift64*: fast, and seeded from the kernel per worker */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    uint64_t x = rng * 2685821657736338717ULL;
    char key[17];
    snprintf(key, sizeof(key), "%016llx", (unsigned long long)x);
    router_pick_key(t->snap, key, 16, &t->route);
    t->version = t->route.version;
    snprintf(t->set_cookie, sizeof(t->set_cookie),
             "%s=%s; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax",
             t->snap->cfg->sticky.name, key);
}

/* Pick an endpoint (falling back to the version's fallback when it has none
 * available) and start an upstream conn to it. */
static void connect_upstream(struct txn *t)
{
    struct worker *w = t->w;
    uint64_t now = util_now_ms();
    int v = t->version;
    int i = balancer_pick(t->snap, &w->balancer, v, t->failed_ep, now);
    if (i < 0 && t->failed_ep)
        i = balancer_pick(t->snap, &w->balancer, v, NULL, now);
    if (i < 0 && t->snap->versions[t->route.version].fallback >= 0 &&
        t->attempts == 0) {
        v = t->snap->versions[t->route.version].fallback;
        i = balancer_pick(t->snap, &w->balancer, v, NULL, now);
        if (i >= 0)
            t->version = v;
    }
    if (i < 0) {
        fail(t, 503, ERR_NO_ENDPOINT);
        return;
    }
    struct endpoint *ep = t->snap->versions[v].eps[i].ep;
    if (t->ep != ep) {
        if (t->ep)
            inflight_add(w, t->ep, -1);
        inflight_add(w, ep, +1);
        t->ep = ep;
    }
    t->attempts++;
    t->upstream_start_us = util_now_us();
    bool fresh = t->stale_retry_used;
    struct upstream_conn *uc = upstream_acquire(w, ep, fresh, on_up_read,
                                                on_up_write, on_up_event, t);
    if (!uc) {
        metrics_connect_failure(w, ep);
        health_report_failure(ep);
        t->failed_ep = ep;
        if (t->attempts <= t->snap->cfg->retries) {
            metrics_retry(w, ep);
            connect_upstream(t);
            return;
        }
        fail(t, 502, ERR_CONNECT);
        return;
    }
    t->uc = uc;
    uc->txn = t;
    const struct config *cfg = t->snap->cfg;
    if (uc->connected) {
        conn_set_timeouts(uc->cn, cfg->upstream_response_timeout_ms,
                          cfg->upstream_response_timeout_ms);
        conn_read_start(uc->cn);
        /* send the head right away: the conn is ready */
        up_event(uc->cn, CONN_CONNECTED, t);
    }
}

/* ---- request direction ---------------------------------------------- */

static void pump_request(struct txn *t)
{
    if (t->req_done || !t->head_sent || t->tunnel)
        return;
    struct evbuffer *in = t->c->cn->in;
    struct evbuffer *out = t->uc->cn->out;
    size_t before = evbuffer_get_length(out);
    if (t->req.framing == H1_F_LENGTH) {
        size_t n = evbuffer_get_length(in);
        if (n > t->req_remaining)
            n = (size_t)t->req_remaining;
        if (n) {
            evbuffer_remove_buffer(in, out, n);
            t->req_remaining -= n;
            t->req_body_bytes += n;
        }
        if (t->req_remaining == 0)
            t->req_done = true;
    } else if (t->req.framing == H1_F_CHUNKED) {
        const char *err = NULL;
        int r = http1_chunked_step(&t->req_chunk, in, out, true, SIZE_MAX, &err);
        if (r < 0) {
            char label[96];
            client_label(t->c, label, sizeof(label));
            log_warn("%s bad chunked body: %s", label, err);
            t->req.keep_alive = false;
            t->req_done = false;
            fail(t, 400, ERR_BAD_BODY);
            return;
        }
        if (r == 1)
            t->req_done = true;
    }
    if (evbuffer_get_length(out) != before)
        t->body_sent = true;
    conn_send(t->uc->cn);
    if (t->req_done) {
        /* Pipelined requests wait in the socket until this one is done. */
        conn_read_stop(t->c->cn);
        t->client_paused = false;
        return;
    }
    if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
        flow_pause(t->c->cn, &t->client_paused);
}

static void send_head(struct txn *t)
{
    struct evbuffer *out = t->uc->cn->out;
    struct http1_fwd fwd = {
        .client = (const struct sockaddr *)&t->c->addr,
        .close = false,
    };
    http1_write_request(out, &t->req, &fwd);
    t->head_sent = true;
    if (t->req.upgrade)
        t->req_done = true; /* after 101, bytes flow as a tunnel */
    pump_request(t);
    if (t->uc)
        conn_send(t->uc->cn);
}

void proxy_on_client_read(struct txn *t)
{
    CHECK(t->magic == TXN_MAGIC);
    if (t->tunnel) {
        struct evbuffer *in = t->c->cn->in;
        struct evbuffer *out = t->uc->cn->out;
        evbuffer_add_buffer(out, in);
        conn_send(t->uc->cn);
        if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
            flow_pause(t->c->cn, &t->client_paused);
        return;
    }
    if (t->uc && t->head_sent)
        pump_request(t);
    else if (evbuffer_get_length(t->c->cn->in) >
             FLOW_HIGH_WATER)
        flow_pause(t->c->cn, &t->client_paused); /* still connecting */
}

void proxy_on_client_eof(struct txn *t)
{
    CHECK(t->magic == TXN_MAGIC);
    t->client_eof = true;
    if (t->tunnel || !t->req_done) {
        client_close(t->c, "client closed mid-request");
        return;
    }
    /* Half-close after a complete request: finish the response. */
}

void proxy_on_client_drained(struct txn *t)
{
    CHECK(t->magic == TXN_MAGIC);
    if (t->uc && t->up_paused)
        flow_resume(t->uc->cn, &t->up_paused);
}

void proxy_abort(struct txn *t, const char *why)
{
    CHECK(t->magic == TXN_MAGIC);
    if (t->uc) {
        upstream_close(t->uc, UPSTREAM_CLOSE_ERROR);
        t->uc = NULL;
    }
    if (!t->status)
        t->status = 499; /* nginx's "client closed request" */
    t->error = why;
    struct client *c = t->c;
    if (t->ep) {
        inflight_add(t->w, t->ep, -1);
        t->ep = NULL;
    }
    snapshot_unref(t->snap);
    t->snap = NULL;
    c->txn = NULL;
    worker_defer_free(t->w, &t->reap, txn_dispose, t);
}

/* ---- response direction ---------------------------------------------- */

static bool read_response_head(struct txn *t)
{
    struct evbuffer *in = t->uc->cn->in;
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return false;
        if (!t->res_started) {
            t->res_started = true;
            t->first_byte_us = util_now_us();
        }
        size_t n = len < RES_HEAD_MAX ? len : RES_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        size_t head_len = 0;
        const char *err = NULL;
        enum http1_scan_result r = http1_scan_head(&t->res_scan, p, n, &head_len, &err);
        if (r == H1_SCAN_MORE) {
            if (len >= RES_HEAD_MAX)
                fail(t, 502, ERR_BAD_RESPONSE);
            return false;
        }
        if (r == H1_SCAN_BAD) {
            fail(t, 502, ERR_BAD_RESPONSE);
            return false;
        }
        grow(&t->res_head, &t->res_head_cap, head_len);
        evbuffer_remove(in, t->res_head, head_len);
        memset(&t->res_scan, 0, sizeof(t->res_scan));
        t->res.headers = t->res_headers;
        t->res.max_headers = RES_HEADERS_MAX;
        if (http1_parse_response(&t->res, t->res_head, head_len,
                                 t->req.method_id == H1_M_HEAD, &err) < 0) {
            fail(t, 502, ERR_BAD_RESPONSE);
            return false;
        }
        int st = t->res.status;
        if (st >= 100 && st < 200 && st != 101) {
            /* Interim responses: pass 100 Continue on to 1.1 clients (the
             * client's Expect went upstream); drop the others. */
            if (st == 100 && t->req.minor == 1)
                evbuffer_add(t->c->cn->out,
                             "HTTP/1.1 100 Continue\r\n\r\n", 25);
            continue;
        }
        if (st == 101 && !t->req.upgrade) {
            fail(t, 502, ERR_BAD_RESPONSE);
            return false;
        }
        t->status = st;
        health_report_response(t->ep, st); /* passive health: 5xx counts, else resets */
        const struct config *cfg = t->snap->cfg;
        struct http1_back back = {
            .version_header = cfg->version_header,
            .version = t->snap->versions[t->version].name,
            .client_minor = t->req.minor,
            .close = t->close_client || !t->req_done || t->client_eof ||
                     t->c->close_after || t->w->stopping,
            .head_request = t->req.method_id == H1_M_HEAD,
            .set_cookie = t->set_cookie[0] ? t->set_cookie : NULL,
        };
        if (back.close)
            t->close_client = true;
        t->res_out = http1_write_response(t->c->cn->out,
                                          &t->res, &back);
        t->res_head_done = true;
        t->res_remaining = t->res.content_length;
        http1_chunked_init(&t->res_chunk);
        if (st == 101) {
            t->tunnel = true;
            conn_set_timeouts(t->uc->cn, 0, 0);
            conn_read_start(t->c->cn);
            t->client_paused = false;
            /* bytes the client sent after its request, if any */
            if (evbuffer_get_length(t->c->cn->in))
                proxy_on_client_read(t);
        }
        return true;
    }
}

static void pump_response(struct txn *t)
{
    struct evbuffer *in = t->uc->cn->in;
    struct evbuffer *out = t->c->cn->out;
    size_t before = evbuffer_get_length(out);
    bool done = false;
    switch (t->res.framing) {
    case H1_F_NONE:
        done = true;
        break;
    case H1_F_LENGTH: {
        size_t n = evbuffer_get_length(in);
        if (n > t->res_remaining)
            n = (size_t)t->res_remaining;
        if (n) {
            evbuffer_remove_buffer(in, out, n);
            t->res_remaining -= n;
            t->res_body_bytes += n;
        }
        done = t->res_remaining == 0;
        break;
    }
    case H1_F_CHUNKED: {
        const char *err = NULL;
        int r = http1_chunked_step(&t->res_chunk, in, out,
                                   t->res_out == H1_F_CHUNKED, SIZE_MAX, &err);
        if (r < 0) {
            fail(t, 502, ERR_BAD_RESPONSE);
            return;
        }
        done = r == 1;
        break;
    }
    case H1_F_CLOSE: {
        size_t n = evbuffer_get_length(in);
        if (n) {
            if (t->res_out == H1_F_CHUNKED)
                http1_chunk_move(in, out, n);
            else
                evbuffer_remove_buffer(in, out, n);
            t->res_body_bytes += n;
        }
        break; /* done at EOF */
    }
    }
    if (t->res.framing == H1_F_CHUNKED)
        t->res_body_bytes += evbuffer_get_length(out) - before;
    if (done) {
        finish(t); /* sends (release) */
        return;
    }
    conn_send(t->c->cn);
    if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
        flow_pause(t->uc->cn, &t->up_paused);
}

static void up_read(struct conn *cn, struct txn *t)
{
    if (t->tunnel) {
        struct evbuffer *out = t->c->cn->out;
        evbuffer_add_buffer(out, cn->in);
        conn_send(t->c->cn);
        if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
            flow_pause(cn, &t->up_paused);
        return;
    }
    if (!t->res_head_done) {
        if (!read_response_head(t) || !t->uc)
            return;
        if (t->tunnel) {
            up_read(cn, t);
            return;
        }
    }
    pump_response(t);
}

static void on_up_read(struct conn *cn, void *arg)
{
    struct txn *t = arg;
    CHECK(t->magic == TXN_MAGIC);
    struct client *c = t->c;
    up_read(cn, t);
    send_client(c); /* e.g. a 100 Continue, or a head without its body yet */
}

static void on_up_write(struct conn *cn, void *arg)
{
    struct txn *t = arg;
    CHECK(t->magic == TXN_MAGIC);
    (void)cn;
    if (t->client_paused)
        flow_resume(t->c->cn, &t->client_paused);
    if (!t->req_done)
        pump_request(t);
    if (t->uc)
        conn_send(t->uc->cn);
}

/* May this txn try again after its upstream failed before any response? */
static bool can_retry(const struct txn *t)
{
    if (t->res_started || t->res_head_done)
        return false;
    if (!t->head_sent)
        return true; /* nothing reached the upstream */
    if (t->body_sent)
        return false; /* the body was streamed: never send it twice */
    switch (t->req.method_id) {
    case H1_M_GET:
    case H1_M_HEAD:
    case H1_M_OPTIONS:
    case H1_M_PUT:
    case H1_M_DELETE:
    case H1_M_TRACE:
        return t->req.framing == H1_F_NONE || !t->body_sent;
    default:
        return false;
    }
}

/* The upstream failed before responding: retry or answer. */
static void upstream_failed(struct txn *t, const char *why, int status)
{
    struct upstream_conn *uc = t->uc;
    bool reused = uc->reused;
    bool stale = reused && !t->stale_retry_used && why == ERR_RESET;
    upstream_close(uc, UPSTREAM_CLOSE_ERROR);
    t->uc = NULL;
    if (can_retry(t)) {
        t->head_sent = false;
        if (stale) {
            /* A pooled conn the upstream had closed: same endpoint, fresh
             * conn; this is not the endpoint's failure. */
            t->stale_retry_used = true;
            t->attempts--;
            connect_upstream(t);
            return;
        }
        if (t->attempts <= t->snap->cfg->retries) {
            t->failed_ep = t->ep;
            metrics_retry(t->w, t->ep);
            log_txn(t, why);
            connect_upstream(t);
            return;
        }
    }
    fail(t, status, why);
}

static void on_up_event(struct conn *cn, short what, void *arg)
{
    struct txn *t = arg;
    CHECK(t->magic == TXN_MAGIC);
    struct client *c = t->c;
    up_event(cn, what, t);
    send_client(c);
}

static void up_event(struct conn *cn, short what, struct txn *t)
{
    struct upstream_conn *uc = t->uc;
    CHECK(uc && uc->cn == cn);
    if (what & CONN_CONNECTED) {
        if (!uc->connected) {
            uc->connected = true;
            const struct config *cfg = t->snap->cfg;
            conn_set_timeouts(cn, cfg->upstream_response_timeout_ms,
                              cfg->upstream_response_timeout_ms);
            conn_read_start(cn);
        }
        send_head(t);
        return;
    }
    if (!uc->connected) {
        metrics_connect_failure(t->w, t->ep);
        health_report_failure(t->ep);
        upstream_failed(t, (what & CONN_TIMEOUT) ? ERR_CONNECT_TIMEOUT : ERR_CONNECT,
                        (what & CONN_TIMEOUT) ? 504 : 502);
        return;
    }
    if (t->tunnel) {
        /* Either side closing ends the tunnel, after flushing. */
        upstream_close(uc, UPSTREAM_CLOSE_DONE);
        t->uc = NULL;
        t->res_done = true;
        release(t, true);
        return;
    }
    if (what & CONN_TIMEOUT) {
        if (!t->res_head_done)
            upstream_failed(t, ERR_TIMEOUT, 504);
        else
            fail(t, 504, ERR_TIMEOUT);
        return;
    }
    /* EOF or error */
    if (!t->res_head_done) {
        /* Bytes may have arrived with the EOF. */
        if (evbuffer_get_length(cn->in) && read_response_head(t)) {
            if (!t->uc)
                return;
            pump_response(t);
            if (!t->uc)
                return;
        } else if (!t->uc) {
            return;
        } else {
            upstream_failed(t, ERR_RESET, 502);
            return;
        }
    } else {
        pump_response(t);
        if (!t->uc || t->res_done)
            return;
    }
    if (t->res.framing == H1_F_CLOSE && !(what & CONN_ERROR)) {
        if (t->res_out == H1_F_CHUNKED)
            http1_chunk_end(t->c->cn->out);
        t->res.keep_alive = false;
        finish(t);
        return;
    }
    fail(t, 502, ERR_TRUNCATED);
}
