/*
 * mirror.c — see mirror.h. The shadow exchange of one mirrored request:
 * its conn, its deadline, reading and hashing the shadow's response, the
 * pairing with the primary's, and the result (counted once, in settle()).
 *
 * Lifetime: a mirror is freed when both holders let go: the primary txn
 * (mirror_primary_end) and its own exchange (settled and its conn given
 * back). Until then the memory stays valid, so the txn's calls are always
 * safe; after settling they do nothing.
 *
 * The worker's table lists every live mirror (what max_inflight counts)
 * and keeps a few freed ones for reuse with their digest contexts, so a
 * mirror costs no allocation in the steady state. The per-worker counters
 * are in the shadow version's vstats slot, the differences in rings[]
 * indexed by the worker's id (static: the main thread may read them at
 * any time, also while workers come and go).
 */
#include "mirror.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "balancer.h"
#include "config.h"
#include "events.h"
#include "conn.h"
#include "http1.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "snapshot.h"
#include "state.h"
#include "upstream.h"

#define MIRROR_MAGIC 0x4d495231u /* "MIR1" */
#define MIRROR_RES_HEAD_MAX (64u * 1024u)
/* Recycled mirrors kept per worker: more than the live ones of a busy
 * worker (about two per client connection in flight: one waiting for its
 * primary, one in its exchange), so the steady state allocates nothing. */
#define MIRROR_FREE_MAX 128u
#define MIRROR_BREAK_AFTER 5u /* consecutive shadow failures that open the breaker */
#define MIRROR_BREAK_MS 1000u /* how long it stays open before one probe */

_Static_assert(MIRROR_R_COUNT == METRICS_MIRROR_RESULTS, "vstats_wslot.mirror size");

enum mirror_state {
    MIR_S_BODY = 0, /* the request body is being copied from the primary */
    MIR_S_READY,    /* request copied whole; waits for the primary's end */
    MIR_S_CONNECT,  /* the shadow conn is connecting */
    MIR_S_HEAD,     /* request sent (or being sent); reading the response head */
    MIR_S_RES_BODY, /* reading and hashing the response body */
    MIR_S_DONE,     /* the shadow answered whole (compared at once) */
    MIR_S_END,      /* settled; nothing more happens */
};

struct mirror {
    uint32_t magic;
    enum mirror_state state;
    struct mirror_table *tab; /* borrowed */
    struct snapshot *snap;    /* refcounted: the primary's snapshot */
    int shadow;               /* shadow version index in snap */
    int primary;              /* the primary's version index in snap */
    struct upstream_conn *uc; /* owned while the exchange runs */
    struct evbuffer *req;     /* owned: request bytes not yet sent */
    size_t body_copied;       /* request body bytes copied */
    bool held;                /* the primary txn still holds it */
    bool settled;             /* result counted (or silently cancelled) */
    bool primary_done;        /* the primary's response went whole */
    bool head_request;
    bool timer_armed;
    bool queued;        /* on the reap list */
    bool probe;         /* the breaker's probe (mirror_table) */
    struct event timer; /* the deferred start, then the shadow's deadline */

    struct http1_scan scan;
    char *res_head; /* owned */
    size_t res_head_cap;
    struct http1_response res;
    uint64_t res_remaining;
    struct http1_chunked res_chunk;
    struct evbuffer *scratch; /* owned: decoded chunked body, hashed and dropped */

    struct mirror_side a; /* the primary's response */
    struct mirror_side b; /* the shadow's */
    char method[24];
    char target[200];

    struct mirror *next, *prev; /* the table's list of live mirrors */
    struct mirror *free_next;   /* the table's free list */
    struct reap_item reap;      /* deferred-free link */
};

/* The differences of worker i; written by it only. */
static struct mirror_ring rings[WORKERS_MAX];
/* Live mirrors of worker i (a gauge only it writes). */
static _Atomic uint64_t inflight_gauge[WORKERS_MAX];

static void on_up_read(struct conn *cn, void *arg);
static void on_up_event(struct conn *cn, short what, void *arg);
static void on_deadline(evutil_socket_t fd, short what, void *arg);
static void on_start(evutil_socket_t fd, short what, void *arg);

/* ---- table -------------------------------------------------------------- */

void mirror_table_init(struct mirror_table *tab, struct loop *l)
{
    memset(tab, 0, sizeof(*tab));
    tab->magic = MIRROR_TABLE_MAGIC;
    tab->loop = l;
    tab->cached_shadow = -1;
    tab->cached_gen = UINT64_MAX;
}

static void mirror_release_memory(struct mirror *m)
{
    mirror_side_dispose(&m->a);
    mirror_side_dispose(&m->b);
    if (m->req)
        evbuffer_free(m->req);
    if (m->scratch)
        evbuffer_free(m->scratch);
    free(m->res_head);
    free(m);
}

