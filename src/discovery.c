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
 * installed and runtime_refresh() publishes a snapshot, which snapshot_new()
 * builds with discovery_endpoints(). The next round starts discover_interval
 * after this one started; TTLs are not used (the interval is the operator's
 * bound on staleness, like nginx's `resolve valid=`).
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
 * empty answer is logged when the set becomes empty; set changes are logged
 * by runtime_refresh() ("discovery: v2 +1 -0").
 *
 * Does not own: snapshots (snapshot.c), health of the discovered endpoints
 * (health.c, told at once about a change with health_config_changed()).
 */
#include "discovery.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>

#include "health.h"
#include "log.h"
#include "runtime.h"
#include "util.h"

#define DSET_MAGIC 0x44534554u   /* "DSET" */
#define LOOKUP_MAGIC 0x4c4b5550u /* "LKUP" */
#define DNS_TIMEOUT_S "2"        /* per attempt (resolv.conf options override) */
#define DNS_ATTEMPTS "2"

enum { FAM_A = 0, FAM_AAAA = 1, FAM_N = 2 };

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
    char *version;      /* owned */
    char *discover;     /* owned: "name:port" as configured */
    char *host;         /* owned: the name */
    uint16_t port;
    uint32_t interval_ms;
    struct event *timer; /* owned: starts the next round */
    unsigned pending;   /* lookups of the running round still out */
    uint64_t started_ms; /* monotonic start of the running/last round */
    struct addr_list known[FAM_N];    /* last known answer per family */
    enum answer_kind kind[FAM_N];     /* this round */
    struct addr_list answer[FAM_N];   /* this round's addresses */
    char failure[FAM_N][48];          /* this round's failure reasons */
    struct config_endpoint *eps;      /* owned: installed set, sorted by address */
    size_t n_eps;
    bool failing;       /* a failure was logged; no good round since */
    bool empty_logged;  /* the empty set was logged */
    struct dset *next;  /* owned list link */
};

struct lookup {
    uint32_t magic;
    struct dset *set;   /* borrowed; NULL once orphaned */
    int fam;
    struct lookup *next; /* owned list of lookups awaiting their callback */
};

static struct {
    struct event_base *base;  /* borrowed */
    struct evdns_base *dns;   /* owned */
    char *resolvers_key;      /* owned: the resolvers `dns` was made for */
    struct dset *sets;        /* owned list */
    struct lookup *lookups;   /* owned list */
} ds;

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

/* Orphan every lookup of d (or of every set when d is NULL). */
static void orphan_lookups(const struct dset *d)
{
    for (struct lookup *l = ds.lookups; l; l = l->next)
        if (!d || l->set == d)
            l->set = NULL;
}

