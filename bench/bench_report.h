/*
 * bench_report.h — what weir-bench measured, per version, and every way it
 * is shown: the human table with its verdict sentence, the --json document
 * of INTERFACE.md, and the --plot SVG.
 *
 * A version is the value of the version header on a response. Requests whose
 * response lacks the header, and requests that failed before any response
 * header (connect errors, resets, timeouts), count under "unknown". A request
 * is finished when it got a complete response or failed; errors are transport
 * errors plus 5xx responses (4xx are answers, counted by status class only).
 * Latency is recorded for every complete response, 5xx included, in ns.
 *
 * Each worker thread owns one struct bench_report and is its only writer;
 * the main thread reads the live_* mirrors for the progress line while the
 * run goes on, and merges every worker's report into one after the workers
 * have been joined. Time series (for the plot) are kept in buckets of
 * bucket_s seconds (1 s unless the run is longer than ten minutes).
 */
#ifndef WEIR_BENCH_REPORT_H
#define WEIR_BENCH_REPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench_hist.h"
#include "bench_sched.h"

#define BENCH_REPORT_MAX_VERSIONS 32 /* distinct header values, "unknown" included */
#define BENCH_REPORT_UNKNOWN 0       /* slot of "unknown" */
#define BENCH_REPORT_HIST_BITS 7     /* full histograms: <= 0.4 % error */
#define BENCH_REPORT_SERIES_BITS 5   /* per-bucket histograms: <= 1.6 % */

/* Kinds of failed requests. */
enum bench_err {
    BENCH_ERR_CONNECT = 0, /* connect() failed (refused, unreachable, timed out) */
    BENCH_ERR_RESET,       /* reset or EOF in the middle of a response */
    BENCH_ERR_CLOSED,      /* peer closed the connection before answering */
    BENCH_ERR_TIMEOUT,     /* no complete response within --timeout or by the hard stop */
    BENCH_ERR_PARSE,       /* the response was not valid HTTP/1.x */
    BENCH_ERR_HTTP5XX,     /* a complete 5xx response */
    BENCH_ERR_GRPC,        /* --grpc: a complete answer with a non-zero grpc-status */
    BENCH_ERR__COUNT
};

/* Short label of an error kind ("connect", "reset", ...). */
const char *bench_report_err_name(enum bench_err kind);

/* Counters of one version. */
struct bench_version {
    char name[BENCH_SCHED_NAME_MAX];
    size_t name_len;
    uint64_t requests; /* finished requests */
    uint64_t errors;   /* transport errors + 5xx */
    uint64_t err_kind[BENCH_ERR__COUNT];
    uint64_t status_class[6];       /* [c] = cxx responses; [0] other */
    struct bench_hist hist;         /* latency of every response, ns */
    uint64_t *series_requests;      /* owned; n_buckets: finished per bucket */
    uint64_t *series_errors;        /* owned; n_buckets */
    struct bench_hist *series_hist; /* owned; n_buckets, each set up on first use */
    uint64_t *step_requests;        /* owned; n_steps: by ramp step at send */
    uint64_t *step_errors;          /* owned; n_steps */
    _Atomic uint64_t live_requests; /* mirror of requests for other threads */
    _Atomic uint64_t live_errors;   /* mirror of errors */
};

struct bench_report {
    double bucket_s;                                    /* width of a time-series bucket */
    size_t n_buckets;                                   /* time-series length */
    size_t n_steps;                                     /* ramp steps (0 without --ramp) */
    struct bench_version *v[BENCH_REPORT_MAX_VERSIONS]; /* owned; [0] unknown */
    struct bench_hist send_lag;                         /* open loop: due time to send, idle conns */
    _Atomic size_t n_versions;                          /* published with release after v[i] is set up */
};

/* One --ramp step as it happened. */
struct bench_ramp_step {
    double at_s;              /* when the split was set, seconds after t0 */
    uint32_t target_bp;       /* the target's percent in this step */
    bool applied;             /* the control socket answered ok */
    uint64_t generation;      /* generation after the change (0 if unknown) */
    struct bench_split split; /* the split that was set */
};

/* One event of weir's event stream during the run (--events). */
struct bench_event {
    double at_s;      /* seconds after t0 (negative: before the load began) */
    char event[16];   /* "change", "guard", "rollout", "reload", ... */
    char version[64]; /* the version it names ("" if none) */
    uint64_t generation;
    char what[384]; /* one line for people: what changed and why */
};

