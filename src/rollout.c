/*
 * rollout.c — see rollout.h. Pure: every input is an argument.
 */
#include "rollout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rollout_state_name(enum rollout_state s)
{
    switch (s) {
    case ROLLOUT_S_NONE:
        return "none";
    case ROLLOUT_S_RUNNING:
        return "running";
    case ROLLOUT_S_PAUSED:
        return "paused";
    case ROLLOUT_S_PROMOTED:
        return "promoted";
    case ROLLOUT_S_ABORTED:
        return "aborted";
    }
    return "none";
}

int rollout_plan_check(const struct rollout_plan *plan, char *err, size_t errlen)
{
    if (!plan->version[0]) {
        snprintf(err, errlen, "a rollout needs a version");
        return -1;
    }
    if (plan->n_steps == 0) {
        snprintf(err, errlen, "steps: at least one step is needed");
        return -1;
    }
    for (unsigned i = 0; i < plan->n_steps; i++) {
        char a[16], b[16];
        if (plan->steps_bp[i] == 0) {
            snprintf(err, errlen, "steps: a step of 0 %% sends the version nothing");
            return -1;
        }
        if (i && plan->steps_bp[i] <= plan->steps_bp[i - 1]) {
            util_format_bp(plan->steps_bp[i - 1], a, sizeof(a));
            util_format_bp(plan->steps_bp[i], b, sizeof(b));
            snprintf(err, errlen, "steps must increase: %s then %s", a, b);
            return -1;
        }
    }
    if (plan->steps_bp[plan->n_steps - 1] != ROLLOUT_TOTAL_BP) {
        char a[16];
        util_format_bp(plan->steps_bp[plan->n_steps - 1], a, sizeof(a));
        snprintf(err, errlen, "steps must end at 100 (the last is %s)", a);
        return -1;
    }
    if (plan->hold_ms == 0) {
        snprintf(err, errlen, "hold must be more than 0");
        return -1;
    }
    return 0;
}

int rollout_plan_parse(const char *version, const char *steps, const char *hold,
                       struct rollout_plan *plan, char *err, size_t errlen)
{
    struct rollout_plan p;
    memset(&p, 0, sizeof(p));
    if (!version || !version[0] || strlen(version) >= sizeof(p.version)) {
        snprintf(err, errlen, "a rollout needs a version name");
        return -1;
    }
    memcpy(p.version, version, strlen(version) + 1);
    if (!steps || !steps[0]) {
        snprintf(err, errlen, "steps= is required, e.g. steps=1,5,25,50,100");
        return -1;
    }
    const char *s = steps;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char word[16];
        if (len == 0 || len >= sizeof(word)) {
            snprintf(err, errlen, "steps: '%s' is not a list of percents", steps);
            return -1;
        }
        if (p.n_steps == ROLLOUT_STEPS_MAX) {
            snprintf(err, errlen, "steps: at most %d steps", ROLLOUT_STEPS_MAX);
            return -1;
        }
        memcpy(word, s, len);
        word[len] = '\0';
        if (util_parse_percent_bp(word, &p.steps_bp[p.n_steps]) < 0) {
            snprintf(err, errlen,
                     "steps: '%s' is not a percent from 0.01 to 100 with at most "
                     "two decimals",
                     word);
            return -1;
        }
        p.n_steps++;
        s += len;
        if (*s == ',') {
            s++;
            if (!*s) {
                snprintf(err, errlen, "steps: '%s' ends with a comma", steps);
                return -1;
            }
        }
    }
    if (!hold || !hold[0]) {
        snprintf(err, errlen, "hold= is required, e.g. hold=2m");
        return -1;
    }
    if (util_parse_duration_ms(hold, &p.hold_ms) < 0) {
        snprintf(err, errlen, "hold: '%s' is not a duration like 30s or 2m", hold);
        return -1;
    }
    if (rollout_plan_check(&p, err, errlen) < 0)
        return -1;
    *plan = p;
    return 0;
}