void mirror_table_dispose(struct mirror_table *tab)
{
    CHECK(tab->magic == MIRROR_TABLE_MAGIC);
    CHECK(!tab->all && tab->n == 0);
    while (tab->free) {
        struct mirror *m = tab->free;
        tab->free = m->free_next;
        mirror_release_memory(m);
    }
    tab->n_free = 0;
    tab->magic = 0;
}

static void gauge_set(struct mirror_table *tab)
{
    atomic_store_explicit(&inflight_gauge[tab->loop->id], tab->n, memory_order_relaxed);
}

static void mirror_dispose(void *obj)
{
    struct mirror *m = obj;
    CHECK(m->magic == MIRROR_MAGIC);
    m->magic = 0;
    struct mirror_table *tab = m->tab;
    if (tab->n_free < MIRROR_FREE_MAX) {
        m->free_next = tab->free;
        tab->free = m;
        tab->n_free++;
        return;
    }
    mirror_release_memory(m);
}

/* Free m once neither the txn nor its exchange holds it. */
static void maybe_free(struct mirror *m)
{
    if (m->held || !m->settled || m->state != MIR_S_END || m->queued)
        return;
    struct mirror_table *tab = m->tab;
    if (m->prev)
        m->prev->next = m->next;
    else
        tab->all = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->next = m->prev = NULL;
    tab->n--;
    gauge_set(tab);
    snapshot_unref(m->snap);
    m->snap = NULL;
    m->queued = true;
    loop_defer_free(tab->loop, &m->reap, mirror_dispose, m);
}

static struct mirror *mirror_new(struct mirror_table *tab)
{
    struct mirror *m = tab->free;
    if (m) {
        tab->free = m->free_next;
        tab->n_free--;
    } else {
        m = xcalloc(1, sizeof(*m));
    }
    /* kept across reuse: the digest contexts and buffers (the sides are
     * reset by mirror_side_reset before use) */
    struct evp_md_ctx_st *md_a = m->a.md, *md_b = m->b.md;
    struct evbuffer *req = m->req, *scratch = m->scratch;
    char *res_head = m->res_head;
    size_t res_head_cap = m->res_head_cap;
    memset(m, 0, sizeof(*m));
    m->a.md = md_a;
    m->b.md = md_b;
    m->req = req ? req : evbuffer_new();
    m->scratch = scratch ? scratch : evbuffer_new();
    CHECK(m->req && m->scratch);
    evbuffer_drain(m->req, evbuffer_get_length(m->req));
    evbuffer_drain(m->scratch, evbuffer_get_length(m->scratch));
    m->res_head = res_head;
    m->res_head_cap = res_head_cap;
    m->magic = MIRROR_MAGIC;
    m->tab = tab;
    m->next = tab->all;
    if (tab->all)
        tab->all->prev = m;
    tab->all = m;
    tab->n++;
    gauge_set(tab);
    return m;
}

/* ---- counting and settling --------------------------------------------- */

static void count(struct loop *l, const struct snapshot *s, int shadow, enum mirror_result r)
{
    struct vstats *vs = s->versions[shadow].stats;
    if (!vs)
        return;
    _Atomic uint64_t *c = &vs->slots[l->id].mirror[r];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* v into dst as a string, cut to fit (cap > 0). */
static void copy_sv(char *dst, size_t cap, struct strview v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.p, n);
    dst[n] = '\0';
}

static void record_diff(struct mirror *m, unsigned what)
{
    const struct config_mirror *mc = &m->snap->cfg->mirror;
    struct mirror_diff d;
    memset(&d, 0, sizeof(d));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    d.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    d.what = what;
    copy_str(d.version, sizeof(d.version), m->snap->versions[m->shadow].name);
    copy_str(d.primary, sizeof(d.primary), m->snap->versions[m->primary].name);
    copy_str(d.method, sizeof(d.method), m->method);
    copy_str(d.target, sizeof(d.target), m->target);
    d.status_a = m->a.status;
    d.status_b = m->b.status;
    size_t nh = m->a.n_headers < m->b.n_headers ? m->a.n_headers : m->b.n_headers;
    d.n_headers = (uint32_t)nh;
    for (size_t i = 0; i < nh && i < mc->n_compare_headers; i++) {
        copy_str(d.hname[i], sizeof(d.hname[i]), mc->compare_headers[i]);
        d.ha[i] = m->a.h[i];
        d.hb[i] = m->b.h[i];
    }
    memcpy(d.hash_a, m->a.hash, MIRROR_HASH_LEN);
    memcpy(d.hash_b, m->b.hash, MIRROR_HASH_LEN);
    d.bytes_a = m->a.body_bytes;
    d.bytes_b = m->b.body_bytes;
    mirror_ring_push(&rings[m->tab->loop->id], &d);
}

static void timer_stop(struct mirror *m)
{
    if (m->timer_armed) {
        event_del(&m->timer);
        m->timer_armed = false;
    }
}

