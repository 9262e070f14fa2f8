/*
 * bench_url.h — the one URL weir-bench loads: http://HOST[:PORT][/PATH[?Q]]
 * with HOST an IPv4 address, a [bracketed IPv6] address or a name. Only
 * plain http: weir-bench measures weir's HTTP/1.1 listener (https is
 * refused with a clear message). Pure; resolution happens in weir_bench.c.
 */
#ifndef WEIR_BENCH_URL_H
#define WEIR_BENCH_URL_H

#include <stddef.h>

struct bench_url {
    char host[256];      /* without brackets, for getaddrinfo */
    char port[6];        /* decimal, "80" when the URL has none */
    char authority[270]; /* host[:port] as written: the Host header value */
    char target[2048];   /* path and query, "/" when empty; no fragment */
};

/*
 * Parse s into out. Returns 0, or -1 with errbuf holding a human reason
 * ("https is not supported ...", "port must be 1..65535", ...).
 */
int bench_url_parse(const char *s, struct bench_url *out, char *errbuf,
                    size_t errlen);

#endif
