/*
 * discovery.h — endpoints found by DNS (`discover: NAME:PORT`), per version.
 *
 * discovery.c (main thread) resolves each version's name with libevent's
 * evdns (A and AAAA, `resolvers` honoured) on its interval, keeps the last
 * good answer when a lookup fails, and when a set changes calls
 * runtime_refresh() so a new snapshot is published. snapshot_new() merges
 * the discovered endpoints after the configured ones.
 */
#ifndef WEIR_DISCOVERY_H
#define WEIR_DISCOVERY_H

#include <stddef.h>

#include <event2/event.h>

#include "config.h"

/*
 * The endpoints currently discovered for a version (borrowed; valid until
 * the next discovery change). Returns the count (0 when none or no
 * discover). Main thread.
 */
size_t discovery_endpoints(const char *version,
                           const struct config_endpoint **out);

/* Follow the running config: start/stop resolvers per version. Main thread. */
void discovery_configure(struct event_base *base, const struct config *cfg);

/* Stop every lookup and free the sets. Main thread. */
void discovery_stop(void);

#endif
