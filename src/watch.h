/*
 * watch.h — reload when the config file changes (INTERFACE.md: "weir also
 * reloads by itself when its config file changes, including the symlink
 * swap a Kubernetes ConfigMap mount does"; `watch: false` turns it off).
 *
 * inotify watches the file's directory (and the directory of the file the
 * path finally resolves to), not the file: editors and `mv` replace the
 * file by rename, and a ConfigMap update swaps the `..data` symlink, so a
 * watch on the file itself would be left on a dead inode. A swap (rename,
 * symlink) is debounced (WATCH_DEBOUNCE_MS after the last event, at most
 * WATCH_MAX_DELAY_MS after the first); a file written in place is loaded
 * only once no writer has it open (at most WATCH_OPEN_MAX_MS) and its size,
 * mtime and content hash stayed the same for WATCH_SETTLE_MS, so a
 * half-written file never applies. Then the file's content hash is compared
 * with the last content runtime.c read, and runtime_reload() runs only if
 * it differs.
 * Whether `watch` is on is read from the running config at each event, so
 * turning it on or off by a reload works without a restart.
 */
#ifndef WEIR_WATCH_H
#define WEIR_WATCH_H

#include <event2/event.h>

#include "util.h"

#define WATCH_DEBOUNCE_MS 150
#define WATCH_MAX_DELAY_MS 1000
#define WATCH_SETTLE_MS 400
#define WATCH_OPEN_MAX_MS 30000

/*
 * Start watching path (the config file given to runtime_start) on base.
 * Returns 0, or -1 when inotify is unavailable (logged; weir runs on,
 * SIGHUP and `reload` still work). Main thread.
 */
int watch_start(struct event_base *base, const char *path) WUR;

/* Stop watching and free everything; safe to call when not started. */
void watch_stop(void);

#endif