void rollout_split_for(const uint32_t *prior_bp, unsigned n, int v, uint32_t target_bp,
                       uint32_t *out_bp)
{
    if (target_bp > ROLLOUT_TOTAL_BP)
        target_bp = ROLLOUT_TOTAL_BP;
    uint64_t rest = ROLLOUT_TOTAL_BP - target_bp;
    uint64_t others = 0;
    unsigned n_others = 0;
    for (unsigned i = 0; i < n; i++)
        if ((int)i != v) {
            others += prior_bp[i];
            n_others++;
        }
    /* Largest remainder: floor shares first, then one bp each to the
     * largest remainders (ties to the earlier version), so the sum is
     * exact and the result does not depend on rounding luck. */
    uint64_t rem[ROLLOUT_VERSIONS_MAX];
    uint64_t given = 0;
    for (unsigned i = 0; i < n; i++) {
        rem[i] = 0;
        if ((int)i == v) {
            out_bp[i] = target_bp;
            continue;
        }
        uint64_t num = others ? rest * prior_bp[i] : rest;
        uint64_t den = others ? others : (n_others ? n_others : 1);
        out_bp[i] = (uint32_t)(num / den);
        rem[i] = num % den;
        given += out_bp[i];
    }
    if (n_others == 0) {
        if (v >= 0 && (unsigned)v < n)
            out_bp[v] = ROLLOUT_TOTAL_BP;
        return;
    }
    while (given < rest) {
        int best = -1;
        for (unsigned i = 0; i < n; i++) {
            if ((int)i == v || (others && prior_bp[i] == 0))
                continue;
            if (best < 0 || rem[i] > rem[best])
                best = (int)i;
        }
        if (best < 0)
            break;
        out_bp[best]++;
        rem[best] = 0;
        given++;
    }
}

int rollout_version_index(const struct rollout *r)
{
    for (unsigned i = 0; i < r->n_versions; i++)
        if (strcmp(r->names[i], r->plan.version) == 0)
            return (int)i;
    return -1;
}

uint32_t rollout_percent_bp(const struct rollout *r)
{
    if (r->state == ROLLOUT_S_NONE || r->step == 0)
        return 0;
    if (r->state == ROLLOUT_S_PROMOTED)
        return ROLLOUT_TOTAL_BP;
    if (r->state == ROLLOUT_S_ABORTED) {
        int v = rollout_version_index(r);
        return v >= 0 ? r->prior_bp[v] : 0;
    }
    return r->plan.steps_bp[r->step - 1];
}

static void set_reason(struct rollout *r, const char *reason)
{
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
}

static bool is_live(const struct rollout *r)
{
    return r->state == ROLLOUT_S_RUNNING || r->state == ROLLOUT_S_PAUSED;
}

int rollout_start(struct rollout *r, const struct rollout_plan *plan,
                  const char (*names)[ROLLOUT_NAME_MAX], const uint32_t *prior_bp,
                  unsigned n, int64_t now_ms, uint32_t *out_bp, char *err,
                  size_t errlen)
{
    if (is_live(r)) {
        snprintf(err, errlen, "a rollout of %s is %s; abort or promote it first",
                 r->plan.version, rollout_state_name(r->state));
        return -1;
    }
    if (rollout_plan_check(plan, err, errlen) < 0)
        return -1;
    if (n > ROLLOUT_VERSIONS_MAX) {
        snprintf(err, errlen, "too many versions");
        return -1;
    }
    int v = -1;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(names[i], plan->version) == 0)
            v = (int)i;
    if (v < 0) {
        snprintf(err, errlen, "no version named '%s'", plan->version);
        return -1;
    }
    if (n < 2) {
        snprintf(err, errlen, "a rollout needs another version to take traffic from");
        return -1;
    }
    struct rollout next;
    memset(&next, 0, sizeof(next));
    next.state = ROLLOUT_S_RUNNING;
    next.plan = *plan;
    next.step = 1;
    next.started_ms = now_ms;
    next.step_started_ms = now_ms;
    next.n_versions = n;
    for (unsigned i = 0; i < n; i++) {
        memcpy(next.names[i], names[i], ROLLOUT_NAME_MAX);
        next.names[i][ROLLOUT_NAME_MAX - 1] = '\0';
        next.prior_bp[i] = prior_bp[i];
    }
    *r = next;
    rollout_split_for(r->prior_bp, n, v, plan->steps_bp[0], out_bp);
    return 0;
}

