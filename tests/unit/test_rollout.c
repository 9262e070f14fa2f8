/*
 * test_rollout.c — the rollout state machine (src/rollout.c): plan
 * validation with its error sentences, the step walk driven by verdicts and
 * holds, pause/resume/promote/abort, a guard trip, and the exact
 * proportional split.
 */
#include <string.h>

#include "rollout.h"
#include "tap.h"

static const char names3[3][ROLLOUT_NAME_MAX] = {"v1", "v2", "v3"};

static unsigned sum(const uint32_t *bp, unsigned n)
{
    unsigned s = 0;
    for (unsigned i = 0; i < n; i++)
        s += bp[i];
    return s;
}

static void test_plan(void)
{
    struct rollout_plan p;
    char err[256];
    ok(rollout_plan_parse("v2", "1,5,25,50,100", "2m", &p, err, sizeof(err)) == 0,
       "a valid plan parses");
    is_int(p.n_steps, 5, "five steps");
    is_int(p.steps_bp[0], 100, "1 %% is 100 bp");
    is_int(p.steps_bp[4], 10000, "the last step is 100 %%");
    is_int(p.hold_ms, 120000, "hold 2m");
    ok(rollout_plan_parse("v2", "0.5,12.25,100", "10s", &p, err, sizeof(err)) == 0,
       "decimal steps parse");
    is_int(p.steps_bp[1], 1225, "12.25 %% is 1225 bp");

    struct {
        const char *steps, *hold, *want;
    } bad[] = {
        {"5,1,100", "2m", "steps must increase: 5 then 1"},
        {"1,5,50", "2m", "steps must end at 100 (the last is 50)"},
        {"0,50,100", "2m", "a step of 0 %"},
        {"1,,100", "2m", "not a list of percents"},
        {"1,5,", "2m", "ends with a comma"},
        {"1,abc,100", "2m", "'abc' is not a percent"},
        {"1,5.123,100", "2m", "'5.123' is not a percent"},
        {"1,150", "2m", "'150' is not a percent"},
        {"1,100", "0s", "hold must be more than 0"},
        {"1,100", "soon", "hold: 'soon' is not a duration"},
        {"", "2m", "steps= is required"},
        {"1,100", "", "hold= is required"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rollout_plan q;
        memset(&q, 0x5a, sizeof(q));
        struct rollout_plan before = q;
        err[0] = '\0';
        int r = rollout_plan_parse("v2", bad[i].steps, bad[i].hold, &q, err, sizeof(err));
        ok(r < 0 && strstr(err, bad[i].want) && memcmp(&q, &before, sizeof(q)) == 0,
           "steps=%s hold=%s refused: \"%s\" (got \"%s\"), plan untouched", bad[i].steps,
           bad[i].hold, bad[i].want, err);
    }
}

static void test_split(void)
{
    uint32_t prior[3] = {9000, 0, 1000}, out[3];
    rollout_split_for(prior, 3, 1, 500, out);
    is_int(out[1], 500, "the rolled-out version gets its step");
    is_int(out[0], 8550, "v1 keeps 9/10 of the rest");
    is_int(out[2], 950, "v3 keeps 1/10 of the rest");
    uint32_t thirds[3] = {3333, 0, 3334};
    rollout_split_for(thirds, 3, 1, 1, out);
    is_int(sum(out, 3), 10000, "largest remainder: the sum is exact");
    uint32_t zero[3] = {0, 10000, 0};
    rollout_split_for(zero, 3, 1, 5000, out);
    ok(out[1] == 5000 && out[0] + out[2] == 5000 && out[0] == 2500,
       "when every other version is at 0 the rest is shared equally");
    rollout_split_for(prior, 3, 1, 10000, out);
    ok(out[1] == 10000 && out[0] == 0 && out[2] == 0, "100 %%: the others get 0");
}

static void test_walk(void)
{
    struct rollout r;
    memset(&r, 0, sizeof(r));
    struct rollout_plan p;
    char err[256];
    uint32_t prior[3] = {10000, 0, 0}, out[3];
    if (rollout_plan_parse("v2", "1,5,100", "10s", &p, err, sizeof(err)) < 0)
        return;
    ok(rollout_start(&r, &p, names3, prior, 3, 1000, out, err, sizeof(err)) == 0,
       "start");
    ok(r.state == ROLLOUT_S_RUNNING && r.step == 1 && out[1] == 100 && out[0] == 9900,
       "step 1 applies at once: v2=1");
    ok(rollout_start(&r, &p, names3, prior, 3, 1000, out, err, sizeof(err)) < 0 &&
           strstr(err, "is running"),
       "a second start is refused while one runs");
    ok(!rollout_tick(&r, ROLLOUT_V_PASS, 5000, out), "pass before the hold: no step");
    ok(!rollout_tick(&r, ROLLOUT_V_HOLD, 20000, out), "hold after the hold: no step");
    ok(rollout_tick(&r, ROLLOUT_V_PASS, 11000, out) && r.step == 2 && out[1] == 500,
       "pass after the hold: step 2 (v2=5)");
    ok(!rollout_tick(&r, ROLLOUT_V_PASS, 12000, out), "the hold restarts on the new step");
    ok(rollout_pause(&r, "by hand", err, sizeof(err)) == 0 && r.state == ROLLOUT_S_PAUSED,
       "pause");
    ok(!rollout_tick(&r, ROLLOUT_V_PASS, 60000, out), "a paused rollout does not advance");
    ok(rollout_pause(&r, NULL, err, sizeof(err)) < 0, "pause twice is refused");
    uint32_t seq = r.pause_seq;
    ok(rollout_resume(&r, 60000, err, sizeof(err)) == 0 && r.pause_seq == seq + 1,
       "resume counts in pause_seq");
    ok(!rollout_tick(&r, ROLLOUT_V_PASS, 65000, out), "after resume the hold runs again");
    ok(rollout_tick(&r, ROLLOUT_V_PASS, 70000, out) && r.state == ROLLOUT_S_PROMOTED &&
           out[1] == 10000,
       "the last step is 100 %%: promoted");
    ok(rollout_abort(&r, NULL, out, err, sizeof(err)) < 0 && strstr(err, "promoted"),
       "abort after promotion is refused");
    is_int(rollout_percent_bp(&r), 10000, "a promoted rollout reports 100 %%");

    /* A new start after the end; then a guard trip (rollback). */
    ok(rollout_start(&r, &p, names3, prior, 3, 80000, out, err, sizeof(err)) == 0,
       "a new rollout may start after the last one ended");
    ok(rollout_trip(&r, true, 0, "v2 error rate 5.1% vs 0.0%", 81000, out) &&
           r.state == ROLLOUT_S_ABORTED && out[0] == 10000 && out[1] == 0,
       "a trip with rollback aborts and gives v2's share to the baseline");
    ok(strstr(r.reason, "5.1%") != NULL, "the abort keeps the guard's numbers as its reason");
    ok(!rollout_tick(&r, ROLLOUT_V_PASS, 999999, out), "an aborted rollout never resumes");
    ok(rollout_resume(&r, 999999, err, sizeof(err)) < 0, "resume after abort is refused");

    /* Trip with action pause: the split stays. */
    ok(rollout_start(&r, &p, names3, prior, 3, 100000, out, err, sizeof(err)) == 0,
       "start again");
    ok(!rollout_trip(&r, false, 0, "latency", 100500, out) && r.state == ROLLOUT_S_PAUSED,
       "a trip with action pause pauses and keeps the split");
    ok(rollout_promote(&r, 101000, out, err, sizeof(err)) == 0 && out[1] == 10000 &&
           r.state == ROLLOUT_S_PROMOTED,
       "promote from paused: 100 %% now");

    /* Abort by hand restores the prior split exactly. */
    uint32_t prior2[3] = {7000, 0, 3000};
    ok(rollout_start(&r, &p, names3, prior2, 3, 200000, out, err, sizeof(err)) == 0 &&
           out[0] == 6930 && out[2] == 2970 && out[1] == 100,
       "start from v1=70,v3=30 keeps their 7:3");
    ok(rollout_abort(&r, NULL, out, err, sizeof(err)) == 0 && out[0] == 7000 &&
           out[2] == 3000 && out[1] == 0 && r.state == ROLLOUT_S_ABORTED,
       "abort: back to the split before the start");

    struct rollout fresh;
    memset(&fresh, 0, sizeof(fresh));
    strcpy(p.version, "v9");
    ok(rollout_start(&fresh, &p, names3, prior, 3, 0, out, err, sizeof(err)) < 0 &&
           strstr(err, "no version named 'v9'") && fresh.state == ROLLOUT_S_NONE,
       "a rollout of an unknown version is refused, nothing changed");
    ok(rollout_promote(&fresh, 0, out, err, sizeof(err)) < 0 && strstr(err, "no rollout"),
       "promote with no rollout is refused");
    is_str(rollout_state_name(ROLLOUT_S_PAUSED), "paused", "state names");
}

static void test_codec(void)
{
    struct rollout r, back;
    memset(&r, 0, sizeof(r));
    struct rollout_plan p;
    char err[256], line[2048];
    uint32_t prior[3] = {9000, 0, 1000}, out[3];
    if (rollout_plan_parse("v2", "1,5,25,50,100", "2m", &p, err, sizeof(err)) < 0 ||
        rollout_start(&r, &p, names3, prior, 3, 1764340207123, out, err, sizeof(err)) < 0)
        return;
    (void)rollout_tick(&r, ROLLOUT_V_PASS, 1764340207123 + 200000, out);
    (void)rollout_trip(&r, true, 0, "v2: error rate 5.1% vs 0.0%; p99 3 ms", 0, out);
    size_t n = rollout_encode(&r, line, sizeof(line));
    ok(n > 0 && n < sizeof(line), "encodes: %s", line);
    ok(rollout_decode(line, &back) == 0, "decodes its own line");
    ok(back.state == ROLLOUT_S_ABORTED && back.step == 2 && back.plan.n_steps == 5 &&
           back.plan.steps_bp[4] == 10000 && back.plan.hold_ms == 120000 &&
           back.n_versions == 3 && back.prior_bp[2] == 1000 && strcmp(back.names[2], "v3") == 0 &&
           back.started_ms == r.started_ms && back.step_started_ms == r.step_started_ms &&
           strcmp(back.reason, r.reason) == 0 && strcmp(back.plan.version, "v2") == 0,
       "the round trip keeps every field, a reason with ';' too");
    const char *bad[] = {"", "state=flying;version=v2;", "state=running;version=v2;step=9;steps=100,10000;"
                                                         "hold=1;started=0;step_started=0;pause_seq=0;versions=v1:10000,v2:0;reason=",
                         "state=running;version=v2;step=1;steps=100,10000;hold=1;started=0;"
                         "step_started=0;pause_seq=0;versions=v1:10000,v2:0;"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&back, 0x5a, sizeof(back));
        ok(rollout_decode(bad[i], &back) < 0 && back.step == 0x5a5a5a5a,
           "malformed line %zu refused, nothing changed", i);
    }
}

int main(void)
{
    test_codec();
    test_plan();
    test_split();
    test_walk();
    return tap_done();
}
