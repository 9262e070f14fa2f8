/*
 * http1.h — all HTTP/1.x syntax: finding and vetting a message head, parsing
 * it (llhttp, strict), the framing decision (RFC 9112 §6), rewriting heads
 * for the other side (hop-by-hop removal, X-Forwarded-*, Via), chunked
 * decoding with re-framing, and the error responses weir answers itself.
 *
 * Pure functions over buffers: no sockets, no timers, no global state.
 *
 * Smuggling defence in depth: http1_scan_head() rejects, before llhttp sees
 * a byte, the shapes Debian's llhttp 8.1 lets through (bare CR, bare LF,
 * obs-fold, control characters); http1_parse_request() then rejects
 * CL+TE, differing Content-Lengths, any TE but exactly "chunked", TE on
 * HTTP/1.0; and the chunk decoder insists on CRLF after every chunk's data.
 * Bodies are always re-framed toward the peer, never forwarded verbatim.
 */
#ifndef WEIR_HTTP1_H
#define WEIR_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "router.h"
#include "util.h"

#define HTTP1_CHUNK_EXT_MAX 256 /* bytes of chunk extensions per chunk */
#define HTTP1_TRAILER_MAX 8192  /* bytes of trailer section */

/* Incremental head scanner state (one per message being read). */
struct http1_scan {
    size_t pos; /* bytes of the buffer already vetted */
    bool in_first_line;
};

enum http1_scan_result {
    H1_SCAN_MORE = 0, /* no complete head yet */
    H1_SCAN_DONE,     /* head complete: *head_len set */
    H1_SCAN_BAD,      /* malformed: *err set */
};

/*
 * Vet bytes p[scan->pos..len) and look for the blank line ending the head.
 * Rejects bare CR, bare LF, NUL and other control characters (HTAB allowed),
 * and obs-fold (a line starting with SP/HTAB). Incremental: call again with
 * the same buffer grown.
 */
enum http1_scan_result http1_scan_head(struct http1_scan *scan, const char *p,
                                       size_t len, size_t *head_len,
                                       const char **err);

enum http1_framing {
    H1_F_NONE = 0, /* no body */
    H1_F_LENGTH,   /* Content-Length bytes */
    H1_F_CHUNKED,  /* chunked transfer coding */
    H1_F_CLOSE,    /* until the connection closes (responses only) */
};

/* Request methods weir treats specially. */
enum http1_method {
    H1_M_OTHER = 0, /* any other token */
    H1_M_GET,       /* GET */
    H1_M_HEAD,      /* HEAD: response has no body */
    H1_M_OPTIONS,   /* OPTIONS: may use asterisk-form */
    H1_M_CONNECT,   /* CONNECT: refused, weir is not an open proxy */
    H1_M_PUT,       /* PUT: idempotent */
    H1_M_DELETE,    /* DELETE: idempotent */
    H1_M_TRACE,     /* TRACE: idempotent */
};

struct http1_request {
    struct strview method; /* borrowed from the head buffer */
    enum http1_method method_id;
    struct strview target;         /* as sent */
    struct strview path;           /* origin-form: what is sent upstream */
    struct strview authority;      /* absolute-form target's authority, else empty;
                                      borrowed; the Host field carries it */
    uint8_t minor;                 /* HTTP/1.minor */
    struct router_header *headers; /* borrowed array (caller supplies) */
    size_t n_headers;
    size_t max_headers;
    enum http1_framing framing;
    uint64_t content_length;
    bool keep_alive;      /* client wants the connection kept */
    bool upgrade;         /* Connection: upgrade + Upgrade: present */
    bool expect_continue; /* Expect: 100-continue */
    size_t head_len;
};

struct http1_response {
    int status;
    uint8_t minor;
    struct strview reason;
    struct router_header *headers; /* borrowed array */
    size_t n_headers;
    size_t max_headers;
    enum http1_framing framing;
    uint64_t content_length;
    bool keep_alive; /* upstream allows reuse */
    size_t head_len;
};

/*
 * Parse a vetted request head p[0..len) (len = head_len from the scanner).
 * req->headers/max_headers must be set by the caller. Returns 0, or the
 * status to answer: 400 (malformed, smuggling shapes, a missing, repeated
 * or invalid Host), 405 (CONNECT, TRACE),
 * 431 (too many headers), 505 (not HTTP/1.x); *err names the reason.
 */
