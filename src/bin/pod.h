/*
 * pod.h — the parts of weir-pod shared by its three files:
 *
 *   weir_pod.c  command line, listeners, worker threads, signals (main)
 *   pod_conn.c  one client connection: socket I/O, state machine, timers
 *   pod_http.c  everything HTTP/1.1: llhttp callbacks, routing, the answers
 *   pod_h2.c    h2c (prior knowledge): the nghttp2 session, the same answers
 *   pod_grpc.c  the gRPC echo service over h2 (/weir.Echo/Unary, /Stream)
 *
 * The design comment of the whole program is at the top of weir_pod.c.
 */
#ifndef WEIR_POD_H
#define WEIR_POD_H

#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <llhttp.h>

#define IN_CAP (16 * 1024)          /* per-client input buffer */
#define URL_MAX 8192                /* longer request targets get 414 */
#define HEAD_MAX (64 * 1024)        /* larger request heads get 431 */
#define ECHO_BODY_MAX (1024 * 1024) /* /echo bodies above this get 413 */
#define OUT_HIGH (256 * 1024)       /* stop producing above this much output */
#define LINGER_MS 2000              /* lingering close, RFC 9112 §9.6 */
#define IDENT_MAX 256               /* longest --name / --version */
#define POD_PAGE (64 * 1024)        /* size of pod_http_x_page */

#define CONN_MAGIC 0x636f6e6eu
#define WORKER_MAGIC 0x776f726bu

/*
 * Set up by main() before the workers start and read-only afterwards,
 * except the two atomics, which any worker may change.
 */
struct pod_config {
    const char *name, *version; /* borrowed from argv / static */
    uint32_t latency_ms, jitter_ms, idle_ms;
    uint32_t error_ppm; /* --error-rate in parts per million */
    unsigned threads;
    uint64_t seed;
    bool has_probe, verbose, quiet;
    size_t ident_len, demo_body_len;
    char ident[2 * IDENT_MAX + 32]; /* "X-Pod: ..\r\nX-Version: ..\r\n" */
    char demo_body[2 * IDENT_MAX + 32];
    atomic_bool ready;                 /* /ready answers 200 */
    atomic_bool faults;                /* --latency and --error-rate apply (POST /faults/on|off) */
    atomic_uint_fast64_t app_requests; /* counted only with --error-rate */
};

enum conn_state {
    CONN_S_READ = 0, /* parsing requests; each answer queued when complete */
    CONN_S_WAIT,     /* answer delayed (--latency, /sleep); parser paused */
    CONN_S_STREAM,   /* streaming a /bytes or /chunked body; parser paused */
    CONN_S_TUNNEL,   /* after 101 on /ws: every byte read is written back */
    CONN_S_CLOSING,  /* last answer queued; close once the output drains */
    CONN_S_LINGER,   /* write side shut; input discarded until EOF/timeout */
    CONN_S_H2,       /* h2c: every byte goes to the nghttp2 session (pod_h2.c) */
};

enum route {
    ROUTE_DEMO = 0,     /* the demo answer */
    ROUTE_ECHO,         /* /echo: request line, headers, body */
    ROUTE_UPLOAD,       /* /upload: count the body */
    ROUTE_STATUS,       /* /status/NNN */
    ROUTE_BYTES,        /* /bytes/N, Content-Length */
    ROUTE_CHUNKED,      /* /chunked/N, chunked when HTTP/1.1 */
    ROUTE_SLEEP,        /* /sleep/MS */
    ROUTE_CLOSE,        /* /close: answer, then close */
    ROUTE_WS,           /* /ws: 101 and byte echo */
    ROUTE_BAD,          /* a known path with a malformed argument: 400 */
    ROUTE_GRPC_UNARY,   /* /weir.Echo/Unary: one message back (h2 only) */
    ROUTE_GRPC_STREAM,  /* /weir.Echo/Stream: each message back as it comes */
    ROUTE_GRPC_CLIENT,  /* /weir.Echo/ClientStream: many in, one (all payloads) back */
    ROUTE_GRPC_SERVER,  /* /weir.Echo/ServerStream: one in, x-repeat copies back */
    ROUTE_GRPC_UNKNOWN, /* another /weir.Echo/ method: UNIMPLEMENTED */
    ROUTE_LIVE,         /* probes from here on: no latency, no injected errors */
    ROUTE_READY,        /* /ready */
    ROUTE_READY_ON,     /* POST /ready/on */
    ROUTE_READY_OFF,    /* POST /ready/off */
    ROUTE_FAULTS_ON,    /* POST /faults/on: --latency and --error-rate from now on */
    ROUTE_FAULTS_OFF,   /* POST /faults/off */
    ROUTE_NOT_FOUND,    /* anything else on the probe listener */
};

