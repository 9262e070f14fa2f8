/*
 * conn_tls.h — TLS under a conn (conn.h): the conn's socket I/O moves
 * ciphertext through two evbuffers of the conn_tls (wire_in, wire_out),
 * which OpenSSL reads and writes through a BIO of ours (memory BIOs over
 * evbuffers: no socket BIO, so the batched I/O of conn.c — io_uring or
 * recv/writev after the loop turn — is the same for TLS), while the
 * conn's owner sees plaintext in cn->in / cn->out as before.
 *
 * Why memory BIOs and not kTLS: kTLS needs the kernel module and the
 * handshake in user space anyway, offloads only the record crypto (not
 * the handshake, which dominates new-connection cost), and would give up
 * reading into reserved evbuffer space through io_uring; memory BIOs work
 * everywhere, with one copy each way (the same copy kTLS saves).
 *
 * A conn_tls is owned by the conn's owner and outlives conns: a parked
 * client (client.c) frees its conn and keeps its conn_tls. A server one
 * creates its SSL only when the first bytes arrive (an idle accepted
 * socket costs no SSL), and closes on its own deadline (the handshake
 * timeout) through on_timeout.
 *
 * Bad input: plain HTTP where a ClientHello belongs gets nginx's
 * "400 The plain HTTP request was sent to HTTPS port" and a close; any
 * other non-TLS bytes, a failed handshake (an old protocol version, no
 * shared cipher), a renegotiation attempt: a close (with OpenSSL's alert
 * where there is one). Each is counted by result and listener.
 */
#ifndef WEIR_CONN_TLS_H
#define WEIR_CONN_TLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include "loop.h"

struct conn;

/* Handshake results counted per listener (weir_tls_handshakes_total). */
enum conn_tls_result {
    CONN_TLS_OK = 0,
    CONN_TLS_FAILED,      /* refused or broken handshake (alert) */
    CONN_TLS_PLAIN_HTTP,  /* plain HTTP sent to the TLS port: 400 */
    CONN_TLS_NOT_TLS,     /* other bytes that are no TLS record */
    CONN_TLS_TIMEOUT,     /* not finished within timeouts.tls_handshake */
    CONN_TLS_RENEGOTIATE, /* a renegotiation attempt after the handshake */
    CONN_TLS_N_RESULTS
};

#define CONN_TLS_MAX_LISTENERS 16

/* Ciphertext kept queued toward the socket at most; more plaintext waits
 * in cn->out (so the owner's flow control sees it). */
#define CONN_TLS_WIRE_HIGH (64u * 1024u)

/* Ciphertext a client may have sent before its handshake is done that
 * OpenSSL has not consumed yet; more closes the connection (a handshake
 * costs bounded memory). */
#define CONN_TLS_HANDSHAKE_IN_MAX (64u * 1024u)

struct conn_tls {
    SSL *ssl;                  /* owned; NULL until the first bytes (server) */
    SSL_CTX *ctx;              /* owned ref until the SSL exists */
    struct evbuffer *wire_in;  /* owned: ciphertext read, not yet taken by SSL (NULL: parked) */
    struct evbuffer *wire_out; /* owned: ciphertext to send (NULL: parked) */
    struct loop *loop;         /* borrowed */
    bool server;
    bool done;           /* handshake finished */
    bool failed;         /* fatal: no more TLS I/O */
    bool counted;        /* the handshake's result is counted */
    bool eof;            /* close_notify received */
    bool reneg;          /* a renegotiation attempt was refused (closing) */
    bool notified;       /* our close_notify is queued */
    unsigned listener;   /* server: the listener's index */
    struct event *timer; /* owned: the handshake deadline (server) */
    void (*on_timeout)(void *arg);
    void *arg;
};

/* A server side over SSL_CTX ctx (its default certificate, ref taken)
 * for listener index `listener`; on_timeout(arg) when the handshake is
 * not done within timeout_ms. NULL on failure. */
struct conn_tls *conn_tls_new_server(struct loop *l, SSL_CTX *ctx, unsigned listener,
                                     uint32_t timeout_ms, void (*on_timeout)(void *arg),
                                     void *arg);

/* A client side (upstream TLS) sending SNI `sni` (NULL: none). When ctx
 * verifies, the certificate must match `sni`, or without one the peer's
 * address `ip` (text). NULL on failure (also when neither can be set). */
struct conn_tls *conn_tls_new_client(SSL_CTX *ctx, const char *sni, const char *ip,
                                     SSL_SESSION *resume);

/* The SSL_CTX the connection runs under (for resumption bookkeeping). */
const SSL_CTX *conn_tls_ctx(const struct conn_tls *t);

void conn_tls_free(struct conn_tls *t); /* NULL is a no-op */

/* The owner's conn goes away while the connection idles (a parked
 * client): release the SSL's record buffers and the empty wire buffers.
 * conn_tls_wake makes the buffers again (-1: out of memory) and must be
 * called before the conn_tls is given to a conn (conn_set_tls); a server
 * side starts asleep. */
void conn_tls_park(struct conn_tls *t);
int conn_tls_wake(struct conn_tls *t);

/*
 * For conn.c. Ciphertext arrived in wire_in: run the handshake or
 * decrypt into `in`. Returns CONN_TLS_IN_DATA when plaintext was added,
 * CONN_TLS_IN_NONE when not (yet), CONN_TLS_IN_EOF at close_notify,
 * CONN_TLS_IN_FAIL when the connection must close (wire_out may hold a
 * last alert or answer to send first).
 */
enum { CONN_TLS_IN_NONE = 0,
       CONN_TLS_IN_DATA,
       CONN_TLS_IN_EOF,
       CONN_TLS_IN_FAIL };
int conn_tls_input(struct conn_tls *t, struct evbuffer *in);

/* Encrypt from `out` into wire_out (after the handshake), up to
 * CONN_TLS_WIRE_HIGH queued. */
void conn_tls_fill(struct conn_tls *t, struct evbuffer *out);

/* A graceful close: queue our close_notify in wire_out (once, after all
 * application data). True when it was queued (send it, then close). */
bool conn_tls_close_notify(struct conn_tls *t);

/* Start a client handshake (the ClientHello goes to wire_out). */
void conn_tls_connect(struct conn_tls *t);

/* After the handshake: "TLSv1.3", the SNI name and the ALPN protocol
 * ("" when none). */
const char *conn_tls_version(const struct conn_tls *t);
const char *conn_tls_sni(const struct conn_tls *t);
void conn_tls_alpn(const struct conn_tls *t, char *buf, size_t len);

/* The session to resume the next connection to the same peer with
 * (client side; a reference, or NULL). */
SSL_SESSION *conn_tls_session(const struct conn_tls *t);

/* Counters (any thread). */
uint64_t conn_tls_count(unsigned listener, enum conn_tls_result r);
const char *conn_tls_result_name(enum conn_tls_result r);

#endif