/* End the shadow's exchange: its conn is pooled when reusable, else closed. */
static void exchange_end(struct mirror *m, bool reusable)
{
    timer_stop(m);
    if (m->uc) {
        struct upstream_conn *uc = m->uc;
        m->uc = NULL;
        if (reusable)
            upstream_release(uc, true);
        else
            upstream_close(uc, UPSTREAM_CLOSE_ERROR);
    }
    m->state = MIR_S_END;
}

/*
 * The breaker: the shadow's own outcomes (not the primary's, not weir
 * stopping) of this worker. MIRROR_BREAK_AFTER failures in a row open it
 * for MIRROR_BREAK_MS; the first mirror after that goes through as a probe
 * and its outcome closes it again or reopens it.
 */
static void breaker_note(struct mirror *m, int r, bool shadow_side)
{
    struct mirror_table *tab = m->tab;
    if (m->snap->generation != tab->cached_gen)
        return; /* a new snapshot reset the breaker */
    if (m->probe) {
        tab->probing = false;
        if (!shadow_side) {
            tab->open_until_ms = 1; /* undecided: the next mirror probes */
            return;
        }
    }
    if (!shadow_side)
        return;
    if (r == MIRROR_R_MATCH || r == MIRROR_R_DIFFER) {
        tab->fail_streak = 0;
        tab->open_until_ms = 0;
        return;
    }
    if (++tab->fail_streak >= MIRROR_BREAK_AFTER || m->probe) {
        tab->open_until_ms = util_now_ms() + MIRROR_BREAK_MS;
        tab->open_result = r;
    }
}

/* Count the result (r < 0: cancelled, not counted) and end the exchange.
 * shadow_side: the shadow's own outcome (for the breaker). */
static void settle_as(struct mirror *m, int r, const char *why, bool shadow_side)
{
    if (m->settled)
        return;
    m->settled = true;
    breaker_note(m, r, shadow_side);
    if (r >= 0) {
        count(m->tab->loop, m->snap, m->shadow, (enum mirror_result)r);
        log_debug("mirror %s %.60s → %s: %s%s%s", m->method, m->target,
                  m->snap->versions[m->shadow].name, mirror_result_name((enum mirror_result)r),
                  why ? ": " : "", why ? why : "");
    }
    exchange_end(m, false);
    maybe_free(m);
}

static void settle(struct mirror *m, int r, const char *why)
{
    settle_as(m, r, why, true);
}

/* Both sides answered whole: compare and count. */
static void pair(struct mirror *m)
{
    const struct config_mirror *mc = &m->snap->cfg->mirror;
    mirror_side_finish(&m->a);
    mirror_side_finish(&m->b);
    unsigned what = mirror_compare(&m->a, &m->b, mc->compare_status, mc->compare_body);
    if (what)
        record_diff(m, what);
    settle(m, what ? MIRROR_R_DIFFER : MIRROR_R_MATCH, NULL);
}

/* ---- start ------------------------------------------------------------- */

static bool method_listed(const struct config_mirror *mc, struct strview method)
{
    for (size_t i = 0; i < mc->n_methods; i++)
        if (strlen(mc->methods[i]) == method.len &&
            memcmp(mc->methods[i], method.p, method.len) == 0)
            return true; /* methods are case-sensitive (RFC 9110 §9.1) */
    return false;
}

static int shadow_index(struct mirror_table *tab, const struct snapshot *s)
{
    if (tab->cached_gen != s->generation) {
        tab->fail_streak = 0; /* a new snapshot may name another shadow */
        tab->open_until_ms = 0;
        tab->probing = false;
        const struct config_mirror *mc = &s->cfg->mirror;
        tab->cached_shadow = mc->enabled && mc->version
                                 ? config_version_index(s->cfg, mc->version)
                                 : -1;
        tab->cached_gen = s->generation;
    }
    return tab->cached_shadow;
}

static void connect_shadow(struct mirror *m);

struct mirror *mirror_start(struct loop *l, struct snapshot *s, int version,
                            const struct http1_request *req)
{
    struct mirror_table *tab = l->mirrors;
    if (!tab || !s->cfg->mirror.enabled)
        return NULL;
    const struct config_mirror *mc = &s->cfg->mirror;
    int shadow = shadow_index(tab, s);
    if (shadow < 0 || shadow == version || req->upgrade || !method_listed(mc, req->method))
        return NULL;
    if (req->framing == H1_F_LENGTH && req->content_length > mc->max_body_bytes)
        return NULL; /* larger bodies are not mirrored (not counted either) */
    if (!mirror_sampler_step(&tab->sampler, mc->percent_bp))
        return NULL;
    if (tab->n >= mc->max_inflight || l->stopping) {
        count(l, s, shadow, MIRROR_R_DROPPED);
        return NULL;
    }
    bool probe = false;
    if (tab->open_until_ms) {
        if (tab->probing || util_now_ms() < tab->open_until_ms) {
            count(l, s, shadow, (enum mirror_result)tab->open_result);
            return NULL;
        }
        probe = true; /* one mirror tries the shadow; the rest wait for it */
        tab->probing = true;
    }
    struct mirror *m = mirror_new(tab);
    snapshot_ref(s);
    m->snap = s;
    m->shadow = shadow;
    m->primary = version;
    m->held = true;
    m->probe = probe;
    mirror_side_reset(&m->a, mc->compare_body); /* b: when the shadow is asked */
    if (req->framing == H1_F_NONE)
        m->state = MIR_S_READY;
    return m;
}

