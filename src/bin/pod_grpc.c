/*
 * pod_grpc.c — weir-pod's gRPC echo service, over the gRPC wire format on
 * its h2c streams (pod_h2.c), with no code generator: messages are opaque
 * bytes, each framed as 1 byte compressed flag + 4 bytes big-endian length
 * + the message.
 *
 *   /weir.Echo/Unary   one message in, the same message back, trailers
 *                      grpc-status: 0. Not exactly one message → INTERNAL.
 *   /weir.Echo/Stream  bidirectional: each message echoed as soon as it is
 *                      complete; the answer's head goes out at once (after
 *                      --latency), trailers grpc-status: 0 after the
 *                      client's END_STREAM. Backpressure: pod_h2.c stops
 *                      returning flow-control credit while the echo not yet
 *                      sent is above H2_STREAM_OUT_HIGH.
 *   /weir.Echo/ClientStream  client streaming: any number of messages in,
 *                      one message back holding all their payloads in order.
 *   /weir.Echo/ServerStream  server streaming: one message in, x-repeat: N
 *                      (1..1000000, default 1) copies back, made only as fast
 *                      as the client's stream window takes them.
 *   /weir.Echo/other   UNIMPLEMENTED (12).
 *
 * Faults: --latency delays the answer's head; --error-rate makes the RPC
 * fail with UNAVAILABLE (14) "error injected" as a Trailers-Only answer
 * (HTTP 200, grpc-status in the head), counted like any other request.
 * Compressed messages → UNIMPLEMENTED, messages above 1 MiB →
 * RESOURCE_EXHAUSTED (8), a message cut by END_STREAM → INTERNAL (13).
 */
#include "pod_h2.h"

#include <event2/buffer.h>

#define GRPC_OK 0
#define GRPC_INVALID_ARGUMENT 3
#define GRPC_RESOURCE_EXHAUSTED 8
#define GRPC_UNIMPLEMENTED 12
#define GRPC_INTERNAL 13
#define GRPC_UNAVAILABLE 14
#define GRPC_PREFIX 5
#define GRPC_CTYPE "application/grpc"

/* Answer with only a head that carries the status (gRPC "Trailers-Only"). */
static void grpc_trailers_only(struct pod_h2_stream *st, int code, const char *msg)
{
    st->grpc_status = code;
    st->grpc_msg = msg;
    st->grpc_over = true;
    st->out_open = false;
    st->repeat_left = 0;
    evbuffer_drain(st->in, evbuffer_get_length(st->in));
    evbuffer_drain(st->out, evbuffer_get_length(st->out));
    pod_h2_submit(st, 200, GRPC_CTYPE, -1, false, true);
}

/* End an answer whose head is out: the rest of out, then these trailers. */
static void grpc_finish(struct pod_h2_stream *st, int code, const char *msg)
{
    st->grpc_status = code;
    st->grpc_msg = msg;
    st->grpc_over = true;
    st->out_open = false;
    evbuffer_drain(st->in, evbuffer_get_length(st->in));
    pod_h2_resume(st);
}

/* Check the prefix at the start of st->in: 1 a whole message is there
 * (*len: its payload length), 0 not yet, -1 st was failed. */
static int grpc_next(struct pod_h2_stream *st, uint32_t *len)
{
    uint8_t h[GRPC_PREFIX];
    size_t have = evbuffer_get_length(st->in);
    if (have < GRPC_PREFIX)
        return 0;
    evbuffer_copyout(st->in, h, GRPC_PREFIX);
    *len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
    const char *err = NULL;
    int code = GRPC_INTERNAL;
    if (h[0] == 1) {
        err = "compressed messages are not supported";
        code = GRPC_UNIMPLEMENTED;
    } else if (h[0] != 0) {
        err = "bad compressed-flag byte";
    } else if (*len > ECHO_BODY_MAX) {
        err = "message larger than 1 MiB";
        code = GRPC_RESOURCE_EXHAUSTED;
    }
    if (err) {
        if (st->responded)
            grpc_finish(st, code, err);
        else
            grpc_trailers_only(st, code, err);
        return -1;
    }
    return have >= GRPC_PREFIX + (size_t)*len ? 1 : 0;
}

/* A stream: move every complete message from in to out. */
static void grpc_stream_echo(struct pod_h2_stream *st)
{
    bool moved = false;
    uint32_t len;
    while (!st->grpc_over && grpc_next(st, &len) == 1) {
        evbuffer_remove_buffer(st->in, st->out, GRPC_PREFIX + (size_t)len);
        moved = true;
    }
    if (moved)
        pod_h2_resume(st);
}

void pod_grpc_headers(struct pod_h2_stream *st)
{
    if (st->req.route != ROUTE_GRPC_STREAM)
        return; /* unary and unknown methods answer at END_STREAM */
    uint64_t delay = pod_http_faults(st->c->w, &st->req);
    if (delay > 0)
        pod_h2_delay(st, delay);
    else
        pod_grpc_respond(st);
}

