/*
 * worker.c — see worker.h.
 */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "h2_session.h"
#include "log.h"
#include "memtrim.h"
#include "proxy.h"
#include "snapshot.h"

static struct worker *of_loop(struct loop *l)
{
    struct worker *w = (struct worker *)((char *)l - offsetof(struct worker, loop));
    CHECK(w->magic == WORKER_MAGIC);
    return w;
}

static void rearm(struct worker *w)
{
    router_state_init(&w->router, w->snap);
    balancer_state_dispose(&w->balancer);
    balancer_state_init(&w->balancer, w->snap);
}

/* The worker's current snapshot (refreshed if a new one was published). */
static struct snapshot *worker_snapshot(struct worker *w)
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
                    upstream_flush_pool(&w->upstreams, ep);
            }
        snapshot_unref(old);
    }
    return s;
}

static struct snapshot *on_snapshot(struct loop *l)
{
    return worker_snapshot(of_loop(l));
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd,
                      struct sockaddr *sa, int len, void *arg)
{
    struct worker_listener *wl = arg;
    struct worker *w = wl->w;
    (void)lis;
    CHECK(w->magic == WORKER_MAGIC);
    accept_guard_accepted(&wl->guard);
    const struct config *cfg = worker_snapshot(w)->cfg;
    if (client_open_count() >= cfg->max_connections) {
        close(fd);
        accept_guard_refused(&wl->guard, "limits.max_connections reached");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    client_new_on(&w->clients, fd, sa, (socklen_t)len, wl->index);
}

static void on_accept_error(struct evconnlistener *lis, void *arg)
{
    struct worker_listener *wl = arg;
    (void)lis;
    CHECK(wl->w->magic == WORKER_MAGIC);
    /* EMFILE and friends: keep serving what is open; pause accepting and
     * retry with backoff (accept_guard.h), no busy loop. */
    accept_guard_failed(&wl->guard, EVUTIL_SOCKET_ERROR());
}

static void close_listeners(struct worker *w)
{
    for (unsigned i = 0; i < w->n_ls; i++)
        if (w->ls[i].lev) {
            accept_guard_dispose(&w->ls[i].guard);
            evconnlistener_free(w->ls[i].lev);
            w->ls[i].lev = NULL;
        }
}

static void finish_loop(struct worker *w)
{
    event_del(w->tick_ev);
    mirror_table_close_all(&w->mirrors);
    upstream_close_all(&w->upstreams);
    event_base_loopexit(w->loop.base, NULL);
}

/* The last client went while draining. */
static void on_clients_gone(void *arg)
{
    finish_loop(arg);
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->clients.n)
        log_warn("worker %d: drain timeout, closing %zu connections", w->id,
                 w->clients.n);
    client_table_close_all(&w->clients, CLIENT_CLOSE_STOP);
    finish_loop(w);
}

static void begin_stop(struct worker *w)
{
    if (w->loop.stopping)
        return;
    w->loop.stopping = true;
    close_listeners(w);
    client_table_drain(&w->clients);
    uint32_t ms = worker_snapshot(w)->cfg->drain_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->drain_ev, &tv);
    upstream_close_all(&w->upstreams);
    if (w->clients.n == 0)
        finish_loop(w);
}

/* A worker with no requests still follows new snapshots, so idle conns to
 * endpoints that left the config close within a second. A worker that read
 * nothing for a whole tick but freed something since its last trim (the
 * txns of a burst, then the conns of the clients it parked a second later)
 * gives that memory back to the system (its cache of free txns, then
 * memtrim.h's allocator caches and dirty pages): served-then-idle
 * connections cost what never-used ones cost. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    worker_snapshot(w);
    bool quiet = w->loop.n_reads == w->tick_reads;
    w->tick_reads = w->loop.n_reads;
    if (quiet && w->loop.n_reaped != w->trim_reaped) {
        w->trim_reaped = w->loop.n_reaped;
        proxy_table_dispose(&w->txns); /* empties the cache of free txns (~10 KiB each); it stays usable */
        (void)memtrim_thread();
    }
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

