/*
 * fuzz_h2_frames.c — bytes from a hostile HTTP/2 client, through everything
 * weir runs on them: client.c's preface sniffing, h2_session.c (nghttp2
 * recv/send, the flood counters, GOAWAY), h2_stream.c (header collection,
 * the HTTP/1.1 head it builds, request DATA re-framed) and proxy.c's txn on
 * the stream's pipe conn, on a real worker-like loop. The input goes into a
 * socketpair after the preface (so nearly every input is HTTP/2); weir's
 * output is read and dropped; then the client's EOF.
 *
 * The one version's endpoint is 127.0.0.1:9 (nothing listens: connects are
 * refused at once), so streams end in 502s through the real error path.
 *
 * Invariants: no crash, no sanitizer report, and after the input the
 * client and every stream client are gone (the client table is empty once
 * the loop ran down, and closing all leaves nothing behind).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "balancer.h"
#include "client.h"
#include "config.h"
#include "conn.h"
#include "fuzz.h"
#include "h2_session.h"
#include "loop.h"
#include "mirror.h"
#include "proxy.h"
#include "router.h"
#include "snapshot.h"
#include "upstream.h"

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static struct loop loop;
static struct snapshot *snap;
static struct router_state router;
static struct balancer_state balancer;
static struct upstream_table upstreams;
static struct proxy_table txns;
static struct mirror_table mirrors;
static struct client_table clients;

static struct snapshot *on_snapshot(struct loop *l)
{
    (void)l;
    return snap;
}

static void setup(void)
{
    static const char yaml[] = "listen: 127.0.0.1:1\ncontrol: /tmp/fuzz-h2.sock\n"
                               "access_log: {enabled: false}\n"
                               "limits: {h2_max_concurrent_streams: 8, max_header_bytes: 4096}\n"
                               "versions:\n  v1:\n    endpoints: [127.0.0.1:9]\n"
                               "split: {v1: 100}\nretries: 0\n";
    struct config_errors errs;
    config_errors_init(&errs, "fuzz.yaml");
    struct config *cfg = config_load_string("fuzz.yaml", yaml, strlen(yaml), &errs);
    config_errors_dispose(&errs);
    FUZZ_CHECK(cfg);
    snap = snapshot_new(cfg, NULL, NULL, 0);
    FUZZ_CHECK(snap);
    FUZZ_CHECK(loop_init(&loop, 0) == 0);
    loop.snapshot_fn = on_snapshot;
    router_state_init(&router, snap);
    balancer_state_init(&balancer, snap);
    loop.router = &router;
    loop.balancer = &balancer;
    loop.upstreams = &upstreams;
    loop.txns = &txns;
    loop.mirrors = &mirrors;
    client_table_init(&clients, &loop, NULL, NULL);
    clients.h2_start = h2_session_start;
    upstream_table_init(&upstreams, &loop);
    proxy_table_init(&txns);
    mirror_table_init(&mirrors, &loop);
}

static void turn(void)
{
    event_base_loop(loop.base, EVLOOP_NONBLOCK);
    conn_run_batch(&loop);
}

static void drain_peer(int fd)
{
    char buf[65536];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return 0;
    int one = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};
    sin.sin_addr.s_addr = htonl(0x7f000001);
    struct client *c = client_new(&clients, sv[0], (struct sockaddr *)&sin, sizeof(sin));
    FUZZ_CHECK(c);
    if (send(sv[1], PREFACE, sizeof(PREFACE) - 1, MSG_NOSIGNAL) < 0)
        return 0;
    size_t off = 0;
    /* Feed in two parts split where the input's hash says, so frames cross
     * read boundaries. */
    size_t cut = size ? (size_t)(fuzz_hash(data, size) % (size + 1)) : 0;
    for (int part = 0; part < 2; part++) {
        size_t end = part == 0 ? cut : size;
        while (off < end) {
            ssize_t n = send(sv[1], data + off, end - off, MSG_NOSIGNAL);
            if (n <= 0) {
                if (n < 0 && errno != EAGAIN)
                    break;
                turn();
                drain_peer(sv[1]);
                continue;
            }
            off += (size_t)n;
        }
        for (int i = 0; i < 20; i++) {
            turn();
            drain_peer(sv[1]);
        }
    }
    shutdown(sv[1], SHUT_WR);
    for (int i = 0; i < 50 && clients.n > 0; i++) {
        turn();
        drain_peer(sv[1]);
    }
    client_table_close_all(&clients, CLIENT_CLOSE_STOP);
    for (int i = 0; i < 5; i++)
        turn();
    loop_reap(&loop);
    FUZZ_CHECK(clients.n == 0);
    close(sv[1]);
    return 0;
}
