/*
 * access.c — see access.h.
 *
 * Data path (worker): format the line into a stack buffer (bounded: long
 * targets and header values are cut, the line stays well-formed), then copy
 * it into the worker's ring — a single-producer single-consumer byte ring
 * with monotonically growing head (written by the worker) and tail
 * (written by the writer thread). A line is published whole by one store
 * of head, so the writer only ever sees complete lines and lines of
 * different workers never interleave. No lock, no syscall unless the
 * writer sleeps (then one eventfd write wakes it).
 *
 * Writer thread: loop { apply a pending output change; drain every ring
 * with writev(2) (blocking: it is the one thread allowed to wait for the
 * disk or a full stdout pipe); if it wrote something, wait ACCESS_BATCH_MS
 * so the next write carries a batch (a worker whose ring passes half full
 * cuts the wait short); if nothing was pending, announce sleeping,
 * re-check, and poll the eventfd (1 s at most) }. The sleeping flag and the
 * ring heads are seq_cst, so a worker that publishes a line either sees the
 * writer sleeping (and wakes it) or the writer sees the line (Dekker).
 * Under load a worker makes no syscall for logging at all.
 *
 * Output changes (reload, SIGUSR1) are requests to the writer, which owns
 * the fd: a reload's new fd (opened on the main thread, so errors reach the
 * caller) is handed over under `mu`; a reopen is a flag. Lines still in the
 * rings at a switch go to the new output.
 *
 * Time stamps are cached per worker per second (the formatted prefix), so
 * a line costs one clock_gettime, no gmtime/strftime.
 */
#include "access.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "worker.h"

#define ACCESS_RING_BYTES (1u << 20) /* per worker; a power of two */
#define ACCESS_LINE_MAX 4096         /* a longer line is cut (fields shortened) */
#define ACCESS_TARGET_MAX 2048       /* bytes of the target kept in a line */
#define ACCESS_HEADER_MAX 512        /* bytes of User-Agent / Referer kept */
#define ACCESS_BATCH_MS 10           /* busy writer: at most one write per ring per 10 ms */

struct access_ring {
    _Atomic uint64_t head; /* bytes ever published (worker writes) */
    char pad1[56];
    _Atomic uint64_t tail; /* bytes ever consumed (writer writes) */
    char pad2[56];
    _Atomic uint64_t dropped; /* lines that did not fit (worker writes) */
    /* Worker-only time caches: */
    time_t iso_sec;
    char iso[24];  /* "2026-11-28T14:30:07" */
    time_t clf_sec;
    char clf[32];  /* "28/Nov/2026:14:30:07 +0000" */
    char data[ACCESS_RING_BYTES];
};

/* Read by workers on every txn. */
static atomic_bool enabled;
static atomic_int format = LOG_F_JSON;
static _Atomic(struct access_ring *) rings[WORKERS_MAX];

/* Writer thread state. */
static pthread_t writer;
static bool writer_started;         /* main thread only */
static atomic_bool writer_sleeping;
static atomic_bool stop_requested;
static atomic_bool reopen_requested;
static int wake_fd = -1;            /* eventfd */
static _Atomic uint64_t write_errors; /* failed writes (their lines are lost) */

/* Output handover, main thread → writer (under mu). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool change_pending;
static int pending_fd = -1;   /* -1 = discard (logging off) */
static char *pending_path;    /* owned; NULL = stdout */

/* The writer's output (writer thread only after start). */
static int out_fd = -1;       /* -1 = discard */
static char *out_path;        /* owned; NULL = stdout (not ours to close) */

/* What the main thread last applied (to skip needless reopen on reload). */
static bool applied_once;
static bool applied_enabled;
static char *applied_path;    /* owned */

