/*
 * proxy.c — see proxy.h.
 *
 * A txn has two halves that progress independently (an upstream may answer
 * before the request body is complete), each with its own state (h2o's
 * model), and exactly one end:
 *
 *   request  REQ_S_WAIT ──conn ready, head sent──▶ REQ_S_BODY ──body done──▶ REQ_S_DONE
 *               ▲  (retry: back to WAIT)              └──────101──────▶ REQ_S_TUNNEL
 *   response RES_S_WAIT ──first byte──▶ RES_S_HEAD ──head relayed──▶ RES_S_BODY
 *               (a retry is possible only in WAIT)       └──101──▶ RES_S_TUNNEL
 *   any state ──txn_end(t, outcome)──▶ RES_S_END
 *
 * txn_end() is the only way a txn ends: it closes or returns the upstream
 * conn, records the outcome (metrics, access log: one line, one count per
 * request, whatever happened), drops the snapshot reference, frees the txn
 * after dispatch and tells the client what comes next. Its outcomes:
 *   TXN_O_KEEP   response complete; the connection may carry another request
 *   TXN_O_CLOSE  response complete or weir's error answered; close after flush
 *   TXN_O_CUT    the response cannot be completed: close the client now
 *   TXN_O_GONE   the client went away (499), or the worker stopped; the
 *                client's close is already under way
 * Reasons for ending other than a complete response are enum txn_error
 * (txn_error.h): one table gives each its status, log level and label.
 */
#include "proxy.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "access.h"
#include "access_id.h"
#include "client.h"
#include "conn.h"
#include "health.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "txn_error.h"
#include "upstream.h"
#include "balancer.h"
#include "loop.h"
#include "router.h"
#include "snapshot.h"

#define TXN_MAGIC 0x54584e31u /* "TXN1" */
#define RES_HEAD_MAX (64u * 1024u)
#define RES_HEADERS_MAX 256u
/* Free txns a worker keeps for reuse: as many as are alive at once under
 * load (about one per client with a request in flight: 256 at 256
 * connections), or each txn past the cap is a fresh ~9 KiB allocation.
 * Not more: a burst of a thousand requests would leave that many cached
 * until the worker idles and empties the cache (worker.c on_tick), and
 * what the allocator cannot hand back then stays with the idle conns. */
#define TXN_FREE_MAX 256u

enum req_state {
    REQ_S_WAIT = 0, /* no upstream conn ready: routing, connecting, between attempts */
    REQ_S_BODY,     /* head sent upstream; the body is being forwarded */
    REQ_S_DONE,     /* head and whole body forwarded upstream */
    REQ_S_TUNNEL,   /* after a 101: client bytes go upstream as they come */
};

enum res_state {
    RES_S_WAIT = 0, /* no response byte yet (only here may a txn retry) */
    RES_S_HEAD,     /* response bytes arriving, head not complete */
    RES_S_BODY,     /* head relayed to the client; body streaming */
    RES_S_TUNNEL,   /* 101 relayed: upstream bytes go to the client raw */
    RES_S_END,      /* txn_end ran; the memory is reaped after dispatch */
};

enum txn_outcome {
    TXN_O_KEEP = 0, /* response complete; the connection may go on */
    TXN_O_CLOSE,    /* response (or weir's error) queued; close after flush */
    TXN_O_CUT,      /* response cannot be completed: close the client now */
    TXN_O_GONE,     /* the client is being closed already (client_close) */
};

