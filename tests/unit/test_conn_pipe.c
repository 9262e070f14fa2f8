/*
 * test_conn_pipe.c — conn_pipe.c's contract on a real loop: a pipe conn
 * looks like a socket conn to its user (conn.h) and every notification
 * either way comes from the loop, never from inside the call that caused
 * it. Checks: conn_send → on_output once, later; conn_pipe_input → readcb
 * only while reading (conn_read_stop holds input back, conn_read_start
 * delivers it); on_taken after each readcb; conn_pipe_consumed counts
 * sent_bytes and fires writecb once when the output comes down to the
 * low-water mark (not above it); conn_set_timeouts arms nothing;
 * conn_free with notifications pending delivers none of them.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "conn_pipe.h"
#include "loop.h"
#include "tap.h"
#include "util.h"

static bool in_call;

struct probe {
    int outputs, reads, writes, taken, inside;
};

static void on_output(struct conn *cn, void *arg)
{
    (void)cn;
    struct probe *p = arg;
    p->outputs++;
    p->inside += in_call;
}

static void on_taken(struct conn *cn, void *arg)
{
    (void)cn;
    ((struct probe *)arg)->taken++;
}

static void on_read(struct conn *cn, void *arg)
{
    struct probe *p = arg;
    p->reads++;
    p->inside += in_call;
    evbuffer_drain(cn->in, evbuffer_get_length(cn->in));
}

static void on_write(struct conn *cn, void *arg)
{
    (void)cn;
    struct probe *p = arg;
    p->writes++;
    p->inside += in_call;
}

static void on_event(struct conn *cn, short what, void *arg)
{
    (void)cn;
    (void)what;
    (void)arg;
}

static void turns(struct loop *l, int n)
{
    while (n-- > 0) {
        event_base_loop(l->base, EVLOOP_NONBLOCK);
        conn_run_batch(l);
        loop_reap(l);
    }
}

int main(void)
{
    struct loop *l = xcalloc(1, sizeof(*l));
    CHECK(loop_init(l, 0) == 0);
    struct probe p = {0};
    struct conn *cn = conn_pipe_new(l, on_output, &p);
    ok(cn != NULL, "a pipe conn");
    conn_pipe_set_taken(cn, on_taken);
    conn_setcb(cn, on_read, on_write, on_event, &p);
    conn_set_write_low(cn, 100);
    conn_set_timeouts(cn, 1, 1); /* must arm nothing */

    /* user → owner */
    evbuffer_add(cn->out, "hello", 5);
    in_call = true;
    conn_send(cn);
    in_call = false;
    is_int(p.outputs, 0, "conn_send does not call on_output from inside");
    turns(l, 2);
    is_int(p.outputs, 1, "on_output runs once from the loop");

    /* owner → user, while not reading */
    evbuffer_add(cn->in, "abc", 3);
    conn_pipe_input(cn);
    turns(l, 2);
    is_int(p.reads, 0, "no readcb while the user does not read");
    in_call = true;
    conn_read_start(cn);
    in_call = false;
    is_int(p.reads, 0, "conn_read_start does not call readcb from inside");
    turns(l, 2);
    is_int(p.reads, 1, "conn_read_start delivers the waiting input");
    is_int(p.taken, 1, "on_taken after the readcb");
    conn_read_stop(cn);
    evbuffer_add(cn->in, "def", 3);
    conn_pipe_input(cn);
    turns(l, 2);
    is_int(p.reads, 1, "conn_read_stop holds input back");
    conn_read_start(cn);
    turns(l, 2);
    is_int(p.reads, 2, "and conn_read_start lets it through");

    /* drain notification at the low-water mark */
    char big[300];
    memset(big, 'x', sizeof(big));
    evbuffer_add(cn->out, big, sizeof(big)); /* 305 queued */
    size_t before = evbuffer_get_length(cn->out);
    evbuffer_drain(cn->out, 100);
    conn_pipe_consumed(cn, before, 100); /* 205 left: above the mark */
    turns(l, 2);
    is_int(p.writes, 0, "no writecb while above the low-water mark");
    before = evbuffer_get_length(cn->out);
    evbuffer_drain(cn->out, 150);
    in_call = true;
    conn_pipe_consumed(cn, before, 150); /* 55 left */
    in_call = false;
    turns(l, 2);
    is_int(p.writes, 1, "writecb once at the low-water mark, from the loop");
    ok(cn->sent_bytes == 250, "sent_bytes counts what the owner took: %llu",
       (unsigned long long)cn->sent_bytes);

    /* free with notifications pending */
    evbuffer_add(cn->in, "x", 1);
    conn_pipe_input(cn);
    conn_send(cn);
    int reads = p.reads, outputs = p.outputs;
    conn_free(cn);
    turns(l, 3);
    ok(p.reads == reads && p.outputs == outputs, "a freed pipe conn delivers nothing more");
    is_int(p.inside, 0, "no callback ran from inside a conn call");

    loop_dispose(l);
    free(l);
    return tap_done();
}