static bool same_path(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* ---- writer thread ----------------------------------------------------- */

static void wake_writer(void)
{
    uint64_t one = 1;
    ssize_t n = write(wake_fd, &one, sizeof(one));
    (void)n; /* an eventfd at its maximum is still readable: wake-up happens */
}

static void close_out(void)
{
    if (out_fd > STDERR_FILENO)
        close(out_fd);
    out_fd = -1;
    free(out_path);
    out_path = NULL;
}

/* Write all of iov to out_fd, retrying short writes; -1 on a hard error. */
static int write_all(struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(out_fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* stdout may be non-blocking: wait */
                struct pollfd p = {.fd = out_fd, .events = POLLOUT};
                poll(&p, 1, 1000);
                continue;
            }
            return -1;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Write out what ring r holds. Returns the bytes consumed. */
static uint64_t drain_ring(struct access_ring *r)
{
    uint64_t head = atomic_load(&r->head);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (head == tail)
        return 0;
    uint64_t len = head - tail;
    size_t off = (size_t)(tail & (ACCESS_RING_BYTES - 1));
    size_t first = ACCESS_RING_BYTES - off;
    struct iovec iov[2];
    int n = 1;
    iov[0].iov_base = r->data + off;
    iov[0].iov_len = len < first ? (size_t)len : first;
    if (len > first) {
        iov[1].iov_base = r->data;
        iov[1].iov_len = (size_t)(len - first);
        n = 2;
    }
    if (out_fd >= 0 && write_all(iov, n) < 0) {
        static uint64_t logged_errors;
        if (logged_errors++ % 1000 == 0)
            log_error("access log %s: write failed: %s (lines lost)",
                      out_path ? out_path : "stdout", strerror(errno));
        atomic_fetch_add_explicit(&write_errors, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&r->tail, head, memory_order_release);
    return len;
}

static uint64_t drain_all(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++) {
        struct access_ring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
        if (r)
            n += drain_ring(r);
    }
    return n;
}

static bool rings_empty(void)
{
    for (size_t i = 0; i < WORKERS_MAX; i++) {
        struct access_ring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
        if (r && atomic_load(&r->head) != atomic_load_explicit(&r->tail, memory_order_relaxed))
            return false;
    }
    return true;
}

static void apply_changes(void)
{
    pthread_mutex_lock(&mu);
    if (change_pending) {
        close_out();
        out_fd = pending_fd;
        out_path = pending_path;
        pending_fd = -1;
        pending_path = NULL;
        change_pending = false;
    }
    pthread_mutex_unlock(&mu);
    if (atomic_exchange(&reopen_requested, false) && out_path) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            log_error("access log %s: cannot reopen: %s (still writing to the old file)",
                      out_path, strerror(errno));
        } else {
            close(out_fd);
            out_fd = fd;
            log_info("access log %s reopened", out_path);
        }
    }
}

/* Wait for a wake-up on the eventfd for at most timeout_ms, then consume it. */
static void wait_wake(int timeout_ms)
{
    struct pollfd p = {.fd = wake_fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0) {
        uint64_t v;
        ssize_t n = read(wake_fd, &v, sizeof(v));
        (void)n;
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    for (;;) {
        apply_changes();
        uint64_t wrote = drain_all();
        if (atomic_load(&stop_requested)) {
            apply_changes();
            drain_all();
            break;
        }
        if (wrote) {
            /* Busy: let lines gather for a batch instead of one write(2)
             * per line. Workers wake us early when a ring passes half
             * full; they do not otherwise signal while we are awake. */
            wait_wake(ACCESS_BATCH_MS);
            continue;
        }
        atomic_store(&writer_sleeping, true);
        if (rings_empty() && !atomic_load(&stop_requested) &&
            !atomic_load(&reopen_requested))
            wait_wake(1000);
        atomic_store(&writer_sleeping, false);
    }
    close_out();
    return NULL;
}

/* ---- main thread -------------------------------------------------------- */

static int start_writer(void)
{
    if (writer_started)
        return 0;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
        log_error("access log: eventfd: %s", strerror(errno));
        return -1;
    }
    atomic_store(&stop_requested, false);
    int rc = pthread_create(&writer, NULL, writer_main, NULL);
    if (rc != 0) {
        log_error("access log: cannot start the writer thread: %s", strerror(rc));
        close(wake_fd);
        wake_fd = -1;
        return -1;
    }
    writer_started = true;
    return 0;
}

int access_configure(const struct config *cfg)
{
    const struct config_access_log *al = &cfg->access_log;
    bool output_changed = !applied_once || applied_enabled != al->enabled ||
                          !same_path(applied_path, al->path);
    if (output_changed) {
        int fd = -1;
        if (al->enabled) {
            if (al->path) {
                fd = open(al->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd < 0) {
                    log_error("access log %s: cannot open: %s", al->path, strerror(errno));
                    return -1;
                }
            } else {
                fd = STDOUT_FILENO;
            }
        }
        if (al->enabled && start_writer() < 0) {
            if (fd > STDERR_FILENO)
                close(fd);
            return -1;
        }
        if (writer_started) {
            pthread_mutex_lock(&mu);
            if (pending_fd > STDERR_FILENO)
                close(pending_fd);
            free(pending_path);
            pending_fd = fd;
            pending_path = al->enabled && al->path ? xstrdup(al->path) : NULL;
            change_pending = true;
            pthread_mutex_unlock(&mu);
            wake_writer();
        }
        applied_once = true;
        applied_enabled = al->enabled;
        free(applied_path);
        applied_path = al->path ? xstrdup(al->path) : NULL;
        if (al->enabled)
            log_info("access log: %s, %s", al->path ? al->path : "stdout",
                     al->format == LOG_F_COMBINED ? "combined" : "json");
    }
    atomic_store(&format, (int)al->format);
    atomic_store(&enabled, al->enabled);
    return 0;
}