/*
 * The shadow's head: the primary's rewrite plus X-Weir-Mirror before the
 * blank line, in front of the body copied into m->req so far.
 */
static void write_head(struct mirror *m, const struct http1_request *req,
                       const struct sockaddr *client)
{
    m->head_request = req->method_id == H1_M_HEAD;
    copy_sv(m->method, sizeof(m->method), req->method);
    copy_sv(m->target, sizeof(m->target), req->target);
    struct http1_fwd fwd = {.client = client, .close = false};
    http1_write_request(m->scratch, req, &fwd);
    size_t hl = evbuffer_get_length(m->scratch);
    CHECK(hl >= 4);
    bool body = evbuffer_get_length(m->req) > 0;
    struct evbuffer *head = body ? evbuffer_new() : m->req;
    CHECK(head);
    evbuffer_remove_buffer(m->scratch, head, hl - 2);
    evbuffer_drain(m->scratch, 2);
    evbuffer_add(head, "X-Weir-Mirror: 1\r\n\r\n", 20);
    if (body) {
        evbuffer_prepend_buffer(m->req, head);
        evbuffer_free(head);
    }
}

/* ---- the primary's side ------------------------------------------------- */

/* Call fn over the bytes of buf from offset `from` to its end. */
static void each_span(struct evbuffer *buf, size_t from,
                      void (*fn)(void *arg, const char *p, size_t n), void *arg)
{
    size_t len = evbuffer_get_length(buf);
    if (from >= len)
        return;
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(buf, &pos, from, EVBUFFER_PTR_SET) < 0)
        return;
    size_t left = len - from;
    while (left) {
        struct evbuffer_iovec v[8];
        int n = evbuffer_peek(buf, (ev_ssize_t)left, &pos, v, 8);
        if (n <= 0)
            return;
        int used = n < 8 ? n : 8;
        size_t got = 0;
        for (int i = 0; i < used && left; i++) {
            size_t k = v[i].iov_len < left ? v[i].iov_len : left;
            fn(arg, v[i].iov_base, k);
            left -= k;
            got += k;
        }
        if (!left || evbuffer_ptr_set(buf, &pos, got, EVBUFFER_PTR_ADD) < 0)
            return;
    }
}

static void on_copy_span(void *arg, const char *p, size_t n)
{
    evbuffer_add(arg, p, n);
}

void mirror_request_body(struct mirror *m, struct evbuffer *out, size_t from, bool done)
{
    CHECK(m->magic == MIRROR_MAGIC);
    if (m->settled || m->state != MIR_S_BODY)
        return;
    size_t n = evbuffer_get_length(out) - from;
    if (m->body_copied + n > m->snap->cfg->mirror.max_body_bytes) {
        settle_as(m, -1, NULL, false); /* a chunked body past max_body: not mirrored */
        return;
    }
    each_span(out, from, on_copy_span, m->req);
    m->body_copied += n;
    if (done)
        m->state = MIR_S_READY;
}

void mirror_response_head(struct mirror *m, const struct http1_response *res)
{
    CHECK(m->magic == MIRROR_MAGIC);
    if (m->settled)
        return;
    const struct config_mirror *mc = &m->snap->cfg->mirror;
    if (m->a.status || m->a.body_bytes) /* not fresh (mirror_start reset it) */
        mirror_side_reset(&m->a, m->a.md != NULL);
    mirror_side_head(&m->a, res->status, (const char *const *)mc->compare_headers,
                     mc->n_compare_headers, res->headers, res->n_headers);
}

static void on_hash_raw(void *arg, const char *p, size_t n)
{
    mirror_side_body(arg, p, n);
}

static void on_hash_framed(void *arg, const char *p, size_t n)
{
    mirror_side_body_chunked(arg, p, n);
}

void mirror_response_body(struct mirror *m, struct evbuffer *out, size_t from, bool framed)
{
    CHECK(m->magic == MIRROR_MAGIC);
    if (m->settled || !m->snap->cfg->mirror.compare_body)
        return;
    each_span(out, from, framed ? on_hash_framed : on_hash_raw, &m->a);
}

/*
 * The shadow's exchange starts only now, and not even now: on a zero
 * timer, which fires in the worker's next loop turn, after this turn's
 * client responses went to their sockets (a plain write happens inside
 * the turn; a batched one right after it, conn_run_batch). So the
 * shadow's connect, request and answer never run ahead of a client's
 * response in the same turn, and its answer cannot arrive before its
 * primary's and be read first.
 */
