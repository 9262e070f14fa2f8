/*
 * weir_bench.c — weir-bench: a load generator that tells versions apart.
 *
 * Shape: the main thread parses the command line, resolves the URL once,
 * probes it (a refused connection is reported before any load starts),
 * applies ramp step 1 through the control socket, then starts -t worker
 * threads. Each worker owns an event_base and a fixed array of connections
 * (connection i of the run lives on worker i % threads); nothing a worker
 * touches is shared except a few atomics (end of the run, current ramp step)
 * and the live counters the main thread reads for the progress line. The
 * main thread then sleeps in sigtimedwait() between its own duties: the
 * progress line each second, the ramp steps, SIGINT/SIGTERM (first: stop
 * sending and drain; second: stop now). After joining the workers it merges
 * their reports and prints the table or JSON (bench_report.c).
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
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <llhttp.h>

#include "bench_hist.h"
#include "bench_report.h"
#include "bench_sched.h"
#include "bench_url.h"
#include "control_client.h"
#include "json.h"
#include "util.h"

#define CONN_MAGIC 0x636f6e6eu   /* "conn" */
#define WORKER_MAGIC 0x776b7272u /* "wkrr" */
#define READ_BUF_SIZE (64 * 1024)
#define MAX_HEADERS 64
#define TICK_US 20000             /* worker housekeeping period */
#define BACKOFF_MIN_MS 1
#define BACKOFF_MAX_MS 250
#define CONTROL_TIMEOUT_S 3
#define DEFAULT_CONNS 16
#define DEFAULT_DURATION_S 10.0
#define DEFAULT_STEP_S 10.0
#define DEFAULT_TIMEOUT_S 5.0
#define MAX_GRACE_S 2.0

/* ---- options and run-wide state ---- */

struct opts {
    uint32_t conns;
    uint32_t threads;
    double duration_s;
    bool duration_given;
    double rate_per_s;          /* 0: closed loop */
    const char *headers[MAX_HEADERS]; /* borrowed from argv */
    size_t n_headers;
    const char *version_header; /* borrowed */
    bool json;
    bool quiet;
    const char *plot_path;      /* borrowed */
    char ramp_target[BENCH_SCHED_NAME_MAX];
    uint32_t ramp_bp[BENCH_SCHED_MAX_STEPS];
    size_t n_ramp;
    double step_s;
    const char *control_path;   /* borrowed */
    double timeout_s;
    const char *url_text;       /* borrowed */
    struct bench_url url;
};

/* What the workers share; set up before they start, read-only after except
 * the atomics. */
struct shared {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char addr_text[80];
    char *request;                /* owned: the one request every conn sends */
    size_t request_len;
    size_t vh_len;                /* strlen(opts.version_header) */
    uint64_t t0_ns;               /* run start, CLOCK_MONOTONIC ns */
    uint64_t grace_ns;
    uint64_t timeout_ns;
    size_t n_buckets_check;
    _Atomic uint64_t end_off_ns;  /* stop sending at t0 + this */
    _Atomic uint32_t step;        /* ramp step new requests are tagged with */
    _Atomic bool abort_now;       /* second signal: stop without draining */
    _Atomic uint32_t workers_done;
    pthread_barrier_t connected;  /* workers have pre-connected */
    pthread_barrier_t go;         /* main has set t0 */
};

static struct opts opts;
static struct shared shared;

enum conn_state {
    CONN_S_CLOSED = 0, /* no socket; maybe a backoff timer pending */
    CONN_S_CONNECTING, /* non-blocking connect() in progress */
    CONN_S_IDLE,       /* connected, nothing outstanding */
    CONN_S_WRITING,    /* request partly written */
    CONN_S_READING,    /* request written, response not complete */
};

struct worker;

struct conn {
    uint32_t magic;
    enum conn_state state;
    struct worker *w;           /* borrowed: the owning worker */
    uint32_t index;             /* connection number in the run */
    int fd;                     /* owned; -1 when CLOSED */
    struct event *ev_read;      /* owned; persistent while connected */
    struct event *ev_write;     /* owned; connect completion / partial write */
    struct event *ev_timer;     /* owned; open-loop due time or backoff */
    llhttp_t parser;
    uint64_t origin_ns;         /* latency origin: due (open) or send time */
    uint64_t sent_ns;           /* send or connect start, for timeouts */
    uint64_t next_k;            /* open loop: next request number to send */
    size_t wr_off;              /* bytes of the request written */
    uint32_t backoff_ms;
    uint32_t step;              /* ramp step when the request was sent */
    uint32_t served;            /* responses on the current socket */
    int slot;                   /* version of the current response, -1 yet */
    bool rx;                    /* response bytes arrived for this request */
    bool timer_armed;           /* open loop: waiting for the next due time */
    bool msg_done;              /* a response completed in this read */
    bool keep_alive;            /* ... and the connection may be reused */
    bool in_vh;                 /* current header is the version header */
    bool field_over;            /* current header name overflowed field[] */
    uint16_t field_len, value_len;
    char field[64];
    char value[BENCH_SCHED_NAME_MAX];
};