void access_reopen(void)
{
    if (!writer_started)
        return;
    atomic_store(&reopen_requested, true);
    wake_writer();
}

uint64_t access_dropped(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i < WORKERS_MAX; i++) {
        struct access_ring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
        if (r)
            n += atomic_load_explicit(&r->dropped, memory_order_relaxed);
    }
    return n;
}

uint64_t access_write_errors(void)
{
    return atomic_load_explicit(&write_errors, memory_order_relaxed);
}

void access_shutdown(void)
{
    atomic_store(&enabled, false);
    if (writer_started) {
        atomic_store(&stop_requested, true);
        wake_writer();
        pthread_join(writer, NULL);
        writer_started = false;
        close(wake_fd);
        wake_fd = -1;
    }
    pthread_mutex_lock(&mu);
    if (pending_fd > STDERR_FILENO)
        close(pending_fd);
    pending_fd = -1;
    free(pending_path);
    pending_path = NULL;
    change_pending = false;
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < WORKERS_MAX; i++)
        free(atomic_exchange(&rings[i], NULL));
    free(applied_path);
    applied_path = NULL;
    applied_once = false;
}

/* ---- formatting (worker) ------------------------------------------------- */

/* A bounded line under construction: appends stop at cap (fields that
 * could be long are cut earlier, with "...", so the line stays whole). */
struct line {
    char *p;    /* borrowed: the caller's stack buffer */
    size_t len;
    size_t cap; /* bytes p may take */
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putc_(struct line *l, char c)
{
    if (l->len < l->cap)
        l->p[l->len++] = c;
}

static void putu(struct line *l, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && l->len < l->cap)
        l->p[l->len++] = tmp[--n];
}

/* Microseconds as milliseconds with three decimals: 1234 → "1.234". */
static void put_ms(struct line *l, uint64_t us)
{
    putu(l, us / 1000);
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    put(l, frac, sizeof(frac));
}

static const char hexdig[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at s (RFC 3629), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* s as JSON string contents (RFC 8259 §7), at most max bytes of input;
 * invalid UTF-8 becomes U+FFFD so the line is always valid JSON. */
static void put_json(struct line *l, const char *s, size_t n, size_t max)
{
    bool cut = n > max;
    if (cut)
        n = max;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (l->cap - l->len < 8)
            return;
        if (c == '"' || c == '\\') {
            l->p[l->len++] = '\\';
            l->p[l->len++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
            put(l, esc, 6);
            i++;
        } else if (c < 0x80) {
            l->p[l->len++] = (char)c;
            i++;
        } else {
            size_t k = utf8_len(u + i, n - i);
            if (k) {
                put(l, s + i, k);
                i += k;
            } else {
                puts_(l, "\\ufffd");
                i++;
            }
        }
    }
    if (cut)
        puts_(l, "...");
}

/* s as the inside of a quoted combined-log field: ", \, control bytes and
 * non-ASCII as \xHH (nginx's escaping), at most max bytes of input. */
static void put_clf(struct line *l, const char *s, size_t n, size_t max)
{
    bool cut = n > max;
    if (cut)
        n = max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (l->cap - l->len < 4)
            return;
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
            char esc[4] = {'\\', 'x', hexdig[c >> 4], hexdig[c & 15]};
            put(l, esc, 4);
        } else {
            l->p[l->len++] = (char)c;
        }
    }
    if (cut)
        puts_(l, "...");
}

/* A JSON string value or null. */
static void put_json_opt(struct line *l, const char *s, size_t n, size_t max)
{
    if (!s) {
        puts_(l, "null");
        return;
    }
    putc_(l, '"');
    put_json(l, s, n, max);
    putc_(l, '"');
}

static const struct router_header *find_header(const struct access_entry *e,
                                               const char *name)
{
    for (size_t i = 0; e->headers && i < e->n_headers; i++)
        if (util_sv_ieq(e->headers[i].name, name))
            return &e->headers[i];
    return NULL;
}

