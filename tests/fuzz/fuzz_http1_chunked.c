/*
 * fuzz_http1_chunked.c — the chunked body decoder (http1_chunked_step) on a
 * hostile body, both directions: raw (the request body case when an
 * upstream is 1.0, and how data is compared) and re-chunked (what proxy.c
 * sends on). The input is the body as it arrives followed by whatever comes
 * after it on the connection (a pipelined request, garbage).
 *
 * Each input is decoded several ways and the results must agree:
 *   A  one shot, raw, no output limit — the reference: verdict, bytes
 *      consumed, data;
 *   B  one byte at a time (the first 2 KiB), raw, small output limits;
 *   C  pieces of sizes drawn from the input's hash, moved in as separate
 *      evbuffer chains, re-chunked, with a random output limit.
 * Invariants: same verdict and data for every split and limit; no call
 * moves more than max_out data bytes; the decoder never consumes a byte
 * past the end of the message (B: the buffer is empty when it completes;
 * A: exactly the rest is left); a re-chunked output is itself a valid
 * chunked body (complete when the input was, a clean prefix otherwise)
 * carrying the same data, ending exactly at its last chunk.
 */
#include <string.h>

#include <event2/buffer.h>

#include "fuzz.h"
#include "http1.h"

struct result {
    int verdict;     /* 1 complete, 0 incomplete, -1 malformed */
    size_t consumed; /* bytes of the input used when complete */
    struct evbuffer *data; /* decoded data (raw) or the re-chunked output */
};

/* Step until the decoder needs more input or ends; checks the max_out bound. */
static int step_all(struct http1_chunked *c, struct evbuffer *in, struct evbuffer *out,
                    bool rechunk, size_t max_out)
{
    for (;;) {
        size_t before_in = evbuffer_get_length(in);
        size_t before_out = evbuffer_get_length(out);
        const char *err = NULL;
        int r = http1_chunked_step(c, in, out, rechunk, max_out, &err);
        if (r < 0)
            FUZZ_CHECK(err != NULL);
        if (!rechunk)
            FUZZ_CHECK(evbuffer_get_length(out) - before_out <= max_out);
        if (r != 0)
            return r;
        /* 0 with data moved and input left: the output limit stopped it. */
        if (evbuffer_get_length(in) == before_in || evbuffer_get_length(in) == 0)
            return 0;
    }
}

/* A: the reference decode. */
static void decode_once(const uint8_t *p, size_t n, struct result *res)
{
    struct http1_chunked c;
    http1_chunked_init(&c);
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, p, n);
    res->data = evbuffer_new();
    res->verdict = step_all(&c, in, res->data, false, SIZE_MAX);
    res->consumed = n - evbuffer_get_length(in);
    evbuffer_free(in);
}

static bool same_bytes(struct evbuffer *a, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(a);
    if (n != evbuffer_get_length(b))
        return false;
    if (n == 0)
        return true;
    return memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0;
}

/* B: byte by byte (bytes 1..16 at a time past the first 2 KiB, to keep
 * long inputs fast), raw, output limit 1..7 per call. */
static void check_bytewise(const uint8_t *p, size_t n, const struct result *ref,
                           uint64_t *seed)
{
    struct http1_chunked c;
    http1_chunked_init(&c);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    int r = 0;
    size_t fed = 0;
    size_t max_out = 1 + fuzz_rand(seed) % 7;
    while (fed < n && r == 0) {
        size_t k = fed < 2048 ? 1 : 1 + fuzz_rand(seed) % 16;
        if (k > n - fed)
            k = n - fed;
        evbuffer_add(in, p + fed, k);
        fed += k;
        r = step_all(&c, in, out, false, max_out);
    }
    if (n == 0)
        r = step_all(&c, in, out, false, max_out);
    FUZZ_CHECK(r == ref->verdict);
    if (r == 1) {
        FUZZ_CHECK(fed - evbuffer_get_length(in) == ref->consumed);
        /* Fed a byte at a time, it completed on the very byte that ended
         * the message. */
        if (ref->consumed <= 2048)
            FUZZ_CHECK(evbuffer_get_length(in) == 0);
    }
    FUZZ_CHECK(same_bytes(out, ref->data));
    evbuffer_free(in);
    evbuffer_free(out);
}

/* C: random pieces as separate chains, re-chunked; returns the output. */
static struct evbuffer *check_pieces(const uint8_t *p, size_t n, const struct result *ref,
                                     uint64_t *seed)
{
    struct http1_chunked c;
    http1_chunked_init(&c);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    size_t max_out = (fuzz_rand(seed) & 1) ? SIZE_MAX : 1 + fuzz_rand(seed) % 300;
    int r = 0;
    size_t fed = 0;
    do {
        size_t k = fuzz_rand(seed) % 40;
        if (k > n - fed)
            k = n - fed;
        struct evbuffer *piece = evbuffer_new();
        evbuffer_add(piece, p + fed, k);
        evbuffer_add_buffer(in, piece);
        evbuffer_free(piece);
        fed += k;
        r = step_all(&c, in, out, true, max_out);
    } while (fed < n && r == 0);
    FUZZ_CHECK(r == ref->verdict);
    if (r == 1)
        FUZZ_CHECK(fed - evbuffer_get_length(in) == ref->consumed);
    evbuffer_free(in);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = fuzz_hash(data, size);
    struct result ref;
    decode_once(data, size, &ref);
    if (ref.verdict == 1) {
        FUZZ_CHECK(ref.consumed >= 5 && ref.consumed <= size);
        FUZZ_CHECK(memcmp(data + ref.consumed - 2, "\r\n", 2) == 0);
    }
    check_bytewise(data, size, &ref, &seed);
    struct evbuffer *re = check_pieces(data, size, &ref, &seed);

    /* The re-chunked output decodes to the same data and ends exactly at
     * its last chunk; when the input was cut short or malformed, what was
     * sent so far is a clean prefix (never an early last chunk). */
    size_t re_len = evbuffer_get_length(re);
    struct result back;
    decode_once(evbuffer_pullup(re, -1), re_len, &back);
    if (ref.verdict == 1) {
        FUZZ_CHECK(back.verdict == 1 && back.consumed == re_len);
    } else {
        FUZZ_CHECK(back.verdict == 0);
    }
    FUZZ_CHECK(same_bytes(back.data, ref.data));
    evbuffer_free(back.data);
    evbuffer_free(re);
    evbuffer_free(ref.data);
    return 0;
}
