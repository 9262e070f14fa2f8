/*
 * bench_load.h — weir-bench's load engine: the connection state machine
 * and the worker threads that run it (bench_load.c). The command line,
 * setup, the control socket, progress and the report are weir_bench.c's.
 *
 * main fills bench_load_shared, creates the workers (bench_load_worker_new),
 * runs bench_load_worker_main on a thread each, meets them at the two
 * barriers (connected, go: it sets t0_ns between them), and after joining
 * merges each worker's report.
 */
#ifndef WEIR_BENCH_LOAD_H
#define WEIR_BENCH_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bench_report.h"

#define BENCH_LOAD_MAX_GRACE_S 2.0    /* longest drain after the end of the run */
#define BENCH_LOAD_HEADER_NAME_MAX 64 /* --version-header is shorter than this */

/* What the workers share; set up by main before they start, read-only
 * after except the atomics. */
struct bench_load {
    double rate_per_s;          /* -R; 0: closed loop */
    uint32_t conns;             /* -c: connections in the run */
    uint32_t threads;           /* -t: workers */
    const char *version_header; /* borrowed (argv): --version-header */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char addr_text[80];
    char *request; /* owned: the one request every conn sends */
    size_t request_len;
    size_t vh_len;  /* strlen(version_header) */
    uint64_t t0_ns; /* run start, CLOCK_MONOTONIC ns */
    uint64_t grace_ns;
    uint64_t timeout_ns;
    _Atomic uint64_t end_off_ns; /* stop sending at t0 + this */
    _Atomic uint32_t step;       /* ramp step new requests are tagged with */
    _Atomic bool abort_now;      /* second signal: stop without draining */
    _Atomic uint32_t workers_done;
    pthread_barrier_t connected; /* workers have pre-connected */
    pthread_barrier_t go;        /* main has set t0 */
};

extern struct bench_load bench_load_shared;

struct bench_load_conn; /* one connection (bench_load.c) */

struct bench_load_worker {
    uint32_t magic;
    unsigned id;
    pthread_t thread;
    struct event_base *base;       /* owned */
    struct event *tick;            /* owned */
    struct bench_load_conn *conns; /* owned array */
    size_t n_conns;
    void *h2;                   /* owned by bench_h2.c (--h2: its connections; n_conns is 0) */
    struct bench_report report; /* written by this worker only */
    char *rbuf;                 /* owned: READ_BUF_SIZE */
    uint64_t now_ns;            /* clock read for the current callback */
    uint64_t end_off_ns;        /* cached bench_load_shared.end_off_ns */
    size_t in_flight;           /* conns in WRITING or READING */
    size_t pre_pending;         /* connects outstanding while pre-connecting */
    bool preconnect;            /* before t0: connect only, send nothing */
    bool draining;              /* past the end: finish what is in flight */
    bool stopped;
};

/* CLOCK_MONOTONIC in ns. Any thread. */
uint64_t bench_load_now_ns(void);

/*
 * A worker with n_conns connections (connection i is the run's number
 * i * threads + id), its own event_base and report (planned_s, n_steps as
 * bench_report_init takes them). Main thread, before the run.
 */
struct bench_load_worker *bench_load_worker_new(unsigned id, size_t n_conns,
                                                double planned_s, size_t n_steps);
/* Close and free everything of w (NULL: no-op). Main thread, after join. */
void bench_load_worker_free(struct bench_load_worker *w);

/* Thread body (arg: the worker): pre-connect, wait at both barriers, run
 * until the end (or abort_now), count what was cut off. */
void *bench_load_worker_main(void *arg);

#endif