/* The client's IP (no port) and port. */
static void client_addr(const struct sockaddr *sa, char *ip, size_t iplen,
                        unsigned *port)
{
    char buf[80];
    util_format_addr(sa, buf, sizeof(buf));
    *port = 0;
    const char *colon = strrchr(buf, ':');
    const char *start = buf;
    size_t n = colon ? (size_t)(colon - buf) : strlen(buf);
    if (colon)
        *port = (unsigned)strtoul(colon + 1, NULL, 10);
    if (n >= 2 && buf[0] == '[' && buf[n - 1] == ']') {
        start++;
        n -= 2;
    }
    if (n >= iplen)
        n = iplen - 1;
    memcpy(ip, start, n);
    ip[n] = '\0';
}

static void format_json(struct line *l, struct access_ring *r,
                        const struct timespec *ts, const struct access_entry *e)
{
    if (r->iso_sec != ts->tv_sec || !r->iso[0]) {
        struct tm tm;
        gmtime_r(&ts->tv_sec, &tm);
        strftime(r->iso, sizeof(r->iso), "%Y-%m-%dT%H:%M:%S", &tm);
        r->iso_sec = ts->tv_sec;
    }
    char ip[64];
    unsigned port;
    client_addr(e->client, ip, sizeof(ip), &port);
    long ms = ts->tv_nsec / 1000000;
    char msbuf[8] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
                     (char)('0' + ms % 10), 'Z', '"', 0, 0};
    puts_(l, "{\"time\":\"");
    puts_(l, r->iso);
    put(l, msbuf, 6);
    puts_(l, ",\"client\":\"");
    puts_(l, ip);
    puts_(l, "\",\"client_port\":");
    putu(l, port);
    puts_(l, ",\"method\":\"");
    put_json(l, e->method.p, e->method.len, 64);
    puts_(l, "\",\"target\":\"");
    put_json(l, e->target.p, e->target.len, ACCESS_TARGET_MAX);
    puts_(l, "\",\"protocol\":");
    if (e->method.len) {
        puts_(l, "\"HTTP/1.");
        putu(l, e->http_minor);
        putc_(l, '"');
    } else {
        puts_(l, "null"); /* the request line did not parse */
    }
    puts_(l, ",\"status\":");
    putu(l, (uint64_t)(e->status < 0 ? 0 : e->status));
    puts_(l, ",\"bytes\":");
    putu(l, e->bytes);
    puts_(l, ",\"version\":");
    put_json_opt(l, e->version, e->version ? strlen(e->version) : 0, 256);
    puts_(l, ",\"endpoint\":");
    put_json_opt(l, e->endpoint, e->endpoint ? strlen(e->endpoint) : 0, 256);
    puts_(l, ",\"route\":");
    if (e->version) {
        putc_(l, '"');
        puts_(l, router_reason_name(e->reason));
        putc_(l, '"');
    } else {
        puts_(l, "null");
    }
    puts_(l, ",\"rule\":");
    if (e->version && e->reason == ROUTE_R_RULE && e->rule >= 0)
        putu(l, (uint64_t)e->rule);
    else
        puts_(l, "null");
    puts_(l, ",\"bucket\":");
    if (e->version && e->bucket >= 0)
        putu(l, (uint64_t)e->bucket);
    else
        puts_(l, "null");
    puts_(l, ",\"upstream_ms\":");
    if (e->upstream_us)
        put_ms(l, e->upstream_us);
    else
        puts_(l, "null");
    puts_(l, ",\"duration_ms\":");
    put_ms(l, e->total_us);
    puts_(l, ",\"retries\":");
    putu(l, e->retries);
    const struct router_header *ua = find_header(e, "user-agent");
    const struct router_header *ref = find_header(e, "referer");
    puts_(l, ",\"user_agent\":");
    put_json_opt(l, ua ? ua->value.p : NULL, ua ? ua->value.len : 0, ACCESS_HEADER_MAX);
    puts_(l, ",\"referer\":");
    put_json_opt(l, ref ? ref->value.p : NULL, ref ? ref->value.len : 0, ACCESS_HEADER_MAX);
    puts_(l, ",\"error\":");
    put_json_opt(l, e->error, e->error ? strlen(e->error) : 0, 256);
    putc_(l, '}');
}

/*
 * Combined log format (Apache/nginx), then weir's fields as key=value:
 *   IP - - [28/Nov/2026:14:30:07 +0000] "GET /x HTTP/1.1" 200 512 "REFERER" "UA"
 *   version=v1 endpoint=10.0.0.1:8080 route=split rule=- bucket=- upstream_ms=0.412
 *   duration_ms=0.530 retries=0 error="-"
 * (on one line). Absent values are "-", as in the combined format itself.
 */
