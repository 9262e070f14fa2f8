/*
 * server.c — see server.h.
 *
 * Startup: config → first snapshot → listening sockets (one per worker,
 * SO_REUSEPORT; port 0 is resolved by the first and reused by the rest) →
 * workers → control socket, admin, health, discovery, watch.
 *
 * Wiring of the main-thread modules, which do not know each other: the
 * running config (runtime.c) publishes snapshots; health checks follow the
 * published snapshot; discovery is a producer whose changes go to
 * runtime_set_discovered() (a new snapshot) and then nudge health so new
 * endpoints are checked at once; a reload reconfigures discovery and the
 * access log. Stop: SIGTERM/SIGINT ask
 * every worker to drain; a short poll timer ends the main loop when all
 * workers have finished (the control socket closes first, the admin
 * listener keeps answering /healthz with 503 meanwhile).
 */
#include "server.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "access.h"
#include "admin.h"
#include "config.h"
#include "config_check.h"
#include "control.h"
#include "discovery.h"
#include "fleet.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "release.h"
#include "runtime.h"
#include "snapshot.h"
#include "tls_ctx.h"
#include "tls_store.h"
#include "watch.h"
#include "worker.h"

struct server {
    struct event_base *base;
    struct worker *workers[WORKERS_MAX];
    unsigned n_workers;
    struct event *sig_hup, *sig_term, *sig_int, *sig_usr1;
    struct event *stop_poll;
    struct event *guard_tick;    /* owned: the release guard's 100 ms tick */
    struct discovery *discovery; /* owned */
    bool stopping;
};

static struct server srv;

/* After every successful reload, whatever triggered it (SIGHUP, `reload`,
 * the file watch): apply what lives outside the snapshot. */
static void on_reloaded(const struct config *cfg)
{
    log_configure((enum log_level)cfg->log_level, cfg->log_format == ERRLOG_F_JSON);
    if (access_configure(cfg) < 0)
        log_error("access log settings not applied");
    if (srv.discovery)
        discovery_configure(srv.discovery, cfg);
    release_on_reload(cfg);
    fleet_configure(cfg);
}

/* Discovery's sets changed: they are an input of the snapshot. */
static void on_discovered(const struct discovery_set *sets, size_t n_sets,
                          const char *why, void *arg)
{
    (void)arg;
    runtime_set_discovered(sets, n_sets, why);
    health_snapshot_changed();
}

/* SIGHUP: the same reload as `weirctl reload`; runtime_reload logs the
 * outcome (the changes, or each FILE:LINE:COL error). */
static void reload_config(void)
{
    struct config_errors errs;
    config_errors_init(&errs, runtime_config()->path);
    char msg[512] = "";
    if (runtime_reload(&errs, msg, sizeof(msg)) < 0)
        log_error("reload refused, keeping the running config");
    config_errors_dispose(&errs);
}

/* The guard judges ten times a second: a failing canary is caught within
 * a tick of the evidence being there, and a tick costs one sum per judged
 * version (no work on the data path). */
static void on_guard_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    release_tick(util_now_ms());
    mirror_tick(util_now_ms());
}

static void on_stop_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    for (unsigned i = 0; i < srv.n_workers; i++)
        if (!atomic_load(&srv.workers[i]->finished))
            return;
    event_base_loopbreak(srv.base);
}

