/*
 * client.c — see client.h.
 */
#include "client.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "conn_tls.h"
#include "log.h"
#include "proxy.h"
#include "snapshot.h"
#include "tls_ctx.h"

#define LINGER_MS 2000

const char CLIENT_CLOSE_PEER[] = "client closed";
const char CLIENT_CLOSE_STOP[] = "worker stopping";

static atomic_uint open_clients;
static atomic_uint open_by_listener[CONFIG_MAX_LISTENERS];

static void on_read(struct conn *cn, void *arg);
static void on_write(struct conn *cn, void *arg);
static void on_event(struct conn *cn, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void on_parked(evutil_socket_t fd, short what, void *arg);

static void client_free(void *obj)
{
    struct client *c = obj;
    CHECK(c->magic == CLIENT_MAGIC);
    c->magic = 0;
    free(c);
}

void client_label(const struct client *c, char *buf, size_t len)
{
    char addr[64];
    util_format_addr(&c->addr.sa, addr, sizeof(addr));
    snprintf(buf, len, "c#%llu %s", (unsigned long long)c->id, addr);
}

static const struct config *cur_config(struct client *c)
{
    return loop_snapshot(c->loop)->cfg;
}

static void ms_to_tv(uint32_t ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

static void arm_timer(struct client *c, uint32_t ms)
{
    evtimer_add(c->timer, loop_timeout(c->loop, ms));
}

/* Idle: wait for the next request, at most until the keep-alive timeout;
 * after CLIENT_PARK_MS without one, park. */
static void go_idle(struct client *c)
{
    c->state = CL_S_IDLE;
    c->idle_since_ms = util_now_ms();
    uint32_t idle = cur_config(c)->client_idle_timeout_ms;
    arm_timer(c, idle < CLIENT_PARK_MS ? idle : CLIENT_PARK_MS);
}

/* Drop the conn and timer; keep one event on the socket that wakes
 * us when the client sends again or the keep-alive timeout ends. */
static void park(struct client *c)
{
    CHECK(c->state == CL_S_IDLE && c->txn == NULL);
    CHECK(conn_out_pending(c->cn) == 0);
    uint32_t idle = cur_config(c)->client_idle_timeout_ms;
    uint64_t spent = util_now_ms() - c->idle_since_ms;
    evtimer_del(c->timer);
    event_free(c->timer);
    c->timer = NULL;
    conn_free(c->cn); /* not owning the fd: it stays ours */
    c->cn = NULL;
    if (c->tls)
        conn_tls_park(c->tls);
    c->state = CL_S_PARKED;
    event_assign(&c->park_ev, c->loop->base, c->fd, EV_READ, on_parked, c);
    struct timeval tv;
    ms_to_tv(spent >= idle ? 1 : (uint32_t)(idle - spent), &tv);
    event_add(&c->park_ev, &tv);
}

/* The parked client sent something: give it a conn again. */
static int unpark(struct client *c)
{
    event_del(&c->park_ev);
    c->cn = conn_new(c->loop, c->fd, false);
    c->timer = evtimer_new(c->loop->base, on_timer, c);
    if (!c->cn || !c->timer || (c->tls && conn_tls_wake(c->tls) < 0))
        return -1;
    conn_setcb(c->cn, on_read, on_write, on_event, c);
    conn_set_write_low(c->cn, FLOW_HIGH_WATER / 2);
    conn_set_tls(c->cn, c->tls);
    conn_read_start(c->cn);
    go_idle(c);
    return 0;
}

static void on_parked(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    CHECK(c->magic == CLIENT_MAGIC);
    if (what & EV_TIMEOUT) {
        client_close(c, "idle timeout");
        return;
    }
    if (unpark(c) < 0) {
        client_close(c, "out of resources");
        return;
    }
    /* Read what woke us in this loop turn rather than the next one. */
    conn_read_soon(c->cn);
}

void client_table_init(struct client_table *tab, struct loop *l,
                       void (*on_empty)(void *arg), void *arg)
{
    memset(tab, 0, sizeof(*tab));
    tab->loop = l;
    tab->on_empty = on_empty;
    tab->arg = arg;
}

void client_table_drain(struct client_table *tab)
{
    struct client *c = tab->head;
    while (c) {
        struct client *next = c->next;
        client_drain(c);
        c = next;
    }
}

void client_table_close_all(struct client_table *tab, const char *why)
{
    while (tab->head)
        client_close(tab->head, why);
}

unsigned client_open_count_on(unsigned listener)
{
    return listener < CONFIG_MAX_LISTENERS
               ? atomic_load_explicit(&open_by_listener[listener], memory_order_relaxed)
               : 0;
}

unsigned client_open_count(void)
{
    return atomic_load_explicit(&open_clients, memory_order_relaxed);
}

static void on_tls_timeout(void *arg)
{
    struct client *c = arg;
    CHECK(c->magic == CLIENT_MAGIC);
    client_close(c, "TLS handshake timeout");
}

struct client *client_new_on(struct client_table *tab, int fd, const struct sockaddr *sa,
                             socklen_t len, unsigned listener)
{
    const struct snapshot *s = loop_snapshot(tab->loop);
    const struct tls_set *ts = s->tls;
    SSL_CTX *ctx = ts && listener < ts->n_ls ? ts->ls[listener].def : NULL;
    bool want_tls = listener < s->cfg->n_listeners && s->cfg->listeners[listener].tls.enabled;
    if (want_tls && !ctx) {
        log_error("listener %u: TLS configured but no certificate loaded; closing", listener);
        close(fd);
        return NULL;
    }
    struct client *c = client_new(tab, fd, sa, len);
    c->listener = listener;
    if (listener < CONFIG_MAX_LISTENERS)
        atomic_fetch_add_explicit(&open_by_listener[listener], 1, memory_order_relaxed);
    if (ctx) {
        /* A reload may drop s->tls mid-handshake; the SNI lookup needs it. */
        tls_set_ref(s->tls);
        c->tls_set = s->tls;
        c->tls = conn_tls_new_server(tab->loop, ctx, listener, s->cfg->tls_handshake_timeout_ms,
                                     on_tls_timeout, c);
        if (!c->tls)
            client_close(c, "out of resources");
    }
    return c;
}

struct client *client_new(struct client_table *tab, int fd,
                          const struct sockaddr *sa, socklen_t len)
{
    struct loop *l = tab->loop;
    struct client *c = xcalloc(1, sizeof(*c));
    c->magic = CLIENT_MAGIC;
    c->loop = l;
    c->tab = tab;
    c->fd = fd;
    c->id = ++tab->next_id * 64 + (uint64_t)l->id;
    c->listener = UINT_MAX; /* client_new_on sets it */
    memcpy(&c->addr, sa, len < sizeof(c->addr) ? len : sizeof(c->addr));
    c->next = tab->head;
    if (tab->head)
        tab->head->prev = c;
    tab->head = c;
    tab->n++;
    atomic_fetch_add_explicit(&open_clients, 1, memory_order_relaxed);
    /* Start parked: a connection that never sends costs no buffers. */
    c->state = CL_S_PARKED;
    c->idle_since_ms = util_now_ms();
    event_assign(&c->park_ev, l->base, fd, EV_READ, on_parked, c);
    struct timeval tv;
    ms_to_tv(cur_config(c)->client_idle_timeout_ms, &tv);
    event_add(&c->park_ev, &tv);
    return c;
}

struct client *client_new_stream(struct client *parent, const struct client_ops *ops,
                                 void *arg, struct conn *cn)
{
    struct client *c = xcalloc(1, sizeof(*c));
    c->magic = CLIENT_MAGIC;
    c->loop = parent->loop;
    c->fd = -1;
    c->id = parent->id;
    c->addr = parent->addr;
    c->listener = parent->listener;
    /* Borrowed: the log's tls/sni/alpn and X-Forwarded-Proto of a stream are
     * its connection's; the parent closes its streams before freeing it. */
    c->tls = parent->tls;
    c->ops = ops;
    c->ops_arg = arg;
    c->stream = true;
    c->cn = cn;
    c->state = CL_S_TXN;
    conn_setcb(cn, on_read, on_write, on_event, c);
    conn_set_write_low(cn, FLOW_HIGH_WATER / 2);
    conn_read_start(cn);
    return c;
}

/* client_close of a stream's client: end its txn, tell the stream. */
static void close_stream_client(struct client *c, const char *why)
{
    c->state = CL_S_CLOSED;
    if (c->txn)
        proxy_abort(c->txn, why);
    conn_free(c->cn);
    c->cn = NULL;
    const struct client_ops *ops = c->ops;
    c->ops = NULL;
    loop_defer_free(c->loop, &c->reap, client_free, c);
    ops->on_close(c->ops_arg, why);
}

void client_close(struct client *c, const char *why)
{
    if (c->state == CL_S_CLOSED)
        return;
    if (c->stream) {
        close_stream_client(c, why);
        return;
    }
    if (why) {
        char label[96];
        client_label(c, label, sizeof(label));
        log_debug("%s closed: %s", label, why);
    }
    if (c->txn)
        proxy_abort(c->txn, why);
    if (c->ops) {
        const struct client_ops *ops = c->ops;
        c->ops = NULL;
        ops->on_close(c->ops_arg, why);
    }
    if (c->state == CL_S_PARKED)
        event_del(&c->park_ev);
    c->state = CL_S_CLOSED;
    if (c->timer) {
        evtimer_del(c->timer);
        event_free(c->timer);
        c->timer = NULL;
    }
    if (c->cn) {
        conn_free(c->cn);
        c->cn = NULL;
    }
    conn_tls_free(c->tls);
    c->tls = NULL;
    tls_set_unref(c->tls_set);
    c->tls_set = NULL;
    close(c->fd);
    c->fd = -1;
    struct client_table *tab = c->tab;
    if (c->prev)
        c->prev->next = c->next;
    else
        tab->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    tab->n--;
    atomic_fetch_sub_explicit(&open_clients, 1, memory_order_relaxed);
    if (c->listener < CONFIG_MAX_LISTENERS)
        atomic_fetch_sub_explicit(&open_by_listener[c->listener], 1, memory_order_relaxed);
    loop_defer_free(c->loop, &c->reap, client_free, c);
    if (tab->n == 0 && tab->loop->stopping && tab->on_empty)
        tab->on_empty(tab->arg);
}

/* Output flushed: stop sending, discard what the peer still sends, close on
 * its EOF or after LINGER_MS (RFC 9112 §9.6: avoid a RST eating the answer). */
static void start_linger(struct client *c)
{
    if (c->tls && !c->stream && conn_tls_close_notify(c->tls)) {
        /* TLS's end of data first (RFC 8446 §6.1); on_write comes back */
        conn_set_write_low(c->cn, 0);
        conn_send(c->cn);
        return;
    }
    shutdown(c->fd, SHUT_WR);
    conn_read_start(c->cn);
    evtimer_del(c->timer);
    arm_timer(c, LINGER_MS);
}

void client_close_after_flush(struct client *c)
{
    if (c->state == CL_S_CLOSED || c->state == CL_S_CLOSING)
        return;
    c->state = CL_S_CLOSING;
    c->close_after = true;
    evbuffer_drain(c->cn->in, evbuffer_get_length(c->cn->in));
    if (conn_out_pending(c->cn) == 0)
        start_linger(c);
    else {
        /* on_write fires when the output is empty. */
        conn_set_write_low(c->cn, 0);
        conn_send(c->cn);
        evtimer_del(c->timer);
        arm_timer(c, cur_config(c)->client_idle_timeout_ms);
    }
}

void client_fail(struct client *c, int status)
{
    if (c->state == CL_S_CLOSED || c->state == CL_S_CLOSING)
        return;
    http1_write_error(c->cn->out, status, true);
    client_close_after_flush(c);
}

/* 1: in starts with the HTTP/2 connection preface; -1: in is a strict
 * prefix of it (wait for more); 0: not HTTP/2. */
static int sniff_h2_preface(struct evbuffer *in)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    char buf[sizeof(preface) - 1];
    ev_ssize_t n = evbuffer_copyout(in, buf, sizeof(buf));
    if (n <= 0)
        return -1;
    if (memcmp(buf, preface, (size_t)n) != 0)
        return 0;
    return (size_t)n == sizeof(buf) ? 1 : -1;
}

/* Read and vet a request head; hand a complete one to a new txn. */
static void process(struct client *c)
{
    struct evbuffer *in = c->cn->in;
    bool started = false; /* the head's first bytes came in this call */
    if (c->state == CL_S_IDLE && c->requests == 0 && c->tab && c->tab->h2_start) {
        /* HTTP/2 with prior knowledge (RFC 9113 §3.3): the preface. */
        int h2 = sniff_h2_preface(in);
        if (h2 < 0)
            return; /* a prefix of the preface: wait for the rest */
        if (h2 > 0) {
            c->tab->h2_start(c);
            return;
        }
    }
    if (c->state == CL_S_IDLE) {
        /* RFC 9112 §2.2: ignore empty lines before a request-line. */
        for (;;) {
            unsigned char two[2];
            ssize_t n = evbuffer_copyout(in, two, 2);
            if (n >= 1 && two[0] == '\n') {
                evbuffer_drain(in, 1);
                continue;
            }
            if (n == 2 && two[0] == '\r' && two[1] == '\n') {
                evbuffer_drain(in, 2);
                continue;
            }
            break;
        }
        if (evbuffer_get_length(in) == 0)
            return;
        c->state = CL_S_HEAD;
        memset(&c->scan, 0, sizeof(c->scan));
        started = true;
    }
    const struct config *cfg = cur_config(c);
    size_t len = evbuffer_get_length(in);
    size_t lim = cfg->max_header_bytes;
    size_t n = len < lim ? len : lim;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    size_t head_len = 0;
    const char *err = NULL;
    switch (http1_scan_head(&c->scan, p, n, &head_len, &err)) {
    case H1_SCAN_MORE:
        if (len >= lim) {
            char label[96];
            client_label(c, label, sizeof(label));
            log_warn("%s request head over %zu bytes: 431", label, lim);
            proxy_log_refused(c, 431, TXN_E_HEAD_TOO_LARGE, NULL);
            client_fail(c, 431);
            return;
        }
        /* The header timeout runs from the head's first bytes; a head
         * that came whole in one read never needs it (one timer re-arm
         * per request instead of three). */
        if (started)
            arm_timer(c, cfg->client_header_timeout_ms);
        return;
    case H1_SCAN_BAD: {
        char label[96];
        client_label(c, label, sizeof(label));
        log_warn("%s bad request: %s", label, err);
        proxy_log_refused(c, 400, TXN_E_BAD_REQUEST, err);
        client_fail(c, 400);
        return;
    }
    case H1_SCAN_DONE:
        break;
    }
    /* The idle (or header) timer stays armed: on_timer ignores it during
     * the txn, and go_idle re-arms it afterwards (a re-arm of a pending
     * timer costs what a delete costs). */
    c->state = CL_S_TXN;
    proxy_start(c, head_len);
}

void client_txn_done(struct client *c, bool close)
{
    c->txn = NULL;
    c->requests++;
    if (c->stream) {
        c->ops->on_txn_done(c->ops_arg, close);
        return;
    }
    if (c->state != CL_S_TXN)
        return;
    if (close || c->close_after || c->loop->stopping) {
        client_close_after_flush(c);
        return;
    }
    conn_send(c->cn); /* proxy.c sent the answer already; this is a safety net */
    conn_read_start(c->cn);
    go_idle(c);
    if (evbuffer_get_length(c->cn->in) > 0)
        process(c); /* a pipelined request is waiting */
}

void client_drain(struct client *c)
{
    c->close_after = true;
    if (c->state == CL_S_IDLE || c->state == CL_S_PARKED)
        client_close(c, CLIENT_CLOSE_STOP);
    else if (c->state == CL_S_H2)
        c->ops->on_drain(c->ops_arg);
}

static void on_read(struct conn *cn, void *arg)
{
    struct client *c = arg;
    CHECK(c->magic == CLIENT_MAGIC);
    (void)cn;
    if (c->tls_set && c->tls->done) {
        tls_set_unref(c->tls_set);
        c->tls_set = NULL;
    }
    switch (c->state) {
    case CL_S_IDLE:
    case CL_S_HEAD:
        process(c);
        break;
    case CL_S_PARKED:
        break;
    case CL_S_TXN:
        if (c->txn)
            proxy_on_client_read(c->txn);
        break;
    case CL_S_H2:
        c->ops->on_read(c->ops_arg);
        break;
    case CL_S_CLOSING: {
        struct evbuffer *in = c->cn->in;
        evbuffer_drain(in, evbuffer_get_length(in));
        break;
    }
    case CL_S_CLOSED:
        break;
    }
}

static void on_write(struct conn *cn, void *arg)
{
    struct client *c = arg;
    CHECK(c->magic == CLIENT_MAGIC);
    if (c->state == CL_S_TXN && c->txn)
        proxy_on_client_drained(c->txn);
    else if (c->state == CL_S_H2)
        c->ops->on_drained(c->ops_arg);
    else if (c->state == CL_S_CLOSING && conn_out_pending(cn) == 0)
        start_linger(c);
}

static void on_event(struct conn *cn, short what, void *arg)
{
    struct client *c = arg;
    CHECK(c->magic == CLIENT_MAGIC);
    (void)cn;
    if (c->state == CL_S_TXN && c->txn && !(what & CONN_ERROR) && (what & CONN_EOF)) {
        /* Half-close by the client: proxy.c decides whether the txn can
         * still finish. */
        proxy_on_client_eof(c->txn);
        return;
    }
    client_close(c, CLIENT_CLOSE_PEER);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    CHECK(c->magic == CLIENT_MAGIC);
    if (c->state == CL_S_TXN)
        return; /* left armed from before the txn: the txn's own timeouts rule */
    if (c->state == CL_S_H2) {
        c->ops->on_timer(c->ops_arg);
        return;
    }
    if (c->state == CL_S_HEAD) {
        char label[96];
        client_label(c, label, sizeof(label));
        log_warn("%s request head not complete in time: 408", label);
        proxy_log_refused(c, 408, TXN_E_HEAD_TIMEOUT, NULL);
        http1_write_error(c->cn->out, 408, true);
        client_close_after_flush(c);
        return;
    }
    if (c->state == CL_S_IDLE) {
        uint32_t idle = cur_config(c)->client_idle_timeout_ms;
        if (util_now_ms() - c->idle_since_ms + 5 >= idle)
            client_close(c, "idle timeout");
        else if (evbuffer_get_length(c->cn->in) == 0 && conn_out_pending(c->cn) == 0)
            park(c);
        else
            arm_timer(c, CLIENT_PARK_MS);
        return;
    }
    client_close(c, "linger done");
}
