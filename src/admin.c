/*
 * admin.c — see admin.h. The admin listener: libevent's evhttp on the main
 * thread's event_base, read-only.
 *
 * Routes (exact paths; the query string is ignored):
 *   /metrics     Prometheus text (metrics_prom.c)
 *   /healthz     200 "ok" while serving, 503 "draining" once a graceful stop
 *                began (Kubernetes readiness/liveness)
 *   /status      the control socket's `status` answer, byte for byte
 *                (control_cmd_execute), application/json
 *   /stats.json  what the status page polls (status_page.c)
 *   /, /index.html  the status page
 * Any method but GET and HEAD gets 405 with `Allow: GET, HEAD`; an unknown
 * path 404. The one exception: with a fleet, POST /fleet takes a peer's
 * message (fleet.c authenticates it; a peer changes nothing else). HEAD is answered by evhttp without the body.
 *
 * Hostile input: evhttp parses; we bound what it may buffer (head size,
 * body size) and how long a connection may sit idle, and we accept every
 * method it knows so that *we* answer 405 rather than evhttp's 501. Garbage
 * gets evhttp's 400 and a close. Nothing here trusts a byte of the request
 * beyond the decoded path.
 *
 * Connections are bounded (issue 13): at most ADMIN_MAX_CONNS open; a new
 * one at the limit closes the one that has waited longest for its next
 * request head (an idle keep-alive or a slowloris, never the new client),
 * so a scraper always gets through, as on the control socket. A request
 * head must be complete within ADMIN_HEAD_TIMEOUT_MS of the accept or of
 * the previous answer; evhttp's own timeout only bounds the gap between
 * two reads, which a client sending a byte every few seconds never hits.
 * Both closes are counted in weir_admin_connections_closed_total{reason}.
 *
 * How the connections are seen (libevent 2.1.12 has no evhttp connection
 * limit and no evhttp_set_newreqcb, and keeps evhttp_get_request static,
 * so accepting ourselves and handing fds over is not possible): evhttp
 * calls our bevcb for each accepted connection, before it wraps the
 * bufferevent in its evhttp_connection. The connection is "pending" until
 * that returns; it is settled (the evhttp_connection read back with
 * bufferevent_getcb, and our closecb set on it) at the next bevcb or, for
 * the last one of an accept burst, by an event activated in the bevcb,
 * which libevent runs in the same loop turn before any I/O callback of
 * the new connection. The closecb then frees the slot whichever way evhttp
 * ends the connection (EOF, error, timeout, evhttp_connection_free, ours).
 *
 * The socket is our own (not SO_REUSEPORT like the workers', so a second
 * weir on the same admin address fails loudly instead of sharing it).
 *
 * Also owns the 1 s timer that feeds the metrics window ring
 * (metrics_window_tick), since only the admin views read windows.
 */
#include "admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "accept_guard.h"
#include "control_cmd.h"
#include "fleet.h"
#include "fleet_msg.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "metrics_prom.h"
#include "status_page.h"
#include "util.h"

#define ADMIN_MAX_HEADERS_BYTES 16384
#define ADMIN_MAX_BODY_BYTES 4096
#define ADMIN_TIMEOUT_S 10
#define ADMIN_BACKLOG 64
#define ADMIN_MAX_CONNS 64
#define ADMIN_HEAD_TIMEOUT_MS 10000
#define ADMIN_CONN_MAGIC 0x41444d43u /* "ADMC" */

/* One open admin connection. */
struct admin_conn {
    uint32_t magic;                  /* ADMIN_CONN_MAGIC while in use, else 0 */
    struct bufferevent *bev;         /* borrowed (evhttp's): set while pending */
    struct evhttp_connection *evcon; /* borrowed (evhttp's): NULL while pending */
    uint64_t waiting_since_ms;       /* accept or previous answer: a head is due */
};

enum admin_close {
    ADMIN_CLOSE_LIMIT = 0,    /* made room for a new connection */
    ADMIN_CLOSE_HEAD_TIMEOUT, /* head not complete in ADMIN_HEAD_TIMEOUT_MS */
    ADMIN_CLOSES
};

static const char *const close_names[ADMIN_CLOSES] = {"limit", "head_timeout"};

