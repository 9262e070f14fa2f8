/*
 * conn_pipe.c — see conn_pipe.h.
 *
 * The conn's rev and wev are assigned to no socket (fd -1, no event
 * flags) and only ever activated by hand: rev delivers readcb while the
 * user reads and input waits, wev delivers writecb. The pipe's own sev
 * tells the owner that output was queued.
 */
#include "conn_pipe.h"

#include <stdlib.h>

#include "util.h"

static void on_pipe_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *cn = arg;
    (void)fd;
    (void)what;
    CHECK(cn->magic == CONN_MAGIC && cn->pipe);
    if (cn->reading && evbuffer_get_length(cn->in) > 0 && cn->readcb) {
        cn->readcb(cn, cn->arg);
        /* readcb may have closed the conn (freed after dispatch) */
        if (!cn->closed && cn->pipe->on_taken)
            cn->pipe->on_taken(cn, cn->pipe->arg);
    }
}

static void on_pipe_drained(evutil_socket_t fd, short what, void *arg)
{
    struct conn *cn = arg;
    (void)fd;
    (void)what;
    CHECK(cn->magic == CONN_MAGIC && cn->pipe);
    if (cn->writecb && evbuffer_get_length(cn->out) <= cn->write_low)
        cn->writecb(cn, cn->arg);
}

static void on_pipe_output(evutil_socket_t fd, short what, void *arg)
{
    struct conn *cn = arg;
    (void)fd;
    (void)what;
    CHECK(cn->magic == CONN_MAGIC && cn->pipe);
    cn->pipe->on_output(cn, cn->pipe->arg);
}

struct conn *conn_pipe_new(struct loop *l, conn_data_cb on_output, void *arg)
{
    struct conn *cn = conn_new(l, -1, false);
    if (!cn)
        return NULL;
    struct conn_pipe *p = xcalloc(1, sizeof(*p));
    p->on_output = on_output;
    p->arg = arg;
    cn->pipe = p;
    event_assign(&cn->rev, l->base, -1, 0, on_pipe_read, cn);
    event_assign(&cn->wev, l->base, -1, 0, on_pipe_drained, cn);
    event_assign(&p->sev, l->base, -1, 0, on_pipe_output, cn);
    return cn;
}

void conn_pipe_set_taken(struct conn *cn, conn_data_cb on_taken)
{
    cn->pipe->on_taken = on_taken;
}

void conn_pipe_notify(struct conn *cn)
{
    if (!cn->closed)
        event_active(&cn->pipe->sev, EV_WRITE, 1);
}

void conn_pipe_input(struct conn *cn)
{
    if (cn->reading && evbuffer_get_length(cn->in) > 0)
        event_active(&cn->rev, EV_READ, 1);
}

void conn_pipe_consumed(struct conn *cn, size_t before, size_t n)
{
    cn->sent_bytes += n;
    if (cn->writecb && before > cn->write_low && before - n <= cn->write_low)
        event_active(&cn->wev, EV_WRITE, 1);
}

void conn_pipe_read_changed(struct conn *cn)
{
    if (cn->reading)
        conn_pipe_input(cn);
    else
        event_del(&cn->rev);
}

void conn_pipe_send(struct conn *cn)
{
    if (!cn->closed && evbuffer_get_length(cn->out) > 0)
        event_active(&cn->pipe->sev, EV_WRITE, 1);
}

void conn_pipe_dispose(struct conn *cn)
{
    event_del(&cn->pipe->sev);
    free(cn->pipe);
    cn->pipe = NULL;
}
