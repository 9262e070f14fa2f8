/*
 * access.c — see access.h.
 *
 * This file is the delivery: rings, the writer thread, output changes.
 * What a line says is access_format.c's.
 *
 * Data path (worker): format the line into a stack buffer
 * (access_format_line: bounded, the line stays well-formed), then copy
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
 * Each ring carries its worker's time stamp cache (struct
 * access_format_clock), so a line costs one clock_gettime, no
 * gmtime/strftime.
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

#include "access_format.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "snapshot.h"

#define ACCESS_RING_BYTES (1u << 20) /* per worker; a power of two */
#define ACCESS_LINE_MAX 4096         /* a longer line is cut (fields shortened) */
#define ACCESS_BATCH_MS 10           /* busy writer: at most one write per ring per 10 ms */

struct access_ring {
    _Atomic uint64_t head; /* bytes ever published (worker writes) */
    char pad1[56];
    _Atomic uint64_t tail; /* bytes ever consumed (writer writes) */
    char pad2[56];
    _Atomic uint64_t dropped;         /* lines that did not fit (worker writes) */
    struct access_format_clock clock; /* worker only: time stamp caches */
    char data[ACCESS_RING_BYTES];
};

/*
 * The JSON line's field list (access_log.fields). Workers load the pointer
 * per line; a reload that changes the list publishes a new one and keeps
 * the old one on `retired` until shutdown (a line being formatted may
 * still read it; a list is a few dozen bytes and changes only by reload).
 */
struct access_fields {
    struct access_fields *retired; /* owned: the list published before this one */
    size_t n;
    uint32_t ids[]; /* enum access_field */
};

/* Read by workers on every txn. */
static atomic_bool enabled;
static atomic_int format = LOG_F_JSON;
static _Atomic(struct access_fields *) fields; /* NULL = the default list */
static struct access_fields *fields_chain;     /* main thread: newest published, owns the rest */
static _Atomic(struct access_ring *) rings[WORKERS_MAX];

/* Writer thread state. */
static pthread_t writer;
static bool writer_started; /* main thread only */
static atomic_bool writer_sleeping;
static atomic_bool stop_requested;
static atomic_bool reopen_requested;
static int wake_fd = -1;              /* eventfd */
static _Atomic uint64_t write_errors; /* failed writes (their lines are lost) */

/* Output handover, main thread → writer (under mu). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool change_pending;
static int pending_fd = -1; /* -1 = discard (logging off) */
static char *pending_path;  /* owned; NULL = stdout */

/* The writer's output (writer thread only after start). */
static int out_fd = -1; /* -1 = discard */
static char *out_path;  /* owned; NULL = stdout (not ours to close) */

/* What the main thread last applied (to skip needless reopen on reload). */
static bool applied_once;
static bool applied_enabled;
static char *applied_path; /* owned */

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
    struct access_fields *cur = atomic_load(&fields);
    bool same = cur ? al->fields && cur->n == al->n_fields &&
                          memcmp(cur->ids, al->fields, al->n_fields * sizeof(uint32_t)) == 0
                    : !al->fields;
    if (!same) {
        struct access_fields *nf = NULL;
        if (al->fields) {
            nf = xmalloc(sizeof(*nf) + al->n_fields * sizeof(uint32_t));
            nf->n = al->n_fields;
            memcpy(nf->ids, al->fields, al->n_fields * sizeof(uint32_t));
            nf->retired = fields_chain;
            fields_chain = nf;
        }
        atomic_store(&fields, nf);
    }
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
    atomic_store(&fields, NULL);
    while (fields_chain) {
        struct access_fields *f = fields_chain;
        fields_chain = f->retired;
        free(f);
    }
}

static struct access_ring *worker_ring(const struct loop *loop)
{
    CHECK(loop && loop->id >= 0 && loop->id < WORKERS_MAX);
    struct access_ring *r = atomic_load_explicit(&rings[loop->id], memory_order_relaxed);
    if (r)
        return r;
    /* First line of this worker: only it ever stores this slot. The data
     * pages are left untouched (malloc of 1 MiB maps them lazily). */
    r = xmalloc(sizeof(*r));
    memset(r, 0, offsetof(struct access_ring, data));
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    atomic_store_explicit(&rings[loop->id], r, memory_order_release);
    return r;
}

void access_log_txn(const struct loop *loop, const struct access_entry *e)
{
    if (!atomic_load_explicit(&enabled, memory_order_relaxed))
        return;
    struct access_ring *r = worker_ring(loop);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char buf[ACCESS_LINE_MAX];
    enum config_log_format fmt =
        (enum config_log_format)atomic_load_explicit(&format, memory_order_relaxed);
    const struct access_fields *fl = atomic_load_explicit(&fields, memory_order_acquire);
    size_t len = access_format_line_fields(buf, sizeof(buf) - 1, /* room for the newline */
                                           fmt, fl ? fl->ids : NULL, fl ? fl->n : 0,
                                           &r->clock, &ts, e);
    buf[len++] = '\n';

    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (ACCESS_RING_BYTES - (head - tail) < len) {
        atomic_store_explicit(&r->dropped,
                              atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return;
    }
    size_t off = (size_t)(head & (ACCESS_RING_BYTES - 1));
    size_t first = ACCESS_RING_BYTES - off;
    if (len <= first) {
        memcpy(r->data + off, buf, len);
    } else {
        memcpy(r->data + off, buf, first);
        memcpy(r->data, buf + first, len - first);
    }
    /* seq_cst: pairs with the writer's sleeping flag (see the top). */
    atomic_store(&r->head, head + len);
    if (atomic_load(&writer_sleeping)) {
        if (atomic_exchange(&writer_sleeping, false))
            wake_writer();
    } else if (head - tail < ACCESS_RING_BYTES / 2 &&
               head + len - tail >= ACCESS_RING_BYTES / 2) {
        wake_writer(); /* half full: do not wait for the batch timer */
    }
}
