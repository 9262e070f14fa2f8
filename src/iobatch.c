/*
 * iobatch.c — see iobatch.h. A per-thread io_uring driven with raw
 * syscalls (io_uring_setup / _enter / _register) and the mmap'ed SQ ring,
 * CQ ring and SQE array; no liburing (why: below).
 *
 * Owns: the ring fd, the three mappings, one slot per SQ ring position
 * (a send's msghdr and its copy of the iovec array). Does not own the
 * sockets or the data buffers.
 *
 * Ring positions. Ops are written at the local SQ tail and published to
 * the kernel (one release store of the ring tail) only by iobatch_run(), so
 * the kernel sees them only inside io_uring_enter. SQE index = slot index =
 * position & mask (the SQ index array is the identity). The SQ ring has
 * twice the batch size: while the current batch occupies positions
 * [start, start + n), ops queued from the callback fill [start + n, ...)
 * without overwriting an SQE or a slot the kernel may still read.
 *
 * iobatch_run() state machine, per call (a batch of one op is issued as
 * the plain syscall instead, see run_one):
 *   publish tail → loop { enter(to_submit = unsubmitted,
 *                               min_complete = uncompleted, GETEVENTS);
 *                         reap every CQE (cb) }
 *   until all n completed. The kernel consumes SQEs from its ring head,
 *   which tells how many were submitted; a short submission (out of memory
 *   in the kernel, or an SQE failing early without IORING_SETUP_SUBMIT_ALL)
 *   returns without waiting, and the loop submits the rest. EINTR, EAGAIN
 *   and EBUSY retry. A hard error un-publishes the SQEs the kernel has not
 *   consumed (moving the callback-queued ones down behind the consumed
 *   ones), reports them -ECANCELED, waits for the consumed ones and
 *   returns -1.
 *
 * Why nothing stays in flight: MSG_DONTWAIT in sqe->msg_flags makes the
 * kernel mark the request REQ_F_NOWAIT (io_uring/net.c, *_prep), so -EAGAIN
 * completes the request instead of arming an internal poll. iobatch_new()
 * checks that on the running kernel.
 *
 * Why not liburing (Debian's liburing 2.3, considered for issue 20). Speed
 * does not decide it: callgrind over 15k proxied requests (bench/profile.sh,
 * io_uring path, c=64) puts everything in this file at 0.7 % of weir's
 * user-space instructions (~140 of 20.4k per request: filling SQEs, one
 * release store, reaping CQEs); liburing's inline get_sqe/prep/cqe helpers
 * do the same work and io_uring_submit_and_wait() makes the same one
 * io_uring_enter, so there is nothing to win, and nothing to lose either.
 * It is what the library cannot express that keeps the raw calls:
 *   - retract(): after a hard io_uring_enter error the SQEs the kernel did
 *     not consume are taken back (the published tail lowered) and the
 *     callback-queued ones moved down. liburing owns sqe_head/sqe_tail and
 *     offers no way to un-publish flushed SQEs; doing it behind its back
 *     breaks its invariants;
 *   - run_one(): a batch of one is issued as the plain recv()/sendmsg()
 *     (0.9 µs cheaper on a PTI VM) by reading the queued SQE back and
 *     un-queueing it, again below liburing's API;
 *   - the SQ ring is twice the batch so the callback can queue the next
 *     batch while this one is being reaped, with SQE index = slot index =
 *     position (each send's msghdr lives in its slot).
 * The syscalls (io_uring_setup, io_uring_enter, io_uring_register) are the
 * same either way, so the seccomp profile (k8s/seccomp) is too. Revisit if
 * the ring is ever used asynchronously (buffers in flight across turns):
 * then liburing's buffer rings and multishot helpers would earn their keep.
 */
#include "iobatch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Setup flags of newer kernels, 0 when the installed header predates them
 * (the fallback below then simply tries the same set twice). */
#ifdef IORING_SETUP_SINGLE_ISSUER
#define IOB_SINGLE_ISSUER IORING_SETUP_SINGLE_ISSUER
#else
#define IOB_SINGLE_ISSUER 0u
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
#define IOB_COOP_TASKRUN IORING_SETUP_COOP_TASKRUN
#else
#define IOB_COOP_TASKRUN 0u
#endif
#ifdef IORING_SETUP_SUBMIT_ALL
#define IOB_SUBMIT_ALL IORING_SETUP_SUBMIT_ALL
#else
#define IOB_SUBMIT_ALL 0u
#endif

/* Enter calls in a row that failed with EAGAIN/EBUSY and made no progress
 * before iobatch_run() gives up (they yield the CPU in between). */
