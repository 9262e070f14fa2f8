/*
 * bench_events.h — weir-bench's view of weir's event stream (--events
 * SOCKET): a thread that sends `events` on weir's control socket and keeps
 * every event of the run (split changes, guard trips, rollout steps,
 * reloads) with its time, so the report can say when the split changed and
 * why, next to what the load saw at that moment.
 *
 * Threads: bench_events_start/stop from the main thread; the reader thread
 * appends under a mutex; after stop the events are plain data for the
 * report (struct bench_event, bench_report.h).
 */
#ifndef WEIR_BENCH_EVENTS_H
#define WEIR_BENCH_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "bench_report.h"

#define BENCH_EVENTS_MAX 256 /* further events of a run are counted, not kept */

struct bench_events;

/*
 * Turn one event line of the stream into *ev, at_s = (t_ns - t0_ns) / 1e9
 * (negative before the load began). Returns 0, or -1 for a line that is not
 * an event object (the {"ok":true} greeting, garbage). Pure; exposed for
 * tests.
 */
int bench_events_parse(const char *line, size_t len, uint64_t t_ns, uint64_t t0_ns,
                       struct bench_event *ev);

/* Connect to weir's control socket at path and start following its event
 * stream. NULL with a sentence in err when the socket refuses. */
struct bench_events *bench_events_start(const char *path, char *err, size_t errlen);

/*
 * Stop following; the events, with times counted from t0_ns (weir-bench's
 * start of load, CLOCK_MONOTONIC), go to *out / *n (owned by the caller:
 * free(*out)). Frees e. NULL-safe (then *out = NULL, *n = 0).
 */
void bench_events_stop(struct bench_events *e, uint64_t t0_ns, struct bench_event **out,
                       size_t *n);

#endif
