/*
 * test_upstream.c — upstream.c's pools on real sockets: a listener on
 * 127.0.0.1 (port 0) is the endpoint, a real loop (loop.c) drives the
 * conns, and a snapshot built from a config string supplies the limits
 * (loop_snapshot). Checks: acquire opens a conn and reports CONN_CONNECTED
 * from the loop; release pools it and the next acquire reuses it (no new
 * connection reaches the listener); fresh acquires skip the pool; the pool
 * is LIFO (warmest first) and bounded by limits.upstream_idle_per_endpoint
 * (the extra conn is closed: its peer sees EOF); a peer closing an idle conn
 * evicts it; a retired endpoint's pooled conns close on
 * upstream_flush_pool() and a conn released to it is not pooled; the open
 * conns gauge follows; a limit of 0 pools nothing. Then the endpoint index: carried over with its
 * endpoint into the next snapshot, distinct for live endpoints, reused only
 * after an endpoint is freed. alarm() turns a hang into a failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "loop.h"
#include "metrics.h"
#include "snapshot.h"
#include "tap.h"
#include "upstream.h"

static struct snapshot *cur; /* what loop_snapshot() answers */
static struct event *tick;
static int listen_fd = -1;

/* What the callbacks of one lent conn saw (also the "txn" it is lent to). */
struct probe {
    int connected, errors, reads;
};

static void on_read(struct conn *cn, void *arg)
{
    (void)cn;
    ((struct probe *)arg)->reads++;
}

static void on_event(struct conn *cn, short what, void *arg)
{
    (void)cn;
    struct probe *p = arg;
    if (what & CONN_CONNECTED)
        p->connected++;
    else
        p->errors++;
}

static struct snapshot *on_snapshot(struct loop *l)
{
    (void)l;
    return cur;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void turn(struct loop *l)
{
    event_base_loop(l->base, EVLOOP_ONCE);
    conn_run_batch(l);
}

/* Turn until *v >= n or 2 s passed. */
static bool spin_until(struct loop *l, const int *v, int n)
{
    long long deadline = now_ms() + 2000;
    while (*v < n && now_ms() < deadline)
        turn(l);
    return *v >= n;
}

/* A snapshot naming the listener (and maybe a second endpoint), pools of
 * at most max_idle conns. */
static struct snapshot *make_for(int port, unsigned max_idle, int other_port,
                                 const struct snapshot *prev)
{
    char yaml[512];
    char other[64] = "";
    if (other_port)
        snprintf(other, sizeof(other), ", 127.0.0.1:%d", other_port);
    snprintf(yaml, sizeof(yaml),
             "listen: 127.0.0.1:1\ncontrol: /tmp/x.sock\n"
             "limits: {upstream_idle_per_endpoint: %u}\n"
             "versions:\n  v1:\n    endpoints: [127.0.0.1:%d%s]\nsplit: {v1: 100}\n",
             max_idle, port, other);
    struct config_errors errs;
    config_errors_init(&errs, "test.yaml");
    struct config *cfg = config_load_string("test.yaml", yaml, strlen(yaml), &errs);
    if (!cfg) {
        char buf[1024];
        config_errors_format(&errs, buf, sizeof(buf));
        fprintf(stderr, "# %s\n", buf);
    }
    config_errors_dispose(&errs);
    CHECK(cfg);
    return snapshot_new(cfg, prev, NULL, 0);
}

/* Accept one pending connection (-1 when none is waiting). */
static int accept_one(void)
{
    return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* The peer of a closed conn reads EOF (waits up to 2 s). */
static bool peer_sees_eof(struct loop *l, int fd)
{
    long long deadline = now_ms() + 2000;
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n > 0 || errno != EAGAIN || now_ms() >= deadline)
            return false;
        turn(l);
    }
}

/* The peer of a live conn reads nothing yet. */
static bool peer_open(int fd)
{
    char c;
    return read(fd, &c, 1) < 0 && errno == EAGAIN;
}

/* A newly connected conn lent to p (fresh unless `pooled_ok`: the pool
 * must be empty then), and its accepted peer in *peer. */
static struct upstream_conn *connect_one(struct loop *l, struct upstream_table *tab,
                                         struct endpoint *ep, bool pooled_ok,
                                         struct probe *p, int *peer)
{
    memset(p, 0, sizeof(*p));
    struct upstream_conn *uc =
        upstream_acquire(tab, ep, !pooled_ok, on_read, NULL, on_event, p);
    CHECK(uc);
    spin_until(l, &p->connected, 1);
    *peer = -1;
    long long deadline = now_ms() + 2000;
    while ((*peer = accept_one()) < 0 && now_ms() < deadline)
        turn(l);
    return uc;
}