struct admin {
    struct event_base *base;   /* borrowed: the main thread's */
    struct evhttp *http;       /* owned */
    int fd;                    /* owned by http once accepted */
    struct event *tick;        /* owned: window sampler, head deadlines */
    struct event *settle;      /* owned: settles the pending connection */
    struct accept_guard guard; /* the listener's accept backoff */
    bool draining;
    struct admin_conn conns[ADMIN_MAX_CONNS];
    unsigned n_open;               /* conns in use */
    struct admin_conn *pending;    /* borrowed: in conns, evcon not known yet */
    uint64_t closed[ADMIN_CLOSES]; /* main thread only, like everything here */
};

static struct admin adm = {.fd = -1};

/* ---- connection limit -------------------------------------------------- */

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct admin_conn *ac = arg; /* a slot of adm.conns: always valid memory */
    if (ac->magic != ADMIN_CONN_MAGIC || ac->evcon != evcon)
        return; /* already released (close_conn's fallback) */
    ac->magic = 0;
    ac->evcon = NULL;
    adm.n_open--;
}

/* The pending connection is wrapped by now: learn its evhttp_connection
 * (the argument evhttp gave its bufferevent's callbacks) and hear of its end. */
static void settle_pending(void)
{
    struct admin_conn *ac = adm.pending;
    if (!ac)
        return;
    adm.pending = NULL;
    void *evcon = NULL;
    bufferevent_getcb(ac->bev, NULL, NULL, NULL, &evcon);
    CHECK(evcon && evhttp_connection_get_bufferevent(evcon) == ac->bev);
    ac->evcon = evcon;
    ac->bev = NULL;
    evhttp_connection_set_closecb(ac->evcon, on_conn_close, ac);
}

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    settle_pending();
}

static void close_conn(struct admin_conn *ac, enum admin_close why)
{
    adm.closed[why]++;
    struct evhttp_connection *evcon = ac->evcon;
    evhttp_connection_free(evcon); /* runs on_conn_close */
    if (ac->magic == ADMIN_CONN_MAGIC && ac->evcon == evcon)
        on_conn_close(evcon, ac); /* it did not: release the slot anyway */
}

/* evhttp accepted a connection: make room if at the limit, note it. */
static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
    (void)arg;
    settle_pending();
    if (adm.n_open >= ADMIN_MAX_CONNS) {
        struct admin_conn *oldest = NULL;
        for (size_t i = 0; i < ADMIN_MAX_CONNS; i++) {
            struct admin_conn *ac = &adm.conns[i];
            if (ac->magic == ADMIN_CONN_MAGIC &&
                (!oldest || ac->waiting_since_ms < oldest->waiting_since_ms))
                oldest = ac;
        }
        CHECK(oldest);
        close_conn(oldest, ADMIN_CLOSE_LIMIT);
    }
    struct admin_conn *slot = NULL;
    for (size_t i = 0; i < ADMIN_MAX_CONNS && !slot; i++)
        if (adm.conns[i].magic != ADMIN_CONN_MAGIC)
            slot = &adm.conns[i];
    CHECK(slot);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* evhttp makes its own, or fails and closes the fd */
    *slot = (struct admin_conn){.magic = ADMIN_CONN_MAGIC, .bev = bev, .waiting_since_ms = util_now_ms()};
    adm.n_open++;
    adm.pending = slot;
    event_active(adm.settle, EV_TIMEOUT, 1);
    return bev;
}

static struct admin_conn *conn_of(struct evhttp_connection *evcon)
{
    for (size_t i = 0; i < ADMIN_MAX_CONNS; i++)
        if (adm.conns[i].magic == ADMIN_CONN_MAGIC && adm.conns[i].evcon == evcon)
            return &adm.conns[i];
    return NULL;
}

/* Close the connections whose next head is overdue. Once a second. */
static void sweep(uint64_t now_ms)
{
    settle_pending();
    for (size_t i = 0; i < ADMIN_MAX_CONNS; i++) {
        struct admin_conn *ac = &adm.conns[i];
        if (ac->magic == ADMIN_CONN_MAGIC &&
            now_ms - ac->waiting_since_ms >= ADMIN_HEAD_TIMEOUT_MS)
            close_conn(ac, ADMIN_CLOSE_HEAD_TIMEOUT);
    }
}

