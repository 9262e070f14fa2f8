/*
 * test_access.c — access-log lines byte for byte (access_format_line): the
 * JSON line and the combined format for a routed request, an unrouted one
 * (nulls and dashes), hostile header values (quotes, backslashes, control
 * characters, invalid UTF-8: every JSON line must parse, every combined
 * line must stay one line with its quoting intact), and cuts of long
 * fields that keep the line whole.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "access_format.h"
#include "access_id.h"
#include "json.h"
#include "tap.h"

#define T0 1795876207 /* 2026-11-28T14:30:07Z */

static struct sockaddr_in client4;
static struct sockaddr_in6 client6;

static struct strview sv(const char *s)
{
    return (struct strview){s, strlen(s)};
}

static struct access_entry routed(void)
{
    struct access_entry e = {
        .client = (const struct sockaddr *)&client4,
        .method = sv("GET"),
        .target = sv("/x?a=1"),
        .http_minor = 1,
        .status = 200,
        .bytes = 512,
        .version = "v1",
        .endpoint = "10.0.0.1:8080",
        .reason = ROUTE_R_SPLIT,
        .rule = -1,
        .bucket = -1,
        .upstream_us = 412,
        .total_us = 530,
        .retries = 0,
    };
    return e;
}

/* Format e at T0 + 123 ms into a NUL-terminated static buffer. */
static const char *line(enum config_log_format f, const struct access_entry *e,
                        size_t cap)
{
    static char buf[8192];
    struct access_format_clock clock;
    memset(&clock, 0, sizeof(clock));
    struct timespec ts = {.tv_sec = T0, .tv_nsec = 123456789};
    if (cap > sizeof(buf) - 1)
        cap = sizeof(buf) - 1;
    size_t n = access_format_line(buf, cap, f, &clock, &ts, e);
    buf[n] = '\0';
    return buf;
}

static bool parses(const char *s)
{
    char err[128];
    struct json_value *v = json_parse(s, strlen(s), err, sizeof(err));
    if (!v)
        printf("#   parse error: %s\n", err);
    json_free(v);
    return v != NULL;
}

static void test_json_routed(void)
{
    struct router_header h[] = {{sv("Host"), sv("a")}, {sv("USER-AGENT"), sv("curl/8")}};
    struct access_entry e = routed();
    e.headers = h;
    e.n_headers = 2;
    e.request_id = sv("abc-1");
    e.bytes_received = 78;
    e.connected = true;
    e.upstream_connect_us = 120;
    is_str(line(LOG_F_JSON, &e, 4095),
           "{\"time\":\"2026-11-28T14:30:07.123Z\",\"request_id\":\"abc-1\","
           "\"client\":\"10.1.2.3\","
           "\"client_port\":51234,\"method\":\"GET\",\"host\":\"a\",\"target\":\"/x?a=1\","
           "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":512,\"bytes_received\":78,"
           "\"version\":\"v1\",\"endpoint\":\"10.0.0.1:8080\",\"route\":\"split\","
           "\"rule\":null,\"bucket\":null,\"upstream_ms\":0.412,\"upstream_connect_ms\":0.120,"
           "\"duration_ms\":0.530,\"retries\":0,\"user_agent\":\"curl/8\","
           "\"referer\":null,\"error\":null,\"tls\":null,\"sni\":null,\"alpn\":null}",
           "JSON line of a routed request (header names case-insensitive)");

    e.reason = ROUTE_R_RULE;
    e.rule = 2;
    e.bucket = 4711;
    e.upstream_us = 12345678;
    e.total_us = 12345999;
    e.retries = 1;
    e.connected = false; /* a pooled conn: no connect time */
    e.client = (const struct sockaddr *)&client6;
    e.http_minor = 0;
    const char *l = line(LOG_F_JSON, &e, 4095);
    ok(strstr(l, "\"client\":\"::1\",\"client_port\":8080,") != NULL,
       "IPv6 client without brackets, port apart");
    ok(strstr(l, "\"protocol\":\"HTTP/1.0\"") != NULL, "HTTP/1.0");
    ok(strstr(l, "\"route\":\"rule\",\"rule\":2,\"bucket\":4711,"
                 "\"upstream_ms\":12345.678,\"upstream_connect_ms\":null,"
                 "\"duration_ms\":12345.999,\"retries\":1") != NULL,
       "rule, bucket, milliseconds with three decimals, retries");
}