#define IOB_MAX_STALLS 1000

struct iobatch_slot {
    struct msghdr msg;                 /* msg_iov points at iov below */
    struct iovec iov[IOBATCH_MAX_IOV]; /* copy of the caller's array */
};

struct iobatch {
    int ring_fd;     /* owned */
    unsigned cap;    /* ops per batch (the caller's entries) */
    unsigned queued; /* ops queued for the next run */
    bool running;    /* inside iobatch_run() */

    unsigned *sq_khead; /* borrowed (mapping): kernel-written */
    unsigned *sq_ktail; /* borrowed (mapping): written here */
    unsigned *sq_array; /* borrowed (mapping): identity */
    unsigned sq_mask, sq_entries;
    unsigned sq_tail;          /* local tail: next position to fill */
    struct io_uring_sqe *sqes; /* borrowed (mapping) */

    unsigned *cq_khead; /* borrowed (mapping): written here */
    unsigned *cq_ktail; /* borrowed (mapping): kernel-written */
    unsigned cq_mask;
    struct io_uring_cqe *cqes; /* borrowed (mapping) */

    void *sq_map, *cq_map, *sqe_map; /* owned mappings; cq_map may == sq_map */
    size_t sq_map_len, cq_map_len, sqe_map_len;
    struct iobatch_slot *slots; /* owned: sq_entries of them */
};

static inline unsigned load_acquire(const unsigned *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release(unsigned *p, unsigned v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete,
                     unsigned flags)
{
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete,
                        flags, NULL, (size_t)0);
}

static int sys_register(int fd, unsigned opcode, void *arg, unsigned nr_args)
{
    return (int)syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
}

/* Call cb for every CQE in the CQ ring; returns how many. */
static unsigned reap(struct iobatch *b, iobatch_done_cb cb, void *arg)
{
    unsigned head = *b->cq_khead; /* only this thread writes it */
    unsigned tail = load_acquire(b->cq_ktail);
    unsigned n = 0;
    while (head != tail) {
        const struct io_uring_cqe *cqe = &b->cqes[head & b->cq_mask];
        uint64_t tag = cqe->user_data;
        int res = cqe->res;
        store_release(b->cq_khead, ++head);
        n++;
        if (cb)
            cb(tag, res, arg);
    }
    return n;
}

/* Wait until `outstanding` more CQEs have been reaped. Only called for ops
 * the kernel has consumed; there is no safe way to return before they
 * complete, so a hard error here aborts. */
static unsigned drain(struct iobatch *b, unsigned outstanding,
                      iobatch_done_cb cb, void *arg)
{
    unsigned done = 0;
    while (done < outstanding) {
        int r = sys_enter(b->ring_fd, 0, outstanding - done,
                          IORING_ENTER_GETEVENTS);
        int err = errno;
        done += reap(b, cb, arg);
        CHECK(r >= 0 || err == EINTR || err == EAGAIN || err == EBUSY);
    }
    CHECK(done == outstanding);
    return done;
}

/*
 * Un-publish the SQEs of the current batch [khead, end) that the kernel
 * has not consumed, report them -ECANCELED, and move the ops queued since
 * (positions [end, sq_tail), from callbacks) down to khead so the next run
 * publishes a contiguous range. Returns how many were cancelled.
 */
static unsigned retract(struct iobatch *b, unsigned end, iobatch_done_cb cb,
                        void *arg)
{
    unsigned khead = load_acquire(b->sq_khead);
    unsigned gap = end - khead;
    if (gap == 0)
        return 0;
    /* Safe: without SQPOLL the kernel reads the SQ ring only inside
     * io_uring_enter, and only this thread calls it. */
    store_release(b->sq_ktail, khead);
    for (unsigned p = khead; p != end; p++) {
        if (cb)
            cb(b->sqes[p & b->sq_mask].user_data, -ECANCELED, arg);
    }
    for (unsigned q = end; q != b->sq_tail; q++) {
        unsigned d = q - gap;
        struct io_uring_sqe *dst = &b->sqes[d & b->sq_mask];
        *dst = b->sqes[q & b->sq_mask];
        if (dst->opcode == IORING_OP_SENDMSG) {
            const struct iobatch_slot *ss = &b->slots[q & b->sq_mask];
            struct iobatch_slot *ds = &b->slots[d & b->sq_mask];
            ds->msg = ss->msg;
            memcpy(ds->iov, ss->iov, ss->msg.msg_iovlen * sizeof(ds->iov[0]));
            ds->msg.msg_iov = ds->iov;
            dst->addr = (uint64_t)(uintptr_t)&ds->msg;
        }
    }
    b->sq_tail -= gap;
    return gap;
}

