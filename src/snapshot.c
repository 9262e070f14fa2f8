/*
 * snapshot.c — see snapshot.h.
 *
 * Publication: `current` is an atomic pointer holding one reference. Workers
 * compare it with their cached pointer on every txn (one acquire load); only
 * when it changed do they take `swap_lock` to take a reference, which cannot
 * race with the publisher dropping the published reference because the
 * publisher swaps under the same lock. The lock is touched only on changes.
 */
#include "snapshot.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "tls_ctx.h"
#include "util.h"

static _Atomic(struct snapshot *) current;
static _Atomic uint64_t generation;
static pthread_mutex_t swap_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint next_endpoint_id = 1;

/* Endpoint indexes in use, one bit each; endpoints are made on the main
 * thread but freed by their last holder, on any thread. */
static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *index_used;
static size_t index_words;

/* The lowest free index, marked used. */
static uint32_t index_take(void)
{
    pthread_mutex_lock(&index_lock);
    size_t w = 0;
    while (w < index_words && index_used[w] == UINT64_MAX)
        w++;
    if (w == index_words) {
        size_t n = index_words ? index_words * 2 : 1;
        index_used = xrealloc(index_used, n * sizeof(*index_used));
        memset(index_used + index_words, 0, (n - index_words) * sizeof(*index_used));
        index_words = n;
    }
    unsigned bit = (unsigned)__builtin_ctzll(~index_used[w]);
    index_used[w] |= 1ull << bit;
    pthread_mutex_unlock(&index_lock);
    return (uint32_t)(w * 64 + bit);
}

static void index_put(uint32_t i)
{
    pthread_mutex_lock(&index_lock);
    CHECK(i / 64 < index_words && (index_used[i / 64] & (1ull << (i % 64))));
    index_used[i / 64] &= ~(1ull << (i % 64));
    pthread_mutex_unlock(&index_lock);
}

static struct endpoint *endpoint_new(const char *version,
                                     const struct config_endpoint *ce)
{
    struct endpoint *ep = xcalloc(1, sizeof(*ep));
    ep->magic = ENDPOINT_MAGIC;
    atomic_init(&ep->refs, 1);
    ep->id = atomic_fetch_add(&next_endpoint_id, 1);
    ep->index = index_take();
    ep->version = xstrdup(version);
    ep->address = xstrdup(ce->address);
    ep->sa = ce->sa;
    ep->sa_len = ce->sa_len;
    atomic_init(&ep->healthy, true);
    atomic_init(&ep->last_check_status, 0);
    return ep;
}

void endpoint_ref(struct endpoint *ep)
{
    atomic_fetch_add_explicit(&ep->refs, 1, memory_order_relaxed);
}

void endpoint_unref(struct endpoint *ep)
{
    if (!ep)
        return;
    CHECK(ep->magic == ENDPOINT_MAGIC);
    if (atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Idle pools hold references, so no pool can still hold a conn to ep,
     * and its index is free to name another endpoint. */
    index_put(ep->index);
    ep->magic = 0;
    free(ep->version);
    free(ep->address);
    free(ep);
}

bool endpoint_is_available(const struct endpoint *ep, uint64_t now_ms)
{
    if (!atomic_load_explicit(&ep->healthy, memory_order_relaxed))
        return false;
    uint64_t until =
        atomic_load_explicit(&ep->ejected_until_ms, memory_order_relaxed);
    return until == 0 || until <= now_ms;
}

uint64_t endpoint_inflight(const struct endpoint *ep)
{
    uint64_t n = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++)
        n += atomic_load_explicit(&ep->slots[i].inflight, memory_order_relaxed);
    return n;
}

uint64_t endpoint_requests(const struct endpoint *ep, int status_class)
{
    uint64_t n = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++)
        n += atomic_load_explicit(&ep->slots[i].requests[status_class],
                                  memory_order_relaxed);
    return n;
}

/* The endpoint of prev with this version and address, or NULL. */
static struct endpoint *find_prev(const struct snapshot *prev,
                                  const char *version, const char *address)
{
    if (!prev)
        return NULL;
    for (size_t v = 0; v < prev->n_versions; v++) {
        const struct snap_version *sv = &prev->versions[v];
        if (strcmp(sv->name, version) != 0)
            continue;
        for (size_t i = 0; i < sv->n_eps; i++)
            if (strcmp(sv->eps[i].ep->address, address) == 0)
                return sv->eps[i].ep;
    }
    return NULL;
}

static bool has_address(const struct snap_version *sv, const char *address)
{
    for (size_t i = 0; i < sv->n_eps; i++)
        if (strcmp(sv->eps[i].ep->address, address) == 0)
            return true;
    return false;
}

