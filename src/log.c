/*
 * log.c — see log.h. Formats into a stack buffer and writes it with one
 * write(2) to stderr; no locks, no allocation. The level and the format
 * are atomics (relaxed): a reload changes them while workers log.
 *
 * JSON lines: {"time":"...Z","level":"warn","pid":N,"msg":"..."}; the
 * message goes through json.c's escaper (control characters as \u00XX,
 * invalid UTF-8 as U+FFFD), so every line parses, whatever a peer sent.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

static atomic_int min_level = LOG_L_INFO;
static atomic_bool json_lines;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level lvl)
{
    atomic_store_explicit(&min_level, (int)lvl, memory_order_relaxed);
}

/* WEIR_DEBUG set to anything but "" or "0". */
static bool debug_forced(void)
{
    const char *e = getenv("WEIR_DEBUG");
    return e && *e && strcmp(e, "0") != 0;
}

void log_configure(enum log_level lvl, bool json)
{
    log_set_level(debug_forced() ? LOG_L_DEBUG : lvl);
    atomic_store_explicit(&json_lines, json, memory_order_relaxed);
}

/* msg[0..len) as a JSON string's contents into out[0..cap); returns the length. */
static size_t escape_into(char *out, size_t cap, const char *msg, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char esc[8];
        size_t elen;
        size_t used = json_escape_char(msg + i, len - i, JSON_ESC_UNICODE, esc, &elen);
        if (o + elen > cap)
            break;
        memcpy(out + o, esc, elen);
        o += elen;
        i += used;
    }
    return o;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if ((int)lvl < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (long)(tv.tv_usec / 1000));
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m >= sizeof(msg) ? sizeof(msg) - 1
                                                       : (size_t)m;

    char line[2048];
    size_t len;
    if (atomic_load_explicit(&json_lines, memory_order_relaxed)) {
        int n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,"
                                             "\"msg\":\"",
                         stamp, level_names[lvl], (int)getpid());
        len = (size_t)(n < 0 ? 0 : n);
        /* room kept for the closing "} and the newline */
        len += escape_into(line + len, sizeof(line) - len - 3, msg, mlen);
        line[len++] = '"';
        line[len++] = '}';
    } else {
        int n = snprintf(line, sizeof(line), "%s weir[%d] %s: ", stamp, (int)getpid(),
                         level_names[lvl]);
        len = (size_t)(n < 0 ? 0 : n);
        if (mlen > sizeof(line) - len - 1)
            mlen = sizeof(line) - len - 1;
        memcpy(line + len, msg, mlen);
        len += mlen;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere to report a failing stderr */
}
