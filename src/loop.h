/*
 * loop.h — the event-loop context of one worker thread, the lowest layer of
 * the data path: the event_base, the reap list (objects closed during a
 * dispatch are freed after it), the common-timeout cache, and the I/O batch
 * (an iobatch plus the read and send queues that conn.c fills during a loop
 * turn and issues after it). conn, client, upstream and proxy take a loop;
 * a worker embeds one (worker.c) and drives it:
 *
 *   loop_init ─▶ [loop_batch_init on the loop's thread] ─▶ turns:
 *   event_base_loop(EVLOOP_ONCE) + conn_run_batch() ─▶ loop_reap ─▶ loop_dispose
 *
 * The owner also lends the modules above the loop the few things of its
 * own they read (the drain flag, the current snapshot, the routing state
 * and the upstream table), so that none of them calls up into worker.c.
 * The loop stores those fields and never looks at them.
 *
 * Does not own: the conns in its queues (conn.c), the objects on its reap
 * list (freed by their free_fn), anything the owner lends. Thread: the
 * loop's thread only, except init/dispose (before it starts / after it ended).
 */
#ifndef WEIR_LOOP_H
#define WEIR_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "util.h"

#define LOOP_MAGIC 0x4c4f4f50u /* "LOOP" */
#define LOOP_TIMEOUTS_MAX 16

struct balancer_state;
struct conn;
struct event;
struct event_base;
struct iobatch;
struct loop;
struct proxy_table;
struct mirror_table;
struct router_state;
struct snapshot;
struct upstream_table;

/* A reap list link, embedded in each object that may be closed during
 * dispatch (client, txn, upstream conn, conn) and freed after it. */
struct reap_item {
    struct reap_item *next;
    void (*free_fn)(void *obj);
    void *obj;
};

/* The owner's current snapshot, refreshed when a new one was published. */
typedef struct snapshot *(*loop_snapshot_cb)(struct loop *l);

struct loop {
    uint32_t magic;
    int id;                           /* 0..workers-1: index of per-worker slots */
    struct event_base *base;          /* owned */
    struct event *reap_ev;            /* owned: runs the reap after dispatch */
    struct reap_item *reap;           /* objects to free after dispatch */
    uint64_t n_reaped;                /* objects the reap freed so far */
    uint64_t n_reads;                 /* socket reads that got bytes (conn.c) */
    struct iobatch *iob;              /* owned; NULL: one syscall per read/send */
    struct conn *readq, **readq_tail; /* conns to read in this turn's batch */
    struct conn *sendq, **sendq_tail; /* conns to send in this turn's batch */
    unsigned n_timeouts;              /* common-timeout cache (loop_timeout) */
    uint32_t timeout_ms[LOOP_TIMEOUTS_MAX];
    const struct timeval *timeout_tv[LOOP_TIMEOUTS_MAX];
    struct timeval timeout_scratch;
    /* Lent by the owner; the loop never reads them. */
    bool stopping;                    /* draining: keep no connection alive */
    loop_snapshot_cb snapshot_fn;     /* see loop_snapshot() */
    struct router_state *router;      /* borrowed: the owner's SWRR state */
    struct balancer_state *balancer;  /* borrowed: the owner's balancer state */
    struct upstream_table *upstreams; /* borrowed: pools and conns (upstream.c) */
    struct proxy_table *txns;         /* borrowed: recycled txns (proxy.c), or NULL */
    struct mirror_table *mirrors;     /* borrowed: live mirrors (mirror.c); NULL: none */
};

/*
 * Set up loop `id`: an event_base without locks, the reap event, empty
 * queues, no iobatch. Returns 0, or -1 (logged) with nothing to dispose.
 * Any thread (the loop is not running yet).
 */
int loop_init(struct loop *l, int id) WUR;

/*
 * Free what is still on the reap list, then the iobatch, the reap event and
 * the event_base (every other event on it must be freed already). The
 * queues must be empty (conn_run_batch() ran). Once the loop has ended.
 */
void loop_dispose(struct loop *l);

/*
 * Batch the loop's socket I/O through an io_uring of `entries` entries.
 * Returns 0, or -1 (errno set; the loop does one syscall per op). On the
 * loop's own thread: the ring accepts submissions from its creator only.
 */
int loop_batch_init(struct loop *l, unsigned entries) WUR;

/* Stop batching (free the iobatch); queues must be empty. Loop thread. */
void loop_batch_dispose(struct loop *l);

/* Queue obj for free_fn after the current dispatch, linked through item
 * (embedded in obj, so this never allocates). Loop thread. */
void loop_defer_free(struct loop *l, struct reap_item *item,
                     void (*free_fn)(void *), void *obj);

/* Free everything on the reap list now (also what the frees queue). Loop
 * thread, with no callback of a queued object on the stack. */
void loop_reap(struct loop *l);

/*
 * A timeout of ms for event_add(): one of libevent's common timeouts (an
 * O(1) queue instead of the timer heap) for the first few distinct values,
 * a plain one after. Valid until the next call. Loop thread.
 */
const struct timeval *loop_timeout(struct loop *l, uint32_t ms);

/* The owner's current snapshot (borrowed: valid until the owner sees the
 * next one; a txn takes its own reference). Loop thread. */
static inline struct snapshot *loop_snapshot(struct loop *l)
{
    return l->snapshot_fn(l);
}

#endif
