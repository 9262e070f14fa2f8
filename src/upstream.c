/*
 * upstream.c — see upstream.h.
 *
 * The pool of an endpoint in a worker is a LIFO list hung off
 * tab->pools[ep->index] (the warmest conn is reused first; the coldest
 * ones time out); the array grows on the first conn pooled for an index
 * beyond it. A pooled conn holds an endpoint reference and keeps reading,
 * so a peer's close or stray bytes evict it at once. The reference also
 * keeps the endpoint's index from being reused while its pool is not
 * empty, so an index never names two endpoints' conns.
 */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "conn_tls.h"
#include "log.h"
#include "metrics.h"
#include "snapshot.h"
#include "tls_ctx.h"

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

void upstream_table_init(struct upstream_table *tab, struct loop *l)
{
    memset(tab, 0, sizeof(*tab));
    tab->loop = l;
}

void upstream_table_dispose(struct upstream_table *tab)
{
    CHECK(!tab->all);
    for (size_t i = 0; i < tab->n_pools; i++) {
        CHECK(!tab->pools[i].head && tab->pools[i].n_idle == 0);
        SSL_SESSION_free(tab->pools[i].tls_session);
        SSL_CTX_free(tab->pools[i].tls_session_ctx);
    }
    free(tab->pools);
    tab->pools = NULL;
    tab->n_pools = 0;
}

/* ep's pool, or NULL when none was ever made (it is empty). */
static struct upstream_pool *pool_find(struct upstream_table *tab,
                                       const struct endpoint *ep)
{
    return ep->index < tab->n_pools ? &tab->pools[ep->index] : NULL;
}

/* ep's pool, made (the array grown) if need be. */
static struct upstream_pool *pool_get(struct upstream_table *tab,
                                      const struct endpoint *ep)
{
    if (ep->index >= tab->n_pools) {
        size_t n = tab->n_pools ? tab->n_pools : 16;
        while (n <= ep->index)
            n *= 2;
        tab->pools = xrealloc(tab->pools, n * sizeof(*tab->pools));
        memset(tab->pools + tab->n_pools, 0,
               (n - tab->n_pools) * sizeof(*tab->pools));
        tab->n_pools = n;
    }
    return &tab->pools[ep->index];
}

static void pool_unlink(struct upstream_conn *uc)
{
    struct upstream_pool *pool = pool_find(uc->tab, uc->ep);
    CHECK(pool && pool->n_idle > 0);
    if (uc->pool_prev)
        uc->pool_prev->pool_next = uc->pool_next;
    else
        pool->head = uc->pool_next;
    if (uc->pool_next)
        uc->pool_next->pool_prev = uc->pool_prev;
    uc->pool_next = uc->pool_prev = NULL;
    pool->n_idle--;
}

static void pool_push(struct upstream_conn *uc)
{
    struct upstream_pool *pool = pool_get(uc->tab, uc->ep);
    uc->pool_prev = NULL;
    uc->pool_next = pool->head;
    if (uc->pool_next)
        uc->pool_next->pool_prev = uc;
    pool->head = uc;
    pool->n_idle++;
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
    conn_tls_free(uc->tls);
    uc->tls = NULL;
    struct upstream_table *tab = uc->tab;
    if (uc->all_prev)
        uc->all_prev->all_next = uc->all_next;
    else
        tab->all = uc->all_next;
    if (uc->all_next)
        uc->all_next->all_prev = uc->all_prev;
    metrics_upstream_conn(tab->loop, uc->ep, -1);
    endpoint_unref(uc->ep);
    uc->ep = NULL;
    loop_defer_free(tab->loop, &uc->reap, uc_free, uc);
}

/* The client SSL_CTX of ep's version when it speaks TLS (and its SNI
 * name), else NULL. */
static SSL_CTX *version_tls(const struct snapshot *s, const struct endpoint *ep,
                            const char **sni)
{
    if (!s->tls)
        return NULL;
    for (size_t v = 0; v < s->cfg->n_versions && v < s->tls->n_up; v++)
        if (s->tls->up[v] && strcmp(s->cfg->versions[v].name, ep->version) == 0) {
            *sni = s->cfg->versions[v].tls.sni;
            return s->tls->up[v];
        }
    return NULL;
}

/* ep's IP address as text (for a certificate check without a name). */
static const char *endpoint_ip(const struct endpoint *ep, char *buf, size_t len)
{
    const void *a = ep->sa.ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)&ep->sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)&ep->sa)->sin_addr;
    return inet_ntop(ep->sa.ss_family, a, buf, (socklen_t)len);
}