void mirror_primary_end(struct mirror *m, bool complete, const struct http1_request *req,
                        const struct sockaddr *client)
{
    CHECK(m->magic == MIRROR_MAGIC && m->held);
    m->held = false;
    if (m->settled) {
        maybe_free(m);
        return;
    }
    if (!complete || m->state != MIR_S_READY) {
        settle_as(m, MIRROR_R_DROPPED, "the primary did not complete", false);
        return;
    }
    m->primary_done = true;
    write_head(m, req, client);
    mirror_side_reset(&m->b, m->snap->cfg->mirror.compare_body);
    static const struct timeval next_turn = {0, 0};
    event_assign(&m->timer, m->tab->loop->base, -1, 0, on_start, m);
    event_add(&m->timer, &next_turn);
    m->timer_armed = true;
}

/* ---- the shadow's side --------------------------------------------------- */

static void send_request(struct mirror *m)
{
    struct conn *cn = m->uc->cn;
    evbuffer_add_buffer(cn->out, m->req);
    conn_send(cn);
    m->state = MIR_S_HEAD;
}

static void on_connected(struct mirror *m)
{
    uint32_t ms = m->snap->cfg->mirror.timeout_ms;
    m->uc->connected = true;
    conn_set_timeouts(m->uc->cn, ms, ms);
    conn_read_start(m->uc->cn);
    send_request(m);
}

static void connect_shadow(struct mirror *m)
{
    struct loop *l = m->tab->loop;
    m->state = MIR_S_CONNECT;
    /* Pick in the worker's current snapshot: the balancer's state is armed
     * for that one (the txn's may be older by now). */
    struct snapshot *cur = loop_snapshot(l);
    const char *name = m->snap->versions[m->shadow].name;
    int v = cur == m->snap ? m->shadow : config_version_index(cur->cfg, name);
    int i = v >= 0 ? balancer_pick(cur, l->balancer, v, NULL, util_now_ms()) : -1;
    if (i < 0) {
        settle(m, MIRROR_R_ERROR, "no endpoint available");
        return;
    }
    struct endpoint *ep = cur->versions[v].eps[i].ep;
    struct upstream_conn *uc = upstream_acquire(l->upstreams, ep, false, on_up_read, NULL,
                                                on_up_event, m);
    if (!uc) {
        settle(m, MIRROR_R_ERROR, "connect failed");
        return;
    }
    /* upstream.c's txn field marks a lent conn; its owner here is a mirror */
    uc->txn = (struct txn *)(void *)m;
    m->uc = uc;
    event_assign(&m->timer, l->base, -1, 0, on_deadline, m);
    event_add(&m->timer, loop_timeout(l, m->snap->cfg->mirror.timeout_ms));
    m->timer_armed = true;
    if (uc->connected)
        on_connected(m);
}

/* The turn after the primary's end (mirror_primary_end). */
static void on_start(evutil_socket_t fd, short what, void *arg)
{
    struct mirror *m = arg;
    (void)fd;
    (void)what;
    CHECK(m->magic == MIRROR_MAGIC);
    m->timer_armed = false;
    if (m->settled)
        return;
    if (m->tab->loop->stopping) {
        settle_as(m, MIRROR_R_DROPPED, "weir is stopping", false);
        return;
    }
    connect_shadow(m);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct mirror *m = arg;
    (void)fd;
    (void)what;
    CHECK(m->magic == MIRROR_MAGIC);
    m->timer_armed = false;
    settle(m, MIRROR_R_DROPPED, "the shadow was too slow");
}

static void on_hash_scratch(void *arg, const char *p, size_t n)
{
    mirror_side_body(arg, p, n);
}

/* The shadow answered whole. */
static void shadow_done(struct mirror *m, bool reusable)
{
    CHECK(m->primary_done); /* the exchange starts after the primary's end */
    exchange_end(m, reusable);
    m->state = MIR_S_DONE;
    pair(m);
}