struct worker {
    uint32_t magic;
    unsigned id;
    pthread_t thread;
    struct event_base *base;    /* owned */
    struct event *tick;         /* owned */
    struct conn *conns;         /* owned array */
    size_t n_conns;
    struct bench_report report; /* written by this worker only */
    char *rbuf;                 /* owned: READ_BUF_SIZE */
    uint64_t now_ns;            /* clock read for the current callback */
    uint64_t end_off_ns;        /* cached shared.end_off_ns */
    size_t in_flight;           /* conns in WRITING or READING */
    size_t pre_pending;         /* connects outstanding while pre-connecting */
    bool preconnect;            /* before t0: connect only, send nothing */
    bool draining;              /* past the end: finish what is in flight */
    bool stopped;
};

static uint64_t now_ns(void)
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

/* ---- connections ---- */

static void conn_connect(struct conn *c);
static void conn_next(struct conn *c);
static const llhttp_settings_t parser_settings;
static void worker_check_done(struct worker *w);

static uint64_t off_now(const struct worker *w)
{
    return w->now_ns > shared.t0_ns ? w->now_ns - shared.t0_ns : 0;
}

static uint64_t due_off(const struct conn *c, uint64_t k)
{
    return bench_sched_intended_ns(opts.rate_per_s, opts.conns, c->index, k);
}

/* Open loop: requests of c that are due but unsent and within the run. */
static bool has_backlog(const struct conn *c, uint64_t upto_off)
{
    return opts.rate_per_s > 0 && due_off(c, c->next_k) < c->w->end_off_ns &&
           due_off(c, c->next_k) <= upto_off;
}

static bool is_busy(const struct conn *c)
{
    return c->state == CONN_S_WRITING || c->state == CONN_S_READING;
}

/* Close the socket (not the conn: conns live for the whole run). */
static void conn_close(struct conn *c)
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