struct txn {
    uint32_t magic;
    enum req_state req_state;
    enum res_state res_state;
    struct client *c;      /* borrowed */
    struct loop *loop;     /* borrowed */
    struct snapshot *snap; /* refcounted */
    struct route_decision route;
    int version;                /* serving version (after fallback) */
    struct endpoint *ep;        /* borrowed from snap */
    struct upstream_conn *uc;   /* owned while running */
    struct mirror *mirror;      /* held until txn_end: the shadow copy, or NULL */
    struct endpoint *failed_ep; /* borrowed: excluded on retry */
    unsigned attempts;
    bool stale_retry_used; /* a dead pooled conn was retried once */
    bool body_sent;        /* request body bytes reached an upstream */
    bool close_client;     /* the connection ends after this response */
    bool up_paused, client_paused;
    int status;                             /* what the client got (or will get) */
    enum txn_error error;                   /* why it did not end plainly; NONE if it did */
    const char *error_detail;               /* static: the parser's reason, or NULL */
    char set_cookie[128 + CONFIG_NAME_MAX]; /* assigned sticky key, "" if none */

    char *head; /* owned: the request head bytes */
    size_t head_cap;
    struct http1_request req;
    struct router_header *req_headers; /* owned */
    size_t req_headers_cap;
    uint64_t req_remaining;
    struct http1_chunked req_chunk;
    uint64_t req_body_bytes;

    struct http1_scan res_scan;
    char *res_head; /* owned */
    size_t res_head_cap;
    struct http1_response res;
    enum http1_framing res_out; /* framing toward the client */
    uint64_t res_remaining;
    struct http1_chunked res_chunk;
    uint64_t res_body_bytes;
    uint64_t res_head_at; /* client stream offset of the response head */

    uint64_t start_us, upstream_start_us, first_byte_us;
    struct txn *next_free; /* link in loop->txns (the cache owns the list) */
    uint64_t sent_us;      /* request head handed to the upstream conn */
    uint64_t connect_us;   /* connect time of a new upstream conn */
    bool connected;        /* ... when this attempt opened one */
    uint64_t rx_bytes;     /* request bytes read from the client */
    uint64_t tx_start;     /* client output offset when the txn began */
    struct strview req_id; /* X-Request-Id sent upstream (the client's or req_id_buf) */
    char req_id_buf[ACCESS_ID_LEN + 1];
    struct reap_item reap; /* deferred-free link */

    /* Last, and not cleared by txn_new (8 KiB): only the first
     * res.n_headers entries are ever read, and the parser sets those. */
    struct router_header res_headers[RES_HEADERS_MAX];
};

static void on_up_read(struct conn *cn, void *arg);
static void on_up_write(struct conn *cn, void *arg);
static void on_up_event(struct conn *cn, short what, void *arg);
static void up_event(struct conn *cn, short what, struct txn *t);
static void connect_upstream(struct txn *t);
static void assign_sticky_key(struct txn *t);

/* ---- allocation ---------------------------------------------------- */

