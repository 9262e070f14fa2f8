/*
 * bench_h2.h — weir-bench's HTTP/2 engine (--h2): h2c with prior knowledge,
 * --streams N requests in flight per connection, on nghttp2 (bench_h2.c).
 *
 * It runs inside the workers of bench_load.h (their event_base, report,
 * clock, barriers and end-of-run rules), replacing their HTTP/1.1
 * connections: main calls bench_h2_setup once, then per worker
 * bench_h2_worker_new / bench_h2_worker_main / bench_h2_worker_free in
 * place of the bench_load_worker_* calls. Reports are the same, counted per
 * stream (a stream is a request).
 */
#ifndef WEIR_BENCH_H2_H
#define WEIR_BENCH_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_load.h"

#define BENCH_H2_MAX_STREAMS 1000

/*
 * The request every stream sends: GET target (POST of one gRPC message
 * with grpc: the echo service of weir-pod answers it), :authority
 * authority unless a Host header is among headers ("Name: value", borrowed
 * for the run), streams per connection. Main thread, before the workers.
 * Returns 0, or -1 with a reason in err.
 */
int bench_h2_setup(const char *target, const char *authority, const char *const *headers,
                   size_t n_headers, uint32_t streams, bool grpc, char *err, size_t errlen);

/* A worker with n_conns h2 connections (connection i is the run's number
 * i * threads + id), as bench_load_worker_new. Main thread. */
struct bench_load_worker *bench_h2_worker_new(unsigned id, size_t n_conns, double planned_s,
                                              size_t n_steps);
/* Free w (NULL: no-op). Main thread, after join. */
void bench_h2_worker_free(struct bench_load_worker *w);
/* Thread body, as bench_load_worker_main. */
void *bench_h2_worker_main(void *arg);
/* Free what bench_h2_setup made. Main thread, at the end. */
void bench_h2_dispose(void);

#endif
