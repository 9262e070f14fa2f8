/*
 * access_id.h — the request id: the client's X-Request-Id when it sent one
 * weir can pass on, otherwise one weir makes. proxy.c sends it upstream as
 * X-Request-Id and the access log writes it as `request_id`, so a line in
 * weir's log and one in the app's log can be joined.
 *
 * A made id is 32 lowercase hex digits (16 bytes): 8 bytes drawn from the
 * kernel once per thread, then a bijective mix of that thread's counter, so
 * ids never repeat within a thread, and two threads (or two processes, or
 * a restart) share a prefix only by a 2^-64 chance. No lock, no syscall
 * after a thread's first id.
 */
#ifndef WEIR_ACCESS_ID_H
#define WEIR_ACCESS_ID_H

#include <stdbool.h>
#include <stddef.h>

#include "router.h"
#include "util.h"

#define ACCESS_ID_MAX 128 /* longest client id passed on */
#define ACCESS_ID_LEN 32  /* a made id: 16 bytes as hex */

/* May a client's id be passed on: 1..ACCESS_ID_MAX bytes of visible ASCII
 * (0x21..0x7e: no space, no control, nothing that could split a log line
 * or a header). */
bool access_id_is_sane(struct strview v);

/* Make a new id into buf (ACCESS_ID_LEN digits and a NUL). Any thread
 * (per-thread state). */
void access_id_make(char buf[ACCESS_ID_LEN + 1]);

/*
 * The id of a request with headers h[0..n): its X-Request-Id if it has
 * exactly one and it is sane, otherwise a new one made into buf. The view
 * borrows from h or from buf. Any thread.
 */
struct strview access_id_pick(const struct router_header *h, size_t n,
                              char buf[ACCESS_ID_LEN + 1]);

#endif
