/*
 * bench_load.c — see bench_load.h and weir_bench.c's design comment.
 *
 * Connection state machine (one request outstanding at most, no pipelining):
 *
 *   CLOSED ──connect()──▶ CONNECTING ──ok──▶ IDLE ──send──▶ WRITING ─▶ READING
 *     ▲  ▲                    │fail                ▲                    │
 *     │  └──backoff timer─────┘                    └──response, keep-alive┘
 *     └──── Connection: close, EOF, reset, timeout, parse error ─────────┘
 *
 * Closed loop: an IDLE connection sends at once; latency runs from the send.
 * Open loop (-R): connection i's k-th request is due at t0 + intended(i, k)
 * (bench_sched.c). An IDLE connection sends when it is due (timer); one that
 * is busy or reconnecting when requests fall due sends them back to back once
 * it is free, and each one's latency runs from its due time, so a stall shows
 * in the tail (coordinated omission corrected). A failed connect fails every
 * request due by then as a connect error.
 *
 * End of run: at t0 + duration nothing new is sent; requests in flight (and,
 * open loop, requests already due) get a grace period of min(timeout, 2 s);
 * what is left at the hard stop counts as timed out. The hot path allocates
 * nothing: one shared request buffer, one read buffer per worker, llhttp
 * callbacks that only copy the version header into the connection.
 */
#include "bench_load.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <llhttp.h>

#include "bench_sched.h"
#include "util.h"

#define CONN_MAGIC 0x636f6e6eu   /* "conn" */
#define WORKER_MAGIC 0x776b7272u /* "wkrr" */
#define READ_BUF_SIZE (64 * 1024)
#define TICK_US 20000 /* worker housekeeping period */
#define BACKOFF_MIN_MS 1
#define BACKOFF_MAX_MS 250

struct bench_load bench_load_shared;

uint64_t bench_load_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void ns_to_tv(uint64_t ns, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ns / 1000000000u);
    tv->tv_usec = (suseconds_t)((ns % 1000000000u) / 1000u);
}

enum conn_state {
    CONN_S_CLOSED = 0, /* no socket; maybe a backoff timer pending */
    CONN_S_CONNECTING, /* non-blocking connect() in progress */
    CONN_S_IDLE,       /* connected, nothing outstanding */
    CONN_S_WRITING,    /* request partly written */
    CONN_S_READING,    /* request written, response not complete */
};

struct bench_load_conn {
    uint32_t magic;
    enum conn_state state;
    struct bench_load_worker *w; /* borrowed: the owning worker */
    uint32_t index;              /* connection number in the run */
    int fd;                      /* owned; -1 when CLOSED */
    struct event *ev_read;       /* owned; persistent while connected */
    struct event *ev_write;      /* owned; connect completion / partial write */
    struct event *ev_timer;      /* owned; open-loop due time or backoff */
    llhttp_t parser;
    uint64_t origin_ns; /* latency origin: due (open) or send time */
    uint64_t sent_ns;   /* send or connect start, for timeouts */
    uint64_t next_k;    /* open loop: next request number to send */
    size_t wr_off;      /* bytes of the request written */
    uint32_t backoff_ms;
    uint32_t step;    /* ramp step when the request was sent */
    uint32_t served;  /* responses on the current socket */
    int slot;         /* version of the current response, -1 yet */
    bool rx;          /* response bytes arrived for this request */
    bool timer_armed; /* open loop: waiting for the next due time */
    bool msg_done;    /* a response completed in this read */
    bool keep_alive;  /* ... and the connection may be reused */
    bool in_vh;       /* current header is the version header */
    bool field_over;  /* current header name overflowed field[] */
    uint16_t field_len, value_len;
    char field[BENCH_LOAD_HEADER_NAME_MAX];
    char value[BENCH_SCHED_NAME_MAX];
};

/* ---- connections ---- */

static void conn_connect(struct bench_load_conn *c);
static void conn_next(struct bench_load_conn *c);
static const llhttp_settings_t parser_settings;
static void worker_check_done(struct bench_load_worker *w);

static uint64_t off_now(const struct bench_load_worker *w)
{
    return w->now_ns > bench_load_shared.t0_ns ? w->now_ns - bench_load_shared.t0_ns : 0;
}

static uint64_t due_off(const struct bench_load_conn *c, uint64_t k)
{
    return bench_sched_intended_ns(bench_load_shared.rate_per_s, bench_load_shared.conns, c->index, k);
}