bool rollout_tick(struct rollout *r, enum rollout_verdict verdict, int64_t now_ms,
                  uint32_t *out_bp)
{
    if (r->state != ROLLOUT_S_RUNNING || verdict != ROLLOUT_V_PASS)
        return false;
    if (now_ms - r->step_started_ms < (int64_t)r->plan.hold_ms)
        return false;
    if (r->step >= r->plan.n_steps)
        return false; /* the last step is 100 %: promoted on reaching it */
    r->step++;
    r->step_started_ms = now_ms;
    int v = rollout_version_index(r);
    rollout_split_for(r->prior_bp, r->n_versions, v, r->plan.steps_bp[r->step - 1], out_bp);
    if (r->step == r->plan.n_steps) {
        r->state = ROLLOUT_S_PROMOTED;
        set_reason(r, "every step passed");
    }
    return true;
}

bool rollout_trip(struct rollout *r, bool rollback, int baseline, const char *reason,
                  int64_t now_ms, uint32_t *out_bp)
{
    (void)now_ms;
    if (!is_live(r))
        return false;
    set_reason(r, reason);
    if (!rollback) {
        if (r->state == ROLLOUT_S_RUNNING) {
            r->state = ROLLOUT_S_PAUSED;
            r->pause_seq++;
        }
        return false;
    }
    r->state = ROLLOUT_S_ABORTED;
    int v = rollout_version_index(r);
    memcpy(out_bp, r->prior_bp, r->n_versions * sizeof(*out_bp));
    if (v >= 0 && baseline >= 0 && (unsigned)baseline < r->n_versions && baseline != v) {
        out_bp[baseline] += out_bp[v];
        out_bp[v] = 0;
    }
    return true;
}

int rollout_pause(struct rollout *r, const char *reason, char *err, size_t errlen)
{
    if (r->state != ROLLOUT_S_RUNNING) {
        snprintf(err, errlen, "no running rollout to pause (state: %s)",
                 rollout_state_name(r->state));
        return -1;
    }
    r->state = ROLLOUT_S_PAUSED;
    r->pause_seq++;
    set_reason(r, reason);
    return 0;
}

int rollout_resume(struct rollout *r, int64_t now_ms, char *err, size_t errlen)
{
    if (r->state != ROLLOUT_S_PAUSED) {
        snprintf(err, errlen, "no paused rollout to resume (state: %s)",
                 rollout_state_name(r->state));
        return -1;
    }
    r->state = ROLLOUT_S_RUNNING;
    r->pause_seq++;
    /* The hold starts again: evidence from before the pause is the
     * guard's, but the time on the step restarts. */
    r->step_started_ms = now_ms;
    set_reason(r, NULL);
    return 0;
}

int rollout_promote(struct rollout *r, int64_t now_ms, uint32_t *out_bp, char *err,
                    size_t errlen)
{
    if (!is_live(r)) {
        snprintf(err, errlen, "no rollout to promote (state: %s)",
                 rollout_state_name(r->state));
        return -1;
    }
    int v = rollout_version_index(r);
    rollout_split_for(r->prior_bp, r->n_versions, v, ROLLOUT_TOTAL_BP, out_bp);
    r->state = ROLLOUT_S_PROMOTED;
    r->step = r->plan.n_steps;
    r->step_started_ms = now_ms;
    set_reason(r, "promoted by hand");
    return 0;
}

int rollout_abort(struct rollout *r, const char *reason, uint32_t *out_bp, char *err,
                  size_t errlen)
{
    if (!is_live(r)) {
        snprintf(err, errlen, "no rollout to abort (state: %s)", rollout_state_name(r->state));
        return -1;
    }
    memcpy(out_bp, r->prior_bp, r->n_versions * sizeof(*out_bp));
    r->state = ROLLOUT_S_ABORTED;
    set_reason(r, reason ? reason : "aborted by hand");
    return 0;
}

/* ---- the join ------------------------------------------------------------ */

