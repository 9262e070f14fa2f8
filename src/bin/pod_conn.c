/*
 * pod_conn.c — one weir-pod client connection: the socket, its input
 * buffer (parsed in place by pod_http.c), its output evbuffer, and one
 * timer that is, by state, the answer delay (WAIT), the lingering-close
 * limit (LINGER) or the idle timeout (every other state; re-armed lazily
 * from last_active_ms, so a request costs no timer operation).
 *
 * pod_conn_run() is the driver every event ends in: tell HTTP/1.x from the
 * h2c preface on the first bytes, parse (or feed the h2 session,
 * pod_h2.c), refill a streamed body, echo a tunnel, write with one
 * writev(), handle EOF and closing,
 * then choose which events to wait for (the two places reading and writing
 * are switched on and off are conn_update_events() alone). A conn is freed
 * only at the end of an event callback, never from inside llhttp.
 *
 * Does not own: HTTP parsing and answers (pod_http.c), listeners and
 * threads (weir_pod.c).
 */
#include "pod.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

void pod_conn_free(struct conn *c, const char *why)
{
    CHECK(c->magic == CONN_MAGIC);
    if (c->w->cfg->verbose)
        fprintf(stderr, "c#%u.%" PRIu64 " closed: %s\n", c->w->id, c->id, why);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->timer);
    pod_h2_free(c);
    evbuffer_free(c->out);
    if (c->echo)
        evbuffer_free(c->echo);
    close(c->fd);
    c->magic = 0;
    free(c);
}

/* Write what the output holds; 0, or -1 on a peer error. */
static int conn_flush(struct conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        if (n > 0) {
            c->last_active_ms = util_now_ms();
            if (evbuffer_get_length(c->out) > 0)
                return 0; /* partial: the socket buffer is full */
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

static void conn_arm_timer(struct conn *c, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void conn_update_events(struct conn *c)
{
    size_t outlen = evbuffer_get_length(c->out);
    bool rd = !c->peer_eof && c->in_len < IN_CAP && c->state != CONN_S_CLOSING &&
              !((c->state == CONN_S_TUNNEL || c->state == CONN_S_H2) && outlen >= OUT_HIGH);
    bool wr = outlen > 0 || c->state == CONN_S_STREAM || (c->state == CONN_S_H2 && c->h2_more);
    if (rd != c->rd_on) {
        if (rd)
            event_add(c->rev, NULL);
        else
            event_del(c->rev);
        c->rd_on = rd;
    }
    if (wr != c->wr_on) {
        if (wr)
            event_add(c->wev, NULL);
        else
            event_del(c->wev);
        c->wr_on = wr;
    }
}

/* A new connection's first bytes: the h2c preface switches it to h2. */
static void conn_sniff(struct conn *c)
{
    int h2 = pod_h2_detect(c);
    if (h2 < 0 && !c->peer_eof)
        return; /* "PRI * HTTP/2.0..." cut short: wait for more */
    c->proto_known = true;
    if (h2 > 0 && pod_h2_start(c) < 0)
        fprintf(stderr, "weir-pod: c#%u.%" PRIu64 ": cannot start an h2 session\n", c->w->id,
                c->id); /* the HTTP/1.1 parser answers the preface with 400 */
}

int pod_conn_run(struct conn *c)
{
    for (int round = 0;; round++) {
        if (c->state == CONN_S_READ && !c->proto_known && c->in_len > 0)
            conn_sniff(c);
        if (c->state == CONN_S_READ && c->proto_known) /* else: more preface to come */
            pod_http_parse(c);
        if (c->state == CONN_S_H2)
            pod_h2_run(c);
        if (c->state == CONN_S_STREAM)
            pod_http_fill(c);
        if (c->state == CONN_S_TUNNEL && c->in_len > 0 &&
            evbuffer_get_length(c->out) < OUT_HIGH) {
            evbuffer_add(c->out, c->in + c->in_off, c->in_len);
            pod_conn_consume(c, c->in_len);
        }
        /* EOF with nothing left to parse or echo: answer what is queued,
         * then close (a half-closed client still reads, RFC 9112 §9.6). */
        if ((c->state == CONN_S_READ || c->state == CONN_S_TUNNEL || c->state == CONN_S_H2) &&
            c->peer_eof && c->in_len == 0)
            c->state = CONN_S_CLOSING;
        if (conn_flush(c) < 0) {
            pod_conn_free(c, "write failed");
            return -1;
        }
        if (c->state == CONN_S_CLOSING && evbuffer_get_length(c->out) == 0) {
            if (c->peer_eof) {
                pod_conn_free(c, "done");
                return -1;
            }
            /* Lingering close: shut our side, drain theirs, so a pipelined
             * request in flight does not turn into a RST that destroys the
             * answer we just sent. */
            shutdown(c->fd, SHUT_WR);
            c->state = CONN_S_LINGER;
            conn_arm_timer(c, LINGER_MS);
        }
        if (c->state == CONN_S_LINGER) {
            pod_conn_consume(c, c->in_len);
            if (c->peer_eof) {
                pod_conn_free(c, "done");
                return -1;
            }
        }
        /* (Not while a cut preface waits for its next bytes.) */
        bool again = (((c->state == CONN_S_READ && c->proto_known) || c->state == CONN_S_TUNNEL) &&
                      c->in_len > 0 && evbuffer_get_length(c->out) < OUT_HIGH) ||
                     (c->state == CONN_S_H2 && c->h2_more &&
                      evbuffer_get_length(c->out) < OUT_HIGH);
        if (!again || round >= 8)
            break;
    }
    conn_update_events(c);
    return 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len);
        c->in_off = 0;
    }
    CHECK(c->in_len < IN_CAP); /* else reading is off */
    ssize_t n = recv(fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
    if (n > 0) {
        c->in_len += (size_t)n;
        c->last_active_ms = util_now_ms();
    } else if (n == 0) {
        c->peer_eof = true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return;
    } else {
        pod_conn_free(c, "read failed");
        return;
    }
    pod_conn_run(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    pod_conn_run(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    CHECK(c->magic == CONN_MAGIC);
    switch (c->state) {
    case CONN_S_WAIT:
        pod_http_respond(c);
        if (c->w->cfg->idle_ms)
            conn_arm_timer(c, c->w->cfg->idle_ms);
        pod_conn_run(c);
        return;
    case CONN_S_LINGER:
        pod_conn_free(c, "linger timeout");
        return;
    default: {
        /* Idle timer, re-armed lazily rather than on every request. An
         * h2 connection with a stream waiting for its answer is not idle. */
        uint64_t idle = util_now_ms() - c->last_active_ms;
        if (pod_h2_open_streams(c) > 0)
            idle = 0;
        if (idle >= c->w->cfg->idle_ms)
            pod_conn_free(c, "idle timeout");
        else
            conn_arm_timer(c, c->w->cfg->idle_ms - idle);
        return;
    }
    }
}

void pod_conn_new(struct worker *w, evutil_socket_t fd, bool probe)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct conn *c = xmalloc(sizeof(*c));
    memset(c, 0, offsetof(struct conn, url));
    c->magic = CONN_MAGIC;
    c->fd = fd;
    c->w = w;
    c->probe_listener = probe;
    c->id = ++w->next_conn_id;
    c->last_active_ms = util_now_ms();
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->timer = evtimer_new(w->base, on_timer, c);
    c->out = evbuffer_new();
    CHECK(c->rev && c->wev && c->timer && c->out);
    pod_http_parser_init(c);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    if (c->w->cfg->idle_ms)
        conn_arm_timer(c, c->w->cfg->idle_ms);
    conn_update_events(c);
}
