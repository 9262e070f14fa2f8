/*
 * conn.c — see conn.h.
 *
 * Events: rev is added (persistent, with the read timeout) exactly while
 * `reading`; wev is added while output waits for the socket or a connect
 * is in progress. conn_send() only queues: the write happens after the
 * loop turn (conn_run_batch), on both I/O paths. A drain notification after a write done outside wev's
 * callback is delivered by activating wev, so callbacks never run inside
 * conn_send().
 */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn_pipe.h"
#include "conn_tls.h"
#include "iobatch.h"
#include "log.h"
#include "util.h"

#ifndef EVBUFFER_IOVEC_IS_NATIVE_
#error "conn.c peeks an evbuffer straight into struct iovec arrays"
#endif

/* Read sizes: evbuffer rounds a chain (this plus its ~64-byte header) up
 * to a power of two, so 4000 makes 4 KiB chains (a small jemalloc class,
 * served from the thread cache) for heads and small bodies, and 32000 makes
 * 32 KiB ones once a read filled its space (a body streams). */
#define READ_SMALL 4000u
#define READ_BIG 32000u

static size_t read_size(const struct conn *cn)
{
    return cn->read_big ? READ_BIG : READ_SMALL;
}

/* Learn from what a read of `want` bytes got. */
static void read_sized(struct conn *cn, size_t want, ssize_t got)
{
    if (got >= (ssize_t)want)
        cn->read_big = true;
    else if (got >= 0 && got < (ssize_t)READ_SMALL / 2)
        cn->read_big = false;
}

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void queue_send(struct conn *cn);

/* What the socket reads into and writes from: the owner's buffers, or
 * the TLS layer's ciphertext (conn_tls.h). */
static struct evbuffer *wire_in(const struct conn *cn)
{
    return cn->tls ? cn->tls->wire_in : cn->in;
}

static struct evbuffer *wire_out(const struct conn *cn)
{
    return cn->tls ? cn->tls->wire_out : cn->out;
}

size_t conn_out_pending(const struct conn *cn)
{
    size_t n = evbuffer_get_length(cn->out);
    return cn->tls ? n + evbuffer_get_length(cn->tls->wire_out) : n;
}

/* TLS: encrypt what the owner queued, up to the wire's high-water mark.
 * A TLS failure here is told to the owner from the loop (on_readable),
 * not from inside its own conn_send. */
static void fill(struct conn *cn)
{
    if (cn->tls && evbuffer_get_length(cn->out)) {
        conn_tls_fill(cn->tls, cn->out);
        if (cn->tls->failed)
            event_active(&cn->rev, EV_READ, 1);
    }
}

void conn_set_tls(struct conn *cn, struct conn_tls *t)
{
    cn->tls = t;
    if (t && evbuffer_get_length(t->wire_out) && !cn->connecting)
        queue_send(cn); /* left over from the conn before (a parked client) */
}

static void conn_reap(void *obj)
{
    struct conn *cn = obj;
    CHECK(cn->magic == CONN_MAGIC && cn->closed);
    cn->magic = 0;
    free(cn);
}

struct conn *conn_new(struct loop *l, int fd, bool close_fd)
{
    struct conn *cn = xcalloc(1, sizeof(*cn));
    cn->magic = CONN_MAGIC;
    cn->fd = fd;
    cn->close_fd = close_fd;
    cn->loop = l;
    cn->in = evbuffer_new();
    cn->out = evbuffer_new();
    if (!cn->in || !cn->out) {
        if (cn->in)
            evbuffer_free(cn->in);
        if (cn->out)
            evbuffer_free(cn->out);
        free(cn);
        return NULL;
    }
    event_assign(&cn->rev, l->base, fd, EV_READ | EV_PERSIST, on_readable, cn);
    event_assign(&cn->wev, l->base, fd, EV_WRITE | EV_PERSIST, on_writable, cn);
    return cn;
}

void conn_free(struct conn *cn)
{
    if (!cn)
        return;
    CHECK(cn->magic == CONN_MAGIC && !cn->closed);
    cn->closed = true;
    event_del(&cn->rev);
    event_del(&cn->wev);
    if (cn->pipe)
        conn_pipe_dispose(cn);
    evbuffer_free(cn->in);
    evbuffer_free(cn->out);
    cn->in = cn->out = NULL;
    if (cn->close_fd)
        close(cn->fd);
    cn->fd = -1;
    /* Still queued for a batch: the batch reaps it when it dequeues it. */
    if (!cn->in_readq && !cn->in_sendq)
        loop_defer_free(cn->loop, &cn->reap, conn_reap, cn);
}

