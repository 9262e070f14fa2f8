/*
 * release.h — the release guard on the main thread: every tick it sums each
 * judged version's outcome windows (per worker, metrics.c's vstats) and the
 * baseline's over the span guard_epoch() gives, asks guard_judge() for a
 * verdict, and acts on "fail" through the snapshot path (runtime_edit): with
 * `action: rollback` the version's share goes to the baseline in one
 * generation (its sticky users go with it; header rules stay).
 *
 * Which versions are judged: with `guard:` configured, every version whose
 * share is above 0 and below 100 % except the baseline (guard.baseline, or
 * the version with the largest share). A judgement starts when a version
 * becomes judged and again whenever its share or the baseline changes, so
 * each step of a canary is judged on its own evidence.
 *
 * Owns: the judgements (verdict, numbers, trips) per version name. Does not
 * own: the outcome windows (metrics.c), the statistics (guard.c), the split
 * (runtime.c). Main thread only.
 */
#ifndef WEIR_RELEASE_H
#define WEIR_RELEASE_H

#include <stdint.h>

struct json_buf;

/* Judge every judged version now (now_ms: util_now_ms()); act on "fail".
 * Call about every 250 ms. Main thread. */
void release_tick(uint64_t now_ms);

/*
 * The `guard` command's answer members after {"ok":true:
 * ,"guard":{"enabled":B,"baseline":"v1"|null,"versions":{"v2":{...}}}.
 * Main thread.
 */
void release_render_guard(struct json_buf *out);

/* The guard's Prometheus families (weir_guard_verdict, weir_guard_trips_total).
 * Main thread. */
void release_render_metrics(struct json_buf *out);

/* Forget every judgement (at exit). Main thread. */
void release_shutdown(void);

#endif
