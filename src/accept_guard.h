/*
 * accept_guard.h — keeps a listener from spinning when accept() fails.
 *
 * At the file-descriptor limit (EMFILE, ENFILE) or out of socket memory,
 * accept() fails at once while the listening socket stays readable, so a
 * level-triggered loop would retry it in a busy loop and log each failure
 * (issue 21: 2.5 million lines in 8 s). The guard instead:
 *
 *   failure   pause the listener (evconnlistener_disable); the pending
 *             connections wait in the kernel's backlog; retry after
 *             ACCEPT_GUARD_FIRST_MS, doubling up to ACCEPT_GUARD_MAX_MS
 *             while accept keeps failing;
 *   episode   one warning when the first failure of an episode happens,
 *             one line with the count and duration once accepting worked
 *             for ACCEPT_GUARD_CALM_MS without a failure, nothing between;
 *   refusal   connections closed on purpose (a connection limit) are
 *             counted and logged at most once per ACCEPT_GUARD_LOG_S.
 *
 * One guard per listener, embedded in its owner, on the owner's thread
 * (event_base); no global state.
 */
#ifndef WEIR_ACCEPT_GUARD_H
#define WEIR_ACCEPT_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#define ACCEPT_GUARD_FIRST_MS 10
#define ACCEPT_GUARD_MAX_MS 1000
#define ACCEPT_GUARD_CALM_MS 2000
#define ACCEPT_GUARD_LOG_S 10

struct accept_guard {
    struct evconnlistener *listener; /* borrowed; NULL once disposed */
    struct event *retry;             /* owned: re-enables the listener */
    char what[48];                   /* names the listener in the log */
    uint32_t delay_ms;               /* next pause; 0: not in an episode */
    bool paused;                     /* listener disabled until `retry` */
    uint64_t failures;               /* failed accepts in this episode */
    uint64_t episode_start_ms;
    uint64_t refused;           /* refusals not logged yet */
    uint64_t refused_logged_ms; /* when the last refusal line was logged */
};

/*
 * Guard listener (on base). `what` names it in log lines ("worker 0",
 * "control socket"). The owner's listener error callback calls
 * accept_guard_failed(). Returns 0 or -1.
 */
int accept_guard_init(struct accept_guard *g, struct event_base *base,
                      struct evconnlistener *listener, const char *what)
    __attribute__((warn_unused_result));

/* Stop guarding: the retry timer is freed. Call before freeing the listener. */
void accept_guard_dispose(struct accept_guard *g);

/* accept() failed with err (the listener's error callback): pause and
 * schedule the retry; logs only when an episode begins. */
void accept_guard_failed(struct accept_guard *g, int err);

/* An accept succeeded: an episode ends (logged with its count) once
 * ACCEPT_GUARD_CALM_MS pass without a failure. Cheap when no episode runs;
 * call it from the accept callback. */
void accept_guard_accepted(struct accept_guard *g);

/* A connection was closed on purpose (limit reached); `why` names the
 * limit. Logged at most once per ACCEPT_GUARD_LOG_S, with the count. */
void accept_guard_refused(struct accept_guard *g, const char *why);

#endif
