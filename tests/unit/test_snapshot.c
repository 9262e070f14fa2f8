/*
 * test_snapshot.c — snapshot_new() as the pure function it is: config,
 * previous snapshot and discovered sets in, snapshot out. Endpoints kept
 * across a change are the same objects (their health, ejection and counters
 * stay), removed ones are retired at publish, discovered sets are merged
 * after the configured endpoints (once per address, only where the version
 * discovers), weights and drain flags come from the config, and new
 * endpoints of a checked version wait for their first passing check.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "discovery.h"
#include "metrics.h"
#include "snapshot.h"
#include "tap.h"
#include "util.h"

static struct config *load(const char *yaml)
{
    struct config_errors errs;
    config_errors_init(&errs, "test.yaml");
    struct config *cfg = config_load_string("test.yaml", yaml, strlen(yaml), &errs);
    if (!cfg) {
        char buf[2048];
        config_errors_format(&errs, buf, sizeof(buf));
        printf("# %s", buf);
    }
    config_errors_dispose(&errs);
    return cfg;
}

static struct snapshot *build(const char *yaml, const struct snapshot *prev,
                              const struct discovery_set *found, size_t n_found)
{
    struct config *cfg = load(yaml);
    return cfg ? snapshot_new(cfg, prev, found, n_found) : NULL;
}

/* A discovered set as discovery.c makes one: weight 1, sorted addresses. */
static struct discovery_set set_of(const char *version, const char **addrs, size_t n)
{
    struct discovery_set ds = {xstrdup(version), xcalloc(n ? n : 1, sizeof(*ds.eps)), n};
    for (size_t i = 0; i < n; i++) {
        ds.eps[i].address = xstrdup(addrs[i]);
        CHECK(util_parse_addr(addrs[i], &ds.eps[i].sa, &ds.eps[i].sa_len, NULL) == 0);
        ds.eps[i].weight = 1;
    }
    return ds;
}

static void set_dispose(struct discovery_set *ds)
{
    for (size_t k = 0; k < ds->n_eps; k++)
        free(ds->eps[k].address);
    free(ds->eps);
    free(ds->version);
}

static const struct snap_version *version(const struct snapshot *s, const char *name)
{
    for (size_t v = 0; s && v < s->n_versions; v++)
        if (strcmp(s->versions[v].name, name) == 0)
            return &s->versions[v];
    return NULL;
}

static const struct snap_endpoint *endpoint(const struct snapshot *s, const char *ver,
                                            const char *address)
{
    const struct snap_version *sv = version(s, ver);
    for (size_t i = 0; sv && i < sv->n_eps; i++)
        if (strcmp(sv->eps[i].ep->address, address) == 0)
            return &sv->eps[i];
    return NULL;
}

/* "a,b,c": the version's endpoint addresses in snapshot order. */
static const char *addresses(const struct snapshot *s, const char *ver, char *buf,
                             size_t len)
{
    const struct snap_version *sv = version(s, ver);
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; sv && i < sv->n_eps && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "",
                                sv->eps[i].ep->address);
    return buf;
}

static unsigned refs(const struct endpoint *ep)
{
    return atomic_load(&((struct endpoint *)ep)->refs);
}

#define BASE "listen: 127.0.0.1:1\n"