/* What the run was (for the outputs; owned by the caller). */
struct bench_run {
    const char *url;            /* borrowed */
    const char *version_header; /* borrowed */
    bool open_loop;
    double rate_per_s; /* -R, open loop only */
    uint32_t conns, threads;
    const char *protocol; /* static: "http/1.1", "h2c" (--h2) or "grpc" (--grpc) */
    uint32_t streams;     /* --h2: streams per connection */
    double planned_s;     /* -d */
    double duration_s;    /* measured: t0 until sending stopped */
    bool has_configured;  /* split read from --control at start */
    struct bench_split configured;
    const char *ramp_target;          /* borrowed; NULL without --ramp */
    size_t n_steps;                   /* steps taken (<= planned) */
    struct bench_ramp_step *steps;    /* borrowed array */
    const char *extra_json;           /* borrowed: members (",\"k\":v...") appended to
                                         the --json document, or NULL */
    const struct bench_event *events; /* borrowed; n_events (--events) */
    size_t n_events;
};

/*
 * Requests of version that failed from the start up to at_s (whole time
 * buckets, the one holding at_s included). 0 for an unknown version. Pure.
 */
uint64_t bench_report_errors_until(const struct bench_report *r, const char *version,
                                   double at_s);

/*
 * Set up an empty report for a run of planned_s seconds (+ grace_s) and
 * n_steps ramp steps; creates the "unknown" slot. Any thread, once.
 */
void bench_report_init(struct bench_report *r, double planned_s,
                       double grace_s, size_t n_steps);

/* Free everything the report owns. NULL-safe. */
void bench_report_dispose(struct bench_report *r);

/*
 * Slot of the version named by name[0..len), adding it if new (names longer
 * than BENCH_SCHED_NAME_MAX - 1 are cut). Returns BENCH_REPORT_UNKNOWN when
 * the table is full. Owner thread only.
 */
int bench_report_version(struct bench_report *r, const char *name,
                         size_t len);

/*
 * bench_report_response for a gRPC answer: a non-zero grpc_status (in the
 * head or the trailers) also makes it an error of kind grpc (unless the
 * HTTP status already made it an http_5xx one).
 */
void bench_report_grpc_response(struct bench_report *r, int slot, uint64_t t_ns,
                                uint32_t step, uint64_t latency_ns, unsigned status,
                                int grpc_status);

/*
 * Count one complete response with status on slot, finished t_ns after t0,
 * sent during ramp step step, latency_ns long. Owner thread only.
 */
void bench_report_response(struct bench_report *r, int slot, uint64_t t_ns,
                           uint32_t step, uint64_t latency_ns,
                           unsigned status);

/*
 * Open loop: a request left lag_ns after its due time although its
 * connection was free (weir-bench's own lateness). Owner thread only.
 */
void bench_report_send_lag(struct bench_report *r, uint64_t lag_ns);

/* Count n requests failed with kind (not 5xx: see response). Owner only. */
void bench_report_error(struct bench_report *r, int slot, uint64_t t_ns,
                        uint32_t step, enum bench_err kind, uint64_t n);

/*
 * Add everything in src to dst, matching versions by name. Both must have
 * been set up with the same run length and steps. Main thread, after the
 * workers have stopped.
 */
void bench_report_merge(struct bench_report *dst,
                        const struct bench_report *src);

/* Sum of finished requests / errors over all versions (live mirrors). */
uint64_t bench_report_live_requests(struct bench_report *r);
uint64_t bench_report_live_errors(struct bench_report *r);

/*
 * The verdict sentence(s), e.g. "v2 p99 is 1.80x v1's (4.10 ms vs 2.28 ms);
 * v2 errors 2.1 % vs 0.0 %", one line per compared version. The baseline is
 * the version with most requests, except the --ramp target, which is always
 * the one compared. Returns buf.
 */
const char *bench_report_verdict(const struct bench_report *r,
                                 const struct bench_run *run, char *buf,
                                 size_t len);

/* The human table (plus error breakdown, ramp steps and verdict) to out. */
void bench_report_print_table(const struct bench_report *r,
                              const struct bench_run *run, FILE *out);

/* The versions to show in output order (by name, natural order, "unknown"
 * last, those without requests left out) into out (room for
 * BENCH_REPORT_MAX_VERSIONS); returns how many. */
size_t bench_report_ordered(const struct bench_report *r,
                            const struct bench_version **out);

/* The --json document (one line and a newline) to out. */
void bench_report_print_json(const struct bench_report *r,
                             const struct bench_run *run, FILE *out);

/* Write the --plot SVG to path (bench_svg.c). Returns 0, or -1 with errno set. */
int bench_report_write_svg(const struct bench_report *r,
                           const struct bench_run *run, const char *path);

#endif
