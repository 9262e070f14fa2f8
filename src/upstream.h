/*
 * upstream.h — connections to endpoints: per-worker keep-alive pools per
 * endpoint (LIFO, bounded), connect with timeout, idle timeout, and closing
 * conns to retired endpoints.
 *
 * An upstream conn is either idle in its endpoint's pool (watching for the
 * peer closing it), or lent to exactly one txn. Worker thread only.
 */
#ifndef WEIR_UPSTREAM_H
#define WEIR_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

#include "snapshot.h"
#include "worker.h"

#define UPSTREAM_MAGIC 0x55505331u /* "UPS1" */

struct worker;
struct txn;

/* Why a conn is closed (static strings compared by pointer). */
extern const char UPSTREAM_CLOSE_DONE[];    /* not reusable after a txn */
extern const char UPSTREAM_CLOSE_IDLE[];    /* idle timeout or peer closed */
extern const char UPSTREAM_CLOSE_RETIRED[]; /* endpoint left the config */
extern const char UPSTREAM_CLOSE_FULL[];    /* pool full */
extern const char UPSTREAM_CLOSE_ERROR[];   /* I/O error during a txn */
extern const char UPSTREAM_CLOSE_STOP[];    /* worker stopping */

struct upstream_conn {
    uint32_t magic;
    struct worker *w;          /* borrowed */
    struct endpoint *ep;       /* refcounted */
    struct conn *cn;           /* owned */
    struct txn *txn;           /* borrowed: the txn using it, NULL if idle */
    bool connected;            /* connect completed */
    bool reused;               /* served a txn before */
    bool closing;              /* closed; freed after dispatch */
    struct upstream_conn *pool_next;  /* idle list link */
    struct upstream_conn *pool_prev;
    struct upstream_conn *all_next;   /* worker's list of all conns */
    struct upstream_conn *all_prev;
    struct reap_item reap;            /* deferred-free link */
};

/*
 * Get a conn to ep: a pooled idle one (connected, reused) unless `fresh`, or
 * a new one connecting (its CONN_CONNECTED reaches eventcb). The
 * callbacks and arg are installed before any connect starts. Returns NULL
 * when the connect fails at once (errno set).
 */
struct upstream_conn *upstream_acquire(struct worker *w, struct endpoint *ep,
                                       bool fresh, conn_data_cb readcb,
                                       conn_data_cb writecb,
                                       conn_event_cb eventcb, void *arg);

/*
 * Give a conn back after a txn: pooled when reusable and the endpoint is
 * still configured and the pool has room, else closed.
 */
void upstream_release(struct upstream_conn *uc, bool reusable);

/* Close a conn (pooled or lent) for a reason. */
void upstream_close(struct upstream_conn *uc, const char *why);

/* Close every idle conn to ep in this worker's pool. */
void upstream_flush_pool(struct worker *w, struct endpoint *ep);

/* Close every conn of the worker (at stop). */
void upstream_close_all(struct worker *w);

#endif
