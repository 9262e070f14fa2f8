/*
 * util.h — small helpers shared by every file: allocation that aborts on
 * out-of-memory (the one xmalloc helper of DESIGN.md §3), length-carrying
 * string views, duration and address parsing, monotonic clock.
 *
 * Owns nothing; all functions are pure or thread-safe.
 */
#ifndef WEIR_UTIL_H
#define WEIR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WUR __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Release-mode assert: broken invariants abort even in optimised builds. */
#define CHECK(cond)                                       \
    do {                                                  \
        if (__builtin_expect(!(cond), 0))                 \
            util_check_failed(#cond, __FILE__, __LINE__); \
    } while (0)

/* Abort with a message naming the failed invariant. Any thread. */
__attribute__((noreturn)) void util_check_failed(const char *what,
                                                 const char *file, int line);

/* Allocation: never returns NULL (aborts on out-of-memory). Any thread. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* A borrowed byte range; not NUL-terminated. */
struct strview {
    const char *p; /* borrowed */
    size_t len;
};

/* Case-insensitive equality of a view and a NUL-terminated ASCII string. */
bool util_sv_ieq(struct strview a, const char *b);

/* Both NULL, or equal strings. */
bool util_streq_null(const char *a, const char *b);

/* Append a formatted piece to the NUL-terminated buf (of buflen bytes),
 * after sep unless buf is empty; cut at the end of buf. */
void util_append(char *buf, size_t buflen, const char *sep, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Parse a duration as Go and Kubernetes write them ("250ms", "2s", "1m30s",
 * "1h2m3.5s", "0"; units ns, us, ms, s, m, h) into milliseconds. Returns 0,
 * or -1 if malformed, above 24h or not a whole number of milliseconds; *why
 * (if why is non-NULL) then gets a short static reason.
 */
int util_parse_duration(const char *s, uint32_t *out_ms, const char **why) WUR;

/* util_parse_duration() without the reason. */
int util_parse_duration_ms(const char *s, uint32_t *out_ms) WUR;

/*
 * Parse "host:port" or "[v6]:port" with a numeric IPv4/IPv6 host (or
 * "localhost") into a socket address. Returns 0 or -1 (errmsg gets a short
 * human reason, if non-NULL).
 */
int util_parse_addr(const char *s, struct sockaddr_storage *out,
                    socklen_t *out_len, const char **errmsg) WUR;

/*
 * Parse a percentage with at most two decimals ("90", "12.5", "0.01") into
 * basis points (1 % = 100 bp). Returns 0, or -1 if malformed, negative,
 * over 100 or with more than two decimals.
 */
int util_parse_percent_bp(const char *s, uint32_t *out_bp) WUR;

/* Write a basis-point value as a percent ("90", "12.5", "0.01"). */
void util_format_bp(uint32_t bp, char *buf, size_t buflen);

/* Format a socket address as "1.2.3.4:80" or "[::1]:80". */
void util_format_addr(const struct sockaddr *sa, char *buf, size_t buflen);

/* Monotonic clock in milliseconds / microseconds. Any thread. */
uint64_t util_now_ms(void);
uint64_t util_now_us(void);

/* 64 random bits from the kernel (getrandom); never fails (falls back to
 * time and address entropy). */
uint64_t util_random_u64(void);

/* Set O_NONBLOCK and FD_CLOEXEC. Returns 0 or -1. */
int util_set_nonblock(int fd) WUR;

/* The value of one hex digit (either case), or -1 when c is not one. */
int util_hexval(int c);

#endif
