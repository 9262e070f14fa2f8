/*
 * bench_url.c — see bench_url.h. RFC 3986 §3 split into scheme, authority
 * and path; no percent-decoding (the target is sent as written).
 */
#include "bench_url.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *errbuf, size_t errlen, const char *why)
{
    snprintf(errbuf, errlen, "%s", why);
    return -1;
}

int bench_url_parse(const char *s, struct bench_url *out, char *errbuf,
                    size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncasecmp(s, "https://", 8) == 0)
        return fail(errbuf, errlen,
                    "https is not supported: weir-bench speaks plain "
                    "HTTP/1.1 (use http://)");
    if (strncasecmp(s, "http://", 7) != 0)
        return fail(errbuf, errlen,
                    "the URL must start with http:// (e.g. "
                    "http://127.0.0.1:8080/)");
    const char *a = s + 7;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    if (alen == 0)
        return fail(errbuf, errlen, "the URL has no host");
    if (memchr(a, '@', alen))
        return fail(errbuf, errlen, "user information in the URL is not "
                                    "supported");
    for (size_t i = 0; i < alen; i++)
        if ((unsigned char)a[i] <= ' ' || a[i] == 0x7f)
            return fail(errbuf, errlen, "the host contains a space or a "
                                        "control character");
    if (alen >= sizeof(out->authority))
        return fail(errbuf, errlen, "the host is too long");
    memcpy(out->authority, a, alen);

    const char *port = NULL;
    size_t hlen;
    const char *h = a;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', alen);
        if (!rb)
            return fail(errbuf, errlen, "missing ']' after the IPv6 address");
        h = a + 1;
        hlen = (size_t)(rb - h);
        if (rb + 1 < rest) {
            if (rb[1] != ':')
                return fail(errbuf, errlen,
                            "expected ':PORT' after the IPv6 address");
            port = rb + 2;
        }
        if (hlen == 0 || !memchr(h, ':', hlen))
            return fail(errbuf, errlen, "bad IPv6 address in brackets");
    } else {
        const char *colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
        if (colon) {
            port = colon + 1;
            if (memchr(port, ':', (size_t)(rest - port)))
                return fail(errbuf, errlen,
                            "IPv6 addresses are written in brackets: "
                            "http://[::1]:8080/");
        }
        if (hlen == 0)
            return fail(errbuf, errlen, "the URL has no host");
    }
    if (hlen >= sizeof(out->host))
        return fail(errbuf, errlen, "the host is too long");
    memcpy(out->host, h, hlen);

    if (port) {
        size_t plen = (size_t)(rest - port);
        unsigned v = 0;
        if (plen == 0 || plen > 5)
            return fail(errbuf, errlen, "the port must be 1..65535");
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9')
                return fail(errbuf, errlen, "the port must be 1..65535");
            v = v * 10 + (unsigned)(port[i] - '0');
        }
        if (v == 0 || v > 65535)
            return fail(errbuf, errlen, "the port must be 1..65535");
        snprintf(out->port, sizeof(out->port), "%u", v);
    } else {
        snprintf(out->port, sizeof(out->port), "80");
    }

    size_t tlen = strcspn(rest, "#");
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)rest[i] <= ' ' || rest[i] == 0x7f)
            return fail(errbuf, errlen, "the path contains a space or a "
                                        "control character (percent-encode "
                                        "it)");
    if (tlen + 2 > sizeof(out->target))
        return fail(errbuf, errlen, "the path is too long");
    size_t n = 0;
    if (rest[0] != '/')
        out->target[n++] = '/';
    memcpy(out->target + n, rest, tlen);
    return 0;
}
