/*
 * access_id.c — see access_id.h.
 */
#include "access_id.h"

#include <stdint.h>

bool access_id_is_sane(struct strview v)
{
    if (v.len == 0 || v.len > ACCESS_ID_MAX)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

/* splitmix64's finalizer: a bijection of 64-bit values, so distinct
 * counters give distinct ids. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static void hex64(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[v & 15];
        v >>= 4;
    }
}

void access_id_make(char buf[ACCESS_ID_LEN + 1])
{
    static _Thread_local uint64_t seed, key, counter;
    if (!seed) {
        seed = util_random_u64() | 1;
        key = util_random_u64();
    }
    hex64(buf, seed);
    hex64(buf + 16, mix(++counter ^ key));
    buf[ACCESS_ID_LEN] = '\0';
}

struct strview access_id_pick(const struct router_header *h, size_t n,
                              char buf[ACCESS_ID_LEN + 1])
{
    const struct router_header *found = NULL;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (util_sv_ieq(h[i].name, "x-request-id")) {
            found = &h[i];
            count++;
        }
    if (count == 1 && access_id_is_sane(found->value))
        return found->value;
    access_id_make(buf);
    return (struct strview){buf, ACCESS_ID_LEN};
}
