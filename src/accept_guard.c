/*
 * accept_guard.c — see accept_guard.h.
 */
#include "accept_guard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Either the pause is over (re-enable the listener) or, while accepting,
 * ACCEPT_GUARD_CALM_MS passed without a failure: the episode ends. */
static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct accept_guard *g = arg;
    (void)fd;
    (void)what;
    if (!g->listener)
        return;
    if (g->paused) {
        g->paused = false;
        evconnlistener_enable(g->listener);
        return;
    }
    if (g->delay_ms == 0)
        return;
    log_info("%s: accepting again after %llu failed accepts over %llu ms", g->what,
             (unsigned long long)g->failures,
             (unsigned long long)(util_now_ms() - g->episode_start_ms));
    g->delay_ms = 0;
    g->failures = 0;
}

static void arm(struct accept_guard *g, uint32_t ms)
{
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(g->retry, &tv);
}

static void schedule_retry(struct accept_guard *g, uint32_t ms)
{
    evconnlistener_disable(g->listener);
    g->paused = true;
    arm(g, ms);
}

void accept_guard_failed(struct accept_guard *g, int e)
{
    if (!g->listener)
        return;
    g->failures++;
    if (g->delay_ms == 0) {
        g->episode_start_ms = util_now_ms();
        g->delay_ms = ACCEPT_GUARD_FIRST_MS;
        log_warn("%s: accept failed: %s; pausing accepts, retrying from %d ms up to "
                 "every %d ms (logged again when accepting works)",
                 g->what,
                 evutil_socket_error_to_string(e), ACCEPT_GUARD_FIRST_MS,
                 ACCEPT_GUARD_MAX_MS);
    } else if (g->delay_ms < ACCEPT_GUARD_MAX_MS) {
        g->delay_ms *= 2;
        if (g->delay_ms > ACCEPT_GUARD_MAX_MS)
            g->delay_ms = ACCEPT_GUARD_MAX_MS;
    }
    schedule_retry(g, g->delay_ms);
}

int accept_guard_init(struct accept_guard *g, struct event_base *base,
                      struct evconnlistener *listener, const char *what)
{
    memset(g, 0, sizeof(*g));
    snprintf(g->what, sizeof(g->what), "%s", what);
    g->retry = evtimer_new(base, on_retry, g);
    if (!g->retry)
        return -1;
    g->listener = listener;
    return 0;
}

void accept_guard_dispose(struct accept_guard *g)
{
    if (g->retry) {
        event_free(g->retry);
        g->retry = NULL;
    }
    g->listener = NULL;
}

void accept_guard_accepted(struct accept_guard *g)
{
    if (__builtin_expect(g->delay_ms == 0, 1))
        return;
    /* In an episode: it ends once accepting worked for a calm period, so
     * a limit hovering at the edge is one episode, not one per accept. */
    if (!event_pending(g->retry, EV_TIMEOUT, NULL))
        arm(g, ACCEPT_GUARD_CALM_MS);
}

void accept_guard_refused(struct accept_guard *g, const char *why)
{
    g->refused++;
    uint64_t now = util_now_ms();
    if (g->refused_logged_ms && now - g->refused_logged_ms < ACCEPT_GUARD_LOG_S * 1000u)
        return;
    log_warn("%s: %s: %llu connection(s) refused since the last such line", g->what, why,
             (unsigned long long)g->refused);
    g->refused = 0;
    g->refused_logged_ms = now;
}