static void begin_stop(void)
{
    if (srv.stopping)
        return;
    srv.stopping = true;
    log_info("stopping: draining in-flight requests");
    admin_set_draining();
    control_stop();
    watch_stop();
    for (unsigned i = 0; i < srv.n_workers; i++)
        worker_request_stop(srv.workers[i]);
    srv.stop_poll = event_new(srv.base, -1, EV_PERSIST, on_stop_poll, NULL);
    struct timeval tv = {0, 20000};
    event_add(srv.stop_poll, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    switch (sig) {
    case SIGHUP:
        log_info("SIGHUP: reloading the config file");
        reload_config();
        break;
    case SIGUSR1:
        access_reopen();
        break;
    default:
        begin_stop();
        break;
    }
}

int server_check_config(const char *config_path)
{
    struct config_errors errs;
    config_errors_init(&errs, config_path);
    struct config *cfg = config_load(config_path, &errs);
    int rc = 0;
    /* What start-up opens, checked too: a config weir -t passes starts. */
    if (cfg && config_check_environment(cfg, &errs) < 0) {
        config_free(cfg);
        cfg = NULL;
    }
    if (!cfg) {
        char buf[16384];
        config_errors_format(&errs, buf, sizeof(buf));
        fputs(buf, stderr);
        rc = 1;
    } else {
        printf("%s: configuration is valid\n", config_path);
    }
    config_free(cfg);
    config_errors_dispose(&errs);
    return rc;
}

/* net.core.somaxconn, the kernel's silent cap on any listen() backlog;
 * 0 when it cannot be read. */
static unsigned read_somaxconn(void)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
    unsigned v = 0;
    if (f) {
        if (fscanf(f, "%u", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* Open one listening socket per worker on each listener's address
 * (fds[l * n + worker]), each with limits.listen_backlog, which the
 * kernel caps at somaxconn: the log says what applies. */
static int open_listener(const struct config *cfg, const struct config_listener *cl,
                         int *fds, unsigned n);

static int open_listeners(const struct config *cfg, int *fds, unsigned n)
{
    for (size_t l = 0; l < cfg->n_listeners; l++)
        if (open_listener(cfg, &cfg->listeners[l], fds + l * n, n) < 0) {
            for (size_t i = 0; i < l * n; i++)
                close(fds[i]);
            return -1;
        }
    return 0;
}

static int open_listener(const struct config *cfg, const struct config_listener *cl,
                         int *fds, unsigned n)
{
    struct sockaddr_storage sa = cl->sa;
    socklen_t len = cl->sa_len;
    unsigned somaxconn = read_somaxconn();
    unsigned backlog = cfg->listen_backlog;
    if (somaxconn && somaxconn < backlog) {
        log_warn("limits.listen_backlog %u is capped by net.core.somaxconn to %u "
                 "(raise it with sysctl to honour the setting)",
                 backlog, somaxconn);
        backlog = somaxconn;
    }
    for (unsigned i = 0; i < n; i++) {
        fds[i] = worker_listen_socket((struct sockaddr *)&sa, len, (int)cfg->listen_backlog);
        if (fds[i] < 0) {
            log_error("cannot listen on %s: %s", cl->address, strerror(errno));
            while (i--)
                close(fds[i]);
            return -1;
        }
        if (i == 0) /* port 0: the rest bind the port the kernel chose */
            getsockname(fds[0], (struct sockaddr *)&sa, &len);
    }
    char addr[80];
    util_format_addr((struct sockaddr *)&sa, addr, sizeof(addr));
    log_info("listening on %s%s with %u workers, listen backlog %u each", addr,
             cl->tls.enabled ? " (TLS)" : "", n, backlog);
    return 0;
}

/* CPUs of the cgroup v2 quota (cpu.max "QUOTA PERIOD", rounded up; a
 * Kubernetes CPU limit), or 0 when there is none or it cannot be read. */
static unsigned cgroup_cpus(void)
{
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (!f)
        return 0;
    char quota[32] = "";
    unsigned long period = 0;
    int got = fscanf(f, "%31s %lu", quota, &period);
    fclose(f);
    if (got != 2 || period == 0 || strcmp(quota, "max") == 0)
        return 0;
    char *end;
    unsigned long q = strtoul(quota, &end, 10);
    if (*end || q == 0)
        return 0;
    unsigned long n = (q + period - 1) / period;
    return n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
}

/*
 * `workers: auto` (or 0): one worker per CPU weir may run on — the CPUs
 * of its affinity mask (taskset, cpuset, a Kubernetes static CPU policy),
 * capped by the cgroup's CPU quota (a pod's CPU limit of 2 on a 64-core
 * node gives 2, not 64). On a box whose cores weir shares with the load
 * and the upstreams, fewer workers than that may win p99 (bench/README.md
 * measures it); auto does not guess at neighbours, an explicit number does.
 */
static unsigned worker_count(const struct config *cfg)
{
    unsigned n = cfg->workers;
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 1;
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0 &&
            (unsigned)CPU_COUNT(&set) < n)
            n = (unsigned)CPU_COUNT(&set);
        unsigned q = cgroup_cpus();
        if (q && q < n)
            n = q;
    }
    return n > WORKERS_MAX ? WORKERS_MAX : n;
}

int server_run(const char *config_path)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("WEIR_DEBUG"))
        log_set_level(LOG_L_DEBUG);
    struct config_errors errs;
    config_errors_init(&errs, config_path);
    /* The log's format and level before anything is logged, so that with
     * `log: {format: json}` every line is JSON, the first ones included. A
     * broken file is reported by runtime_start below. */
    struct config *early = config_load(config_path, &errs);
    if (early)
        log_configure((enum log_level)early->log_level, early->log_format == ERRLOG_F_JSON);
    config_free(early);
    config_errors_dispose(&errs);
    config_errors_init(&errs, config_path);
    if (runtime_start(config_path, &errs) < 0) {
        char buf[16384];
        config_errors_format(&errs, buf, sizeof(buf));
        fputs(buf, stderr);
        config_errors_dispose(&errs);
        return 1;
    }
    config_errors_dispose(&errs);
    const struct config *cfg = runtime_config();
    log_configure((enum log_level)cfg->log_level, cfg->log_format == ERRLOG_F_JSON);
    int rc = 1;
    srv.base = event_base_new();
    if (!srv.base || access_configure(cfg) < 0)
        goto out;
    runtime_on_reload(on_reloaded);
    /* The control socket comes up before the port, so a client that can
     * connect to weir can also steer it. */
    if (control_start(srv.base, cfg) < 0 || admin_start(srv.base, cfg) < 0)
        goto out_workers;
    /* Before the port opens: a fleet that cannot start (its key) is a
     * refusal to start, not a replica serving on its own. */
    if (fleet_start(srv.base, cfg) < 0)
        goto out_workers;
    srv.n_workers = worker_count(cfg);
    metrics_outcomes_enable(srv.n_workers);
    static int fds[WORKER_MAX_LISTENERS * WORKERS_MAX];
    unsigned n_ls = (unsigned)cfg->n_listeners;
    CHECK(n_ls >= 1 && n_ls <= WORKER_MAX_LISTENERS);
    if (open_listeners(cfg, fds, srv.n_workers) < 0)
        goto out_workers;
    for (unsigned i = 0; i < srv.n_workers; i++) {
        int mine[WORKER_MAX_LISTENERS];
        for (unsigned l = 0; l < n_ls; l++)
            mine[l] = fds[l * srv.n_workers + i];
        srv.workers[i] = worker_new((int)i, mine, n_ls);
        if (!srv.workers[i]) {
            for (unsigned j = i + 1; j < srv.n_workers; j++)
                for (unsigned l = 0; l < n_ls; l++)
                    close(fds[l * srv.n_workers + j]);
            srv.n_workers = i;
            goto out_workers;
        }
    }
    /* The workers serve HTTP/2 (h2_session.c, started by client.c on the
     * connection preface), so TLS listeners offer ALPN h2 before http/1.1. */
    tls_ctx_enable_h2(true);
    /* watch.c honours `watch:` at every event, so it always runs. */
    tls_store_start(srv.base, runtime_config, runtime_republish);
    if (watch_start(srv.base, config_path) < 0)
        log_warn("config file watch unavailable; use SIGHUP or `weirctl reload`");
    health_start(srv.base);
    srv.discovery = discovery_new(srv.base, on_discovered, NULL);
    discovery_configure(srv.discovery, cfg);
    for (unsigned i = 0; i < srv.n_workers; i++) {
        if (worker_start(srv.workers[i]) < 0) {
            log_error("cannot start worker thread %u", i);
            goto out_workers;
        }
    }
    srv.sig_hup = evsignal_new(srv.base, SIGHUP, on_signal, NULL);
    srv.sig_term = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
    srv.sig_int = evsignal_new(srv.base, SIGINT, on_signal, NULL);
    srv.sig_usr1 = evsignal_new(srv.base, SIGUSR1, on_signal, NULL);
    event_add(srv.sig_hup, NULL);
    event_add(srv.sig_term, NULL);
    event_add(srv.sig_int, NULL);
    event_add(srv.sig_usr1, NULL);
    release_start();
    srv.guard_tick = event_new(srv.base, -1, EV_PERSIST, on_guard_tick, NULL);
    if (srv.guard_tick) {
        struct timeval tick = {0, 100 * 1000};
        event_add(srv.guard_tick, &tick);
    }
    log_info("weir %s started (pid %d)", WEIR_VERSION, (int)getpid());
    event_base_dispatch(srv.base);
    rc = 0;
    log_info("stopped");

out_workers:
    if (!srv.stopping)
        for (unsigned i = 0; i < srv.n_workers; i++)
            worker_request_stop(srv.workers[i]);
    for (unsigned i = 0; i < srv.n_workers; i++)
        worker_free(srv.workers[i]);
    fleet_stop();
    health_stop();
    discovery_free(srv.discovery);
    srv.discovery = NULL;
    admin_stop();
    control_stop();
    watch_stop();
    tls_store_stop();
    if (srv.sig_hup) {
        event_free(srv.sig_hup);
        event_free(srv.sig_term);
        event_free(srv.sig_int);
        event_free(srv.sig_usr1);
    }
    if (srv.stop_poll)
        event_free(srv.stop_poll);
    if (srv.guard_tick)
        event_free(srv.guard_tick);
    release_shutdown();
out:
    access_shutdown();
    runtime_stop();
    snapshot_shutdown();
    metrics_shutdown();
    if (srv.base)
        event_base_free(srv.base);
    return rc;
}
