/*
 * discovery.c — endpoints found by DNS (see discovery.h). Main thread only.
 *
 * One set (struct dset) per version with `discover: NAME:PORT`. A round
 * sends an A and an AAAA query (libevent's evdns on the main base, to the
 * `resolvers`, else the nameservers, search list and options of
 * /etc/resolv.conf) and, when both have answered, merges them per address
 * family: an answer, even an empty one (NXDOMAIN, no records), replaces what
 * was known of that family; a failure (timeout, SERVFAIL, REFUSED...) keeps
 * the family's last known addresses. The resulting "ip:port" endpoints,
 * sorted, are compared with the installed set; on a change the new set is
 * installed and the creator's on_change callback gets every set (it is the
 * creator's business what follows: in weir, server.c hands them to
 * runtime.c, which publishes a snapshot built from them). The next round
 * starts discover_interval after this one started; TTLs are not used (the
 * interval is the operator's bound on staleness, like nginx's `resolve
 * valid=`).
 *
 * Lookups in flight are never cancelled: libevent runs a cancelled
 * request's callback later, so its argument has to outlive the call anyway.
 * A set that goes away orphans its lookups, whose callbacks then only free
 * them. When the resolvers change, the old evdns base is freed failing its
 * requests, so every lookup still gets exactly one callback; at stop the
 * base is freed without callbacks (the loop does not run again) and the
 * remaining lookups are freed here.
 *
 * Logging: a failing round is logged once, until a round succeeds again; an
 * empty answer is logged when the set becomes empty; set changes are
 * described in on_change's `why` ("discovery: v2 +1 -0 (...)"), for the
 * consumer to log.
 *
 * Knows no consumer: not snapshots, not the running config, not health
 * checks of the discovered endpoints (they follow the published snapshot).
 */
#include "discovery.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "log.h"
#include "util.h"

#define DSET_MAGIC 0x44534554u   /* "DSET" */
#define LOOKUP_MAGIC 0x4c4b5550u /* "LKUP" */
#define DNS_TIMEOUT_S "2"        /* per attempt (resolv.conf options override) */
#define DNS_ATTEMPTS "2"

enum { FAM_A = 0,
       FAM_AAAA = 1,
       FAM_N = 2 };

/* What one query of a round produced. */
enum answer_kind {
    ANSWER_NONE = 0, /* not answered yet */
    ANSWER_OK,       /* addresses (possibly none: NXDOMAIN / no records) */
    ANSWER_FAILED,   /* no usable answer: keep what was known */
};

struct addr_list {
    struct sockaddr_storage *v; /* owned */
    size_t n;
};

struct dset {
    uint32_t magic;
    struct discovery *owner;    /* borrowed: the discovery this set belongs to */
    struct discovery_set found; /* owned: version name and installed set,
                                 * sorted by address */
    char *discover;             /* owned: "name:port" as configured */
    char *host;                 /* owned: the name */
    uint16_t port;
    uint32_t interval_ms;
    struct event *timer;            /* owned: starts the next round */
    unsigned pending;               /* lookups of the running round still out */
    uint64_t started_ms;            /* monotonic start of the running/last round */
    struct addr_list known[FAM_N];  /* last known answer per family */
    enum answer_kind kind[FAM_N];   /* this round */
    struct addr_list answer[FAM_N]; /* this round's addresses */
    char failure[FAM_N][48];        /* this round's failure reasons */
    bool failing;                   /* a failure was logged; no good round since */
    bool empty_logged;              /* the empty set was logged */
    struct dset *next;              /* owned list link */
};

struct lookup {
    uint32_t magic;
    struct discovery *owner; /* borrowed: whose list holds the lookup */
    struct dset *set;        /* borrowed; NULL once orphaned */
    int fam;
    struct lookup *next; /* owned list of lookups awaiting their callback */
};

struct discovery {
    struct event_base *base;       /* borrowed */
    discovery_change_cb on_change; /* borrowed function */
    void *arg;                     /* borrowed: on_change's argument */
    struct evdns_base *dns;        /* owned */
    char *resolvers_key;           /* owned: the resolvers `dns` was made for */
    struct dset *sets;             /* owned list */
    size_t n_sets;
    struct lookup *lookups; /* owned list */
};

static void on_round_timer(evutil_socket_t fd, short what, void *arg);
static void on_dns_answer(int result, char type, int count, int ttl,
                          void *addresses, void *arg);

