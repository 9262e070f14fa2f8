/*
 * fuzz_fleet_msg.c — the fleet's message decoder (fleet_msg_decode) on
 * arbitrary bodies, as a peer (or anyone reaching the admin listener with
 * the key) could send them. Invariants:
 *  - a refused body leaves the message empty, with a reason;
 *  - a decoded message encodes and decodes again to the same message
 *    (names, numbers, the rollout and every slot's counts);
 *  - its rollout joined with itself is itself, and joined with no rollout
 *    is itself (the join's idempotence and bottom);
 *  - every slot's latency buckets add up to its requests, errors at most
 *    requests.
 */
#include <string.h>

#include "fleet_msg.h"
#include "fuzz.h"
#include "json.h"
#include "rollout.h"

static bool same_sum(const struct outcome_sum *a, const struct outcome_sum *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fleet_msg m;
    char why[256] = "";
    if (fleet_msg_decode((const char *)data, size, &m, why, sizeof(why)) < 0) {
        FUZZ_CHECK(why[0] != '\0' && m.n_counts == 0 && m.counts == NULL && m.seq == 0);
        return 0;
    }
    for (size_t c = 0; c < m.n_counts; c++)
        for (size_t s = 0; s < m.counts[c].n_slots; s++) {
            const struct outcome_sum *sum = &m.counts[c].slots[s].sum;
            uint64_t t = 0;
            for (uint32_t b = 0; b < OUTCOME_BUCKETS; b++)
                t += sum->latency[b];
            FUZZ_CHECK(t == sum->requests && sum->errors <= sum->requests);
        }
    struct json_buf b;
    json_buf_init(&b);
    fleet_msg_encode(&m, &b);
    struct fleet_msg again;
    FUZZ_CHECK(fleet_msg_decode(b.p, b.len, &again, why, sizeof(why)) == 0);
    FUZZ_CHECK(strcmp(m.replica, again.replica) == 0 && strcmp(m.boot, again.boot) == 0);
    FUZZ_CHECK(m.seq == again.seq && m.time_ms == again.time_ms &&
               m.generation == again.generation);
    FUZZ_CHECK(rollout_id_cmp(&m.rollout, &again.rollout) == 0 &&
               m.rollout.state == again.rollout.state && m.rollout.step == again.rollout.step &&
               m.rollout.pause_seq == again.rollout.pause_seq &&
               strcmp(m.rollout.reason, again.rollout.reason) == 0);
    FUZZ_CHECK(m.n_counts == again.n_counts);
    for (size_t c = 0; c < m.n_counts; c++) {
        FUZZ_CHECK(strcmp(m.counts[c].version, again.counts[c].version) == 0 &&
                   m.counts[c].slot_ms == again.counts[c].slot_ms &&
                   m.counts[c].n_slots == again.counts[c].n_slots);
        for (size_t s = 0; s < m.counts[c].n_slots; s++)
            FUZZ_CHECK(m.counts[c].slots[s].start_ms == again.counts[c].slots[s].start_ms &&
                       same_sum(&m.counts[c].slots[s].sum, &again.counts[c].slots[s].sum));
    }
    struct rollout j, none;
    rollout_join(&m.rollout, &m.rollout, &j);
    FUZZ_CHECK(m.rollout.state == ROLLOUT_S_NONE ? j.state == ROLLOUT_S_NONE
                                                 : memcmp(&j, &m.rollout, sizeof(j)) == 0);
    memset(&none, 0, sizeof(none));
    rollout_join(&none, &m.rollout, &j);
    FUZZ_CHECK(m.rollout.state == ROLLOUT_S_NONE || memcmp(&j, &m.rollout, sizeof(j)) == 0);
    fleet_msg_dispose(&again);
    fleet_msg_dispose(&m);
    json_buf_dispose(&b);
    return 0;
}
