/*
 * test_fleet.c — the fleet's pure parts: rollout_join() is a join
 * (commutative, associative, idempotent over every combination of a set of
 * views, an aborted rollout never made live again, a newer id wins), the
 * message codec (round trip, every refusal of a malformed body), the
 * HMAC-SHA256 (RFC 4231 vector, constant-time check's answers) and the
 * replay check (boot + sequence + clock window).
 */
#include <stdlib.h>
#include <string.h>

#include "fleet_msg.h"
#include "json.h"
#include "rollout.h"
#include "tap.h"

/* ---- the join ------------------------------------------------------------- */

static void base_rollout(struct rollout *r, int64_t started, const char *starter)
{
    memset(r, 0, sizeof(*r));
    r->state = ROLLOUT_S_RUNNING;
    snprintf(r->plan.version, sizeof(r->plan.version), "v2");
    uint32_t steps[] = {100, 500, 2500, 5000, 10000};
    memcpy(r->plan.steps_bp, steps, sizeof(steps));
    r->plan.n_steps = 5;
    r->plan.hold_ms = 1000;
    r->step = 1;
    r->started_ms = started;
    r->step_started_ms = started;
    r->n_versions = 2;
    snprintf(r->names[0], ROLLOUT_NAME_MAX, "v1");
    snprintf(r->names[1], ROLLOUT_NAME_MAX, "v2");
    r->prior_bp[0] = 10000;
    snprintf(r->starter, sizeof(r->starter), "%s", starter);
}

#define NVIEWS 40
static struct rollout views[NVIEWS];

static void make_views(void)
{
    static const char *reasons[] = {"", "paused by hand", "guard: errors", "aborted by hand"};
    srand(7);
    for (int i = 0; i < NVIEWS; i++) {
        struct rollout *r = &views[i];
        if (i == 0) {
            memset(r, 0, sizeof(*r)); /* NONE */
            continue;
        }
        /* Mostly one id, so the per-id rules are exercised; some others. */
        int id = i % 5 == 0 ? 1 + rand() % 2 : 0;
        base_rollout(r, 1000 + id * 10, id == 2 ? "b" : "a");
        r->step = 1 + (unsigned)(rand() % 5);
        r->pause_seq = (uint32_t)(rand() % 5);
        r->step_started_ms = 1000 + rand() % 50;
        int end = rand() % 6;
        if (end == 0)
            r->state = ROLLOUT_S_ABORTED;
        else if (end == 1)
            r->state = ROLLOUT_S_PROMOTED;
        else
            r->state = (r->pause_seq & 1u) ? ROLLOUT_S_PAUSED : ROLLOUT_S_RUNNING;
        snprintf(r->reason, sizeof(r->reason), "%s", reasons[rand() % 4]);
    }
}

