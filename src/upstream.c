/*
 * upstream.c — see upstream.h.
 *
 * The pool of an endpoint in a worker is a LIFO list hung off
 * ep->slots[worker].pool (the warmest conn is reused first; the coldest
 * ones time out). A pooled conn holds an endpoint reference and keeps
 * reading, so a peer's close or stray bytes evict it at once.
 */
#include "upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "worker.h"

const char UPSTREAM_CLOSE_DONE[] = "not reusable";
const char UPSTREAM_CLOSE_IDLE[] = "idle";
const char UPSTREAM_CLOSE_RETIRED[] = "endpoint retired";
const char UPSTREAM_CLOSE_FULL[] = "pool full";
const char UPSTREAM_CLOSE_ERROR[] = "error";
const char UPSTREAM_CLOSE_STOP[] = "worker stopping";

static void on_idle_read(struct conn *cn, void *arg);
static void on_idle_event(struct conn *cn, short what, void *arg);

static void uc_free(void *obj)
{
    struct upstream_conn *uc = obj;
    CHECK(uc->magic == UPSTREAM_MAGIC);
    uc->magic = 0;
    free(uc);
}

static void pool_unlink(struct upstream_conn *uc)
{
    struct endpoint_wslot *slot = &uc->ep->slots[uc->w->id];
    if (uc->pool_prev)
        uc->pool_prev->pool_next = uc->pool_next;
    else
        slot->pool = uc->pool_next;
    if (uc->pool_next)
        uc->pool_next->pool_prev = uc->pool_prev;
    uc->pool_next = uc->pool_prev = NULL;
    slot->n_idle--;
}

static void pool_push(struct upstream_conn *uc)
{
    struct endpoint_wslot *slot = &uc->ep->slots[uc->w->id];
    uc->pool_prev = NULL;
    uc->pool_next = slot->pool;
    if (uc->pool_next)
        uc->pool_next->pool_prev = uc;
    slot->pool = uc;
    slot->n_idle++;
}

void upstream_close(struct upstream_conn *uc, const char *why)
{
    if (uc->closing)
        return;
    CHECK(uc->magic == UPSTREAM_MAGIC);
    log_debug("upstream %s/%s closed: %s", uc->ep->version, uc->ep->address, why);
    uc->closing = true;
    if (!uc->txn)
        pool_unlink(uc);
    uc->txn = NULL;
    conn_free(uc->cn);
    uc->cn = NULL;
    struct worker *w = uc->w;
    if (uc->all_prev)
        uc->all_prev->all_next = uc->all_next;
    else
        w->upstreams = uc->all_next;
    if (uc->all_next)
        uc->all_next->all_prev = uc->all_prev;
    metrics_upstream_conn(w, uc->ep, -1);
    endpoint_unref(uc->ep);
    uc->ep = NULL;
    worker_defer_free(w, &uc->reap, uc_free, uc);
}

struct upstream_conn *upstream_acquire(struct worker *w, struct endpoint *ep,
                                       bool fresh, conn_data_cb readcb,
                                       conn_data_cb writecb,
                                       conn_event_cb eventcb, void *arg)
{
    struct endpoint_wslot *slot = &ep->slots[w->id];
    struct upstream_conn *uc = fresh ? NULL : slot->pool;
    /* An idle conn whose socket turned readable in this loop turn (queued
     * for the turn's read batch) has been closed by the peer or sent stray
     * bytes: evict it rather than lend it to a txn. */
    while (uc && conn_has_pending_read(uc->cn)) {
        upstream_close(uc, UPSTREAM_CLOSE_IDLE);
        uc = slot->pool;
    }
    if (uc) {
        pool_unlink(uc);
        conn_setcb(uc->cn, readcb, writecb, eventcb, arg);
        return uc;
    }
    int fd = socket(ep->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct conn *cn = conn_new(w, fd, true);
    if (!cn) {
        close(fd);
        return NULL;
    }
    uc = xcalloc(1, sizeof(*uc));
    uc->magic = UPSTREAM_MAGIC;
    uc->w = w;
    endpoint_ref(ep);
    uc->ep = ep;
    uc->cn = cn;
    metrics_upstream_conn(w, ep, +1);
    uc->all_next = w->upstreams;
    if (w->upstreams)
        w->upstreams->all_prev = uc;
    w->upstreams = uc;
    conn_setcb(cn, readcb, writecb, eventcb, arg);
    conn_set_write_low(cn, FLOW_HIGH_WATER / 2);
    conn_set_timeouts(cn, 0, worker_snapshot(w)->cfg->upstream_connect_timeout_ms);
    /* The txn pointer must be set before events can fire: events of a
     * connect are delivered from the loop, never from inside this call. */
    uc->txn = arg;
    if (conn_connect(cn, (struct sockaddr *)&ep->sa, (socklen_t)ep->sa_len) < 0) {
        int e = errno;
        upstream_close(uc, UPSTREAM_CLOSE_ERROR); /* lent (txn set): not pooled */
        errno = e;
        return NULL;
    }
    return uc;
}

void upstream_release(struct upstream_conn *uc, bool reusable)
{
    struct worker *w = uc->w;
    const struct config *cfg = worker_snapshot(w)->cfg;
    struct endpoint_wslot *slot = &uc->ep->slots[w->id];
    if (!reusable) {
        upstream_close(uc, UPSTREAM_CLOSE_DONE);
        return;
    }
    if (atomic_load_explicit(&uc->ep->retired, memory_order_relaxed) ||
        w->stopping) {
        upstream_close(uc, UPSTREAM_CLOSE_RETIRED);
        return;
    }
    if (slot->n_idle >= cfg->max_idle_upstream) {
        upstream_close(uc, UPSTREAM_CLOSE_FULL);
        return;
    }
    uc->txn = NULL;
    uc->reused = true;
    pool_push(uc);
    conn_setcb(uc->cn, on_idle_read, NULL, on_idle_event, uc);
    conn_set_timeouts(uc->cn, cfg->upstream_idle_timeout_ms, 0);
    conn_read_start(uc->cn);
}

/* An idle conn got bytes (the peer broke protocol) or closed: evict it. */
static void on_idle_read(struct conn *cn, void *arg)
{
    (void)cn;
    upstream_close(arg, UPSTREAM_CLOSE_IDLE);
}

static void on_idle_event(struct conn *cn, short what, void *arg)
{
    (void)cn;
    (void)what;
    upstream_close(arg, UPSTREAM_CLOSE_IDLE);
}

void upstream_flush_pool(struct worker *w, struct endpoint *ep)
{
    struct endpoint_wslot *slot = &ep->slots[w->id];
    while (slot->pool)
        upstream_close(slot->pool, UPSTREAM_CLOSE_RETIRED);
}

void upstream_close_all(struct worker *w)
{
    /* Conns lent to txns close with their clients; these are the idle ones. */
    struct upstream_conn *uc = w->upstreams;
    while (uc) {
        struct upstream_conn *next = uc->all_next;
        if (!uc->txn)
            upstream_close(uc, UPSTREAM_CLOSE_STOP);
        uc = next;
    }
}