static void conn_schedule_reconnect(struct conn *c, bool backoff)
{
    struct worker *w = c->w;
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
static void conn_fail(struct conn *c, enum bench_err kind)
{
    struct worker *w = c->w;
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
static void conn_connect_failed(struct conn *c)
{
    struct worker *w = c->w;
    conn_close(c);
    if (w->preconnect) {
        /* Guarded: a socket the server drops while we wait reconnects and
         * reports again. */
        if (w->pre_pending && --w->pre_pending == 0)
            event_base_loopbreak(w->base);
        return;
    }
    uint64_t now = off_now(w);
    if (opts.rate_per_s > 0) {
        uint64_t n = 0;
        while (has_backlog(c, now)) {
            c->next_k++;
            n++;
        }
        if (n)
            bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now,
                               atomic_load_explicit(&shared.step,
                                                    memory_order_relaxed),
                               BENCH_ERR_CONNECT, n);
    } else if (!w->draining) {
        bench_report_error(&w->report, BENCH_REPORT_UNKNOWN, now,
                           atomic_load_explicit(&shared.step,
                                                memory_order_relaxed),
                           BENCH_ERR_CONNECT, 1);
    }
    conn_schedule_reconnect(c, true);
    if (w->draining)
        worker_check_done(w);
}

static void conn_connected(struct conn *c)
{
    struct worker *w = c->w;
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
static void conn_write(struct conn *c)
{
    while (c->wr_off < shared.request_len) {
        ssize_t n = send(c->fd, shared.request + c->wr_off,
                         shared.request_len - c->wr_off, MSG_NOSIGNAL);
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
static void conn_send(struct conn *c, uint64_t origin_ns)
{
    struct worker *w = c->w;
    c->state = CONN_S_WRITING;
    w->in_flight++;
    c->origin_ns = origin_ns;
    c->sent_ns = w->now_ns;
    c->wr_off = 0;
    c->slot = -1;
    c->rx = false;
    c->msg_done = false;
    llhttp_resume(&c->parser);
    c->step = atomic_load_explicit(&shared.step, memory_order_relaxed);
    conn_write(c);
}

/* An IDLE connection: send the next request now, later, or never. */
static void conn_next(struct conn *c)
{
    struct worker *w = c->w;
    if (w->stopped)
        return;
    uint64_t now = off_now(w);
    if (opts.rate_per_s <= 0) {
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
        conn_send(c, shared.t0_ns + due);
        return;
    }
    struct timeval tv;
    ns_to_tv(due - now, &tv);
    c->timer_armed = true;
    event_add(c->ev_timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    c->w->now_ns = now_ns();
    if (c->state == CONN_S_CLOSED)
        conn_connect(c);
    else if (c->state == CONN_S_IDLE)
        conn_next(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    c->w->now_ns = now_ns();
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
static void conn_drop_idle(struct conn *c)
{
    bool fresh = c->served == 0;
    conn_close(c);
    conn_schedule_reconnect(c, fresh);
}

/* A response is complete (from llhttp, or after llhttp_finish at EOF). */
static void conn_after_response(struct conn *c)
{
    struct worker *w = c->w;
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
    struct conn *c = arg;
    struct worker *w = c->w;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    w->now_ns = now_ns();
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

static void conn_connect(struct conn *c)
{
    struct worker *w = c->w;
    CHECK(c->state == CONN_S_CLOSED && c->fd < 0);
    int fd = socket(shared.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
                                               SOCK_CLOEXEC, 0);
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
    if (connect(fd, (const struct sockaddr *)&shared.addr, shared.addr_len) ==
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
    struct conn *c = p->data;
    c->slot = -1;
    c->field_len = 0;
    c->value_len = 0;
    c->in_vh = false;
    c->field_over = false;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->field_len + len > shared.vh_len) {
        c->field_over = true;
        return 0;
    }
    memcpy(c->field + c->field_len, at, len);
    c->field_len = (uint16_t)(c->field_len + len);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    c->in_vh = !c->field_over && c->field_len == shared.vh_len &&
               c->slot < 0 &&
               strncasecmp(c->field, opts.version_header, shared.vh_len) == 0;
    c->field_len = 0;
    c->field_over = false;
    c->value_len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
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
    struct conn *c = p->data;
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
    struct conn *c = p->data;
    struct worker *w = c->w;
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
static void worker_check_done(struct worker *w)
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
    struct worker *w = arg;
    (void)fd;
    (void)what;
    CHECK(w->magic == WORKER_MAGIC);
    if (w->preconnect) {
        /* Pre-connect timed out; stragglers finish during the run. */
        event_base_loopbreak(w->base);
        return;
    }
    w->now_ns = now_ns();
    uint64_t now = off_now(w);

    if (atomic_load_explicit(&shared.abort_now, memory_order_relaxed)) {
        w->stopped = true;
        event_base_loopbreak(w->base);
        return;
    }
    w->end_off_ns = atomic_load_explicit(&shared.end_off_ns,
                                         memory_order_relaxed);
    for (size_t i = 0; i < w->n_conns; i++) {
        struct conn *c = &w->conns[i];
        if (is_busy(c) && w->now_ns - c->sent_ns > shared.timeout_ns)
            conn_fail(c, BENCH_ERR_TIMEOUT);
        else if (c->state == CONN_S_CONNECTING &&
                 w->now_ns - c->sent_ns > shared.timeout_ns)
            conn_connect_failed(c);
    }
    if (now >= w->end_off_ns) {
        if (!w->draining) {
            w->draining = true;
            for (size_t i = 0; i < w->n_conns; i++) {
                struct conn *c = &w->conns[i];
                /* Closed loop: idle and reconnecting sockets are done. */
                if (!has_backlog(c, UINT64_MAX))
                    event_del(c->ev_timer);
            }
        }
        if (now >= w->end_off_ns + shared.grace_ns) {
            w->stopped = true;
            event_base_loopbreak(w->base);
            return;
        }
        worker_check_done(w);
    }
}

/* Count what the hard stop (or a second signal) cut off as timeouts: it was
 * not answered in time. Close every socket. */
static void worker_finish(struct worker *w)
{
    w->now_ns = now_ns();
    uint64_t now = off_now(w);
    uint32_t step = atomic_load(&shared.step);
    for (size_t i = 0; i < w->n_conns; i++) {
        struct conn *c = &w->conns[i];
        if (is_busy(c))
            bench_report_error(&w->report,
                               c->slot >= 0 ? c->slot : BENCH_REPORT_UNKNOWN,
                               now, c->step, BENCH_ERR_TIMEOUT, 1);
        if (opts.rate_per_s > 0) {
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

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    CHECK(w->magic == WORKER_MAGIC);
    /* Open loop: the kernel's default 50 us timer slack would make every
     * timed send that much late. */
    if (opts.rate_per_s > 0)
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    /* Pre-connect, so the first requests do not pay for the handshake. */
    w->preconnect = true;
    w->now_ns = now_ns();
    w->pre_pending = w->n_conns;
    for (size_t i = 0; i < w->n_conns; i++)
        conn_connect(&w->conns[i]);
    if (w->pre_pending) {
        struct timeval tv;
        ns_to_tv(shared.timeout_ns, &tv);
        event_add(w->tick, &tv);
        event_base_dispatch(w->base);
        event_del(w->tick);
    }
    w->preconnect = false;
    pthread_barrier_wait(&shared.connected);
    pthread_barrier_wait(&shared.go);

    w->now_ns = now_ns();
    w->end_off_ns = atomic_load(&shared.end_off_ns);
    struct timeval tick = {0, TICK_US};
    event_add(w->tick, &tick);
    for (size_t i = 0; i < w->n_conns; i++) {
        struct conn *c = &w->conns[i];
        if (c->state == CONN_S_IDLE)
            conn_next(c);
        else if (c->state == CONN_S_CLOSED)
            conn_connect(c);
    }
    if (!w->stopped)
        event_base_dispatch(w->base);
    worker_finish(w);
    atomic_fetch_add(&shared.workers_done, 1);
    return NULL;
}

static struct worker *worker_new(unsigned id, size_t n_conns, double planned_s,
                                 size_t n_steps)
{
    struct worker *w = xcalloc(1, sizeof(*w));
    w->magic = WORKER_MAGIC;
    w->id = id;
    struct event_config *cfg = event_config_new();
    CHECK(cfg);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    /* Open loop needs sub-millisecond timers: the default coarse clock
     * would send late and charge the lateness to the server. */
    if (opts.rate_per_s > 0)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    CHECK(w->base);
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    w->rbuf = xmalloc(READ_BUF_SIZE);
    w->n_conns = n_conns;
    w->conns = xcalloc(n_conns, sizeof(*w->conns));
    bench_report_init(&w->report, planned_s, MAX_GRACE_S, n_steps);
    for (size_t i = 0; i < n_conns; i++) {
        struct conn *c = &w->conns[i];
        c->magic = CONN_MAGIC;
        c->w = w;
        c->index = (uint32_t)(i * opts.threads + id);
        c->fd = -1;
        c->slot = -1;
        c->ev_read = event_new(w->base, -1, 0, on_readable, c);
        c->ev_write = event_new(w->base, -1, 0, on_writable, c);
        c->ev_timer = event_new(w->base, -1, 0, on_timer, c);
        CHECK(c->ev_read && c->ev_write && c->ev_timer && w->tick);
    }
    return w;
}

static void worker_free(struct worker *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_conns; i++) {
        struct conn *c = &w->conns[i];
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

/* ---- control socket client (main thread, blocking with timeouts) ---- */

/*
 * Send one command line to the control socket and read one reply line
 * (control_client.c, weirctl's client). Returns a heap string (caller
 * frees) or NULL with err filled.
 */
static char *control_call(const char *cmd, char *err, size_t errlen)
{
    struct json_buf ans;
    json_buf_init(&ans);
    if (control_client_call(opts.control_path, cmd, CONTROL_TIMEOUT_S * 1000, &ans, err,
                            errlen) != 0) {
        json_buf_dispose(&ans);
        return NULL;
    }
    return ans.p; /* the buffer's memory, NUL-terminated */
}

/* Read the current split. Returns 0 or -1 (err filled). */
static int control_status(struct bench_split *split, uint64_t *gen, char *err,
                          size_t errlen)
{
    char *reply = control_call("status", err, errlen);
    if (!reply)
        return -1;
    char why[512];
    int rc = bench_sched_parse_reply(reply, strlen(reply), split, gen, why,
                                     sizeof(why));
    if (rc != 0)
        snprintf(err, errlen, "status: %s", why);
    free(reply);
    return rc;
}

/* Ramp step s: read the split, set the target's percent. 0 or -1. */
static int ramp_apply(size_t s, struct bench_ramp_step *st, char *err,
                      size_t errlen)
{
    struct bench_split cur, next;
    uint64_t gen = 0;
    const char *why;
    if (control_status(&cur, &gen, err, errlen) != 0)
        return -1;
    if (bench_sched_split_find(&cur, opts.ramp_target) < 0) {
        char have[512];
        snprintf(err, errlen, "version %s is not in weir's split or versions "
                              "(%s)",
                 opts.ramp_target,
                 bench_sched_format_split(&cur, have, sizeof(have)));
        return -1;
    }
    if (bench_sched_ramp_split(&cur, opts.ramp_target, opts.ramp_bp[s], &next,
                               &why) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    char cmd[4096];
    if (bench_sched_format_split_cmd(&next, cmd, sizeof(cmd)) == 0) {
        snprintf(err, errlen, "split command too long");
        return -1;
    }
    char *reply = control_call(cmd, err, errlen);
    if (!reply)
        return -1;
    char rerr[512];
    uint64_t ngen = 0;
    int rc = bench_sched_parse_reply(reply, strlen(reply), NULL, &ngen, rerr,
                                     sizeof(rerr));
    free(reply);
    if (rc != 0) {
        snprintf(err, errlen, "'%.300s' refused: %.500s", cmd, rerr);
        return -1;
    }
    if (ngen == 0) {
        /* Not every reply names the generation; ask for it. */
        struct bench_split after;
        if (control_status(&after, &ngen, rerr, sizeof(rerr)) != 0)
            ngen = 0;
    }
    st->target_bp = opts.ramp_bp[s];
    st->split = next;
    st->applied = true;
    st->generation = ngen;
    return 0;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
"usage: weir-bench [options] URL\n"
"\n"
"Load-test URL (http://HOST[:PORT]/PATH; HOST is IPv4, [IPv6] or a name\n"
"resolved once) and report latency and errors per version, the version\n"
"being the value of a response header that weir adds (version_header).\n"
"\n"
"  -c, --connections N     keep-alive connections (default %d)\n"
"  -d, --duration TIME     run length: seconds (10, 2.5) or 500ms/30s/2m\n"
"                          (default %.0f s; with --ramp, steps x --step)\n"
"  -R, --rate N            open loop: N requests/s in total, spread evenly\n"
"                          over the connections; latency counts from each\n"
"                          request's intended send time, so a stall shows in\n"
"                          the tail (coordinated omission corrected).\n"
"                          Without -R: closed loop, each connection sends its\n"
"                          next request when the previous answer arrives.\n"
"  -t, --threads N         worker threads (default 1; connections are spread)\n"
"  -H, --header 'N: V'     add a request header (repeatable; may replace Host)\n"
"      --version-header N  response header naming the version\n"
"                          (default X-Weir-Version)\n"
"      --timeout TIME      per request and per connect (default %.0f s)\n"
"      --json              print one JSON document instead of the table\n"
"      --plot FILE.svg     draw request rate, p50/p99 latency and error %% per\n"
"                          version over time into a self-contained SVG\n"
"      --control SOCKET    weir's control socket: read the configured split\n"
"                          at start (shown next to the achieved share)\n"
"      --ramp V=P1,P2,...  with --control: at start and every --step set\n"
"                          version V to the next percent; the other versions\n"
"                          share the rest in proportion to their current split\n"
"                          (evenly if all are 0). The run still ends after -d.\n"
"      --step TIME         ramp step length (default %.0f s)\n"
"  -q, --quiet             no progress lines on stderr\n"
"  -h, --help              this text\n"
"  -V, --version           print the version\n"
"\n"
"Counting: a request is finished when its response is complete or it failed.\n"
"Errors are transport failures plus 5xx responses; 4xx responses are answers,\n"
"not errors. Kinds: connect (refused, unreachable, timed out), reset (reset\n"
"or EOF inside a response), closed (the server closed a kept-alive connection\n"
"before answering), timeout, parse (not HTTP/1.x), http_5xx. Latency covers\n"
"every complete response (5xx included). Responses without the version header\n"
"and requests that failed before any response header count as \"unknown\".\n"
"Open loop: a request due while its connection is busy waits for it, and the\n"
"wait is part of its latency; a failed connect fails every request due by\n"
"then. At the end nothing new is sent; requests in flight (and requests\n"
"already due) get min(timeout, 2 s) to finish, and what is left counts as\n"
"timed out. Progress: one line per second on stderr (-q silences it).\n"
"\n"
"Exit status: 0 done; 1 every request failed, none finished, or a ramp step\n"
"failed mid-run; 2 usage error, bad URL, connection refused at start or the\n"
"control socket unusable at start; 130 interrupted (report still printed).\n",
            DEFAULT_CONNS, DEFAULT_DURATION_S, DEFAULT_TIMEOUT_S,
            DEFAULT_STEP_S);
}

__attribute__((format(printf, 1, 2), noreturn)) static void
usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "weir-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'weir-bench --help'.\n");
    va_end(ap);
    exit(2);
}

static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Seconds as "10", "2.5", "10s", "500ms", "2m", "1h". */
static bool parse_seconds(const char *s, double *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v))
        return false;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "ms") == 0)
        mult = 0.001;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else
        return false;
    v *= mult;
    if (!(v > 0) || v > 86400 * 7)
        return false;
    *out = v;
    return true;
}

static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* "Name: value" per RFC 9110 §5.1 / §5.5. */
static bool valid_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    for (const char *p = h; p < colon; p++)
        if (!is_token_char(*p))
            return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\0')
            return false;
    return true;
}

static bool has_header(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < opts.n_headers; i++)
        if (strncasecmp(opts.headers[i], name, n) == 0 &&
            opts.headers[i][n] == ':')
            return true;
    return false;
}

static void parse_args(int argc, char **argv)
{
    enum {
        OPT_VERSION_HEADER = 256,
        OPT_JSON,
        OPT_PLOT,
        OPT_RAMP,
        OPT_STEP,
        OPT_CONTROL,
        OPT_TIMEOUT,
    };
    static const struct option longopts[] = {
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'R'},
        {"threads", required_argument, NULL, 't'},
        {"header", required_argument, NULL, 'H'},
        {"version-header", required_argument, NULL, OPT_VERSION_HEADER},
        {"json", no_argument, NULL, OPT_JSON},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"ramp", required_argument, NULL, OPT_RAMP},
        {"step", required_argument, NULL, OPT_STEP},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    bool step_given = false;
    const char *ramp_arg = NULL;
    opts.conns = DEFAULT_CONNS;
    opts.threads = 1;
    opts.duration_s = DEFAULT_DURATION_S;
    opts.version_header = "X-Weir-Version";
    opts.step_s = DEFAULT_STEP_S;
    opts.timeout_s = DEFAULT_TIMEOUT_S;

    int ch;
    while ((ch = getopt_long(argc, argv, "c:d:R:t:H:qhV", longopts, NULL)) !=
           -1) {
        switch (ch) {
        case 'c':
            if (!parse_u32(optarg, 1, 1000000, &opts.conns))
                usage_error("-c wants a number of connections 1..1000000, "
                            "not '%s'", optarg);
            break;
        case 'd':
            if (!parse_seconds(optarg, &opts.duration_s))
                usage_error("-d wants a duration (10, 2.5, 500ms, 2m), not "
                            "'%s'", optarg);
            opts.duration_given = true;
            break;
        case 'R': {
            char *end;
            errno = 0;
            opts.rate_per_s = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(opts.rate_per_s > 0) ||
                opts.rate_per_s > 1e8)
                usage_error("-R wants a rate in requests/s above 0, not '%s'",
                            optarg);
            break;
        }
        case 't':
            if (!parse_u32(optarg, 1, 256, &opts.threads))
                usage_error("-t wants 1..256 threads, not '%s'", optarg);
            break;
        case 'H':
            if (!valid_header(optarg))
                usage_error("-H wants 'Name: value', not '%s'", optarg);
            if (opts.n_headers == MAX_HEADERS)
                usage_error("too many -H headers (at most 64)");
            opts.headers[opts.n_headers++] = optarg;
            break;
        case OPT_VERSION_HEADER: {
            size_t n = strlen(optarg);
            bool ok = n > 0 && n < sizeof(((struct conn *)0)->field);
            for (size_t i = 0; ok && i < n; i++)
                ok = is_token_char(optarg[i]);
            if (!ok)
                usage_error("--version-header wants a header name, not '%s'",
                            optarg);
            opts.version_header = optarg;
            break;
        }
        case OPT_JSON:
            opts.json = true;
            break;
        case OPT_PLOT:
            opts.plot_path = optarg;
            break;
        case OPT_RAMP:
            ramp_arg = optarg;
            break;
        case OPT_STEP:
            if (!parse_seconds(optarg, &opts.step_s))
                usage_error("--step wants a duration (10, 2.5, 500ms), not "
                            "'%s'", optarg);
            step_given = true;
            break;
        case OPT_CONTROL:
            opts.control_path = optarg;
            break;
        case OPT_TIMEOUT:
            if (!parse_seconds(optarg, &opts.timeout_s))
                usage_error("--timeout wants a duration (5, 500ms), not '%s'",
                            optarg);
            break;
        case 'q':
            opts.quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("weir-bench %s\n", WEIR_VERSION);
            exit(0);
        default:
            fprintf(stderr, "Try 'weir-bench --help'.\n");
            exit(2);
        }
    }
    if (optind != argc - 1)
        usage_error("%s", optind >= argc ? "missing URL"
                                         : "exactly one URL, please");
    opts.url_text = argv[optind];
    char err[256];
    if (bench_url_parse(opts.url_text, &opts.url, err, sizeof(err)) != 0) {
        fprintf(stderr, "weir-bench: bad URL '%s': %s\n", opts.url_text, err);
        exit(2);
    }
    if (ramp_arg) {
        const char *why;
        if (bench_sched_parse_ramp(ramp_arg, opts.ramp_target,
                                   sizeof(opts.ramp_target), opts.ramp_bp,
                                   BENCH_SCHED_MAX_STEPS, &opts.n_ramp,
                                   &why) != 0) {
            fprintf(stderr, "weir-bench: --ramp '%s': %s\nTry 'weir-bench "
                            "--help'.\n",
                    ramp_arg, why);
            exit(2);
        }
        if (!opts.control_path)
            usage_error("--ramp needs --control SOCKET (weir's control "
                        "socket)");
        if (!opts.duration_given)
            opts.duration_s = (double)opts.n_ramp * opts.step_s;
    } else if (step_given) {
        usage_error("--step only makes sense with --ramp");
    }
    if (opts.threads > opts.conns)
        opts.threads = opts.conns;
    if (opts.rate_per_s > 0 &&
        opts.rate_per_s * opts.duration_s / opts.conns > 4e15)
        usage_error("-R and -d describe too many requests");
}

/* ---- setup ---- */

/* Connect once, blocking with a timeout. 0, or -1 with errno. */
static int probe(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, sa, len);
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, (int)(opts.timeout_s * 1000));
        if (n == 0) {
            errno = ETIMEDOUT;
        } else if (n > 0) {
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            rc = err ? -1 : 0;
            errno = err;
        }
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc == 0 ? 0 : -1;
}