/* Open loop: requests of c that are due but unsent and within the run. */
static bool has_backlog(const struct bench_load_conn *c, uint64_t upto_off)
{
    return bench_load_shared.rate_per_s > 0 && due_off(c, c->next_k) < c->w->end_off_ns &&
           due_off(c, c->next_k) <= upto_off;
}

static bool is_busy(const struct bench_load_conn *c)
{
    return c->state == CONN_S_WRITING || c->state == CONN_S_READING;
}

/* Close the socket (not the conn: conns live for the whole run). */
static void conn_close(struct bench_load_conn *c)
{
    if (c->fd < 0)
        return;
    event_del(c->ev_read);
    event_del(c->ev_write);
    event_del(c->ev_timer);
    c->timer_armed = false;
    close(c->fd);
    c->fd = -1;
    if (is_busy(c))
        c->w->in_flight--;
    c->state = CONN_S_CLOSED;
    c->served = 0;
}

static void conn_schedule_reconnect(struct bench_load_conn *c, bool backoff)
{
    struct bench_load_worker *w = c->w;
    if (w->stopped)
        return;
    /* Closed loop: nothing more to send once the run has ended. */
    if (w->draining && !has_backlog(c, UINT64_MAX))
        return;
    if (!backoff) {
        c->backoff_ms = 0;
        conn_connect(c);
        return;
    }
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    struct timeval tv = {0, (suseconds_t)c->backoff_ms * 1000};
    event_add(c->ev_timer, &tv);
}

/* The request in flight failed: count it, drop the socket, reconnect. */
static void conn_fail(struct bench_load_conn *c, enum bench_err kind)
{
    struct bench_load_worker *w = c->w;
    CHECK(is_busy(c));
    bench_report_error(&w->report, c->slot >= 0 ? c->slot : BENCH_REPORT_UNKNOWN,
                       off_now(w), c->step, kind, 1);
    bool fresh = c->served == 0;
    conn_close(c);
    /* A socket that fails before its first answer is treated like a failed
     * connect (backoff), so a server that accepts and drops does not make
     * us spin. */
    conn_schedule_reconnect(c, fresh);
    if (w->draining)
        worker_check_done(w);
}

/* connect() failed: count the requests that could not be sent. */
static void conn_connect_failed(struct bench_load_conn *c)
{
    struct bench_load_worker *w = c->w;
    conn_close(c);
    if (w->preconnect) {
        /* Guarded: a socket the server drops while we wait reconnects and
         * reports again. */
        if (w->pre_pending && --w->pre_pending == 0)
            event_base_loopbreak(w->base);
        return;
    }
    uint64_t now = off_now(w);
    if (bench_load_shared.rate_per_s > 0) {
        uint64_t n = 0;
        while (has_backlog(c, now)) {
            c->next_k++;
            n++;
        }
        if (n)
            bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now,
                               atomic_load_explicit(&bench_load_shared.step,
                                                    memory_order_relaxed),
                               BENCH_ERR_CONNECT, n);
    } else if (!w->draining) {
        bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now,
                           atomic_load_explicit(&bench_load_shared.step,
                                                memory_order_relaxed),
                           BENCH_ERR_CONNECT, 1);
    }
    conn_schedule_reconnect(c, true);
    if (w->draining)
        worker_check_done(w);
}

static void conn_connected(struct bench_load_conn *c)
{
    struct bench_load_worker *w = c->w;
    c->state = CONN_S_IDLE;
    c->served = 0;
    event_add(c->ev_read, NULL);
    if (w->preconnect) {
        /* Guarded: a socket the server drops while we wait reconnects and
         * reports again. */
        if (w->pre_pending && --w->pre_pending == 0)
            event_base_loopbreak(w->base);
        return;
    }
    conn_next(c);
}

/* Write what is left of the request. */
static void conn_write(struct bench_load_conn *c)
{
    while (c->wr_off < bench_load_shared.request_len) {
        ssize_t n = send(c->fd, bench_load_shared.request + c->wr_off,
                         bench_load_shared.request_len - c->wr_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->wr_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->ev_write, NULL);
            return;
        }
        conn_fail(c, c->served ? BENCH_ERR_CLOSED : BENCH_ERR_RESET);
        return;
    }
    c->state = CONN_S_READING;
}

/* Send one request whose latency runs from origin_ns. */
static void conn_send(struct bench_load_conn *c, uint64_t origin_ns)
{
    struct bench_load_worker *w = c->w;
    c->state = CONN_S_WRITING;
    w->in_flight++;
    c->origin_ns = origin_ns;
    c->sent_ns = w->now_ns;
    c->wr_off = 0;
    c->slot = -1;
    c->rx = false;
    c->msg_done = false;
    llhttp_resume(&c->parser);
    c->step = atomic_load_explicit(&bench_load_shared.step, memory_order_relaxed);
    conn_write(c);
}

