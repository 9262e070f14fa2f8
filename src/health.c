/*
 * health.c — active health checks, following the published snapshot. Main
 * thread only.
 *
 * Following: a 100 ms timer compares snapshot_generation() with the
 * generation last synced (health_snapshot_changed() just makes that timer
 * fire now, never re-enters a publisher), so nothing that publishes has to
 * know about health. A sync makes the set of probes equal the endpoints of
 * every version that has `health:`, wherever they came from (config file,
 * control socket, DNS discovery).
 * Probes are keyed by endpoint object: snapshot.c carries an endpoint over
 * from one snapshot to the next while its version and address stay, so
 * check state survives reloads, runtime changes and discovery refreshes.
 *
 * One probe per endpoint, one state machine:
 *   IDLE --timer--> CHECKING: fresh TCP conn to the endpoint's address (port
 *     replaced by `health.port` when set), "GET path HTTP/1.1" with
 *     Connection: close; the same timer is now the check's deadline.
 *   CHECKING --status line | EOF | error | deadline--> IDLE: the result is
 *     applied (2xx/3xx passes, like Kubernetes and HAProxy); the next check
 *     starts `interval` after this one started. After a status line the rest
 *     of the answer is read and dropped until the endpoint closes (bounded),
 *     so checks do not end in resets the application would log.
 * The verdict follows health_hyst_step() (rise/fall hysteresis) and is
 * stored in ep->healthy, which the balancer reads.
 *
 * Initial verdict (documented in conf/weir.yaml): endpoints that exist when
 * checks start for them (weir starting, or `health:` added to a running
 * version) start healthy, so a restart does not refuse traffic while the
 * first round runs, and their first failed check takes them out (HAProxy's
 * "up" initial state). Endpoints that appear later (discovery, reload,
 * control socket) start unhealthy and take traffic after their first passing
 * check, sent at once (Envoy's pending first check): a new pod is not
 * trusted before it says it is ready.
 *
 * A passing check lifts a passive ejection (Envoy's
 * successful_active_health_check_uneject_host). When a version loses
 * `health:` its endpoints count as healthy again (nothing checks them).
 *
 * Does not own: passive ejection (health_passive.c), endpoints and snapshots
 * (snapshot.c), and knows nothing of where endpoints come from.
 */
#include "health.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "util.h"

#define PROBE_MAGIC 0x50524f42u /* "PROB" */
#define SYNC_INTERVAL_MS 100u
#define STATUS_LINE_MAX 1024u   /* bytes read looking for the status line */
#define DRAIN_MAX (64u * 1024u) /* rest of an answer read before closing */
#define HYST_SATURATE 1000000u  /* consecutive counts stop growing here */

struct probe {
    uint32_t magic;
    struct endpoint *ep; /* refcounted */
    char *path;          /* owned */
    uint16_t port;       /* 0 = the endpoint's own port */
    uint32_t interval_ms, timeout_ms, rise, fall;
    struct sockaddr_storage sa; /* where checks connect */
    socklen_t sa_len;
    char target[80];           /* sa as text: Host header and logs */
    struct event *timer;       /* owned: next check, or the running one's deadline */
    struct bufferevent *bev;   /* owned while a check runs, else NULL */
    struct bufferevent *drain; /* owned: a finished check's conn being read to EOF */
    size_t drained;            /* bytes dropped from `drain` */
    bool connected;            /* the running check's connect completed */
    uint64_t started_ms;       /* monotonic start of the running/last check */
    struct health_hyst hyst;
    bool seen;          /* sync: named by the snapshot being synced */
    struct probe *next; /* owned list link */
};

static struct {
    struct event_base *base;  /* borrowed: the main thread's */
    struct event *sync_timer; /* owned */
    uint64_t synced_gen;      /* generation of `known` */
    struct snapshot *known;   /* refcounted: the snapshot last synced */
    struct probe *probes;     /* owned list */
    size_t n_probes;
} hs;