static struct txn *txn_new(struct loop *l)
{
    struct proxy_table *tab = l->txns;
    struct txn *t = tab ? tab->free_txns : NULL;
    if (t) {
        tab->free_txns = t->next_free;
        tab->n_free--;
    } else {
        /* Cleared below, but for res_headers (see struct txn). */
        t = xmalloc(sizeof(*t));
        t->head = t->res_head = NULL;
        t->head_cap = t->res_head_cap = 0;
        t->req_headers = NULL;
        t->req_headers_cap = 0;
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

static void txn_release_memory(struct txn *t)
{
    free(t->head);
    free(t->res_head);
    free(t->req_headers);
    free(t);
}

static void txn_dispose(void *obj)
{
    struct txn *t = obj;
    CHECK(t->magic == TXN_MAGIC);
    t->magic = 0;
    struct proxy_table *tab = t->loop->txns;
    if (tab && tab->n_free < TXN_FREE_MAX) {
        t->next_free = tab->free_txns;
        tab->free_txns = t;
        tab->n_free++;
        return;
    }
    txn_release_memory(t);
}

void proxy_table_init(struct proxy_table *tab)
{
    tab->free_txns = NULL;
    tab->n_free = 0;
}

void proxy_table_dispose(struct proxy_table *tab)
{
    while (tab->free_txns) {
        struct txn *t = tab->free_txns;
        tab->free_txns = t->next_free;
        txn_release_memory(t);
    }
    tab->n_free = 0;
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
static void inflight_add(struct loop *l, struct endpoint *ep, int delta)
{
    _Atomic uint64_t *g = &ep->slots[l->id].inflight;
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

/* Has the request been read whole from the client (so the connection could
 * carry another one)? Before the head went upstream only a bodyless request
 * has; after a 101 the bytes are the tunnel's. */
static bool req_whole(const struct txn *t)
{
    switch (t->req_state) {
    case REQ_S_WAIT:
        return t->req.framing == H1_F_NONE;
    case REQ_S_BODY:
        return false;
    case REQ_S_DONE:
    case REQ_S_TUNNEL:
        return true;
    }
    return false;
}

/* ---- logging --------------------------------------------------------- */

/* The log context of a txn: "c#N ADDR → VERSION/ENDPOINT". */
static void txn_label(const struct txn *t, char *buf, size_t len)
{
    char client[96];
    client_label(t->c, client, sizeof(client));
    snprintf(buf, len, "%s → %s/%s", client,
             t->version >= 0 ? t->snap->versions[t->version].name : "-",
             t->ep ? t->ep->address : "-");
}

static void txn_warn(const struct txn *t, enum txn_error e)
{
    char label[192];
    txn_label(t, label, sizeof(label));
    log_msg((enum log_level)txn_errors[e].log_level, "%s: %s", label,
            txn_errors[e].reason);
}

/* ---- ending a txn: the one place that accounts for a request ----------- */

/* One count and one access-log line per request; e.client must be set. */
static void account(struct loop *l, const struct snapshot *s, int version,
                    struct endpoint *ep, enum txn_error err,
                    struct access_entry *e)
{
    bool aborted = err == TXN_E_CLIENT_HEAD || err == TXN_E_CLIENT_BODY;
    metrics_txn_done(l, s, version, ep, e->status, err, aborted, e->total_us);
    access_log_txn(l, e);
}

/* Bytes both ways and the upstream's latency (metrics.h). */
static void account_io(const struct txn *t)
{
    const struct conn *cn = t->c->cn;
    uint64_t at = cn ? cn->sent_bytes + evbuffer_get_length(cn->out) : 0;
    uint64_t tx = cn && at >= t->tx_start ? at - t->tx_start : t->res_body_bytes;
    int64_t up = t->first_byte_us && t->sent_us && t->first_byte_us >= t->sent_us
                     ? (int64_t)(t->first_byte_us - t->sent_us)
                     : -1;
    metrics_txn_io(t->loop, t->snap, t->version, t->rx_bytes, tx, up);
}

static void txn_end(struct txn *t, enum txn_outcome how)
{
    CHECK(t->magic == TXN_MAGIC && t->res_state != RES_S_END);
    struct client *c = t->c;
    if (t->uc) {
        upstream_close(t->uc, UPSTREAM_CLOSE_ERROR);
        t->uc = NULL;
    }
    t->res_state = RES_S_END;
    if (t->client_paused && how <= TXN_O_CLOSE)
        flow_resume(c->cn, &t->client_paused);
    if (t->ep)
        inflight_add(t->loop, t->ep, -1);
    /* The mirror lets go once the response was handed to the client's
     * socket (below): what it then does is off the client's path. */
    struct mirror *mirror = t->mirror;
    bool mirror_complete = how <= TXN_O_CLOSE && t->error == TXN_E_NONE;
    t->mirror = NULL;
    uint64_t now_us = util_now_us();
    const char *reason = t->error_detail ? t->error_detail : txn_errors[t->error].reason;
    account_io(t);
    account(t->loop, t->snap, t->version, t->ep, t->error, &(struct access_entry){
                                                               .client = (const struct sockaddr *)&c->addr,
                                                               .tls = c->tls,
                                                               .method = t->req.method,
                                                               .target = t->req.target,
                                                               .http_minor = t->req.minor,
                                                               .http2 = c->stream,
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
                                                               .total_us = now_us - t->start_us,
                                                               .retries = t->attempts > 1 ? t->attempts - 1 : 0,
                                                               .error = reason,
                                                               .request_id = t->req_id,
                                                               .bytes_received = t->rx_bytes,
                                                               .connected = t->connected,
                                                               .upstream_connect_us = t->connect_us,
                                                           });
    snapshot_unref(t->snap);
    t->snap = NULL;
    c->txn = NULL;
    loop_defer_free(t->loop, &t->reap, txn_dispose, t);
    switch (how) {
    case TXN_O_KEEP:
    case TXN_O_CLOSE:
        send_client(c);
        client_txn_done(c, how == TXN_O_CLOSE);
        break;
    case TXN_O_CUT:
        client_close(c, reason);
        break;
    case TXN_O_GONE:
        break;
    }
    /* t and c stay valid until the reap (after this dispatch). */
    if (mirror)
        mirror_primary_end(mirror, mirror_complete, &t->req, (const struct sockaddr *)&c->addr);
}

void proxy_log_refused(struct client *c, int status, enum txn_error err,
                       const char *detail)
{
    account(c->loop, NULL, -1, NULL, err, &(struct access_entry){
                                              .client = (const struct sockaddr *)&c->addr,
                                              .tls = c->tls,
                                              .http_minor = 1,
                                              .status = status,
                                              .reason = ROUTE_R_NONE,
                                              .rule = -1,
                                              .bucket = -1,
                                              .error = detail ? detail : txn_errors[err].reason,
                                          });
}

/*
 * The response head is in the client's output but none of it has reached
 * the socket yet: take it back (with whatever followed it), so the client
 * can still get weir's error instead of an empty reply. Returns false when
 * part of the response was sent.
 */
static bool unsend_head(struct txn *t)
{
    struct conn *cn = t->c->cn;
    if (!cn || cn->sent_bytes > t->res_head_at)
        return false;
    struct evbuffer *out = cn->out;
    size_t keep = (size_t)(t->res_head_at - cn->sent_bytes);
    size_t len = evbuffer_get_length(out);
    if (keep == 0) {
        evbuffer_drain(out, len);
    } else if (keep < len) {
        /* Something queued before the head (a 100 Continue) stays. */
        struct evbuffer *front = evbuffer_new();
        CHECK(front);
        evbuffer_remove_buffer(out, front, keep);
        evbuffer_drain(out, evbuffer_get_length(out));
        evbuffer_add_buffer(out, front);
        evbuffer_free(front);
    }
    t->res_body_bytes = 0;
    t->res_state = RES_S_HEAD;
    return true;
}

/* Answer weir's error for e if no response byte reached the client yet;
 * otherwise cut the client connection (the only honest signal left). */
static void fail(struct txn *t, enum txn_error e)
{
    t->error = e;
    if (t->uc) {
        upstream_close(t->uc, UPSTREAM_CLOSE_ERROR);
        t->uc = NULL;
    }
    txn_warn(t, e);
    if (t->res_state == RES_S_BODY && !unsend_head(t)) {
        txn_end(t, TXN_O_CUT);
        return;
    }
    t->status = txn_errors[e].status;
    /* The connection can carry on only if the request was read whole. */
    bool close = !req_whole(t) || !t->req.keep_alive;
    http1_write_error(t->c->cn->out, t->status, close);
    txn_end(t, close ? TXN_O_CLOSE : TXN_O_KEEP);
}

/* The response is complete. */
static void finish(struct txn *t)
{
    struct upstream_conn *uc = t->uc;
    t->uc = NULL;
    bool whole = t->req_state == REQ_S_DONE;
    bool reusable = t->res.keep_alive && whole &&
                    evbuffer_get_length(uc->cn->in) == 0;
    upstream_release(uc, reusable);
    bool close = t->close_client || !whole || t->res_out == H1_F_CLOSE;
    txn_end(t, close ? TXN_O_CLOSE : TXN_O_KEEP);
}

void proxy_abort(struct txn *t, const char *why)
{
    CHECK(t->magic == TXN_MAGIC);
    if (t->res_state == RES_S_TUNNEL) {
        /* Either side closing ends a tunnel: the 101 stands. */
    } else if (why == CLIENT_CLOSE_STOP) {
        t->error = TXN_E_STOPPED;
        if (t->res_state != RES_S_BODY)
            t->status = txn_errors[TXN_E_STOPPED].status;
        txn_warn(t, TXN_E_STOPPED);
    } else {
        t->error = t->res_state == RES_S_BODY ? TXN_E_CLIENT_BODY : TXN_E_CLIENT_HEAD;
        t->status = txn_errors[t->error].status;
    }
    txn_end(t, TXN_O_GONE);
}

/* ---- start ------------------------------------------------------------ */

void proxy_start(struct client *c, size_t head_len)
{
    struct loop *l = c->loop;
    struct txn *t = txn_new(l);
    t->c = c;
    t->loop = l;
    t->version = -1;
    t->start_us = util_now_us();
    c->txn = t;
    t->snap = loop_snapshot(l);
    snapshot_ref(t->snap);
    const struct config *cfg = t->snap->cfg;
    t->rx_bytes = head_len;
    t->tx_start = c->cn->sent_bytes + evbuffer_get_length(c->cn->out);

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
        t->error = TXN_E_BAD_REQUEST;
        t->error_detail = err;
        t->req.keep_alive = false;
        http1_write_error(c->cn->out, status, true);
        txn_end(t, TXN_O_CLOSE);
        return;
    }
    t->req_id = access_id_pick(t->req.headers, t->req.n_headers, t->req_id_buf);
    t->req_remaining = t->req.content_length;
    http1_chunked_init(&t->req_chunk);
    if (!t->req.keep_alive)
        t->close_client = true;

    struct router_request rr = {t->req.headers, t->req.n_headers};
    router_pick(t->snap, l->router, &rr, &t->route);
    if (t->route.reason == ROUTE_R_SPLIT && cfg->sticky.assign)
        assign_sticky_key(t);
    t->version = t->route.version;
    if (t->version < 0) {
        fail(t, TXN_E_NO_ENDPOINT);
        return;
    }
    t->mirror = mirror_start(l, t->snap, t->version, &t->req);
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
    struct loop *l = t->loop;
    uint64_t now = util_now_ms();
    int v = t->version;
    int i = balancer_pick(t->snap, l->balancer, v, t->failed_ep, now);
    if (i < 0 && t->failed_ep)
        i = balancer_pick(t->snap, l->balancer, v, NULL, now);
    if (i < 0 && t->snap->versions[t->route.version].fallback >= 0 &&
        t->attempts == 0) {
        v = t->snap->versions[t->route.version].fallback;
        i = balancer_pick(t->snap, l->balancer, v, NULL, now);
        if (i >= 0)
            t->version = v;
    }
    if (i < 0) {
        fail(t, TXN_E_NO_ENDPOINT);
        return;
    }
    struct endpoint *ep = t->snap->versions[v].eps[i].ep;
    if (t->ep != ep) {
        if (t->ep)
            inflight_add(l, t->ep, -1);
        inflight_add(l, ep, +1);
        t->ep = ep;
    }
    t->attempts++;
    t->upstream_start_us = util_now_us();
    t->connected = false;
    bool fresh = t->stale_retry_used;
    struct upstream_conn *uc = upstream_acquire(l->upstreams, ep, fresh, on_up_read,
                                                on_up_write, on_up_event, t);
    if (!uc) {
        metrics_connect_failure(l, ep);
        health_report_failure(ep);
        t->failed_ep = ep;
        if (t->attempts <= t->snap->cfg->retries) {
            metrics_retry(l, ep);
            connect_upstream(t);
            return;
        }
        fail(t, TXN_E_CONNECT);
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

/* While the response is awaited the client is still read, so that its
 * leaving is noticed at once; pipelined requests wait in its input, up to
 * the high-water mark. */
static void hold_client_input(struct txn *t)
{
    if (evbuffer_get_length(t->c->cn->in) > FLOW_HIGH_WATER)
        flow_pause(t->c->cn, &t->client_paused);
}

static void pump_request(struct txn *t)
{
    if (t->req_state != REQ_S_BODY)
        return;
    struct evbuffer *in = t->c->cn->in;
    struct evbuffer *out = t->uc->cn->out;
    size_t before = evbuffer_get_length(out);
    size_t in_before = evbuffer_get_length(in);
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
            t->req_state = REQ_S_DONE;
    } else if (t->req.framing == H1_F_CHUNKED) {
        const char *err = NULL;
        int r = http1_chunked_step(&t->req_chunk, in, out, true, SIZE_MAX, &err);
        if (r < 0) {
            char label[96];
            client_label(t->c, label, sizeof(label));
            log_warn("%s bad chunked body: %s", label, err);
            t->req.keep_alive = false;
            fail(t, TXN_E_BAD_BODY);
            return;
        }
        if (r == 1)
            t->req_state = REQ_S_DONE;
    } else {
        t->req_state = REQ_S_DONE;
    }
    t->rx_bytes += in_before - evbuffer_get_length(in);
    if (t->mirror)
        mirror_request_body(t->mirror, out, before, t->req_state == REQ_S_DONE);
    if (evbuffer_get_length(out) != before)
        t->body_sent = true;
    conn_send(t->uc->cn);
    if (t->req_state == REQ_S_DONE)
        hold_client_input(t);
    else if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
        flow_pause(t->c->cn, &t->client_paused);
}

static void send_head(struct txn *t)
{
    struct evbuffer *out = t->uc->cn->out;
    struct http1_fwd fwd = {
        .client = (const struct sockaddr *)&t->c->addr,
        .close = false,
        .https = t->c->tls != NULL,
        .request_id = t->req_id,
    };
    http1_write_request(out, &t->req, &fwd);
    t->sent_us = util_now_us();
    /* After a 101 the bytes that follow are the tunnel's, not a body. */
    t->req_state = t->req.upgrade ? REQ_S_DONE : REQ_S_BODY;
    pump_request(t);
    if (t->uc)
        conn_send(t->uc->cn);
}

void proxy_on_client_read(struct txn *t)
{
    CHECK(t->magic == TXN_MAGIC);
    switch (t->req_state) {
    case REQ_S_TUNNEL: {
        struct evbuffer *out = t->uc->cn->out;
        t->rx_bytes += evbuffer_get_length(t->c->cn->in);
        evbuffer_add_buffer(out, t->c->cn->in);
        conn_send(t->uc->cn);
        if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
            flow_pause(t->c->cn, &t->client_paused);
        return;
    }
    case REQ_S_BODY:
        pump_request(t);
        return;
    case REQ_S_WAIT: /* still connecting: the body waits in the input */
    case REQ_S_DONE:
        hold_client_input(t);
        return;
    }
}

void proxy_on_client_eof(struct txn *t)
{
    CHECK(t->magic == TXN_MAGIC);
    /*
     * The client's side ended before its response did. RFC 9112 §9.6 lets a
     * client half-close, but a proxy cannot tell that from a close; like
     * nginx, weir takes it as the client having gone (499) and releases the
     * upstream at once rather than keep it busy for nobody. In a tunnel it
     * ends the tunnel.
     */
    client_close(t->c, CLIENT_CLOSE_PEER);
}

void proxy_on_client_drained(struct txn *t)
{
    CHECK(t->magic == TXN_MAGIC);
    if (t->uc && t->up_paused)
        flow_resume(t->uc->cn, &t->up_paused);
}

/* ---- response direction ---------------------------------------------- */

/* Returns true when a head was relayed (or a tunnel began) and the txn
 * goes on; false when more bytes are needed or the txn ended. */
static bool read_response_head(struct txn *t)
{
    struct evbuffer *in = t->uc->cn->in;
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return false;
        if (t->res_state == RES_S_WAIT) {
            t->res_state = RES_S_HEAD;
            t->first_byte_us = util_now_us();
        }
        size_t n = len < RES_HEAD_MAX ? len : RES_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        size_t head_len = 0;
        const char *err = NULL;
        enum http1_scan_result r = http1_scan_head(&t->res_scan, p, n, &head_len, &err);
        if (r == H1_SCAN_MORE) {
            if (len >= RES_HEAD_MAX)
                fail(t, TXN_E_BAD_RESPONSE);
            return false;
        }
        if (r == H1_SCAN_BAD) {
            fail(t, TXN_E_BAD_RESPONSE);
            return false;
        }
        grow(&t->res_head, &t->res_head_cap, head_len);
        evbuffer_remove(in, t->res_head, head_len);
        memset(&t->res_scan, 0, sizeof(t->res_scan));
        t->res.headers = t->res_headers;
        t->res.max_headers = RES_HEADERS_MAX;
        if (http1_parse_response(&t->res, t->res_head, head_len,
                                 t->req.method_id == H1_M_HEAD, &err) < 0) {
            fail(t, TXN_E_BAD_RESPONSE);
            return false;
        }
        int st = t->res.status;
        struct evbuffer *out = t->c->cn->out;
        if (st >= 100 && st < 200 && st != 101) {
            /* Interim responses: pass 100 Continue on to 1.1 clients (the
             * client's Expect went upstream); drop the others. */
            if (st == 100 && t->req.minor == 1)
                evbuffer_add(out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            continue;
        }
        if (st == 101 && !t->req.upgrade) {
            fail(t, TXN_E_BAD_RESPONSE);
            return false;
        }
        t->status = st;
        if (t->mirror)
            mirror_response_head(t->mirror, &t->res);
        health_report_response(t->ep, st); /* passive health: 5xx counts, else resets */
        const struct config *cfg = t->snap->cfg;
        struct http1_back back = {
            .version_header = cfg->version_header,
            .version = t->snap->versions[t->version].name,
            .client_minor = t->req.minor,
            .close = t->close_client || !req_whole(t) || t->c->close_after ||
                     t->loop->stopping,
            .head_request = t->req.method_id == H1_M_HEAD,
            .set_cookie = t->set_cookie[0] ? t->set_cookie : NULL,
        };
        if (back.close)
            t->close_client = true;
        t->res_head_at = t->c->cn->sent_bytes + evbuffer_get_length(out);
        t->res_out = http1_write_response(out, &t->res, &back);
        t->res_state = RES_S_BODY;
        t->res_remaining = t->res.content_length;
        http1_chunked_init(&t->res_chunk);
        if (st == 101) {
            t->res_state = RES_S_TUNNEL;
            t->req_state = REQ_S_TUNNEL;
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
            fail(t, TXN_E_BAD_RESPONSE);
            return;
        }
        t->res_body_bytes += evbuffer_get_length(out) - before;
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
    if (t->mirror) /* weir re-frames as chunked only what had no length */
        mirror_response_body(t->mirror, out, before,
                             t->res_out == H1_F_CHUNKED && t->res.framing != H1_F_LENGTH);
    if (done) {
        finish(t); /* sends (txn_end) */
        return;
    }
    conn_send(t->c->cn);
    if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
        flow_pause(t->uc->cn, &t->up_paused);
}

static void up_read(struct conn *cn, struct txn *t)
{
    switch (t->res_state) {
    case RES_S_TUNNEL: {
        struct evbuffer *out = t->c->cn->out;
        evbuffer_add_buffer(out, cn->in);
        conn_send(t->c->cn);
        if (evbuffer_get_length(out) > FLOW_HIGH_WATER)
            flow_pause(cn, &t->up_paused);
        return;
    }
    case RES_S_WAIT:
    case RES_S_HEAD:
        if (!read_response_head(t))
            return;
        if (t->res_state == RES_S_TUNNEL) {
            up_read(cn, t);
            return;
        }
        pump_response(t);
        return;
    case RES_S_BODY:
        pump_response(t);
        return;
    case RES_S_END:
        return;
    }
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
    if (t->req_state == REQ_S_BODY) {
        if (t->client_paused)
            flow_resume(t->c->cn, &t->client_paused);
        pump_request(t);
    } else if (t->req_state == REQ_S_TUNNEL && t->client_paused) {
        flow_resume(t->c->cn, &t->client_paused);
    }
    if (t->uc)
        conn_send(t->uc->cn);
}

/* May this txn try again after its upstream failed before any response? */
static bool can_retry(const struct txn *t)
{
    if (t->res_state != RES_S_WAIT)
        return false;
    if (t->req_state == REQ_S_WAIT)
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
        return true; /* idempotent (RFC 9110 §9.2.2), and no body byte sent */
    default:
        return false;
    }
}

/* The upstream failed before responding: retry or answer. */
static void upstream_failed(struct txn *t, enum txn_error e)
{
    struct upstream_conn *uc = t->uc;
    bool stale = uc->reused && !t->stale_retry_used && e == TXN_E_RESET;
    upstream_close(uc, UPSTREAM_CLOSE_ERROR);
    t->uc = NULL;
    if (can_retry(t)) {
        t->req_state = REQ_S_WAIT;
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
            metrics_retry(t->loop, t->ep);
            txn_warn(t, e);
            connect_upstream(t);
            return;
        }
    }
    fail(t, e);
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
            t->connect_us = util_now_us() - t->upstream_start_us;
            t->connected = true;
            const struct config *cfg = t->snap->cfg;
            conn_set_timeouts(cn, cfg->upstream_response_timeout_ms,
                              cfg->upstream_response_timeout_ms);
            conn_read_start(cn);
        }
        send_head(t);
        return;
    }
    if (!uc->connected) {
        metrics_connect_failure(t->loop, t->ep);
        health_report_failure(t->ep);
        upstream_failed(t, (what & CONN_TIMEOUT) ? TXN_E_CONNECT_TIMEOUT : TXN_E_CONNECT);
        return;
    }
    if (t->res_state == RES_S_TUNNEL) {
        /* Either side closing ends the tunnel, after flushing. */
        upstream_close(uc, UPSTREAM_CLOSE_DONE);
        t->uc = NULL;
        txn_end(t, TXN_O_CLOSE);
        return;
    }
    if (what & CONN_TIMEOUT) {
        if (t->res_state == RES_S_WAIT)
            upstream_failed(t, TXN_E_TIMEOUT);
        else
            fail(t, TXN_E_TIMEOUT);
        return;
    }
    /* EOF or error; bytes may have arrived with it. */
    if (t->res_state == RES_S_WAIT || t->res_state == RES_S_HEAD) {
        if (!evbuffer_get_length(cn->in) || !read_response_head(t)) {
            /* nothing, or a head cut short (then no retry: bytes came) */
            if (t->res_state != RES_S_END)
                upstream_failed(t, TXN_E_RESET);
            return;
        }
        if (t->res_state == RES_S_TUNNEL) {
            up_read(cn, t);
            if (t->res_state == RES_S_END)
                return;
            upstream_close(uc, UPSTREAM_CLOSE_DONE);
            t->uc = NULL;
            txn_end(t, TXN_O_CLOSE);
            return;
        }
    }
    pump_response(t);
    if (t->res_state == RES_S_END)
        return;
    if (t->res.framing == H1_F_CLOSE && !(what & CONN_ERROR)) {
        if (t->res_out == H1_F_CHUNKED)
            http1_chunk_end(t->c->cn->out);
        t->res.keep_alive = false;
        finish(t);
        return;
    }
    fail(t, TXN_E_TRUNCATED);
}
