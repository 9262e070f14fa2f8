/*
 * h2_metrics.h — HTTP/2 connection-level counters: connections, streams,
 * GOAWAYs weir sent by reason, streams refused by reason. Requests carried
 * by streams are counted like every txn (metrics.h); these count what only
 * HTTP/2 has. Process-wide relaxed atomics: they move once per connection,
 * per stream or per protective action, not per byte. Any thread.
 */
#ifndef WEIR_H2_METRICS_H
#define WEIR_H2_METRICS_H

struct json_buf;

/* Why weir sent a GOAWAY (label values of weir_h2_goaway_total). */
enum h2_goaway_reason {
    H2_GA_IDLE = 0,       /* no stream for timeouts.client_idle */
    H2_GA_DRAIN,          /* weir stops (graceful drain) */
    H2_GA_PROTOCOL,       /* the client broke the protocol (nghttp2 decided) */
    H2_GA_RAPID_RESET,    /* too many stream resets (CVE-2023-44487) */
    H2_GA_CONTINUATION,   /* too many CONTINUATION frames in a header block */
    H2_GA_HPACK_BOMB,     /* decoded header list far over the limit */
    H2_GA_SETTINGS,       /* SETTINGS flood */
    H2_GA_PING,           /* PING flood */
    H2_GA_EMPTY_FRAMES,   /* empty DATA/HEADERS frames flood */
    H2_GA_REFUSED,        /* kept opening streams over the limit */
    H2_GA_STALL,          /* response blocked by a zero window too long */
    H2_GA_HEADER_TIMEOUT, /* a header block not complete in timeouts.client_header */
    H2_GA_COUNT,
};

/* Why a stream was refused or reset by weir (weir_h2_streams_refused_total). */
enum h2_refuse_reason {
    H2_RF_MAX_CONCURRENT = 0, /* over limits.h2_max_concurrent_streams */
    H2_RF_HEADER_LIST,        /* header list over limits.max_header_bytes/count: 431 */
    H2_RF_COUNT,
};

void h2_metrics_connection(void);
void h2_metrics_stream(void);
void h2_metrics_goaway(enum h2_goaway_reason r);
void h2_metrics_refused(enum h2_refuse_reason r);
const char *h2_metrics_goaway_label(enum h2_goaway_reason r);

/* Append the Prometheus families. */
void h2_metrics_render(struct json_buf *out);

#endif
