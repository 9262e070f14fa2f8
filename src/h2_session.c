/*
 * h2_session.c — see h2_session.h.
 *
 * I/O: h2_session_on_read feeds the client's input to
 * nghttp2_session_mem_recv; h2_session_flush moves what
 * nghttp2_session_mem_send produces into the client's output until
 * FLOW_HIGH_WATER is queued (then waits for the drain callback). The
 * automatic WINDOW_UPDATE is off: h2_stream.c acknowledges request DATA
 * once proxy.c took it.
 *
 * Protections count frames in on_begin_frame (before nghttp2 acts on
 * them) and, when one trips, terminate the session with
 * ENHANCE_YOUR_CALM: nghttp2 sends the GOAWAY, reads nothing more, and the
 * connection closes once it is flushed. GOAWAYs are counted where they are
 * sent (on_frame_send), with the reason that caused them. nghttp2's own
 * flood limits (outbound ACK queue, reset rate, CONTINUATIONs) stay on as
 * a backstop above ours.
 */
#include "h2_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "client.h"
#include "conn.h"
#include "h2_metrics.h"
#include "h2_stream.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#define TICK_MS 1000u
#define STREAM_WINDOW (256u * 1024u)      /* SETTINGS_INITIAL_WINDOW_SIZE */
#define CONN_WINDOW (16u * 1024u * 1024u) /* the connection's receive window */

static const struct config *cur_config(const struct h2_session *s)
{
    return loop_snapshot(s->c->loop)->cfg;
}

static void session_label(const struct h2_session *s, char *buf, size_t len)
{
    client_label(s->c, buf, len);
}

/* A protection tripped: GOAWAY ENHANCE_YOUR_CALM, read nothing more. */
static void calm(struct h2_session *s, enum h2_goaway_reason r)
{
    if (s->dead)
        return;
    s->dead = true;
    s->calm_reason = (int)r;
    char label[96];
    session_label(s, label, sizeof(label));
    log_warn("%s HTTP/2: %s: GOAWAY ENHANCE_YOUR_CALM", label, h2_metrics_goaway_label(r));
    nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

static void new_window(struct h2_session *s, uint64_t now)
{
    if (now - s->window_start_ms < H2_FLOOD_WINDOW_MS)
        return;
    s->window_start_ms = now;
    s->resets = s->settings = s->pings = s->empty = s->refused = 0;
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *arg)
{
    (void)ng;
    struct h2_session *s = arg;
    if (s->dead)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    new_window(s, util_now_ms());
    switch (hd->type) {
    case NGHTTP2_RST_STREAM:
        if (++s->resets > H2_MAX_RESETS)
            calm(s, H2_GA_RAPID_RESET);
        break;
    case NGHTTP2_SETTINGS:
        if (!(hd->flags & NGHTTP2_FLAG_ACK) && ++s->settings > H2_MAX_SETTINGS)
            calm(s, H2_GA_SETTINGS);
        break;
    case NGHTTP2_PING:
        if (!(hd->flags & NGHTTP2_FLAG_ACK) && ++s->pings > H2_MAX_PINGS)
            calm(s, H2_GA_PING);
        break;
    case NGHTTP2_DATA:
        if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM) &&
            ++s->empty > H2_MAX_EMPTY)
            calm(s, H2_GA_EMPTY_FRAMES);
        break;
    case NGHTTP2_HEADERS:
        /* Until the block's last byte (a frame's payload may trickle too). */
        s->continuations = 0;
        s->block_since_ms = util_now_ms();
        s->block_stream = hd->stream_id;
        break;
    case NGHTTP2_CONTINUATION:
        if (++s->continuations > H2_MAX_CONTINUATIONS)
            calm(s, H2_GA_CONTINUATION);
        break;
    default:
        s->block_since_ms = 0; /* any other frame: a block before it is whole */
        break;
    }
    return s->dead ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct h2_session *s = arg;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = h2_stream_new(s, frame->hd.stream_id);
    *h2_stream_next(st) = s->streams;
    s->streams = st;
    s->n_streams++;
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
                     void *arg)
{
    (void)flags;
    struct h2_session *s = arg;
    if (s->dead)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    /* request trailers: HTTP/1.1 upstreams get none, but they count */
    int rv = frame->headers.cat == NGHTTP2_HCAT_REQUEST
                 ? h2_stream_on_header(st, name, nlen, value, vlen)
                 : h2_stream_on_trailer(st, nlen, vlen);
    if (rv == NGHTTP2_ERR_CALLBACK_FAILURE)
        calm(s, H2_GA_HPACK_BOMB);
    return rv;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct h2_session *s = arg;
    if (frame->hd.type == NGHTTP2_HEADERS)
        s->block_since_ms = 0; /* the whole block is in */
    if (s->dead)
        return 0;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            h2_stream_on_headers_done(st, end);
        else if (end)
            h2_stream_on_end(st);
        break;
    case NGHTTP2_DATA:
        if (end)
            h2_stream_on_end(st);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *arg)
{
    (void)flags;
    struct h2_session *s = arg;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st || s->dead) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    h2_stream_on_data(st, data, len);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
    (void)arg;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (st) {
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        h2_stream_on_close(st, code);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct h2_session *s = arg;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        enum h2_goaway_reason r;
        if (s->calm_reason >= 0)
            r = (enum h2_goaway_reason)s->calm_reason;
        else if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
            r = H2_GA_PROTOCOL;
        else
            r = s->draining ? H2_GA_DRAIN : H2_GA_IDLE;
        h2_metrics_goaway(r);
        if (r == H2_GA_PROTOCOL) {
            char label[96];
            session_label(s, label, sizeof(label));
            log_info("%s HTTP/2: protocol error: GOAWAY %s", label,
                     nghttp2_http2_strerror(frame->goaway.error_code));
        }
    } else if (frame->hd.type == NGHTTP2_RST_STREAM && frame->hd.stream_id == s->block_stream) {
        s->block_since_ms = 0; /* a refused or bad block: nghttp2 is done with it */
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* The response is whole but the request is not: end the stream
         * (RFC 9113 §8.1) rather than hold it open for the client. */
        struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (st && !h2_stream_request_ended(st))
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                      NGHTTP2_NO_ERROR);
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM &&
        frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) {
        h2_metrics_refused(H2_RF_MAX_CONCURRENT);
        new_window(s, util_now_ms());
        if (++s->refused > H2_MAX_REFUSED)
            calm(s, H2_GA_REFUSED);
    }
    return 0;
}