/* Resolve the URL's host once and keep the first address that accepts. */
static void resolve_and_probe(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(opts.url.host, opts.url.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "weir-bench: cannot resolve '%s': %s\n", opts.url.host,
                gai_strerror(rc));
        exit(2);
    }
    int last_err = 0;
    char text[80] = "";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        util_format_addr(ai->ai_addr, text, sizeof(text));
        if (probe(ai->ai_addr, ai->ai_addrlen) == 0) {
            memcpy(&shared.addr, ai->ai_addr, ai->ai_addrlen);
            shared.addr_len = ai->ai_addrlen;
            snprintf(shared.addr_text, sizeof(shared.addr_text), "%s", text);
            freeaddrinfo(res);
            return;
        }
        last_err = errno;
    }
    freeaddrinfo(res);
    fprintf(stderr, "weir-bench: cannot connect to %s (%s): %s\n", text,
            opts.url_text, strerror(last_err));
    exit(2);
}

static void build_request(void)
{
    size_t cap = 256 + strlen(opts.url.target) + strlen(opts.url.authority);
    for (size_t i = 0; i < opts.n_headers; i++)
        cap += strlen(opts.headers[i]) + 2;
    char *r = xmalloc(cap);
    int n = snprintf(r, cap, "GET %s HTTP/1.1\r\n", opts.url.target);
    size_t len = (size_t)n;
    if (!has_header("Host"))
        len += (size_t)snprintf(r + len, cap - len, "Host: %s\r\n",
                                opts.url.authority);
    if (!has_header("User-Agent"))
        len += (size_t)snprintf(r + len, cap - len,
                                "User-Agent: weir-bench/%s\r\n", WEIR_VERSION);
    for (size_t i = 0; i < opts.n_headers; i++)
        len += (size_t)snprintf(r + len, cap - len, "%s\r\n", opts.headers[i]);
    len += (size_t)snprintf(r + len, cap - len, "\r\n");
    CHECK(len < cap);
    shared.request = r;
    shared.request_len = len;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)opts.conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        fprintf(stderr, "weir-bench: %u connections need %llu file "
                        "descriptors but the hard limit is %llu "
                        "(ulimit -Hn)\n",
                opts.conns, (unsigned long long)want,
                (unsigned long long)rl.rlim_max);
        exit(2);
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "weir-bench: cannot raise the open-file limit to "
                        "%llu: %s\n",
                (unsigned long long)want, strerror(errno));
        exit(2);
    }
}