/* ---- small helpers ---------------------------------------------------- */

static void addr_list_dispose(struct addr_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void eps_free(struct config_endpoint *eps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(eps[i].address);
    free(eps);
}

static int cmp_endpoint(const void *a, const void *b)
{
    return strcmp(((const struct config_endpoint *)a)->address,
                  ((const struct config_endpoint *)b)->address);
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Orphan every lookup of d (or of every set of dy when d is NULL). */
static void orphan_lookups(struct discovery *dy, const struct dset *d)
{
    for (struct lookup *l = dy->lookups; l; l = l->next)
        if (!d || l->set == d)
            l->set = NULL;
}

static void lookup_unlink(struct lookup *l)
{
    for (struct lookup **pp = &l->owner->lookups; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            return;
        }
    CHECK(!"lookup not in the list");
}

/* ---- the resolver ------------------------------------------------------ */

static char *resolvers_key(const struct config *cfg)
{
    size_t len = 1;
    for (size_t i = 0; i < cfg->n_resolvers; i++)
        len += strlen(cfg->resolvers[i]) + 1;
    char *key = xcalloc(1, len);
    size_t off = 0;
    for (size_t i = 0; i < cfg->n_resolvers; i++)
        off += (size_t)snprintf(key + off, len - off, "%s%s", i ? "," : "",
                                cfg->resolvers[i]);
    return key;
}

/* evdns's own messages ("Nameserver ... has failed") go to the debug log:
 * round_done() logs failures and recoveries once, with the name. */
static void on_evdns_log(int is_warning, const char *msg)
{
    log_debug("evdns%s: %s", is_warning ? " warning" : "", msg);
}

static struct evdns_base *dns_new(struct event_base *base, const struct config *cfg)
{
    evdns_set_log_fn(on_evdns_log);
    struct evdns_base *dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!dns) {
        log_error("discovery: cannot create a DNS resolver");
        return NULL;
    }
    evdns_base_set_option(dns, "timeout:", DNS_TIMEOUT_S);
    evdns_base_set_option(dns, "attempts:", DNS_ATTEMPTS);
    if (cfg->n_resolvers) {
        for (size_t i = 0; i < cfg->n_resolvers; i++)
            if (evdns_base_nameserver_ip_add(dns, cfg->resolvers[i]) != 0)
                log_error("discovery: resolver %s cannot be used", cfg->resolvers[i]);
    } else {
        int r = evdns_base_resolv_conf_parse(
            dns, DNS_OPTION_NAMESERVERS | DNS_OPTION_SEARCH | DNS_OPTION_MISC,
            "/etc/resolv.conf");
        if (r != 0)
            log_warn("discovery: /etc/resolv.conf %s; asking 127.0.0.1:53",
                     r == 1 ? "cannot be read" : "names no usable nameserver");
    }
    return dns;
}

/* ---- rounds ------------------------------------------------------------ */

static void round_done(struct dset *d);

static void round_start(struct dset *d)
{
    struct discovery *dy = d->owner;
    if (d->pending || !dy->dns)
        return;
    d->started_ms = util_now_ms();
    for (int f = 0; f < FAM_N; f++) {
        d->kind[f] = ANSWER_NONE;
        addr_list_dispose(&d->answer[f]);
        d->failure[f][0] = '\0';
    }
    for (int f = 0; f < FAM_N; f++) {
        struct lookup *l = xcalloc(1, sizeof(*l));
        l->magic = LOOKUP_MAGIC;
        l->owner = dy;
        l->set = d;
        l->fam = f;
        l->next = dy->lookups;
        dy->lookups = l;
        d->pending++;
        struct evdns_request *r =
            f == FAM_A ? evdns_base_resolve_ipv4(dy->dns, d->host, 0, on_dns_answer, l)
                       : evdns_base_resolve_ipv6(dy->dns, d->host, 0, on_dns_answer, l);
        if (!r) {
            /* Not sent, and no callback will come. */
            lookup_unlink(l);
            l->magic = 0;
            free(l);
            d->pending--;
            d->kind[f] = ANSWER_FAILED;
            snprintf(d->failure[f], sizeof(d->failure[f]), "query not sent");
        }
    }
    if (d->pending == 0)
        round_done(d);
}

static void on_round_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dset *d = arg;
    CHECK(d->magic == DSET_MAGIC);
    round_start(d);
}