static void check_pool(struct loop *l, struct upstream_table *tab, struct endpoint *ep)
{
    /* 0. upstream_idle_per_endpoint: 0 pools nothing (before any pool exists). */
    struct snapshot *pooled = cur;
    cur = make_for(ntohs(((struct sockaddr_in *)&ep->sa)->sin_port), 0, 0, pooled);
    ok(cur->versions[0].eps[0].ep == ep, "0. the endpoint is carried over");
    struct probe p0;
    int peer_0;
    struct upstream_conn *z = connect_one(l, tab, ep, true, &p0, &peer_0);
    upstream_release(z, true);
    ok(tab->n_pools == 0 && peer_sees_eof(l, peer_0),
       "0. a limit of 0 idle conns: a released conn is closed, not pooled");
    close(peer_0);
    snapshot_unref(cur);
    cur = pooled;

    /* 1. A first acquire connects. */
    struct probe pa;
    int peer_a;
    struct upstream_conn *a = connect_one(l, tab, ep, true, &pa, &peer_a);
    ok(pa.connected == 1 && pa.errors == 0 && peer_a >= 0 && !a->reused,
       "1. acquire on an empty pool connects (CONN_CONNECTED, the listener has it)");
    is_int((int)metrics_endpoint_conns(ep), 1, "1. one open conn counted");

    /* 2. Released reusable: pooled, then lent again without a new connection. */
    upstream_release(a, true);
    ok(tab->pools[ep->index].n_idle == 1 && peer_open(peer_a),
       "2. a reusable conn is pooled, kept open");
    struct probe pa2 = {0};
    struct upstream_conn *a2 =
        upstream_acquire(tab, ep, false, on_read, NULL, on_event, &pa2);
    a2->txn = (struct txn *)&pa2; /* the borrower marks it lent, as proxy.c does */
    for (int i = 0; i < 5; i++)
        turn(l);
    ok(a2 == a && a2->reused && accept_one() < 0,
       "2. the next acquire lends the pooled conn (reused, no new connection)");
    is_int((int)tab->pools[ep->index].n_idle, 0, "2. the pool is empty again");

    /* 3. fresh skips the pool. */
    upstream_release(a2, true);
    struct probe pf;
    int peer_f;
    memset(&pf, 0, sizeof(pf));
    struct upstream_conn *f =
        upstream_acquire(tab, ep, true, on_read, NULL, on_event, &pf);
    spin_until(l, &pf.connected, 1);
    peer_f = accept_one();
    ok(f && f != a && pf.connected == 1 && peer_f >= 0 &&
           tab->pools[ep->index].n_idle == 1,
       "3. a fresh acquire opens a new conn and leaves the pooled one");

    /* 4. LIFO: pooled a, then f, then b; lent back b, f, a. Bounded at 3:
     * a fourth released conn is closed. */
    struct probe pb, pc;
    int peer_b, peer_c;
    struct upstream_conn *b = connect_one(l, tab, ep, false, &pb, &peer_b);
    struct upstream_conn *c = connect_one(l, tab, ep, false, &pc, &peer_c);
    is_int((int)metrics_endpoint_conns(ep), 4, "4. four open conns counted");
    upstream_release(f, true);
    upstream_release(b, true);
    is_int((int)tab->pools[ep->index].n_idle, 3, "4. three conns pooled");
    upstream_release(c, true);
    ok(tab->pools[ep->index].n_idle == 3 && peer_sees_eof(l, peer_c),
       "4. the pool is bounded (3): a fourth released conn is closed");
    is_int((int)metrics_endpoint_conns(ep), 3, "4. three open conns counted");
    struct probe q1 = {0}, q2 = {0}, q3 = {0};
    struct upstream_conn *g1 = upstream_acquire(tab, ep, false, on_read, NULL, on_event, &q1);
    struct upstream_conn *g2 = upstream_acquire(tab, ep, false, on_read, NULL, on_event, &q2);
    struct upstream_conn *g3 = upstream_acquire(tab, ep, false, on_read, NULL, on_event, &q3);
    ok(g1 == b && g2 == f && g3 == a, "4. LIFO: lent back warmest first (b, f, a)");
    upstream_release(g3, true);
    upstream_release(g2, true);
    upstream_release(g1, true);

    /* 5. Not reusable: closed, not pooled. */
    struct probe pn;
    int peer_n;
    struct upstream_conn *n = connect_one(l, tab, ep, false, &pn, &peer_n);
    upstream_release(n, false);
    ok(tab->pools[ep->index].n_idle == 3 && peer_sees_eof(l, peer_n),
       "5. a conn released as not reusable is closed");

    /* 6. A peer closing an idle conn evicts it from the pool. */
    close(peer_b); /* b is the warmest: at the head */
    long long deadline = now_ms() + 2000;
    while (tab->pools[ep->index].n_idle == 3 && now_ms() < deadline)
        turn(l);
    struct probe q4 = {0};
    struct upstream_conn *g4 = upstream_acquire(tab, ep, false, on_read, NULL, on_event, &q4);
    ok(tab->pools[ep->index].n_idle == 1 && g4 == f,
       "6. the peer closed an idle conn: evicted, the next one is lent");
    upstream_release(g4, true);

    /* 7. Retired: pooled conns close on flush; a conn released to a retired
     * endpoint is not pooled. */
    struct probe pr;
    int peer_r;
    struct upstream_conn *r = connect_one(l, tab, ep, false, &pr, &peer_r);
    atomic_store(&ep->retired, true);
    upstream_flush_pool(tab, ep);
    ok(tab->pools[ep->index].n_idle == 0 && peer_sees_eof(l, peer_f) &&
           peer_sees_eof(l, peer_a),
       "7. retired endpoint: its pooled conns are closed (peers see EOF)");
    ok(peer_open(peer_r), "7. the lent conn stays open while lent");
    upstream_release(r, true);
    ok(tab->pools[ep->index].n_idle == 0 && peer_sees_eof(l, peer_r),
       "7. released to a retired endpoint: closed, not pooled");
    is_int((int)metrics_endpoint_conns(ep), 0, "7. no open conns counted");
    atomic_store(&ep->retired, false);

    /* 8. upstream_close_all closes what is pooled. */
    struct probe ps;
    int peer_s;
    struct upstream_conn *s = connect_one(l, tab, ep, false, &ps, &peer_s);
    upstream_release(s, true);
    upstream_close_all(tab);
    ok(tab->all == NULL && tab->pools[ep->index].n_idle == 0 && peer_sees_eof(l, peer_s),
       "8. upstream_close_all closes the pooled conns");
    close(peer_a);
    close(peer_f);
    close(peer_c);
    close(peer_n);
    close(peer_r);
    close(peer_s);
}

