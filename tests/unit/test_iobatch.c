/*
 * test_iobatch.c — io_uring batching of socket recv/sendmsg on the running
 * kernel: a recv on an empty socket completes with -EAGAIN inside the run
 * (MSG_DONTWAIT, no poll armed; alarm() turns a hang into a failure),
 * bytes go through sends and recvs, 100 ops on 50 TCP pairs in one run,
 * -EPIPE without SIGPIPE, EOF as 0, a full batch refuses more ops, ops
 * queued from the callback go into the next run, a hard error of
 * io_uring_enter cancels what it did not issue, WEIR_IO_URING=0 disables.
 *
 * When the kernel itself refuses io_uring (a bare io_uring_setup() fails:
 * ENOSYS, EPERM from seccomp or the io_uring_disabled sysctl), what is
 * checked is that iobatch_new() returns NULL so weir falls back; anywhere
 * else iobatch_new() failing is a failure. WEIR_IO_URING=0 must disable it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "iobatch.h"
#include "tap.h"

#define MAX_TAGS 256

/* What the callback saw, by tag and in order. */
struct seen {
    int res[MAX_TAGS];
    int times[MAX_TAGS];
    uint64_t order[MAX_TAGS];
    int n;
};

static void on_done(uint64_t tag, int res, void *arg)
{
    struct seen *s = arg;
    if (tag < MAX_TAGS) {
        s->res[tag] = res;
        s->times[tag]++;
    }
    if (s->n < MAX_TAGS)
        s->order[s->n] = tag;
    s->n++;
}

static void seen_reset(struct seen *s)
{
    memset(s, 0, sizeof(*s));
}

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "Bail out! timeout: an iobatch_run did not return\n";
    (void)!write(1, msg, sizeof(msg) - 1);
    _exit(2);
}

static int listener = -1;
static struct sockaddr_in listen_addr;

/* A connected TCP loopback pair (a: connect side, b: accepted side). */
static int tcp_pair(int *a, int *b)
{
    if (listener < 0) {
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&listen_addr, 0, sizeof(listen_addr));
        listen_addr.sin_family = AF_INET;
        listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(listen_addr);
        if (listener < 0 ||
            bind(listener, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) < 0 ||
            getsockname(listener, (struct sockaddr *)&listen_addr, &len) < 0 ||
            listen(listener, 128) < 0)
            return -1;
    }
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*a < 0 || connect(*a, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) < 0)
        return -1;
    *b = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    return *b < 0 ? -1 : 0;
}

/* Wait (bounded) until fd is readable. */
static int wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 2000) == 1 ? 0 : -1;
}

static void test_disabled(void)
{
    setenv("WEIR_IO_URING", "0", 1);
    errno = 0;
    struct iobatch *b = iobatch_new(8);
    ok(b == NULL && errno == ENOTSUP, "WEIR_IO_URING=0 → NULL, ENOTSUP (errno %d)", errno);
    iobatch_free(b);
    unsetenv("WEIR_IO_URING");
    errno = 0;
    b = iobatch_new(0);
    ok(b == NULL && errno == EINVAL, "0 entries → NULL, EINVAL");
    iobatch_free(b);
    iobatch_free(NULL);
}

