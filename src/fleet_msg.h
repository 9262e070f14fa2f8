/*
 * fleet_msg.h — what one weir replica tells another (the fleet, INTERFACE.md
 * "Fleet"), as pure functions: the message, its wire form, its MAC and the
 * replay check. No I/O, no clock, no globals (fleet.c does the sending,
 * the receiving and the timing on the main thread).
 *
 * A message is one JSON object, POSTed to a peer's admin listener at
 * /fleet with the HMAC-SHA256 of the exact body bytes, keyed with the
 * fleet's shared key, in hex in the header X-Weir-Fleet-Mac:
 *
 *   {"fleet":1,"replica":"pod-a:9901","boot":"16 hex digits","seq":N,
 *    "time_ms":WALL_MS,"generation":N,"rollout":"<rollout_encode line>",
 *    "counts":{"v2":{"slot_ms":1000,"slots":[[START_MS,REQ,ERR,[B,C,B,C..]],..]},..}}
 *
 * replica names the sender (host name and admin port), boot is random per
 * process start, seq grows by one per message of a boot, time_ms is the
 * sender's wall clock. counts are the sender's OWN outcome windows per
 * version (never what it heard from others, so a sum over replicas is
 * exact), one entry per non-empty time slot: its start on the wall clock,
 * requests, errors and the latency histogram as (bucket, count) pairs of
 * outcome.h's layout. A receiver keeps only the latest message of each
 * sender (a report replaces the previous one), which makes the merge
 * idempotent.
 *
 * Refusals (each a label of weir_fleet_rejected_total): too_large (body
 * over FLEET_MSG_MAX_BYTES), bad_mac (missing, malformed or wrong MAC),
 * malformed (not the shape above, numbers out of range, a rollout whose
 * plan is invalid or whose pause_seq parity is not its state), stale (time_ms
 * more than FLEET_SKEW_MS away from the receiver's clock), replayed (a seq
 * not above the last one accepted from this sender's boot, or an older
 * boot of the sender). The MAC is checked before anything of the body is
 * read, in constant time (CRYPTO_memcmp).
 */
#ifndef WEIR_FLEET_MSG_H
#define WEIR_FLEET_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outcome.h"
#include "rollout.h"
#include "util.h"

struct json_buf;

#define FLEET_MSG_MAX_BYTES (512u * 1024u) /* a body above this is refused */
#define FLEET_MAC_HEADER "X-Weir-Fleet-Mac"
#define FLEET_MAC_BYTES 32u /* HMAC-SHA256 */
#define FLEET_MAC_HEX (2u * FLEET_MAC_BYTES)
#define FLEET_KEY_MIN_BYTES 16u /* a shorter key is warned about at load */
#define FLEET_KEY_MAX_BYTES 4096u
#define FLEET_SKEW_MS 10000   /* |sender's time_ms - ours| allowed */
#define FLEET_REPLICA_MAX 128 /* replica name and NUL */
#define FLEET_BOOT_HEX 16     /* boot id: hex digits */
#define FLEET_VERSIONS_MAX ROLLOUT_VERSIONS_MAX
#define FLEET_SLOTS_MAX OUTCOME_SLOTS /* slots per version in one message */

/* One time slot of a sender's outcome window. */
struct fleet_msg_slot {
    int64_t start_ms;       /* wall clock of the slot's first millisecond */
    struct outcome_sum sum; /* its requests, errors, latency histogram */
};

/* A sender's counts of one version. */
struct fleet_msg_counts {
    char version[ROLLOUT_NAME_MAX];
    uint32_t slot_ms;             /* the width of each slot (> 0) */
    struct fleet_msg_slot *slots; /* owned array of n_slots */
    size_t n_slots;
};

struct fleet_msg {
    char replica[FLEET_REPLICA_MAX];
    char boot[FLEET_BOOT_HEX + 1];
    uint64_t seq;
    int64_t time_ms;
    uint64_t generation;             /* the sender's snapshot generation */
    struct rollout rollout;          /* the sender's rollout (NONE: none) */
    struct fleet_msg_counts *counts; /* owned array of n_counts */
    size_t n_counts;
};

/* Empty *m (no counts). */
void fleet_msg_init(struct fleet_msg *m);

/* Free what *m owns (its counts) and empty it. */
void fleet_msg_dispose(struct fleet_msg *m);

/*
 * Append a new, empty counts entry for version (slot_ms > 0) and return it
 * (owned by m). Returns NULL when m has FLEET_VERSIONS_MAX already.
 */
struct fleet_msg_counts *fleet_msg_add_counts(struct fleet_msg *m, const char *version,
                                              uint32_t slot_ms);

/* Append one slot to c (a copy of sum). Returns 0, or -1 when c is full. */
int fleet_msg_counts_add_slot(struct fleet_msg_counts *c, int64_t start_ms,
                              const struct outcome_sum *sum) WUR;

/* The wire form of m, appended to out (the JSON above). */
void fleet_msg_encode(const struct fleet_msg *m, struct json_buf *out);

/*
 * Parse a body into *m (initialised by the call; dispose it after a
 * success). Returns 0, or -1 with a short reason in why (m left empty).
 */
int fleet_msg_decode(const char *body, size_t len, struct fleet_msg *m, char *why,
                     size_t whylen) WUR;

/* HMAC-SHA256 of data under key, as FLEET_MAC_HEX lower-case hex digits
 * and a NUL in hex. */
void fleet_msg_mac_hex(const uint8_t *key, size_t key_len, const char *data, size_t len,
                       char hex[FLEET_MAC_HEX + 1]);

/* Is hex (NULL: missing) the MAC of data under key? Constant time in the
 * comparison of the MAC. */
bool fleet_msg_mac_ok(const uint8_t *key, size_t key_len, const char *data, size_t len,
                      const char *hex);

/* What is remembered of a sender for the replay check. */
struct fleet_msg_replay {
    char boot[FLEET_BOOT_HEX + 1]; /* "" until a message was accepted */
    uint64_t seq;                  /* the last accepted seq of that boot */
    int64_t time_ms;               /* the last accepted time_ms */
};

/*
 * May a message (boot, seq, time_ms) from a sender whose past is *r be
 * accepted at now_ms (our wall clock)? Returns NULL and updates *r when it
 * may, else the refusal's label ("stale", "replayed") and *r unchanged.
 */
const char *fleet_msg_replay_check(struct fleet_msg_replay *r, const char *boot, uint64_t seq,
                                   int64_t time_ms, int64_t now_ms);

#endif
