/*
 * log.h — the diagnostic log (stderr, one line per event) and its levels.
 *
 * Lines look like `2026-11-28T14:30:07.123Z weir[1234] warn: c#12 ... msg`,
 * or, with `log: {format: json}`, one JSON object per line:
 * `{"time":"2026-11-28T14:30:07.123Z","level":"warn","pid":1234,"msg":"..."}`.
 * Writes are single write(2) calls of a formatted line, so lines from
 * different threads never interleave. The access log is separate (access.c).
 */
#ifndef WEIR_LOG_H
#define WEIR_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_L_DEBUG = 0, /* verbose: `log: {level: debug}` or WEIR_DEBUG=1 */
    LOG_L_INFO,      /* lifecycle: start, reload, changes */
    LOG_L_WARN,      /* a peer or input failed; weir handled it */
    LOG_L_ERROR,     /* weir could not do something it was asked to */
};

/* Write one line at level. Any thread. */
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Set the minimum level written (default INFO). Any thread. */
void log_set_level(enum log_level lvl);

/*
 * Apply the config's `log:` settings: minimum level, JSON lines or text.
 * The environment variable WEIR_DEBUG (set, not "0") wins over the level
 * and forces debug, so a debugging session needs no config edit. Main
 * thread, at start and after every reload.
 */
void log_configure(enum log_level lvl, bool json);

#define log_debug(...) log_msg(LOG_L_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_L_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_L_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_L_ERROR, __VA_ARGS__)

#endif
