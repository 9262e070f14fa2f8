/*
 * h2_stream.h — one HTTP/2 request stream as one txn.
 *
 * The request's HEADERS become an HTTP/1.1 request head (:authority → Host,
 * cookies joined, no connection-specific fields, Content-Length kept or
 * Transfer-Encoding: chunked for a body of unknown length) fed to proxy.c
 * through a client of its own (client_new_stream) over a pipe conn
 * (conn_pipe.h); DATA frames follow as its body. proxy.c then routes,
 * splits, retries, mirrors, logs and counts the stream exactly as it does
 * an HTTP/1.1 request. What proxy.c writes back (an HTTP/1.1 response) is
 * parsed here and sent as HEADERS + DATA, hop-by-hop fields dropped.
 * (HAProxy 1.8 did the same for its first HTTP/2 support.)
 *
 * Flow control both ways: request DATA is acknowledged to nghttp2
 * (WINDOW_UPDATE) only once proxy.c took it from the pipe, so a slow
 * upstream closes the client's window; response bytes leave the pipe only
 * when nghttp2 asks for DATA (the client's windows allow), so a client that
 * does not read makes proxy.c stop reading the upstream (FLOW_HIGH_WATER).
 *
 * States: HEADERS (collecting fields) → RUNNING (txn under way; response
 * head, then body) → DONE (response parsed whole, the txn's client closed;
 * the rest of the body drains to nghttp2) → gone (nghttp2 closed the
 * stream). A client's RST_STREAM or the connection's end closes the txn's
 * client (a 499 when the response was not complete).
 *
 * The session owns its streams. The worker's thread only.
 */
#ifndef WEIR_H2_STREAM_H
#define WEIR_H2_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

struct h2_session;
struct h2_stream;
struct client;

/* A stream the client opened (HEADERS begun). NULL only on a refusal. */
struct h2_stream *h2_stream_new(struct h2_session *s, int32_t id);

/* One trailer field of the request (name and value lengths): counted
 * against the header list bounds, kept nowhere. Returns as below. */
int h2_stream_on_trailer(struct h2_stream *st, size_t nlen, size_t vlen);

/* One request header field. Returns 0, or an nghttp2 error code (the
 * callback's return value). */
int h2_stream_on_header(struct h2_stream *st, const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen);

/* The request head is complete; end_stream: no body. Starts the txn. */
void h2_stream_on_headers_done(struct h2_stream *st, bool end_stream);

/* Request body bytes; the stream consumes them once forwarded. */
void h2_stream_on_data(struct h2_stream *st, const uint8_t *data, size_t len);

/* The request ended (END_STREAM on DATA or trailers). */
void h2_stream_on_end(struct h2_stream *st);

/* nghttp2 closed the stream (both ends done, or a reset either way). The
 * stream is freed. */
void h2_stream_on_close(struct h2_stream *st, uint32_t error_code);

/* The session goes away: close the txn's client (why as client_close) and
 * free the stream, without touching nghttp2. */
void h2_stream_free(struct h2_stream *st, const char *why);

/* client.c (through the stream client's ops): the stream's txn is over /
 * its client closed. */
void h2_stream_txn_done(struct h2_stream *st, bool close);
void h2_stream_client_closed(struct h2_stream *st, const char *why);

/* Whether response data waits for the client's flow-control window. */
bool h2_stream_is_blocked(const struct h2_stream *st);

/* The request's END_STREAM arrived. */
bool h2_stream_request_ended(const struct h2_stream *st);

/* The stream's id and the session's list link. */
int32_t h2_stream_id(const struct h2_stream *st);
struct h2_stream **h2_stream_next(struct h2_stream *st);

#endif