static void on_dns_answer(int result, char type, int count, int ttl,
                          void *addresses, void *arg)
{
    (void)ttl;
    struct lookup *l = arg;
    CHECK(l->magic == LOOKUP_MAGIC);
    lookup_unlink(l);
    struct dset *d = l->set;
    int f = l->fam;
    l->magic = 0;
    free(l);
    if (!d)
        return; /* orphaned: its set went away or was reset */
    CHECK(d->magic == DSET_MAGIC && d->pending > 0);
    char want = f == FAM_A ? DNS_IPv4_A : DNS_IPv6_AAAA;
    if (result == DNS_ERR_NONE && count > 0 && type == want && addresses) {
        struct addr_list *a = &d->answer[f];
        a->v = xcalloc((size_t)count, sizeof(*a->v));
        a->n = (size_t)count;
        for (int i = 0; i < count; i++) {
            if (f == FAM_A) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&a->v[i];
                sin->sin_family = AF_INET;
                sin->sin_port = htons(d->port);
                memcpy(&sin->sin_addr, (const char *)addresses + 4 * (size_t)i, 4);
            } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->v[i];
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(d->port);
                memcpy(&sin6->sin6_addr, (const char *)addresses + 16 * (size_t)i, 16);
            }
        }
        d->kind[f] = ANSWER_OK;
    } else if (result == DNS_ERR_NONE || result == DNS_ERR_NOTEXIST ||
               result == DNS_ERR_NODATA) {
        d->kind[f] = ANSWER_OK; /* an authoritative "none" */
    } else {
        d->kind[f] = ANSWER_FAILED;
        snprintf(d->failure[f], sizeof(d->failure[f]), "%s", evdns_err_to_string(result));
    }
    if (--d->pending == 0)
        round_done(d);
}

/* Call the creator's on_change with every set. */
static void report(struct discovery *dy, const char *why)
{
    struct discovery_set *sets = xcalloc(dy->n_sets ? dy->n_sets : 1, sizeof(*sets));
    size_t n = 0;
    for (const struct dset *d = dy->sets; d; d = d->next)
        sets[n++] = d->found; /* views: discovery keeps owning them */
    CHECK(n == dy->n_sets);
    dy->on_change(sets, n, why, dy->arg);
    free(sets);
}

/* Install a new endpoint set (owned) if it differs; report the change. */
static void install(struct dset *d, struct config_endpoint *eps, size_t n)
{
    struct discovery_set *cur = &d->found;
    struct discovery_set next = {cur->version, eps, n};
    if (discovery_set_equal(cur, &next)) {
        eps_free(eps, n);
        return;
    }
    /* Both sorted: count what came and went in one merge walk. */
    size_t added = 0, removed = 0, i = 0, j = 0;
    while (i < n || j < cur->n_eps) {
        int c = i == n ? 1 : j == cur->n_eps ? -1
                                             : strcmp(eps[i].address, cur->eps[j].address);
        if (c < 0) {
            added++;
            i++;
        } else if (c > 0) {
            removed++;
            j++;
        } else {
            i++;
            j++;
        }
    }
    eps_free(cur->eps, cur->n_eps);
    cur->eps = eps;
    cur->n_eps = n;
    char why[160];
    snprintf(why, sizeof(why), "discovery: %s +%zu -%zu (%s: %zu endpoint%s)",
             cur->version, added, removed, d->host, n, n == 1 ? "" : "s");
    report(d->owner, why);
}

