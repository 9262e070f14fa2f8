/*
 * worker.h — one worker thread: its own event_base, its own SO_REUSEPORT
 * listener, and every client, txn and upstream conn it accepts or opens,
 * for their whole lives (thread confinement: no locks on the data path).
 *
 * A worker sees configuration only through the published snapshot: before
 * routing each request it calls worker_snapshot(), which costs one atomic
 * load unless a new snapshot was published; then it re-arms its router and
 * balancer state and closes idle upstream conns to retired endpoints.
 *
 * Cross-thread signals (stop) arrive through an eventfd, so the event_base
 * needs no locking.
 */
#ifndef WEIR_WORKER_H
#define WEIR_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "accept_guard.h"
#include "balancer.h"
#include "router.h"
#include "snapshot.h"

#define WORKER_MAGIC 0x574b5231u /* "WKR1" */

struct client;
struct conn;
struct iobatch;
struct upstream_conn;

#define WORKER_TIMEOUTS_MAX 16

/* A reap list link, embedded in each object that may be closed during
 * dispatch (client, txn, upstream conn, conn) and freed after it. */
struct reap_item {
    struct reap_item *next;
    void (*free_fn)(void *obj);
    void *obj;
};

struct worker {
    uint32_t magic;
    int id;                         /* 0..workers-1: index of endpoint slots */
    pthread_t thread;
    struct event_base *base;        /* owned */
    struct evconnlistener *listener;/* owned; NULL once stopping */
    int listen_fd;                  /* borrowed by listener */
    struct accept_guard guard;      /* the listener's accept backoff */
    struct snapshot *snap;          /* refcounted: the cached snapshot */
    struct router_state router;
    struct balancer_state balancer;
    int wake_fd;                    /* owned eventfd */
    struct event *wake_ev;          /* owned */
    struct event *reap_ev;          /* owned */
    struct event *drain_ev;         /* owned: drain deadline timer */
    struct event *tick_ev;          /* owned: 1 s tick, picks up snapshots when idle */
    struct reap_item *reap;         /* objects to free after dispatch */
    struct client *clients;         /* list of live clients (borrowed links) */
    size_t n_clients;
    struct upstream_conn *upstreams;/* list of all upstream conns */
    atomic_bool stop_requested;     /* set by main thread */
    bool stopping;                  /* worker has begun its drain */
    atomic_bool finished;           /* worker's loop has ended */
    bool started;                   /* the thread runs (join it) */
    uint64_t next_client_id;
    struct iobatch *iob;            /* owned; NULL: one syscall per read/send */
    struct conn *readq, **readq_tail; /* conns to read in this turn's batch */
    struct conn *sendq, **sendq_tail; /* conns to send in this turn's batch */
    unsigned n_timeouts;            /* common-timeout cache (conn.c, client.c) */
    uint32_t timeout_ms[WORKER_TIMEOUTS_MAX];
    const struct timeval *timeout_tv[WORKER_TIMEOUTS_MAX];
    struct timeval timeout_scratch;
};

/* Shared by every worker: connection count against limits.max_connections. */
extern atomic_uint worker_open_clients;

/*
 * Create worker `id` with a listener on fd (already bound and listening;
 * the worker owns it). Returns NULL on failure (logged). Main thread.
 */
struct worker *worker_new(int id, int listen_fd);

/*
 * A timeout of ms for event_add(): one of libevent's common timeouts (an
 * O(1) queue instead of the timer heap) for the first few distinct values,
 * a plain one after. Valid until the next call. Worker thread.
 */
const struct timeval *worker_timeout(struct worker *w, uint32_t ms);

/* Start the thread. Returns 0 or -1. */
int worker_start(struct worker *w) WUR;

/* Ask the worker to stop: stop accepting, finish in-flight requests within
 * drain_ms, then end its loop. Main thread, any time. */
void worker_request_stop(struct worker *w);

/* Join and free. Main thread, after worker_request_stop. */
void worker_free(struct worker *w);

/*
 * The worker's current snapshot (refreshed if a new one was published).
 * Worker thread.
 */
struct snapshot *worker_snapshot(struct worker *w);

/* Queue obj for free_fn after the current dispatch, linked through item
 * (embedded in obj, so this never allocates). Worker thread. */
void worker_defer_free(struct worker *w, struct reap_item *item,
                       void (*free_fn)(void *), void *obj);

/* Called by client.c when a client is gone, to finish a drain. */
void worker_client_gone(struct worker *w);

/* Create a listening socket for addr (SO_REUSEADDR + SO_REUSEPORT,
 * non-blocking) with this listen() backlog. Returns fd or -1 (errno set).
 * Main thread. */
int worker_listen_socket(const struct sockaddr *sa, socklen_t len, int backlog);

#endif