static char *lowercase_dup(const char *s, size_t *len)
{
    char *p = xstrdup(s);
    for (char *q = p; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    *len = strlen(p);
    return p;
}

struct snapshot *snapshot_new(struct config *cfg, const struct snapshot *prev,
                              const struct discovery_set *found, size_t n_found)
{
    struct snapshot *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->n_versions = cfg->n_versions;
    s->versions = xcalloc(cfg->n_versions, sizeof(*s->versions));
    uint32_t lo = 0;
    for (size_t v = 0; v < cfg->n_versions; v++) {
        const struct config_version *cv = &cfg->versions[v];
        struct snap_version *sv = &s->versions[v];
        sv->name = cv->name;
        sv->split_bp = cfg->split_bp[v];
        /* Fixed bucket ranges in version order: a version's range only grows
         * at its edge shared with its neighbour as its share grows, so for
         * the usual two-version canary users only ever move onto the
         * version that grows. */
        sv->sticky_lo = lo;
        lo += sv->split_bp;
        sv->sticky_hi = lo;
        sv->fallback = cv->fallback ? config_version_index(cfg, cv->fallback) : -1;
        const struct discovery_set *ds =
            cv->discover ? discovery_sets_find(found, n_found, cv->name) : NULL;
        const struct config_endpoint *disc = ds ? ds->eps : NULL;
        size_t n_disc = ds ? ds->n_eps : 0;
        sv->eps = xcalloc(cv->n_endpoints + n_disc, sizeof(*sv->eps));
        for (size_t i = 0; i < cv->n_endpoints + n_disc; i++) {
            const struct config_endpoint *ce =
                i < cv->n_endpoints ? &cv->endpoints[i] : &disc[i - cv->n_endpoints];
            if (i >= cv->n_endpoints && has_address(sv, ce->address))
                continue; /* configured explicitly as well */
            struct endpoint *ep = find_prev(prev, cv->name, ce->address);
            if (ep) {
                endpoint_ref(ep);
            } else {
                ep = endpoint_new(cv->name, ce);
                /* health.c's rule: an endpoint appearing in a running,
                 * checked version takes traffic after its first pass. */
                if (prev && cv->health.enabled)
                    atomic_store(&ep->healthy, false);
            }
            struct snap_endpoint *se = &sv->eps[sv->n_eps++];
            se->ep = ep;
            se->weight = ce->weight ? ce->weight : 1;
            se->draining = ce->draining;
        }
    }
    s->n_rules = cfg->n_rules;
    s->rules = xcalloc(cfg->n_rules, sizeof(*s->rules));
    for (size_t r = 0; r < cfg->n_rules; r++) {
        const struct config_rule *cr = &cfg->rules[r];
        struct snap_rule *sr = &s->rules[r];
        sr->match = cr->match;
        sr->name_lc = lowercase_dup(cr->name, &sr->name_len);
        sr->value = cr->value;
        sr->value_len = cr->value ? strlen(cr->value) : 0;
        sr->version = config_version_index(cfg, cr->version);
        CHECK(sr->version >= 0);
    }
    if (cfg->sticky.kind != STICKY_NONE)
        s->sticky_name_lc = lowercase_dup(cfg->sticky.name, &s->sticky_name_len);
    return s;
}

static void snapshot_free(struct snapshot *s)
{
    for (size_t v = 0; v < s->n_versions; v++) {
        for (size_t i = 0; i < s->versions[v].n_eps; i++)
            endpoint_unref(s->versions[v].eps[i].ep);
        free(s->versions[v].eps);
    }
    free(s->versions);
    for (size_t r = 0; r < s->n_rules; r++)
        free(s->rules[r].name_lc);
    free(s->rules);
    free(s->sticky_name_lc);
    tls_set_unref(s->tls);
    config_free(s->cfg);
    free(s);
}

void snapshot_ref(struct snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void snapshot_unref(struct snapshot *s)
{
    if (!s)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

static bool names_endpoint(const struct snapshot *s, const struct endpoint *ep)
{
    for (size_t v = 0; v < s->n_versions; v++)
        for (size_t i = 0; i < s->versions[v].n_eps; i++)
            if (s->versions[v].eps[i].ep == ep)
                return true;
    return false;
}

void snapshot_publish(struct snapshot *s)
{
    s->generation = atomic_load(&generation) + 1;
    /* Only the main thread publishes, so `current` is stable here. Mark the
     * endpoints s drops as retired before s becomes visible: a worker that
     * sees s must also see them retired, or it would keep their idle conns. */
    struct snapshot *old = atomic_load(&current);
    if (old) {
        for (size_t v = 0; v < old->n_versions; v++)
            for (size_t i = 0; i < old->versions[v].n_eps; i++) {
                struct endpoint *ep = old->versions[v].eps[i].ep;
                if (!names_endpoint(s, ep))
                    atomic_store(&ep->retired, true);
            }
    }
    pthread_mutex_lock(&swap_lock);
    atomic_store_explicit(&current, s, memory_order_release);
    atomic_store(&generation, s->generation);
    pthread_mutex_unlock(&swap_lock);
    snapshot_unref(old);
}

struct snapshot *snapshot_acquire(void)
{
    pthread_mutex_lock(&swap_lock);
    struct snapshot *s = atomic_load(&current);
    if (s)
        snapshot_ref(s);
    pthread_mutex_unlock(&swap_lock);
    return s;
}

bool snapshot_is_current(const struct snapshot *s)
{
    return atomic_load_explicit(&current, memory_order_acquire) == s;
}

uint64_t snapshot_generation(void)
{
    return atomic_load(&generation);
}

void snapshot_shutdown(void)
{
    pthread_mutex_lock(&swap_lock);
    struct snapshot *old = atomic_load(&current);
    atomic_store(&current, NULL);
    pthread_mutex_unlock(&swap_lock);
    snapshot_unref(old);
}
