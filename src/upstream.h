/*
 * upstream.h — connections to endpoints: per-worker keep-alive pools per
 * endpoint (LIFO, bounded), connect with timeout, idle timeout, and closing
 * conns to retired endpoints.
 *
 * An upstream conn is either idle in its endpoint's pool (watching for the
 * peer closing it), or lent to exactly one txn. A worker's pools and the
 * list of all its conns are its upstream_table, owned by the worker and
 * filled only here: one pool per endpoint, indexed by the endpoint's small
 * `index` (snapshot.h). Worker thread only.
 */
#ifndef WEIR_UPSTREAM_H
#define WEIR_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

#define UPSTREAM_MAGIC 0x55505331u /* "UPS1" */

struct endpoint;
struct txn;
struct conn_tls;

/* Why a conn is closed (static strings compared by pointer). */
extern const char UPSTREAM_CLOSE_DONE[];    /* not reusable after a txn */
extern const char UPSTREAM_CLOSE_IDLE[];    /* idle timeout or peer closed */
extern const char UPSTREAM_CLOSE_RETIRED[]; /* endpoint left the config */
extern const char UPSTREAM_CLOSE_FULL[];    /* pool full */
extern const char UPSTREAM_CLOSE_ERROR[];   /* I/O error during a txn */
extern const char UPSTREAM_CLOSE_STOP[];    /* worker stopping */

/* The idle conns of one endpoint in one worker, warmest first. */
struct upstream_pool {
    struct upstream_conn *head; /* borrowed links (pool_next/pool_prev) */
    size_t n_idle;
    struct ssl_session_st *tls_session; /* owned: upstream TLS, resumed by the next conn */
    struct ssl_ctx_st *tls_session_ctx; /* owned ref: the SSL_CTX it was made under
                                           (a reload's new context starts afresh) */
};

/* One worker's upstream conns. */
struct upstream_table {
    struct loop *loop;           /* borrowed */
    struct upstream_pool *pools; /* owned: n_pools, by endpoint index */
    size_t n_pools;
    struct upstream_conn *all; /* every open conn, idle or lent (all_next) */
};

struct upstream_conn {
    uint32_t magic;
    struct upstream_table *tab;      /* borrowed: the table it is on */
    struct endpoint *ep;             /* refcounted */
    struct conn *cn;                 /* owned */
    struct conn_tls *tls;            /* owned: the version speaks TLS (conn_tls.h) */
    struct txn *txn;                 /* borrowed: the txn using it, NULL if idle */
    bool connected;                  /* connect completed */
    bool reused;                     /* served a txn before */
    bool closing;                    /* closed; freed after dispatch */
    struct upstream_conn *pool_next; /* idle list link */
    struct upstream_conn *pool_prev;
    struct upstream_conn *all_next; /* tab's list of all conns */
    struct upstream_conn *all_prev;
    struct reap_item reap; /* deferred-free link */
};

/* An empty table on loop l. Worker thread. */
void upstream_table_init(struct upstream_table *tab, struct loop *l);

/* Free the table; every conn must be closed and reaped already. */
void upstream_table_dispose(struct upstream_table *tab);

/*
 * Get a conn to ep: a pooled idle one (connected, reused) unless `fresh`, or
 * a new one connecting (its CONN_CONNECTED reaches eventcb). The
 * callbacks and arg are installed before any connect starts. Returns NULL
 * when the connect fails at once (errno set).
 */
struct upstream_conn *upstream_acquire(struct upstream_table *tab,
                                       struct endpoint *ep,
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
void upstream_flush_pool(struct upstream_table *tab, struct endpoint *ep);

/* Close every idle conn of the worker (at stop; lent ones close with their
 * txns). */
void upstream_close_all(struct upstream_table *tab);

#endif