/*
 * A batch of one op: the plain syscall, with the same flags and the same
 * result. It is cheaper than io_uring_enter plus the SQE/CQE round trip
 * (measured on a PTI VM: ~0.9 µs less for a 100-byte TCP send); from two
 * ops on, the batch wins.
 */
static int run_one(struct iobatch *b, iobatch_done_cb cb, void *arg)
{
    unsigned pos = b->sq_tail - 1;
    const struct io_uring_sqe *sqe = &b->sqes[pos & b->sq_mask];
    uint64_t tag = sqe->user_data;
    ssize_t r;
    if (sqe->opcode == IORING_OP_RECV)
        r = recv(sqe->fd, (void *)(uintptr_t)sqe->addr, sqe->len,
                 (int)sqe->msg_flags);
    else
        r = sendmsg(sqe->fd, &b->slots[pos & b->sq_mask].msg,
                    (int)sqe->msg_flags);
    int res = r < 0 ? -errno : (int)r;
    b->sq_tail = pos; /* never published: the position is free again */
    b->queued = 0;
    b->running = true;
    if (cb)
        cb(tag, res, arg);
    b->running = false;
    return 1;
}

int iobatch_run(struct iobatch *b, iobatch_done_cb cb, void *arg)
{
    CHECK(!b->running); /* not from inside the callback */
    if (b->queued == 0)
        return 0;
    if (b->queued == 1)
        return run_one(b, cb, arg);
    unsigned n = b->queued;
    unsigned end = b->sq_tail;
    unsigned start = end - n;
    CHECK(load_acquire(b->sq_khead) == start);
    b->queued = 0;
    b->running = true;
    store_release(b->sq_ktail, end);

    unsigned completed = 0;
    int stalls = 0, hard = 0;
    while (completed < n) {
        unsigned submitted = load_acquire(b->sq_khead) - start;
        unsigned to_submit = n - submitted;
        /* min_complete counts CQEs in the ring; it is empty (all reaped),
         * so wait for every op not yet reaped. With a short submission the
         * kernel returns without waiting. */
        int r = sys_enter(b->ring_fd, to_submit, n - completed,
                          IORING_ENTER_GETEVENTS);
        int err = errno;
        unsigned got = reap(b, cb, arg);
        completed += got;
        CHECK(completed <= n);
        if (r < 0 && err == EINTR)
            continue;
        if (r >= 0 || err == EAGAIN || err == EBUSY) {
            /* EAGAIN: kernel short of memory; EBUSY: CQ overflow pending.
             * What was reaped may have fixed it; else yield and retry, a
             * bounded number of times (also for a call that did nothing). */
            bool progress =
                got > 0 || load_acquire(b->sq_khead) - start != submitted;
            stalls = progress ? 0 : stalls + 1;
            if (stalls < IOB_MAX_STALLS) {
                if (!progress)
                    sched_yield();
                continue;
            }
        }
        hard = r < 0 ? err : EIO;
        break;
    }
    if (hard) {
        n -= retract(b, end, cb, arg);
        completed += drain(b, n - completed, cb, arg);
    }
    b->running = false;
    if (hard) {
        errno = hard;
        return -1;
    }
    return (int)completed;
}

/* The SQE at the local tail, zeroed, or NULL when the batch is full. */
static struct io_uring_sqe *next_sqe(struct iobatch *b)
{
    if (b->queued >= b->cap) {
        errno = ENOBUFS;
        return NULL;
    }
    struct io_uring_sqe *sqe = &b->sqes[b->sq_tail & b->sq_mask];
    memset(sqe, 0, sizeof(*sqe));
    return sqe;
}

static void commit_sqe(struct iobatch *b)
{
    b->sq_tail++;
    b->queued++;
}

unsigned iobatch_space(const struct iobatch *b)
{
    return b->cap - b->queued;
}

int iobatch_recv(struct iobatch *b, int fd, void *buf, size_t len, uint64_t tag)
{
    struct io_uring_sqe *sqe = next_sqe(b);
    if (!sqe)
        return -1;
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = len > INT_MAX ? INT_MAX : (uint32_t)len; /* res is an int */
    sqe->msg_flags = MSG_DONTWAIT;
    sqe->user_data = tag;
    commit_sqe(b);
    return 0;
}