static void on_probe_timer(evutil_socket_t fd, short what, void *arg);
static void on_check_read(struct bufferevent *bev, void *arg);
static void on_check_event(struct bufferevent *bev, short what, void *arg);
static void on_drain_read(struct bufferevent *bev, void *arg);
static void on_drain_event(struct bufferevent *bev, short what, void *arg);

/* ---- pure logic ------------------------------------------------------- */

enum health_transition health_hyst_step(struct health_hyst *h, bool ok,
                                        unsigned rise, unsigned fall)
{
    if (rise == 0)
        rise = 1;
    if (fall == 0)
        fall = 1;
    if (ok) {
        h->failures = 0;
        if (h->successes < HYST_SATURATE)
            h->successes++;
    } else {
        h->successes = 0;
        if (h->failures < HYST_SATURATE)
            h->failures++;
    }
    bool was = h->healthy;
    if (!h->confirmed) {
        h->confirmed = true;
        h->healthy = ok;
    } else if (was && h->failures >= fall) {
        h->healthy = false;
    } else if (!was && h->successes >= rise) {
        h->healthy = true;
    }
    if (h->healthy == was)
        return HEALTH_T_NONE;
    return h->healthy ? HEALTH_T_UP : HEALTH_T_DOWN;
}

int health_parse_status_line(const char *p, size_t len)
{
    static const char prefix[] = "HTTP/1.";
    size_t np = sizeof(prefix) - 1;
    /* Reject garbage as soon as it shows, without waiting for a line end. */
    if (memcmp(p, prefix, len < np ? len : np) != 0)
        return -1;
    const char *nl = memchr(p, '\n', len);
    if (!nl)
        return 0;
    size_t n = (size_t)(nl - p);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    /* status-line = HTTP-version SP status-code SP [ reason-phrase ]; the
     * second SP is tolerated missing when the reason is empty. */
    if (n < 12 || !isdigit((unsigned char)p[7]) || p[8] != ' ')
        return -1;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || (n > 12 && p[12] != ' '))
        return -1;
    return status;
}

bool health_status_is_ok(int status)
{
    return status >= 200 && status <= 399;
}

/* ---- helpers ----------------------------------------------------------- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void close_drain(struct probe *p)
{
    if (p->drain) {
        bufferevent_free(p->drain);
        p->drain = NULL;
    }
}

static void probe_set_target(struct probe *p)
{
    p->sa = p->ep->sa;
    p->sa_len = p->ep->sa_len;
    if (p->port) {
        if (p->sa.ss_family == AF_INET)
            ((struct sockaddr_in *)&p->sa)->sin_port = htons(p->port);
        else if (p->sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&p->sa)->sin6_port = htons(p->port);
    }
    util_format_addr((const struct sockaddr *)&p->sa, p->target, sizeof(p->target));
}

/* Take over a version's `health:` settings (they may change on reload). */
static void probe_configure(struct probe *p, const struct config_health *hc)
{
    const char *path = hc->path ? hc->path : "/ready";
    if (!p->path || strcmp(p->path, path) != 0) {
        free(p->path);
        p->path = xstrdup(path);
    }
    bool retarget = p->port != hc->port || !p->target[0];
    p->port = hc->port;
    if (retarget)
        probe_set_target(p);
    p->interval_ms = hc->interval_ms ? hc->interval_ms : 2000;
    p->timeout_ms = hc->timeout_ms ? hc->timeout_ms : 1000;
    p->rise = hc->rise ? hc->rise : 2;
    p->fall = hc->fall ? hc->fall : 2;
}