/* The admin listener's own families, after the rest of /metrics. */
static void render_metrics(struct json_buf *b)
{
    json_buf_puts(b, "# HELP weir_admin_connections Open connections to the admin listener.\n"
                     "# TYPE weir_admin_connections gauge\n");
    json_buf_printf(b, "weir_admin_connections %u\n", adm.n_open);
    json_buf_puts(b, "# HELP weir_admin_connections_closed_total Admin connections weir closed: "
                     "at the connection limit (the one waiting longest for a request makes "
                     "room) or for a request head not complete in time.\n"
                     "# TYPE weir_admin_connections_closed_total counter\n");
    for (size_t i = 0; i < ADMIN_CLOSES; i++)
        json_buf_printf(b, "weir_admin_connections_closed_total{reason=\"%s\"} %" PRIu64 "\n",
                        close_names[i], adm.closed[i]);
}

/* ---- responses -------------------------------------------------------- */

static void common_headers(struct evkeyvalq *h, const char *type)
{
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
}

static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *type, const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    common_headers(h, type);
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(buf, body, len);
    evhttp_send_reply(req, code, reason, buf);
    evbuffer_free(buf);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *text)
{
    reply(req, code, reason, "text/plain; charset=utf-8", text, strlen(text));
}

/* ---- routes ------------------------------------------------------------ */

static void serve_metrics(struct evhttp_request *req)
{
    struct json_buf b;
    json_buf_init(&b);
    metrics_prom_render(&b);
    render_metrics(&b);
    reply(req, 200, "OK", METRICS_PROM_CONTENT_TYPE, b.p, b.len);
    json_buf_dispose(&b);
}

static void serve_healthz(struct evhttp_request *req)
{
    if (adm.draining)
        reply_text(req, 503, "Service Unavailable", "draining\n");
    else
        reply_text(req, 200, "OK", "ok\n");
}

static void serve_status(struct evhttp_request *req)
{
    struct json_buf b;
    json_buf_init(&b);
    control_cmd_execute("status", 6, NULL, &b);
    bool ok = strncmp(b.p, "{\"ok\":true", 10) == 0;
    reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
          "application/json", b.p, b.len);
    json_buf_dispose(&b);
}

static void serve_stats(struct evhttp_request *req)
{
    struct json_buf b;
    json_buf_init(&b);
    status_page_render_stats(&b);
    json_buf_puts(&b, "\n");
    reply(req, 200, "OK", "application/json", b.p, b.len);
    json_buf_dispose(&b);
}

static void serve_page(struct evhttp_request *req)
{
    struct json_buf b;
    json_buf_init(&b);
    status_page_render_html(&b);
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Security-Policy", STATUS_PAGE_CSP);
    reply(req, 200, "OK", "text/html; charset=utf-8", b.p, b.len);
    json_buf_dispose(&b);
}

static const struct {
    const char *path;
    void (*serve)(struct evhttp_request *req);
} routes[] = {
    {"/metrics", serve_metrics},
    {"/healthz", serve_healthz},
    {"/status", serve_status},
    {"/stats.json", serve_stats},
    {"/", serve_page},
    {"/index.html", serve_page},
};

/* POST /fleet: a peer's message (fleet.c judges and answers). */
static void serve_fleet(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *mac = evhttp_find_header(evhttp_request_get_input_headers(req),
                                         FLEET_MAC_HEADER);
    char *ip = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &ip, &port);
    char why[256];
    int code = fleet_receive(body ? body : "", body ? len : 0, mac, ip ? ip : "?", why,
                             sizeof(why));
    if (code == 204) {
        evhttp_send_reply(req, 204, "No Content", NULL);
        return;
    }
    char text[300];
    snprintf(text, sizeof(text), "%s\n", why);
    reply_text(req, code, code == 404 ? "Not Found" : code == 413 ? "Payload Too Large"
                                                  : code == 400   ? "Bad Request"
                                                  : code == 409   ? "Conflict"
                                                  : code == 503   ? "Service Unavailable"
                                                                  : "Forbidden",
               text);
}

