/*
 * mirror_cmp.h — the pure part of mirroring: which requests are sampled,
 * what of a response is kept for the comparison, the comparison itself,
 * and the ring of the last differences.
 *
 *   sampler   a per-worker deterministic counter: every eligible request
 *             adds the percent (basis points) to an accumulator, and one
 *             is mirrored each time it reaches 10000. Over any run of N
 *             eligible requests on a worker the count mirrored is
 *             N × percent / 100 rounded down or up, never further off
 *             (the split's SWRR gives the same guarantee). Not the sticky
 *             bucket: a mirror share is about load on the shadow, and a
 *             counter is exact where a hash is only exact on average.
 *   side      one response as the comparison sees it: status, the values
 *             of the compared headers (several fields of a name joined by
 *             ", ", RFC 9110 §5.3; long values cut), and a SHA-256 of the
 *             decoded body, streamed: the body is hashed as it passes and
 *             never kept. SHA-256 (OpenSSL's EVP, with SHA-NI on x86) and
 *             not a faster non-cryptographic hash: weir already links
 *             libcrypto, the operator can check a difference with
 *             `curl -s URL | sha256sum`, and no shadow can make a different
 *             body look equal.
 *   chunkwalk the body bytes out of weir's own chunked re-framing (what
 *             the primary's response looks like in the client's output
 *             buffer), so both sides hash the decoded body whatever each
 *             upstream's framing was.
 *   ring      per worker, the last MIRROR_DIFFS_KEPT differences, written
 *             by the worker and read by the main thread without a lock: a
 *             seqlock per slot over relaxed atomic words (Boehm, "Can
 *             seqlocks get along with programming language memory
 *             models?"), so a reader never sees a torn entry and the
 *             writer never waits.
 *
 * No I/O. The sampler and sides belong to one worker thread; the ring is
 * written by its worker and read by any thread.
 */
#ifndef WEIR_MIRROR_CMP_H
#define WEIR_MIRROR_CMP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router.h"

#define MIRROR_CMP_HEADERS_MAX 8 /* compare.headers entries */
#define MIRROR_HVAL_MAX 96       /* bytes of a header value kept */
#define MIRROR_HNAME_MAX 40      /* bytes of a compared header's name kept */
#define MIRROR_DIFFS_KEPT 20     /* differences kept per worker (and shown) */
#define MIRROR_HASH_LEN 32       /* SHA-256 */

/* The results of a mirror; the metric's `result` label. */
enum mirror_result {
    MIRROR_R_MATCH = 0, /* both answered, and everything compared was equal */
    MIRROR_R_DIFFER,    /* both answered, and something compared differed */
    MIRROR_R_ERROR,     /* the shadow failed: refused, reset, garbage, no endpoint */
    MIRROR_R_DROPPED,   /* weir gave up: max_inflight, the shadow's timeout, the
                           primary did not complete, the worker stopped */
    MIRROR_R_COUNT,
};

/* "match", "differ", "error", "dropped". */
const char *mirror_result_name(enum mirror_result r);

/* ---- sampling ---------------------------------------------------------- */

struct mirror_sampler {
    uint32_t acc; /* 0..9999 */
};

/* One eligible request: mirror it? percent_bp 0..10000. */
bool mirror_sampler_step(struct mirror_sampler *s, uint32_t percent_bp);

/* ---- one response ------------------------------------------------------ */

struct mirror_hval {
    bool present;
    uint16_t len;      /* bytes in v (cut at MIRROR_HVAL_MAX) */
    uint32_t full_len; /* the value's whole length */
    char v[MIRROR_HVAL_MAX];
};

/* Decoder state of weir's own chunked output (sizes, data, CRLFs). */
struct mirror_chunkwalk {
    uint8_t state;      /* 0 size digits, 1 LF after size, 2 data, 3 CR, 4 LF, 5 done */
    uint64_t size;      /* of the chunk being read */
    uint64_t remaining; /* data bytes left in it */
};

struct evp_md_ctx_st;