int http1_parse_request(struct http1_request *req, const char *p, size_t len,
                        const char **err);

/*
 * Parse a vetted response head. `head_request` says the request was HEAD
 * (no body). Returns 0 or -1 (*err set).
 */
int http1_parse_response(struct http1_response *res, const char *p, size_t len,
                         bool head_request, const char **err);

/* What the request rewrite adds. */
struct http1_fwd {
    const struct sockaddr *client; /* the client's address (XFF) */
    bool close;                    /* ask the upstream to close */
    bool https;                    /* the client came over TLS (X-Forwarded-Proto) */
    struct strview request_id;     /* borrowed: sent as the one X-Request-Id
                                      (the client's are dropped); len 0 = keep
                                      the client's as they are */
};

/*
 * Append the upstream request head to out: origin-form target, HTTP/1.1,
 * end-to-end headers, X-Forwarded-For appended, X-Forwarded-Proto and Via
 * set, framing re-stated (Content-Length or chunked), Upgrade kept for
 * upgrade requests.
 */
void http1_write_request(struct evbuffer *out, const struct http1_request *req,
                         const struct http1_fwd *fwd);

/* How the response goes to the client. */
struct http1_back {
    const char *version_header; /* NULL = none */
    const char *version;        /* value for it */
    uint8_t client_minor;       /* the client's HTTP/1.minor */
    bool close;                 /* weir closes the client after this */
    bool head_request;          /* request was HEAD */
    const char *set_cookie;     /* extra Set-Cookie value, or NULL */
};

/*
 * Append the client response head to out, and return the framing weir uses
 * toward the client for the body (chunked for unknown lengths on 1.1,
 * close-delimited for 1.0).
 */
enum http1_framing http1_write_response(struct evbuffer *out,
                                        const struct http1_response *res,
                                        const struct http1_back *back);

/* Chunked decoder state. */
enum http1_chunk_state {
    H1_C_SIZE = 0,   /* reading hex size digits */
    H1_C_EXT,        /* inside chunk extensions, until CR */
    H1_C_SIZE_LF,    /* CR seen after size line; need LF */
    H1_C_DATA,       /* `remaining` data bytes to move */
    H1_C_DATA_CR,    /* need CR after data */
    H1_C_DATA_LF,    /* need LF after data */
    H1_C_TRAILER,    /* trailer lines, until an empty line */
    H1_C_TRAILER_LF, /* CR seen in trailer; need LF */
    H1_C_DONE,       /* last chunk and trailers consumed */
};

struct http1_chunked {
    enum http1_chunk_state state;
    uint64_t remaining;
    unsigned ndigits; /* 1 once a size digit was seen on this line */
    size_t ext_len;
    size_t trailer_len;
    size_t line_len; /* bytes on the current trailer line */
};

void http1_chunked_init(struct http1_chunked *c);

/*
 * Decode chunked framing from in and move the data to out, re-framed as
 * chunked (rechunk) or raw. Moves at most max_out data bytes per call.
 * Returns 1 when the message is complete (final chunk written when
 * rechunk), 0 when more input is needed, -1 when malformed (*err set).
 */
int http1_chunked_step(struct http1_chunked *c, struct evbuffer *in,
                       struct evbuffer *out, bool rechunk, size_t max_out,
                       const char **err);

/* Append n bytes of in to out as one chunk. */
void http1_chunk_move(struct evbuffer *in, struct evbuffer *out, size_t n);

/* Append the last chunk "0\r\n\r\n". */
void http1_chunk_end(struct evbuffer *out);

/*
 * Append a complete error response weir answers itself (400, 405, 431, 502,
 * 503, 504, 505...), with a short plain-text body. `close` adds
 * Connection: close.
 */
void http1_write_error(struct evbuffer *out, int status, bool close);

/* Reason phrase for a status weir produces ("Bad Request"). */
const char *http1_reason(int status);

/* True when a response to this method/status has no body (RFC 9112 §6.3). */
bool http1_status_has_no_body(int status);

#endif