enum hdr_kind {
    HDR_OTHER = 0, /* a header we only count */
    HDR_UPGRADE,   /* Upgrade: look for "websocket" */
    HDR_EXPECT,    /* Expect: look for "100-continue" */
};

/* What the current request asked for; reset by on_message_begin. */
struct req {
    enum route route;
    enum hdr_kind hdr;    /* header whose value is being collected */
    int status;           /* /status/NNN */
    int fail_status;      /* set by a callback that aborts the parse */
    uint64_t arg;         /* N of /bytes, /chunked; ms of /sleep */
    uint64_t body_bytes;  /* request body bytes seen so far */
    size_t head_bytes;    /* target + header bytes seen so far */
    const char *bad_msg;  /* static; ROUTE_BAD body */
    bool head;            /* HEAD: no body in the answer */
    bool http11;          /* HTTP/1.1 (chunked, 100-continue allowed) */
    bool keep_alive;      /* llhttp_should_keep_alive() at the end */
    bool in_body;         /* headers done; later fields are trailers */
    bool ws_header;       /* Upgrade: websocket seen */
    bool expect_continue; /* Expect: 100-continue seen */
    bool will_upgrade;    /* the answer is 101; the rest is a tunnel */
    bool injected;        /* --error-rate picked this request */
    bool echo_too_large;  /* /echo body went over ECHO_BODY_MAX */
    uint8_t name_len;     /* UINT8_MAX: longer than name[] */
    uint8_t value_len;
    char name[16];
    char value[32];
};

struct worker {
    uint32_t magic;
    unsigned id;
    struct pod_config *cfg; /* borrowed (see struct pod_config) */
    pthread_t thread;
    struct event_base *base;          /* owned */
    struct evconnlistener *main_lst;  /* owned */
    struct evconnlistener *probe_lst; /* owned, worker 0 only */
    struct event *stop_ev;            /* owned */
    struct conn *conns;               /* owned list */
    uint64_t next_conn_id;
    uint64_t rng;    /* xorshift64 state, for jitter */
    time_t date_sec; /* second the Date line is for */
    size_t date_len;
    size_t demo_len, demo_head_len; /* prebuilt demo answer, keep-alive */
    char date[64];                  /* "Date: ...\r\n" */
    char demo[1024];
};

struct conn {
    uint32_t magic;
    enum conn_state state;
    int fd;                   /* owned */
    bool probe_listener;      /* accepted on the --probe listener */
    bool peer_eof;            /* read returned 0 */
    bool rd_on, wr_on;        /* rev / wev currently added */
    bool stream_chunked;      /* STREAM frames pieces as chunks */
    bool proto_known;         /* first bytes seen: HTTP/1.x or h2 preface */
    bool h2_more;             /* h2: output stopped at OUT_HIGH, more to send */
    uint64_t id;              /* c#W.N in logs */
    uint64_t last_active_ms;  /* last read or write progress */
    uint64_t stream_left;     /* body bytes still to queue in STREAM */
    struct worker *w;         /* borrowed */
    struct conn *prev, *next; /* worker's list; borrowed */
    struct event *rev, *wev;  /* owned */
    struct event *timer;      /* owned: delay (WAIT), linger, idle */
    struct evbuffer *out;     /* owned */
    struct evbuffer *echo;    /* owned, NULL until the first /echo */
    struct pod_h2 *h2;        /* owned, NULL unless h2c (pod_h2.c) */
    llhttp_t parser;
    struct req req;
    size_t url_len;
    size_t in_off, in_len; /* unparsed bytes are in[in_off, +in_len) */
    char url[URL_MAX];     /* request target of the current request */
    char in[IN_CAP];
};

