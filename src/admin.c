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
 * The socket is our own (not SO_REUSEPORT like the workers', so a second
 * weir on the same admin address fails loudly instead of sharing it).
 *
 * Also owns the 1 s timer that feeds the metrics window ring
 * (metrics_window_tick), since only the admin views read windows.
 */
#include "admin.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
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

struct admin {
    struct event_base *base;          /* borrowed: the main thread's */
    struct evhttp *http;              /* owned */
    int fd;                           /* owned by http once accepted */
    struct event *tick;               /* owned: window sampler */
    struct accept_guard guard;        /* the listener's accept backoff */
    bool draining;
};

static struct admin adm = {.fd = -1};

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
    {"/metrics", serve_metrics},   {"/healthz", serve_healthz},
    {"/status", serve_status},     {"/stats.json", serve_stats},
    {"/", serve_page},             {"/index.html", serve_page},
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
                          : code == 400 ? "Bad Request" : code == 409 ? "Conflict" : code == 503 ? "Service Unavailable"
                          : "Forbidden", text);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
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

/* ---- lifecycle ------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    metrics_window_tick(util_now_ms());
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
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(adm.http, fd);
    if (!bound || accept_guard_init(&adm.guard, base, evhttp_bound_socket_get_listener(bound),
                                    "admin listener") < 0) {
        if (!bound)
            close(fd); /* else evhttp_free closes it */
        evhttp_free(adm.http);
        adm.http = NULL;
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
        evhttp_free(adm.http); /* closes the bound socket and every connection */
        adm.http = NULL;
        adm.fd = -1;
    }
}