static void test_eagain(struct iobatch *b)
{
    int a, p, sv[2];
    struct seen s;
    seen_reset(&s);
    if (tcp_pair(&a, &p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        ok(0, "socket setup");
        return;
    }
    char buf1[16], buf2[16];
    ok(iobatch_recv(b, a, buf1, sizeof(buf1), 1) == 0 &&
           iobatch_recv(b, sv[0], buf2, sizeof(buf2), 2) == 0,
       "queue recv on an empty TCP socket and an empty unix socket");
    alarm(10);
    int r = iobatch_run(b, on_done, &s);
    alarm(0);
    is_int(r, 2, "run returns both completions (no poll armed, no hang)");
    is_int(s.res[1], -EAGAIN, "TCP recv on empty socket → -EAGAIN inside the run");
    is_int(s.res[2], -EAGAIN, "unix recv on empty socket → -EAGAIN inside the run");
    is_int(iobatch_space(b), 128, "space is back after the run");
    close(a);
    close(p);
    close(sv[0]);
    close(sv[1]);
}

static void test_iovecs(struct iobatch *b)
{
    int a, p;
    struct seen s;
    if (tcp_pair(&a, &p) < 0) {
        ok(0, "tcp pair");
        return;
    }
    char h[] = "GET / HTTP/1.1\r\n", f[] = "Host: x\r\n", e[] = "\r\n";
    char want[64];
    snprintf(want, sizeof(want), "%s%s%s", h, f, e);
    size_t total = strlen(want);
    struct iovec *iov = malloc(3 * sizeof(*iov));
    iov[0] = (struct iovec){h, strlen(h)};
    iov[1] = (struct iovec){f, strlen(f)};
    iov[2] = (struct iovec){e, strlen(e)};
    seen_reset(&s);
    ok(iobatch_send(b, a, iov, 3, 7) == 0, "queue a send of 3 iovecs");
    memset(iov, 0xa5, 3 * sizeof(*iov)); /* the iobatch copied the array */
    free(iov);
    is_int(iobatch_run(b, on_done, &s), 1, "send batch: one completion");
    is_int(s.res[7], (long)total, "sendmsg sent all %zu bytes", total);

    char got[64] = {0};
    int r = -EAGAIN;
    for (int tries = 0; tries < 5 && r == -EAGAIN; tries++) {
        if (wait_readable(p) < 0)
            break;
        seen_reset(&s);
        ok(iobatch_recv(b, p, got, sizeof(got), 8) == 0, "queue recv on the peer");
        (void)!iobatch_run(b, on_done, &s);
        r = s.res[8];
    }
    is_int(r, (long)total, "next batch: peer recv got %zu bytes", total);
    ok(r == (int)total && memcmp(got, want, total) == 0, "bytes equal what was sent");

    /* In place: the array written into the slot, two sends in one batch
     * (one of them committed with more entries than the cap allows). */
    struct iovec *slot = iobatch_send_iov(b);
    ok(slot != NULL, "send_iov: a slot's array to fill");
    if (slot) {
        slot[0] = (struct iovec){h, strlen(h)};
        slot[1] = (struct iovec){f, strlen(f)};
        ok(iobatch_send_commit(b, a, 2, 11) == 0, "send_commit queues it");
    }
    slot = iobatch_send_iov(b);
    if (slot) {
        for (unsigned k = 0; k < IOBATCH_MAX_IOV; k++)
            slot[k] = (struct iovec){e, 1};
        ok(iobatch_send_commit(b, p, IOBATCH_MAX_IOV + 5, 12) == 0,
           "send_commit caps n_iov at IOBATCH_MAX_IOV");
    }
    seen_reset(&s);
    is_int(iobatch_run(b, on_done, &s), 2, "both in-place sends completed");
    is_int(s.res[11], (long)(strlen(h) + strlen(f)), "in-place send: both entries sent");
    is_int(s.res[12], (long)IOBATCH_MAX_IOV, "capped send: IOBATCH_MAX_IOV bytes");
    memset(got, 0, sizeof(got));
    r = -EAGAIN;
    for (int tries = 0; tries < 5 && r == -EAGAIN; tries++) {
        if (wait_readable(p) < 0)
            break;
        seen_reset(&s);
        if (iobatch_recv(b, p, got, sizeof(got), 13) == 0)
            (void)!iobatch_run(b, on_done, &s);
        r = s.res[13];
    }
    ok(r == (int)(strlen(h) + strlen(f)) && memcmp(got, want, (size_t)r) == 0,
       "in-place send's bytes arrive in order (%d)", r);
    char drain[128];
    for (int tries = 0; tries < 5; tries++) {
        if (wait_readable(a) < 0)
            break;
        if (recv(a, drain, sizeof(drain), MSG_DONTWAIT) > 0)
            break;
    }

    /* Same batch: send then recv on the peer. The kernel issues SQEs in
     * queue order, but io_uring does not promise it without IOSQE_IO_LINK,
     * so this is a diagnostic, not a test. */
    seen_reset(&s);
    struct iovec one = {h, strlen(h)};
    memset(got, 0, sizeof(got));
    if (iobatch_send(b, a, &one, 1, 1) == 0 && iobatch_recv(b, p, got, sizeof(got), 2) == 0 &&
        iobatch_run(b, on_done, &s) == 2)
        printf("# same batch: send %d, peer recv %d (%s)\n", s.res[1], s.res[2],
               s.res[2] == (int)one.iov_len ? "issued in queue order" : "not yet there");
    close(a);
    close(p);
}

static void test_hundred(struct iobatch *b)
{
    enum { PAIRS = 50 };
    int a[PAIRS], p[PAIRS];
    char in[PAIRS][32], msg[PAIRS][32];
    struct seen s;
    for (int i = 0; i < PAIRS; i++) {
        if (tcp_pair(&a[i], &p[i]) < 0) {
            ok(0, "tcp pair %d", i);
            return;
        }
        char ping[32];
        int len = snprintf(ping, sizeof(ping), "ping %d", i);
        if (write(p[i], ping, (size_t)len) != len || wait_readable(a[i]) < 0) {
            ok(0, "ping %d", i);
            return;
        }
    }
    seen_reset(&s);
    int queued = 0;
    for (int i = 0; i < PAIRS; i++) {
        memset(in[i], 0, sizeof(in[i]));
        int len = snprintf(msg[i], sizeof(msg[i]), "pong %d", i);
        struct iovec iov = {msg[i], (size_t)len};
        queued += iobatch_recv(b, a[i], in[i], sizeof(in[i]) - 1, (uint64_t)i) == 0;
        queued += iobatch_send(b, a[i], &iov, 1, (uint64_t)(PAIRS + i)) == 0;
    }
    is_int(queued, 2 * PAIRS, "100 ops queued on 50 TCP pairs");
    is_int(iobatch_space(b), 128 - 2 * PAIRS, "space counts them");
    alarm(10);
    is_int(iobatch_run(b, on_done, &s), 2 * PAIRS, "one run completes all 100");
    alarm(0);
    is_int(s.n, 2 * PAIRS, "callback called 100 times");
    int once = 1, recv_ok = 1, send_ok = 1, peer_ok = 1;
    for (int i = 0; i < PAIRS; i++) {
        char want[32];
        snprintf(want, sizeof(want), "ping %d", i);
        once &= s.times[i] == 1 && s.times[PAIRS + i] == 1;
        recv_ok &= s.res[i] == (int)strlen(want) && strcmp(in[i], want) == 0;
        send_ok &= s.res[PAIRS + i] == (int)strlen(msg[i]);
        char back[32] = {0};
        peer_ok &= wait_readable(p[i]) == 0 &&
                   read(p[i], back, sizeof(back) - 1) == (ssize_t)strlen(msg[i]) &&
                   strcmp(back, msg[i]) == 0;
        close(a[i]);
        close(p[i]);
    }
    ok(once, "every tag completed exactly once");
    ok(recv_ok, "every recv got its pair's ping");
    ok(send_ok, "every send sent its whole pong");
    ok(peer_ok, "every peer read its pong");
}

static void test_closed_peer(struct iobatch *b)
{
    int sv[2], a, p;
    struct seen s;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || tcp_pair(&a, &p) < 0) {
        ok(0, "socket setup");
        return;
    }
    close(sv[1]);
    close(p);
    if (wait_readable(a) < 0)
        ok(0, "FIN arrives");
    char data[] = "hello", buf[8];
    struct iovec iov = {data, 5};
    seen_reset(&s);
    sigpipes = 0;
    ok(iobatch_send(b, sv[0], &iov, 1, 1) == 0 && iobatch_recv(b, a, buf, sizeof(buf), 2) == 0,
       "queue a send to a closed unix peer and a recv from a closed TCP peer");
    is_int(iobatch_run(b, on_done, &s), 2, "both complete");
    is_int(s.res[1], -EPIPE, "send to a closed peer → -EPIPE");
    is_int(s.res[2], 0, "recv after the peer closed → 0 (EOF)");

    /* TCP: the first send after FIN is accepted and draws an RST; a later
     * one fails with -EPIPE or -ECONNRESET. */
    int res = 0;
    for (int i = 0; i < 20 && res >= 0; i++) {
        seen_reset(&s);
        if (iobatch_send(b, a, &iov, 1, 3) < 0 || iobatch_run(b, on_done, &s) != 1)
            break;
        res = s.res[3];
        if (res >= 0)
            usleep(1000);
    }
    ok(res == -EPIPE || res == -ECONNRESET, "TCP send after RST → -EPIPE/-ECONNRESET (%d)", res);
    is_int(sigpipes, 0, "no SIGPIPE");
    close(sv[0]);
    close(a);
}