struct iovec *iobatch_send_iov(struct iobatch *b)
{
    if (b->queued >= b->cap) {
        errno = ENOBUFS;
        return NULL;
    }
    return b->slots[b->sq_tail & b->sq_mask].iov;
}

int iobatch_send_commit(struct iobatch *b, int fd, unsigned n_iov, uint64_t tag)
{
    struct io_uring_sqe *sqe = next_sqe(b);
    if (!sqe)
        return -1;
    struct iobatch_slot *s = &b->slots[b->sq_tail & b->sq_mask];
    if (n_iov > IOBATCH_MAX_IOV)
        n_iov = IOBATCH_MAX_IOV; /* a short send; see iobatch.h */
    memset(&s->msg, 0, sizeof(s->msg));
    s->msg.msg_iov = s->iov;
    s->msg.msg_iovlen = n_iov;
    sqe->opcode = IORING_OP_SENDMSG;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)&s->msg;
    sqe->len = 1; /* one msghdr, as liburing's io_uring_prep_sendmsg */
    sqe->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
    sqe->user_data = tag;
    commit_sqe(b);
    return 0;
}

int iobatch_send(struct iobatch *b, int fd, const struct iovec *iov,
                 unsigned n_iov, uint64_t tag)
{
    CHECK(iov || n_iov == 0);
    struct iovec *dst = iobatch_send_iov(b);
    if (!dst)
        return -1;
    if (n_iov > IOBATCH_MAX_IOV)
        n_iov = IOBATCH_MAX_IOV;
    if (n_iov)
        memcpy(dst, iov, n_iov * sizeof(dst[0]));
    return iobatch_send_commit(b, fd, n_iov, tag);
}

void iobatch_free(struct iobatch *b)
{
    if (!b)
        return;
    CHECK(!b->running);
    if (b->sqe_map)
        munmap(b->sqe_map, b->sqe_map_len);
    if (b->cq_map && b->cq_map != b->sq_map)
        munmap(b->cq_map, b->cq_map_len);
    if (b->sq_map)
        munmap(b->sq_map, b->sq_map_len);
    if (b->ring_fd >= 0)
        close(b->ring_fd);
    free(b->slots);
    free(b);
}

static void *map_ring(int fd, size_t len, off_t off)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   fd, off);
    return p == MAP_FAILED ? NULL : p;
}

/* Map the rings described by p; 0 or -1 (errno). */
static int map_rings(struct iobatch *b, const struct io_uring_params *p)
{
    b->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    b->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    if (p->features & IORING_FEAT_SINGLE_MMAP) {
        if (b->cq_map_len > b->sq_map_len)
            b->sq_map_len = b->cq_map_len;
        b->cq_map_len = b->sq_map_len;
    }
    b->sq_map = map_ring(b->ring_fd, b->sq_map_len, IORING_OFF_SQ_RING);
    if (!b->sq_map)
        return -1;
    if (p->features & IORING_FEAT_SINGLE_MMAP) {
        b->cq_map = b->sq_map;
    } else {
        b->cq_map = map_ring(b->ring_fd, b->cq_map_len, IORING_OFF_CQ_RING);
        if (!b->cq_map)
            return -1;
    }
    b->sqe_map_len = p->sq_entries * sizeof(struct io_uring_sqe);
    b->sqe_map = map_ring(b->ring_fd, b->sqe_map_len, IORING_OFF_SQES);
    if (!b->sqe_map)
        return -1;

    char *sq = b->sq_map, *cq = b->cq_map;
    b->sq_khead = (unsigned *)(sq + p->sq_off.head);
    b->sq_ktail = (unsigned *)(sq + p->sq_off.tail);
    b->sq_mask = *(unsigned *)(sq + p->sq_off.ring_mask);
    b->sq_entries = *(unsigned *)(sq + p->sq_off.ring_entries);
    b->sq_array = (unsigned *)(sq + p->sq_off.array);
    b->sqes = b->sqe_map;
    b->cq_khead = (unsigned *)(cq + p->cq_off.head);
    b->cq_ktail = (unsigned *)(cq + p->cq_off.tail);
    b->cq_mask = *(unsigned *)(cq + p->cq_off.ring_mask);
    b->cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);

    for (unsigned i = 0; i < b->sq_entries; i++)
        b->sq_array[i] = i;
    b->sq_tail = load_acquire(b->sq_khead);
    return 0;
}

/* 0 when the kernel runs IORING_OP_RECV and IORING_OP_SENDMSG; else -1
 * with errno ENOTSUP. */
