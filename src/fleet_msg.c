/*
 * fleet_msg.c — the fleet's message, its wire form, MAC and replay check
 * (see fleet_msg.h). Pure: every input is an argument.
 *
 * Decoding is strict and bounded: the body is at most FLEET_MSG_MAX_BYTES,
 * every member must be there with its type, integers are whole and within
 * range (JSON numbers are doubles: exact up to 2^53, which bounds seq and
 * counts), names are short printable text without ';' (they end up in the
 * rollout's state line), a slot's buckets add up to its requests. Anything
 * else refuses the whole message: nothing of a malformed message is used.
 */
#include "fleet_msg.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "json.h"
#include "util.h"

#define FLEET_WIRE_VERSION 1
#define INT_EXACT_MAX 9007199254740992.0 /* 2^53 */

void fleet_msg_init(struct fleet_msg *m)
{
    memset(m, 0, sizeof(*m));
}

void fleet_msg_dispose(struct fleet_msg *m)
{
    for (size_t i = 0; i < m->n_counts; i++)
        free(m->counts[i].slots);
    free(m->counts);
    memset(m, 0, sizeof(*m));
}

struct fleet_msg_counts *fleet_msg_add_counts(struct fleet_msg *m, const char *version,
                                              uint32_t slot_ms)
{
    if (m->n_counts == FLEET_VERSIONS_MAX || slot_ms == 0)
        return NULL;
    if (!m->counts)
        m->counts = xcalloc(FLEET_VERSIONS_MAX, sizeof(*m->counts));
    struct fleet_msg_counts *c = &m->counts[m->n_counts++];
    memset(c, 0, sizeof(*c));
    snprintf(c->version, sizeof(c->version), "%s", version);
    c->slot_ms = slot_ms;
    return c;
}

int fleet_msg_counts_add_slot(struct fleet_msg_counts *c, int64_t start_ms,
                              const struct outcome_sum *sum)
{
    if (c->n_slots == FLEET_SLOTS_MAX)
        return -1;
    /* Grown by doubling: a slot is ~3 KiB and most messages carry few. */
    if ((c->n_slots & (c->n_slots - 1)) == 0) {
        size_t cap = c->n_slots ? 2 * c->n_slots : 1;
        c->slots = xrealloc(c->slots, cap * sizeof(*c->slots));
    }
    c->slots[c->n_slots].start_ms = start_ms;
    c->slots[c->n_slots].sum = *sum;
    c->n_slots++;
    return 0;
}

/* ---- encode ------------------------------------------------------------ */

void fleet_msg_encode(const struct fleet_msg *m, struct json_buf *out)
{
    char line[2048];
    rollout_encode(&m->rollout, line, sizeof(line));
    json_buf_printf(out, "{\"fleet\":%d,\"replica\":", FLEET_WIRE_VERSION);
    json_buf_str(out, m->replica);
    json_buf_puts(out, ",\"boot\":");
    json_buf_str(out, m->boot);
    json_buf_printf(out, ",\"seq\":%" PRIu64 ",\"time_ms\":%" PRId64 ",\"generation\":%" PRIu64 ",\"rollout\":", m->seq, m->time_ms, m->generation);
    json_buf_str(out, line);
    json_buf_puts(out, ",\"counts\":{");
    for (size_t i = 0; i < m->n_counts; i++) {
        const struct fleet_msg_counts *c = &m->counts[i];
        if (i)
            json_buf_puts(out, ",");
        json_buf_key(out, c->version);
        json_buf_printf(out, "{\"slot_ms\":%" PRIu32 ",\"slots\":[", c->slot_ms);
        for (size_t s = 0; s < c->n_slots; s++) {
            const struct fleet_msg_slot *sl = &c->slots[s];
            json_buf_printf(out, "%s[%" PRId64 ",%" PRIu64 ",%" PRIu64 ",[", s ? "," : "",
                            sl->start_ms, sl->sum.requests, sl->sum.errors);
            bool first = true;
            for (uint32_t b = 0; b < OUTCOME_BUCKETS; b++) {
                if (!sl->sum.latency[b])
                    continue;
                json_buf_printf(out, "%s%" PRIu32 ",%" PRIu64, first ? "" : ",", b,
                                sl->sum.latency[b]);
                first = false;
            }
            json_buf_puts(out, "]]");
        }
        json_buf_puts(out, "]}");
    }
    json_buf_puts(out, "}}");
}

/* ---- decode ------------------------------------------------------------ */

static bool as_uint(const struct json_value *v, double max, uint64_t *out)
{
    if (!v || v->type != JSON_T_NUMBER || !isfinite(v->num) || v->num < 0 ||
        v->num > max || floor(v->num) != v->num)
        return false;
    *out = (uint64_t)v->num;
    return true;
}