static void test_carry_over(void)
{
    const char *y1 = BASE
        "versions:\n"
        "  v1: {endpoints: [127.0.0.1:11, {address: 127.0.0.1:12, weight: 7}]}\n"
        "  v2: {endpoints: [127.0.0.1:21]}\n"
        "split: {v1: 90, v2: 10}\n";
    const char *y2 = BASE
        "versions:\n"
        "  v1: {endpoints: [{address: 127.0.0.1:12, weight: 3}, 127.0.0.1:13]}\n"
        "  v2: {endpoints: [127.0.0.1:21, 127.0.0.1:11]}\n"
        "split: {v1: 50, v2: 50}\n";
    struct snapshot *s1 = build(y1, NULL, NULL, 0);
    ok(s1 != NULL, "first config builds");
    if (!s1)
        return;
    const struct snap_endpoint *e11 = endpoint(s1, "v1", "127.0.0.1:11");
    const struct snap_endpoint *e12 = endpoint(s1, "v1", "127.0.0.1:12");
    ok(e11 && e12, "v1 has its two configured endpoints");
    if (!e11 || !e12)
        return;
    is_int(e12->weight, 7, "a configured weight is the endpoint's weight");
    is_int(e11->weight, 1, "the default weight is 1");
    ok(e11->ep->id != e12->ep->id, "every endpoint has its own id");

    /* What the data path and health checks write into the endpoint. */
    struct endpoint *kept = e12->ep, *gone = e11->ep;
    atomic_store(&kept->healthy, false);
    atomic_store(&kept->ejected_until_ms, 123456);
    atomic_store(&kept->consecutive_failures, 2);
    atomic_store(&kept->ejections, 4);
    atomic_store(&kept->slots[1].requests[1], 42);
    atomic_store(&kept->last_check_status, 503);
    uint32_t kept_id = kept->id;

    snapshot_publish(s1);
    struct snapshot *prev = snapshot_acquire();
    struct snapshot *s2 = build(y2, prev, NULL, 0);
    snapshot_unref(prev);
    ok(s2 != NULL, "second config builds");
    if (!s2)
        return;
    const struct snap_endpoint *n12 = endpoint(s2, "v1", "127.0.0.1:12");
    ok(n12 && n12->ep == kept, "an endpoint kept by version and address is the same object");
    if (!n12)
        return;
    is_int(n12->ep->id, kept_id, "... with the same id");
    ok(!atomic_load(&n12->ep->healthy), "... its health verdict stays");
    is_int(atomic_load(&n12->ep->ejected_until_ms), 123456, "... its ejection stays");
    is_int(atomic_load(&n12->ep->consecutive_failures), 2, "... its failure count stays");
    is_int(atomic_load(&n12->ep->ejections), 4, "... its ejection counter stays");
    is_int(endpoint_requests(n12->ep, 1), 42, "... its request counters stay");
    is_int(atomic_load(&n12->ep->last_check_status), 503, "... its last check stays");
    is_int(n12->weight, 3, "a kept endpoint takes its new weight");
    is_int(refs(kept), 2, "the published and the new snapshot both hold it");

    const struct snap_endpoint *n13 = endpoint(s2, "v1", "127.0.0.1:13");
    ok(n13 && n13->ep->id != kept_id && n13->ep->id != gone->id,
       "an added endpoint is a new object with a new id");
    ok(n13 && atomic_load(&n13->ep->healthy),
       "an added endpoint of an unchecked version is healthy");
    ok(!endpoint(s2, "v1", "127.0.0.1:11"), "a removed endpoint is not in the new snapshot");
    const struct snap_endpoint *moved = endpoint(s2, "v2", "127.0.0.1:11");
    ok(moved && moved->ep != gone,
       "the same address under another version is another endpoint");
    ok(endpoint(s2, "v2", "127.0.0.1:21") &&
           endpoint(s2, "v2", "127.0.0.1:21")->ep == endpoint(s1, "v2", "127.0.0.1:21")->ep,
       "an endpoint of the other version is carried over too");
    is_int(version(s2, "v1")->split_bp, 5000, "the split is the new config's");

    endpoint_ref(gone); /* keep it alive to look at it after s1 goes */
    ok(!atomic_load(&gone->retired), "nothing is retired before the new snapshot is published");
    snapshot_publish(s2); /* drops s1: the last reference */
    ok(atomic_load(&gone->retired), "publishing retires the endpoint the new snapshot dropped");
    ok(!atomic_load(&kept->retired), "... and not the ones it kept");
    is_int(refs(kept), 1, "the dropped snapshot released the kept endpoint once");
    is_int(refs(gone), 1, "the dropped snapshot released the removed endpoint");
    endpoint_unref(gone);
    snapshot_shutdown();
}

