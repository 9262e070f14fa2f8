/*
 * balancer.c — see balancer.h. nginx's smooth weighted round robin over the
 * endpoints available now; unavailable ones keep their current weight
 * untouched so they rejoin the rotation smoothly.
 */
#include "balancer.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void balancer_state_init(struct balancer_state *st, const struct snapshot *s)
{
    memset(st, 0, sizeof(*st));
    st->snap = s;
    for (size_t v = 0; v < s->n_versions; v++)
        st->cw[v] = xcalloc(s->versions[v].n_eps ? s->versions[v].n_eps : 1,
                            sizeof(int64_t));
}

void balancer_state_dispose(struct balancer_state *st)
{
    for (size_t v = 0; v < CONFIG_MAX_VERSIONS; v++)
        free(st->cw[v]);
    memset(st, 0, sizeof(*st));
}

static bool can_take(const struct snap_endpoint *se, const struct endpoint *exclude,
                     uint64_t now_ms)
{
    return !se->draining && se->ep != exclude && endpoint_is_available(se->ep, now_ms);
}

/*
 * A pick in a snapshot the state was not armed for: a txn that began before
 * the worker adopted a newer snapshot and now retries (or falls back) in its
 * own. The state's arrays are sized for the other snapshot, so they are not
 * touched; a per-thread counter walks the available endpoints by weight
 * instead (weighted, not smooth; rare enough that it does not matter).
 */
static int pick_stateless(const struct snap_version *sv, const struct endpoint *exclude,
                          uint64_t now_ms)
{
    static _Thread_local uint64_t turn;
    int64_t total = 0;
    for (size_t i = 0; i < sv->n_eps; i++)
        if (can_take(&sv->eps[i], exclude, now_ms))
            total += sv->eps[i].weight;
    if (total <= 0)
        return -1;
    int64_t at = (int64_t)(turn++ % (uint64_t)total);
    for (size_t i = 0; i < sv->n_eps; i++) {
        if (!can_take(&sv->eps[i], exclude, now_ms))
            continue;
        at -= sv->eps[i].weight;
        if (at < 0)
            return (int)i;
    }
    return -1;
}

int balancer_pick(const struct snapshot *s, struct balancer_state *st, int v,
                  const struct endpoint *exclude, uint64_t now_ms)
{
    if (v < 0 || (size_t)v >= s->n_versions)
        return -1;
    const struct snap_version *sv = &s->versions[v];
    if (__builtin_expect(st->snap != s, 0))
        return pick_stateless(sv, exclude, now_ms);
    int64_t *cw = st->cw[v];
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < sv->n_eps; i++) {
        const struct snap_endpoint *se = &sv->eps[i];
        if (!can_take(se, exclude, now_ms))
            continue;
        total += se->weight;
        cw[i] += se->weight;
        if (best < 0 || cw[i] > cw[best])
            best = (int)i;
    }
    if (best >= 0)
        cw[best] -= total;
    return best;
}
