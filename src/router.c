/*
 * router.c — see router.h. Order of decisions: rules (first match wins),
 * then the sticky key's bucket, then the per-worker SWRR over the split.
 */
#include "router.h"

#include <string.h>
#include <strings.h>

void router_state_init(struct router_state *st, const struct snapshot *s)
{
    memset(st, 0, sizeof(*st));
    st->snap = s;
}

uint32_t router_bucket(const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return (uint32_t)(h % STICKY_BUCKETS);
}

const char *router_reason_name(enum route_reason r)
{
    switch (r) {
    case ROUTE_R_SPLIT:
        return "split";
    case ROUTE_R_RULE:
        return "rule";
    case ROUTE_R_STICKY:
        return "sticky";
    case ROUTE_R_NONE:
        break;
    }
    return "none";
}

static const struct router_header *find_header(const struct router_request *req,
                                               const char *name_lc, size_t len)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct router_header *h = &req->headers[i];
        if (h->name.len == len && strncasecmp(h->name.p, name_lc, len) == 0)
            return h;
    }
    return NULL;
}

/*
 * Find cookie `name` in every Cookie header (RFC 6265 §5.4: "a=b; c=d").
 * Returns true and sets *val when present.
 */
static bool find_cookie(const struct router_request *req, const char *name,
                        size_t name_len, struct strview *val)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct router_header *h = &req->headers[i];
        if (!util_sv_ieq(h->name, "cookie"))
            continue;
        const char *p = h->value.p, *end = p + h->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            const char *semi = memchr(p, ';', (size_t)(end - p));
            if (!semi)
                semi = end;
            if (eq && eq < semi) {
                size_t nlen = (size_t)(eq - p);
                /* Cookie names are case-sensitive (RFC 6265 §5.3 step 11 keeps
                 * them as sent); match exactly. */
                if (nlen == name_len && memcmp(p, name, nlen) == 0) {
                    const char *v = eq + 1, *ve = semi;
                    if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
                        v++;
                        ve--;
                    }
                    val->p = v;
                    val->len = (size_t)(ve - v);
                    return true;
                }
            }
            p = semi;
        }
    }
    return false;
}

static bool rule_matches(const struct snapshot *s, const struct snap_rule *r,
                         const struct router_request *req)
{
    if (r->match == RULE_M_COOKIE_VALUE) {
        struct strview v;
        /* Cookie names keep their case: use the configured spelling. */
        const struct config_rule *cr = &s->cfg->rules[r - s->rules];
        return find_cookie(req, cr->name, strlen(cr->name), &v) &&
               v.len == r->value_len && memcmp(v.p, r->value, v.len) == 0;
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct router_header *h = &req->headers[i];
        if (h->name.len != r->name_len ||
            strncasecmp(h->name.p, r->name_lc, r->name_len) != 0)
            continue;
        if (r->match == RULE_M_HEADER_PRESENT)
            return true;
        if (h->value.len == r->value_len &&
            memcmp(h->value.p, r->value, r->value_len) == 0)
            return true;
    }
    return false;
}

static bool sticky_key(const struct snapshot *s, const struct router_request *req,
                       struct strview *key)
{
    const struct config_sticky *sk = &s->cfg->sticky;
    if (sk->kind == STICKY_HEADER) {
        const struct router_header *h =
            find_header(req, s->sticky_name_lc, s->sticky_name_len);
        if (!h || h->value.len == 0)
            return false;
        *key = h->value;
        return true;
    }
    if (sk->kind == STICKY_COOKIE)
        return find_cookie(req, sk->name, strlen(sk->name), key) && key->len > 0;
    return false;
}

void router_pick_key(const struct snapshot *s, const char *key, size_t len,
                     struct route_decision *out)
{
    uint32_t b = router_bucket(key, len);
    out->rule = -1;
    out->bucket = (int32_t)b;
    out->version = -1;
    out->reason = ROUTE_R_NONE;
    for (size_t v = 0; v < s->n_versions; v++) {
        if (b >= s->versions[v].sticky_lo && b < s->versions[v].sticky_hi) {
            out->version = (int)v;
            out->reason = ROUTE_R_STICKY;
            return;
        }
    }
}

/* Smooth weighted round robin (nginx): add each weight, pick the largest,
 * subtract the total from it. Exact over every window of the total. */
static int split_swrr(const struct snapshot *s, struct router_state *st)
{
    int best = -1;
    int64_t total = 0;
    for (size_t v = 0; v < s->n_versions; v++) {
        int64_t w = s->versions[v].split_bp;
        if (w == 0)
            continue;
        total += w;
        st->cw[v] += w;
        if (best < 0 || st->cw[v] > st->cw[best])
            best = (int)v;
    }
    if (best >= 0)
        st->cw[best] -= total;
    return best;
}

static int split_largest(const struct snapshot *s)
{
    int best = -1;
    for (size_t v = 0; v < s->n_versions; v++)
        if (s->versions[v].split_bp > 0 &&
            (best < 0 || s->versions[v].split_bp > s->versions[best].split_bp))
            best = (int)v;
    return best;
}

void router_pick(const struct snapshot *s, struct router_state *st,
                 const struct router_request *req, struct route_decision *out)
{
    out->rule = -1;
    out->bucket = -1;
    for (size_t r = 0; r < s->n_rules; r++) {
        if (rule_matches(s, &s->rules[r], req)) {
            out->version = s->rules[r].version;
            out->reason = ROUTE_R_RULE;
            out->rule = (int)r;
            return;
        }
    }
    struct strview key;
    if (s->cfg->sticky.kind != STICKY_NONE && sticky_key(s, req, &key)) {
        router_pick_key(s, key.p, key.len, out);
        if (out->version >= 0)
            return;
    }
    out->version = st ? split_swrr(s, st) : split_largest(s);
    out->reason = out->version >= 0 ? ROUTE_R_SPLIT : ROUTE_R_NONE;
}
