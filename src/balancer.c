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

int balancer_pick(const struct snapshot *s, struct balancer_state *st, int v,
                  const struct endpoint *exclude, uint64_t now_ms)
{
    const struct snap_version *sv = &s->versions[v];
    int64_t *cw = st->cw[v];
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < sv->n_eps; i++) {
        const struct snap_endpoint *se = &sv->eps[i];
        if (se->draining || se->ep == exclude ||
            !endpoint_is_available(se->ep, now_ms))
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