static void route(struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_POST && fleet_enabled()) {
        const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
        const char *p = u ? evhttp_uri_get_path(u) : NULL;
        if (p && strcmp(p, "/fleet") == 0) {
            serve_fleet(req);
            return;
        }
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed",
                   "method not allowed: the admin listener is read-only (GET, HEAD)\n");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) {
        reply_text(req, 400, "Bad Request", "bad request target\n");
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(routes); i++)
        if (strcmp(path, routes[i].path) == 0) {
            routes[i].serve(req);
            return;
        }
    reply_text(req, 404, "Not Found",
               "not found; try / /metrics /healthz /status /stats.json\n");
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    route(req);
    /* The next head is due within ADMIN_HEAD_TIMEOUT_MS of this answer. */
    settle_pending();
    struct admin_conn *ac = conn_of(evcon);
    if (ac)
        ac->waiting_since_ms = util_now_ms();
}

/* ---- lifecycle ------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    uint64_t now_ms = util_now_ms();
    metrics_window_tick(now_ms);
    sweep(now_ms);
}

static void on_listen_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    accept_guard_failed(&adm.guard, EVUTIL_SOCKET_ERROR());
}

static int listen_socket(const struct config *cfg)
{
    int fd = socket(cfg->admin_sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&cfg->admin_sa, cfg->admin_sa_len) < 0 ||
        listen(fd, ADMIN_BACKLOG) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int admin_start(struct event_base *base, const struct config *cfg)
{
    if (!cfg->admin || adm.http)
        return 0;
    adm.base = base;
    adm.draining = false;
    int fd = listen_socket(cfg);
    if (fd < 0) {
        log_error("admin: cannot listen on %s: %s", cfg->admin, strerror(errno));
        return -1;
    }
    adm.http = evhttp_new(base);
    if (!adm.http) {
        close(fd);
        log_error("admin: evhttp_new failed");
        return -1;
    }
    evhttp_set_allowed_methods(adm.http,
                               EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                   EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                   EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(adm.http, ADMIN_MAX_HEADERS_BYTES);
    /* With a fleet, peers POST their state here (fleet_msg.h bounds it;
     * twice that, so a body just over is refused and counted by fleet.c). */
    evhttp_set_max_body_size(adm.http, cfg->fleet.n_peers ? 2 * (ev_ssize_t)FLEET_MSG_MAX_BYTES
                                                          : ADMIN_MAX_BODY_BYTES);
    evhttp_set_timeout(adm.http, ADMIN_TIMEOUT_S);
    evhttp_set_default_content_type(adm.http, "text/plain; charset=utf-8");
    evhttp_set_gencb(adm.http, on_request, NULL);
    memset(adm.conns, 0, sizeof(adm.conns));
    adm.n_open = 0;
    adm.pending = NULL;
    adm.settle = event_new(base, -1, 0, on_settle, NULL);
    CHECK(adm.settle);
    evhttp_set_bevcb(adm.http, on_new_conn, NULL);
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(adm.http, fd);
    if (!bound || accept_guard_init(&adm.guard, base, evhttp_bound_socket_get_listener(bound),
                                    "admin listener") < 0) {
        if (!bound)
            close(fd); /* else evhttp_free closes it */
        evhttp_free(adm.http);
        adm.http = NULL;
        event_free(adm.settle);
        adm.settle = NULL;
        log_error("admin: cannot accept on %s", cfg->admin);
        return -1;
    }
    adm.fd = fd;
    /* evhttp sets no error callback: at EMFILE its listener would spin. */
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), on_listen_error);

    metrics_window_tick(util_now_ms());
    adm.tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval one_s = {1, 0};
    if (adm.tick)
        event_add(adm.tick, &one_s);

    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char addr[80] = "?";
    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        util_format_addr((struct sockaddr *)&sa, addr, sizeof(addr));
    log_info("admin listening on %s (/metrics /healthz /status /)", addr);
    return 0;
}

void admin_set_draining(void)
{
    adm.draining = true;
}

void admin_stop(void)
{
    if (adm.tick) {
        event_free(adm.tick);
        adm.tick = NULL;
    }
    accept_guard_dispose(&adm.guard);
    if (adm.http) {
        settle_pending();
        evhttp_free(adm.http); /* closes the bound socket and every connection */
        adm.http = NULL;
        adm.fd = -1;
    }
    if (adm.settle) {
        event_free(adm.settle);
        adm.settle = NULL;
    }
}
