/*
 * conn_pipe.h — a conn with no socket under it: its input is filled and its
 * output drained by an owner in weir itself (one HTTP/2 stream carries a
 * txn this way: h2_stream.c). Whoever uses the conn (proxy.c through a
 * client) sees an ordinary struct conn: conn_send, conn_read_start/stop,
 * readcb/writecb/eventcb, sent_bytes all keep their meaning.
 *
 *   user side (conn.h)             owner side (here)
 *   conn_send(out has bytes)  ──▶  on_output(cn, arg), from the loop
 *   readcb(new input)         ◀──  conn_pipe_input() after adding to cn->in
 *   writecb(out drained)      ◀──  conn_pipe_consumed() after taking from out
 *
 * Every notification either way is delivered from the loop (event_active),
 * never from inside the call that caused it, as for socket conns.
 * The loop's thread only.
 */
#ifndef WEIR_CONN_PIPE_H
#define WEIR_CONN_PIPE_H

#include <stddef.h>

#include "conn.h"

struct conn_pipe {
    struct event sev;       /* "output queued": runs on_output */
    conn_data_cb on_output; /* the owner's */
    conn_data_cb on_taken;  /* the owner's, or NULL: after each readcb */
    void *arg;              /* borrowed: on_output's argument */
};

/* A pipe conn on l; on_output(cn, arg) runs (from the loop) after the user
 * queued output with conn_send. Free it with conn_free. */
struct conn *conn_pipe_new(struct loop *l, conn_data_cb on_output, void *arg);

/* on_taken(cn, arg) runs after each readcb the pipe delivered (the user
 * may have taken input: the owner can acknowledge it upstream). */
void conn_pipe_set_taken(struct conn *cn, conn_data_cb on_taken);

/* Run on_output from the loop even though nothing new was queued. */
void conn_pipe_notify(struct conn *cn);

/* The owner added bytes to cn->in: readcb follows from the loop while the
 * user reads. */
void conn_pipe_input(struct conn *cn);

/* The owner took n bytes from cn->out, which held `before` bytes: counts
 * them as sent and fires writecb (from the loop) when the output came down
 * to the write low-water mark. */
void conn_pipe_consumed(struct conn *cn, size_t before, size_t n);

/* Hooks of conn.c for a pipe conn (cn->pipe != NULL). */
void conn_pipe_read_changed(struct conn *cn);
void conn_pipe_send(struct conn *cn);
void conn_pipe_dispose(struct conn *cn);

#endif
