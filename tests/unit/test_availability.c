/*
 * test_availability.c — availability.c's rule as the pure function it is:
 * running config, candidate config and a snapshot with endpoint health in,
 * a verdict and its sentence out. A larger share for a version whose
 * endpoints are all draining, unhealthy, ejected, not checked yet, or that
 * has none is refused, naming the version and why; a smaller or equal
 * share never is; one available endpoint is enough. A header rule the
 * change adds onto such a version is refused too.
 */
#include <stdlib.h>
#include <string.h>

#include "availability.h"
#include "config.h"
#include "config_edit.h"
#include "snapshot.h"
#include "tap.h"
#include "util.h"

static const char *yaml =
    "listen: 127.0.0.1:8080\n"
    "control: /tmp/weir-test-availability.sock\n"
    "versions:\n"
    "  v1:\n"
    "    endpoints: [127.0.0.1:9001]\n"
    "  v2:\n"
    "    endpoints: [127.0.0.1:9002, 127.0.0.1:9003]\n"
    "    health: {path: /ready}\n"
    "  v3:\n"
    "    endpoints: [127.0.0.1:9004]\n"
    "    fallback: v1\n"
    "split: {v1: 100}\n";

static struct config *load(void)
{
    struct config_errors errs;
    config_errors_init(&errs, "test.yaml");
    struct config *cfg = config_load_string("test.yaml", yaml, strlen(yaml), &errs);
    config_errors_dispose(&errs);
    CHECK(cfg != NULL);
    return cfg;
}

/* old with its split changed to v1/v2/v3 basis points. */
static struct config *with_split(const struct config *old, uint32_t v1, uint32_t v2,
                                 uint32_t v3)
{
    struct config *c = config_clone(old);
    uint32_t bp[CONFIG_MAX_VERSIONS] = {v1, v2, v3};
    config_edit_set_split(c, bp);
    return c;
}

static struct endpoint *ep_of(struct snapshot *s, size_t v, size_t i)
{
    return s->versions[v].eps[i].ep;
}

