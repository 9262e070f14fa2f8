/*
 * iobatch.h — batch many non-blocking socket reads and sends of one worker
 * (on different sockets) into ONE io_uring_enter syscall per event-loop
 * turn. A syscall costs ~1 µs with PTI on; a proxy turn doing 4 socket
 * syscalls per request saves most of that.
 *
 * Not an async I/O engine: every op carries MSG_DONTWAIT, which makes the
 * kernel complete it inside the submitting io_uring_enter (a socket that is
 * not ready completes with -EAGAIN instead of being polled), so
 * iobatch_run() returns with nothing in flight. Readiness stays libevent's
 * job; an op that got -EAGAIN is retried by the caller after the next
 * readiness event, exactly as with plain recv()/sendmsg().
 *
 * Raw syscalls and mmap'ed rings, no liburing (iobatch.c says why).
 * iobatch_new() returns NULL
 * when io_uring cannot be used (old kernel, seccomp, the io_uring_disabled
 * sysctl, WEIR_IO_URING=0 in the environment); the caller then does one
 * syscall per op.
 *
 * Thread: an iobatch belongs to one thread, the one that created it (the
 * ring is set up IORING_SETUP_SINGLE_ISSUER when the kernel has it). Create
 * it on the worker thread, not before spawning the worker.
 */
#ifndef WEIR_IOBATCH_H
#define WEIR_IOBATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util.h"

/* iovecs one send may carry; iobatch_send() sends only the first this many
 * of a longer array (a short send, which the caller handles anyway). */
#define IOBATCH_MAX_IOV 64

/* Largest `entries` iobatch_new() accepts. */
#define IOBATCH_MAX_ENTRIES 16384u

struct iobatch;

/* Result of one op: `tag` as queued, `res` = bytes (>= 0; 0 from a recv
 * means the peer closed) or -errno (-EAGAIN: socket not ready; -EPIPE,
 * -ECONNRESET, -EBADF, ...; -ECANCELED: never issued because
 * iobatch_run() hit a hard error). `arg` as given to iobatch_run(). */
typedef void (*iobatch_done_cb)(uint64_t tag, int res, void *arg);

/*
 * Set up an io_uring for batches of up to `entries` ops (1 ..
 * IOBATCH_MAX_ENTRIES). Checks that the kernel supports IORING_OP_RECV and
 * IORING_OP_SENDMSG, IORING_FEAT_NODROP, and that a MSG_DONTWAIT recv on an
 * empty socket completes at once with -EAGAIN (one socketpair, two syscalls).
 * Returns NULL with errno set when io_uring is unusable (ENOSYS, EPERM,
 * ENOTSUP for a missing feature or WEIR_IO_URING=0, EINVAL, EMFILE, ...);
 * never aborts except on out-of-memory. Memory: about 2.3 KiB per entry (each
 * slot keeps its own copy of a send's iovec array). Call it on the thread
 * that will use the iobatch.
 */
struct iobatch *iobatch_new(unsigned entries);

/* Unmap and close. NULL is a no-op. Queued ops that never ran are dropped
 * without a callback. Not from inside iobatch_run()'s callback. */
void iobatch_free(struct iobatch *b);

/* How many more ops can be queued before iobatch_run() (0 when full). */
unsigned iobatch_space(const struct iobatch *b);

/*
 * Queue a recv(fd, buf, len, MSG_DONTWAIT) (len is capped at INT_MAX). `buf`
 * must stay valid until the iobatch_run() that issues it returns. Returns 0,
 * or -1 (errno ENOBUFS) when the batch is full: run it first.
 */
int iobatch_recv(struct iobatch *b, int fd, void *buf, size_t len,
                 uint64_t tag) WUR;

/*
 * Queue a sendmsg(fd, {iov, n_iov}, MSG_DONTWAIT | MSG_NOSIGNAL) (a closed
 * peer gives -EPIPE, never SIGPIPE). The iovec array is copied (at most
 * IOBATCH_MAX_IOV entries), so it may go away on return; the bytes it points
 * to must stay valid until the iobatch_run() that issues it returns.
 * Queue at most one send per socket per batch: the kernel issues the ops in
 * queue order, but if one send is short a second one could still put its
 * bytes behind the first one's partial bytes. Returns 0, or -1 (errno
 * ENOBUFS) when the batch is full.
 */
int iobatch_send(struct iobatch *b, int fd, const struct iovec *iov,
                 unsigned n_iov, uint64_t tag) WUR;

/*
 * The same send, with the iovec array written in place: iobatch_send_iov()
 * returns the next slot's array (room for IOBATCH_MAX_IOV entries), or
 * NULL (errno ENOBUFS) when the batch is full; fill it, then
 * iobatch_send_commit() queues the send with the first n_iov entries
 * (capped at IOBATCH_MAX_IOV). Not committing leaves nothing queued. Saves
 * the copy of the array (evbuffer_peek writes straight into the slot).
 */
struct iovec *iobatch_send_iov(struct iobatch *b);
int iobatch_send_commit(struct iobatch *b, int fd, unsigned n_iov,
                        uint64_t tag) WUR;

/*
 * Issue everything queued with one io_uring_enter (more only when the
 * kernel submits part of the batch or a signal interrupts the wait; a
 * single op is issued as the plain recv()/sendmsg(), which is cheaper), and
 * call cb (may be NULL) once per op, in completion order. Returns the number
 * of ops completed (0 when nothing was queued, without a syscall).
 *
 * On return nothing is in flight: all buffers may be reused or freed.
 * From cb, the buffer of that op may be reused at once; cb may queue new
 * ops (they go into the next batch: run again) but must not call
 * iobatch_run() or iobatch_free() on this iobatch.
 *
 * Returns -1 with errno on a hard error of io_uring_enter (e.g. EEXIST:
 * called from a thread other than the creator's); then the ops it never
 * issued got cb with -ECANCELED, the issued ones their real result. Aborts
 * only if the kernel refuses to let it wait for ops it already issued (the
 * only way out that keeps buffers safe).
 */
int iobatch_run(struct iobatch *b, iobatch_done_cb cb, void *arg) WUR;

#endif
