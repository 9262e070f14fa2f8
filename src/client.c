/*
 * client.c — see client.h.
 */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log.h"
#include "proxy.h"
#include "worker.h"

#define LINGER_MS 2000

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

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
    util_format_addr((const struct sockaddr *)&c->addr, addr, sizeof(addr));
    snprintf(buf, len, "c#%llu %s", (unsigned long long)c->id, addr);
}

static const struct config *cur_config(struct client *c)
{
    return worker_snapshot(c->w)->cfg;
}

static void arm_timer(struct client *c, uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

struct client *client_new(struct worker *w, int fd, const struct sockaddr *sa,
                          socklen_t len)
{
    struct bufferevent *bev =
        bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return NULL;
    }
    struct client *c = xcalloc(1, sizeof(*c));
    c->magic = CLIENT_MAGIC;
    c->w = w;
    c->id = ++w->next_client_id * 64 + (uint64_t)w->id;
    c->bev = bev;
    memcpy(&c->addr, sa, len < sizeof(c->addr) ? len : sizeof(c->addr));
    c->addr_len = len;
    c->state = CL_S_IDLE;
    c->timer = evtimer_new(w->base, on_timer, c);
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(bev, EV_WRITE, FLOW_HIGH_WATER / 2, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->n_clients++;
    atomic_fetch_add_explicit(&worker_open_clients, 1, memory_order_relaxed);
    arm_timer(c, cur_config(c)->client_idle_timeout_ms);
    return c;
}

void client_close(struct client *c, const char *why)
{
    if (c->state == CL_S_CLOSED)
        return;
    if (why) {
        char label[96];
        client_label(c, label, sizeof(label));
        log_debug("%s closed: %s", label, why);
    }
    if (c->txn)
        proxy_abort(c->txn, why);
    c->state = CL_S_CLOSED;
    evtimer_del(c->timer);
    event_free(c->timer);
    c->timer = NULL;
    bufferevent_free(c->bev);
    c->bev = NULL;
    struct worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_clients--;
    atomic_fetch_sub_explicit(&worker_open_clients, 1, memory_order_relaxed);
    worker_defer_free(w, client_free, c);
    worker_client_gone(w);
}

/* Output flushed: stop sending, discard what the peer still sends, close on
 * its EOF or after LINGER_MS (RFC 9112 §9.6: avoid a RST eating the answer). */
static void start_linger(struct client *c)
{
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
    evtimer_del(c->timer);
    arm_timer(c, LINGER_MS);
}

void client_close_after_flush(struct client *c)
{
    if (c->state == CL_S_CLOSED || c->state == CL_S_CLOSING)
        return;
    c->state = CL_S_CLOSING;
    c->close_after = true;
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        start_linger(c);
    else {
        /* on_write fires when the output is empty. */
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        evtimer_del(c->timer);
        arm_timer(c, cur_config(c)->client_idle_timeout_ms);
    }
}

void client_fail(struct client *c, int status)
{
    if (c->state == CL_S_CLOSED || c->state == CL_S_CLOSING)
        return;
    http1_write_error(bufferevent_get_output(c->bev), status, true);
    client_close_after_flush(c);
}

/* Read and vet a request head; hand a complete one to a new txn. */
static void process(struct client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
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
        evtimer_del(c->timer);
        arm_timer(c, cur_config(c)->client_header_timeout_ms);
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
            client_fail(c, 431);
        }
        return;
    case H1_SCAN_BAD: {
        char label[96];
        client_label(c, label, sizeof(label));
        log_warn("%s bad request: %s", label, err);
        client_fail(c, 400);
        return;
    }
    case H1_SCAN_DONE:
        break;
    }
    evtimer_del(c->timer);
    c->state = CL_S_TXN;
    proxy_start(c, head_len);
}

void client_txn_done(struct client *c, bool close)
{
    c->txn = NULL;
    c->requests++;
    if (c->state != CL_S_TXN)
        return;
    if (close || c->close_after || c->w->stopping) {
        client_close_after_flush(c);
        return;
    }
    c->state = CL_S_IDLE;
    bufferevent_enable(c->bev, EV_READ);
    arm_timer(c, cur_config(c)->client_idle_timeout_ms);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        process(c); /* a pipelined request is waiting */
}

void client_drain(struct client *c)
{
    c->close_after = true;
    if (c->state == CL_S_IDLE)
        client_close(c, "worker stopping");
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    CHECK(c->magic == CLIENT_MAGIC);
    (void)bev;
    switch (c->state) {
    case CL_S_IDLE:
    case CL_S_HEAD:
        process(c);
        break;
    case CL_S_TXN:
        proxy_on_client_read(c->txn);
        break;
    case CL_S_CLOSING: {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        break;
    }
    case CL_S_CLOSED:
        break;
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    CHECK(c->magic == CLIENT_MAGIC);
    if (c->state == CL_S_TXN)
        proxy_on_client_drained(c->txn);
    else if (c->state == CL_S_CLOSING &&
             evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        start_linger(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    CHECK(c->magic == CLIENT_MAGIC);
    (void)bev;
    if (c->state == CL_S_TXN && !(what & BEV_EVENT_ERROR) &&
        (what & BEV_EVENT_EOF)) {
        /* Half-close by the client: proxy.c decides whether the txn can
         * still finish. */
        proxy_on_client_eof(c->txn);
        return;
    }
    client_close(c, (what & BEV_EVENT_ERROR) ? "client error" : "client closed");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    CHECK(c->magic == CLIENT_MAGIC);
    if (c->state == CL_S_HEAD) {
        char label[96];
        client_label(c, label, sizeof(label));
        log_warn("%s request head not complete in time: 408", label);
        http1_write_error(bufferevent_get_output(c->bev), 408, true);
        client_close_after_flush(c);
        return;
    }
    client_close(c, c->state == CL_S_IDLE ? "idle timeout" : "linger done");
}