/* A gRPC route (h2 only)? */
static inline bool pod_route_is_grpc(enum route r)
{
    return r >= ROUTE_GRPC_UNARY && r <= ROUTE_GRPC_UNKNOWN;
}

/* Mark n bytes of c's input as used. Worker thread of c. */
static inline void pod_conn_consume(struct conn *c, size_t n)
{
    c->in_off += n;
    c->in_len -= n;
    if (c->in_len == 0)
        c->in_off = 0;
}

/* Make all progress possible on c now (parse, answer, write, close).
 * Returns -1 if c was freed. Worker thread of c, outside nghttp2/llhttp. */
int pod_conn_run(struct conn *c);

/* Start serving an accepted socket (fd is owned from here). Worker thread. */
void pod_conn_new(struct worker *w, evutil_socket_t fd, bool probe);

/* Close and free c now; why is logged with --verbose. Never call it from
 * inside an llhttp callback. Worker thread of c. */
void pod_conn_free(struct conn *c, const char *why);

/* Fill the static page streamed bodies refer to. main(), before workers. */
void pod_http_init(void);

/* Set up c's request parser. Worker thread of c. */
void pod_http_parser_init(struct conn *c);

/* Parse c's buffered input while c is in READ and its output has room;
 * answers are queued into c->out and c->state moves on. Worker thread. */
void pod_http_parse(struct conn *c);

/* Queue the answer to c's current request, whose delay is over. */
void pod_http_respond(struct conn *c);

/* STREAM: queue more of the body, up to OUT_HIGH bytes of output; moves c
 * out of STREAM when the body is complete. Worker thread of c. */
void pod_http_fill(struct conn *c);

/* Fill r->route (and its argument) from a request target; the rules are
 * the same for HTTP/1.1 and h2. */
void pod_http_route(struct req *r, const char *url, size_t url_len, bool probe_listener,
                    bool has_probe, bool is_connect);

/* Apply --error-rate (sets r->injected) and --latency/--latency-jitter
 * and /sleep to request r; returns the delay before answering, in ms. */
uint64_t pod_http_faults(struct worker *w, struct req *r);

/* Refresh w->date ("Date: ...\r\n") and the prebuilt demo answer. */
void pod_http_refresh_date(struct worker *w);

/* 'x' bytes streamed bodies are made of (POD_PAGE of them). */
extern char pod_http_x_page[POD_PAGE];

/* h2c: is c's input the client preface? 1 yes, 0 no, -1 too short yet. */
int pod_h2_detect(const struct conn *c);

/* Switch c to h2 (state CONN_S_H2): an nghttp2 server session that will
 * read the preface still in c's input. 0, or -1 (c unchanged). */
int pod_h2_start(struct conn *c);

/* CONN_S_H2: feed c's input to the session, queue its output into c->out
 * up to OUT_HIGH (c->h2_more: it stopped there), move c to CLOSING when the
 * session is over. Worker thread of c. */
void pod_h2_run(struct conn *c);

/* Streams of c's h2 session not closed yet (0 without h2). */
size_t pod_h2_open_streams(const struct conn *c);

/* Free c's h2 session and streams (c->h2 may be NULL). */
void pod_h2_free(struct conn *c);

#endif
