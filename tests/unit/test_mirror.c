/*
 * test_mirror.c — mirror_cmp.c's pure parts (TAP): the sampler is exact
 * over every window, the comparison sees status, compared headers and the
 * body (whatever its framing and however it was cut into pieces), weir's
 * chunked re-framing is walked to the data, and the ring keeps the newest
 * differences, newest first, across workers; the runtime map's "mirror"
 * key (what the state file keeps) round-trips and refuses bad values.
 */
#include "config.h"
#include "mirror_cmp.h"
#include "runtime_map.h"
#include "tap.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct router_header hdr(const char *n, const char *v)
{
    struct router_header h = {{n, strlen(n)}, {v, strlen(v)}};
    return h;
}

static void sha256(const char *s, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    EVP_Digest(s, n, out, &len, EVP_sha256(), NULL);
}

static void test_sampler(void)
{
    static const uint32_t bps[] = {0, 1, 500, 2500, 3333, 5000, 9999, 10000};
    for (size_t k = 0; k < sizeof(bps) / sizeof(bps[0]); k++) {
        struct mirror_sampler s = {0};
        uint32_t bp = bps[k];
        unsigned long hits = 0;
        int worst_ok = 1;
        for (unsigned long n = 1; n <= 40000; n++) {
            hits += mirror_sampler_step(&s, bp);
            /* after n steps: floor(n * bp / 10000) hits, never further off */
            unsigned long want = n * bp / 10000;
            if (hits != want)
                worst_ok = 0;
        }
        ok(worst_ok, "percent %u bp: exactly floor(n x p) of every first n requests", bp);
    }
    /* any window, not only prefixes: within one of n x p */
    struct mirror_sampler s = {1234};
    int hist[1000];
    for (int i = 0; i < 1000; i++)
        hist[i] = mirror_sampler_step(&s, 700);
    int within = 1;
    for (int a = 0; a < 1000; a += 37)
        for (int b = a + 1; b <= 1000; b += 53) {
            int c = 0;
            for (int i = a; i < b; i++)
                c += hist[i];
            double want = (b - a) * 0.07;
            if (c < want - 1 || c > want + 1)
                within = 0;
        }
    ok(within, "7 %%: every window of n requests has n x 7 %% mirrored, +-1");
}

static const char *const names[] = {"content-type", "etag"};

static void side(struct mirror_side *sd, int status, const char *ctype, const char *body)
{
    mirror_side_reset(sd, true);
    struct router_header h[3] = {hdr("Date", "now"), hdr("Content-Type", ctype),
                                 hdr("X-Other", "1")};
    mirror_side_head(sd, status, names, 2, h, 3);
    mirror_side_body(sd, body, strlen(body));
    mirror_side_finish(sd);
}

static void test_compare(void)
{
    struct mirror_side a = {0}, b = {0};
    side(&a, 200, "text/plain", "hello");
    side(&b, 200, "TEXT/PLAIN", "hello");
    is_int(mirror_compare(&a, &b, true, true), MIRROR_D_HEADERS,
           "header values are compared exactly (case too)");
    side(&b, 200, "text/plain", "hello");
    is_int(mirror_compare(&a, &b, true, true), 0, "same status, headers, body: match");
    uint8_t want[32];
    sha256("hello", 5, want);
    ok(memcmp(a.hash, want, 32) == 0, "the body hash is SHA-256 of the body");
    ok(!a.h[1].present && a.h[0].present, "a header not sent is absent, not empty");
    side(&b, 503, "text/plain", "hello");
    is_int(mirror_compare(&a, &b, true, true), MIRROR_D_STATUS, "status differs");
    is_int(mirror_compare(&a, &b, false, true), 0, "status not compared when off");
    side(&b, 200, "text/plain", "hellO");
    is_int(mirror_compare(&a, &b, true, true), MIRROR_D_BODY, "body differs (same size)");
    is_int(mirror_compare(&a, &b, true, false), 0, "body not compared when off");
    side(&b, 503, "text/json", "x");
    is_int(mirror_compare(&a, &b, true, true), MIRROR_D_STATUS | MIRROR_D_HEADERS | MIRROR_D_BODY,
           "everything differs");

    /* a body hashed in pieces equals the whole */
    mirror_side_reset(&b, true);
    struct router_header h = hdr("content-type", "text/plain");
    mirror_side_head(&b, 200, names, 2, &h, 1);
    mirror_side_body(&b, "he", 2);
    mirror_side_body(&b, "", 0);
    mirror_side_body(&b, "llo", 3);
    mirror_side_finish(&b);
    is_int(mirror_compare(&a, &b, true, true), 0, "hashing in pieces: same digest");

    /* several fields of one name are joined */
    struct router_header two[2] = {hdr("ETag", "a"), hdr("etag", "b")};
    mirror_side_reset(&b, false);
    mirror_side_head(&b, 200, names, 2, two, 2);
    ok(b.h[1].present && b.h[1].len == 4 && memcmp(b.h[1].v, "a, b", 4) == 0,
       "two fields of a name: \"a, b\"");
    /* a long value is cut but still compared by its length */
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct router_header l1 = hdr("content-type", big);
    mirror_side_reset(&b, false);
    mirror_side_head(&b, 200, names, 1, &l1, 1);
    big[200] = '\0';
    struct router_header l2 = hdr("content-type", big);
    struct mirror_side c = {0};
    mirror_side_reset(&c, false);
    mirror_side_head(&c, 200, names, 1, &l2, 1);
    is_int(mirror_compare(&b, &c, true, false), MIRROR_D_HEADERS,
           "long values differing past the kept prefix still differ");
    mirror_side_dispose(&a);
    mirror_side_dispose(&b);
    mirror_side_dispose(&c);
}

