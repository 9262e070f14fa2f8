/*
 * bench_h2.c — see bench_h2.h. weir-bench over HTTP/2 (h2c, prior knowledge).
 *
 * A connection (struct h2_sess) is one socket and one nghttp2 client
 * session carrying up to --streams requests at once. Each of its streams
 * is a slot (struct h2_slot) that behaves like one HTTP/1.1 connection of
 * bench_load.c: at most one request outstanding; closed loop: the next one
 * as soon as the answer is complete; open loop (-R): slot i's k-th request
 * is due at t0 + intended(i, k) over conns x streams slots, a request due
 * while its slot is busy or its connection down is sent once it can be,
 * its latency counted from the due time (coordinated omission corrected).
 *
 *   CLOSED ──connect()──▶ CONNECTING ──ok──▶ UP (SETTINGS sent; slots send)
 *     ▲  ▲                    │fail            │
 *     │  └──backoff timer─────┘                │ EOF, reset, GOAWAY drained,
 *     └────────────────────────────────────────┘ protocol error
 *
 * A stream's answer is complete at END_STREAM: status from :status, the
 * version from --version-header, with --grpc the grpc-status from the head
 * (Trailers-Only) or the trailers. A stream reset by the server counts as
 * reset, one refused (REFUSED_STREAM, or above a GOAWAY's last stream) as
 * closed, one past --timeout as timeout (and is cancelled). When the
 * connection fails, every stream in flight on it fails.
 *
 * End of run, grace and the hard stop follow bench_load.c exactly.
 */
#include "bench_h2.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "bench_sched.h"
#include "util.h"

#define SESS_MAGIC 0x68327373u   /* "h2ss" */
#define WORKER_MAGIC 0x776b7272u /* "wkrr", as bench_load.c */
#define READ_BUF_SIZE (64 * 1024)
#define TICK_US 20000
#define BACKOFF_MIN_MS 1
#define BACKOFF_MAX_MS 250
#define MAX_NV 72

enum sess_state { SESS_CLOSED = 0,
                  SESS_CONNECTING,
                  SESS_UP };

struct h2_sess;

struct h2_slot {
    struct h2_sess *s;   /* borrowed */
    uint32_t index;      /* slot number in the run (for the schedule) */
    int32_t sid;         /* stream in flight, 0 none */
    struct event *timer; /* owned: open-loop due time */
    uint64_t origin_ns, sent_ns, next_k;
    uint32_t step;
    int slot;        /* version slot of the answer, -1 yet */
    unsigned status; /* :status */
    int grpc_status; /* -1: none seen */
    bool busy;
    bool rx;   /* answer head arrived */
    bool done; /* END_STREAM from the server */
    bool timer_armed;
    size_t body_off; /* --grpc: request body bytes sent */
};

struct h2_sess {
    uint32_t magic;
    enum sess_state state;
    struct bench_load_worker *w;                   /* borrowed */
    int fd;                                        /* owned, -1 when CLOSED */
    nghttp2_session *ng;                           /* owned while UP */
    struct event *ev_read, *ev_write, *ev_backoff; /* owned */
    struct h2_slot *slots;                         /* owned, h2.streams */
    uint64_t conn_ns;                              /* connect start */
    uint32_t served, backoff_ms, busy;
    bool goaway;
    bool got_frame; /* the server sent an HTTP/2 frame on this socket */
};

struct h2_worker {
    struct h2_sess *sess; /* owned array */
    size_t n_sess;
};

static struct {
    nghttp2_nv nv[MAX_NV];
    size_t n_nv;
    char *strings; /* owned: lowercased names and values of nv */
    uint8_t body[32];
    size_t body_len;
    uint32_t streams;
    bool grpc;
    uint32_t total_slots;
} h2;

/* ---- setup ---- */

