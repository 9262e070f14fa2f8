/*
 * bench_gate.h — weir-bench as a CI gate: thresholds checked against the
 * finished run, in the manner of k6's thresholds. A broken threshold makes
 * weir-bench exit BENCH_GATE_EXIT, says so on stderr (one line each) and
 * shows in the --json document's "thresholds" array, so a pipeline can
 * stop on a bad version.
 *
 *   --max-error-rate V=R      V's errors / V's requests <= R; R "1%" or
 *                             "0.01"; V a version or "all" (the whole run)
 *   --max-p99 V=T             V's p99 latency <= T ("200ms", "0.2s", "200" = ms)
 *   --max-p99-ratio V/B=X     V's p99 <= X times B's p99 (e.g. v2/v1=1.5)
 *
 * A threshold naming a version that finished no request (or, for
 * latency, got no response) is broken: a typo must not pass a gate.
 * Pure functions over the merged report; main thread.
 */
#ifndef WEIR_BENCH_GATE_H
#define WEIR_BENCH_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bench_report.h"
#include "json.h"

#define BENCH_GATE_EXIT 3 /* exit status when a threshold is broken */
#define BENCH_GATE_MAX 32 /* thresholds per run */

enum bench_gate_kind {
    BENCH_GATE_ERROR_RATE = 0, /* --max-error-rate: a fraction 0..1 */
    BENCH_GATE_P99,            /* --max-p99: milliseconds */
    BENCH_GATE_P99_RATIO,      /* --max-p99-ratio: a factor */
};

struct bench_gate {
    enum bench_gate_kind kind;
    char version[BENCH_SCHED_NAME_MAX]; /* or "all" */
    char base[BENCH_SCHED_NAME_MAX];    /* P99_RATIO: the denominator version */
    double limit;                       /* fraction, ms or factor */
    char text[160];                     /* the argument as given */
    /* after bench_gate_eval: */
    bool evaluated;
    bool pass;
    double value;  /* measured, in the limit's unit (NAN if unknown) */
    char why[160]; /* what was measured, for people */
};

struct bench_gates {
    struct bench_gate v[BENCH_GATE_MAX];
    size_t n;
};

/* The option name of a kind ("max-error-rate", ...). */
const char *bench_gate_option(enum bench_gate_kind kind);

/*
 * Parse one option argument of kind into g (appended). Returns 0, or -1
 * with a human reason in err (usage error).
 */
int bench_gate_parse(struct bench_gates *g, enum bench_gate_kind kind, const char *arg,
                     char *err, size_t errlen);

/* Judge every threshold of g against the merged report r. Returns how
 * many are broken. */
size_t bench_gate_eval(struct bench_gates *g, const struct bench_report *r);

/* Append `,"thresholds":[...]` (each: option, threshold, version, [baseline,]
 * limit, value, pass) to out. Nothing when g has none. */
void bench_gate_json(const struct bench_gates *g, struct json_buf *out);

/* One line per broken threshold to f ("weir-bench: threshold broken: ..."). */
void bench_gate_print_broken(const struct bench_gates *g, FILE *f);

/* The human summary (one line per threshold, pass or FAIL) to f. */
void bench_gate_print_table(const struct bench_gates *g, FILE *f);

#endif
