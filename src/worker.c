/*
 * worker.c — see worker.h.
 */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "conn.h"
#include "iobatch.h"
#include "log.h"
#include "proxy.h"
#include "upstream.h"

atomic_uint worker_open_clients;

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int len, void *arg)
{
    struct worker *w = arg;
    (void)l;
    CHECK(w->magic == WORKER_MAGIC);
    accept_guard_accepted(&w->guard);
    const struct config *cfg = worker_snapshot(w)->cfg;
    if (atomic_load_explicit(&worker_open_clients, memory_order_relaxed) >=
        cfg->max_connections) {
        close(fd);
        accept_guard_refused(&w->guard, "limits.max_connections reached");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    client_new(w, fd, sa, (socklen_t)len);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct worker *w = arg;
    (void)l;
    CHECK(w->magic == WORKER_MAGIC);
    /* EMFILE and friends: keep serving what is open; pause accepting and
     * retry with backoff (accept_guard.h), no busy loop. */
    accept_guard_failed(&w->guard, EVUTIL_SOCKET_ERROR());
}

static void run_reap(struct worker *w)
{
    while (w->reap) {
        struct reap_item *r = w->reap;
        w->reap = NULL;
        while (r) {
            struct reap_item *next = r->next;
            r->free_fn(r->obj);
            r = next;
        }
    }
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_reap(arg);
}

void worker_defer_free(struct worker *w, struct reap_item *r,
                       void (*free_fn)(void *), void *obj)
{
    r->free_fn = free_fn;
    r->obj = obj;
    r->next = w->reap;
    w->reap = r;
    event_active(w->reap_ev, EV_TIMEOUT, 0);
}

static void rearm(struct worker *w)
{
    router_state_init(&w->router, w->snap);
    balancer_state_dispose(&w->balancer);
    balancer_state_init(&w->balancer, w->snap);
}

struct snapshot *worker_snapshot(struct worker *w)
{
    if (__builtin_expect(snapshot_is_current(w->snap), 1))
        return w->snap;
    struct snapshot *old = w->snap;
    struct snapshot *s = snapshot_acquire();
    if (!s)
        return old; /* shutting down: keep what we have */
    w->snap = s;
    rearm(w);
    if (old) {
        /* Idle conns to endpoints that left the config close now. */
        for (size_t v = 0; v < old->n_versions; v++)
            for (size_t i = 0; i < old->versions[v].n_eps; i++) {
                struct endpoint *ep = old->versions[v].eps[i].ep;
                if (atomic_load(&ep->retired))
                    upstream_flush_pool(w, ep);
            }
        snapshot_unref(old);
    }
    return s;
}

const struct timeval *worker_timeout(struct worker *w, uint32_t ms)
{
    for (unsigned i = 0; i < w->n_timeouts; i++)
        if (w->timeout_ms[i] == ms)
            return w->timeout_tv[i];
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (w->n_timeouts < WORKER_TIMEOUTS_MAX) {
        const struct timeval *c = event_base_init_common_timeout(w->base, &tv);
        if (c) {
            w->timeout_ms[w->n_timeouts] = ms;
            w->timeout_tv[w->n_timeouts++] = c;
            return c;
        }
    }
    w->timeout_scratch = tv;
    return &w->timeout_scratch;
}

static void finish_loop(struct worker *w)
{
    event_del(w->tick_ev);
    upstream_close_all(w);
    event_base_loopexit(w->base, NULL);
}

void worker_client_gone(struct worker *w)
{
    if (w->stopping && w->n_clients == 0)
        finish_loop(w);
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->n_clients)
        log_warn("worker %d: drain timeout, closing %zu connections", w->id,
                 w->n_clients);
    while (w->clients)
        client_close(w->clients, CLIENT_CLOSE_STOP);
    finish_loop(w);
}

