/*
 * access_format.h — what one access-log line says: the JSON line (the
 * default) and the combined log format, as pure functions of an entry and
 * a time, so they can be tested byte for byte. Delivery (rings, the
 * writer thread, the file) is access.c's.
 *
 * Any thread; a struct access_format_clock belongs to one thread.
 */
#ifndef WEIR_ACCESS_FORMAT_H
#define WEIR_ACCESS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "access_field.h"
#include "config.h"
#include "router.h"
#include "util.h"

/* One finished request, as access_log_txn() (access.h) takes it. */
struct conn_tls;

struct access_entry {
    const struct sockaddr *client;
    struct strview method;
    struct strview target;
    uint8_t http_minor;                  /* the request's HTTP/1.minor */
    bool http2;                          /* came as an HTTP/2 stream: "HTTP/2.0" */
    const struct router_header *headers; /* borrowed: request headers (User-Agent, Referer), may be NULL */
    size_t n_headers;
    int status;           /* 0 = none sent */
    uint64_t bytes;       /* response body bytes sent */
    const char *version;  /* NULL = not routed */
    const char *endpoint; /* NULL = none */
    enum route_reason reason;
    int rule;
    int32_t bucket;
    uint64_t upstream_us; /* to the first response byte */
    uint64_t total_us;
    unsigned retries;
    const char *error;            /* weir's reason, NULL if none */
    struct strview request_id;    /* borrowed: the X-Request-Id sent upstream; len 0 = none */
    uint64_t bytes_received;      /* request bytes read from the client: head + body */
    bool connected;               /* a new upstream conn was opened for this request */
    uint64_t upstream_connect_us; /* its connect time (meaningful when connected) */
    const struct conn_tls *tls;   /* borrowed: the client's TLS, NULL on a plain listener */
};

/* Formatted time stamps of the last second seen, per format; zero it
 * before first use. */
struct access_format_clock {
    time_t iso_sec;
    char iso[24]; /* "2026-11-28T14:30:07" */
    time_t clf_sec;
    char clf[32]; /* "28/Nov/2026:14:30:07 +0000" */
};

/*
 * Format e, logged at wall-clock time ts, as one line (no newline) into
 * buf[0..cap): a line that would be longer is cut at cap (long fields are
 * shortened first, with "..."). Returns the length written (<= cap; no
 * NUL). clock caches the formatted second between calls.
 */
size_t access_format_line(char *buf, size_t cap, enum config_log_format format,
                          struct access_format_clock *clock,
                          const struct timespec *ts, const struct access_entry *e);

/*
 * access_format_line() with the JSON line's fields chosen: fields[0..n)
 * (enum access_field ids; fields NULL = every field in the default order).
 * The combined format ignores them.
 */
size_t access_format_line_fields(char *buf, size_t cap, enum config_log_format format,
                                 const uint32_t *fields, size_t n,
                                 struct access_format_clock *clock,
                                 const struct timespec *ts, const struct access_entry *e);

#endif
