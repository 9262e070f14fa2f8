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

/* Go's time.ParseDuration units, in nanoseconds ("µs" as U+00B5 or U+03BC). */
static const struct {
    const char *name;
    uint64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000},
    {"\xce\xbcs", 1000},
    {"ms", 1000000},
    {"s", 1000000000ULL},
    {"m", 60000000000ULL},
    {"h", 3600000000000ULL},
};

#define DURATION_MAX_NS (86400ULL * 1000000000ULL) /* 24h */

/*
 * Go's grammar (what Kubernetes and most Go tools write): one or more
 * NUMBER UNIT pairs, NUMBER being digits with an optional fraction, summed:
 * "1h2m3.5s", "1m30s", "250ms"; a bare "0" is zero. Computed in
 * nanoseconds with overflow checks, then required to be whole
 * milliseconds (what weir keeps) and at most 24h.
 */
int util_parse_duration(const char *s, uint32_t *out_ms, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!s || !*s) {
        *why = "empty";
        return -1;
    }
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    uint64_t total_ns = 0;
    const char *p = s;
    while (*p) {
        uint64_t whole = 0, frac = 0, frac_scale = 1;
        bool digits = false;
        for (; *p >= '0' && *p <= '9'; p++) {
            digits = true;
            if (whole > DURATION_MAX_NS) {
                *why = "too long (at most 24h)";
                return -1;
            }
            whole = whole * 10 + (uint64_t)(*p - '0');
        }
        if (*p == '.') {
            p++;
            for (; *p >= '0' && *p <= '9'; p++) {
                digits = true;
                if (frac_scale < 1000000000000000000ULL) { /* digits past 1e-18 cannot matter */
                    frac = frac * 10 + (uint64_t)(*p - '0');
                    frac_scale *= 10;
                }
            }
        }
        if (!digits) {
            *why = p == s ? "expected a number" : "expected a number after the unit";
            return -1;
        }
        size_t ulen = 0;
        while (p[ulen] && !(p[ulen] >= '0' && p[ulen] <= '9') && p[ulen] != '.')
            ulen++;
        if (ulen == 0) {
            *why = "a number without a unit (ns, us, ms, s, m or h)";
            return -1;
        }
        uint64_t unit = 0;
        for (size_t i = 0; i < ARRAY_LEN(duration_units); i++)
            if (strlen(duration_units[i].name) == ulen &&
                memcmp(duration_units[i].name, p, ulen) == 0)
                unit = duration_units[i].ns;
        if (!unit) {
            *why = "unknown unit (use ns, us, ms, s, m or h)";
            return -1;
        }
        p += ulen;
        if (whole > DURATION_MAX_NS / unit) {
            *why = "too long (at most 24h)";
            return -1;
        }
        /* frac / frac_scale of a unit; unit <= 3.6e12 and frac < frac_scale
         * <= 1e18 could overflow a product, so scale down first. */
        uint64_t part = whole * unit;
        uint64_t f = frac, fs = frac_scale;
        while (fs > 1 && f > UINT64_MAX / unit) {
            f /= 10;
            fs /= 10;
        }
        uint64_t frac_ns = f * unit / fs;
        if (f * unit % fs) {
            *why = "finer than a millisecond (weir keeps whole milliseconds)";
            return -1;
        }
        part += frac_ns;
        if (part > DURATION_MAX_NS - total_ns) {
            *why = "too long (at most 24h)";
            return -1;
        }
        total_ns += part;
    }
    if (total_ns % 1000000) {
        *why = "finer than a millisecond (weir keeps whole milliseconds)";
        return -1;
    }
    *out_ms = (uint32_t)(total_ns / 1000000);
    return 0;
}

int util_parse_duration_ms(const char *s, uint32_t *out_ms)
{
    return util_parse_duration(s, out_ms, NULL);
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

int util_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