static int probe_ops(struct iobatch *b)
{
    enum { N_OPS = 256 };
    struct io_uring_probe *pr =
        xcalloc(1, sizeof(*pr) + N_OPS * sizeof(struct io_uring_probe_op));
    int ok = sys_register(b->ring_fd, IORING_REGISTER_PROBE, pr, N_OPS) == 0 &&
             pr->last_op >= IORING_OP_RECV && pr->last_op >= IORING_OP_SENDMSG &&
             (pr->ops[IORING_OP_RECV].flags & IO_URING_OP_SUPPORTED) &&
             (pr->ops[IORING_OP_SENDMSG].flags & IO_URING_OP_SUPPORTED);
    free(pr);
    if (!ok) {
        errno = ENOTSUP;
        return -1;
    }
    return 0;
}

static void on_selfcheck(uint64_t tag, int res, void *arg)
{
    (void)tag;
    *(int *)arg = res;
}

/*
 * Check that MSG_DONTWAIT really completes a recv on an empty socket inside
 * io_uring_enter (-EAGAIN) rather than arming a poll: submit without
 * waiting and look for the CQE. If it is not there, feed the socket a byte
 * so the op completes either way, and judge by its result. 0, or -1 with
 * errno (ENOTSUP when the kernel polls).
 */
static int check_nowait(struct iobatch *b)
{
    /* Static: if the kernel did poll, it writes here even in the teardown
     * of a failed check, after this frame is gone. */
    static char sink;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    int res = INT_MIN, ret = 0;
    CHECK(iobatch_recv(b, sv[0], &sink, 1, 0) == 0);
    b->queued = 0;
    store_release(b->sq_ktail, b->sq_tail);
    int r;
    do
        r = sys_enter(b->ring_fd, 1, 0, 0);
    while (r < 0 && errno == EINTR);
    if (r != 1) {
        /* Not consumed (or an error): take the SQE back. */
        if (r >= 0)
            errno = EIO;
        ret = -1;
        if (load_acquire(b->sq_khead) != b->sq_tail) {
            b->sq_tail--;
            store_release(b->sq_ktail, b->sq_tail);
        }
        goto out;
    }
    if (reap(b, on_selfcheck, &res) == 0) {
        if (send(sv[1], "x", 1, MSG_NOSIGNAL) != 1) {
            ret = -1;
            goto out;
        }
        drain(b, 1, on_selfcheck, &res);
    }
    if (res != -EAGAIN) {
        errno = ENOTSUP;
        ret = -1;
    }
out:
    close(sv[0]);
    close(sv[1]);
    return ret;
}

struct iobatch *iobatch_new(unsigned entries)
{
    const char *env = getenv("WEIR_IO_URING");
    if (env && strcmp(env, "0") == 0) {
        errno = ENOTSUP;
        return NULL;
    }
    if (entries == 0 || entries > IOBATCH_MAX_ENTRIES) {
        errno = EINVAL;
        return NULL;
    }
    /* Best first; EINVAL means the kernel predates a flag. SINGLE_ISSUER
     * and COOP_TASKRUN cut locking and IPIs; SUBMIT_ALL keeps submitting
     * past an SQE that fails early. */
    static const unsigned flag_sets[] = {
        IOB_SINGLE_ISSUER | IOB_COOP_TASKRUN | IOB_SUBMIT_ALL,
        IOB_COOP_TASKRUN | IOB_SUBMIT_ALL,
        IOB_SUBMIT_ALL,
        0,
    };
    struct io_uring_params p;
    int fd = -1;
    for (size_t i = 0; i < ARRAY_LEN(flag_sets); i++) {
        memset(&p, 0, sizeof(p));
        p.flags = flag_sets[i];
        /* Twice the batch: room for ops queued from the callback. */
        fd = sys_setup(2 * entries, &p);
        if (fd >= 0 || errno != EINVAL)
            break;
    }
    if (fd < 0)
        return NULL;

    struct iobatch *b = xcalloc(1, sizeof(*b));
    b->ring_fd = fd;
    b->cap = entries;
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        goto fail;
    if (!(p.features & IORING_FEAT_NODROP)) {
        errno = ENOTSUP;
        goto fail;
    }
    if (map_rings(b, &p) < 0)
        goto fail;
    CHECK(b->sq_entries >= 2 * entries && b->sq_mask == b->sq_entries - 1);
    b->slots = xcalloc(b->sq_entries, sizeof(b->slots[0]));
    if (probe_ops(b) < 0 || check_nowait(b) < 0)
        goto fail;
    return b;

fail:;
    int err = errno;
    iobatch_free(b);
    errno = err;
    return NULL;
}