struct worker *worker_new(int id, const int *fds, unsigned n)
{
    CHECK(n >= 1 && n <= WORKER_MAX_LISTENERS);
    struct worker *w = xcalloc(1, sizeof(*w));
    w->magic = WORKER_MAGIC;
    w->id = id;
    if (loop_init(&w->loop, id) < 0) {
        for (unsigned i = 0; i < n; i++)
            close(fds[i]);
        free(w);
        return NULL;
    }
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        log_error("worker %d: cannot create event loop: %s", id, strerror(errno));
        loop_dispose(&w->loop);
        for (unsigned i = 0; i < n; i++)
            close(fds[i]);
        free(w);
        return NULL;
    }
    struct event_base *base = w->loop.base;
    w->loop.snapshot_fn = on_snapshot;
    w->loop.router = &w->router;
    w->loop.balancer = &w->balancer;
    w->loop.upstreams = &w->upstreams;
    w->loop.txns = &w->txns;
    w->loop.mirrors = &w->mirrors;
    client_table_init(&w->clients, &w->loop, on_clients_gone, w);
    w->clients.h2_start = h2_session_start;
    upstream_table_init(&w->upstreams, &w->loop);
    proxy_table_init(&w->txns);
    mirror_table_init(&w->mirrors, &w->loop);
    w->wake_ev = event_new(base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
    event_add(w->wake_ev, NULL);
    w->drain_ev = evtimer_new(base, on_drain_deadline, w);
    w->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, w);
    struct timeval tick = {1, 0};
    event_add(w->tick_ev, &tick);
    /* Backlog 0: the socket already listens with limits.listen_backlog
     * (libevent's -1 would call listen() again with 128: issue 21.6). */
    w->n_ls = n;
    for (unsigned i = 0; i < n; i++) {
        struct worker_listener *wl = &w->ls[i];
        wl->w = w;
        wl->index = i;
        wl->lev = evconnlistener_new(base, on_accept, wl, LEV_OPT_CLOSE_ON_FREE, 0, fds[i]);
        CHECK(wl->lev);
        evconnlistener_set_error_cb(wl->lev, on_accept_error);
        char what[48];
        snprintf(what, sizeof(what), i ? "worker %d listener %u" : "worker %d", id, i);
        CHECK(accept_guard_init(&wl->guard, base, wl->lev, what) == 0);
    }
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
    if (loop_batch_init(&w->loop, 256) == 0)
        log_debug("worker %d: socket I/O batched per loop turn (io_uring)", w->id);
    else
        log_info("worker %d: io_uring unavailable (%s): one syscall per read/write",
                 w->id, strerror(errno));
    /* One loop turn, then the reads and sends it queued as one batch each
     * (conn.c); without an iobatch the turn did its I/O itself. */
    struct event_base *base = w->loop.base;
    while (!event_base_got_exit(base) && !event_base_got_break(base)) {
        int r = event_base_loop(base, EVLOOP_ONCE);
        conn_run_batch(&w->loop);
        if (r != 0)
            break; /* error, or no events left at all */
    }
    conn_run_batch(&w->loop);
    loop_batch_dispose(&w->loop);
    loop_reap(&w->loop);
    proxy_table_dispose(&w->txns);
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
    client_table_close_all(&w->clients, CLIENT_CLOSE_STOP);
    mirror_table_close_all(&w->mirrors);
    upstream_close_all(&w->upstreams);
    loop_reap(&w->loop);
    proxy_table_dispose(&w->txns); /* txns reaped here went back to the cache */
    mirror_table_dispose(&w->mirrors);
    upstream_table_dispose(&w->upstreams);
    close_listeners(w);
    event_free(w->wake_ev);
    event_free(w->drain_ev);
    event_free(w->tick_ev);
    balancer_state_dispose(&w->balancer);
    snapshot_unref(w->snap);
    loop_dispose(&w->loop);
    close(w->wake_fd);
    w->magic = 0;
    free(w);
}