void conn_setcb(struct conn *cn, conn_data_cb readcb, conn_data_cb writecb,
                conn_event_cb eventcb, void *arg)
{
    cn->readcb = readcb;
    cn->writecb = writecb;
    cn->eventcb = eventcb;
    cn->arg = arg;
}

static void add_rev(struct conn *cn)
{
    event_add(&cn->rev, cn->read_timeout_ms
                            ? loop_timeout(cn->loop, cn->read_timeout_ms)
                            : NULL);
}

static void add_wev(struct conn *cn)
{
    event_add(&cn->wev, cn->write_timeout_ms
                            ? loop_timeout(cn->loop, cn->write_timeout_ms)
                            : NULL);
}

void conn_set_timeouts(struct conn *cn, uint32_t read_ms, uint32_t write_ms)
{
    cn->read_timeout_ms = read_ms;
    cn->write_timeout_ms = write_ms;
    if (cn->pipe)
        return; /* no socket to wait for: the pipe's owner has its own clocks */
    /* Restart the clocks even for unchanged values: a pooled upstream conn
     * idle for most of its idle timeout gets a whole response timeout. */
    if (cn->reading)
        add_rev(cn);
    if (event_pending(&cn->wev, EV_WRITE, NULL))
        add_wev(cn);
}

void conn_set_write_low(struct conn *cn, size_t low)
{
    cn->write_low = low;
}

void conn_read_start(struct conn *cn)
{
    if (!cn->reading) {
        cn->reading = true;
        if (cn->pipe)
            conn_pipe_read_changed(cn);
        else
            add_rev(cn);
        if (cn->tls && cn->tls->eof)
            event_active(&cn->rev, EV_READ, 1); /* the EOF read_done held back */
    }
}

void conn_read_stop(struct conn *cn)
{
    if (cn->reading) {
        cn->reading = false;
        if (cn->pipe)
            conn_pipe_read_changed(cn);
        else
            event_del(&cn->rev);
    }
}

/* ---- reading ------------------------------------------------------------ */

/* What a read returned (n bytes, 0 at EOF, -errno); runs the callbacks. */
static void tls_fatal(struct conn *cn);

static void read_done(struct conn *cn, ssize_t n)
{
    if (n > 0 && cn->tls) {
        cn->loop->n_reads++;
        int r = conn_tls_input(cn->tls, cn->in);
        if (r == CONN_TLS_IN_FAIL) {
            tls_fatal(cn);
            return;
        }
        /* handshake messages, or what the owner queued before it ended */
        fill(cn);
        if (evbuffer_get_length(cn->tls->wire_out) && !cn->connecting &&
            !event_pending(&cn->wev, EV_WRITE, NULL))
            queue_send(cn);
        if (r == CONN_TLS_IN_DATA && cn->readcb) {
            cn->readcb(cn, cn->arg);
            if (cn->closed)
                return;
        }
        /* close_notify (maybe behind the data): a socket EOF, once the
         * owner reads again if it stopped (conn_read_start) */
        if (r == CONN_TLS_IN_NONE || !cn->tls->eof || !cn->reading)
            return;
        n = 0;
    } else if (n > 0) {
        cn->loop->n_reads++;
        if (cn->readcb)
            cn->readcb(cn, cn->arg);
        return;
    }
    if (n == -EAGAIN || n == -EINTR)
        return;
    /* An upstream's TCP EOF without close_notify may be a truncation (a
     * response read until close would look whole): an error, not an end. */
    if (n == 0 && cn->tls && !cn->tls->server && !cn->tls->eof)
        n = -ECONNRESET;
    conn_read_stop(cn);
    cn->eventcb(cn, (short)(CONN_READING | (n == 0 ? CONN_EOF : CONN_ERROR)), cn->arg);
}

/* A TLS failure: send the last alert or answer the TLS layer queued
 * (once, without waiting: it is small and the conn is done), then tell
 * the owner. */
