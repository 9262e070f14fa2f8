/*
 * control.h — the Unix control socket: one command per line in, one JSON
 * line out (INTERFACE.md), on the main thread's event_base.
 */
#ifndef WEIR_CONTROL_H
#define WEIR_CONTROL_H

#include <event2/event.h>

#include "config.h"

/*
 * Create the socket at cfg->control (mode/owner/group from cfg) and start
 * serving on base. Returns 0 or -1 (logged). Main thread.
 */
int control_start(struct event_base *base, const struct config *cfg) WUR;

/* Close the socket, unlink it, drop all control connections. */
void control_stop(void);

#endif