static void round_done(struct dset *d)
{
    char failed[128] = "";
    size_t off = 0;
    for (int f = 0; f < FAM_N; f++) {
        if (d->kind[f] == ANSWER_OK) {
            addr_list_dispose(&d->known[f]);
            d->known[f] = d->answer[f];
            d->answer[f] = (struct addr_list){NULL, 0};
        } else {
            off += (size_t)snprintf(failed + off, sizeof(failed) - off, "%s%s: %s",
                                    off ? ", " : "", f == FAM_A ? "A" : "AAAA",
                                    d->failure[f][0] ? d->failure[f] : "no answer");
            if (off >= sizeof(failed))
                off = sizeof(failed) - 1;
        }
    }
    size_t n = d->known[FAM_A].n + d->known[FAM_AAAA].n;
    if (n > CONFIG_MAX_ENDPOINTS)
        n = CONFIG_MAX_ENDPOINTS;
    struct config_endpoint *eps = xcalloc(n ? n : 1, sizeof(*eps));
    size_t k = 0;
    for (int f = 0; f < FAM_N; f++)
        for (size_t i = 0; i < d->known[f].n && k < n; i++) {
            struct config_endpoint *ce = &eps[k++];
            ce->sa = d->known[f].v[i];
            ce->sa_len = f == FAM_A ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6);
            char buf[80];
            util_format_addr((const struct sockaddr *)&ce->sa, buf, sizeof(buf));
            ce->address = xstrdup(buf);
            ce->weight = 1;
        }
    qsort(eps, k, sizeof(*eps), cmp_endpoint);
    size_t u = 0; /* drop duplicates (a server may repeat a record) */
    for (size_t i = 0; i < k; i++) {
        if (u && strcmp(eps[u - 1].address, eps[i].address) == 0) {
            free(eps[i].address);
            continue;
        }
        eps[u++] = eps[i];
    }

    if (failed[0]) {
        if (!d->failing)
            log_warn("discovery %s: lookup of %s failed (%s); keeping the last "
                     "known %zu endpoint%s",
                     d->found.version, d->host, failed,
                     d->found.n_eps, d->found.n_eps == 1 ? "" : "s");
        d->failing = true;
    } else if (d->failing) {
        log_info("discovery %s: %s resolves again", d->found.version, d->host);
        d->failing = false;
    }
    if (u == 0 && !failed[0]) {
        if (!d->empty_logged)
            log_warn("discovery %s: %s has no A or AAAA records; the version has "
                     "no discovered endpoints",
                     d->found.version, d->host);
        d->empty_logged = true;
    } else if (u > 0) {
        d->empty_logged = false;
    }
    install(d, eps, u);

    uint64_t elapsed = util_now_ms() - d->started_ms;
    struct timeval tv = ms_tv(elapsed < d->interval_ms ? d->interval_ms - elapsed : 0);
    evtimer_add(d->timer, &tv);
}

/* ---- sets ------------------------------------------------------------ */

static struct dset *dset_new(struct discovery *dy, const struct config_version *cv)
{
    const char *colon = strrchr(cv->discover, ':');
    CHECK(colon != NULL); /* config validation guarantees name:port */
    struct dset *d = xcalloc(1, sizeof(*d));
    d->magic = DSET_MAGIC;
    d->owner = dy;
    d->found.version = xstrdup(cv->name);
    d->discover = xstrdup(cv->discover);
    d->host = xstrndup(cv->discover, (size_t)(colon - cv->discover));
    d->port = (uint16_t)strtoul(colon + 1, NULL, 10);
    d->interval_ms = cv->discover_interval_ms ? cv->discover_interval_ms : 5000;
    d->timer = evtimer_new(dy->base, on_round_timer, d);
    CHECK(d->timer != NULL);
    log_info("discovery %s: resolving %s every %ums", d->found.version, d->discover,
             d->interval_ms);
    return d;
}

static void dset_free(struct dset *d)
{
    CHECK(d->magic == DSET_MAGIC);
    orphan_lookups(d->owner, d);
    event_free(d->timer);
    for (int f = 0; f < FAM_N; f++) {
        addr_list_dispose(&d->known[f]);
        addr_list_dispose(&d->answer[f]);
    }
    eps_free(d->found.eps, d->found.n_eps);
    free(d->found.version);
    free(d->discover);
    free(d->host);
    d->magic = 0;
    free(d);
}

static struct dset *find_set(const struct discovery *dy, const char *version)
{
    for (struct dset *d = dy->sets; d; d = d->next)
        if (strcmp(d->found.version, version) == 0)
            return d;
    return NULL;
}

struct discovery *discovery_new(struct event_base *base, discovery_change_cb on_change,
                                void *arg)
{
    CHECK(base && on_change);
    struct discovery *dy = xcalloc(1, sizeof(*dy));
    dy->base = base;
    dy->on_change = on_change;
    dy->arg = arg;
    return dy;
}