static bool same(const struct rollout *a, const struct rollout *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

static void test_join(void)
{
    make_views();
    struct rollout ab, ba, x, y, abc1, abc2;
    int comm = 0, idem = 0, assoc = 0, abort_kept = 0, upper = 0, n2 = 0, n3 = 0;
    for (int i = 0; i < NVIEWS; i++) {
        rollout_join(&views[i], &views[i], &x);
        idem += same(&x, &views[i]) || (views[i].state == ROLLOUT_S_NONE && x.state == 0);
        for (int j = 0; j < NVIEWS; j++) {
            n2++;
            rollout_join(&views[i], &views[j], &ab);
            rollout_join(&views[j], &views[i], &ba);
            comm += same(&ab, &ba);
            /* An upper bound: joining either side again changes nothing. */
            rollout_join(&ab, &views[i], &x);
            rollout_join(&ab, &views[j], &y);
            upper += same(&x, &ab) && same(&y, &ab);
            if (views[i].state == ROLLOUT_S_ABORTED &&
                rollout_id_cmp(&views[i], &views[j]) >= 0)
                abort_kept += ab.state == ROLLOUT_S_ABORTED;
            else if (views[i].state == ROLLOUT_S_ABORTED)
                abort_kept++; /* a newer id: counted by its own check below */
            for (int k = 0; k < NVIEWS; k++) {
                n3++;
                rollout_join(&ab, &views[k], &abc1);
                rollout_join(&views[j], &views[k], &x);
                rollout_join(&views[i], &x, &abc2);
                assoc += same(&abc1, &abc2);
            }
        }
    }
    is_int(idem, NVIEWS, "join(a, a) = a for every view");
    is_int(comm, n2, "join(a, b) = join(b, a) for all %d pairs", n2);
    is_int(upper, n2, "join(a, b) is an upper bound of a and b");
    is_int(assoc, n3, "join(join(a, b), c) = join(a, join(b, c)) for all %d triples", n3);
    int aborted = 0;
    for (int i = 0; i < NVIEWS; i++)
        aborted += views[i].state == ROLLOUT_S_ABORTED;
    ok(aborted > 2, "the views include aborted ones (%d)", aborted);
    is_int(abort_kept, aborted * NVIEWS, "an aborted rollout stays aborted whatever it is "
                                         "joined with (but a newer rollout)");

    /* The rules, one by one. */
    struct rollout a, b, j;
    base_rollout(&a, 1000, "a");
    b = a;
    b.step = 3;
    b.step_started_ms = 1500;
    rollout_join(&a, &b, &j);
    ok(j.step == 3 && j.step_started_ms == 1500 && j.state == ROLLOUT_S_RUNNING,
       "the larger step wins, with its start");
    b = a;
    b.state = ROLLOUT_S_ABORTED;
    snprintf(b.reason, sizeof(b.reason), "guard: v2 errors");
    a.step = 4;
    a.pause_seq = 2;
    rollout_join(&a, &b, &j);
    ok(j.state == ROLLOUT_S_ABORTED && j.step == 4 && strcmp(j.reason, "guard: v2 errors") == 0,
       "an abort latches over a live view further along, and keeps its reason");
    struct rollout p = a;
    p.state = ROLLOUT_S_PROMOTED;
    rollout_join(&p, &b, &j);
    ok(j.state == ROLLOUT_S_ABORTED, "abort wins over promote (the safe end)");
    b = a;
    b.pause_seq = 3;
    b.state = ROLLOUT_S_PAUSED;
    snprintf(b.reason, sizeof(b.reason), "paused by hand");
    rollout_join(&a, &b, &j);
    ok(j.state == ROLLOUT_S_PAUSED && strcmp(j.reason, "paused by hand") == 0,
       "a later pause (pause_seq 3 over 2) pauses");
    b.pause_seq = 4;
    b.state = ROLLOUT_S_RUNNING;
    b.reason[0] = '\0';
    rollout_join(&j, &b, &j);
    ok(j.state == ROLLOUT_S_RUNNING, "a later resume (pause_seq 4) runs again");

    struct rollout old, young;
    base_rollout(&old, 1000, "a");
    old.state = ROLLOUT_S_ABORTED;
    base_rollout(&young, 2000, "b");
    rollout_join(&old, &young, &j);
    ok(j.started_ms == 2000 && j.state == ROLLOUT_S_RUNNING && j.step == 1,
       "a newer rollout (a later start) replaces an aborted one whole");
    rollout_join(&young, &old, &j);
    ok(j.started_ms == 2000, "... in either order");
    young.started_ms = 1000;
    ok(rollout_id_cmp(&old, &young) < 0, "same start: the starter's name orders them");
    struct rollout none;
    memset(&none, 0, sizeof(none));
    rollout_join(&none, &old, &j);
    ok(same(&j, &old), "no rollout is below every rollout");

    /* The starter survives the state file. */
    char line[2048];
    rollout_encode(&young, line, sizeof(line));
    struct rollout back;
    ok(rollout_decode(line, &back) == 0 && strcmp(back.starter, "b") == 0,
       "the starter is kept in the state line: %s", line);
    const char *older = "state=running;version=v2;step=1;steps=100,10000;hold=1000;started=5;"
                        "step_started=5;pause_seq=0;versions=v1:10000,v2:0;reason=";
    ok(rollout_decode(older, &back) == 0 && back.starter[0] == '\0',
       "a line without starter= (an older weir's) still decodes");
}

/* ---- the codec -------------------------------------------------------------- */

static void sample_msg(struct fleet_msg *m)
{
    fleet_msg_init(m);
    snprintf(m->replica, sizeof(m->replica), "pod-a:9901");
    snprintf(m->boot, sizeof(m->boot), "0123456789abcdef");
    m->seq = 42;
    m->time_ms = 1764000000123;
    m->generation = 7;
    base_rollout(&m->rollout, 1764000000000, "pod-a:9901");
    m->rollout.step = 2;
    struct fleet_msg_counts *c = fleet_msg_add_counts(m, "v2", 1000);
    struct outcome_sum s;
    outcome_sum_clear(&s);
    s.requests = 10;
    s.errors = 3;
    s.latency[outcome_bucket(1500)] = 7;
    s.latency[outcome_bucket(250000)] = 3;
    ok(c && fleet_msg_counts_add_slot(c, 1764000000000, &s) == 0, "a slot is added");
    s.latency[outcome_bucket(1500)] += 1;
    s.requests = 11;
    ok(fleet_msg_counts_add_slot(c, 1764000001000, &s) == 0, "a second slot is added");
}

static int decode_str(const char *body, struct fleet_msg *m, char *why, size_t whylen)
{
    return fleet_msg_decode(body, strlen(body), m, why, whylen);
}

static void test_codec(void)
{
    struct fleet_msg m, back;
    sample_msg(&m);
    struct json_buf b;
    json_buf_init(&b);
    fleet_msg_encode(&m, &b);
    char why[256] = "";
    ok(fleet_msg_decode(b.p, b.len, &back, why, sizeof(why)) == 0, "its own encoding decodes (%s)",
       why);
    ok(strcmp(back.replica, "pod-a:9901") == 0 && strcmp(back.boot, m.boot) == 0 &&
           back.seq == 42 && back.time_ms == m.time_ms && back.generation == 7,
       "replica, boot, seq, time and generation round-trip");
    ok(rollout_id_cmp(&back.rollout, &m.rollout) == 0 && back.rollout.step == 2 &&
           strcmp(back.rollout.starter, "pod-a:9901") == 0,
       "the rollout round-trips, with its id");
    ok(back.n_counts == 1 && back.counts[0].n_slots == 2 && back.counts[0].slot_ms == 1000 &&
           memcmp(&back.counts[0].slots[1].sum, &m.counts[0].slots[1].sum,
                  sizeof(struct outcome_sum)) == 0 &&
           back.counts[0].slots[0].start_ms == 1764000000000,
       "the counts round-trip exactly, slot by slot");
    fleet_msg_dispose(&back);

    /* Each field broken in turn: refused, nothing kept. */
    struct {
        const char *from, *to, *what;
    } breaks[] = {
        {"\"fleet\":1", "\"fleet\":2", "another wire version"},
        {"\"seq\":42", "\"seq\":-1", "a negative seq"},
        {"\"seq\":42", "\"seq\":4.5", "a fractional seq"},
        {"\"seq\":42", "\"seq\":\"42\"", "a seq as a string"},
        {"\"boot\":\"0123456789abcdef\"", "\"boot\":\"0123\"", "a short boot id"},
        {"\"replica\":\"pod-a:9901\"", "\"replica\":\"a;b\"", "a replica name with ';'"},
        {"\"replica\":\"pod-a:9901\"", "\"replica\":\"\"", "an empty replica name"},
        {"state=running", "state=flying", "an unknown rollout state"},
        {"steps=100,500,2500,5000,10000", "steps=500,100,10000", "a rollout plan that does not increase"},
        {"[[1764000000000,10,3,", "[[1764000000000,10,11,", "more errors than requests"},
        {"[[1764000000000,10,3,[", "[[1764000000000,9,3,[", "buckets that do not add up"},
        {"\"slot_ms\":1000", "\"slot_ms\":0", "a zero slot width"},
        {"\"generation\":7", "\"generation\":null", "a null generation"},
        {"pause_seq=0", "pause_seq=1", "a running rollout with an odd pause_seq"},
    };
    for (size_t i = 0; i < sizeof(breaks) / sizeof(breaks[0]); i++) {
        char *p = strstr(b.p, breaks[i].from);
        ok(p != NULL, "the encoding holds %s", breaks[i].from);
        if (!p)
            continue;
        struct json_buf t;
        json_buf_init(&t);
        json_buf_add(&t, b.p, (size_t)(p - b.p));
        json_buf_puts(&t, breaks[i].to);
        json_buf_puts(&t, p + strlen(breaks[i].from));
        why[0] = '\0';
        back.seq = 99;
        ok(fleet_msg_decode(t.p, t.len, &back, why, sizeof(why)) < 0 && back.seq == 0 &&
               back.n_counts == 0,
           "%s is refused (%s)", breaks[i].what, why);
        json_buf_dispose(&t);
    }
    ok(decode_str("{}", &back, why, sizeof(why)) < 0, "an empty object is refused");
    ok(decode_str("[1,2", &back, why, sizeof(why)) < 0 && strstr(why, "not JSON"),
       "broken JSON is refused: %s", why);
    ok(fleet_msg_decode(b.p, FLEET_MSG_MAX_BYTES + 1, &back, why, sizeof(why)) < 0 &&
           strcmp(why, "too large") == 0,
       "a body over %u bytes is refused before it is parsed", FLEET_MSG_MAX_BYTES);
    /* A bucket index out of range. */
    struct json_buf t;
    json_buf_init(&t);
    json_buf_puts(&t, "{\"fleet\":1,\"replica\":\"a:1\",\"boot\":\"0123456789abcdef\",\"seq\":1,"
                      "\"time_ms\":1,\"generation\":1,\"rollout\":\"state=none;version=;step=0;"
                      "steps=;hold=0;started=0;step_started=0;pause_seq=0;versions=;reason=\","
                      "\"counts\":{\"v2\":{\"slot_ms\":1000,\"slots\":[[0,1,0,[99999,1]]]}}}");
    ok(decode_str(t.p, &back, why, sizeof(why)) < 0, "a latency bucket out of range is refused");
    json_buf_reset(&t);
    json_buf_puts(&t, "{\"fleet\":1,\"replica\":\"a:1\",\"boot\":\"0123456789abcdef\",\"seq\":1,"
                      "\"time_ms\":1,\"generation\":1,\"rollout\":\"state=none;version=;step=0;"
                      "steps=;hold=0;started=0;step_started=0;pause_seq=0;versions=;reason=\","
                      "\"counts\":{}}");
    ok(decode_str(t.p, &back, why, sizeof(why)) == 0 && back.rollout.state == ROLLOUT_S_NONE,
       "a replica with no rollout and no counts is a valid message (%s)", why);
    fleet_msg_dispose(&back);
    json_buf_dispose(&t);
    json_buf_dispose(&b);
    fleet_msg_dispose(&m);
}

/* ---- MAC and replay -------------------------------------------------------- */

static void test_mac(void)
{
    char hex[FLEET_MAC_HEX + 1];
    const char *data = "what do ya want for nothing?";
    fleet_msg_mac_hex((const uint8_t *)"Jefe", 4, data, strlen(data), hex);
    is_str(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
           "HMAC-SHA256 matches RFC 4231 test case 2");
    ok(fleet_msg_mac_ok((const uint8_t *)"Jefe", 4, data, strlen(data), hex), "the MAC checks");
    char upper[FLEET_MAC_HEX + 1];
    for (unsigned i = 0; i <= FLEET_MAC_HEX; i++)
        upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 32) : hex[i];
    ok(fleet_msg_mac_ok((const uint8_t *)"Jefe", 4, data, strlen(data), upper),
       "upper-case hex checks too");
    ok(!fleet_msg_mac_ok((const uint8_t *)"Jeff", 4, data, strlen(data), hex), "another key fails");
    ok(!fleet_msg_mac_ok((const uint8_t *)"Jefe", 4, "what do ya want for nothing!", strlen(data),
                         hex),
       "another body fails");
    hex[10] = hex[10] == '0' ? '1' : '0';
    ok(!fleet_msg_mac_ok((const uint8_t *)"Jefe", 4, data, strlen(data), hex), "one digit off fails");
    ok(!fleet_msg_mac_ok((const uint8_t *)"Jefe", 4, data, strlen(data), NULL), "no MAC fails");
    ok(!fleet_msg_mac_ok((const uint8_t *)"Jefe", 4, data, strlen(data), "5bdc"), "a short MAC fails");
    hex[10] = 'g';
    ok(!fleet_msg_mac_ok((const uint8_t *)"Jefe", 4, data, strlen(data), hex), "a non-hex MAC fails");
}