static void test_full(void)
{
    struct iobatch *b = iobatch_new(8);
    ok(b != NULL, "iobatch_new(8)");
    if (!b)
        return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        ok(0, "socketpair");
        iobatch_free(b);
        return;
    }
    char buf[8][4];
    struct seen s;
    int rounds_ok = 1;
    /* 20 rounds wrap the 16-position ring several times. */
    for (int round = 0; round < 20; round++) {
        int q = 0;
        for (int i = 0; i < 8; i++)
            q += iobatch_recv(b, sv[0], buf[i], sizeof(buf[i]), (uint64_t)i) == 0;
        if (round == 0) {
            is_int(q, 8, "8 ops fit");
            is_int(iobatch_space(b), 0, "then space is 0");
            errno = 0;
            is_int(iobatch_recv(b, sv[0], buf[0], 4, 99), -1, "a 9th recv → -1");
            ok(errno == ENOBUFS, "errno ENOBUFS");
            struct iovec iov = {buf[0], 1};
            is_int(iobatch_send(b, sv[0], &iov, 1, 99), -1, "a 9th send → -1");
        }
        seen_reset(&s);
        int r = iobatch_run(b, on_done, &s);
        int all = r == 8 && iobatch_space(b) == 8 && s.times[99] == 0;
        for (int i = 0; i < 8; i++)
            all &= s.res[i] == -EAGAIN;
        if (round == 0)
            ok(all, "run completes the 8 (-EAGAIN each), space is 8 again");
        rounds_ok &= all;
    }
    ok(rounds_ok, "20 full batches in a row");
    close(sv[0]);
    close(sv[1]);
    iobatch_free(b);
}