static void tls_fatal(struct conn *cn)
{
    struct evbuffer *w = cn->tls->wire_out;
    size_t len = evbuffer_get_length(w);
    if (len && len <= 4096) {
        const unsigned char *p = evbuffer_pullup(w, -1);
        if (p && send(cn->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
            cn->sent_bytes += len;
    }
    evbuffer_drain(w, len);
    conn_read_stop(cn);
    cn->eventcb(cn, CONN_READING | CONN_ERROR, cn->arg);
}

/* Read into reserved space: one recv(), no FIONREAD. Returns as read_done
 * takes it. */
static ssize_t read_now(struct conn *cn)
{
    struct evbuffer_iovec v;
    size_t want = read_size(cn);
    struct evbuffer *in = wire_in(cn);
    if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) < 1)
        return -ENOMEM;
    ssize_t n = recv(cn->fd, v.iov_base, want, 0);
    if (n < 0)
        return -errno;
    read_sized(cn, want, n);
    v.iov_len = (size_t)n;
    evbuffer_commit_space(in, &v, 1);
    return n;
}

/* The loop's two batch queues are FIFO lists, each through its own link
 * of the conn (a conn can be in both). */
static void enqueue(struct conn *cn, bool *queued, struct conn **link,
                    struct conn ***tail)
{
    if (*queued)
        return;
    *queued = true;
    *link = NULL;
    **tail = cn;
    *tail = link;
}

static struct conn *dequeue(struct conn **head, struct conn ***tail, bool sendq)
{
    struct conn *cn = *head;
    *head = sendq ? cn->sq_next : cn->rq_next;
    if (!*head)
        *tail = head;
    return cn;
}

static void queue_read(struct conn *cn)
{
    enqueue(cn, &cn->in_readq, &cn->rq_next, &cn->loop->readq_tail);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *cn = arg;
    (void)fd;
    CHECK(cn->magic == CONN_MAGIC);
    if (what & EV_TIMEOUT) {
        conn_read_stop(cn);
        cn->eventcb(cn, CONN_READING | CONN_TIMEOUT, cn->arg);
        return;
    }
    if (cn->tls && cn->tls->failed) {
        tls_fatal(cn); /* failed while sending (fill, connect) */
        return;
    }
    if (cn->tls && cn->tls->eof) {
        read_done(cn, 0); /* close_notify came already: nothing to read */
        return;
    }
    if (cn->loop->iob) {
        queue_read(cn);
        return;
    }
    read_done(cn, read_now(cn));
}

bool conn_has_pending_read(const struct conn *cn)
{
    return cn->in_readq;
}

void conn_read_soon(struct conn *cn)
{
    if (cn->pipe)
        conn_pipe_input(cn);
    else if (cn->loop->iob)
        queue_read(cn);
    else
        event_active(&cn->rev, EV_READ, 1);
}

/* ---- writing ------------------------------------------------------------ */

/* After n bytes of `before` were written outside on_writable: wait for the
 * socket for the rest, or tell the owner the output drained. */
static void wrote(struct conn *cn, size_t before, ssize_t n)
{
    size_t left = evbuffer_get_length(wire_out(cn));
    if (n > 0)
        cn->sent_bytes += (uint64_t)n;
    if (n < 0 && n != -EAGAIN && n != -EINTR) {
        /* on_writable tries again and reports the error */
        add_wev(cn);
        return;
    }
    if (left) {
        add_wev(cn);
        return;
    }
    if (cn->tls && evbuffer_get_length(cn->out)) {
        /* the wire drained and plaintext waits: the next records go out
         * in this same batch run */
        fill(cn);
        if (evbuffer_get_length(wire_out(cn))) {
            queue_send(cn);
            /* the owner waits for the output to fall to write_low: tell
             * it when it does, on the way (on_writable's check) */
            if (cn->writecb && before > cn->write_low && conn_out_pending(cn) <= cn->write_low)
                event_active(&cn->wev, EV_WRITE, 1);
            return;
        }
    }
    if (cn->writecb && before > cn->write_low)
        event_active(&cn->wev, EV_WRITE, 1);
}

static void queue_send(struct conn *cn)
{
    enqueue(cn, &cn->in_sendq, &cn->sq_next, &cn->loop->sendq_tail);
}