static void test_chunkwalk(void)
{
    const char *framed = "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
    struct mirror_side a = {0}, b = {0};
    side(&a, 200, "t", "hello");
    /* every way of cutting the framed bytes into two calls */
    int all = 1;
    for (size_t cut = 0; cut <= strlen(framed); cut++) {
        mirror_side_reset(&b, true);
        struct router_header h = hdr("content-type", "t");
        mirror_side_head(&b, 200, names, 2, &h, 1);
        mirror_side_body_chunked(&b, framed, cut);
        mirror_side_body_chunked(&b, framed + cut, strlen(framed) - cut);
        mirror_side_finish(&b);
        if (mirror_compare(&a, &b, true, true) != 0 || b.body_bytes != 5)
            all = 0;
    }
    ok(all, "weir's chunked framing, cut anywhere, hashes as the plain body");
    mirror_side_reset(&b, true);
    mirror_side_body_chunked(&b, "a\r\n0123456789\r\n", 15);
    mirror_side_finish(&b);
    is_int(b.body_bytes, 10, "hex sizes");
    mirror_side_dispose(&a);
    mirror_side_dispose(&b);
}

static void test_ring(void)
{
    static struct mirror_ring r1, r2;
    struct mirror_diff d;
    for (int i = 0; i < 25; i++) {
        memset(&d, 0, sizeof(d));
        d.time_ms = 1000 + 2 * i;
        snprintf(d.target, sizeof(d.target), "/w1/%d", i);
        mirror_ring_push(&r1, &d);
    }
    for (int i = 0; i < 3; i++) {
        memset(&d, 0, sizeof(d));
        d.time_ms = 1045 + 2 * i; /* between w1's last ones */
        snprintf(d.target, sizeof(d.target), "/w2/%d", i);
        mirror_ring_push(&r2, &d);
    }
    struct mirror_ring *rings[3] = {&r1, NULL, &r2};
    struct mirror_diff out[MIRROR_DIFFS_KEPT];
    size_t n = mirror_ring_read(rings, 3, out, MIRROR_DIFFS_KEPT);
    is_int(n, MIRROR_DIFFS_KEPT, "20 kept out of 28");
    is_str(out[0].target, "/w2/2", "newest first, across workers");
    is_str(out[1].target, "/w1/24", "then w1's newest");
    int sorted = 1;
    for (size_t i = 1; i < n; i++)
        if (out[i].time_ms > out[i - 1].time_ms)
            sorted = 0;
    ok(sorted, "in time order");
    size_t k = mirror_ring_read(rings, 3, out, 2);
    is_int(k, 2, "max is honoured");
    struct mirror_ring *none[1] = {NULL};
    is_int(mirror_ring_read(none, 1, out, 5), 0, "no rings, nothing");
    is_str(mirror_result_name(MIRROR_R_DROPPED), "dropped", "result names");
}

static void test_runtime_key(void)
{
    static const char text[] = "listen: 127.0.0.1:1\n"
                               "versions: {v1: {endpoints: [127.0.0.1:2]}, "
                               "v2: {endpoints: [127.0.0.1:3]}}\n"
                               "split: {v1: 100}\n";
    struct config_errors errs;
    config_errors_init(&errs, "t.yaml");
    struct config *cfg = config_load_string("t.yaml", text, strlen(text), &errs);
    ok(cfg != NULL, "a config without mirror loads");
    if (!cfg)
        return;
    struct state_map m;
    runtime_map_from_config(cfg, &m);
    is_str(state_map_value(&m, "mirror"), "off", "no mirror: \"off\"");
    state_map_dispose(&m);
    char err[256] = "";
    ok(runtime_map_apply_item(cfg, "mirror", "v2,12.5", err, sizeof(err)) == 0,
       "apply v2,12.5");
    ok(cfg->mirror.enabled && strcmp(cfg->mirror.version, "v2") == 0 &&
           cfg->mirror.percent_bp == 1250 && cfg->mirror.n_methods == 2 &&
           strcmp(cfg->mirror.methods[0], "GET") == 0,
       "a mirror the file did not have gets the defaults (GET, HEAD)");
    ok(config_validate(cfg, &errs) == 0, "and validates");
    runtime_map_from_config(cfg, &m);
    is_str(state_map_value(&m, "mirror"), "v2,12.5", "canonical value round-trips");
    state_map_dispose(&m);
    static const char *const bad[] = {"v2", ",5", "v2,101", "v2,1.234", "v2,x", ""};
    int refused = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (runtime_map_apply_item(cfg, "mirror", bad[i], err, sizeof(err)) == 0)
            refused = 0;
    ok(refused, "malformed values are refused: %s", err);
    ok(cfg->mirror.enabled && cfg->mirror.percent_bp == 1250, "a refusal changed nothing");
    ok(runtime_map_apply_item(cfg, "mirror", "off", err, sizeof(err)) == 0 &&
           !cfg->mirror.enabled && strcmp(cfg->mirror.version, "v2") == 0,
       "off keeps the shadow's name for a later mirror set");
    ok(runtime_map_apply_item(cfg, "mirror", "v9,5", err, sizeof(err)) == 0 &&
           config_validate(cfg, &errs) < 0,
       "an undefined shadow is the validator's to refuse");
    config_free(cfg);
    config_errors_dispose(&errs);
}

int main(void)
{
    test_sampler();
    test_compare();
    test_chunkwalk();
    test_ring();
    test_runtime_key();
    return tap_done();
}