/* Returns true when the response head was read (the body follows). */
static bool read_head(struct mirror *m)
{
    struct evbuffer *in = m->uc->cn->in;
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return false;
        size_t n = len < MIRROR_RES_HEAD_MAX ? len : MIRROR_RES_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        size_t head_len = 0;
        const char *err = NULL;
        enum http1_scan_result r = http1_scan_head(&m->scan, p, n, &head_len, &err);
        if (r == H1_SCAN_MORE) {
            if (len >= MIRROR_RES_HEAD_MAX)
                settle(m, MIRROR_R_ERROR, "response head too large");
            return false;
        }
        if (r == H1_SCAN_BAD) {
            settle(m, MIRROR_R_ERROR, err);
            return false;
        }
        if (m->res_head_cap < head_len) {
            free(m->res_head);
            m->res_head_cap = head_len < 1024 ? 1024 : head_len;
            m->res_head = xmalloc(m->res_head_cap);
        }
        evbuffer_remove(in, m->res_head, head_len);
        memset(&m->scan, 0, sizeof(m->scan));
        /* the worker's one array: the fields are only read right below */
        m->res.headers = m->tab->res_headers;
        m->res.max_headers = MIRROR_RES_HEADERS_MAX;
        if (http1_parse_response(&m->res, m->res_head, head_len, m->head_request, &err) < 0) {
            settle(m, MIRROR_R_ERROR, err);
            return false;
        }
        int st = m->res.status;
        if (st >= 100 && st < 200 && st != 101)
            continue; /* interim */
        if (st == 101) {
            settle(m, MIRROR_R_ERROR, "101 to a request that did not ask for it");
            return false;
        }
        const struct config_mirror *mc = &m->snap->cfg->mirror;
        mirror_side_head(&m->b, st, (const char *const *)mc->compare_headers,
                         mc->n_compare_headers, m->res.headers, m->res.n_headers);
        m->res.headers = NULL;
        m->res.n_headers = 0;
        m->res_remaining = m->res.content_length;
        http1_chunked_init(&m->res_chunk);
        m->state = MIR_S_RES_BODY;
        return true;
    }
}

/* Hash what arrived of the body; true when it is complete. */
static bool read_body(struct mirror *m, bool eof)
{
    struct evbuffer *in = m->uc->cn->in;
    switch (m->res.framing) {
    case H1_F_NONE:
        return true;
    case H1_F_LENGTH: {
        size_t n = evbuffer_get_length(in);
        if (n > m->res_remaining)
            n = (size_t)m->res_remaining;
        evbuffer_remove_buffer(in, m->scratch, n);
        m->res_remaining -= n;
        break;
    }
    case H1_F_CHUNKED: {
        const char *err = NULL;
        int r = http1_chunked_step(&m->res_chunk, in, m->scratch, false, SIZE_MAX, &err);
        if (r < 0) {
            settle(m, MIRROR_R_ERROR, err);
            return false;
        }
        each_span(m->scratch, 0, on_hash_scratch, &m->b);
        evbuffer_drain(m->scratch, evbuffer_get_length(m->scratch));
        return r == 1;
    }
    case H1_F_CLOSE:
        evbuffer_add_buffer(m->scratch, in);
        break;
    }
    each_span(m->scratch, 0, on_hash_scratch, &m->b);
    evbuffer_drain(m->scratch, evbuffer_get_length(m->scratch));
    if (m->res.framing == H1_F_LENGTH)
        return m->res_remaining == 0;
    return eof; /* close-delimited */
}

/* New bytes from the shadow (eof: and its side ended cleanly). */
static void shadow_input(struct mirror *m, bool eof)
{
    if (m->state == MIR_S_HEAD && !read_head(m)) {
        if (eof && !m->settled)
            settle(m, MIRROR_R_ERROR, "closed before a response");
        return;
    }
    if (m->state != MIR_S_RES_BODY)
        return;
    if (!read_body(m, eof)) {
        if (eof && !m->settled)
            settle(m, MIRROR_R_ERROR, "closed before the body was complete");
        return;
    }
    bool reusable = !eof && m->res.keep_alive && m->res.framing != H1_F_CLOSE &&
                    evbuffer_get_length(m->uc->cn->in) == 0 &&
                    evbuffer_get_length(m->uc->cn->out) == 0;
    shadow_done(m, reusable);
}

static void on_up_read(struct conn *cn, void *arg)
{
    struct mirror *m = arg;
    (void)cn;
    CHECK(m->magic == MIRROR_MAGIC);
    if (!m->settled && m->uc)
        shadow_input(m, false);
}

static void on_up_event(struct conn *cn, short what, void *arg)
{
    struct mirror *m = arg;
    (void)cn;
    CHECK(m->magic == MIRROR_MAGIC);
    if (m->settled || !m->uc)
        return;
    if (what & CONN_CONNECTED) {
        on_connected(m);
        return;
    }
    if (!m->uc->connected) {
        settle(m, MIRROR_R_ERROR, (what & CONN_TIMEOUT) ? "connect timeout" : "connect failed");
        return;
    }
    if (what & CONN_TIMEOUT) {
        settle(m, MIRROR_R_DROPPED, "the shadow was too slow");
        return;
    }
    if (what & CONN_ERROR) {
        settle(m, MIRROR_R_ERROR, "connection reset");
        return;
    }
    shadow_input(m, true); /* EOF: bytes may have come with it */
}

void mirror_table_close_all(struct mirror_table *tab)
{
    CHECK(tab->magic == MIRROR_TABLE_MAGIC);
    struct mirror *m = tab->all;
    while (m) {
        struct mirror *next = m->next;
        if (!m->settled)
            settle_as(m, MIRROR_R_DROPPED, "weir is stopping", false);
        m = next;
    }
}

/* ---- readers (main thread) --------------------------------------------- */