static void test_replay(void)
{
    struct fleet_msg_replay r;
    memset(&r, 0, sizeof(r));
    int64_t now = 1764000000000;
    ok(fleet_msg_replay_check(&r, "aaaaaaaaaaaaaaaa", 5, now, now) == NULL, "a first message is taken");
    is_str(fleet_msg_replay_check(&r, "aaaaaaaaaaaaaaaa", 5, now, now), "replayed",
           "the same seq again is a replay");
    is_str(fleet_msg_replay_check(&r, "aaaaaaaaaaaaaaaa", 4, now + 1, now), "replayed",
           "an older seq is a replay");
    ok(fleet_msg_replay_check(&r, "aaaaaaaaaaaaaaaa", 6, now + 1, now) == NULL, "the next seq is taken");
    ok(r.seq == 6, "the last seq is remembered");
    is_str(fleet_msg_replay_check(&r, "aaaaaaaaaaaaaaaa", 7, now + FLEET_SKEW_MS + 1, now), "stale",
           "a message from too far in the future is stale");
    is_str(fleet_msg_replay_check(&r, "aaaaaaaaaaaaaaaa", 7, now - FLEET_SKEW_MS - 1, now), "stale",
           "a message from too far in the past is stale");
    ok(r.seq == 6, "refusals change nothing");
    ok(fleet_msg_replay_check(&r, "bbbbbbbbbbbbbbbb", 1, now + 5, now) == NULL,
       "a restarted sender (a new boot, later) starts its seq again");
    is_str(fleet_msg_replay_check(&r, "aaaaaaaaaaaaaaaa", 8, now + 2, now), "replayed",
           "the old boot's messages are replays now");
}

int main(void)
{
    test_join();
    test_codec();
    test_mac();
    test_replay();
    return tap_done();
}