static nghttp2_nv mknv(const char *n, size_t nl, const char *v, size_t vl)
{
    return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, nl, vl,
                        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

int bench_h2_setup(const char *target, const char *authority, const char *const *headers,
                   size_t n_headers, uint32_t streams, bool grpc, char *err, size_t errlen)
{
    size_t cap = strlen(target) + strlen(authority) + 64;
    for (size_t i = 0; i < n_headers; i++)
        cap += strlen(headers[i]) + 2;
    if (n_headers + 8 > MAX_NV) {
        snprintf(err, errlen, "too many headers for --h2");
        return -1;
    }
    h2.strings = xmalloc(cap);
    char *p = h2.strings;
    const char *auth = authority;
    size_t auth_len = strlen(authority);
    size_t n = 4; /* the pseudo-headers go first */
    for (size_t i = 0; i < n_headers; i++) {
        const char *colon = strchr(headers[i], ':');
        CHECK(colon);
        size_t nl = (size_t)(colon - headers[i]);
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        char *name = p;
        for (size_t k = 0; k < nl; k++)
            *p++ = (char)((headers[i][k] >= 'A' && headers[i][k] <= 'Z') ? headers[i][k] + 32
                                                                         : headers[i][k]);
        *p++ = '\0';
        char *val = p;
        memcpy(p, v, vl);
        p += vl;
        *p++ = '\0';
        if (strcmp(name, "host") == 0) { /* RFC 9113 §8.3.1: :authority */
            auth = val;
            auth_len = vl;
            continue;
        }
        /* Connection-specific fields are malformed in HTTP/2 (§8.2.2). */
        if (strcmp(name, "connection") == 0 || strcmp(name, "keep-alive") == 0 ||
            strcmp(name, "proxy-connection") == 0 || strcmp(name, "transfer-encoding") == 0 ||
            strcmp(name, "upgrade") == 0) {
            snprintf(err, errlen, "-H %s: not allowed in HTTP/2", headers[i]);
            return -1;
        }
        h2.nv[n++] = mknv(name, nl, val, vl);
    }
    h2.nv[0] = mknv(":method", 7, grpc ? "POST" : "GET", grpc ? 4 : 3);
    h2.nv[1] = mknv(":scheme", 7, "http", 4);
    h2.nv[2] = mknv(":authority", 10, auth, auth_len);
    h2.nv[3] = mknv(":path", 5, target, strlen(target));
    bool ua = false;
    for (size_t i = 4; i < n; i++)
        ua = ua || (h2.nv[i].namelen == 10 && memcmp(h2.nv[i].name, "user-agent", 10) == 0);
    if (!ua)
        h2.nv[n++] = mknv("user-agent", 10, "weir-bench/" WEIR_VERSION,
                          strlen("weir-bench/" WEIR_VERSION));
    if (grpc) {
        h2.nv[n++] = mknv("content-type", 12, "application/grpc", 16);
        h2.nv[n++] = mknv("te", 2, "trailers", 8);
        /* One message: not compressed, 10 bytes. */
        static const char msg[] = "weir-bench";
        h2.body[0] = 0;
        h2.body[1] = h2.body[2] = h2.body[3] = 0;
        h2.body[4] = (uint8_t)(sizeof(msg) - 1);
        memcpy(h2.body + 5, msg, sizeof(msg) - 1);
        h2.body_len = 5 + sizeof(msg) - 1;
    }
    h2.n_nv = n;
    h2.streams = streams;
    h2.grpc = grpc;
    h2.total_slots = bench_load_shared.conns * streams;
    return 0;
}

void bench_h2_dispose(void)
{
    free(h2.strings);
    h2.strings = NULL;
}

/* ---- helpers ---- */

static void ns_to_tv(uint64_t ns, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ns / 1000000000u);
    tv->tv_usec = (suseconds_t)((ns % 1000000000u) / 1000u);
}

static uint64_t off_now(const struct bench_load_worker *w)
{
    return w->now_ns > bench_load_shared.t0_ns ? w->now_ns - bench_load_shared.t0_ns : 0;
}

static uint64_t due_off(const struct h2_slot *sl, uint64_t k)
{
    return bench_sched_intended_ns(bench_load_shared.rate_per_s, h2.total_slots, sl->index, k);
}

static bool has_backlog(const struct h2_slot *sl, uint64_t upto_off)
{
    return bench_load_shared.rate_per_s > 0 && due_off(sl, sl->next_k) < sl->s->w->end_off_ns &&
           due_off(sl, sl->next_k) <= upto_off;
}