void mirror_counts(const struct vstats *vs, uint64_t out[MIRROR_R_COUNT])
{
    memset(out, 0, MIRROR_R_COUNT * sizeof(out[0]));
    for (size_t w = 0; w < WORKERS_MAX; w++)
        for (int r = 0; r < MIRROR_R_COUNT; r++)
            out[r] += atomic_load_explicit(&vs->slots[w].mirror[r], memory_order_relaxed);
}

uint64_t mirror_inflight(void)
{
    uint64_t n = 0;
    for (size_t w = 0; w < WORKERS_MAX; w++)
        n += atomic_load_explicit(&inflight_gauge[w], memory_order_relaxed);
    return n;
}

size_t mirror_differences(struct mirror_diff *out, size_t max)
{
    struct mirror_ring *r[WORKERS_MAX];
    for (size_t w = 0; w < WORKERS_MAX; w++)
        r[w] = &rings[w];
    return mirror_ring_read(r, WORKERS_MAX, out, max);
}

static bool has_counts(const uint64_t c[MIRROR_R_COUNT])
{
    for (int r = 0; r < MIRROR_R_COUNT; r++)
        if (c[r])
            return true;
    return false;
}

bool mirror_is_shown(const struct vstats *vs, const struct config *cfg,
                     const uint64_t c[MIRROR_R_COUNT])
{
    const struct config_mirror *mc = cfg ? &cfg->mirror : NULL;
    return has_counts(c) || (mc && mc->version && strcmp(mc->version, vs->name) == 0);
}

/* The divergence watch (main thread only). */
static struct {
    uint64_t at_ms;                       /* start of the current window */
    uint64_t base[METRICS_MAX_VSTATS][2]; /* match, differ at its start */
    double announced[METRICS_MAX_VSTATS]; /* differ rate last published */
} watch;

void mirror_tick(uint64_t now_ms)
{
    if (watch.at_ms && now_ms - watch.at_ms < MIRROR_EVENT_WINDOW_MS)
        return;
    watch.at_ms = now_ms;
    size_t n = metrics_vstats_count();
    for (size_t i = 0; i < n && i < METRICS_MAX_VSTATS; i++) {
        const struct vstats *vs = metrics_vstats_at(i);
        uint64_t c[MIRROR_R_COUNT];
        mirror_counts(vs, c);
        uint64_t dm = c[MIRROR_R_MATCH] - watch.base[i][0];
        uint64_t dd = c[MIRROR_R_DIFFER] - watch.base[i][1];
        if (dm + dd < MIRROR_EVENT_MIN)
            continue; /* too few to judge: the window grows until there are */
        watch.base[i][0] = c[MIRROR_R_MATCH];
        watch.base[i][1] = c[MIRROR_R_DIFFER];
        double rate = (double)dd / (double)(dm + dd);
        double prev = watch.announced[i];
        if (rate - prev < 0.10 && prev - rate < 0.10)
            continue;
        watch.announced[i] = rate;
        char members[256];
        snprintf(members, sizeof(members),
                 ",\"version\":\"%s\",\"differ_rate\":%.4f,\"previous_rate\":%.4f,"
                 "\"compared\":%llu,\"window_s\":%u",
                 vs->name, rate, prev, (unsigned long long)(dm + dd),
                 MIRROR_EVENT_WINDOW_MS / 1000);
        log_info("mirror: %s's answers differ from the primary's in %.1f %% of %llu compared "
                 "requests (was %.1f %%)",
                 vs->name, 100.0 * rate,
                 (unsigned long long)(dm + dd), 100.0 * prev);
        events_publish("mirror", snapshot_generation(), members);
    }
}

static void hex(struct json_buf *b, const uint8_t *h, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char s[2 * MIRROR_HASH_LEN + 1];
    for (size_t i = 0; i < n && i < MIRROR_HASH_LEN; i++) {
        s[2 * i] = digits[h[i] >> 4];
        s[2 * i + 1] = digits[h[i] & 15];
    }
    s[2 * n] = '\0';
    json_buf_str(b, s);
}

static void render_hval(struct json_buf *b, const struct mirror_hval *h)
{
    if (!h->present)
        json_buf_puts(b, "null");
    else
        json_buf_strn(b, h->v, h->len);
}

static void render_side(struct json_buf *b, const struct mirror_diff *d, bool shadow)
{
    json_buf_printf(b, "{\"status\":%d,\"headers\":{", shadow ? d->status_b : d->status_a);
    for (uint32_t i = 0; i < d->n_headers; i++) {
        if (i)
            json_buf_puts(b, ",");
        json_buf_key(b, d->hname[i]);
        render_hval(b, shadow ? &d->hb[i] : &d->ha[i]);
    }
    json_buf_puts(b, "},\"body_sha256\":");
    hex(b, shadow ? d->hash_b : d->hash_a, MIRROR_HASH_LEN);
    json_buf_printf(b, ",\"body_bytes\":%llu}",
                    (unsigned long long)(shadow ? d->bytes_b : d->bytes_a));
}

