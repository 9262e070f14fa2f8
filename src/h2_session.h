/*
 * h2_session.h — the server side of one HTTP/2 client connection (RFC 9113),
 * on nghttp2, driven from the client's own conn: bytes read go through
 * nghttp2_session_mem_recv, frames to send come out of
 * nghttp2_session_mem_send into the conn's output. No second event loop.
 *
 * Entry: h2_session_start(c), for a cleartext client whose first bytes are
 * the connection preface (prior knowledge, h2_session_sniff), or for a TLS
 * client whose ALPN chose "h2" (the TLS side calls it once the handshake
 * is done; client.c's sniff of the first bytes, when the client table's
 * h2_start is set (worker.c sets it to this function), finds the preface
 * in the decrypted input as well). The client must have its conn and timer
 * (not parked), with its input starting at the preface. It is then in
 * CL_S_H2 and hands its socket events here.
 *
 * Each request stream is one txn (h2_stream.h): routed, split, logged and
 * counted on its own by proxy.c.
 *
 * Protection (each closes the connection with GOAWAY, counted in
 * h2_metrics.h): SETTINGS_MAX_CONCURRENT_STREAMS =
 * limits.h2_max_concurrent_streams (streams over it are refused with
 * REFUSED_STREAM, and a client that keeps trying gets ENHANCE_YOUR_CALM),
 * SETTINGS_MAX_HEADER_LIST_SIZE = limits.max_header_bytes (a stream over it
 * or over max_header_count gets 431; a header list decoding to 4× the limit
 * is an HPACK bomb: ENHANCE_YOUR_CALM), and per 10-second window at most
 * H2_MAX_RESETS stream resets by the client (rapid reset, CVE-2023-44487),
 * H2_MAX_SETTINGS SETTINGS, H2_MAX_PINGS PINGs, H2_MAX_EMPTY empty frames;
 * H2_MAX_CONTINUATIONS CONTINUATION frames per header block; a response
 * blocked by the client's flow-control window with no frame from the
 * client for timeouts.client_body is a stall; a header block (HEADERS +
 * CONTINUATIONs) not complete within timeouts.client_header is a
 * slowloris (GOAWAY ENHANCE_YOUR_CALM, header_timeout); no stream for
 * timeouts.client_idle closes an idle connection (GOAWAY NO_ERROR).
 *
 * Ownership: the client owns its session (client.h: c->h2); the session
 * owns its streams. The worker's thread only.
 */
#ifndef WEIR_H2_SESSION_H
#define WEIR_H2_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#define H2_SESSION_MAGIC 0x48325353u /* "H2SS" */
#define H2_FLOOD_WINDOW_MS 10000u
#define H2_MAX_RESETS 500u
#define H2_MAX_SETTINGS 100u
#define H2_MAX_PINGS 100u
#define H2_MAX_EMPTY 100u
#define H2_MAX_REFUSED 100u
#define H2_MAX_CONTINUATIONS 16u

struct client;
struct h2_stream;

struct h2_session {
    uint32_t magic;
    struct client *c;          /* borrowed: the connection (it owns us) */
    nghttp2_session *ng;       /* owned */
    struct h2_stream *streams; /* owned: every stream with state (list) */
    unsigned n_streams;
    bool in_io;      /* inside nghttp2 recv/send: no flush now */
    bool freeing;    /* h2_session_free runs */
    bool dead;       /* a protection fired: GOAWAY, then close */
    bool draining;   /* weir stops: GOAWAY sent, close when idle */
    int calm_reason; /* enum h2_goaway_reason of the GOAWAY, -1 none */
    uint64_t window_start_ms;
    uint32_t resets, settings, pings, empty, refused; /* in this window */
    uint32_t continuations;                           /* in the header block being received */
    uint64_t block_since_ms;                          /* a header block began and is not complete, or 0 */
    int32_t block_stream;                             /* the stream of that block */
    uint64_t last_rx_ms;                              /* last bytes from the client */
    uint64_t idle_since_ms;                           /* the last stream ended */
};

/*
 * Turn client c into an HTTP/2 connection: its input (starting with the
 * preface) and everything after go to a new session. On failure the client
 * is closed. The entry point for TLS with ALPN "h2" as well.
 */
void h2_session_start(struct client *c);

/* Close every stream (their txns end as the client leaving, or as a stop
 * when why is CLIENT_CLOSE_STOP) and free the session. From client_close
 * (through the client's ops). */
void h2_session_free(struct h2_session *s, const char *why);

/* The client's conn events in CL_S_H2 (client.c calls them through the
 * client's ops, struct client_ops). */
void h2_session_on_read(struct h2_session *s);
void h2_session_on_drained(struct h2_session *s);
void h2_session_on_timer(struct h2_session *s);

/* Weir stops: GOAWAY (NO_ERROR), let running streams finish, then close. */
void h2_session_drain(struct h2_session *s);

/* Write what nghttp2 has to send into the client's output and send it;
 * closes the connection when the session is over. Not from inside nghttp2
 * callbacks (a no-op there: the outer call flushes). */
void h2_session_flush(struct h2_session *s);

/* A stream ended (h2_stream.c): unlink it. */
void h2_session_stream_gone(struct h2_session *s, struct h2_stream *st);

#endif