static struct probe *probe_new(struct endpoint *ep, const struct config_health *hc,
                               bool initially_healthy)
{
    struct probe *p = xcalloc(1, sizeof(*p));
    p->magic = PROBE_MAGIC;
    endpoint_ref(ep);
    p->ep = ep;
    probe_configure(p, hc);
    p->hyst.healthy = initially_healthy;
    atomic_store_explicit(&ep->check_successes, 0, memory_order_relaxed);
    atomic_store_explicit(&ep->check_failures, 0, memory_order_relaxed);
    atomic_store_explicit(&ep->healthy, initially_healthy, memory_order_relaxed);
    p->timer = evtimer_new(hs.base, on_probe_timer, p);
    CHECK(p->timer != NULL);
    struct timeval now = {0, 0};
    evtimer_add(p->timer, &now);
    log_debug("health: checking %s/%s with GET %s on %s every %ums (starts %s)",
              ep->version, ep->address, p->path, p->target, p->interval_ms,
              initially_healthy ? "healthy" : "unhealthy until it passes");
    return p;
}

/* Free a probe. still_served: the endpoint stays in the running config
 * but nothing checks it any more, so it counts as healthy again. */
static void probe_free(struct probe *p, bool still_served)
{
    CHECK(p->magic == PROBE_MAGIC);
    if (p->bev)
        bufferevent_free(p->bev);
    close_drain(p);
    event_free(p->timer);
    struct endpoint *ep = p->ep;
    if (still_served) {
        if (!atomic_exchange(&ep->healthy, true))
            log_info("endpoint %s/%s: health checks off, counts as healthy",
                     ep->version, ep->address);
        atomic_store_explicit(&ep->check_successes, 0, memory_order_relaxed);
        atomic_store_explicit(&ep->check_failures, 0, memory_order_relaxed);
    }
    endpoint_unref(ep);
    free(p->path);
    p->magic = 0;
    free(p);
}

/* ---- one check ----------------------------------------------------------- */

/* Apply a check's result (status > 0: an answer; else failed because of
 * `why`) and schedule the next check. */
static void check_done(struct probe *p, int status, const char *why)
{
    if (p->bev) {
        if (status > 0) {
            /* Read the rest of the answer to its end before closing. */
            close_drain(p);
            p->drain = p->bev;
            p->drained = 0;
            bufferevent_setcb(p->drain, on_drain_read, NULL, on_drain_event, p);
            struct timeval tv = ms_tv(p->timeout_ms);
            bufferevent_set_timeouts(p->drain, &tv, NULL);
            bufferevent_disable(p->drain, EV_WRITE);
            on_drain_read(p->drain, p);
        } else {
            bufferevent_free(p->bev);
        }
        p->bev = NULL;
    }
    struct endpoint *ep = p->ep;
    bool ok = health_status_is_ok(status);
    atomic_store_explicit(&ep->last_check_ms, wall_ms(), memory_order_relaxed);
    atomic_store_explicit(&ep->last_check_status, status > 0 ? status : -1,
                          memory_order_relaxed);
    enum health_transition tr = health_hyst_step(&p->hyst, ok, p->rise, p->fall);
    atomic_store_explicit(&ep->check_successes, p->hyst.successes, memory_order_relaxed);
    atomic_store_explicit(&ep->check_failures, p->hyst.failures, memory_order_relaxed);
    atomic_store_explicit(&ep->healthy, p->hyst.healthy, memory_order_relaxed);

    char result[160];
    if (status > 0)
        snprintf(result, sizeof(result), "GET %s on %s answered %d", p->path,
                 p->target, status);
    else
        snprintf(result, sizeof(result), "GET %s on %s failed: %s", p->path,
                 p->target, why ? why : "error");
    if (tr == HEALTH_T_DOWN)
        log_warn("endpoint %s/%s is unhealthy: %s (%u failed check%s in a row)",
                 ep->version, ep->address, result, p->hyst.failures,
                 p->hyst.failures == 1 ? "" : "s");
    else if (tr == HEALTH_T_UP)
        log_info("endpoint %s/%s is healthy: %s (%u passed check%s in a row)",
                 ep->version, ep->address, result, p->hyst.successes,
                 p->hyst.successes == 1 ? "" : "s");
    else
        log_debug("endpoint %s/%s check: %s", ep->version, ep->address, result);

    uint64_t now = util_now_ms();
    if (ok && atomic_load_explicit(&ep->ejected_until_ms, memory_order_relaxed) > now) {
        atomic_store_explicit(&ep->ejected_until_ms, 0, memory_order_relaxed);
        log_info("endpoint %s/%s: ejection lifted by a passing health check",
                 ep->version, ep->address);
    }

    uint64_t elapsed = now - p->started_ms;
    struct timeval tv = ms_tv(elapsed < p->interval_ms ? p->interval_ms - elapsed : 0);
    evtimer_add(p->timer, &tv);
}