/* The callbacks and options are the same for every session: built once per
 * process, read-only after (nghttp2 copies what it needs at session_new). */
static nghttp2_session_callbacks *cbs;
static nghttp2_option *opt;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void setup(void)
{
    CHECK(nghttp2_session_callbacks_new(&cbs) == 0);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    CHECK(nghttp2_option_new(&opt) == 0);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, 64);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    /* backstops above weir's own counts (ours trip first) */
    nghttp2_option_set_stream_reset_rate_limit(opt, 4 * H2_MAX_RESETS, H2_MAX_RESETS / 10);
    nghttp2_option_set_max_continuations(opt, 4 * H2_MAX_CONTINUATIONS);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void ops_read(void *arg)
{
    h2_session_on_read(arg);
}

static void ops_drained(void *arg)
{
    h2_session_on_drained(arg);
}

static void ops_timer(void *arg)
{
    h2_session_on_timer(arg);
}

static void ops_drain(void *arg)
{
    h2_session_drain(arg);
}

static void ops_close(void *arg, const char *why)
{
    h2_session_free(arg, why);
}

static const struct client_ops session_ops = {
    .on_read = ops_read,
    .on_drained = ops_drained,
    .on_timer = ops_timer,
    .on_drain = ops_drain,
    .on_close = ops_close,
};

static void arm_tick(struct h2_session *s)
{
    evtimer_add(s->c->timer, loop_timeout(s->c->loop, TICK_MS));
}