static bool as_int(const struct json_value *v, int64_t *out)
{
    if (!v || v->type != JSON_T_NUMBER || !isfinite(v->num) || fabs(v->num) > INT_EXACT_MAX ||
        floor(v->num) != v->num)
        return false;
    *out = (int64_t)v->num;
    return true;
}

/* Printable ASCII, no ';' (the state line's separator), 1..max-1 bytes. */
static bool name_ok(const struct json_value *v, size_t max)
{
    if (!v || v->type != JSON_T_STRING || v->str_len == 0 || v->str_len >= max)
        return false;
    for (size_t i = 0; i < v->str_len; i++) {
        unsigned char c = (unsigned char)v->str[i];
        if (c <= ' ' || c >= 0x7f || c == ';' || c == ',')
            return false;
    }
    return true;
}

static int fail(char *why, size_t whylen, const char *what)
{
    snprintf(why, whylen, "%s", what);
    return -1;
}

static int decode_slot(const struct json_value *it, struct fleet_msg_counts *c, char *why,
                       size_t whylen)
{
    if (it->type != JSON_T_ARRAY || it->n != 4)
        return fail(why, whylen, "a slot is not [start_ms, requests, errors, [buckets]]");
    int64_t start;
    uint64_t req, err;
    const struct json_value *bk = it->items[3];
    if (!as_int(it->items[0], &start) || !as_uint(it->items[1], UINT32_MAX * 64.0, &req) ||
        !as_uint(it->items[2], (double)req, &err) || bk->type != JSON_T_ARRAY ||
        bk->n % 2 != 0 || bk->n > 2u * OUTCOME_BUCKETS)
        return fail(why, whylen, "a slot's numbers are out of range");
    static struct outcome_sum sum; /* ~3 KiB; main thread only */
    outcome_sum_clear(&sum);
    sum.requests = req;
    sum.errors = err;
    uint64_t total = 0;
    for (size_t i = 0; i < bk->n; i += 2) {
        uint64_t b, n;
        if (!as_uint(bk->items[i], OUTCOME_BUCKETS - 1, &b) ||
            !as_uint(bk->items[i + 1], (double)req, &n) || sum.latency[b])
            return fail(why, whylen, "a slot's latency buckets are out of range");
        sum.latency[b] = n;
        total += n;
    }
    if (total != req)
        return fail(why, whylen, "a slot's latency buckets do not add up to its requests");
    if (fleet_msg_counts_add_slot(c, start, &sum) < 0)
        return fail(why, whylen, "too many slots");
    return 0;
}