static void begin_stop(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    if (w->listener) {
        accept_guard_dispose(&w->guard);
        evconnlistener_free(w->listener);
        w->listener = NULL;
    }
    struct client *c = w->clients;
    while (c) {
        struct client *next = c->next;
        client_drain(c);
        c = next;
    }
    uint32_t ms = worker_snapshot(w)->cfg->drain_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->drain_ev, &tv);
    upstream_close_all(w);
    if (w->n_clients == 0)
        finish_loop(w);
}

/* A worker with no requests still follows new snapshots, so idle conns to
 * endpoints that left the config close within a second. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_snapshot(arg);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    if (atomic_load(&w->stop_requested))
        begin_stop(w);
}

int worker_listen_socket(const struct sockaddr *sa, socklen_t len, int backlog)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

struct worker *worker_new(int id, int listen_fd)
{
    struct worker *w = xcalloc(1, sizeof(*w));
    w->magic = WORKER_MAGIC;
    w->id = id;
    w->readq_tail = &w->readq;
    w->sendq_tail = &w->sendq;
    w->listen_fd = listen_fd;
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!w->base || w->wake_fd < 0) {
        log_error("worker %d: cannot create event loop: %s", id, strerror(errno));
        if (w->base)
            event_base_free(w->base);
        if (w->wake_fd >= 0)
            close(w->wake_fd);
        close(listen_fd);
        free(w);
        return NULL;
    }
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
    event_add(w->wake_ev, NULL);
    w->reap_ev = event_new(w->base, -1, 0, on_reap, w);
    w->drain_ev = evtimer_new(w->base, on_drain_deadline, w);
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    struct timeval tick = {1, 0};
    event_add(w->tick_ev, &tick);
    /* Backlog 0: the socket already listens with limits.listen_backlog
     * (libevent's -1 would call listen() again with 128: issue 21.6). */
    w->listener = evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE,
                                     0, listen_fd);
    evconnlistener_set_error_cb(w->listener, on_accept_error);
    char what[32];
    snprintf(what, sizeof(what), "worker %d", id);
    CHECK(accept_guard_init(&w->guard, w->base, w->listener, what) == 0);
    w->snap = snapshot_acquire();
    CHECK(w->snap);
    rearm(w);
    return w;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "weir-w%d", w->id);
    pthread_setname_np(pthread_self(), name);
    /* On this thread: the ring accepts submissions from its creator only. */
    w->iob = iobatch_new(256);
    if (w->iob)
        log_debug("worker %d: socket I/O batched per loop turn (io_uring)", w->id);
    else
        log_info("worker %d: io_uring unavailable (%s): one syscall per read/write",
                 w->id, strerror(errno));
    /* One loop turn, then the reads and sends it queued as one batch each
     * (conn.c); without an iobatch the turn did its I/O itself. */
    while (!event_base_got_exit(w->base) && !event_base_got_break(w->base)) {
        int r = event_base_loop(w->base, EVLOOP_ONCE);
        conn_run_batch(w);
        if (r != 0)
            break; /* error, or no events left at all */
    }
    conn_run_batch(w);
    iobatch_free(w->iob);
    w->iob = NULL;
    run_reap(w);
    proxy_thread_cleanup();
    atomic_store(&w->finished, true);
    return NULL;
}

int worker_start(struct worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = true;
    return 0;
}

void worker_request_stop(struct worker *w)
{
    atomic_store(&w->stop_requested, true);
    uint64_t one = 1;
    ssize_t n = write(w->wake_fd, &one, sizeof(one));
    (void)n;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    if (w->started)
        pthread_join(w->thread, NULL);
    while (w->clients)
        client_close(w->clients, CLIENT_CLOSE_STOP);
    upstream_close_all(w);
    run_reap(w);
    proxy_thread_cleanup(); /* txns reaped here went to this thread's cache */
    accept_guard_dispose(&w->guard);
    if (w->listener)
        evconnlistener_free(w->listener);
    event_free(w->wake_ev);
    event_free(w->reap_ev);
    event_free(w->drain_ev);
    event_free(w->tick_ev);
    balancer_state_dispose(&w->balancer);
    snapshot_unref(w->snap);
    event_base_free(w->base);
    close(w->wake_fd);
    w->magic = 0;
    free(w);
}
