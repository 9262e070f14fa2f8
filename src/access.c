/*
 * access.c — see access.h. A line is formatted on the worker into a stack
 * buffer and written with one write(2) (lines never interleave).
 */
#include "access.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static atomic_int out_fd = STDOUT_FILENO; /* -1 = off */
static atomic_int format = LOG_F_JSON;

int access_configure(const struct config *cfg)
{
    int fd = -1;
    if (cfg->access_log.enabled) {
        if (cfg->access_log.path) {
            fd = open(cfg->access_log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd < 0) {
                log_error("access log %s: cannot open: %m", cfg->access_log.path);
                return -1;
            }
        } else {
            fd = STDOUT_FILENO;
        }
    }
    int old = atomic_exchange(&out_fd, fd);
    atomic_store(&format, (int)cfg->access_log.format);
    if (old > STDERR_FILENO)
        close(old);
    return 0;
}

void access_reopen(void)
{
}

void access_shutdown(void)
{
}

/* Append s to b as JSON string contents (escaped). */
static size_t json_str(char *b, size_t cap, size_t len, const char *s, size_t n)
{
    for (size_t i = 0; i < n && len + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            b[len++] = '\\';
            b[len++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            len += (size_t)snprintf(b + len, cap - len, "\\u%04x", ch);
        } else {
            b[len++] = (char)ch;
        }
    }
    return len;
}

void access_log_txn(struct worker *w, const struct access_entry *e)
{
    (void)w;
    int fd = atomic_load_explicit(&out_fd, memory_order_relaxed);
    if (fd < 0)
        return;
    char b[2048];
    size_t cap = sizeof(b) - 2, n = 0;
    char client[64];
    util_format_addr(e->client, client, sizeof(client));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    n += strftime(b + n, cap - n, "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(b + n, cap - n, ".%03ldZ\",\"client\":\"%s\",\"method\":\"",
                          ts.tv_nsec / 1000000, client);
    n = json_str(b, cap, n, e->method.p, e->method.len);
    n += (size_t)snprintf(b + n, cap - n, "\",\"target\":\"");
    n = json_str(b, cap, n, e->target.p, e->target.len);
    n += (size_t)snprintf(b + n, cap - n,
                          "\",\"status\":%d,\"bytes\":%llu,\"version\":%s%s%s,"
                          "\"endpoint\":%s%s%s,\"route\":\"%s\"",
                          e->status, (unsigned long long)e->bytes,
                          e->version ? "\"" : "", e->version ? e->version : "null",
                          e->version ? "\"" : "", e->endpoint ? "\"" : "",
                          e->endpoint ? e->endpoint : "null", e->endpoint ? "\"" : "",
                          router_reason_name(e->reason));
    if (n < cap && e->rule >= 0)
        n += (size_t)snprintf(b + n, cap - n, ",\"rule\":%d", e->rule);
    if (n < cap && e->bucket >= 0)
        n += (size_t)snprintf(b + n, cap - n, ",\"bucket\":%d", (int)e->bucket);
    if (n < cap)
        n += (size_t)snprintf(b + n, cap - n,
                              ",\"upstream_ms\":%.3f,\"duration_ms\":%.3f,\"retries\":%u",
                              (double)e->upstream_us / 1000.0,
                              (double)e->total_us / 1000.0, e->retries);
    if (n < cap && e->error)
        n += (size_t)snprintf(b + n, cap - n, ",\"error\":\"%s\"", e->error);
    if (n > cap)
        n = cap;
    b[n++] = '}';
    b[n++] = '\n';
    ssize_t wr = write(fd, b, n);
    (void)wr;
}
