/*
 * events.h — the event stream: what changed, when and why, as one JSON line
 * per event, for whoever listens (the control socket's `events` streams).
 *
 *   {"time":"RFC3339","event":"change"|"guard"|"rollout"|"reload"|"fleet",
 *    "generation":N, ...the producer's members}
 *
 * Producers (runtime.c for changes and reloads, release.c for the guard and
 * the rollout) call events_publish() and know no consumer; consumers
 * register one sink (control.c). A sink gets the complete line including
 * its newline. Main thread only.
 */
#ifndef WEIR_EVENTS_H
#define WEIR_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef void (*events_sink_cb)(const char *line, size_t len, void *arg);

/* Register the sink (one; NULL removes it). Main thread. */
void events_set_sink(events_sink_cb sink, void *arg);

/*
 * Publish one event of `kind` at generation gen. members: zero or more
 * JSON object members to append, each starting with a comma
 * (",\"what\":\"split v1=90\""), or NULL. Main thread.
 */
void events_publish(const char *kind, uint64_t gen, const char *members);

/*
 * Build ",\"KEY\":\"VALUE\"" pairs into buf (escaped): keys and values
 * alternate, the list ends with NULL. Returns buf. For producers.
 */
const char *events_members(char *buf, size_t buflen, ...);

#endif