/* An IDLE connection: send the next request now, later, or never. */
static void conn_next(struct bench_load_conn *c)
{
    struct bench_load_worker *w = c->w;
    if (w->stopped)
        return;
    uint64_t now = off_now(w);
    if (bench_load_shared.rate_per_s <= 0) {
        if (now < w->end_off_ns && !w->draining)
            conn_send(c, w->now_ns);
        return;
    }
    uint64_t due = due_off(c, c->next_k);
    if (due >= w->end_off_ns)
        return;
    if (due <= now) {
        /* Woken by the timer: how late weir-bench itself is (the wait of a
         * request queued behind a busy connection is not counted here). */
        if (c->timer_armed)
            bench_report_send_lag(&w->report, now - due);
        c->timer_armed = false;
        c->next_k++;
        conn_send(c, bench_load_shared.t0_ns + due);
        return;
    }
    struct timeval tv;
    ns_to_tv(due - now, &tv);
    c->timer_armed = true;
    event_add(c->ev_timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct bench_load_conn *c = arg;
    (void)fd;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    c->w->now_ns = bench_load_now_ns();
    if (c->state == CONN_S_CLOSED)
        conn_connect(c);
    else if (c->state == CONN_S_IDLE)
        conn_next(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct bench_load_conn *c = arg;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    c->w->now_ns = bench_load_now_ns();
    if (c->state == CONN_S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err)
            conn_connect_failed(c);
        else
            conn_connected(c);
    } else if (c->state == CONN_S_WRITING) {
        conn_write(c);
    }
}

/* An idle socket ended (EOF, error, stray bytes): reconnect, with backoff if
 * it never answered anything, so a server that accepts and drops idle
 * connections does not make us spin. */
static void conn_drop_idle(struct bench_load_conn *c)
{
    bool fresh = c->served == 0;
    conn_close(c);
    conn_schedule_reconnect(c, fresh);
}

/* A response is complete (from llhttp, or after llhttp_finish at EOF). */
static void conn_after_response(struct bench_load_conn *c)
{
    struct bench_load_worker *w = c->w;
    c->msg_done = false;
    c->served++;
    c->backoff_ms = 0;
    c->state = CONN_S_IDLE;
    w->in_flight--;
    if (!c->keep_alive) {
        conn_close(c);
        conn_schedule_reconnect(c, false);
    } else {
        conn_next(c);
    }
    if (w->draining)
        worker_check_done(w);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct bench_load_conn *c = arg;
    struct bench_load_worker *w = c->w;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    w->now_ns = bench_load_now_ns();
    for (int rounds = 0; rounds < 8; rounds++) {
        ssize_t n = recv(fd, w->rbuf, READ_BUF_SIZE, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (is_busy(c)) {
                conn_fail(c, BENCH_ERR_RESET);
            } else {
                conn_drop_idle(c);
            }
            return;
        }
        if (n == 0) {
            if (!is_busy(c)) {
                /* The server closed an idle keep-alive connection. */
                conn_drop_idle(c);
                return;
            }
            llhttp_finish(&c->parser);
            if (c->msg_done) {
                c->keep_alive = false;
                conn_after_response(c);
            } else {
                conn_fail(c, c->rx ? BENCH_ERR_RESET : BENCH_ERR_CLOSED);
            }
            return;
        }
        if (!is_busy(c)) {
            /* Bytes nobody asked for: the connection is out of step. */
            conn_drop_idle(c);
            return;
        }
        c->rx = true;
        llhttp_errno_t e = llhttp_execute(&c->parser, w->rbuf, (size_t)n);
        if (c->msg_done) {
            /* Paused right after the response: bytes beyond it mean the
             * connection is out of step, so it is not reused. */
            if (e != HPE_PAUSED ||
                llhttp_get_error_pos(&c->parser) != w->rbuf + n)
                c->keep_alive = false;
            conn_after_response(c);
            return;
        }
        if (e != HPE_OK) {
            conn_fail(c, BENCH_ERR_PARSE);
            return;
        }
        if ((size_t)n < READ_BUF_SIZE)
            return;
    }
}

static void conn_connect(struct bench_load_conn *c)
{
    struct bench_load_worker *w = c->w;
    CHECK(c->state == CONN_S_CLOSED && c->fd < 0);
    int fd = socket(bench_load_shared.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_connect_failed(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->sent_ns = w->now_ns;
    event_assign(c->ev_read, w->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    event_assign(c->ev_write, w->base, fd, EV_WRITE, on_writable, c);
    llhttp_init(&c->parser, HTTP_RESPONSE, &parser_settings);
    c->parser.data = c;
    if (connect(fd, (const struct sockaddr *)&bench_load_shared.addr, bench_load_shared.addr_len) ==
        0) {
        conn_connected(c);
        return;
    }
    if (errno != EINPROGRESS) {
        conn_connect_failed(c);
        return;
    }
    c->state = CONN_S_CONNECTING;
    event_add(c->ev_write, NULL);
}

/* ---- llhttp callbacks (response side) ---- */

static int on_message_begin(llhttp_t *p)
{
    struct bench_load_conn *c = p->data;
    c->slot = -1;
    c->field_len = 0;
    c->value_len = 0;
    c->in_vh = false;
    c->field_over = false;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct bench_load_conn *c = p->data;
    if (c->field_len + len > bench_load_shared.vh_len) {
        c->field_over = true;
        return 0;
    }
    memcpy(c->field + c->field_len, at, len);
    c->field_len = (uint16_t)(c->field_len + len);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct bench_load_conn *c = p->data;
    c->in_vh = !c->field_over && c->field_len == bench_load_shared.vh_len &&
               c->slot < 0 &&
               strncasecmp(c->field, bench_load_shared.version_header, bench_load_shared.vh_len) == 0;
    c->field_len = 0;
    c->field_over = false;
    c->value_len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct bench_load_conn *c = p->data;
    if (!c->in_vh)
        return 0;
    size_t room = sizeof(c->value) - 1 - c->value_len;
    if (len > room)
        len = room;
    memcpy(c->value + c->value_len, at, len);
    c->value_len = (uint16_t)(c->value_len + len);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct bench_load_conn *c = p->data;
    if (c->in_vh) {
        size_t len = c->value_len;
        while (len && (c->value[len - 1] == ' ' || c->value[len - 1] == '\t'))
            len--;
        if (len)
            c->slot = bench_report_version(&c->w->report, c->value, len);
        c->in_vh = false;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct bench_load_conn *c = p->data;
    struct bench_load_worker *w = c->w;
    unsigned status = p->status_code;
    /* RFC 9110 §15.2: interim 1xx responses precede the final one. */
    if (status >= 100 && status < 200 && status != 101)
        return 0;
    uint64_t lat = w->now_ns > c->origin_ns ? w->now_ns - c->origin_ns : 0;
    bench_report_response(&w->report,
                          c->slot >= 0 ? c->slot : BENCH_REPORT_UNKNOWN,
                          off_now(w), c->step, lat, status);
    c->msg_done = true;
    /* After 101 the connection speaks another protocol: never reuse it. */
    c->keep_alive = status != 101 && llhttp_should_keep_alive(p);
    /* Stop parsing here: with one request outstanding, bytes after the
     * response are not ours to read. */
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_message_complete = on_message_complete,
};

/* ---- workers ---- */

/* Stop the loop once nothing is in flight and nothing is due. */
static void worker_check_done(struct bench_load_worker *w)
{
    if (!w->draining || w->in_flight)
        return;
    for (size_t i = 0; i < w->n_conns; i++)
        if (has_backlog(&w->conns[i], UINT64_MAX))
            return;
    w->stopped = true;
    event_base_loopbreak(w->base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct bench_load_worker *w = arg;
    (void)fd;
    (void)what;
    CHECK(w->magic == WORKER_MAGIC);
    if (w->preconnect) {
        /* Pre-connect timed out; stragglers finish during the run. */
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
    w->end_off_ns = atomic_load_explicit(&bench_load_shared.end_off_ns,
                                         memory_order_relaxed);
    for (size_t i = 0; i < w->n_conns; i++) {
        struct bench_load_conn *c = &w->conns[i];
        if (is_busy(c) && w->now_ns - c->sent_ns > bench_load_shared.timeout_ns)
            conn_fail(c, BENCH_ERR_TIMEOUT);
        else if (c->state == CONN_S_CONNECTING &&
                 w->now_ns - c->sent_ns > bench_load_shared.timeout_ns)
            conn_connect_failed(c);
    }
    if (now >= w->end_off_ns) {
        if (!w->draining) {
            w->draining = true;
            for (size_t i = 0; i < w->n_conns; i++) {
                struct bench_load_conn *c = &w->conns[i];
                /* Closed loop: idle and reconnecting sockets are done. */
                if (!has_backlog(c, UINT64_MAX))
                    event_del(c->ev_timer);
            }
        }
        if (now >= w->end_off_ns + bench_load_shared.grace_ns) {
            w->stopped = true;
            event_base_loopbreak(w->base);
            return;
        }
        worker_check_done(w);
    }
}

/* Count what the hard stop (or a second signal) cut off as timeouts: it was
 * not answered in time. Close every socket. */
static void worker_finish(struct bench_load_worker *w)
{
    w->now_ns = bench_load_now_ns();
    uint64_t now = off_now(w);
    uint32_t step = atomic_load(&bench_load_shared.step);
    for (size_t i = 0; i < w->n_conns; i++) {
        struct bench_load_conn *c = &w->conns[i];
        if (is_busy(c))
            bench_report_error(&w->report,
                               c->slot >= 0 ? c->slot : BENCH_REPORT_UNKNOWN,
                               now, c->step, BENCH_ERR_TIMEOUT, 1);
        if (bench_load_shared.rate_per_s > 0) {
            uint64_t n = 0;
            while (due_off(c, c->next_k) < w->end_off_ns) {
                c->next_k++;
                n++;
            }
            if (n)
                bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now, step,
                                   BENCH_ERR_TIMEOUT, n);
        }
        conn_close(c);
    }
}

void *bench_load_worker_main(void *arg)
{
    struct bench_load_worker *w = arg;
    CHECK(w->magic == WORKER_MAGIC);
    /* Open loop: the kernel's default 50 us timer slack would make every
     * timed send that much late. */
    if (bench_load_shared.rate_per_s > 0)
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    /* Pre-connect, so the first requests do not pay for the handshake. */
    w->preconnect = true;
    w->now_ns = bench_load_now_ns();
    w->pre_pending = w->n_conns;
    for (size_t i = 0; i < w->n_conns; i++)
        conn_connect(&w->conns[i]);
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
    for (size_t i = 0; i < w->n_conns; i++) {
        struct bench_load_conn *c = &w->conns[i];
        if (c->state == CONN_S_IDLE)
            conn_next(c);
        else if (c->state == CONN_S_CLOSED)
            conn_connect(c);
    }
    if (!w->stopped)
        event_base_dispatch(w->base);
    worker_finish(w);
    atomic_fetch_add(&bench_load_shared.workers_done, 1);
    return NULL;
}

struct bench_load_worker *bench_load_worker_new(unsigned id, size_t n_conns, double planned_s,
                                                size_t n_steps)
{
    struct bench_load_worker *w = xcalloc(1, sizeof(*w));
    w->magic = WORKER_MAGIC;
    w->id = id;
    struct event_config *cfg = event_config_new();
    CHECK(cfg);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    /* Open loop needs sub-millisecond timers: the default coarse clock
     * would send late and charge the lateness to the server. */
    if (bench_load_shared.rate_per_s > 0)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    CHECK(w->base);
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    w->rbuf = xmalloc(READ_BUF_SIZE);
    w->n_conns = n_conns;
    w->conns = xcalloc(n_conns, sizeof(*w->conns));
    bench_report_init(&w->report, planned_s, BENCH_LOAD_MAX_GRACE_S, n_steps);
    for (size_t i = 0; i < n_conns; i++) {
        struct bench_load_conn *c = &w->conns[i];
        c->magic = CONN_MAGIC;
        c->w = w;
        c->index = (uint32_t)(i * bench_load_shared.threads + id);
        c->fd = -1;
        c->slot = -1;
        c->ev_read = event_new(w->base, -1, 0, on_readable, c);
        c->ev_write = event_new(w->base, -1, 0, on_writable, c);
        c->ev_timer = event_new(w->base, -1, 0, on_timer, c);
        CHECK(c->ev_read && c->ev_write && c->ev_timer && w->tick);
    }
    return w;
}

void bench_load_worker_free(struct bench_load_worker *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_conns; i++) {
        struct bench_load_conn *c = &w->conns[i];
        conn_close(c);
        event_free(c->ev_read);
        event_free(c->ev_write);
        event_free(c->ev_timer);
        c->magic = 0;
    }
    event_free(w->tick);
    event_base_free(w->base);
    bench_report_dispose(&w->report);
    free(w->conns);
    free(w->rbuf);
    w->magic = 0;
    free(w);
}
