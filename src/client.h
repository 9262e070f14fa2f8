/*
 * client.h — one downstream connection: accept, read and vet each request
 * head, keep-alive between requests, header/idle timeouts, pipelined
 * requests taken one at a time in order, lingering close.
 *
 * State machine:
 *   PARKED ──readable──▶ IDLE ──first byte──▶ HEAD ──head complete──▶ TXN
 *     ▲                   │  │                 │ (400/431/408)          │
 *     └──idle 1 s─────────┘  └─idle timeout─▶ CLOSING ◀─────────────────┘
 *   (TXN done → IDLE, or CLOSING when the connection cannot go on)
 *   PARKED: an idle connection holds only this struct and one event on its
 *   socket (no conn, no buffers, no timer), so 10k idle clients cost
 *   ~10k × sizeof(struct client). New connections start parked; an idle one
 *   parks after CLIENT_PARK_MS, so busy keep-alive clients never pay for it.
 *   CLOSING: flush output, shut down writes, discard input until EOF or the
 *   linger timer, then close (so a final response is not destroyed by RST).
 *
 * While a txn runs, client.c hands socket events to proxy.c.
 *
 * The clients of one worker are listed in its client_table (owned by the
 * worker, filled and emptied only here). Worker thread, except the
 * process-wide count client_open_count().
 */
#ifndef WEIR_CLIENT_H
#define WEIR_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <event2/event_struct.h>

#include "http1.h"
#include "loop.h"

#define CLIENT_MAGIC 0x434c4e54u /* "CLNT" */
#define CLIENT_PARK_MS 1000u     /* idle this long → release buffers */

struct txn;
struct conn;
struct conn_tls;
struct tls_set;

/*
 * An owner of a client besides client.c and proxy.c: the HTTP/2 session of
 * a connection (CL_S_H2: on_read, on_drained, on_timer, on_drain, on_close)
 * or the HTTP/2 stream of a stream client (on_txn_done, on_close). They sit
 * above client.c, which calls them through this table rather than including
 * their headers. on_close: client_close runs (why as given to it); the
 * owner lets go of the client (a session frees itself, a stream notes it).
 */
struct client_ops {
    void (*on_read)(void *arg);
    void (*on_drained)(void *arg);
    void (*on_timer)(void *arg);
    void (*on_drain)(void *arg);
    void (*on_txn_done)(void *arg, bool close);
    void (*on_close)(void *arg, const char *why);
};

enum client_state {
    CL_S_PARKED = 0, /* idle with no conn: only park_ev on the socket */
    CL_S_IDLE,       /* between requests, idle timer armed */
    CL_S_HEAD,       /* reading a request head, header timer armed */
    CL_S_TXN,        /* a txn owns the connection */
    CL_S_H2,         /* HTTP/2: h2_session.c owns the connection */
    CL_S_CLOSING,    /* flushing, then lingering close */
    CL_S_CLOSED,     /* gone; freed after dispatch */
};

struct client {
    uint32_t magic;
    enum client_state state;
    bool close_after;             /* no further requests on this connection */
    int fd;                       /* owned */
    uint32_t requests;            /* requests served */
    struct loop *loop;            /* borrowed: the worker's loop */
    struct client_table *tab;     /* borrowed: the list it is on */
    uint64_t id;                  /* c#N in logs */
    uint64_t idle_since_ms;       /* when it last became idle */
    struct conn *cn;              /* owned; NULL while parked */
    struct event *timer;          /* owned; NULL while parked */
    struct txn *txn;              /* borrowed while CL_S_TXN (proxy.c owns it) */
    const struct client_ops *ops; /* the owner above client.c, or NULL */
    void *ops_arg;                /* its argument: the HTTP/2 session (owned
                                     while CL_S_H2) or stream (borrowed) */
    bool stream;                  /* a stream's client: no socket (fd -1), a
                                     pipe conn, on no table; HTTP/2 */
    struct client *next, *prev;   /* tab's list */
    struct reap_item reap;        /* deferred-free link */
    struct http1_scan scan;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;                  /* the peer */
    struct event park_ev;    /* socket readable / idle timeout while parked */
    unsigned listener;       /* cfg->listeners index it was accepted on */
    struct conn_tls *tls;    /* owned (conn_tls.h), NULL on a plain listener;
                              * a stream client's is its parent's, borrowed */
    struct tls_set *tls_set; /* owned ref until the handshake is done: the
                              * SNI callback's argument lives in it */
};

/* Reasons for client_close that proxy.c tells apart (compared by pointer):
 * the peer closed or reset the connection, or weir's worker stops. */
extern const char CLIENT_CLOSE_PEER[];
extern const char CLIENT_CLOSE_STOP[];

/* One worker's clients. */
struct client_table {
    struct loop *loop;                  /* borrowed */
    struct client *head;                /* live clients (links in struct client) */
    size_t n;                           /* how many */
    uint64_t next_id;                   /* c#N numbering */
    void (*on_empty)(void *arg);        /* the last client went while draining */
    void (*h2_start)(struct client *c); /* HTTP/2 preface seen (h2_session_start),
                                           or NULL: no HTTP/2 */
    void *arg;                          /* borrowed: on_empty's argument */
};

/* An empty table of clients on loop l; on_empty(arg) runs when the last
 * client closes while l->stopping. Worker thread. */
void client_table_init(struct client_table *tab, struct loop *l,
                       void (*on_empty)(void *arg), void *arg);

/* Drain every client of tab (client_drain). */
void client_table_drain(struct client_table *tab);

/* Close every client of tab now, for why. */
void client_table_close_all(struct client_table *tab, const char *why);

/* Clients open in all workers, for limits.max_connections. Any thread. */
/* Open client connections accepted on listener `listener`. Any thread. */
unsigned client_open_count_on(unsigned listener);

unsigned client_open_count(void);

/* Take over an accepted socket. Returns NULL (fd closed) on failure. */
struct client *client_new(struct client_table *tab, int fd,
                          const struct sockaddr *sa, socklen_t len);

/* The same, for a socket accepted on listener `listener` (TLS when the
 * snapshot's TLS set has a certificate for it). */
struct client *client_new_on(struct client_table *tab, int fd, const struct sockaddr *sa,
                             socklen_t len, unsigned listener);

/*
 * A client for one HTTP/2 stream of parent (h2_stream.c): same peer address
 * and c#N, no socket; cn (a pipe conn, ownership passes) carries the txn's
 * bytes. It starts in CL_S_TXN with no txn yet: the caller runs proxy_start.
 * client_txn_done and client_close tell the stream through ops(arg).
 */
struct client *client_new_stream(struct client *parent, const struct client_ops *ops,
                                 void *arg, struct conn *cn);

/*
 * The txn is over; `close` says the connection cannot carry another request.
 * Continues with a pipelined request if one is buffered.
 */
void client_txn_done(struct client *c, bool close);

/* Answer an error status and close after it is flushed. */
void client_fail(struct client *c, int status);

/* Close now (no flush); the struct is freed after dispatch. */
void client_close(struct client *c, const char *why);

/* Close after the output is flushed (lingering close). */
void client_close_after_flush(struct client *c);

/* Worker stopping: close if idle, else finish the current request, then close. */
void client_drain(struct client *c);

/* Format "c#ID ADDR" for logs. */
void client_label(const struct client *c, char *buf, size_t len);

#endif