static void test_json_unrouted(void)
{
    struct access_entry e = {
        .client = (const struct sockaddr *)&client4,
        .status = 400,
        .rule = 3,
        .bucket = 17,
        .total_us = 7,
        .error = "bad request",
    };
    is_str(line(LOG_F_JSON, &e, 4095),
           "{\"time\":\"2026-11-28T14:30:07.123Z\",\"request_id\":null,"
           "\"client\":\"10.1.2.3\","
           "\"client_port\":51234,\"method\":\"\",\"host\":null,\"target\":\"\","
           "\"protocol\":null,\"status\":400,\"bytes\":0,\"bytes_received\":0,"
           "\"version\":null,\"endpoint\":null,\"route\":null,"
           "\"rule\":null,\"bucket\":null,\"upstream_ms\":null,\"upstream_connect_ms\":null,"
           "\"duration_ms\":0.007,\"retries\":0,\"user_agent\":null,"
           "\"referer\":null,\"error\":\"bad request\",\"tls\":null,\"sni\":null,\"alpn\":null}",
           "JSON line of a request that never parsed: nulls, rule/bucket ignored");
}

static void test_combined(void)
{
    struct router_header h[] = {{sv("Referer"), sv("http://r/")},
                                {sv("User-Agent"), sv("curl/8")}};
    struct access_entry e = routed();
    e.headers = h;
    e.n_headers = 2;
    is_str(line(LOG_F_COMBINED, &e, 4095),
           "10.1.2.3 - - [28/Nov/2026:14:30:07 +0000] \"GET /x?a=1 HTTP/1.1\" 200 512 "
           "\"http://r/\" \"curl/8\" version=v1 endpoint=10.0.0.1:8080 route=split "
           "rule=- bucket=- upstream_ms=0.412 duration_ms=0.530 retries=0 error=\"-\" "
           "request_id=- bytes_received=0 upstream_connect_ms=- host=\"-\"",
           "combined line of a routed request");

    struct access_entry u = {
        .client = (const struct sockaddr *)&client4,
        .status = 408,
        .total_us = 1000,
        .error = "client header \"timeout\"",
    };
    is_str(line(LOG_F_COMBINED, &u, 4095),
           "10.1.2.3 - - [28/Nov/2026:14:30:07 +0000] \"-\" 408 0 \"-\" \"-\" "
           "version=- endpoint=- route=- rule=- bucket=- upstream_ms=- "
           "duration_ms=1.000 retries=0 error=\"client header \\x22timeout\\x22\" "
           "request_id=- bytes_received=0 upstream_connect_ms=- host=\"-\"",
           "combined line of an unrouted request: dashes, error escaped");
}

static void test_hostile(void)
{
    /* A quote, a backslash, a tab, a CR/LF pair, DEL, a valid é, a lone
     * continuation byte, a truncated 3-byte sequence, an overlong '/'. */
    static const char ua[] = "a\"b\\c\td\r\ne\x7f\xc3\xa9\x80\xe2\x82\xc0\xaf";
    struct router_header h[] = {{sv("User-Agent"), {ua, sizeof(ua) - 1}}};
    struct access_entry e = routed();
    e.headers = h;
    e.n_headers = 1;
    e.target = sv("/\"}{\\");
    const char *l = line(LOG_F_JSON, &e, 4095);
    ok(strstr(l, "\"user_agent\":\"a\\\"b\\\\c\\u0009d\\u000d\\u000ae\\u007f\xc3\xa9"
                 "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\",") != NULL,
       "JSON: quote and backslash escaped, controls as \\u00XX, invalid UTF-8 as U+FFFD, "
       "valid UTF-8 kept");
    ok(strstr(l, "\"target\":\"/\\\"}{\\\\\"") != NULL, "JSON: target escaped");
    ok(strchr(l, '\n') == NULL && strchr(l, '\r') == NULL, "JSON: still one line");
    ok(parses(l), "JSON: the line parses");

    l = line(LOG_F_COMBINED, &e, 4095);
    ok(strstr(l, "\"a\\x22b\\x5cc\\x09d\\x0d\\x0ae\\x7f\\xc3\\xa9\\x80\\xe2\\x82\\xc0\\xaf\"") != NULL,
       "combined: quote, backslash, controls and every non-ASCII byte as \\xHH");
    ok(strstr(l, "\"GET /\\x22}{\\x5c HTTP/1.1\"") != NULL, "combined: target escaped");
    ok(strchr(l, '\n') == NULL, "combined: still one line");
}