static uint32_t cur_step(void)
{
    return atomic_load_explicit(&bench_load_shared.step, memory_order_relaxed);
}

static struct h2_worker *hw_of(struct bench_load_worker *w)
{
    return w->h2;
}

static void sess_connect(struct h2_sess *s);
static void sess_flush(struct h2_sess *s);
static void slot_next(struct h2_slot *sl);
static void worker_check_done(struct bench_load_worker *w);

/* ---- slots ---- */

/* sl's request ended (answer or failure): free the slot. */
static void slot_release(struct h2_slot *sl)
{
    struct h2_sess *s = sl->s;
    if (sl->sid && s->ng)
        nghttp2_session_set_stream_user_data(s->ng, sl->sid, NULL);
    sl->sid = 0;
    sl->busy = false;
    s->busy--;
    s->w->in_flight--;
}

static void slot_fail(struct h2_slot *sl, enum bench_err kind)
{
    struct bench_load_worker *w = sl->s->w;
    bench_report_error(&w->report, sl->slot >= 0 ? sl->slot : BENCH_REPORT_UNKNOWN, off_now(w),
                       sl->step, kind, 1);
    slot_release(sl);
}

static ssize_t on_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct h2_slot *sl = src->ptr;
    (void)ng, (void)id, (void)user;
    size_t n = h2.body_len - sl->body_off;
    if (n > length)
        n = length;
    memcpy(buf, h2.body + sl->body_off, n);
    sl->body_off += n;
    if (sl->body_off == h2.body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void slot_send(struct h2_slot *sl, uint64_t origin_ns)
{
    struct h2_sess *s = sl->s;
    struct bench_load_worker *w = s->w;
    sl->origin_ns = origin_ns;
    sl->sent_ns = w->now_ns;
    sl->slot = -1;
    sl->status = 0;
    sl->grpc_status = -1;
    sl->rx = sl->done = false;
    sl->body_off = 0;
    sl->step = cur_step();
    nghttp2_data_provider prd = {.source.ptr = sl, .read_callback = on_read_body};
    int32_t sid = nghttp2_submit_request(s->ng, NULL, h2.nv, h2.n_nv, h2.grpc ? &prd : NULL, sl);
    sl->busy = true;
    s->busy++;
    w->in_flight++;
    if (sid < 0) {
        /* Stream ids used up: this connection is done; a new one follows. */
        slot_fail(sl, BENCH_ERR_CLOSED);
        s->goaway = true;
        return;
    }
    sl->sid = sid;
}

/* A free slot on an UP connection: send now, later, or never. */
static void slot_next(struct h2_slot *sl)
{
    struct h2_sess *s = sl->s;
    struct bench_load_worker *w = s->w;
    if (w->stopped || sl->busy || s->state != SESS_UP || s->goaway)
        return;
    uint64_t now = off_now(w);
    if (bench_load_shared.rate_per_s <= 0) {
        if (now < w->end_off_ns && !w->draining)
            slot_send(sl, w->now_ns);
        return;
    }
    uint64_t due = due_off(sl, sl->next_k);
    if (due >= w->end_off_ns)
        return;
    if (due <= now) {
        if (sl->timer_armed)
            bench_report_send_lag(&w->report, now - due);
        sl->timer_armed = false;
        sl->next_k++;
        slot_send(sl, bench_load_shared.t0_ns + due);
        return;
    }
    struct timeval tv;
    ns_to_tv(due - now, &tv);
    sl->timer_armed = true;
    event_add(sl->timer, &tv);
}

static void on_slot_timer(evutil_socket_t fd, short what, void *arg)
{
    struct h2_slot *sl = arg;
    (void)fd, (void)what;
    CHECK(sl->s->magic == SESS_MAGIC);
    sl->s->w->now_ns = bench_load_now_ns();
    sl->timer_armed = false;
    slot_next(sl);
    sess_flush(sl->s);
}

/* ---- nghttp2 callbacks ---- */

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags, (void)user;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_slot *sl = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!sl)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        unsigned st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (unsigned)(value[i] - '0');
        /* 1xx heads precede the answer (RFC 9113 §8.1). */
        if (st >= 200)
            sl->status = st;
        return 0;
    }
    if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int g = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++)
            g = g * 10 + (value[i] - '0');
        sl->grpc_status = g;
        return 0;
    }
    if (sl->slot < 0 && namelen == bench_load_shared.vh_len &&
        strncasecmp((const char *)name, bench_load_shared.version_header, namelen) == 0) {
        size_t len = valuelen < BENCH_SCHED_NAME_MAX - 1 ? valuelen : BENCH_SCHED_NAME_MAX - 1;
        if (len)
            sl->slot = bench_report_version(&sl->s->w->report, (const char *)value, len);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_sess *s = user;
    s->got_frame = true;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        s->goaway = true;
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_slot *sl = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!sl)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS)
        sl->rx = true;
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
        sl->done = true;
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct h2_sess *s = user;
    struct bench_load_worker *w = s->w;
    struct h2_slot *sl = nghttp2_session_get_stream_user_data(ng, id);
    if (!sl || !sl->busy || sl->sid != id)
        return 0;
    if (sl->done && sl->status) {
        uint64_t lat = w->now_ns > sl->origin_ns ? w->now_ns - sl->origin_ns : 0;
        int slot = sl->slot >= 0 ? sl->slot : BENCH_REPORT_UNKNOWN;
        if (h2.grpc)
            bench_report_grpc_response(&w->report, slot, off_now(w), sl->step, lat, sl->status,
                                       sl->grpc_status < 0 ? 2 /* UNKNOWN */ : sl->grpc_status);
        else
            bench_report_response(&w->report, slot, off_now(w), sl->step, lat, sl->status);
        s->served++;
        s->backoff_ms = 0;
        slot_release(sl);
    } else {
        slot_fail(sl, code == NGHTTP2_REFUSED_STREAM ? BENCH_ERR_CLOSED
                      : sl->rx                       ? BENCH_ERR_RESET
                      : code == NGHTTP2_NO_ERROR     ? BENCH_ERR_CLOSED
                                                     : BENCH_ERR_RESET);
    }
    slot_next(sl);
    return 0;
}

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct h2_sess *s = user;
    (void)ng, (void)flags;
    for (;;) {
        ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return NGHTTP2_ERR_WOULDBLOCK;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
}