static void test_discovered(void)
{
    const char *y = BASE
        "versions:\n"
        "  v1:\n"
        "    endpoints: [{address: 127.0.0.1:11, weight: 5}]\n"
        "    discover: app.test:80\n"
        "  v2: {endpoints: [127.0.0.1:21]}\n"
        "split: {v1: 100}\n";
    const char *a1[] = {"127.0.0.1:11", "127.0.0.2:80", "127.0.0.3:80"};
    const char *a2[] = {"127.0.0.9:80"};
    struct discovery_set found[2] = {set_of("v1", a1, 3), set_of("v2", a2, 1)};
    char buf[256];

    struct snapshot *s0 = build(y, NULL, NULL, 0);
    ok(s0 != NULL, "a discovering version builds without discovered sets");
    if (!s0)
        return;
    is_str(addresses(s0, "v1", buf, sizeof(buf)), "127.0.0.1:11",
           "no sets: only the configured endpoints");

    struct snapshot *s1 = build(y, s0, found, 2);
    ok(s1 != NULL, "the same config builds with discovered sets");
    if (!s1)
        return;
    is_str(addresses(s1, "v1", buf, sizeof(buf)), "127.0.0.1:11,127.0.0.2:80,127.0.0.3:80",
           "discovered endpoints follow the configured ones; an address both configured "
           "and discovered is there once");
    is_int(endpoint(s1, "v1", "127.0.0.1:11")->weight, 5,
           "... with the configured weight");
    is_int(endpoint(s1, "v1", "127.0.0.2:80")->weight, 1, "a discovered endpoint has weight 1");
    ok(endpoint(s1, "v1", "127.0.0.1:11")->ep == endpoint(s0, "v1", "127.0.0.1:11")->ep,
       "the configured endpoint is carried over");
    is_str(addresses(s1, "v2", buf, sizeof(buf)), "127.0.0.1:21",
           "a set for a version without discover is not merged");
    is_int(refs(endpoint(s1, "v1", "127.0.0.1:11")->ep), 2,
           "the set did not add a second reference to the configured endpoint");

    /* The set loses one address and gains another. */
    const char *a3[] = {"127.0.0.3:80", "127.0.0.4:80"};
    struct discovery_set next = set_of("v1", a3, 2);
    struct snapshot *s2 = build(y, s1, &next, 1);
    ok(s2 != NULL, "a changed set builds");
    if (!s2)
        return;
    is_str(addresses(s2, "v1", buf, sizeof(buf)), "127.0.0.1:11,127.0.0.3:80,127.0.0.4:80",
           "the new set replaces the old one");
    ok(endpoint(s2, "v1", "127.0.0.3:80")->ep == endpoint(s1, "v1", "127.0.0.3:80")->ep,
       "a discovered endpoint still found is the same object");

    /* Purity: the same inputs again give the same snapshot. */
    struct snapshot *s2b = build(y, s1, &next, 1);
    ok(s2b && strcmp(addresses(s2b, "v1", buf, sizeof(buf)),
                     "127.0.0.1:11,127.0.0.3:80,127.0.0.4:80") == 0,
       "the same inputs build the same endpoints");
    ok(s2b && endpoint(s2b, "v1", "127.0.0.3:80")->ep == endpoint(s2, "v1", "127.0.0.3:80")->ep,
       "... and carry over the same objects");
    is_int(found[0].n_eps, 3, "snapshot_new leaves its inputs alone");
    is_str(found[0].eps[1].address, "127.0.0.2:80", "... down to the addresses");

    /* A config that stops discovering drops the discovered endpoints. */
    const char *y_off = BASE
        "versions:\n"
        "  v1: {endpoints: [{address: 127.0.0.1:11, weight: 5}]}\n"
        "  v2: {endpoints: [127.0.0.1:21]}\n"
        "split: {v1: 100}\n";
    struct snapshot *s3 = build(y_off, s2, &next, 1);
    ok(s3 && strcmp(addresses(s3, "v1", buf, sizeof(buf)), "127.0.0.1:11") == 0,
       "without discover a version's set is ignored");

    snapshot_unref(s0);
    snapshot_unref(s1);
    snapshot_unref(s2);
    snapshot_unref(s2b);
    snapshot_unref(s3);
    set_dispose(&found[0]);
    set_dispose(&found[1]);
    struct discovery_set *copy = discovery_sets_copy(&next, 1);
    ok(discovery_set_equal(copy, &next) && copy->eps[0].address != next.eps[0].address,
       "discovery_sets_copy makes an equal, separate copy");
    discovery_sets_free(copy, 1);
    set_dispose(&next);
}

static void test_health_start(void)
{
    const char *y1 = BASE
        "versions:\n"
        "  v1: {endpoints: [127.0.0.1:11], health: {}}\n"
        "  v2: {endpoints: [127.0.0.1:21]}\n"
        "split: {v1: 100}\n";
    const char *y2 = BASE
        "versions:\n"
        "  v1: {endpoints: [127.0.0.1:11, 127.0.0.1:12], health: {}}\n"
        "  v2: {endpoints: [127.0.0.1:21, 127.0.0.1:22]}\n"
        "split: {v1: 100}\n";
    struct snapshot *s1 = build(y1, NULL, NULL, 0);
    ok(s1 && atomic_load(&endpoint(s1, "v1", "127.0.0.1:11")->ep->healthy),
       "at start an endpoint of a checked version is healthy (checks start there)");
    if (!s1)
        return;
    struct snapshot *s2 = build(y2, s1, NULL, 0);
    ok(s2 && !atomic_load(&endpoint(s2, "v1", "127.0.0.1:12")->ep->healthy),
       "an endpoint added to a checked version waits for its first passing check");
    ok(s2 && atomic_load(&endpoint(s2, "v2", "127.0.0.1:22")->ep->healthy),
       "an endpoint added to an unchecked version is healthy");
    ok(s2 && atomic_load(&endpoint(s2, "v1", "127.0.0.1:11")->ep->healthy),
       "a carried-over endpoint keeps its verdict");
    snapshot_unref(s1);
    snapshot_unref(s2);
}

static void test_stats(void)
{
    const char *y = BASE
        "versions:\n"
        "  v1: {endpoints: [127.0.0.1:11]}\n"
        "  v2: {endpoints: [127.0.0.1:21]}\n"
        "split: {v1: 100}\n";
    struct snapshot *a = build(y, NULL, NULL, 0), *b = build(y, NULL, NULL, 0);
    ok(a && b, "two snapshots build");
    if (!a || !b)
        return;
    ok(!a->versions[0].stats && !a->versions[1].stats,
       "snapshot_new leaves the stats to metrics_bind");
    metrics_bind(a);
    metrics_bind(b);
    ok(a->versions[0].stats && a->versions[0].stats != a->versions[1].stats,
       "metrics_bind gives each version its stats");
    ok(a->versions[1].stats == b->versions[1].stats,
       "... the same ones for the same name in every snapshot");
    snapshot_unref(a);
    snapshot_unref(b);
    metrics_shutdown();
}

int main(void)
{
    test_carry_over();
    test_discovered();
    test_health_start();
    test_stats();
    return tap_done();
}
