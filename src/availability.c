/*
 * availability.c — see availability.h. Counting walks the candidate
 * version's endpoints (configured ones as next has them, then the
 * discovered ones the published snapshot holds) and looks each up by
 * address in the snapshot's version of the same name for its health. The
 * order of reasons for one endpoint is draining, not checked yet,
 * unhealthy, ejected: the first that applies is the one reported. A rule
 * is judged like a share: one the change adds (no rule of the running
 * config has its match, name, value and version) must point at a version
 * that can take requests.
 */
#include "availability.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "snapshot.h"

static const struct snap_version *snap_version_named(const struct snapshot *s,
                                                     const char *name)
{
    for (size_t v = 0; s && v < s->n_versions; v++)
        if (strcmp(s->versions[v].name, name) == 0)
            return &s->versions[v];
    return NULL;
}

static const struct endpoint *snap_endpoint_at(const struct snap_version *sv,
                                               const char *address)
{
    for (size_t i = 0; sv && i < sv->n_eps; i++)
        if (strcmp(sv->eps[i].ep->address, address) == 0)
            return sv->eps[i].ep;
    return NULL;
}

/* One endpoint into c. ep: its object in the snapshot, NULL when new. */
static void count_one(struct availability_count *c, const struct endpoint *ep, bool draining,
                      bool checked_version, uint64_t now_ms)
{
    c->total++;
    if (draining)
        c->draining++;
    else if (!ep && checked_version)
        c->unchecked++;
    else if (!ep || endpoint_is_available(ep, now_ms))
        c->available++;
    else if (!atomic_load_explicit(&ep->healthy, memory_order_relaxed))
        c->unhealthy++;
    else
        c->ejected++;
}

void availability_count_version(const struct config *old, const struct config *next,
                                size_t vi, const struct snapshot *s, uint64_t now_ms,
                                struct availability_count *c)
{
    memset(c, 0, sizeof(*c));
    const struct config_version *nv = &next->versions[vi];
    const struct snap_version *sv = snap_version_named(s, nv->name);
    int oi = old ? config_version_index(old, nv->name) : -1;
    const struct config_version *ov = oi >= 0 ? &old->versions[oi] : NULL;
    for (size_t i = 0; i < nv->n_endpoints; i++) {
        const struct config_endpoint *ce = &nv->endpoints[i];
        count_one(c, snap_endpoint_at(sv, ce->address), ce->draining, nv->health.enabled,
                  now_ms);
    }
    if (!nv->discover || !sv)
        return;
    /* The snapshot's endpoints past old's configured ones were discovered
     * (snapshot_new merges them after the configured ones). */
    size_t first = ov ? ov->n_endpoints : 0;
    for (size_t i = first; i < sv->n_eps; i++) {
        const struct endpoint *ep = sv->eps[i].ep;
        bool configured = false;
        for (size_t k = 0; k < nv->n_endpoints; k++)
            if (strcmp(nv->endpoints[k].address, ep->address) == 0)
                configured = true;
        if (!configured)
            count_one(c, ep, sv->eps[i].draining, nv->health.enabled, now_ms);
    }
}

bool availability_describe(const struct availability_count *c, const char *discover,
                           char *buf, size_t buflen)
{
    buf[0] = '\0';
    if (c->available > 0)
        return true;
    if (c->total == 0) {
        if (discover)
            snprintf(buf, buflen, "has no endpoint (DNS discovery of %s has found none)",
                     discover);
        else
            snprintf(buf, buflen, "has no endpoint");
        return false;
    }
    const struct {
        size_t n;
        const char *what;
    } parts[] = {
        {c->draining, "draining"},
        {c->unchecked, "not checked yet (new endpoints wait for their first passing "
                       "health check)"},
        {c->unhealthy, "unhealthy (failing the active health check)"},
        {c->ejected, "ejected (passive health: failed connects or 5xx in a row)"},
    };
    size_t kinds = 0;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++)
        kinds += parts[i].n > 0;
    snprintf(buf, buflen, "has no available endpoint:");
    bool first = true;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        if (!parts[i].n)
            continue;
        if (kinds == 1 && c->total == 1)
            util_append(buf, buflen, " ", "its only endpoint is %s", parts[i].what);
        else if (kinds == 1)
            util_append(buf, buflen, " ", "all %zu are %s", parts[i].n, parts[i].what);
        else
            util_append(buf, buflen, first ? " " : ", ", "%zu %s", parts[i].n, parts[i].what);
        first = false;
    }
    return false;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Does old hold this rule (same match, name, value and version)? */
static bool old_has_rule(const struct config *old, const struct config_rule *r)
{
    for (size_t i = 0; old && i < old->n_rules; i++) {
        const struct config_rule *o = &old->rules[i];
        if (o->match == r->match && same_str(o->name, r->name) && same_str(o->value, r->value) &&
            same_str(o->version, r->version))
            return true;
    }
    return false;
}

/* A rule next adds that sends its requests to a version that cannot take
 * them: as bad as a share for it (add-rule is a change like split). */
static void check_new_rules(const struct config *old, const struct config *next,
                            const struct snapshot *s, uint64_t now_ms, char *err, size_t errlen)
{
    for (size_t i = 0; i < next->n_rules; i++) {
        const struct config_rule *r = &next->rules[i];
        int v = config_version_index(next, r->version);
        if (v < 0 || old_has_rule(old, r))
            continue;
        struct availability_count c;
        availability_count_version(old, next, (size_t)v, s, now_ms, &c);
        char why[384];
        if (availability_describe(&c, next->versions[v].discover, why, sizeof(why)))
            continue;
        const char *kind = r->match == RULE_M_COOKIE_VALUE ? "cookie" : "header";
        util_append(err, errlen, "; ", "rule %zu (%s %s%s%s) would send its requests to version "
                                       "%s, which %s",
                    i, kind, r->name, r->value ? "=" : "",
                    r->value ? r->value : "", r->version, why);
    }
}

int availability_check(const struct config *old, const struct config *next,
                       const struct snapshot *s, uint64_t now_ms, char *err, size_t errlen)
{
    err[0] = '\0';
    for (size_t v = 0; v < next->n_versions; v++) {
        const struct config_version *nv = &next->versions[v];
        int oi = old ? config_version_index(old, nv->name) : -1;
        uint32_t before = oi >= 0 ? old->split_bp[oi] : 0;
        uint32_t after = next->split_bp[v];
        if (after <= before)
            continue; /* shrinking a broken version's share only helps */
        struct availability_count c;
        availability_count_version(old, next, v, s, now_ms, &c);
        char why[384];
        if (availability_describe(&c, nv->discover, why, sizeof(why)))
            continue;
        char pct[16];
        util_format_bp(after, pct, sizeof(pct));
        char then[160];
        if (nv->fallback)
            snprintf(then, sizeof(then), "its requests would go to its fallback %s",
                     nv->fallback);
        else
            snprintf(then, sizeof(then), "its requests would get 503");
        util_append(err, errlen, "; ", "version %s would get %s %% but %s, so %s", nv->name,
                    pct, why, then);
    }
    check_new_rules(old, next, s, now_ms, err, errlen);
    return err[0] ? -1 : 0;
}

int availability_check_now(const struct config *old, const struct config *next, char *err,
                           size_t errlen)
{
    struct snapshot *s = snapshot_acquire();
    int rc = availability_check(old, next, s, util_now_ms(), err, errlen);
    snapshot_unref(s);
    return rc;
}