int pod_grpc_data(struct pod_h2_stream *st, const uint8_t *p, size_t n)
{
    if (st->grpc_over)
        return 0; /* answered already: the rest is dropped */
    if (st->req.route != ROUTE_GRPC_STREAM) {
        /* Unary: keep the body, up to one largest message. */
        if (st->req.echo_too_large)
            return 0;
        if (evbuffer_get_length(st->in) + n > GRPC_PREFIX + ECHO_BODY_MAX) {
            st->req.echo_too_large = true;
            evbuffer_drain(st->in, evbuffer_get_length(st->in));
            return 0;
        }
        evbuffer_add(st->in, p, n);
        return 0;
    }
    evbuffer_add(st->in, p, n);
    if (st->responded)
        grpc_stream_echo(st);
    else
        (void)grpc_next(st, &(uint32_t){0}); /* fail a bad prefix early */
    return 0;
}

void pod_grpc_end(struct pod_h2_stream *st)
{
    if (st->req.route == ROUTE_GRPC_STREAM) {
        if (!st->responded || st->grpc_over)
            return; /* pod_grpc_respond finishes it after the delay */
        grpc_stream_echo(st);
        if (st->grpc_over)
            return;
        if (evbuffer_get_length(st->in) > 0)
            grpc_finish(st, GRPC_INTERNAL, "message cut by the end of the stream");
        else
            grpc_finish(st, GRPC_OK, NULL);
        return;
    }
    uint64_t delay = pod_http_faults(st->c->w, &st->req);
    if (delay > 0)
        pod_h2_delay(st, delay);
    else
        pod_grpc_respond(st);
}

void pod_grpc_respond(struct pod_h2_stream *st)
{
    if (st->grpc_over)
        return;
    if (st->req.injected) {
        grpc_trailers_only(st, GRPC_UNAVAILABLE, "error injected");
        return;
    }
    uint32_t len = 0;
    switch (st->req.route) {
    case ROUTE_GRPC_UNARY:
        if (st->req.echo_too_large) {
            grpc_trailers_only(st, GRPC_RESOURCE_EXHAUSTED, "message larger than 1 MiB");
            return;
        }
        if (grpc_next(st, &len) < 0)
            return;
        if (evbuffer_get_length(st->in) != GRPC_PREFIX + (size_t)len) {
            grpc_trailers_only(st, GRPC_INTERNAL, "a unary call takes exactly one message");
            return;
        }
        evbuffer_add_buffer(st->out, st->in);
        st->grpc_status = GRPC_OK;
        st->trailers = true;
        st->grpc_over = true;
        pod_h2_submit(st, 200, GRPC_CTYPE, -1, true, false);
        return;
    case ROUTE_GRPC_SERVER:
        if (st->repeat_bad) {
            grpc_trailers_only(st, GRPC_INVALID_ARGUMENT, "x-repeat must be 1..1000000");
            return;
        }
        if (st->req.echo_too_large) {
            grpc_trailers_only(st, GRPC_RESOURCE_EXHAUSTED, "message larger than 1 MiB");
            return;
        }
        if (grpc_next(st, &len) < 0)
            return;
        if (evbuffer_get_length(st->in) != GRPC_PREFIX + (size_t)len) {
            grpc_trailers_only(st, GRPC_INTERNAL, "a server-streaming call takes one message");
            return;
        }
        st->repeat_len = evbuffer_get_length(st->in);
        st->repeat_msg = evbuffer_pullup(st->in, -1);
        st->repeat_left = st->repeat ? st->repeat : 1;
        st->grpc_status = GRPC_OK;
        st->trailers = true;
        st->grpc_over = true;
        pod_h2_submit(st, 200, GRPC_CTYPE, -1, true, false);
        return;
    case ROUTE_GRPC_CLIENT: {
        if (st->req.echo_too_large) {
            grpc_trailers_only(st, GRPC_RESOURCE_EXHAUSTED, "messages above 1 MiB in all");
            return;
        }
        int rv;
        while ((rv = grpc_next(st, &len)) == 1) {
            evbuffer_drain(st->in, GRPC_PREFIX);
            evbuffer_remove_buffer(st->in, st->out, len);
        }
        if (rv < 0)
            return;
        if (evbuffer_get_length(st->in) > 0) {
            grpc_trailers_only(st, GRPC_INTERNAL, "message cut by the end of the stream");
            return;
        }
        size_t total = evbuffer_get_length(st->out);
        uint8_t h[GRPC_PREFIX] = {0, (uint8_t)(total >> 24), (uint8_t)(total >> 16),
                                  (uint8_t)(total >> 8), (uint8_t)total};
        evbuffer_prepend(st->out, h, sizeof(h));
        st->grpc_status = GRPC_OK;
        st->trailers = true;
        st->grpc_over = true;
        pod_h2_submit(st, 200, GRPC_CTYPE, -1, true, false);
        return;
    }
    case ROUTE_GRPC_STREAM:
        st->grpc_status = GRPC_OK;
        st->trailers = true;
        st->out_open = true;
        pod_h2_submit(st, 200, GRPC_CTYPE, -1, true, false);
        grpc_stream_echo(st);
        if (st->req_done)
            pod_grpc_end(st);
        return;
    default:
        grpc_trailers_only(st, GRPC_UNIMPLEMENTED, "unknown method of weir.Echo");
        return;
    }
}