/* ---- connections ---- */

static void sess_reconnect(struct h2_sess *s, bool backoff)
{
    struct bench_load_worker *w = s->w;
    if (w->stopped)
        return;
    if (w->draining) {
        bool backlog = false;
        for (uint32_t i = 0; i < h2.streams && !backlog; i++)
            backlog = has_backlog(&s->slots[i], UINT64_MAX);
        if (!backlog)
            return;
    }
    if (!backoff) {
        s->backoff_ms = 0;
        sess_connect(s);
        return;
    }
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
    struct timeval tv = {0, (suseconds_t)s->backoff_ms * 1000};
    event_add(s->ev_backoff, &tv);
}

/* Close the socket and session; every stream in flight fails as kind. */
static void sess_close(struct h2_sess *s, enum bench_err kind)
{
    if (s->fd < 0)
        return;
    for (uint32_t i = 0; i < h2.streams; i++) {
        struct h2_slot *sl = &s->slots[i];
        if (sl->busy)
            slot_fail(sl, sl->rx ? BENCH_ERR_RESET : kind);
        event_del(sl->timer);
        sl->timer_armed = false;
    }
    event_del(s->ev_read);
    event_del(s->ev_write);
    if (s->ng)
        nghttp2_session_del(s->ng);
    s->ng = NULL;
    close(s->fd);
    s->fd = -1;
    s->state = SESS_CLOSED;
    s->goaway = false;
    s->got_frame = false;
}

/* The connection failed or ended: close, reconnect (backoff if it never
 * answered anything, so a server that drops us does not make us spin). */
static void sess_drop(struct h2_sess *s, enum bench_err kind)
{
    bool fresh = s->served == 0;
    sess_close(s, kind);
    s->served = 0;
    sess_reconnect(s, fresh);
    if (s->w->draining)
        worker_check_done(s->w);
}