/* ---- progress ---- */

struct progress {
    uint64_t last_req;
    uint64_t last_ns;
    char names[BENCH_REPORT_MAX_VERSIONS][BENCH_SCHED_NAME_MAX];
    uint64_t last_by[BENCH_REPORT_MAX_VERSIONS];
    size_t n;
};

static size_t progress_slot(struct progress *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            return i;
    if (p->n == BENCH_REPORT_MAX_VERSIONS)
        return 0;
    snprintf(p->names[p->n], BENCH_SCHED_NAME_MAX, "%s", name);
    p->last_by[p->n] = 0;
    return p->n++;
}

static void progress_print(struct progress *p, struct worker **ws, size_t nw,
                           size_t step_shown)
{
    uint64_t now = now_ns();
    uint64_t req = 0, err = 0;
    uint64_t by[BENCH_REPORT_MAX_VERSIONS] = {0};
    for (size_t i = 0; i < nw; i++) {
        struct bench_report *r = &ws[i]->report;
        size_t n = atomic_load_explicit(&r->n_versions, memory_order_acquire);
        for (size_t k = 0; k < n; k++) {
            uint64_t v = atomic_load_explicit(&r->v[k]->live_requests,
                                              memory_order_relaxed);
            by[progress_slot(p, r->v[k]->name)] += v;
            req += v;
        }
        err += bench_report_live_errors(r);
    }
    double dt = (double)(now - p->last_ns) / 1e9;
    uint64_t dreq = req - p->last_req;
    char line[1024];
    size_t len = (size_t)snprintf(line, sizeof(line),
                                  "weir-bench: %6.1fs %9.0f req/s  %llu "
                                  "errors ",
                                  (double)(now - shared.t0_ns) / 1e9,
                                  dt > 0 ? (double)dreq / dt : 0,
                                  (unsigned long long)err);
    for (size_t i = 0; i < p->n && len < sizeof(line); i++) {
        uint64_t d = by[i] - p->last_by[i];
        p->last_by[i] = by[i];
        if (d == 0)
            continue;
        len += (size_t)snprintf(line + len, sizeof(line) - len, " %s %.1f%%",
                                p->names[i],
                                dreq ? 100.0 * (double)d / (double)dreq : 0.0);
    }
    if (opts.n_ramp && len < sizeof(line)) {
        char pct[16];
        util_format_bp(opts.ramp_bp[step_shown], pct, sizeof(pct));
        snprintf(line + len, sizeof(line) - len, "   [step %zu/%zu: %s %s%%]",
                 step_shown + 1, opts.n_ramp, opts.ramp_target, pct);
    }
    fprintf(stderr, "%s\n", line);
    p->last_req = req;
    p->last_ns = now;
}