void h2_session_start(struct client *c)
{
    const struct config *cfg = loop_snapshot(c->loop)->cfg;
    struct h2_session *s = xcalloc(1, sizeof(*s));
    s->magic = H2_SESSION_MAGIC;
    s->c = c;
    s->calm_reason = -1;
    s->window_start_ms = s->last_rx_ms = s->idle_since_ms = util_now_ms();
    pthread_once(&setup_once, setup);
    if (nghttp2_session_server_new2(&s->ng, cbs, s, opt) != 0) {
        free(s);
        client_close(c, "out of resources");
        return;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->h2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    c->ops = &session_ops;
    c->ops_arg = s;
    c->state = CL_S_H2;
    h2_metrics_connection();
    arm_tick(s);
    h2_session_on_read(s);
}

void h2_session_free(struct h2_session *s, const char *why)
{
    CHECK(s->magic == H2_SESSION_MAGIC);
    s->freeing = true;
    const char *stream_why = why == CLIENT_CLOSE_STOP ? CLIENT_CLOSE_STOP : CLIENT_CLOSE_PEER;
    while (s->streams) {
        struct h2_stream *st = s->streams;
        s->streams = *h2_stream_next(st);
        s->n_streams--;
        h2_stream_free(st, stream_why);
    }
    nghttp2_session_del(s->ng);
    s->magic = 0;
    free(s);
}

void h2_session_stream_gone(struct h2_session *s, struct h2_stream *st)
{
    for (struct h2_stream **pp = &s->streams; *pp; pp = h2_stream_next(*pp)) {
        if (*pp == st) {
            *pp = *h2_stream_next(st);
            s->n_streams--;
            break;
        }
    }
    if (s->n_streams == 0)
        s->idle_since_ms = util_now_ms();
}

/* The session has nothing more to say or hear: close after the flush. */
static void session_over(struct h2_session *s)
{
    client_close_after_flush(s->c);
}

void h2_session_flush(struct h2_session *s)
{
    CHECK(s->magic == H2_SESSION_MAGIC);
    struct client *c = s->c;
    if (s->in_io || s->freeing || c->state != CL_S_H2)
        return;
    struct evbuffer *out = c->cn->out;
    while (evbuffer_get_length(out) < FLOW_HIGH_WATER) {
        const uint8_t *data;
        s->in_io = true;
        ssize_t n = nghttp2_session_mem_send(s->ng, &data);
        s->in_io = false;
        if (n < 0) {
            char label[96];
            session_label(s, label, sizeof(label));
            log_warn("%s HTTP/2: %s", label, nghttp2_strerror((int)n));
            client_close(c, "HTTP/2 send failed");
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    conn_send(c->cn);
    if (c->state == CL_S_H2 && !nghttp2_session_want_read(s->ng) &&
        !nghttp2_session_want_write(s->ng))
        session_over(s);
}

void h2_session_on_read(struct h2_session *s)
{
    CHECK(s->magic == H2_SESSION_MAGIC);
    struct client *c = s->c;
    struct evbuffer *in = c->cn->in;
    s->last_rx_ms = util_now_ms();
    while (evbuffer_get_length(in) > 0 && !s->dead) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        s->in_io = true;
        ssize_t n = nghttp2_session_mem_recv(s->ng, v.iov_base, v.iov_len);
        s->in_io = false;
        if (n < 0) {
            if (!s->dead) {
                char label[96];
                session_label(s, label, sizeof(label));
                log_info("%s HTTP/2: %s", label, nghttp2_strerror((int)n));
                if (n == NGHTTP2_ERR_FLOODED)
                    calm(s, H2_GA_PING);
                else if (n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
                    calm(s, H2_GA_CONTINUATION);
                else if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                    nghttp2_session_terminate_session(s->ng, NGHTTP2_PROTOCOL_ERROR);
                else {
                    client_close(c, "not HTTP/2");
                    return;
                }
            }
            s->dead = true;
            break;
        }
        evbuffer_drain(in, (size_t)n);
    }
    if (s->dead)
        evbuffer_drain(in, evbuffer_get_length(in));
    h2_session_flush(s);
}

void h2_session_on_drained(struct h2_session *s)
{
    CHECK(s->magic == H2_SESSION_MAGIC);
    h2_session_flush(s);
}

void h2_session_on_timer(struct h2_session *s)
{
    CHECK(s->magic == H2_SESSION_MAGIC);
    struct client *c = s->c; /* the flush may close it and free s: c stays until reaped */
    const struct config *cfg = cur_config(s);
    uint64_t now = util_now_ms();
    if (!s->dead && s->n_streams == 0 && now - s->idle_since_ms >= cfg->client_idle_timeout_ms &&
        now - s->last_rx_ms >= cfg->client_idle_timeout_ms) {
        s->dead = true;
        nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
    } else if (!s->dead && s->block_since_ms &&
               now - s->block_since_ms >= cfg->client_header_timeout_ms) {
        calm(s, H2_GA_HEADER_TIMEOUT);
    } else if (!s->dead && now - s->last_rx_ms >= cfg->client_body_timeout_ms) {
        for (struct h2_stream *st = s->streams; st; st = *h2_stream_next(st)) {
            if (h2_stream_is_blocked(st)) {
                calm(s, H2_GA_STALL);
                break;
            }
        }
    }
    h2_session_flush(s);
    if (c->state == CL_S_H2)
        arm_tick(s);
}

void h2_session_drain(struct h2_session *s)
{
    CHECK(s->magic == H2_SESSION_MAGIC);
    if (s->draining || s->dead)
        return;
    s->draining = true;
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_session_flush(s);
}