static void check_start(struct probe *p)
{
    p->started_ms = util_now_ms();
    p->connected = false;
    close_drain(p);
    int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        check_done(p, -1, strerror(errno));
        return;
    }
    p->bev = bufferevent_socket_new(hs.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!p->bev) {
        close(fd);
        check_done(p, -1, "cannot create a connection");
        return;
    }
    bufferevent_setcb(p->bev, on_check_read, NULL, on_check_event, p);
    evbuffer_add_printf(bufferevent_get_output(p->bev),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weir-health/%s\r\n"
                        "Accept: */*\r\nConnection: close\r\n\r\n",
                        p->path, p->target, WEIR_VERSION);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    struct timeval tv = ms_tv(p->timeout_ms);
    evtimer_add(p->timer, &tv);
    /* Connect results (even an immediate refusal) arrive as events. */
    if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&p->sa, (int)p->sa_len) < 0)
        check_done(p, -1, strerror(errno));
}

static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct probe *p = arg;
    CHECK(p->magic == PROBE_MAGIC);
    if (p->bev) {
        char why[64];
        snprintf(why, sizeof(why), "no answer within %ums%s", p->timeout_ms,
                 p->connected ? "" : " (connect)");
        check_done(p, -1, why);
        return;
    }
    check_start(p);
}

static void on_check_read(struct bufferevent *bev, void *arg)
{
    struct probe *p = arg;
    CHECK(p->magic == PROBE_MAGIC && p->bev == bev);
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    size_t n = len < STATUS_LINE_MAX ? len : STATUS_LINE_MAX;
    if (n == 0)
        return;
    const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    int st = health_parse_status_line(data, n);
    if (st == 0 && n < STATUS_LINE_MAX)
        return; /* the line is not complete yet */
    if (st <= 0) {
        check_done(p, -1, "not an HTTP/1.x status line");
        return;
    }
    check_done(p, st, NULL);
}

static void on_check_event(struct bufferevent *bev, short what, void *arg)
{
    struct probe *p = arg;
    CHECK(p->magic == PROBE_MAGIC && p->bev == bev);
    if (what & BEV_EVENT_CONNECTED) {
        p->connected = true;
        return;
    }
    char why[128];
    if (what & BEV_EVENT_EOF) {
        snprintf(why, sizeof(why), "closed before a status line");
    } else {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof(why), "%s%s", p->connected ? "" : "connect: ",
                 e ? evutil_socket_error_to_string(e) : "error");
    }
    check_done(p, -1, why);
}

static void on_drain_read(struct bufferevent *bev, void *arg)
{
    struct probe *p = arg;
    CHECK(p->magic == PROBE_MAGIC && p->drain == bev);
    struct evbuffer *in = bufferevent_get_input(bev);
    p->drained += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (p->drained > DRAIN_MAX)
        close_drain(p);
}

static void on_drain_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    struct probe *p = arg;
    CHECK(p->magic == PROBE_MAGIC && p->drain == bev);
    close_drain(p);
}