struct upstream_conn *upstream_acquire(struct upstream_table *tab,
                                       struct endpoint *ep,
                                       bool fresh, conn_data_cb readcb,
                                       conn_data_cb writecb,
                                       conn_event_cb eventcb, void *arg)
{
    struct loop *l = tab->loop;
    const char *sni = NULL;
    SSL_CTX *tctx = version_tls(loop_snapshot(l), ep, &sni);
    struct upstream_pool *pool = fresh ? NULL : pool_find(tab, ep);
    struct upstream_conn *uc = pool ? pool->head : NULL;
    /* An idle conn whose socket turned readable in this loop turn (queued
     * for the turn's read batch) has been closed by the peer or sent stray
     * bytes: evict it rather than lend it to a txn. So is one made under
     * TLS settings a reload replaced (or TLS turned on or off since). */
    while (uc && (conn_has_pending_read(uc->cn) ||
                  (uc->tls ? conn_tls_ctx(uc->tls) != tctx : tctx != NULL))) {
        upstream_close(uc, UPSTREAM_CLOSE_IDLE);
        uc = pool->head;
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
    struct conn *cn = conn_new(l, fd, true);
    if (!cn) {
        close(fd);
        return NULL;
    }
    uc = xcalloc(1, sizeof(*uc));
    uc->magic = UPSTREAM_MAGIC;
    uc->tab = tab;
    endpoint_ref(ep);
    uc->ep = ep;
    uc->cn = cn;
    metrics_upstream_conn(l, ep, +1);
    uc->all_next = tab->all;
    if (tab->all)
        tab->all->all_prev = uc;
    tab->all = uc;
    conn_setcb(cn, readcb, writecb, eventcb, arg);
    conn_set_write_low(cn, FLOW_HIGH_WATER / 2);
    conn_set_timeouts(cn, 0, loop_snapshot(l)->cfg->upstream_connect_timeout_ms);
    if (tctx) {
        struct upstream_pool *p = pool_find(tab, ep);
        bool resume = p && p->tls_session && p->tls_session_ctx == tctx;
        char ip[INET6_ADDRSTRLEN];
        uc->tls = conn_tls_new_client(tctx, sni, endpoint_ip(ep, ip, sizeof(ip)),
                                      resume ? p->tls_session : NULL);
        if (!uc->tls) {
            uc->txn = arg;
            upstream_close(uc, UPSTREAM_CLOSE_ERROR);
            errno = ENOMEM;
            return NULL;
        }
        conn_set_tls(cn, uc->tls);
    }
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
    struct upstream_table *tab = uc->tab;
    const struct config *cfg = loop_snapshot(tab->loop)->cfg;
    if (!reusable) {
        upstream_close(uc, UPSTREAM_CLOSE_DONE);
        return;
    }
    if (atomic_load_explicit(&uc->ep->retired, memory_order_relaxed) ||
        tab->loop->stopping) {
        upstream_close(uc, UPSTREAM_CLOSE_RETIRED);
        return;
    }
    const struct upstream_pool *pool = pool_find(tab, uc->ep);
    if ((pool ? pool->n_idle : 0) >= cfg->max_idle_upstream) {
        upstream_close(uc, UPSTREAM_CLOSE_FULL);
        return;
    }
    uc->txn = NULL;
    uc->reused = true;
    if (uc->tls) {
        /* the session (ticket) to resume the next conn to this endpoint */
        SSL_SESSION *sess = conn_tls_session(uc->tls);
        if (sess) {
            struct upstream_pool *p = pool_get(tab, uc->ep);
            SSL_SESSION_free(p->tls_session);
            p->tls_session = sess;
            SSL_CTX *ctx = (SSL_CTX *)conn_tls_ctx(uc->tls);
            if (p->tls_session_ctx != ctx) {
                SSL_CTX_up_ref(ctx);
                SSL_CTX_free(p->tls_session_ctx);
                p->tls_session_ctx = ctx;
            }
        }
    }
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

void upstream_flush_pool(struct upstream_table *tab, struct endpoint *ep)
{
    struct upstream_pool *pool = pool_find(tab, ep);
    while (pool && pool->head)
        upstream_close(pool->head, UPSTREAM_CLOSE_RETIRED);
}

void upstream_close_all(struct upstream_table *tab)
{
    /* Conns lent to txns close with their clients; these are the idle ones. */
    struct upstream_conn *uc = tab->all;
    while (uc) {
        struct upstream_conn *next = uc->all_next;
        if (!uc->txn)
            upstream_close(uc, UPSTREAM_CLOSE_STOP);
        uc = next;
    }
}
