/*
 * proxy.h — one transaction (txn): a request and its response.
 *
 *   route (rules → sticky → split) → pick endpoint (SWRR) → upstream conn
 *   (pooled or new) → request head rewritten → request body streamed
 *   (re-framed) → response head rewritten → response body streamed → done.
 *
 * Both directions stream with backpressure: above FLOW_HIGH_WATER queued
 * toward one side, reading from the other stops (flow_pause), and resumes
 * when the queue drains to half (flow_resume). A 101 turns the txn into a
 * byte tunnel. Failures before any response byte are retried on another
 * endpoint when safe; otherwise they become 502/503/504, or a closed client
 * connection when part of the response had already reached the client.
 * Every txn ends exactly once (proxy.c's txn_end), with one access-log line
 * and one count, however it ended: a client that leaves early is a 499.
 *
 * Worker thread only. The txn owns its upstream conn while it runs and holds
 * a snapshot reference to its end.
 */
#ifndef WEIR_PROXY_H
#define WEIR_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "txn_error.h"

struct client;
struct txn;

/* A vetted head of head_len bytes is at the front of the client's input. */
void proxy_start(struct client *c, size_t head_len);

/* Client socket events while its txn runs. */
void proxy_on_client_read(struct txn *t);
void proxy_on_client_drained(struct txn *t);
void proxy_on_client_eof(struct txn *t);

/*
 * The client is being closed (client_close) while its txn runs: end the txn
 * and close its upstream conn. why == CLIENT_CLOSE_STOP means weir itself
 * stops (a drain deadline); anything else means the client went away, which
 * is logged as 499 with where it happened.
 */
void proxy_abort(struct txn *t, const char *why);

/*
 * Count and log a request refused before it became a txn (400 for a head
 * that failed vetting, 431 too large, 408 too slow), so metrics and the
 * access log see every answer weir sends. detail: a static, more precise
 * reason for the log (or NULL for the table's). Worker thread.
 */
void proxy_log_refused(struct client *c, int status, enum txn_error err,
                       const char *detail);

/*
 * One worker's cache of recycled txns: a txn that ended goes back here
 * (up to a fixed count) with its head buffers, and the next request
 * reuses it without an allocation. A worker embeds it and lends it to
 * proxy.c through its loop (loop.txns); without one (a loop that lends
 * none) txns are plainly allocated and freed.
 */
struct proxy_table {
    struct txn *free_txns; /* owned: a list through txn.next_free */
    unsigned n_free;
};

/* Start an empty cache. */
void proxy_table_init(struct proxy_table *tab);

/* Free every cached txn. The worker's thread at its end, or the main
 * thread after joining it (txns reaped then come back here). */
void proxy_table_dispose(struct proxy_table *tab);

#endif