static void lookup_unlink(struct lookup *l)
{
    for (struct lookup **pp = &ds.lookups; *pp; pp = &(*pp)->next)
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

static struct evdns_base *dns_new(const struct config *cfg)
{
    evdns_set_log_fn(on_evdns_log);
    struct evdns_base *dns = evdns_base_new(ds.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
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
    if (d->pending || !ds.dns)
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
        l->set = d;
        l->fam = f;
        l->next = ds.lookups;
        ds.lookups = l;
        d->pending++;
        struct evdns_request *r =
            f == FAM_A ? evdns_base_resolve_ipv4(ds.dns, d->host, 0, on_dns_answer, l)
                       : evdns_base_resolve_ipv6(ds.dns, d->host, 0, on_dns_answer, l);
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

/* Install a new endpoint set (owned) if it differs; publish the change. */
static void install(struct dset *d, struct config_endpoint *eps, size_t n)
{
    bool same = n == d->n_eps;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(eps[i].address, d->eps[i].address) == 0;
    if (same) {
        eps_free(eps, n);
        return;
    }
    /* Both sorted: count what came and went in one merge walk. */
    size_t added = 0, removed = 0, i = 0, j = 0;
    while (i < n || j < d->n_eps) {
        int c = i == n ? 1 : j == d->n_eps ? -1 : strcmp(eps[i].address, d->eps[j].address);
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
    struct config_endpoint *old = d->eps;
    size_t n_old = d->n_eps;
    d->eps = eps;
    d->n_eps = n;
    char why[160];
    snprintf(why, sizeof(why), "discovery: %s +%zu -%zu (%s: %zu endpoint%s)",
             d->version, added, removed, d->host, n, n == 1 ? "" : "s");
    runtime_refresh(why);
    eps_free(old, n_old);
    health_config_changed();
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
                     "known %zu endpoint%s", d->version, d->host, failed, d->n_eps,
                     d->n_eps == 1 ? "" : "s");
        d->failing = true;
    } else if (d->failing) {
        log_info("discovery %s: %s resolves again", d->version, d->host);
        d->failing = false;
    }
    if (u == 0 && !failed[0]) {
        if (!d->empty_logged)
            log_warn("discovery %s: %s has no A or AAAA records; the version has "
                     "no discovered endpoints", d->version, d->host);
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

static struct dset *dset_new(const struct config_version *cv)
{
    const char *colon = strrchr(cv->discover, ':');
    CHECK(colon != NULL); /* config validation guarantees name:port */
    struct dset *d = xcalloc(1, sizeof(*d));
    d->magic = DSET_MAGIC;
    d->version = xstrdup(cv->name);
    d->discover = xstrdup(cv->discover);
    d->host = xstrndup(cv->discover, (size_t)(colon - cv->discover));
    d->port = (uint16_t)strtoul(colon + 1, NULL, 10);
    d->interval_ms = cv->discover_interval_ms ? cv->discover_interval_ms : 5000;
    d->timer = evtimer_new(ds.base, on_round_timer, d);
    CHECK(d->timer != NULL);
    log_info("discovery %s: resolving %s every %ums", d->version, d->discover,
             d->interval_ms);
    return d;
}

static void dset_free(struct dset *d)
{
    CHECK(d->magic == DSET_MAGIC);
    orphan_lookups(d);
    event_free(d->timer);
    for (int f = 0; f < FAM_N; f++) {
        addr_list_dispose(&d->known[f]);
        addr_list_dispose(&d->answer[f]);
    }
    eps_free(d->eps, d->n_eps);
    free(d->version);
    free(d->discover);
    free(d->host);
    d->magic = 0;
    free(d);
}

static struct dset *find_set(const char *version)
{
    for (struct dset *d = ds.sets; d; d = d->next)
        if (strcmp(d->version, version) == 0)
            return d;
    return NULL;
}

size_t discovery_endpoints(const char *version, const struct config_endpoint **out)
{
    const struct dset *d = find_set(version);
    *out = d ? d->eps : NULL;
    return d ? d->n_eps : 0;
}

void discovery_configure(struct event_base *base, const struct config *cfg)
{
    ds.base = base;
    bool removed_endpoints = false;

    /* Sets: drop those whose version or discover went away or changed. */
    for (struct dset **pp = &ds.sets; *pp;) {
        struct dset *d = *pp;
        int vi = config_version_index(cfg, d->version);
        const struct config_version *cv = vi >= 0 ? &cfg->versions[vi] : NULL;
        if (cv && cv->discover && strcmp(cv->discover, d->discover) == 0) {
            d->interval_ms = cv->discover_interval_ms ? cv->discover_interval_ms : 5000;
            pp = &d->next;
            continue;
        }
        /* A changed name: what the old one found must not stay. (A version
         * that is gone or stopped discovering is not built from it any
         * more: snapshot_new() only asks for versions with discover.) */
        if (cv && cv->discover && d->n_eps)
            removed_endpoints = true;
        log_info("discovery %s: stopped resolving %s", d->version, d->discover);
        *pp = d->next;
        dset_free(d);
    }

    /* The resolver: new when the resolvers changed. */
    char *key = resolvers_key(cfg);
    bool any = false;
    for (size_t v = 0; v < cfg->n_versions; v++)
        any = any || cfg->versions[v].discover;
    bool restart = false;
    if (ds.dns && (!any || strcmp(key, ds.resolvers_key) != 0)) {
        /* Every request still out gets one (failing) callback: orphan them
         * all and start the rounds again on the new resolver. */
        orphan_lookups(NULL);
        evdns_base_free(ds.dns, 1);
        ds.dns = NULL;
        for (struct dset *d = ds.sets; d; d = d->next)
            d->pending = 0;
        restart = true;
    }
    if (!ds.dns && any)
        ds.dns = dns_new(cfg);
    free(ds.resolvers_key);
    ds.resolvers_key = key;

    /* New sets start resolving at once. */
    for (size_t v = 0; v < cfg->n_versions; v++) {
        const struct config_version *cv = &cfg->versions[v];
        if (!cv->discover || find_set(cv->name))
            continue;
        struct dset *d = dset_new(cv);
        d->next = ds.sets;
        ds.sets = d;
        round_start(d);
    }
    if (restart)
        for (struct dset *d = ds.sets; d; d = d->next)
            round_start(d);
    if (removed_endpoints)
        runtime_refresh("discovery: a discover name changed, its old endpoints leave");
}

void discovery_stop(void)
{
    /* The loop does not run again: free the base without callbacks and the
     * lookups that will never get theirs. */
    if (ds.dns) {
        evdns_base_free(ds.dns, 0);
        evdns_set_log_fn(NULL);
    }
    while (ds.lookups) {
        struct lookup *l = ds.lookups;
        ds.lookups = l->next;
        l->magic = 0;
        free(l);
    }
    while (ds.sets) {
        struct dset *d = ds.sets;
        ds.sets = d->next;
        dset_free(d);
    }
    free(ds.resolvers_key);
    memset(&ds, 0, sizeof(ds));
}
