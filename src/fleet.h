/*
 * fleet.h — several weir replicas act as one (INTERFACE.md "Fleet"): they
 * share their rollout state and their guard outcome counts, without a
 * consensus system.
 *
 * The shared state is a join-semilattice (rollout_join: a newer rollout id
 * wins, for one id the step only grows, abort and promote latch, pause is a
 * counter), so replicas converge by telling each other what they have, in
 * any order, with repeats and losses. Every `interval` (250 ms) and at once
 * on a change, this replica POSTs its state (fleet_msg.h) to every peer's
 * admin listener at /fleet over libevent's HTTP client; peers come from
 * `fleet.peers`, a list or one DNS name (a headless Service) re-resolved by
 * discovery.c. A received message that passes the checks (size, HMAC under
 * the shared key, shape, clock window, boot + sequence) is joined with our
 * rollout; a different result is applied through the snapshot path
 * (release_rollout_adopt: split change, generation bump, state file) and
 * announced as a "fleet" event. Its outcome counts replace that peer's
 * previous ones, and the guard adds every peer's latest counts to ours
 * (release.c's counts hook), so every replica judges the same merged
 * traffic. A peer can change nothing else: no other state is read from a
 * message.
 *
 * Not guaranteed: agreement during a partition (each side judges and acts
 * alone, and they converge by the join when it heals: an abort on either
 * side wins); a message is never resent (the next one carries the state
 * anyway).
 *
 * Main thread only.
 */
#ifndef WEIR_FLEET_H
#define WEIR_FLEET_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct config;
struct event_base;
struct json_buf;

/*
 * Start when cfg->fleet has peers: read and check the key file (a regular
 * file, not empty, writable by its owner only; a warning when others may
 * read it or it is shorter than FLEET_KEY_MIN_BYTES), hook
 * into release.c, start telling the peers. After admin_start and
 * release_start. Returns 0 (also when there is no fleet), or -1 with the
 * reason logged (the first load fails hard).
 */
int fleet_start(struct event_base *base, const struct config *cfg) WUR;

/* After a reload: follow the new peers (the key and interval need a
 * restart). */
void fleet_configure(const struct config *cfg);

/* Stop: drop every connection and peer, unhook from release.c. */
void fleet_stop(void);

/* Is the fleet on (fleet_start found peers and a key)? */
bool fleet_enabled(void);

/*
 * A message POSTed to /fleet: body (len bytes), the MAC header (NULL when
 * absent), the sender's IP as text. Returns the HTTP status to answer:
 * 204 taken, 400/403/413 refused (counted in weir_fleet_rejected_total,
 * logged, nothing changed), 409 when it is our own (a DNS name that lists
 * this replica too), 404 when the fleet is off; why gets a short
 * reason for the answer's body.
 */
int fleet_receive(const char *body, size_t len, const char *mac, const char *src_ip,
                  char *why, size_t whylen);

/* The `fleet` command's answer members: ,"fleet":{...}. */
void fleet_render(struct json_buf *out);

/* The fleet's Prometheus families (weir_fleet_peers,
 * weir_fleet_rejected_total{reason}, message counters). */
void fleet_render_metrics(struct json_buf *out);

#endif
