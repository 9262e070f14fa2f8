/*
 * mirror.h — shadow traffic that compares answers (INTERFACE.md,
 * "Mirroring with response comparison").
 *
 * A mirror is a second, fire-and-forget upstream exchange fed from a
 * primary txn's request: after the primary's version is chosen, a sampled
 * share (mirror_cmp.h's counter) of the requests routed to other versions
 * than the shadow, with a listed method and a body of at most max_body, is
 * copied to the shadow version on a conn of its own from the shadow's
 * pool (its own endpoint choice, its own deadline). Its state machine:
 *
 *   BODY ──request body copied whole──▶ READY ──primary complete, next turn──▶ CONNECT
 *     └─(bodyless: at once)──────────────┘
 *   CONNECT ──conn ready, sent──▶ HEAD ──head read──▶ RES_BODY ──▶ DONE (compared)
 *   any ──settle(result)──▶ END        (counted once: match|differ|error|dropped)
 *
 * The primary txn holds the mirror until its own end and only ever calls
 * in (request body bytes as they go upstream, the response head and body
 * bytes as they go to the client, its end); none of those calls does I/O
 * or can fail the primary, and the primary never waits. The shadow's
 * exchange begins only after the primary's response went whole to the
 * client's socket (the worker's next loop turn), so nothing of it runs on
 * a client's critical path: not its connect, not its send, not reading,
 * hashing or comparing its answer. A primary that did not complete drops
 * its mirror before any I/O. A mirror that cannot keep up settles as
 * dropped. The copy of the request body
 * (≤ max_body) is the only buffering; both response bodies are hashed as
 * they pass. Past max_inflight live mirrors in the worker, a sampled
 * request is dropped (counted) without a mirror. A shadow that failed or
 * timed out MIRROR_BREAK_AFTER times in a row is not tried for
 * MIRROR_BREAK_MS (one mirror probes it after that): the sampled requests
 * meanwhile are counted with the shadow's last failure without any I/O, so
 * a dead or stalled shadow does not cost a connect per request.
 *
 * Mirrors are not client requests: no access-log line, not in
 * weir_requests_total, not in the guard's outcome windows, no passive
 * health reports. They are counted in their shadow version's stats
 * (weir_mirror_requests_total{version,result}) and their differences go
 * to the worker's ring (mirror_cmp.h), read by `mirror`.
 *
 * Threads: a mirror and its worker's mirror_table belong to that worker;
 * the readers at the end (counts, differences, rendering) run on the main
 * thread over per-worker counters and rings.
 */
#ifndef WEIR_MIRROR_H
#define WEIR_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "mirror_cmp.h"

#define MIRROR_TABLE_MAGIC 0x4d495254u /* "MIRT" */
#define MIRROR_RES_HEADERS_MAX 256u    /* a shadow response's fields, as the primary reads */

struct config;
struct http1_request;
struct http1_response;
struct json_buf;
struct loop;
struct mirror;
struct snapshot;
struct vstats;

/* One worker's mirrors. */
struct mirror_table {
    uint32_t magic;
    struct loop *loop;   /* borrowed */
    struct mirror *all;  /* borrowed links: every live mirror */
    size_t n;            /* live mirrors (what max_inflight bounds) */
    struct mirror *free; /* owned: recycled mirrors (free_next) */
    size_t n_free;
    struct mirror_sampler sampler;
    uint64_t cached_gen; /* snapshot generation the fields below are for */
    int cached_shadow;   /* shadow version index in it, -1 none */
    /* A shadow that keeps failing is not even tried for a while (see
     * mirror.c's breaker): sampled mirrors are counted with its last
     * failure, at no I/O cost. Reset by every new snapshot. */
    unsigned fail_streak;   /* consecutive errors / timeouts of the shadow */
    uint64_t open_until_ms; /* util_now_ms() clock; 0: closed */
    bool probing;           /* open, and its one probe is under way */
    int open_result;        /* what a mirror skipped while open counts as */
    /* A shadow response head's fields while it is parsed and its compared
     * values kept (one at a time: the parse and the copy are one call). */
    struct router_header res_headers[MIRROR_RES_HEADERS_MAX];
};

/* An empty table on loop l. Worker thread (or before it starts). */
void mirror_table_init(struct mirror_table *tab, struct loop *l);

/* Settle every live mirror as dropped and close its conn (the worker
 * stops). Mirrors still held by a txn are freed when it ends. Worker
 * thread, or after it ended. */
void mirror_table_close_all(struct mirror_table *tab);

/* Free the table; every mirror must be reaped already. */
void mirror_table_dispose(struct mirror_table *tab);

/*
 * A primary txn on loop l routed its request (parsed in req) to `version`
 * of snapshot s: mirror it? Returns a new mirror the txn holds until
 * mirror_primary_end, or NULL (not mirrored; dropped ones are counted).
 * Only decides and counts: nothing of the shadow's request is built yet
 * (that is off the primary's path, in mirror_primary_end). Worker thread.
 */
struct mirror *mirror_start(struct loop *l, struct snapshot *s, int version,
                            const struct http1_request *req);

/* The primary appended request body bytes to its upstream output `out`
 * from offset `from` on (weir's own framing of the body); done: the body
 * is complete. */
void mirror_request_body(struct mirror *m, struct evbuffer *out, size_t from, bool done);

/* The primary's final response head (not 1xx) was parsed. */
void mirror_response_head(struct mirror *m, const struct http1_response *res);

/* The primary appended response body bytes to the client's output `out`
 * from offset `from` on; framed: they are in weir's chunked re-framing
 * (else raw body bytes). */
void mirror_response_body(struct mirror *m, struct evbuffer *out, size_t from, bool framed);

/*
 * The primary txn ended and no longer holds m; complete: its response went
 * whole to the client. Called once the response was handed to the client's
 * socket (or its send queued): when complete, the shadow's request head is
 * written now from req (the primary's parsed request, from client; both
 * only read during the call) and its exchange starts in the next loop turn.
 */
void mirror_primary_end(struct mirror *m, bool complete, const struct http1_request *req,
                        const struct sockaddr *client);

/* Mirrors of a shadow version by result, summed over workers. Any thread. */
void mirror_counts(const struct vstats *vs, uint64_t out[MIRROR_R_COUNT]);

/* Live mirrors in all workers. Any thread. */
uint64_t mirror_inflight(void);

/* The last differences of all workers, newest first; returns the count.
 * Any thread. */
size_t mirror_differences(struct mirror_diff *out, size_t max);

/*
 * Called often (the main thread's 250 ms tick): every MIRROR_EVENT_WINDOW_MS
 * the differ rate of each shadow over its window (since the last judged
 * one: a window with fewer than MIRROR_EVENT_MIN compared mirrors is not
 * judged but grows into the next) is compared with the rate last
 * announced (0 at first), and a change of 10 points or more is
 * published on the event stream: {"event":"mirror","version":...,
 * "differ_rate":F,"previous_rate":F,"compared":N}. Main thread.
 */
#define MIRROR_EVENT_WINDOW_MS 5000u
#define MIRROR_EVENT_MIN 20u
void mirror_tick(uint64_t now_ms);

/* Is vs worth showing: the configured shadow of cfg (may be NULL), or a
 * version that got mirrors (c: its mirror_counts)? Any thread. */
bool mirror_is_shown(const struct vstats *vs, const struct config *cfg,
                     const uint64_t c[MIRROR_R_COUNT]);

/* The `mirror` answer's "mirror" member: settings of cfg, counts, the
 * last differences. Main thread. */
void mirror_render(struct json_buf *out, const struct config *cfg);

#endif