int rollout_id_cmp(const struct rollout *a, const struct rollout *b)
{
    bool an = a->state == ROLLOUT_S_NONE, bn = b->state == ROLLOUT_S_NONE;
    if (an || bn)
        return (int)bn - (int)an; /* NONE below every started rollout */
    if (a->started_ms != b->started_ms)
        return a->started_ms < b->started_ms ? -1 : 1;
    int c = strcmp(a->starter, b->starter);
    if (!c)
        c = strcmp(a->plan.version, b->plan.version);
    if (c)
        return c < 0 ? -1 : 1;
    if (a->plan.n_steps != b->plan.n_steps)
        return a->plan.n_steps < b->plan.n_steps ? -1 : 1;
    for (unsigned i = 0; i < a->plan.n_steps; i++)
        if (a->plan.steps_bp[i] != b->plan.steps_bp[i])
            return a->plan.steps_bp[i] < b->plan.steps_bp[i] ? -1 : 1;
    if (a->plan.hold_ms != b->plan.hold_ms)
        return a->plan.hold_ms < b->plan.hold_ms ? -1 : 1;
    /* The split before the start is the starter's, the same in every view
     * of one rollout; compared so that the order stays total. */
    if (a->n_versions != b->n_versions)
        return a->n_versions < b->n_versions ? -1 : 1;
    for (unsigned i = 0; i < a->n_versions; i++) {
        c = strcmp(a->names[i], b->names[i]);
        if (c)
            return c < 0 ? -1 : 1;
        if (a->prior_bp[i] != b->prior_bp[i])
            return a->prior_bp[i] < b->prior_bp[i] ? -1 : 1;
    }
    return 0;
}

/* The latch: 0 live, 1 promoted, 2 aborted (aborted wins: the safe end). */
static int end_rank(const struct rollout *r)
{
    return r->state == ROLLOUT_S_ABORTED ? 2 : r->state == ROLLOUT_S_PROMOTED ? 1
                                                                              : 0;
}

/*
 * Each part of the joined state is the maximum of a total order over the
 * views, and the joined state holds exactly that maximum, which is what
 * makes the whole a semilattice (associative, not only commutative):
 *   step, pause_seq, end rank     each the larger;
 *   step_started_ms               of the larger (step, step_started_ms);
 *   reason                        of the larger (end rank, pause_seq while
 *                                 live else 0, reason text).
 */
void rollout_join(const struct rollout *a, const struct rollout *b, struct rollout *out)
{
    int c = rollout_id_cmp(a, b);
    if (a->state == ROLLOUT_S_NONE && b->state == ROLLOUT_S_NONE) {
        memset(out, 0, sizeof(*out));
        return;
    }
    if (c != 0) {
        if (out != (c > 0 ? a : b))
            *out = c > 0 ? *a : *b;
        return;
    }
    struct rollout r = *a;
    r.step = a->step > b->step ? a->step : b->step;
    r.pause_seq = a->pause_seq > b->pause_seq ? a->pause_seq : b->pause_seq;
    if (a->step != b->step)
        r.step_started_ms = a->step > b->step ? a->step_started_ms : b->step_started_ms;
    else
        r.step_started_ms = a->step_started_ms > b->step_started_ms ? a->step_started_ms
                                                                    : b->step_started_ms;
    int ea = end_rank(a), eb = end_rank(b);
    int e = ea > eb ? ea : eb;
    uint32_t pa = ea ? 0 : a->pause_seq, pb = eb ? 0 : b->pause_seq;
    const struct rollout *why;
    if (ea != eb)
        why = ea > eb ? a : b;
    else if (pa != pb)
        why = pa > pb ? a : b;
    else
        why = strcmp(a->reason, b->reason) >= 0 ? a : b;
    memcpy(r.reason, why->reason, sizeof(r.reason));
    if (e == 2)
        r.state = ROLLOUT_S_ABORTED;
    else if (e == 1)
        r.state = ROLLOUT_S_PROMOTED;
    else
        r.state = (r.pause_seq & 1u) ? ROLLOUT_S_PAUSED : ROLLOUT_S_RUNNING;
    *out = r;
}

/* ---- the state file's line ----------------------------------------------- */

static void put(char *buf, size_t buflen, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t buflen, size_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*o < buflen ? buf + *o : NULL, *o < buflen ? buflen - *o : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o += (size_t)n;
}