void discovery_configure(struct discovery *dy, const struct config *cfg)
{
    bool removed_endpoints = false;

    /* Sets: drop those whose version or discover went away or changed. */
    for (struct dset **pp = &dy->sets; *pp;) {
        struct dset *d = *pp;
        int vi = config_version_index(cfg, d->found.version);
        const struct config_version *cv = vi >= 0 ? &cfg->versions[vi] : NULL;
        if (cv && cv->discover && strcmp(cv->discover, d->discover) == 0) {
            d->interval_ms = cv->discover_interval_ms ? cv->discover_interval_ms : 5000;
            pp = &d->next;
            continue;
        }
        /* What the old name found must not stay with the consumer. */
        if (d->found.n_eps)
            removed_endpoints = true;
        log_info("discovery %s: stopped resolving %s", d->found.version, d->discover);
        *pp = d->next;
        dy->n_sets--;
        dset_free(d);
    }

    /* The resolver: new when the resolvers changed. */
    char *key = resolvers_key(cfg);
    bool any = false;
    for (size_t v = 0; v < cfg->n_versions; v++)
        any = any || cfg->versions[v].discover;
    bool restart = false;
    if (dy->dns && (!any || strcmp(key, dy->resolvers_key) != 0)) {
        /* Every request still out gets one (failing) callback: orphan them
         * all and start the rounds again on the new resolver. */
        orphan_lookups(dy, NULL);
        evdns_base_free(dy->dns, 1);
        dy->dns = NULL;
        for (struct dset *d = dy->sets; d; d = d->next)
            d->pending = 0;
        restart = true;
    }
    if (!dy->dns && any)
        dy->dns = dns_new(dy->base, cfg);
    free(dy->resolvers_key);
    dy->resolvers_key = key;

    /* New sets start resolving at once. */
    for (size_t v = 0; v < cfg->n_versions; v++) {
        const struct config_version *cv = &cfg->versions[v];
        if (!cv->discover || find_set(dy, cv->name))
            continue;
        struct dset *d = dset_new(dy, cv);
        d->next = dy->sets;
        dy->sets = d;
        dy->n_sets++;
        round_start(d);
    }
    if (restart)
        for (struct dset *d = dy->sets; d; d = d->next)
            round_start(d);
    if (removed_endpoints)
        report(dy, "discovery: a discover name changed, its old endpoints leave");
}

void discovery_free(struct discovery *dy)
{
    if (!dy)
        return;
    /* The loop does not run again: free the base without callbacks and the
     * lookups that will never get theirs. */
    if (dy->dns) {
        evdns_base_free(dy->dns, 0);
        evdns_set_log_fn(NULL);
    }
    while (dy->lookups) {
        struct lookup *l = dy->lookups;
        dy->lookups = l->next;
        l->magic = 0;
        free(l);
    }
    while (dy->sets) {
        struct dset *d = dy->sets;
        dy->sets = d->next;
        dset_free(d);
    }
    free(dy->resolvers_key);
    free(dy);
}

/* ---- sets as values ----------------------------------------------------- */

const struct discovery_set *discovery_sets_find(const struct discovery_set *sets,
                                                size_t n_sets, const char *version)
{
    for (size_t i = 0; i < n_sets; i++)
        if (strcmp(sets[i].version, version) == 0)
            return &sets[i];
    return NULL;
}

bool discovery_set_equal(const struct discovery_set *a, const struct discovery_set *b)
{
    size_t na = a ? a->n_eps : 0, nb = b ? b->n_eps : 0;
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a->eps[i].address, b->eps[i].address) != 0)
            return false;
    return true;
}

struct discovery_set *discovery_sets_copy(const struct discovery_set *sets, size_t n_sets)
{
    struct discovery_set *c = xcalloc(n_sets ? n_sets : 1, sizeof(*c));
    for (size_t i = 0; i < n_sets; i++) {
        c[i].version = xstrdup(sets[i].version);
        c[i].n_eps = sets[i].n_eps;
        c[i].eps = xcalloc(c[i].n_eps ? c[i].n_eps : 1, sizeof(*c[i].eps));
        for (size_t k = 0; k < c[i].n_eps; k++) {
            c[i].eps[k] = sets[i].eps[k];
            c[i].eps[k].address = xstrdup(sets[i].eps[k].address);
        }
    }
    return c;
}

void discovery_sets_free(struct discovery_set *sets, size_t n_sets)
{
    if (!sets)
        return;
    for (size_t i = 0; i < n_sets; i++) {
        eps_free(sets[i].eps, sets[i].n_eps);
        free(sets[i].version);
    }
    free(sets);
}
