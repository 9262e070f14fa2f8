/*
 * conn.h — socket I/O of one data-path connection (a client's or an upstream
 * conn's): an input and an output evbuffer, a read and a write event,
 * read/write timeouts, non-blocking connect. What libevent's socket
 * bufferevent does, minus what costs syscalls on the hot path:
 *   - reads go straight into reserved evbuffer space (no FIONREAD ioctl
 *     before each read, as evbuffer_read does);
 *   - writes happen when the owner says (conn_send), after the loop
 *     turn, and EPOLLOUT is registered only for what the socket refused;
 *   - timeouts use libevent's common-timeout queues (O(1) re-arm).
 * Sends are always queued on the loop's send queue and written by
 * conn_run_batch() after the event-loop turn that queued them. With an
 * iobatch (io_uring) the turn's reads are queued too and both are issued
 * as one batch each (one io_uring_enter for all of them); without one
 * (WEIR_IO_URING=0, seccomp) each read is a recv() from the readiness
 * callback and each queued send one writev() after the turn, so a turn's
 * answers reach their peers together: a client or upstream woken once
 * finds all of its turn's data, rather than being woken per response.
 *
 * Callbacks (never called from inside the conn_* call that caused them; a
 * drain notification is delivered from the loop):
 *   readcb   new bytes are in the input
 *   writecb  a write brought the output to ≤ the write low-water mark
 *   eventcb  CONN_CONNECTED, or CONN_EOF / CONN_ERROR / CONN_TIMEOUT with
 *            CONN_READING or CONN_WRITING; after EOF, an error or a timeout
 *            that direction is stopped.
 * The loop's thread only. conn_free() may be called from any callback; the
 * memory is reaped after dispatch (loop_defer_free).
 */
#ifndef WEIR_CONN_H
#define WEIR_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "loop.h"

#define CONN_MAGIC 0x434f4e4eu /* "CONN" */

/* clang-format off */
#define CONN_READING   0x01
#define CONN_WRITING   0x02
#define CONN_EOF       0x10
#define CONN_ERROR     0x20
#define CONN_TIMEOUT   0x40
#define CONN_CONNECTED 0x80
/* clang-format on */

/* Flow control of the conns' owners: above this many bytes queued toward a
 * peer, stop reading the source; resume once it drained to half. */
#define FLOW_HIGH_WATER (256u * 1024u)

struct conn;
struct conn_pipe;
struct conn_tls;
typedef void (*conn_data_cb)(struct conn *cn, void *arg);
typedef void (*conn_event_cb)(struct conn *cn, short what, void *arg);

struct conn {
    uint32_t magic;
    int fd; /* owned when close_fd, else borrowed */
    bool close_fd;
    bool reading;                 /* the owner wants input (conn_read_start) */
    bool connecting;              /* connect() in progress */
    bool closed;                  /* conn_free()d; memory reaped later */
    bool in_readq, in_sendq;      /* queued for the next batch */
    bool read_big;                /* the last read filled its space */
    int connect_errno;            /* a connect() refused at once */
    struct loop *loop;            /* borrowed */
    struct evbuffer *in;          /* owned */
    struct evbuffer *out;         /* owned */
    size_t write_low;             /* writecb when the output drains to this */
    uint64_t sent_bytes;          /* bytes written to the socket so far */
    uint32_t read_timeout_ms;     /* 0: none */
    uint32_t write_timeout_ms;    /* 0: none (also the connect timeout) */
    conn_data_cb readcb, writecb; /* may be NULL */
    conn_event_cb eventcb;
    void *arg;              /* borrowed: the callbacks' argument */
    struct conn_pipe *pipe; /* owned: no socket, an owner in weir (conn_pipe.h); else NULL */
    struct conn *rq_next;   /* batch queue links (loop's readq/sendq) */
    struct conn *sq_next;
    struct conn_tls *tls;  /* borrowed (conn_tls.h), NULL: plain */
    struct reap_item reap; /* deferred-free link */
    struct event rev;      /* EV_READ|EV_PERSIST, read timeout */
    struct event wev;      /* EV_WRITE|EV_PERSIST, write timeout */
};

/*
 * A conn over an open non-blocking socket. close_fd: conn_free() closes it.
 * Reading and writing start stopped. Returns NULL on failure (fd untouched).
 */
struct conn *conn_new(struct loop *l, int fd, bool close_fd);

/* Stop everything, drop the buffers (and close the fd when owned); the
 * struct is freed after dispatch. NULL is a no-op. */
void conn_free(struct conn *cn);

void conn_setcb(struct conn *cn, conn_data_cb readcb, conn_data_cb writecb,
                conn_event_cb eventcb, void *arg);

/* Timeouts in ms, 0 for none; they take effect at once, restarted from now
 * (also when unchanged), for a direction that is waiting (read: while
 * reading; write: while output waits for the socket or a connect is in
 * progress). */
void conn_set_timeouts(struct conn *cn, uint32_t read_ms, uint32_t write_ms);

/* writecb fires when a write brings the output to ≤ low bytes. */
void conn_set_write_low(struct conn *cn, size_t low);

/* Want input / no more input for now (backpressure). Idempotent. */
void conn_read_start(struct conn *cn);
void conn_read_stop(struct conn *cn);

/* Read once now (or queue the read for this turn's batch), as if the socket
 * had become readable; callbacks follow from the loop or the batch. */
void conn_read_soon(struct conn *cn);

/*
 * Queue the output to be written after this loop turn (conn_run_batch);
 * what the socket refuses is written when it becomes writable. Whatever adds to a
 * conn's output calls this before it returns to the loop. Write errors
 * reach eventcb (CONN_ERROR|CONN_WRITING) from the loop.
 */
void conn_send(struct conn *cn);

/*
 * Start a non-blocking connect; CONN_CONNECTED or CONN_ERROR /
 * CONN_TIMEOUT|CONN_WRITING (write timeout = connect timeout) reach eventcb
 * from the loop, never from inside this call. Returns -1 (errno) only when
 * the connect cannot even start.
 */
int conn_connect(struct conn *cn, const struct sockaddr *sa, socklen_t len) WUR;

/*
 * Speak TLS through t (owned by the caller, and outliving the conn if it
 * likes): the socket carries t's ciphertext, in and out stay plaintext.
 * Set before any I/O, or on a fresh conn over a socket t already talks
 * on (a parked client's). A TLS failure reaches eventcb as
 * CONN_ERROR|CONN_READING (after a last alert or answer is sent).
 */
void conn_set_tls(struct conn *cn, struct conn_tls *t);

/* Bytes not yet handed to the socket: the output, plus ciphertext queued
 * under TLS. */
size_t conn_out_pending(const struct conn *cn);

/* Readiness seen in this loop turn waits for the turn's read batch (an
 * idle conn so flagged has been closed by its peer or got bytes). */
bool conn_has_pending_read(const struct conn *cn);

/* Issue the reads and sends queued during this loop turn (as batches with
 * an iobatch, else one writev per queued send) and run their callbacks,
 * until nothing is queued. Called by the loop's owner after each loop turn:
 * without it nothing queued is ever sent. */
void conn_run_batch(struct loop *l);

#endif
