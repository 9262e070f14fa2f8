/*
 * bench_sched.h — the pure maths of a weir-bench run: when each open-loop
 * request is meant to be sent, and what split each --ramp step sets.
 *
 * Open loop (-R RATE over C connections): the run's requests form one
 * evenly spaced sequence, global slot j at t0 + j / RATE. Connection i owns
 * slots i, i + C, i + 2C, ... so each connection sends at RATE / C and the
 * connections are phase-shifted evenly. Times are computed from the slot
 * number, never accumulated, so they cannot drift.
 *
 * Ramp: a step sets the target version to P and gives the rest (100 - P)
 * to the other versions in proportion to their current split (evenly if
 * they are all 0), in basis points (0.01 %), rounded by largest remainder so
 * the split still sums to exactly 100.00.
 *
 * Also the small text formats the control socket speaks: the status reply's
 * "split"/"versions" objects, {"ok":...} replies, `split a=.. b=..` lines.
 *
 * Owns nothing; every function is pure and thread-safe.
 */
#ifndef WEIR_BENCH_SCHED_H
#define WEIR_BENCH_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_SCHED_MAX_VERSIONS 32 /* versions a split may name */
#define BENCH_SCHED_NAME_MAX 64     /* bytes per version name, with the NUL */
#define BENCH_SCHED_MAX_STEPS 100   /* percents in one --ramp */

/*
 * Intended send time of connection conn's k-th request (k from 0), in ns
 * after t0, for a total rate of rate_per_s spread over conns connections.
 */
uint64_t bench_sched_intended_ns(double rate_per_s, uint32_t conns,
                                 uint32_t conn, uint64_t k);

/* A split: version names in order with their percent in basis points. */
struct bench_split {
    size_t n;
    char name[BENCH_SCHED_MAX_VERSIONS][BENCH_SCHED_NAME_MAX];
    uint32_t bp[BENCH_SCHED_MAX_VERSIONS]; /* 100 % = 10000 */
};

/* Index of name in s, or -1. */
int bench_sched_split_find(const struct bench_split *s, const char *name);

/*
 * Parse a --ramp argument "v2=10,25,50,100" (percents with up to two
 * decimals, each 0..100). Writes the version into target (size target_len),
 * the steps into steps_bp (up to max_steps) and their number into *n_steps.
 * Returns 0, or -1 with *err set to a human reason.
 */
int bench_sched_parse_ramp(const char *arg, char *target, size_t target_len,
                           uint32_t *steps_bp, size_t max_steps,
                           size_t *n_steps, const char **err);

/*
 * Compute the split of one ramp step: target gets target_bp, every other
 * version of cur shares 10000 - target_bp in proportion to its current
 * value (evenly if all are 0; largest remainder, ties to the earlier
 * version). A target missing from cur is appended. Returns 0, or -1 with
 * *err set (no other version to give the rest to, target_bp > 10000).
 */
int bench_sched_ramp_split(const struct bench_split *cur, const char *target,
                           uint32_t target_bp, struct bench_split *out,
                           const char **err);

/*
 * Parse one control-socket reply line. If it is {"ok":true,...} return 0 and,
 * when split is non-NULL, fill it from the reply's "split" object plus, at
 * 0 %, every version named in its "versions" object that "split" leaves out;
 * *generation gets "generation" when present (else stays unchanged).
 * If it is {"ok":false,"error":"..."} or malformed return -1 with the
 * reason copied into errbuf.
 */
int bench_sched_parse_reply(const char *json, size_t len,
                            struct bench_split *split, uint64_t *generation,
                            char *errbuf, size_t errlen);

/*
 * Write the control command that sets s: "split v1=75 v2=25" (versions at
 * 0 are left out, which the protocol reads as 0). Returns the length, or 0
 * if buf is too small.
 */
size_t bench_sched_format_split_cmd(const struct bench_split *s, char *buf,
                                    size_t len);

/* Write s for people: "v1=75 v2=25" (zeros included). Returns buf. */
const char *bench_sched_format_split(const struct bench_split *s, char *buf,
                                     size_t len);

#endif