size_t rollout_encode(const struct rollout *r, char *buf, size_t buflen)
{
    size_t o = 0;
    if (buflen)
        buf[0] = '\0';
    put(buf, buflen, &o, "state=%s;version=%s;step=%u;steps=", rollout_state_name(r->state),
        r->plan.version, r->step);
    for (unsigned i = 0; i < r->plan.n_steps; i++)
        put(buf, buflen, &o, "%s%" PRIu32, i ? "," : "", r->plan.steps_bp[i]);
    put(buf, buflen, &o, ";hold=%" PRIu32 ";started=%" PRId64 ";step_started=%" PRId64 ";pause_seq=%" PRIu32 ";versions=", r->plan.hold_ms, r->started_ms,
        r->step_started_ms, r->pause_seq);
    for (unsigned i = 0; i < r->n_versions; i++)
        put(buf, buflen, &o, "%s%s:%" PRIu32, i ? "," : "", r->names[i], r->prior_bp[i]);
    if (r->starter[0])
        put(buf, buflen, &o, ";starter=%s", r->starter);
    put(buf, buflen, &o, ";reason=%s", r->reason);
    return o;
}

/* The value of "key=" at *p up to ';' (copied into out); advances *p. */
static int field(const char **p, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    if (strncmp(*p, key, kl) != 0 || (*p)[kl] != '=')
        return -1;
    const char *v = *p + kl + 1;
    const char *end = strchr(v, ';');
    if (!end)
        return -1;
    size_t n = (size_t)(end - v);
    if (n >= outlen)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    *p = end + 1;
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

int rollout_decode(const char *text, struct rollout *out)
{
    struct rollout r;
    memset(&r, 0, sizeof(r));
    const char *p = text;
    char v[1024];
    int64_t n;
    if (field(&p, "state", v, sizeof(v)) < 0)
        return -1;
    bool known = false;
    for (int s = ROLLOUT_S_NONE; s <= ROLLOUT_S_ABORTED; s++)
        if (strcmp(v, rollout_state_name((enum rollout_state)s)) == 0) {
            r.state = (enum rollout_state)s;
            known = true;
        }
    if (!known || field(&p, "version", r.plan.version, sizeof(r.plan.version)) < 0)
        return -1;
    if (field(&p, "step", v, sizeof(v)) < 0 || parse_i64(v, &n) < 0 || n < 0 ||
        n > ROLLOUT_STEPS_MAX)
        return -1;
    r.step = (unsigned)n;
    if (field(&p, "steps", v, sizeof(v)) < 0)
        return -1;
    for (char *tok = strtok(v, ","); tok; tok = strtok(NULL, ",")) {
        if (r.plan.n_steps == ROLLOUT_STEPS_MAX || parse_i64(tok, &n) < 0 || n < 0 ||
            n > ROLLOUT_TOTAL_BP)
            return -1;
        r.plan.steps_bp[r.plan.n_steps++] = (uint32_t)n;
    }
    if (field(&p, "hold", v, sizeof(v)) < 0 || parse_i64(v, &n) < 0 || n < 0 ||
        n > UINT32_MAX)
        return -1;
    r.plan.hold_ms = (uint32_t)n;
    if (field(&p, "started", v, sizeof(v)) < 0 || parse_i64(v, &r.started_ms) < 0 ||
        field(&p, "step_started", v, sizeof(v)) < 0 || parse_i64(v, &r.step_started_ms) < 0)
        return -1;
    if (field(&p, "pause_seq", v, sizeof(v)) < 0 || parse_i64(v, &n) < 0 || n < 0 ||
        n > UINT32_MAX)
        return -1;
    r.pause_seq = (uint32_t)n;
    if (field(&p, "versions", v, sizeof(v)) < 0)
        return -1;
    for (char *tok = strtok(v, ","); tok; tok = strtok(NULL, ",")) {
        char *colon = strrchr(tok, ':');
        if (!colon || r.n_versions == ROLLOUT_VERSIONS_MAX || colon == tok ||
            (size_t)(colon - tok) >= ROLLOUT_NAME_MAX || parse_i64(colon + 1, &n) < 0 ||
            n < 0 || n > ROLLOUT_TOTAL_BP)
            return -1;
        memcpy(r.names[r.n_versions], tok, (size_t)(colon - tok));
        r.prior_bp[r.n_versions++] = (uint32_t)n;
    }
    if (strncmp(p, "starter=", 8) == 0 &&
        field(&p, "starter", r.starter, sizeof(r.starter)) < 0)
        return -1;
    if (strncmp(p, "reason=", 7) != 0)
        return -1;
    snprintf(r.reason, sizeof(r.reason), "%s", p + 7);
    if (r.state != ROLLOUT_S_NONE &&
        (r.step == 0 || r.step > r.plan.n_steps || r.n_versions < 2))
        return -1;
    *out = r;
    return 0;
}
