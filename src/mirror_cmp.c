/*
 * mirror_cmp.c — see mirror_cmp.h: sampling, the kept parts of a response,
 * the comparison and the ring of differences. Pure logic plus OpenSSL's
 * digest; no I/O, no global state.
 */
#include "mirror_cmp.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include <openssl/evp.h>

/* SHA-256 fetched once from the default provider: EVP_sha256() would make
 * every EVP_DigestInit_ex look it up again (OpenSSL 3's implicit fetch). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    CHECK(sha256_md);
}

const char *mirror_result_name(enum mirror_result r)
{
    static const char *const names[MIRROR_R_COUNT] = {"match", "differ", "error", "dropped"};
    return (unsigned)r < MIRROR_R_COUNT ? names[r] : "?";
}

/* ---- sampling ---------------------------------------------------------- */

bool mirror_sampler_step(struct mirror_sampler *s, uint32_t percent_bp)
{
    if (percent_bp >= 10000u)
        return true;
    s->acc += percent_bp;
    if (s->acc < 10000u)
        return false;
    s->acc -= 10000u;
    return true;
}

/* ---- one response ------------------------------------------------------ */

void mirror_side_reset(struct mirror_side *sd, bool hash)
{
    EVP_MD_CTX *md = sd->md;
    memset(sd, 0, sizeof(*sd));
    if (!hash) {
        EVP_MD_CTX_free(md);
        return;
    }
    if (!md)
        md = EVP_MD_CTX_new();
    CHECK(md);
    pthread_once(&sha256_once, fetch_sha256);
    CHECK(EVP_DigestInit_ex(md, sha256_md, NULL) == 1);
    sd->md = md;
}

void mirror_side_dispose(struct mirror_side *sd)
{
    EVP_MD_CTX_free(sd->md);
    sd->md = NULL;
}

static void hval_append(struct mirror_hval *h, struct strview v)
{
    if (h->present) {
        /* several fields of one name: their values joined (RFC 9110 §5.3) */
        static const char sep[] = ", ";
        for (size_t i = 0; i < 2 && h->len < MIRROR_HVAL_MAX; i++)
            h->v[h->len++] = sep[i];
        h->full_len += 2;
    }
    h->present = true;
    size_t room = MIRROR_HVAL_MAX - h->len;
    size_t n = v.len < room ? v.len : room;
    memcpy(h->v + h->len, v.p, n);
    h->len = (uint16_t)(h->len + n);
    h->full_len += (uint32_t)v.len;
}

void mirror_side_head(struct mirror_side *sd, int status, const char *const *names,
                      size_t n_names, const struct router_header *headers,
                      size_t n_headers)
{
    sd->status = status;
    if (n_names > MIRROR_CMP_HEADERS_MAX)
        n_names = MIRROR_CMP_HEADERS_MAX;
    sd->n_headers = n_names;
    for (size_t k = 0; k < n_names; k++)
        memset(&sd->h[k], 0, sizeof(sd->h[k]));
    for (size_t i = 0; i < n_headers; i++)
        for (size_t k = 0; k < n_names; k++)
            if (util_sv_ieq(headers[i].name, names[k]))
                hval_append(&sd->h[k], headers[i].value);
}

void mirror_side_body(struct mirror_side *sd, const void *p, size_t n)
{
    sd->body_bytes += n;
    if (sd->md && n)
        CHECK(EVP_DigestUpdate(sd->md, p, n) == 1);
}

/* struct mirror_chunkwalk's states */
enum chunkwalk_state {
    CW_SIZE = 0, /* hex size digits, until CR */
    CW_SIZE_LF,  /* the LF after the size line */
    CW_DATA,     /* `remaining` data bytes (hashed) */
    CW_DATA_CR,  /* the CR after the data */
    CW_DATA_LF,  /* the LF after the data; a size-0 chunk ends the body */
    CW_DONE,     /* the last chunk was walked */
    CW_BAD,      /* not weir's framing: nothing more is hashed */
};