struct mirror_side {
    int status;       /* 0: no response head */
    size_t n_headers; /* = the compare list's length */
    struct mirror_hval h[MIRROR_CMP_HEADERS_MAX];
    struct evp_md_ctx_st *md; /* owned: SHA-256 in progress; NULL when not hashing */
    uint8_t hash[MIRROR_HASH_LEN];
    bool hashed;         /* hash holds the final digest */
    uint64_t body_bytes; /* decoded body bytes seen */
    struct mirror_chunkwalk walk;
};

/* Ready a side for a new response; hash: the body will be hashed. Reuses
 * the side's digest context. */
void mirror_side_reset(struct mirror_side *sd, bool hash);

/* Free what a side owns. */
void mirror_side_dispose(struct mirror_side *sd);

/*
 * Keep status and the values of the compared headers (names: n_names
 * NUL-terminated names, any case) from a parsed response's fields.
 */
void mirror_side_head(struct mirror_side *sd, int status, const char *const *names,
                      size_t n_names, const struct router_header *headers,
                      size_t n_headers);

/* Hash n decoded body bytes. */
void mirror_side_body(struct mirror_side *sd, const void *p, size_t n);

/* Hash bytes of weir's chunked re-framing (chunk-size lines, data, CRLFs,
 * the last chunk), keeping only the data. Malformed input stops hashing
 * silently (weir wrote it; it cannot be). */
void mirror_side_body_chunked(struct mirror_side *sd, const char *p, size_t n);

/* Finish the digest (idempotent). */
void mirror_side_finish(struct mirror_side *sd);

/* ---- comparison -------------------------------------------------------- */

#define MIRROR_D_STATUS 0x1u
#define MIRROR_D_HEADERS 0x2u
#define MIRROR_D_BODY 0x4u

/* What differs between the primary (a) and the shadow (b): a mask of
 * MIRROR_D_*; 0 = match. Compares what the flags ask for; header i is
 * compared when both sides have n_headers > i. */
unsigned mirror_compare(const struct mirror_side *a, const struct mirror_side *b,
                        bool status, bool body);

/* ---- differences ------------------------------------------------------- */

/* One difference as shown by `mirror` (plain data, copied whole). */
struct mirror_diff {
    int64_t time_ms;                   /* wall clock */
    uint64_t seq;                      /* the worker's count of differences before it */
    uint32_t what;                     /* MIRROR_D_* */
    char version[CONFIG_NAME_MAX + 1]; /* the shadow's */
    char primary[CONFIG_NAME_MAX + 1]; /* the version that served the client */
    char method[24];
    char target[200]; /* cut when longer */
    int status_a, status_b;
    uint32_t n_headers;
    char hname[MIRROR_CMP_HEADERS_MAX][MIRROR_HNAME_MAX];
    struct mirror_hval ha[MIRROR_CMP_HEADERS_MAX], hb[MIRROR_CMP_HEADERS_MAX];
    uint8_t hash_a[MIRROR_HASH_LEN], hash_b[MIRROR_HASH_LEN];
    uint64_t bytes_a, bytes_b;
};

#define MIRROR_DIFF_WORDS ((sizeof(struct mirror_diff) + 7) / 8)

struct mirror_ring_slot {
    _Atomic uint64_t seq; /* odd while written; 0 = never */
    _Atomic uint64_t words[MIRROR_DIFF_WORDS];
};

/* The last MIRROR_DIFFS_KEPT differences of one worker. */
struct mirror_ring {
    _Atomic uint64_t next; /* entries written so far */
    struct mirror_ring_slot slots[MIRROR_DIFFS_KEPT];
};

/* Add d, replacing the oldest. The ring's one writer. */
void mirror_ring_push(struct mirror_ring *r, const struct mirror_diff *d);

/*
 * Copy up to max entries of the rings (n_rings of them), newest first by
 * time, into out; returns how many. Any thread, any number of readers.
 */
size_t mirror_ring_read(struct mirror_ring *const *rings, size_t n_rings,
                        struct mirror_diff *out, size_t max);

#endif
