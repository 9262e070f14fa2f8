/*
 * util.c — see util.h. Allocation wrappers (abort on OOM), parsing of the
 * small value types the config and control protocol share (durations,
 * addresses, percentages in basis points), clocks.
 */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void util_check_failed(const char *what, const char *file, int line)
{
    fprintf(stderr, "weir: invariant failed: %s (%s:%d)\n", what, file, line);
    abort();
}

static void *oom(size_t n)
{
    fprintf(stderr, "weir: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

bool util_sv_ieq(struct strview a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && strncasecmp(a.p, b, n) == 0;
}

bool util_streq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

void util_append(char *buf, size_t buflen, const char *sep, const char *fmt, ...)
{
    size_t used = strnlen(buf, buflen);
    if (used + 1 >= buflen)
        return;
    if (used > 0) {
        int n = snprintf(buf + used, buflen - used, "%s", sep);
        if (n < 0)
            return;
        used = strnlen(buf, buflen);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, buflen - used, fmt, ap);
    va_end(ap);
}

int util_parse_duration_ms(const char *s, uint32_t *out_ms)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned long long mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    if (v > 86400000ULL / mult)
        return -1;
    *out_ms = (uint32_t)(v * mult);
    return 0;
}

int util_parse_addr(const char *s, struct sockaddr_storage *out,
                    socklen_t *out_len, const char **errmsg)
{
    const char *dummy;
    if (!errmsg)
        errmsg = &dummy;
    char host[64];
    const char *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') {
            *errmsg = "expected [IPv6]:port";
            return -1;
        }
        hlen = (size_t)(rb - s - 1);
        if (hlen >= sizeof(host)) {
            *errmsg = "address too long";
            return -1;
        }
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            *errmsg = "expected host:port";
            return -1;
        }
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof(host)) {
            *errmsg = "expected host:port";
            return -1;
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (strchr(host, ':')) {
            *errmsg = "IPv6 addresses are written [addr]:port";
            return -1;
        }
    }
    const char *ps = colon + 1;
    if (!*ps || strlen(ps) > 5) {
        *errmsg = "port must be 1..65535";
        return -1;
    }
    unsigned port = 0;
    for (const char *q = ps; *q; q++) {
        if (!isdigit((unsigned char)*q)) {
            *errmsg = "port must be 1..65535";
            return -1;
        }
        port = port * 10 + (unsigned)(*q - '0');
    }
    if (port == 0 || port > 65535) {
        *errmsg = "port must be 1..65535";
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (s[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *out_len = sizeof(*in4);
        return 0;
    }
    if (s[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *out_len = sizeof(*in6);
        return 0;
    }
    *errmsg = "host must be a numeric IPv4 address, [IPv6] or localhost";
    return -1;
}

int util_parse_percent_bp(const char *s, uint32_t *out_bp)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    uint32_t whole = 0, frac = 0;
    const char *p = s;
    int ndig = 0;
    while (isdigit((unsigned char)*p)) {
        whole = whole * 10 + (uint32_t)(*p - '0');
        if (whole > 100 || ++ndig > 3)
            return -1;
        p++;
    }
    if (*p == '.') {
        p++;
        int nf = 0;
        while (isdigit((unsigned char)*p)) {
            if (++nf > 2)
                return -1;
            frac = frac * 10 + (uint32_t)(*p - '0');
            p++;
        }
        if (nf == 0)
            return -1;
        if (nf == 1)
            frac *= 10;
    }
    if (*p)
        return -1;
    uint32_t bp = whole * 100 + frac;
    if (bp > 10000)
        return -1;
    *out_bp = bp;
    return 0;
}

void util_format_bp(uint32_t bp, char *buf, size_t buflen)
{
    if (bp % 100 == 0)
        snprintf(buf, buflen, "%u", bp / 100);
    else if (bp % 10 == 0)
        snprintf(buf, buflen, "%u.%u", bp / 100, (bp % 100) / 10);
    else
        snprintf(buf, buflen, "%u.%02u", bp / 100, bp % 100);
}

void util_format_addr(const struct sockaddr *sa, char *buf, size_t buflen)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        snprintf(buf, buflen, "%s:%u", host, ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, buflen, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, buflen, "unix");
    }
}

uint64_t util_now_ms(void)
{
    return util_now_us() / 1000;
}

uint64_t util_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int util_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

uint64_t util_random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
        v = util_now_us() ^ ((uint64_t)(uintptr_t)&v << 16);
    return v;
}
