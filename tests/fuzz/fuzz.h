/*
 * fuzz.h — shared by the libFuzzer harnesses in tests/fuzz/: the entry
 * point's prototype, an invariant check that stays on in every build, and
 * a small deterministic PRNG for harnesses that derive input splits from
 * the input itself (so a crash reproduces from the file alone).
 *
 * Each harness is one C file with LLVMFuzzerTestOneInput. With -Dfuzz=true
 * (clang) it links libFuzzer's main; otherwise replay.c supplies a main that
 * feeds every file of the committed corpus, so the normal and the ASan
 * builds replay the corpus as a plain meson test.
 */
#ifndef WEIR_FUZZ_H
#define WEIR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* libFuzzer's entry point: run one input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the code under test must keep: report and abort (a crash
 * to libFuzzer, a failed test to the replay). */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* FNV-1a over the input: the seed for fuzz_rand. */
static inline uint64_t fuzz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

/* xorshift64; *s must not be 0. */
static inline uint64_t fuzz_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

#endif