/* ---- following the snapshot ------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_probe(const void *a, const void *b)
{
    uint32_t x = (*(struct probe *const *)a)->ep->id;
    uint32_t y = (*(struct probe *const *)b)->ep->id;
    return x < y ? -1 : x > y;
}

/* Sorted ids of every endpoint s names (caller frees). */
static uint32_t *snapshot_ids(const struct snapshot *s, size_t *n)
{
    size_t total = 0;
    for (size_t v = 0; s && v < s->n_versions; v++)
        total += s->versions[v].n_eps;
    uint32_t *ids = xcalloc(total ? total : 1, sizeof(*ids));
    *n = 0;
    for (size_t v = 0; s && v < s->n_versions; v++)
        for (size_t i = 0; i < s->versions[v].n_eps; i++)
            ids[(*n)++] = s->versions[v].eps[i].ep->id;
    qsort(ids, *n, sizeof(*ids), cmp_id);
    return ids;
}

static bool has_id(const uint32_t *ids, size_t n, uint32_t id)
{
    return bsearch(&id, ids, n, sizeof(*ids), cmp_id) != NULL;
}

/* Make the probes match the published snapshot. */
static void sync_probes(void)
{
    struct snapshot *s = snapshot_acquire();
    if (!s)
        return;
    hs.synced_gen = s->generation;

    /* Probes sorted by endpoint id, for lookups below. */
    struct probe **by_id = xcalloc(hs.n_probes ? hs.n_probes : 1, sizeof(*by_id));
    size_t np = 0;
    for (struct probe *p = hs.probes; p; p = p->next) {
        p->seen = false;
        by_id[np++] = p;
    }
    qsort(by_id, np, sizeof(*by_id), cmp_probe);
    size_t n_known = 0, n_now = 0;
    uint32_t *known = snapshot_ids(hs.known, &n_known);
    uint32_t *now = snapshot_ids(s, &n_now);

    for (size_t v = 0; v < s->n_versions; v++) {
        const struct config_health *hc = &s->cfg->versions[v].health;
        if (!hc->enabled)
            continue;
        const struct snap_version *sv = &s->versions[v];
        for (size_t i = 0; i < sv->n_eps; i++) {
            struct endpoint *ep = sv->eps[i].ep;
            struct probe key_probe = {.ep = ep}, *key = &key_probe;
            struct probe **found = bsearch(&key, by_id, np, sizeof(*by_id), cmp_probe);
            if (found) {
                probe_configure(*found, hc);
                (*found)->seen = true;
                continue;
            }
            bool existed = !hs.known || has_id(known, n_known, ep->id);
            struct probe *p = probe_new(ep, hc, existed);
            p->seen = true;
            p->next = hs.probes;
            hs.probes = p;
            hs.n_probes++;
        }
    }
    for (struct probe **pp = &hs.probes; *pp;) {
        struct probe *p = *pp;
        if (p->seen) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        hs.n_probes--;
        probe_free(p, has_id(now, n_now, p->ep->id));
    }
    free(by_id);
    free(known);
    free(now);
    snapshot_unref(hs.known);
    hs.known = s;
}

static void on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (snapshot_generation() != hs.synced_gen)
        sync_probes();
}

void health_start(struct event_base *base)
{
    CHECK(hs.base == NULL);
    hs.base = base;
    hs.sync_timer = event_new(base, -1, EV_PERSIST, on_sync_timer, NULL);
    CHECK(hs.sync_timer != NULL);
    struct timeval tv = ms_tv(SYNC_INTERVAL_MS);
    event_add(hs.sync_timer, &tv);
    sync_probes();
}

void health_snapshot_changed(void)
{
    if (hs.sync_timer)
        event_active(hs.sync_timer, EV_TIMEOUT, 0);
}

void health_stop(void)
{
    if (!hs.base)
        return;
    while (hs.probes) {
        struct probe *p = hs.probes;
        hs.probes = p->next;
        probe_free(p, false);
    }
    event_free(hs.sync_timer);
    snapshot_unref(hs.known);
    memset(&hs, 0, sizeof(hs));
}
