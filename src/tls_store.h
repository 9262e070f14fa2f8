/*
 * tls_store.h — the process's current TLS contexts (tls_ctx.h), kept on
 * the main thread: every snapshot published takes a reference to the
 * current set. The set is rebuilt when the config's TLS settings change
 * (reload) or the files they name change on disk (a poll of their
 * identity every TLS_STORE_POLL_MS: a Secret or ConfigMap mount swaps a
 * symlink, which inotify on the file itself would miss). A set that
 * cannot be built changes nothing: the current one stays, the reason is
 * logged once and kept for status (tls_store_error).
 */
#ifndef WEIR_TLS_STORE_H
#define WEIR_TLS_STORE_H

#include <stddef.h>

#include <event2/event.h>

#include "config.h"
#include "tls_ctx.h"

#define TLS_STORE_POLL_MS 1000

/* Make the current set match cfg (rebuilt only when its fingerprint
 * differs). -1: cfg's set cannot be built; the current one stays, err and
 * *at say why and where. Main thread. */
int tls_store_update(const struct config *cfg, struct config_pos *at, char *err,
                     size_t errlen);

/* A reference to the current set (NULL before the first update). */
struct tls_set *tls_store_acquire(void);

/* Poll the files of current(): on a change, rebuild and call republish
 * (which publishes a snapshot with the new set). */
void tls_store_start(struct event_base *base, const struct config *(*current)(void),
                     void (*republish)(const char *why));
void tls_store_stop(void);

/* The last failure to build a set ("" when the last attempt worked). */
const char *tls_store_error(void);

/* Status (control socket `status`, admin /status): when s has TLS,
 * `,"tls":{"certificates":[{"listener","name","not_after"}...],"error":E}`
 * (E: why the last new set was refused, null when it was not). */
struct json_buf;
struct snapshot;
void tls_store_render_status(struct json_buf *b, const struct snapshot *s);

/* Sets built and builds refused so far (metrics). */
unsigned long tls_store_reloads(void);
unsigned long tls_store_failures(void);

#endif