int main(void)
{
    struct config *old = load();
    struct snapshot *s = snapshot_new(config_clone(old), NULL, NULL, 0);
    uint64_t now = 1000000;
    char err[1024];

    struct config *flip2 = with_split(old, 0, 10000, 0);
    ok(availability_check(old, flip2, s, now, err, sizeof(err)) == 0,
       "flip v2: both endpoints available (fresh start): allowed");

    atomic_store(&ep_of(s, 1, 0)->healthy, false);
    ok(availability_check(old, flip2, s, now, err, sizeof(err)) == 0,
       "one endpoint unhealthy, one available: allowed");

    atomic_store(&ep_of(s, 1, 1)->healthy, false);
    ok(availability_check(old, flip2, s, now, err, sizeof(err)) < 0, "both unhealthy: refused");
    is_str(err, "version v2 would get 100 % but has no available endpoint: all 2 are unhealthy "
                "(failing the active health check), so its requests would get 503",
           "the sentence names the version, its share, why and the cost");

    atomic_store(&ep_of(s, 1, 1)->healthy, true);
    atomic_store(&ep_of(s, 1, 1)->ejected_until_ms, now + 5000);
    ok(availability_check(old, flip2, s, now, err, sizeof(err)) < 0,
       "one unhealthy, one ejected: refused");
    ok(strstr(err, "1 unhealthy") && strstr(err, "1 ejected"), "mixed reasons counted: %s", err);
    ok(availability_check(old, flip2, s, now + 5000, err, sizeof(err)) == 0,
       "once the ejection ends the endpoint counts again");

    /* Draining comes from the candidate config. */
    atomic_store(&ep_of(s, 1, 0)->healthy, true);
    struct config *drained = with_split(old, 5000, 5000, 0);
    drained->versions[1].endpoints[0].draining = true;
    drained->versions[1].endpoints[1].draining = true;
    ok(availability_check(old, drained, s, now + 5000, err, sizeof(err)) < 0 &&
           strstr(err, "v2 would get 50 %") && strstr(err, "all 2 are draining"),
       "all draining: refused: %s", err);

    /* Shrinking or keeping a broken version's share is never refused. */
    struct config *half = with_split(old, 5000, 5000, 0);
    struct snapshot *s_half = snapshot_new(config_clone(half), NULL, NULL, 0);
    atomic_store(&ep_of(s_half, 1, 0)->healthy, false);
    atomic_store(&ep_of(s_half, 1, 1)->healthy, false);
    struct config *less = with_split(half, 7500, 2500, 0);
    ok(availability_check(half, less, s_half, now, err, sizeof(err)) == 0,
       "v2 broken, its share 50 -> 25: allowed");
    struct config *same = with_split(half, 5000, 5000, 0);
    ok(availability_check(half, same, s_half, now, err, sizeof(err)) == 0,
       "v2 broken, its share unchanged: allowed");
    struct config *more = with_split(half, 4000, 6000, 0);
    ok(availability_check(half, more, s_half, now, err, sizeof(err)) < 0,
       "v2 broken, its share 50 -> 60: refused");

    /* The fallback changes the cost, not the verdict. */
    atomic_store(&ep_of(s, 2, 0)->healthy, false);
    struct config *flip3 = with_split(old, 0, 0, 10000);
    ok(availability_check(old, flip3, s, now, err, sizeof(err)) < 0 &&
           strstr(err, "its only endpoint is unhealthy") &&
           strstr(err, "would go to its fallback v1"),
       "v3 with a fallback: refused, the sentence says where its requests would go: %s", err);

    /* Two versions at once: both named. */
    struct config *both = with_split(old, 0, 5000, 5000);
    both->versions[1].endpoints[0].draining = true;
    both->versions[1].endpoints[1].draining = true;
    ok(availability_check(old, both, s, now, err, sizeof(err)) < 0 && strstr(err, "version v2") &&
           strstr(err, "; version v3"),
       "two broken versions: one sentence naming each");

    /* A new endpoint in a checked version waits for its first check. */
    struct config *added = with_split(old, 0, 10000, 0);
    added->versions[1].endpoints[0].draining = true;
    added->versions[1].endpoints[1].draining = true;
    char addr_err[128];
    CHECK(config_edit_add_endpoint(&added->versions[1], "127.0.0.1:9009", 1, addr_err,
                                   sizeof(addr_err)) == 0);
    ok(availability_check(old, added, s, now, err, sizeof(err)) < 0 &&
           strstr(err, "not checked yet"),
       "an endpoint the change adds to a checked version is not available yet: %s", err);

    /* A rule the change adds is judged like a share for its version. */
    atomic_store(&ep_of(s, 1, 0)->healthy, false);
    atomic_store(&ep_of(s, 1, 1)->healthy, false);
    struct config *ruled = config_clone(old);
    ruled->rules = xcalloc(1, sizeof(*ruled->rules));
    ruled->rules[0] = (struct config_rule){.match = RULE_M_HEADER_VALUE,
                                           .name = xstrdup("X-Canary"),
                                           .value = xstrdup("1"),
                                           .version = xstrdup("v2")};
    ruled->n_rules = 1;
    ok(availability_check(old, ruled, s, now, err, sizeof(err)) < 0 &&
           strstr(err, "rule 0 (header X-Canary=1) would send its requests to version v2") &&
           strstr(err, "all 2 are unhealthy"),
       "a new rule onto a version with no available endpoint: refused: %s", err);
    ok(availability_check(ruled, ruled, s, now, err, sizeof(err)) == 0,
       "the same rule already running: allowed (the change did not add it)");
    atomic_store(&ep_of(s, 1, 0)->healthy, true);
    ok(availability_check(old, ruled, s, now, err, sizeof(err)) == 0,
       "a new rule onto a version with one available endpoint: allowed");
    atomic_store(&ep_of(s, 1, 1)->healthy, true);

    /* The describe fragment. */
    struct availability_count c = {0};
    char buf[256];
    ok(!availability_describe(&c, NULL, buf, sizeof(buf)) && strcmp(buf, "has no endpoint") == 0,
       "no endpoint at all: %s", buf);
    ok(!availability_describe(&c, "app.svc:80", buf, sizeof(buf)) &&
           strstr(buf, "DNS discovery of app.svc:80 has found none"),
       "nothing discovered: %s", buf);
    c.total = 3;
    c.available = 1;
    c.draining = 2;
    ok(availability_describe(&c, NULL, buf, sizeof(buf)) && buf[0] == '\0',
       "one available endpoint is enough");
    ok(availability_check(old, old, s, now, err, sizeof(err)) == 0, "no change: allowed");

    config_free(flip2);
    config_free(drained);
    config_free(half);
    config_free(less);
    config_free(same);
    config_free(more);
    config_free(flip3);
    config_free(both);
    config_free(added);
    config_free(ruled);
    snapshot_unref(s);
    snapshot_unref(s_half);
    config_free(old);
    return tap_done();
}