void conn_send(struct conn *cn)
{
    if (cn->pipe) {
        conn_pipe_send(cn);
        return;
    }
    if (cn->closed || cn->connecting || cn->in_sendq)
        return; /* queued already: the batch writes whatever is there then */
    fill(cn);
    if (evbuffer_get_length(wire_out(cn)) == 0 || event_pending(&cn->wev, EV_WRITE, NULL))
        return;     /* nothing to do, or on_writable writes it */
    queue_send(cn); /* written after the loop turn, batched or not */
}

static void connect_done(struct conn *cn)
{
    int err = cn->connect_errno;
    socklen_t len = sizeof(err);
    if (!err && getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY || err == EINTR)
        return; /* not yet */
    event_del(&cn->wev);
    cn->connecting = false;
    if (err) {
        errno = err;
        cn->eventcb(cn, CONN_ERROR | CONN_WRITING, cn->arg);
        return;
    }
    if (cn->tls) {
        /* the ClientHello; the owner's request waits for the handshake */
        conn_tls_connect(cn->tls);
        if (cn->tls->failed)
            event_active(&cn->rev, EV_READ, 1);
        else if (evbuffer_get_length(cn->tls->wire_out))
            queue_send(cn);
    }
    cn->eventcb(cn, CONN_CONNECTED, cn->arg);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *cn = arg;
    (void)fd;
    CHECK(cn->magic == CONN_MAGIC);
    if (what & EV_TIMEOUT) {
        event_del(&cn->wev);
        cn->connecting = false; /* a connect that timed out is over */
        cn->eventcb(cn, CONN_WRITING | CONN_TIMEOUT, cn->arg);
        return;
    }
    if (cn->connecting) {
        connect_done(cn);
        return;
    }
    struct evbuffer *out = wire_out(cn);
    if (evbuffer_get_length(out)) {
        int n = evbuffer_write(out, cn->fd);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            event_del(&cn->wev);
            cn->eventcb(cn, CONN_ERROR | CONN_WRITING, cn->arg);
            return;
        }
        if (n > 0)
            cn->sent_bytes += (uint64_t)n;
    }
    fill(cn);
    if (evbuffer_get_length(out) == 0)
        event_del(&cn->wev);
    if (cn->writecb && conn_out_pending(cn) <= cn->write_low)
        cn->writecb(cn, cn->arg);
}

int conn_connect(struct conn *cn, const struct sockaddr *sa, socklen_t len)
{
    cn->connecting = true;
    cn->connect_errno = 0;
    if (connect(cn->fd, sa, len) < 0) {
        int e = errno;
        if (e == ECONNREFUSED) {
            cn->connect_errno = e; /* reported from the loop, like any other */
            event_active(&cn->wev, EV_WRITE, 1);
            return 0;
        }
        if (e != EINPROGRESS && e != EINTR) {
            cn->connecting = false;
            errno = e;
            return -1;
        }
    }
    /* In progress, or done at once (reported from the loop all the same). */
    add_wev(cn);
    return 0;
}

/* ---- batches ------------------------------------------------------------ */

/*
 * A turn's reads go first, as one io_uring_enter: all of them are committed
 * to their inputs before any callback runs (a callback may touch or free
 * another conn's buffers, which would void a pending reservation). Then the
 * callbacks, which queue sends; then the sends, as one more io_uring_enter.
 * A conn freed while queued stays allocated until it is dequeued here.
 */
#define BATCH_MAX 256u

struct batch_op {
    struct conn *cn;
    struct evbuffer_iovec v; /* reads: the reserved space */
    size_t want;             /* reads: bytes asked for */
    size_t before;           /* sends: output length when issued */
    int res;
};

static _Thread_local struct batch_op ops[BATCH_MAX];

static void on_op_done(uint64_t tag, int res, void *arg)
{
    (void)arg;
    ops[tag].res = res;
}

/* Run the n ops queued in ops[]; false if there were none. An op the
 * kernel never took keeps -ECANCELED (or -ENOMEM when it could not even be
 * queued), and the caller does it the plain way. */
static bool issue(struct loop *l, unsigned n)
{
    if (n == 0)
        return false;
    if (iobatch_run(l->iob, on_op_done, NULL) < 0)
        log_debug("worker %d: io_uring batch: %s (plain syscalls)", l->id, strerror(errno));
    return true;
}

/* Take cn off a queue; reap it if it was freed meanwhile. Returns whether
 * it is still live. */