static void format_combined(struct line *l, struct access_ring *r,
                            const struct timespec *ts, const struct access_entry *e)
{
    if (r->clf_sec != ts->tv_sec || !r->clf[0]) {
        struct tm tm;
        gmtime_r(&ts->tv_sec, &tm);
        strftime(r->clf, sizeof(r->clf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        r->clf_sec = ts->tv_sec;
    }
    char ip[64];
    unsigned port;
    client_addr(e->client, ip, sizeof(ip), &port);
    puts_(l, ip);
    puts_(l, " - - [");
    puts_(l, r->clf);
    puts_(l, "] \"");
    if (e->method.len) {
        put_clf(l, e->method.p, e->method.len, 64);
        putc_(l, ' ');
        put_clf(l, e->target.p, e->target.len, ACCESS_TARGET_MAX);
        puts_(l, " HTTP/1.");
        putu(l, e->http_minor);
    } else {
        putc_(l, '-');
    }
    puts_(l, "\" ");
    putu(l, (uint64_t)(e->status < 0 ? 0 : e->status));
    putc_(l, ' ');
    putu(l, e->bytes);
    const struct router_header *ua = find_header(e, "user-agent");
    const struct router_header *ref = find_header(e, "referer");
    puts_(l, " \"");
    if (ref)
        put_clf(l, ref->value.p, ref->value.len, ACCESS_HEADER_MAX);
    else
        putc_(l, '-');
    puts_(l, "\" \"");
    if (ua)
        put_clf(l, ua->value.p, ua->value.len, ACCESS_HEADER_MAX);
    else
        putc_(l, '-');
    puts_(l, "\" version=");
    puts_(l, e->version ? e->version : "-");
    puts_(l, " endpoint=");
    puts_(l, e->endpoint ? e->endpoint : "-");
    puts_(l, " route=");
    puts_(l, e->version ? router_reason_name(e->reason) : "-");
    puts_(l, " rule=");
    if (e->version && e->reason == ROUTE_R_RULE && e->rule >= 0)
        putu(l, (uint64_t)e->rule);
    else
        putc_(l, '-');
    puts_(l, " bucket=");
    if (e->version && e->bucket >= 0)
        putu(l, (uint64_t)e->bucket);
    else
        putc_(l, '-');
    puts_(l, " upstream_ms=");
    if (e->upstream_us)
        put_ms(l, e->upstream_us);
    else
        putc_(l, '-');
    puts_(l, " duration_ms=");
    put_ms(l, e->total_us);
    puts_(l, " retries=");
    putu(l, e->retries);
    puts_(l, " error=\"");
    if (e->error)
        put_clf(l, e->error, strlen(e->error), 256);
    else
        putc_(l, '-');
    putc_(l, '"');
}

static struct access_ring *worker_ring(struct worker *w)
{
    CHECK(w && w->id >= 0 && w->id < WORKERS_MAX);
    struct access_ring *r = atomic_load_explicit(&rings[w->id], memory_order_relaxed);
    if (r)
        return r;
    /* First line of this worker: only it ever stores this slot. The data
     * pages are left untouched (malloc of 1 MiB maps them lazily). */
    r = xmalloc(sizeof(*r));
    memset(r, 0, offsetof(struct access_ring, data));
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    atomic_store_explicit(&rings[w->id], r, memory_order_release);
    return r;
}

void access_log_txn(struct worker *w, const struct access_entry *e)
{
    if (!atomic_load_explicit(&enabled, memory_order_relaxed))
        return;
    struct access_ring *r = worker_ring(w);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char buf[ACCESS_LINE_MAX];
    struct line l = {buf, 0, sizeof(buf) - 1}; /* room for the newline */
    if (atomic_load_explicit(&format, memory_order_relaxed) == LOG_F_COMBINED)
        format_combined(&l, r, &ts, e);
    else
        format_json(&l, r, &ts, e);
    buf[l.len++] = '\n';

    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (ACCESS_RING_BYTES - (head - tail) < l.len) {
        atomic_store_explicit(&r->dropped,
                              atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return;
    }
    size_t off = (size_t)(head & (ACCESS_RING_BYTES - 1));
    size_t first = ACCESS_RING_BYTES - off;
    if (l.len <= first) {
        memcpy(r->data + off, buf, l.len);
    } else {
        memcpy(r->data + off, buf, first);
        memcpy(r->data, buf + first, l.len - first);
    }
    /* seq_cst: pairs with the writer's sleeping flag (see the top). */
    atomic_store(&r->head, head + l.len);
    if (atomic_load(&writer_sleeping)) {
        if (atomic_exchange(&writer_sleeping, false))
            wake_writer();
    } else if (head - tail < ACCESS_RING_BYTES / 2 &&
               head + l.len - tail >= ACCESS_RING_BYTES / 2) {
        wake_writer(); /* half full: do not wait for the batch timer */
    }
}
