/*
 * pod_h2.h — what weir-pod's h2c session (pod_h2.c) and its gRPC echo
 * service (pod_grpc.c) share: one stream of a connection's nghttp2
 * session and the few calls the gRPC side makes into the session side.
 */
#ifndef WEIR_POD_H2_H
#define WEIR_POD_H2_H

#include "pod.h"

#include <nghttp2/nghttp2.h>

#define H2_STREAM_OUT_HIGH (256 * 1024) /* gRPC stream: stop consuming above this */
#define H2_METHOD_MAX 16

/* One request stream. Created on its first HEADERS, freed when nghttp2
 * closes it (or with the session). */
struct pod_h2_stream {
    struct conn *c;                    /* borrowed */
    struct pod_h2_stream *prev, *next; /* c->h2's list */
    int32_t id;
    struct req req;            /* route, argument, fault decision */
    struct event *timer;       /* owned: the answer's delay */
    struct evbuffer *in;       /* owned: request body kept (echo, unary) or a partial gRPC message */
    struct evbuffer *out;      /* owned: response body not yet given to nghttp2 */
    uint64_t left;             /* /bytes: 'x' bytes still to produce after out */
    uint32_t repeat;           /* x-repeat (ServerStream copies), 0 when not given */
    uint32_t repeat_left;      /* ServerStream: copies still to produce */
    const uint8_t *repeat_msg; /* ServerStream: the framed message, inside in */
    size_t repeat_len;
    size_t unconsumed; /* DATA bytes not yet returned to flow control */
    char *path;        /* owned: :path */
    size_t path_len;
    int grpc_status;      /* the trailers' grpc-status (trailers set) */
    const char *grpc_msg; /* static; the trailers' grpc-message, or NULL */
    bool routed;          /* req.route is set (from :path) */
    bool grpc_ctype;      /* content-type is application/grpc[+...] */
    bool grpc_over;       /* gRPC: the answer's end is decided; later DATA is dropped */
    bool req_done;        /* the client's END_STREAM arrived */
    bool responded;       /* response headers submitted */
    bool out_open;        /* more body may come (a gRPC stream): defer, not EOF */
    bool trailers;        /* send grpc trailers after the body */
    bool deferred;        /* the data source returned DEFERRED */
    bool goaway_after;    /* /close: GOAWAY once this stream is over */
    bool repeat_bad;      /* x-repeat was not 1..1000000 */
    char method[H2_METHOD_MAX];
};

/* Submit st's response head (:status, date, x-pod, x-version, content-type
 * if ctype, content-length if clen >= 0, grpc-status/grpc-message if
 * trailers_only) and, if body, a data source that sends st->out, then
 * st->left bytes of 'x', then (st->trailers) the gRPC trailers. */
void pod_h2_submit(struct pod_h2_stream *st, int status, const char *ctype, int64_t clen,
                   bool body, bool trailers_only);

/* st->out got bytes (or st->out_open went false): wake its data source. */
void pod_h2_resume(struct pod_h2_stream *st);

/* gRPC (pod_grpc.c): the request's head is complete; decide what to do now
 * (a stream starts its answer at once, after its faults and delay). */
void pod_grpc_headers(struct pod_h2_stream *st);

/* gRPC: DATA bytes of the request. Returns 0, or -1 to reset the stream. */
int pod_grpc_data(struct pod_h2_stream *st, const uint8_t *p, size_t n);

/* gRPC: answer st now (its delay is over, or the request is complete). */
void pod_grpc_respond(struct pod_h2_stream *st);

/* gRPC: the client's END_STREAM arrived. */
void pod_grpc_end(struct pod_h2_stream *st);

/* Arm st's delay timer for ms; when it fires the stream is answered. */
void pod_h2_delay(struct pod_h2_stream *st, uint64_t ms);

#endif
