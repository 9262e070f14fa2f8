/*
 * worker.h — one worker thread: its own event_base, its own SO_REUSEPORT
 * listener, and every client, txn and upstream conn it accepts or opens,
 * for their whole lives (thread confinement: no locks on the data path).
 *
 * A worker sees configuration only through the published snapshot: before
 * routing each request the data path calls loop_snapshot(), which costs one
 * atomic load unless a new snapshot was published; then the worker re-arms
 * its router and balancer state and closes idle upstream conns to retired
 * endpoints.
 *
 * Cross-thread signals (stop) arrive through an eventfd, so the event_base
 * needs no locking.
 *
 * A worker is the top of the data path: it owns its loop (loop.h) and the
 * per-worker tables of the modules below it (clients, upstream pools and
 * conns, recycled txns, routing state), and lends them what they read of it through the
 * loop (drain flag, snapshot, routing state), so none of them calls up.
 */
#ifndef WEIR_WORKER_H
#define WEIR_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accept_guard.h"
#include "balancer.h"
#include "client.h"
#include "loop.h"
#include "proxy.h"
#include "mirror.h"
#include "router.h"
#include "upstream.h"

#define WORKER_MAGIC 0x574b5231u /* "WKR1" */

struct event;
struct evconnlistener;
struct snapshot;

#define WORKER_MAX_LISTENERS 16

/* One of the worker's listening sockets: config listener `index`. */
struct worker_listener {
    struct worker *w;           /* borrowed: its worker */
    unsigned index;             /* cfg->listeners[index] */
    struct evconnlistener *lev; /* owned; NULL once stopping */
    struct accept_guard guard;  /* its accept backoff */
};

struct worker {
    uint32_t magic;
    int id; /* 0..workers-1: index of endpoint slots */
    pthread_t thread;
    struct loop loop;                /* event base, reap, timers, I/O batches */
    struct client_table clients;     /* client.c's list of this worker's clients */
    struct upstream_table upstreams; /* upstream.c's pools and conns */
    struct proxy_table txns;         /* proxy.c's recycled txns */
    struct mirror_table mirrors;     /* mirror.c's live mirrors */
    struct worker_listener ls[WORKER_MAX_LISTENERS];
    unsigned n_ls;
    struct snapshot *snap; /* refcounted: the cached snapshot */
    struct router_state router;
    struct balancer_state balancer;
    int wake_fd;                /* owned eventfd */
    struct event *wake_ev;      /* owned */
    struct event *drain_ev;     /* owned: drain deadline timer */
    struct event *tick_ev;      /* owned: 1 s tick, picks up snapshots when idle */
    uint64_t tick_reads;        /* loop.n_reads at the last tick */
    uint64_t trim_reaped;       /* loop.n_reaped at the last memory trim */
    atomic_bool stop_requested; /* set by main thread */
    atomic_bool finished;       /* worker's loop has ended */
    bool started;               /* the thread runs (join it) */
};

/*
 * Create worker `id` with a listener on fd (already bound and listening;
 * the worker owns it). Returns NULL on failure (logged). Main thread.
 */
/* A worker accepting on fds[0..n-1] (owned: closed on failure), the
 * sockets of config listeners 0..n-1. */
struct worker *worker_new(int id, const int *fds, unsigned n);

/* Start the thread. Returns 0 or -1. */
int worker_start(struct worker *w) WUR;

/* Ask the worker to stop: stop accepting, finish in-flight requests within
 * drain_ms, then end its loop. Main thread, any time. */
void worker_request_stop(struct worker *w);

/* Join and free. Main thread, after worker_request_stop. */
void worker_free(struct worker *w);

/* Create a listening socket for addr (SO_REUSEADDR + SO_REUSEPORT,
 * non-blocking) with this listen() backlog. Returns fd or -1 (errno set).
 * Main thread. */
int worker_listen_socket(const struct sockaddr *sa, socklen_t len, int backlog);

#endif