static bool dequeued(struct conn *cn, bool *flag)
{
    *flag = false;
    if (!cn->closed)
        return true;
    if (!cn->in_readq && !cn->in_sendq)
        loop_defer_free(cn->loop, &cn->reap, conn_reap, cn);
    return false;
}

static void run_reads(struct loop *l)
{
    unsigned n = 0;
    while (l->readq && n < BATCH_MAX) {
        struct conn *cn = dequeue(&l->readq, &l->readq_tail, false);
        if (!dequeued(cn, &cn->in_readq) || !cn->reading)
            continue;
        struct batch_op *op = &ops[n];
        op->cn = cn;
        op->res = -ECANCELED;
        op->want = read_size(cn);
        if (evbuffer_reserve_space(wire_in(cn), (ev_ssize_t)op->want, &op->v, 1) < 1)
            op->v.iov_base = NULL; /* nothing to commit; read the plain way */
        else if (iobatch_recv(l->iob, cn->fd, op->v.iov_base, op->want, n) < 0)
            op->res = -ENOMEM;
        n++;
    }
    if (!issue(l, n))
        return;
    for (unsigned i = 0; i < n; i++) {
        if (!ops[i].v.iov_base)
            continue;
        ops[i].v.iov_len = ops[i].res > 0 ? (size_t)ops[i].res : 0;
        evbuffer_commit_space(wire_in(ops[i].cn), &ops[i].v, 1);
    }
    for (unsigned i = 0; i < n; i++) {
        struct conn *cn = ops[i].cn;
        if (cn->closed)
            continue;
        if (ops[i].res == -ECANCELED || ops[i].res == -ENOMEM) {
            /* never issued: read the plain way */
            read_done(cn, read_now(cn));
            continue;
        }
        read_sized(cn, ops[i].want, ops[i].res);
        read_done(cn, ops[i].res);
    }
}

/* Without an iobatch: each queued conn's output with one writev, in the
 * order they were queued. */
static void run_plain_sends(struct loop *l)
{
    while (l->sendq) {
        struct conn *cn = dequeue(&l->sendq, &l->sendq_tail, true);
        if (!dequeued(cn, &cn->in_sendq) || cn->connecting ||
            event_pending(&cn->wev, EV_WRITE, NULL))
            continue;
        size_t before = conn_out_pending(cn);
        if (evbuffer_get_length(wire_out(cn)) == 0)
            continue;
        int n = evbuffer_write(wire_out(cn), cn->fd);
        wrote(cn, before, n < 0 ? -errno : n);
    }
}

static void run_sends(struct loop *l)
{
    unsigned n = 0;
    while (l->sendq && n < BATCH_MAX) {
        struct conn *cn = dequeue(&l->sendq, &l->sendq_tail, true);
        if (!dequeued(cn, &cn->in_sendq) || cn->connecting ||
            event_pending(&cn->wev, EV_WRITE, NULL))
            continue;
        /* The output's chains go straight into the send's slot
         * (evbuffer_iovec is struct iovec on Linux: no copy). */
        struct iovec *iov = iobatch_send_iov(l->iob);
        int k = iov ? evbuffer_peek(wire_out(cn), -1, NULL, iov, IOBATCH_MAX_IOV) : 1;
        if (k <= 0)
            continue;
        struct batch_op *op = &ops[n];
        op->cn = cn;
        op->before = conn_out_pending(cn);
        op->res = !iov || iobatch_send_commit(l->iob, cn->fd, (unsigned)k, n) < 0
                      ? -ENOMEM
                      : -ECANCELED;
        n++;
    }
    if (!issue(l, n))
        return;
    for (unsigned i = 0; i < n; i++) {
        struct conn *cn = ops[i].cn;
        int res = ops[i].res;
        if (res == -ECANCELED || res == -ENOMEM) {
            int r = evbuffer_write(wire_out(cn), cn->fd);
            res = r < 0 ? -errno : r;
        } else if (res > 0) {
            evbuffer_drain(wire_out(cn), (size_t)res);
        }
        wrote(cn, ops[i].before, res);
    }
}

void conn_run_batch(struct loop *l)
{
    if (!l->iob) {
        run_plain_sends(l);
        return;
    }
    while (l->readq || l->sendq) {
        run_reads(l);
        if (!l->readq)
            run_sends(l);
    }
}