static void test_cuts(void)
{
    /* 3000 bytes of target: cut at 2048 with "...". */
    char *target = malloc(3000);
    memset(target, 'a', 3000);
    char *ua = malloc(600);
    memset(ua, '"', 600); /* each escapes to two bytes */
    struct router_header h[] = {{sv("User-Agent"), {ua, 600}}};
    struct access_entry e = routed();
    e.target = (struct strview){target, 3000};
    e.headers = h;
    e.n_headers = 1;
    const char *l = line(LOG_F_JSON, &e, 4095);
    const char *t = strstr(l, "\"target\":\"");
    ok(t && strncmp(t + 10 + 2048, "...\",", 5) == 0 && t[10 + 2047] == 'a',
       "JSON: a long target is cut at 2048 bytes with ...");
    const char *u = strstr(l, "\"user_agent\":\"");
    ok(u && strncmp(u + 14 + 2 * 512, "...\",", 5) == 0, "JSON: User-Agent cut at 512 bytes of input");
    ok(parses(l), "JSON: the line with cut fields parses");

    /* A line buffer too small for everything: cut at cap, never past it,
     * and never in the middle of an escape. */
    memset(target, '\x01', 3000);
    l = line(LOG_F_JSON, &e, 1000);
    size_t n = strlen(l);
    is_int(n, 1000, "JSON: a line too long is cut at its cap");
    const char *last = strrchr(l, '\\');
    ok(last && strncmp(last, "\\u0001\"", 7) == 0,
       "JSON: the cut falls between escapes, not inside one");
    free(target);
    free(ua);
}

/* The client address is written by hand for IPv4: every octet width. */
static void test_ipv4_octets(void)
{
    static const char *addrs[] = {"0.0.0.0", "9.10.99.100", "255.254.200.1", "127.0.0.1"};
    int bad = 0;
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(65535)};
        inet_pton(AF_INET, addrs[i], &a.sin_addr);
        struct access_entry e = routed();
        e.client = (const struct sockaddr *)&a;
        char want[96];
        snprintf(want, sizeof(want), "\"client\":\"%s\",\"client_port\":65535,", addrs[i]);
        if (!strstr(line(LOG_F_JSON, &e, 4095), want))
            bad++;
        snprintf(want, sizeof(want), "%s - - [", addrs[i]);
        if (strncmp(line(LOG_F_COMBINED, &e, 4095), want, strlen(want)) != 0)
            bad++;
    }
    is_int(bad, 0, "IPv4 clients of every octet width, in JSON and combined lines");
}