static void test_errors(struct iobatch *b)
{
    int sv[2], pfd[2];
    struct seen s;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || pipe(pfd) < 0) {
        ok(0, "setup");
        return;
    }
    char buf[8];
    char big[100];
    struct iovec iov[100];
    for (int i = 0; i < 100; i++)
        iov[i] = (struct iovec){&big[i], 1};
    memset(big, 'z', sizeof(big));
    seen_reset(&s);
    ok(iobatch_recv(b, -1, buf, sizeof(buf), 1) == 0 &&
           iobatch_recv(b, pfd[0], buf, sizeof(buf), 2) == 0 &&
           iobatch_send(b, sv[0], iov, 100, 3) == 0,
       "queue recv on a bad fd, recv on a pipe, a send of 100 iovecs");
    is_int(iobatch_run(b, on_done, &s), 3, "all complete");
    is_int(s.res[1], -EBADF, "bad fd → -EBADF");
    is_int(s.res[2], -ENOTSOCK, "pipe → -ENOTSOCK");
    is_int(s.res[3], IOBATCH_MAX_IOV, "100 iovecs → only the first %d sent", IOBATCH_MAX_IOV);

    /* Send to a full socket: -EAGAIN inside the run, not a wait. */
    int sz = 4096;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    char chunk[4096];
    memset(chunk, 'f', sizeof(chunk));
    while (send(sv[0], chunk, sizeof(chunk), MSG_DONTWAIT) > 0)
        ;
    struct iovec one = {chunk, sizeof(chunk)};
    seen_reset(&s);
    /* Two ops, so they go through io_uring (one op is a plain syscall). */
    ok(iobatch_send(b, sv[0], &one, 1, 4) == 0 && iobatch_send(b, sv[0], &one, 1, 5) == 0,
       "queue sends on a full socket");
    alarm(10);
    is_int(iobatch_run(b, on_done, &s), 2, "run returns");
    alarm(0);
    is_int(s.res[4], -EAGAIN, "send on a full socket → -EAGAIN inside the run");
    is_int(s.res[5], -EAGAIN, "and again");

    /* A batch of one op: the plain syscall, same results. */
    seen_reset(&s);
    ok(iobatch_send(b, sv[0], &one, 1, 6) == 0, "queue one send on the full socket");
    is_int(iobatch_run(b, on_done, &s), 1, "a batch of one completes");
    is_int(s.res[6], -EAGAIN, "with -EAGAIN");
    is_int(iobatch_space(b), 128, "and frees its slot");
    seen_reset(&s);
    ok(iobatch_recv(b, -1, buf, sizeof(buf), 7) == 0 && iobatch_run(b, on_done, &s) == 1 &&
           s.res[7] == -EBADF,
       "one recv on a bad fd → -EBADF");
    close(sv[0]);
    close(sv[1]);
    close(pfd[0]);
    close(pfd[1]);
}