static void render_diff(struct json_buf *b, const struct mirror_diff *d)
{
    char t[40];
    state_format_time(d->time_ms, t, sizeof(t));
    json_buf_puts(b, "{\"time\":");
    json_buf_str(b, t);
    json_buf_puts(b, ",\"version\":");
    json_buf_str(b, d->version);
    json_buf_puts(b, ",\"primary_version\":");
    json_buf_str(b, d->primary);
    json_buf_puts(b, ",\"method\":");
    json_buf_str(b, d->method);
    json_buf_puts(b, ",\"target\":");
    json_buf_str(b, d->target);
    json_buf_puts(b, ",\"differs\":[");
    bool first = true;
    if (d->what & MIRROR_D_STATUS) {
        json_buf_puts(b, "\"status\"");
        first = false;
    }
    for (uint32_t i = 0; i < d->n_headers; i++) {
        const struct mirror_hval *x = &d->ha[i], *y = &d->hb[i];
        if (x->present == y->present && x->full_len == y->full_len && x->len == y->len &&
            memcmp(x->v, y->v, x->len) == 0)
            continue;
        char what[MIRROR_HNAME_MAX + 8];
        snprintf(what, sizeof(what), "header %s", d->hname[i]);
        if (!first)
            json_buf_puts(b, ",");
        json_buf_str(b, what);
        first = false;
    }
    if (d->what & MIRROR_D_BODY) {
        if (!first)
            json_buf_puts(b, ",");
        json_buf_puts(b, "\"body\"");
    }
    json_buf_puts(b, "],\"primary\":");
    render_side(b, d, false);
    json_buf_puts(b, ",\"shadow\":");
    render_side(b, d, true);
    json_buf_puts(b, "}");
}

static void render_strv(struct json_buf *b, char *const *v, size_t n)
{
    json_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            json_buf_puts(b, ",");
        json_buf_str(b, v[i]);
    }
    json_buf_puts(b, "]");
}

void mirror_render(struct json_buf *b, const struct config *cfg)
{
    const struct config_mirror *mc = &cfg->mirror;
    char pct[16];
    util_format_bp(mc->percent_bp, pct, sizeof(pct));
    json_buf_printf(b, "\"mirror\":{\"enabled\":%s,\"version\":", mc->enabled ? "true" : "false");
    if (mc->version)
        json_buf_str(b, mc->version);
    else
        json_buf_puts(b, "null");
    /* never configured (validation wants a method): what `mirror set` would use */
    static char *const def_methods[] = {"GET", "HEAD"}, *const def_headers[] = {"content-type"};
    bool unset = mc->n_methods == 0;
    json_buf_printf(b, ",\"percent\":%s,\"methods\":", pct);
    if (unset)
        render_strv(b, def_methods, 2);
    else
        render_strv(b, mc->methods, mc->n_methods);
    json_buf_printf(b, ",\"max_body\":%u,\"max_inflight\":%u,\"timeout_ms\":%u,"
                       "\"compare\":{\"status\":%s,\"headers\":",
                    mc->max_body_bytes, mc->max_inflight, mc->timeout_ms,
                    mc->compare_status ? "true" : "false");
    if (unset)
        render_strv(b, def_headers, 1);
    else
        render_strv(b, mc->compare_headers, mc->n_compare_headers);
    json_buf_printf(b, ",\"body\":%s},\"in_flight\":%llu,\"counts\":{",
                    mc->compare_body ? "true" : "false", (unsigned long long)mirror_inflight());
    bool first = true;
    for (size_t i = 0; i < metrics_vstats_count(); i++) {
        const struct vstats *vs = metrics_vstats_at(i);
        uint64_t c[MIRROR_R_COUNT];
        mirror_counts(vs, c);
        if (!mirror_is_shown(vs, cfg, c))
            continue;
        if (!first)
            json_buf_puts(b, ",");
        first = false;
        json_buf_key(b, vs->name);
        json_buf_puts(b, "{");
        for (int r = 0; r < MIRROR_R_COUNT; r++)
            json_buf_printf(b, "%s\"%s\":%llu", r ? "," : "",
                            mirror_result_name((enum mirror_result)r),
                            (unsigned long long)c[r]);
        uint64_t compared = c[MIRROR_R_MATCH] + c[MIRROR_R_DIFFER];
        json_buf_printf(b, ",\"differ_rate\":%.4f}",
                        compared ? (double)c[MIRROR_R_DIFFER] / (double)compared : 0.0);
    }
    json_buf_puts(b, "},\"differences\":[");
    struct mirror_diff *d = xcalloc(MIRROR_DIFFS_KEPT, sizeof(*d));
    size_t n = mirror_differences(d, MIRROR_DIFFS_KEPT);
    for (size_t i = 0; i < n; i++) {
        if (i)
            json_buf_puts(b, ",");
        render_diff(b, &d[i]);
    }
    free(d);
    json_buf_puts(b, "]}");
}
