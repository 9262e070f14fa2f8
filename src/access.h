/*
 * access.h — the access log: one line per finished txn (JSON lines by
 * default, or combined log format), to stdout or a file, off if asked.
 *
 * Workers never block on the output: each formats its line into its own
 * lock-free single-producer ring; one writer thread drains the rings with
 * write(2). A full ring drops the line and counts it (a slow disk costs log
 * lines, never latency). SIGUSR1 (access_reopen) makes the writer reopen
 * the file by name (logrotate's "create" mode).
 */
#ifndef WEIR_ACCESS_H
#define WEIR_ACCESS_H

#include <stdint.h>
#include <sys/socket.h>

#include "access_format.h"
#include "util.h"

struct loop;
struct config;

/*
 * Apply the access_log settings of cfg: enable/disable, format, and the
 * output (the file is opened here, so an unwritable path fails the call and
 * changes nothing). Starts the writer thread on first use. Returns 0/-1
 * (logged). Main thread.
 */
int access_configure(const struct config *cfg) WUR;

/* Log one txn. Worker thread; never blocks on the output. */
void access_log_txn(const struct loop *loop, const struct access_entry *e);

/* Reopen the log file (SIGUSR1); no-op for stdout. Main thread (async:
 * the writer thread reopens). */
void access_reopen(void);

/* Lines dropped because a worker's ring was full, and failed writes of the
 * writer thread (each loses a batch of lines), so far. Any thread. */
uint64_t access_dropped(void);
uint64_t access_write_errors(void);

/* Write out everything logged so far, then stop the writer and release
 * everything. Main thread, after workers stopped. */
void access_shutdown(void);

#endif