/* From the callback: echo what a recv got back through a send queued for
 * the next batch. */
struct echo {
    struct iobatch *b;
    int fd;
    char buf[16];
    int queued, res_send, calls;
};

static void on_echo(uint64_t tag, int res, void *arg)
{
    struct echo *e = arg;
    e->calls++;
    if (tag == 1 && res > 0) {
        struct iovec iov = {e->buf, (size_t)res};
        e->queued = iobatch_send(e->b, e->fd, &iov, 1, 2) == 0;
    } else if (tag == 2) {
        e->res_send = res;
    }
}

static void test_queue_from_callback(struct iobatch *b)
{
    int a, p;
    if (tcp_pair(&a, &p) < 0 || write(p, "echo", 4) != 4 || wait_readable(a) < 0) {
        ok(0, "setup");
        return;
    }
    struct echo e = {.b = b, .fd = a};
    /* Fill the batch so the op queued from the callback needs the second
     * half of the ring. */
    int q = iobatch_recv(b, a, e.buf, sizeof(e.buf), 1) == 0;
    char junk[4];
    while (iobatch_space(b) > 0)
        q &= iobatch_recv(b, a, junk, sizeof(junk), 3) == 0;
    ok(q, "a full batch queued");
    is_int(iobatch_run(b, on_echo, &e), 128, "run completes the 128");
    ok(e.queued, "the callback could queue a send");
    is_int(iobatch_space(b), 127, "it waits for the next run");
    is_int(iobatch_run(b, on_echo, &e), 1, "next run issues it");
    is_int(e.res_send, 4, "echo sent");
    char back[8] = {0};
    ok(wait_readable(p) == 0 && read(p, back, sizeof(back)) == 4 && memcmp(back, "echo", 4) == 0,
       "peer got the echo");
    close(a);
    close(p);
}

/* A run from a thread other than the creator's: with SINGLE_ISSUER the
 * kernel refuses (EEXIST) before issuing anything, which exercises the
 * hard-error path: every op gets -ECANCELED, an op queued from that
 * callback survives for the next run. */
struct foreign {
    struct iobatch *b;
    int fd;
    struct seen s;
    int queued_from_cb;
    int r, err;
};

static void on_foreign(uint64_t tag, int res, void *arg)
{
    struct foreign *f = arg;
    on_done(tag, res, &f->s);
    if (tag == 0 && res == -ECANCELED) {
        struct iovec iov = {"hi", 2};
        f->queued_from_cb = iobatch_send(f->b, f->fd, &iov, 1, 10) == 0;
    }
}

static void *foreign_run(void *arg)
{
    struct foreign *f = arg;
    errno = 0;
    f->r = iobatch_run(f->b, on_foreign, f);
    f->err = errno;
    return NULL;
}