/* Write what nghttp2 has; after a GOAWAY, reconnect once idle. */
static void sess_flush(struct h2_sess *s)
{
    if (s->state != SESS_UP)
        return;
    int rv = nghttp2_session_send(s->ng);
    if (rv != 0) {
        sess_drop(s, BENCH_ERR_RESET);
        return;
    }
    if (nghttp2_session_want_write(s->ng))
        event_add(s->ev_write, NULL);
    if (s->goaway && s->busy == 0) {
        sess_close(s, BENCH_ERR_CLOSED);
        sess_reconnect(s, false);
    }
    if (s->w->draining)
        worker_check_done(s->w);
}

static void sess_connect_failed(struct h2_sess *s)
{
    struct bench_load_worker *w = s->w;
    sess_close(s, BENCH_ERR_CONNECT);
    if (w->preconnect) {
        if (w->pre_pending && --w->pre_pending == 0)
            event_base_loopbreak(w->base);
        return;
    }
    uint64_t now = off_now(w);
    if (bench_load_shared.rate_per_s > 0) {
        uint64_t n = 0;
        for (uint32_t i = 0; i < h2.streams; i++) {
            struct h2_slot *sl = &s->slots[i];
            while (has_backlog(sl, now)) {
                sl->next_k++;
                n++;
            }
        }
        if (n)
            bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now, cur_step(),
                               BENCH_ERR_CONNECT, n);
    } else if (!w->draining) {
        bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now, cur_step(), BENCH_ERR_CONNECT,
                           1);
    }
    sess_reconnect(s, true);
    if (w->draining)
        worker_check_done(w);
}

static void sess_start_slots(struct h2_sess *s)
{
    for (uint32_t i = 0; i < h2.streams; i++)
        slot_next(&s->slots[i]);
    sess_flush(s);
}

static void sess_connected(struct h2_sess *s)
{
    struct bench_load_worker *w = s->w;
    nghttp2_session_callbacks *cb;
    CHECK(nghttp2_session_callbacks_new(&cb) == 0);
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    int rv = nghttp2_session_client_new(&s->ng, cb, s);
    nghttp2_session_callbacks_del(cb);
    CHECK(rv == 0);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    s->state = SESS_UP;
    event_add(s->ev_read, NULL);
    if (w->preconnect) {
        sess_flush(s);
        if (w->pre_pending && --w->pre_pending == 0)
            event_base_loopbreak(w->base);
        return;
    }
    sess_start_slots(s);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct h2_sess *s = arg;
    struct bench_load_worker *w = s->w;
    (void)what;
    CHECK(s->magic == SESS_MAGIC);
    w->now_ns = bench_load_now_ns();
    for (int rounds = 0; rounds < 8 && s->state == SESS_UP; rounds++) {
        ssize_t n = recv(fd, w->rbuf, READ_BUF_SIZE, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            sess_drop(s, n == 0 ? BENCH_ERR_CLOSED : BENCH_ERR_RESET);
            return;
        }
        /* An HTTP/1.x server answers the preface with a 400: not HTTP/2. */
        if (!s->got_frame && n >= 5 && memcmp(w->rbuf, "HTTP/", 5) == 0) {
            sess_drop(s, BENCH_ERR_PARSE);
            return;
        }
        ssize_t k = nghttp2_session_mem_recv(s->ng, (const uint8_t *)w->rbuf, (size_t)n);
        if (k < 0) {
            sess_drop(s, BENCH_ERR_PARSE);
            return;
        }
        if ((size_t)n < READ_BUF_SIZE)
            break;
    }
    sess_flush(s);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct h2_sess *s = arg;
    (void)what;
    CHECK(s->magic == SESS_MAGIC);
    s->w->now_ns = bench_load_now_ns();
    if (s->state == SESS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err)
            sess_connect_failed(s);
        else
            sess_connected(s);
        return;
    }
    sess_flush(s);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
    struct h2_sess *s = arg;
    (void)fd, (void)what;
    CHECK(s->magic == SESS_MAGIC);
    s->w->now_ns = bench_load_now_ns();
    if (s->state == SESS_CLOSED)
        sess_connect(s);
}

