/*
 * loop.c — see loop.h.
 *
 * The reap: loop_defer_free() pushes onto a list and activates reap_ev, so
 * the frees run once the current dispatch has unwound (a callback never
 * frees the object whose code is still on the stack). A free may queue
 * more frees; the reap runs until the list stays empty.
 */
#include "loop.h"

#include <errno.h>
#include <string.h>

#include <event2/event.h>

#include "iobatch.h"
#include "log.h"

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_reap(arg);
}

int loop_init(struct loop *l, int id)
{
    memset(l, 0, sizeof(*l));
    l->magic = LOOP_MAGIC;
    l->id = id;
    l->readq_tail = &l->readq;
    l->sendq_tail = &l->sendq;
    struct event_config *ec = event_config_new();
    if (ec)
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    l->base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec)
        event_config_free(ec);
    if (l->base)
        l->reap_ev = event_new(l->base, -1, 0, on_reap, l);
    if (!l->reap_ev) {
        log_error("worker %d: cannot create event loop: %s", id, strerror(errno));
        if (l->base)
            event_base_free(l->base);
        l->magic = 0;
        return -1;
    }
    return 0;
}

void loop_reap(struct loop *l)
{
    while (l->reap) {
        struct reap_item *r = l->reap;
        l->reap = NULL;
        while (r) {
            struct reap_item *next = r->next;
            r->free_fn(r->obj);
            l->n_reaped++;
            r = next;
        }
    }
}

void loop_dispose(struct loop *l)
{
    CHECK(l->magic == LOOP_MAGIC);
    CHECK(!l->readq && !l->sendq);
    loop_reap(l);
    iobatch_free(l->iob);
    l->iob = NULL;
    event_free(l->reap_ev);
    event_base_free(l->base);
    l->magic = 0;
}

int loop_batch_init(struct loop *l, unsigned entries)
{
    CHECK(!l->iob);
    l->iob = iobatch_new(entries);
    return l->iob ? 0 : -1;
}

void loop_batch_dispose(struct loop *l)
{
    CHECK(!l->readq && !l->sendq);
    iobatch_free(l->iob);
    l->iob = NULL;
}

void loop_defer_free(struct loop *l, struct reap_item *r,
                     void (*free_fn)(void *), void *obj)
{
    r->free_fn = free_fn;
    r->obj = obj;
    r->next = l->reap;
    l->reap = r;
    event_active(l->reap_ev, EV_TIMEOUT, 0);
}

const struct timeval *loop_timeout(struct loop *l, uint32_t ms)
{
    for (unsigned i = 0; i < l->n_timeouts; i++)
        if (l->timeout_ms[i] == ms)
            return l->timeout_tv[i];
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (l->n_timeouts < LOOP_TIMEOUTS_MAX) {
        const struct timeval *c = event_base_init_common_timeout(l->base, &tv);
        if (c) {
            l->timeout_ms[l->n_timeouts] = ms;
            l->timeout_tv[l->n_timeouts++] = c;
            return c;
        }
    }
    l->timeout_scratch = tv;
    return &l->timeout_scratch;
}