static void test_hard_error(void)
{
    struct iobatch *b = iobatch_new(8);
    int sv[2];
    if (!b || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        ok(0, "setup");
        iobatch_free(b);
        return;
    }
    struct foreign f;
    memset(&f, 0, sizeof(f));
    f.b = b;
    f.fd = sv[0];
    char buf[4][4];
    int q = 1;
    for (int i = 0; i < 4; i++)
        q &= iobatch_recv(b, sv[0], buf[i], sizeof(buf[i]), (uint64_t)i) == 0;
    pthread_t t;
    ok(q && pthread_create(&t, NULL, foreign_run, &f) == 0, "run from another thread");
    pthread_join(t, NULL);
    if (f.r == -1) {
        is_int(f.err, EEXIST, "SINGLE_ISSUER ring: kernel refuses → -1, EEXIST");
        int all = f.s.n == 4;
        for (int i = 0; i < 4; i++)
            all &= f.s.times[i] == 1 && f.s.res[i] == -ECANCELED;
        ok(all, "each unissued op got -ECANCELED once");
        ok(f.queued_from_cb && iobatch_space(b) == 7, "the op queued from that callback is kept");
        struct seen s;
        seen_reset(&s);
        is_int(iobatch_run(b, on_done, &s), 1, "owner thread: next run issues it");
        is_int(s.res[10], 2, "and it sends");
        char back[4] = {0};
        ok(read(sv[1], back, sizeof(back)) == 2 && memcmp(back, "hi", 2) == 0,
           "peer got the bytes of the moved op");
    } else {
        printf("# kernel without IORING_SETUP_SINGLE_ISSUER: a foreign run works\n");
        is_int(f.r, 4, "foreign run completes the 4");
    }
    close(sv[0]);
    close(sv[1]);
    iobatch_free(b);
}

/* errno of a bare io_uring_setup() when the kernel refuses io_uring as
 * such (not a missing feature iobatch_new() checks for); 0 if it works. */
static int kernel_refuses_io_uring(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    long fd = syscall(__NR_io_uring_setup, 4, &p);
    if (fd >= 0) {
        close((int)fd);
        return 0;
    }
    return (errno == ENOSYS || errno == EPERM || errno == EACCES) ? errno : 0;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_sigpipe;
    sigaction(SIGPIPE, &sa, NULL);

    const char *env = getenv("WEIR_IO_URING");
    if (env && strcmp(env, "0") == 0) {
        errno = 0;
        struct iobatch *b = iobatch_new(8);
        ok(b == NULL && errno == ENOTSUP, "WEIR_IO_URING=0 set: iobatch_new → NULL, ENOTSUP");
        iobatch_free(b);
        printf("# io_uring disabled by WEIR_IO_URING=0: nothing else to test\n");
        return tap_done();
    }

    test_disabled();
    int refused = kernel_refuses_io_uring();
    if (refused) {
        errno = 0;
        struct iobatch *nb = iobatch_new(128);
        ok(nb == NULL && errno != 0, "kernel refuses io_uring (%s): iobatch_new → NULL (%s)",
           strerror(refused), strerror(errno));
        iobatch_free(nb);
        printf("# io_uring refused by this kernel: only the fallback is checked\n");
        return tap_done();
    }
    errno = 0;
    struct iobatch *b = iobatch_new(128);
    int err = errno;
    ok(b != NULL, "iobatch_new(128) works on this kernel (errno %d %s)", b ? 0 : err,
       b ? "" : strerror(err));
    if (!b) {
        printf("Bail out! io_uring unusable here; set WEIR_IO_URING=0 to run without it\n");
        return tap_done();
    }
    is_int(iobatch_space(b), 128, "space = entries");
    is_int(iobatch_run(b, on_done, NULL), 0, "run with nothing queued → 0");

    test_eagain(b);
    test_iovecs(b);
    test_hundred(b);
    test_closed_peer(b);
    test_errors(b);
    test_queue_from_callback(b);
    test_full();
    test_hard_error();
    iobatch_free(b);
    if (listener >= 0)
        close(listener);
    return tap_done();
}