/* access_log.fields: only the named fields, in the order given. */
static void test_field_list(void)
{
    struct router_header h[] = {{sv("Host"), sv("api.example")}};
    struct access_entry e = routed();
    e.headers = h;
    e.n_headers = 1;
    e.request_id = sv("0123456789abcdef0123456789abcdef");
    e.bytes_received = 1234;
    e.connected = true;
    e.upstream_connect_us = 2500;
    const uint32_t f[] = {ACCESS_F_STATUS, ACCESS_F_REQUEST_ID, ACCESS_F_HOST,
                          ACCESS_F_BYTES_RECEIVED, ACCESS_F_UPSTREAM_CONNECT_MS, ACCESS_F_TIME};
    static char buf[1024];
    struct access_format_clock clock;
    memset(&clock, 0, sizeof(clock));
    struct timespec ts = {.tv_sec = T0, .tv_nsec = 5000000};
    size_t n = access_format_line_fields(buf, sizeof(buf) - 1, LOG_F_JSON, f, ARRAY_LEN(f),
                                         &clock, &ts, &e);
    buf[n] = '\0';
    is_str(buf,
           "{\"status\":200,\"request_id\":\"0123456789abcdef0123456789abcdef\","
           "\"host\":\"api.example\",\"bytes_received\":1234,\"upstream_connect_ms\":2.500,"
           "\"time\":\"2026-11-28T14:30:07.005Z\"}",
           "a field list picks and orders the JSON line's fields");
    ok(parses(buf), "the chosen-fields line parses");
    n = access_format_line_fields(buf, sizeof(buf) - 1, LOG_F_JSON, f, 1, &clock, &ts, &e);
    buf[n] = '\0';
    is_str(buf, "{\"status\":200}", "a one-field list");
    for (int i = 0; i < ACCESS_F_COUNT; i++)
        ok(access_field_id(access_field_name((enum access_field)i)) == i,
           "field name %s maps back to its id", access_field_name((enum access_field)i));
    ok(access_field_id("staus") == -1, "an unknown field name has no id");
}

/* The request id: a sane client id is kept, anything else replaced by a
 * made one; made ids are 32 hex digits and never repeat. */
static void test_request_id(void)
{
    char buf[ACCESS_ID_LEN + 1];
    struct router_header one[] = {{sv("Host"), sv("a")}, {sv("x-REQUEST-id"), sv("trace-1/abc")}};
    struct strview id = access_id_pick(one, 2, buf);
    ok(id.p == one[1].value.p && id.len == one[1].value.len, "a sane client id is the id");
    static const char *const bad[] = {"", "has space", "tab\there", "caf\xc3\xa9", "del\x7f"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct router_header h[] = {{sv("X-Request-Id"), sv(bad[i])}};
        id = access_id_pick(h, 1, buf);
        ok(id.p == buf && id.len == ACCESS_ID_LEN, "client id %zu (not visible ASCII) is replaced", i);
    }
    char longv[ACCESS_ID_MAX + 2];
    memset(longv, 'a', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    ok(!access_id_is_sane((struct strview){longv, ACCESS_ID_MAX + 1}) &&
           access_id_is_sane((struct strview){longv, ACCESS_ID_MAX}),
       "ids of up to %d bytes are kept, longer ones not", ACCESS_ID_MAX);
    struct router_header two[] = {{sv("X-Request-Id"), sv("a")}, {sv("X-Request-Id"), sv("b")}};
    id = access_id_pick(two, 2, buf);
    ok(id.p == buf, "two X-Request-Id fields: a made id");
    id = access_id_pick(NULL, 0, buf);
    bool hex = id.len == 32;
    for (size_t i = 0; hex && i < id.len; i++)
        hex = (id.p[i] >= '0' && id.p[i] <= '9') || (id.p[i] >= 'a' && id.p[i] <= 'f');
    ok(hex && buf[32] == '\0', "a made id is 32 lowercase hex digits: %s", buf);
    enum { N = 20000 };
    static char ids[N][ACCESS_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        access_id_make(ids[i]);
    qsort(ids, N, sizeof(ids[0]), (int (*)(const void *, const void *))strcmp);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    is_int(dups, 0, "20000 made ids, no repeat");
}

int main(void)
{
    client4.sin_family = AF_INET;
    client4.sin_port = htons(51234);
    inet_pton(AF_INET, "10.1.2.3", &client4.sin_addr);
    client6.sin6_family = AF_INET6;
    client6.sin6_port = htons(8080);
    inet_pton(AF_INET6, "::1", &client6.sin6_addr);

    test_json_routed();
    test_json_unrouted();
    test_combined();
    test_hostile();
    test_cuts();
    test_ipv4_octets();
    test_field_list();
    test_request_id();
    return tap_done();
}