static void sess_connect(struct h2_sess *s)
{
    struct bench_load_worker *w = s->w;
    CHECK(s->state == SESS_CLOSED && s->fd < 0);
    int fd = socket(bench_load_shared.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0) {
        sess_connect_failed(s);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->fd = fd;
    s->conn_ns = w->now_ns;
    event_assign(s->ev_read, w->base, fd, EV_READ | EV_PERSIST, on_readable, s);
    event_assign(s->ev_write, w->base, fd, EV_WRITE, on_writable, s);
    if (connect(fd, (const struct sockaddr *)&bench_load_shared.addr,
                bench_load_shared.addr_len) == 0) {
        sess_connected(s);
        return;
    }
    if (errno != EINPROGRESS) {
        sess_connect_failed(s);
        return;
    }
    s->state = SESS_CONNECTING;
    event_add(s->ev_write, NULL);
}

/* ---- workers ---- */

static void worker_check_done(struct bench_load_worker *w)
{
    if (!w->draining || w->in_flight || w->stopped)
        return;
    struct h2_worker *hw = hw_of(w);
    for (size_t i = 0; i < hw->n_sess; i++)
        for (uint32_t k = 0; k < h2.streams; k++)
            if (has_backlog(&hw->sess[i].slots[k], UINT64_MAX))
                return;
    w->stopped = true;
    event_base_loopbreak(w->base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct bench_load_worker *w = arg;
    struct h2_worker *hw = hw_of(w);
    (void)fd, (void)what;
    CHECK(w->magic == WORKER_MAGIC);
    if (w->preconnect) {
        event_base_loopbreak(w->base);
        return;
    }
    w->now_ns = bench_load_now_ns();
    uint64_t now = off_now(w);
    if (atomic_load_explicit(&bench_load_shared.abort_now, memory_order_relaxed)) {
        w->stopped = true;
        event_base_loopbreak(w->base);
        return;
    }
    w->end_off_ns = atomic_load_explicit(&bench_load_shared.end_off_ns, memory_order_relaxed);
    for (size_t i = 0; i < hw->n_sess; i++) {
        struct h2_sess *s = &hw->sess[i];
        if (s->state == SESS_CONNECTING &&
            w->now_ns - s->conn_ns > bench_load_shared.timeout_ns) {
            sess_connect_failed(s);
            continue;
        }
        if (s->state != SESS_UP)
            continue;
        bool cancelled = false;
        for (uint32_t k = 0; k < h2.streams; k++) {
            struct h2_slot *sl = &s->slots[k];
            if (!sl->busy || w->now_ns - sl->sent_ns <= bench_load_shared.timeout_ns)
                continue;
            int32_t sid = sl->sid;
            slot_fail(sl, BENCH_ERR_TIMEOUT);
            if (sid)
                nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
            cancelled = true;
            slot_next(sl);
        }
        if (cancelled)
            sess_flush(s);
    }
    if (now >= w->end_off_ns) {
        if (!w->draining) {
            w->draining = true;
            for (size_t i = 0; i < hw->n_sess; i++)
                for (uint32_t k = 0; k < h2.streams; k++)
                    if (!has_backlog(&hw->sess[i].slots[k], UINT64_MAX))
                        event_del(hw->sess[i].slots[k].timer);
        }
        if (now >= w->end_off_ns + bench_load_shared.grace_ns) {
            w->stopped = true;
            event_base_loopbreak(w->base);
            return;
        }
        worker_check_done(w);
    }
}

/* What the hard stop cut off counts as timed out; close every socket. */
static void worker_finish(struct bench_load_worker *w)
{
    struct h2_worker *hw = hw_of(w);
    w->now_ns = bench_load_now_ns();
    uint64_t now = off_now(w);
    uint32_t step = cur_step();
    for (size_t i = 0; i < hw->n_sess; i++) {
        struct h2_sess *s = &hw->sess[i];
        for (uint32_t k = 0; k < h2.streams; k++) {
            struct h2_slot *sl = &s->slots[k];
            if (sl->busy)
                slot_fail(sl, BENCH_ERR_TIMEOUT);
            if (bench_load_shared.rate_per_s > 0) {
                uint64_t n = 0;
                while (due_off(sl, sl->next_k) < w->end_off_ns) {
                    sl->next_k++;
                    n++;
                }
                if (n)
                    bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now, step,
                                       BENCH_ERR_TIMEOUT, n);
            }
        }
        w->stopped = true; /* no reconnects from here */
        sess_close(s, BENCH_ERR_TIMEOUT);
        event_del(s->ev_backoff);
    }
}

void *bench_h2_worker_main(void *arg)
{
    struct bench_load_worker *w = arg;
    struct h2_worker *hw = hw_of(w);
    CHECK(w->magic == WORKER_MAGIC);
    if (bench_load_shared.rate_per_s > 0)
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    w->preconnect = true;
    w->now_ns = bench_load_now_ns();
    w->pre_pending = hw->n_sess;
    for (size_t i = 0; i < hw->n_sess; i++)
        sess_connect(&hw->sess[i]);
    if (w->pre_pending) {
        struct timeval tv;
        ns_to_tv(bench_load_shared.timeout_ns, &tv);
        event_add(w->tick, &tv);
        event_base_dispatch(w->base);
        event_del(w->tick);
    }
    w->preconnect = false;
    pthread_barrier_wait(&bench_load_shared.connected);
    pthread_barrier_wait(&bench_load_shared.go);

    w->now_ns = bench_load_now_ns();
    w->end_off_ns = atomic_load(&bench_load_shared.end_off_ns);
    struct timeval tick = {0, TICK_US};
    event_add(w->tick, &tick);
    for (size_t i = 0; i < hw->n_sess; i++) {
        struct h2_sess *s = &hw->sess[i];
        if (s->state == SESS_UP)
            sess_start_slots(s);
        else if (s->state == SESS_CLOSED)
            sess_connect(s);
    }
    if (!w->stopped)
        event_base_dispatch(w->base);
    worker_finish(w);
    atomic_fetch_add(&bench_load_shared.workers_done, 1);
    return NULL;
}

struct bench_load_worker *bench_h2_worker_new(unsigned id, size_t n_conns, double planned_s,
                                              size_t n_steps)
{
    /* A bench_load worker without HTTP/1.1 connections; its h2 field
     * holds this engine's connections (see hw_of). */
    struct bench_load_worker *w = bench_load_worker_new(id, 0, planned_s, n_steps);
    struct h2_worker *hw = xcalloc(1, sizeof(*hw));
    event_free(w->tick);
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    CHECK(w->tick);
    hw->n_sess = n_conns;
    hw->sess = xcalloc(n_conns ? n_conns : 1, sizeof(*hw->sess));
    for (size_t i = 0; i < n_conns; i++) {
        struct h2_sess *s = &hw->sess[i];
        s->magic = SESS_MAGIC;
        s->w = w;
        s->fd = -1;
        s->ev_read = event_new(w->base, -1, 0, on_readable, s);
        s->ev_write = event_new(w->base, -1, 0, on_writable, s);
        s->ev_backoff = event_new(w->base, -1, 0, on_backoff, s);
        CHECK(s->ev_read && s->ev_write && s->ev_backoff);
        s->slots = xcalloc(h2.streams, sizeof(*s->slots));
        uint32_t conn_no = (uint32_t)(i * bench_load_shared.threads + id);
        for (uint32_t k = 0; k < h2.streams; k++) {
            struct h2_slot *sl = &s->slots[k];
            sl->s = s;
            sl->index = conn_no * h2.streams + k;
            sl->slot = -1;
            sl->timer = event_new(w->base, -1, 0, on_slot_timer, sl);
            CHECK(sl->timer);
        }
    }
    w->h2 = hw;
    return w;
}

void bench_h2_worker_free(struct bench_load_worker *w)
{
    if (!w)
        return;
    struct h2_worker *hw = hw_of(w);
    for (size_t i = 0; i < hw->n_sess; i++) {
        struct h2_sess *s = &hw->sess[i];
        w->stopped = true;
        sess_close(s, BENCH_ERR_TIMEOUT);
        for (uint32_t k = 0; k < h2.streams; k++)
            event_free(s->slots[k].timer);
        free(s->slots);
        event_free(s->ev_read);
        event_free(s->ev_write);
        event_free(s->ev_backoff);
        s->magic = 0;
    }
    free(hw->sess);
    free(hw);
    w->h2 = NULL;
    bench_load_worker_free(w);
}