void mirror_side_body_chunked(struct mirror_side *sd, const char *p, size_t n)
{
    struct mirror_chunkwalk *w = &sd->walk;
    size_t i = 0;
    while (i < n && w->state != CW_DONE && w->state != CW_BAD) {
        char c = p[i];
        switch (w->state) {
        case CW_SIZE: {
            int h = util_hexval(c);
            if (h >= 0 && w->size < (UINT64_C(1) << 56)) {
                w->size = w->size * 16 + (uint64_t)h;
            } else if (c == '\r') {
                w->state = CW_SIZE_LF;
            } else {
                w->state = CW_BAD;
            }
            i++;
            break;
        }
        case CW_SIZE_LF:
            if (c != '\n') {
                w->state = CW_BAD;
                break;
            }
            i++;
            /* the last chunk is "0\r\n\r\n": its CRLF follows as if data */
            w->remaining = w->size;
            w->state = CW_DATA;
            break;
        case CW_DATA: {
            size_t take = n - i;
            if (take > w->remaining)
                take = (size_t)w->remaining;
            mirror_side_body(sd, p + i, take);
            i += take;
            w->remaining -= take;
            if (w->remaining == 0)
                w->state = CW_DATA_CR;
            break;
        }
        case CW_DATA_CR:
            w->state = c == '\r' ? CW_DATA_LF : CW_BAD;
            i++;
            break;
        case CW_DATA_LF:
            if (c != '\n') {
                w->state = CW_BAD;
                break;
            }
            i++;
            w->state = w->size == 0 ? CW_DONE : CW_SIZE;
            w->size = 0;
            break;
        }
    }
}

void mirror_side_finish(struct mirror_side *sd)
{
    if (sd->hashed || !sd->md)
        return;
    unsigned len = 0;
    CHECK(EVP_DigestFinal_ex(sd->md, sd->hash, &len) == 1 && len == MIRROR_HASH_LEN);
    sd->hashed = true;
}

/* ---- comparison -------------------------------------------------------- */

static bool hval_eq(const struct mirror_hval *a, const struct mirror_hval *b)
{
    return a->present == b->present && a->full_len == b->full_len && a->len == b->len &&
           memcmp(a->v, b->v, a->len) == 0;
}

unsigned mirror_compare(const struct mirror_side *a, const struct mirror_side *b,
                        bool status, bool body)
{
    unsigned what = 0;
    if (status && a->status != b->status)
        what |= MIRROR_D_STATUS;
    size_t n = a->n_headers < b->n_headers ? a->n_headers : b->n_headers;
    for (size_t i = 0; i < n; i++)
        if (!hval_eq(&a->h[i], &b->h[i]))
            what |= MIRROR_D_HEADERS;
    if (body && (a->hashed != b->hashed || a->body_bytes != b->body_bytes ||
                 memcmp(a->hash, b->hash, MIRROR_HASH_LEN) != 0))
        what |= MIRROR_D_BODY;
    return what;
}

/* ---- the ring of differences ------------------------------------------- */

void mirror_ring_push(struct mirror_ring *r, const struct mirror_diff *d)
{
    uint64_t words[MIRROR_DIFF_WORDS];
    uint64_t n = atomic_load_explicit(&r->next, memory_order_relaxed);
    memset(words, 0, sizeof(words));
    memcpy(words, d, sizeof(*d));
    ((struct mirror_diff *)(void *)words)->seq = n;
    struct mirror_ring_slot *s = &r->slots[n % MIRROR_DIFFS_KEPT];
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed); /* odd: writing */
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < MIRROR_DIFF_WORDS; i++)
        atomic_store_explicit(&s->words[i], words[i], memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    atomic_store_explicit(&r->next, n + 1, memory_order_release);
}

/* One consistent copy of a slot; false when empty or written throughout. */
static bool slot_read(struct mirror_ring_slot *s, struct mirror_diff *out)
{
    uint64_t words[MIRROR_DIFF_WORDS];
    for (int attempt = 0; attempt < 8; attempt++) {
        uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (s1 == 0)
            return false;
        if (s1 & 1)
            continue;
        for (size_t i = 0; i < MIRROR_DIFF_WORDS; i++)
            words[i] = atomic_load_explicit(&s->words[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == s1) {
            memcpy(out, words, sizeof(*out));
            return true;
        }
    }
    return false;
}

static int by_time_desc(const void *a, const void *b)
{
    const struct mirror_diff *x = a, *y = b;
    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? 1 : -1;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1
                                                 : 0; /* same worker, same ms */
}

size_t mirror_ring_read(struct mirror_ring *const *rings, size_t n_rings,
                        struct mirror_diff *out, size_t max)
{
    size_t cap = n_rings * MIRROR_DIFFS_KEPT;
    if (cap == 0 || max == 0)
        return 0;
    struct mirror_diff *all = xcalloc(cap, sizeof(*all));
    size_t n = 0;
    for (size_t r = 0; r < n_rings; r++) {
        if (!rings[r])
            continue;
        uint64_t next = atomic_load_explicit(&rings[r]->next, memory_order_acquire);
        for (uint64_t k = 0; k < MIRROR_DIFFS_KEPT; k++) {
            if (slot_read(&rings[r]->slots[(next + k) % MIRROR_DIFFS_KEPT], &all[n]))
                n++;
        }
    }
    qsort(all, n, sizeof(*all), by_time_desc);
    size_t k = n < max ? n : max;
    memcpy(out, all, k * sizeof(*all));
    free(all);
    return k;
}