static bool names(const struct snapshot *s, const struct endpoint *ep)
{
    for (size_t i = 0; i < s->versions[0].n_eps; i++)
        if (s->versions[0].eps[i].ep == ep)
            return true;
    return false;
}

static void check_index(int port)
{
    struct snapshot *s1 = make_for(port, 3, port + 1, NULL);
    struct endpoint *e1 = s1->versions[0].eps[0].ep, *e2 = s1->versions[0].eps[1].ep;
    ok(e1->index != e2->index, "9. two live endpoints have distinct indexes");
    uint32_t i1 = e1->index, i2 = e2->index;
    /* Drop the second endpoint: the first is carried over with its index. */
    struct snapshot *s2 = make_for(port, 3, 0, s1);
    ok(s2->versions[0].eps[0].ep == e1 && e1->index == i1,
       "9. a carried-over endpoint keeps its index in the next snapshot");
    ok(!names(s2, e2), "9. the removed endpoint is not in the next snapshot");
    /* While e2 lives (s1 holds it), a new endpoint cannot take its index. */
    struct snapshot *s3 = make_for(port, 3, port + 2, s2);
    struct endpoint *e3 = s3->versions[0].eps[1].ep;
    ok(e3->index != i1 && e3->index != i2,
       "9. a new endpoint gets an index no live endpoint has");
    snapshot_unref(s1); /* frees e2: its index is free again */
    struct snapshot *s4 = make_for(port, 3, port + 3, s2);
    struct endpoint *e4 = s4->versions[0].eps[1].ep;
    ok(e4->index == i2, "9. a freed endpoint's index is reused (small and dense)");
    snapshot_unref(s4);
    snapshot_unref(s3);
    snapshot_unref(s2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(60);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(listen_fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    socklen_t len = sizeof(sa);
    CHECK(getsockname(listen_fd, (struct sockaddr *)&sa, &len) == 0);
    CHECK(listen(listen_fd, 16) == 0);
    int port = ntohs(sa.sin_port);

    cur = make_for(port, 3, 0, NULL);
    struct loop l;
    CHECK(loop_init(&l, 0) == 0);
    struct upstream_table tab;
    upstream_table_init(&tab, &l);
    l.snapshot_fn = on_snapshot;
    l.upstreams = &tab;
    tick = event_new(l.base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 2000};
    event_add(tick, &tv);

    check_pool(&l, &tab, cur->versions[0].eps[0].ep);

    event_free(tick);
    loop_reap(&l);
    upstream_table_dispose(&tab);
    loop_dispose(&l);
    snapshot_unref(cur);
    check_index(port);
    close(listen_fd);
    return tap_done();
}
