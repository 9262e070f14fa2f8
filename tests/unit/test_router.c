/*
 * test_router.c — the split is exact (SWRR: every window of requests on a
 * worker deviates from the share by less than one request), rules come
 * first, sticky buckets are stable and monotone, balancer takes turns and
 * skips unavailable endpoints.
 */
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "config.h"
#include "router.h"
#include "snapshot.h"
#include "tap.h"

static struct snapshot *make(const char *yaml)
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
    return cfg ? snapshot_new(cfg, NULL, NULL, 0) : NULL;
}

/* Route n keyless requests; check every prefix window against the share. */
static void check_exact(const char *yaml, uint32_t v2_bp, int n, const char *what)
{
    struct snapshot *s = make(yaml);
    ok(s != NULL, "%s: config loads", what);
    if (!s)
        return;
    struct router_state st;
    router_state_init(&st, s);
    struct router_request req = {NULL, 0};
    long v2 = 0;
    double worst = 0;
    for (int i = 1; i <= n; i++) {
        struct route_decision d;
        router_pick(s, &st, &req, &d);
        if (d.version == 1)
            v2++;
        double expect = (double)i * v2_bp / 10000.0;
        double dev = v2 > expect ? v2 - expect : expect - v2;
        if (dev > worst)
            worst = dev;
    }
    ok(worst < 1.0, "%s: every prefix of %d requests within one request of the share (worst %.4f)",
       what, n, worst);
    is_int(v2, (long)((long long)n * v2_bp / 10000), "%s: exact count over %d requests", what, n);
    snapshot_unref(s);
}

static void two(char *y, size_t len, const char *p1, const char *p2)
{
    snprintf(y, len,
             "listen: 127.0.0.1:1\nversions:\n  v1: {endpoints: [127.0.0.1:2]}\n"
             "  v2: {endpoints: [127.0.0.1:3]}\nsplit: {v1: %s, v2: %s}\n",
             p1, p2);
}