static void print_step(size_t s, const struct bench_ramp_step *st)
{
    if (opts.quiet)
        return;
    char sp[512];
    fprintf(stderr, "weir-bench: ramp step %zu/%zu at %.1f s: %s", s + 1,
            opts.n_ramp, st->at_s,
            bench_sched_format_split(&st->split, sp, sizeof(sp)));
    if (st->generation)
        fprintf(stderr, " (generation %llu)",
                (unsigned long long)st->generation);
    fprintf(stderr, "\n");
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    resolve_and_probe();
    build_request();
    shared.vh_len = strlen(opts.version_header);
    shared.timeout_ns = (uint64_t)(opts.timeout_s * 1e9);
    shared.grace_ns = (uint64_t)(fmin(opts.timeout_s, MAX_GRACE_S) * 1e9);
    atomic_init(&shared.end_off_ns, (uint64_t)(opts.duration_s * 1e9));
    atomic_init(&shared.step, 0);
    atomic_init(&shared.abort_now, false);
    atomic_init(&shared.workers_done, 0);

    static struct bench_ramp_step steps[BENCH_SCHED_MAX_STEPS];
    struct bench_run run = {
        .url = opts.url_text,
        .version_header = opts.version_header,
        .open_loop = opts.rate_per_s > 0,
        .rate_per_s = opts.rate_per_s,
        .conns = opts.conns,
        .threads = opts.threads,
        .planned_s = opts.duration_s,
        .ramp_target = opts.n_ramp ? opts.ramp_target : NULL,
        .steps = steps,
    };
    char err[1024];
    if (opts.control_path) {
        uint64_t gen = 0;
        if (control_status(&run.configured, &gen, err, sizeof(err)) != 0) {
            fprintf(stderr, "weir-bench: control socket: %s\n", err);
            return 2;
        }
        run.has_configured = true;
    }
    if (opts.n_ramp) {
        if (ramp_apply(0, &steps[0], err, sizeof(err)) != 0) {
            fprintf(stderr, "weir-bench: ramp step 1: %s\n", err);
            return 2;
        }
        run.n_steps = 1;
        /* The split changes during the run: the ramp table shows each. */
        run.has_configured = false;
        print_step(0, &steps[0]);
        double ramp_s = (double)opts.n_ramp * opts.step_s;
        if (opts.duration_s < ramp_s - opts.step_s + 1e-9 && !opts.quiet)
            fprintf(stderr, "weir-bench: note: the run (%.1f s) ends before "
                            "the last ramp step (at %.1f s)\n",
                    opts.duration_s, ramp_s - opts.step_s);
    }

    /* Block the signals in every thread; the main thread takes them with
     * sigtimedwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    size_t nw = opts.threads;
    struct worker **ws = xcalloc(nw, sizeof(*ws));
    pthread_barrier_init(&shared.connected, NULL, (unsigned)nw + 1);
    pthread_barrier_init(&shared.go, NULL, (unsigned)nw + 1);
    for (size_t i = 0; i < nw; i++) {
        size_t n = opts.conns / nw + (i < opts.conns % nw ? 1 : 0);
        ws[i] = worker_new((unsigned)i, n, opts.duration_s, opts.n_ramp);
        if (pthread_create(&ws[i]->thread, NULL, worker_main, ws[i]) != 0) {
            fprintf(stderr, "weir-bench: cannot start a thread: %s\n",
                    strerror(errno));
            return 2;
        }
    }
    pthread_barrier_wait(&shared.connected);
    shared.t0_ns = now_ns();
    pthread_barrier_wait(&shared.go);
    if (!opts.quiet && !opts.json)
        fprintf(stderr, "weir-bench: %s (%s), %s, %u connections, %.1f s\n",
                opts.url_text, shared.addr_text,
                opts.rate_per_s > 0 ? "open loop" : "closed loop", opts.conns,
                opts.duration_s);

    struct progress prog = {.last_ns = shared.t0_ns};
    uint64_t next_progress = shared.t0_ns + 1000000000u;
    size_t next_step = 1;
    bool interrupted = false, ramp_failed = false;
    while (atomic_load(&shared.workers_done) < nw) {
        uint64_t now = now_ns();
        uint64_t end_abs = shared.t0_ns + atomic_load(&shared.end_off_ns);
        uint64_t step_abs = UINT64_MAX;
        if (next_step < opts.n_ramp && !ramp_failed)
            step_abs = shared.t0_ns +
                       (uint64_t)((double)next_step * opts.step_s * 1e9);
        if (step_abs != UINT64_MAX && step_abs >= end_abs)
            step_abs = UINT64_MAX;
        uint64_t wake = now + 50000000u;
        if (next_progress < wake)
            wake = next_progress;
        if (step_abs < wake)
            wake = step_abs;
        if (wake > now) {
            struct timespec ts = {(time_t)((wake - now) / 1000000000u),
                                  (long)((wake - now) % 1000000000u)};
            int sig = sigtimedwait(&sigs, NULL, &ts);
            if (sig == SIGINT || sig == SIGTERM) {
                uint64_t off = now_ns() - shared.t0_ns;
                if (!interrupted) {
                    interrupted = true;
                    if (off < atomic_load(&shared.end_off_ns))
                        atomic_store(&shared.end_off_ns, off);
                    if (!opts.quiet)
                        fprintf(stderr, "weir-bench: interrupted: finishing "
                                        "requests in flight (again to stop "
                                        "now)\n");
                } else {
                    atomic_store(&shared.abort_now, true);
                }
            }
            now = now_ns();
        }
        if (step_abs != UINT64_MAX && now >= step_abs) {
            struct bench_ramp_step *st = &steps[next_step];
            st->at_s = (double)(now - shared.t0_ns) / 1e9;
            if (ramp_apply(next_step, st, err, sizeof(err)) != 0) {
                fprintf(stderr, "weir-bench: ramp step %zu failed: %s; "
                                "stopping the run\n",
                        next_step + 1, err);
                ramp_failed = true;
                uint64_t off = now_ns() - shared.t0_ns;
                if (off < atomic_load(&shared.end_off_ns))
                    atomic_store(&shared.end_off_ns, off);
            } else {
                atomic_store(&shared.step, (uint32_t)next_step);
                run.n_steps = next_step + 1;
                print_step(next_step, st);
            }
            next_step++;
        }
        if (now >= next_progress) {
            if (!opts.quiet && now < end_abs)
                progress_print(&prog, ws, nw, run.n_steps ? run.n_steps - 1 : 0);
            next_progress += 1000000000u;
        }
    }
    for (size_t i = 0; i < nw; i++)
        pthread_join(ws[i]->thread, NULL);

    run.duration_s = (double)atomic_load(&shared.end_off_ns) / 1e9;
    struct bench_report total;
    bench_report_init(&total, opts.duration_s, MAX_GRACE_S, opts.n_ramp);
    for (size_t i = 0; i < nw; i++)
        bench_report_merge(&total, &ws[i]->report);

    if (opts.json)
        bench_report_print_json(&total, &run, stdout);
    else
        bench_report_print_table(&total, &run, stdout);
    fflush(stdout);
    int rc = 0;
    if (opts.plot_path) {
        if (bench_report_write_svg(&total, &run, opts.plot_path) != 0) {
            fprintf(stderr, "weir-bench: cannot write %s: %s\n",
                    opts.plot_path, strerror(errno));
            rc = 1;
        } else if (!opts.quiet) {
            fprintf(stderr, "weir-bench: plot written to %s\n",
                    opts.plot_path);
        }
    }
    uint64_t treq = bench_report_live_requests(&total);
    uint64_t terr = bench_report_live_errors(&total);
    if (treq == 0 || terr == treq || ramp_failed)
        rc = 1;
    if (interrupted)
        rc = 130;

    bench_report_dispose(&total);
    for (size_t i = 0; i < nw; i++)
        worker_free(ws[i]);
    free(ws);
    free(shared.request);
    pthread_barrier_destroy(&shared.connected);
    pthread_barrier_destroy(&shared.go);
    return rc;
}