static int decode_counts(const struct json_value *counts, struct fleet_msg *m, char *why,
                         size_t whylen)
{
    if (!counts || counts->type != JSON_T_OBJECT || counts->n > FLEET_VERSIONS_MAX)
        return fail(why, whylen, "counts is not an object of at most 32 versions");
    for (size_t i = 0; i < counts->n; i++) {
        const struct json_value *v = counts->items[i];
        struct json_value key = {.type = JSON_T_STRING, .str = counts->keys[i], .str_len = strlen(counts->keys[i])};
        uint64_t slot_ms;
        const struct json_value *slots = json_get(v, "slots");
        if (!name_ok(&key, ROLLOUT_NAME_MAX) || !as_uint(json_get(v, "slot_ms"), 3600000, &slot_ms) ||
            slot_ms == 0 || !slots || slots->type != JSON_T_ARRAY || slots->n > FLEET_SLOTS_MAX)
            return fail(why, whylen, "a version's counts are malformed");
        for (size_t j = 0; j < m->n_counts; j++)
            if (strcmp(m->counts[j].version, key.str) == 0)
                return fail(why, whylen, "a version's counts appear twice");
        struct fleet_msg_counts *c = fleet_msg_add_counts(m, key.str, (uint32_t)slot_ms);
        if (!c)
            return fail(why, whylen, "too many versions");
        for (size_t s = 0; s < slots->n; s++)
            if (decode_slot(slots->items[s], c, why, whylen) < 0)
                return -1;
    }
    return 0;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Is text exactly what rollout_encode writes for r? (No reason cut short,
 * no "step=01": one state, one spelling, so a message means one thing.) */
static bool canonical(const struct rollout *r, const char *text)
{
    char line[2048];
    size_t n = rollout_encode(r, line, sizeof(line));
    return n < sizeof(line) && strcmp(line, text) == 0;
}

int fleet_msg_decode(const char *body, size_t len, struct fleet_msg *m, char *why,
                     size_t whylen)
{
    fleet_msg_init(m);
    if (len > FLEET_MSG_MAX_BYTES)
        return fail(why, whylen, "too large");
    char err[128];
    struct json_value *root = json_parse(body, len, err, sizeof(err));
    if (!root) {
        snprintf(why, whylen, "not JSON: %s", err);
        return -1;
    }
    int rc = -1;
    uint64_t wire, seq, gen;
    const struct json_value *rep = json_get(root, "replica"), *boot = json_get(root, "boot");
    const struct json_value *ro = json_get(root, "rollout");
    if (root->type != JSON_T_OBJECT || !as_uint(json_get(root, "fleet"), 1e9, &wire) ||
        wire != FLEET_WIRE_VERSION) {
        fail(why, whylen, "not a fleet message of version 1");
    } else if (!name_ok(rep, FLEET_REPLICA_MAX) || !boot || boot->type != JSON_T_STRING ||
               boot->str_len != FLEET_BOOT_HEX || !is_hex(boot->str, FLEET_BOOT_HEX)) {
        fail(why, whylen, "replica or boot is malformed");
    } else if (!as_uint(json_get(root, "seq"), INT_EXACT_MAX, &seq) ||
               !as_int(json_get(root, "time_ms"), &m->time_ms) ||
               !as_uint(json_get(root, "generation"), INT_EXACT_MAX, &gen)) {
        fail(why, whylen, "seq, time_ms or generation is malformed");
    } else if (!ro || ro->type != JSON_T_STRING || strlen(ro->str) != ro->str_len ||
               !json_is_utf8(ro->str, ro->str_len) || rollout_decode(ro->str, &m->rollout) < 0 ||
               !canonical(&m->rollout, ro->str)) {
        fail(why, whylen, "the rollout is malformed");
    } else if (m->rollout.state != ROLLOUT_S_NONE &&
               rollout_plan_check(&m->rollout.plan, err, sizeof(err)) < 0) {
        snprintf(why, whylen, "the rollout's plan is invalid: %s", err);
    } else if ((m->rollout.state == ROLLOUT_S_RUNNING && (m->rollout.pause_seq & 1u)) ||
               (m->rollout.state == ROLLOUT_S_PAUSED && !(m->rollout.pause_seq & 1u))) {
        /* Every pause and resume counts one: paused is odd, running even
         * (rollout.c keeps it so; the join relies on it). */
        fail(why, whylen, "the rollout's pause_seq does not match its state");
    } else if (decode_counts(json_get(root, "counts"), m, why, whylen) == 0) {
        memcpy(m->replica, rep->str, rep->str_len + 1);
        memcpy(m->boot, boot->str, FLEET_BOOT_HEX + 1);
        m->seq = seq;
        m->generation = gen;
        rc = 0;
    }
    json_free(root);
    if (rc < 0)
        fleet_msg_dispose(m);
    return rc;
}

/* ---- MAC ----------------------------------------------------------------- */

void fleet_msg_mac_hex(const uint8_t *key, size_t key_len, const char *data, size_t len,
                       char hex[FLEET_MAC_HEX + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    CHECK(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, len, mac,
               &mac_len) != NULL &&
          mac_len == FLEET_MAC_BYTES);
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < FLEET_MAC_BYTES; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[FLEET_MAC_HEX] = '\0';
}

bool fleet_msg_mac_ok(const uint8_t *key, size_t key_len, const char *data, size_t len,
                      const char *hex)
{
    if (!hex || strlen(hex) != FLEET_MAC_HEX)
        return false;
    unsigned char got[FLEET_MAC_BYTES], want[EVP_MAX_MD_SIZE];
    for (unsigned i = 0; i < FLEET_MAC_BYTES; i++) {
        int hi = util_hexval(hex[2 * i]), lo = util_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        got[i] = (unsigned char)(hi << 4 | lo);
    }
    unsigned int want_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, len, want,
              &want_len) ||
        want_len != FLEET_MAC_BYTES)
        return false;
    return CRYPTO_memcmp(got, want, FLEET_MAC_BYTES) == 0;
}

/* ---- replay -------------------------------------------------------------- */

const char *fleet_msg_replay_check(struct fleet_msg_replay *r, const char *boot, uint64_t seq,
                                   int64_t time_ms, int64_t now_ms)
{
    int64_t skew = time_ms > now_ms ? time_ms - now_ms : now_ms - time_ms;
    if (skew > FLEET_SKEW_MS)
        return "stale";
    if (r->boot[0]) {
        if (strcmp(r->boot, boot) == 0) {
            if (seq <= r->seq)
                return "replayed";
        } else if (time_ms <= r->time_ms) {
            /* Another boot: only a newer one (a restart) takes over. */
            return "replayed";
        }
    }
    snprintf(r->boot, sizeof(r->boot), "%s", boot);
    r->seq = seq;
    r->time_ms = time_ms;
    return NULL;
}
