/*
 * fuzz_http1_response.c — a response head from a hostile upstream, through
 * what proxy.c calls on it: http1_scan_head (one shot and in pieces),
 * http1_parse_response over an exact-size copy of the head, and
 * http1_write_response toward the client, for a 1.1 and a 1.0 client, a
 * GET and a HEAD, with and without the version header and a Set-Cookie.
 *
 * Invariants:
 *  - the scanner's verdict does not depend on how the bytes arrived;
 *  - the head written to the client is a clean head (scanner accepts it,
 *    it ends exactly where the write ended), parses back with the same
 *    status, and states exactly the framing http1_write_response returned
 *    (so the client reads the body the way weir writes it: no response
 *    splitting); the version header appears exactly once.
 */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "fuzz.h"
#include "http1.h"

#define MAX_HEADERS 256 /* proxy.c: RES_HEADERS_MAX */

static struct router_header hdrs[MAX_HEADERS];
static struct router_header hdrs2[MAX_HEADERS + 16];

static size_t count_named(const struct router_header *h, size_t n, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == strlen(name) && strncasecmp(h[i].name.p, name, h[i].name.len) == 0)
            k++;
    return k;
}

static void check_write(const struct http1_response *res, const struct http1_back *back)
{
    struct evbuffer *out = evbuffer_new();
    enum http1_framing f = http1_write_response(out, res, back);
    size_t len = evbuffer_get_length(out);
    char *w = malloc(len);
    evbuffer_remove(out, w, len);
    evbuffer_free(out);

    struct http1_scan sc = {0};
    size_t hl = 0;
    const char *err = NULL;
    FUZZ_CHECK(http1_scan_head(&sc, w, len, &hl, &err) == H1_SCAN_DONE);
    FUZZ_CHECK(hl == len);
    struct http1_response again;
    memset(&again, 0, sizeof(again));
    again.headers = hdrs2;
    again.max_headers = MAX_HEADERS + 16;
    FUZZ_CHECK(http1_parse_response(&again, w, len, back->head_request, &err) == 0);
    FUZZ_CHECK(again.status == res->status);
    if (res->status != 101) {
        FUZZ_CHECK(again.framing == f);
        if (f == H1_F_LENGTH)
            FUZZ_CHECK(again.content_length == res->content_length);
        if (back->client_minor == 0)
            FUZZ_CHECK(f != H1_F_CHUNKED);
    }
    if (back->version_header)
        FUZZ_CHECK(count_named(again.headers, again.n_headers, back->version_header) == 1);
    free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct http1_scan sc = {0};
    size_t head_len = 0;
    const char *err = NULL;
    enum http1_scan_result r = http1_scan_head(&sc, p, size, &head_len, &err);

    uint64_t seed = fuzz_hash(data, size);
    struct http1_scan inc = {0};
    size_t inc_len = 0;
    enum http1_scan_result ri = http1_scan_head(&inc, p, 0, &inc_len, &err);
    for (size_t n = 0; n < size && ri == H1_SCAN_MORE;) {
        n += 1 + fuzz_rand(&seed) % 64;
        if (n > size)
            n = size;
        ri = http1_scan_head(&inc, p, n, &inc_len, &err);
    }
    FUZZ_CHECK(ri == r);
    if (r != H1_SCAN_DONE)
        return 0;
    FUZZ_CHECK(inc_len == head_len);
    FUZZ_CHECK(head_len >= 4 && memcmp(p + head_len - 4, "\r\n\r\n", 4) == 0);

    char *head = malloc(head_len);
    memcpy(head, p, head_len);
    for (int method = 0; method < 2; method++) {
        bool is_head = method == 1;
        struct http1_response res;
        memset(&res, 0, sizeof(res));
        res.headers = hdrs;
        res.max_headers = MAX_HEADERS;
        err = NULL;
        if (http1_parse_response(&res, head, head_len, is_head, &err) < 0) {
            FUZZ_CHECK(err != NULL);
            break;
        }
        FUZZ_CHECK(res.n_headers <= MAX_HEADERS);
        if (is_head || http1_status_has_no_body(res.status))
            FUZZ_CHECK(res.framing == H1_F_NONE);
        if (res.status >= 100 && res.status < 200 && res.status != 101)
            continue; /* interim: proxy.c drops it or sends its own 100 line */
        for (int k = 0; k < 4; k++) {
            struct http1_back back = {
                .version_header = (seed & 1) ? "X-Version" : NULL,
                .version = "v2",
                .client_minor = (uint8_t)(k & 1),
                .close = (k & 2) != 0,
                .head_request = is_head,
                .set_cookie = (seed & 4) ? "weir=abc; Path=/; HttpOnly" : NULL,
            };
            check_write(&res, &back);
        }
    }
    free(head);
    return 0;
}