int main(void)
{
    char y[512];
    two(y, sizeof(y), "90", "10");
    check_exact(y, 1000, 100000, "90/10");
    two(y, sizeof(y), "99.99", "0.01");
    check_exact(y, 1, 100000, "99.99/0.01");
    two(y, sizeof(y), "66.67", "33.33");
    check_exact(y, 3333, 100000, "66.67/33.33");
    two(y, sizeof(y), "0", "100");
    check_exact(y, 10000, 1000, "flip to v2");

    /* rules first, then sticky, then split */
    const char *rules =
        "listen: 127.0.0.1:1\nversions:\n  v1: {endpoints: [127.0.0.1:2]}\n"
        "  v2: {endpoints: [127.0.0.1:3]}\nsplit: {v1: 100}\n"
        "sticky: {header: X-User}\n"
        "rules:\n  - {header: X-Canary, value: always, version: v2}\n"
        "  - {cookie: beta, value: \"yes\", version: v2}\n";
    struct snapshot *s = make(rules);
    ok(s != NULL, "rules config loads");
    if (s) {
        struct router_state st;
        router_state_init(&st, s);
        struct router_header h[2] = {
            {{"x-canary", 8}, {"always", 6}},
            {{"X-User", 6}, {"alice", 5}},
        };
        struct router_request req = {h, 2};
        struct route_decision d;
        router_pick(s, &st, &req, &d);
        ok(d.version == 1 && d.reason == ROUTE_R_RULE && d.rule == 0,
           "header rule (case-insensitive name) routes to a 0%% version");
        h[0].value.p = "Always";
        router_pick(s, &st, &req, &d);
        ok(d.reason == ROUTE_R_STICKY && d.version == 0,
           "rule values match exactly; sticky decides otherwise");
        struct router_header ck[1] = {{{"Cookie", 6}, {"a=1; beta=yes; c=2", 18}}};
        struct router_request creq = {ck, 1};
        router_pick(s, &st, &creq, &d);
        ok(d.reason == ROUTE_R_RULE && d.rule == 1 && d.version == 1, "cookie rule matches");
        snapshot_unref(s);
    }

    /* sticky: bucket function fixed (FNV-1a 64 mod 10000) */
    is_int(router_bucket("", 0), (long)(14695981039346656037ULL % 10000), "bucket of empty key");
    is_int(router_bucket("a", 1), (long)(0xaf63dc4c8601ec8cULL % 10000), "bucket of \"a\" (FNV-1a 64)");

    /* sticky monotone over a ramp: a user on v2 stays on v2 as it grows */
    const char *ramp[] = {"1", "5", "25", "50", "100"};
    int *on_v2 = calloc(100000, sizeof(int));
    int moved_off = 0;
    for (size_t r = 0; r < 5; r++) {
        char v1p[16];
        snprintf(v1p, sizeof(v1p), "%d", 100 - atoi(ramp[r]));
        char yy[512];
        snprintf(yy, sizeof(yy),
                 "listen: 127.0.0.1:1\nversions:\n  v1: {endpoints: [127.0.0.1:2]}\n"
                 "  v2: {endpoints: [127.0.0.1:3]}\nsplit: {v1: %s, v2: %s}\n"
                 "sticky: {header: X-User}\n",
                 v1p, ramp[r]);
        struct snapshot *rs = make(yy);
        if (!rs)
            continue;
        int n_v2 = 0;
        uint64_t rng = 88172645463325252ULL; /* same 100k random keys each step */
        for (int k = 0; k < 100000; k++) {
            char key[32];
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            int kl = snprintf(key, sizeof(key), "%016llx", (unsigned long long)rng);
            struct router_header hh[1] = {{{"x-user", 6}, {key, (size_t)kl}}};
            struct router_request rq = {hh, 1};
            struct route_decision d;
            router_pick(rs, NULL, &rq, &d);
            if (on_v2[k] && d.version != 1)
                moved_off++;
            on_v2[k] = d.version == 1;
            n_v2 += on_v2[k];
        }
        double share = n_v2 / 1000.0;
        double want = atof(ramp[r]);
        ok(share >= want - 0.5 && share <= want + 0.5, "ramp %s%%: %.3f%% of 100000 random keys on v2 (±0.5)",
           ramp[r], share);
        snapshot_unref(rs);
    }
    is_int(moved_off, 0, "no sticky user ever moved off v2 while it grew 1→5→25→50→100");
    free(on_v2);

    /* balancer: SWRR with weights, skipping unavailable endpoints */
    s = make("listen: 127.0.0.1:1\nversions:\n  v1:\n    endpoints: [127.0.0.1:2, {address: 127.0.0.1:3, weight: 3}]\n"
             "split: {v1: 100}\n");
    ok(s != NULL, "weighted endpoints load");
    if (s) {
        struct balancer_state bs;
        balancer_state_init(&bs, s);
        int cnt[2] = {0, 0};
        for (int i = 0; i < 400; i++)
            cnt[balancer_pick(s, &bs, 0, NULL, 1)]++;
        ok(cnt[0] == 100 && cnt[1] == 300, "weights 1:3 give 100:300 (%d:%d)", cnt[0], cnt[1]);
        atomic_store(&s->versions[0].eps[1].ep->healthy, false);
        int all0 = 1;
        for (int i = 0; i < 10; i++)
            all0 &= balancer_pick(s, &bs, 0, NULL, 1) == 0;
        ok(all0, "an unhealthy endpoint gets no requests");
        atomic_store(&s->versions[0].eps[0].ep->ejected_until_ms, 1000);
        is_int(balancer_pick(s, &bs, 0, NULL, 999), -1, "no available endpoint → -1");
        is_int(balancer_pick(s, &bs, 0, NULL, 1000), 0, "ejection ends at its deadline");
        balancer_state_dispose(&bs);

        /* A retry in a txn's older snapshot after the worker re-armed its
         * state for a newer one with fewer endpoints: the state's arrays
         * are not indexed past their size (ASan would say so) and the
         * pick still honours weights and availability. */
        struct snapshot *small = make("listen: 127.0.0.1:1\nversions:\n  v1:\n    endpoints: [127.0.0.1:4]\n"
                                      "split: {v1: 100}\n");
        ok(small != NULL, "a one-endpoint snapshot loads");
        if (small) {
            balancer_state_init(&bs, small);
            atomic_store(&s->versions[0].eps[0].ep->ejected_until_ms, 0);
            atomic_store(&s->versions[0].eps[1].ep->healthy, true);
            int c2[2] = {0, 0}, bad = 0;
            for (int i = 0; i < 400; i++) {
                int k = balancer_pick(s, &bs, 0, NULL, 1);
                if (k < 0 || k > 1)
                    bad++;
                else
                    c2[k]++;
            }
            ok(bad == 0 && c2[0] == 100 && c2[1] == 300,
               "a pick in another snapshot than the state's keeps weights 1:3 (%d:%d, %d bad)",
               c2[0], c2[1], bad);
            is_int(balancer_pick(s, &bs, 0, s->versions[0].eps[1].ep, 1), 0,
                   "and skips the endpoint that just failed");
            is_int(balancer_pick(s, &bs, 1, NULL, 1), -1, "a version the snapshot lacks → -1");
            is_int(balancer_pick(small, &bs, 0, NULL, 1), 0, "the armed snapshot still picks");
            balancer_state_dispose(&bs);
            snapshot_unref(small);
        }
        snapshot_unref(s);
    }
    return tap_done();
}
