/*
 * fleet.c — see fleet.h. The replicas' gossip on the main thread.
 *
 * Two tables. Targets are where we send: one per configured peer, or per
 * address the peers' DNS name resolves to (a discovery.c of our own, its
 * one set named "fleet"), each with its keep-alive evhttp connection and
 * at most one request in flight (a tick that finds one in flight skips
 * that peer; a change made meanwhile is sent when the answer comes).
 * Replicas are who we heard from, by the replica name in their messages:
 * their replay state (boot, seq, time), when last heard, their rollout and
 * generation, and their latest outcome counts. A replica is tied to a
 * target by address (the message's source IP and the admin port in its
 * replica name), for the `fleet` command. A message carrying our own boot
 * id came from us (a DNS name lists every pod, this one too): its target
 * is marked self and no longer sent to.
 *
 * Clocks: messages carry the wall clock (state_now_ms), compared with ours
 * within FLEET_SKEW_MS; outcome slots are sent with their wall-clock
 * start and mapped back onto our monotonic clock (util_now_ms, the one the
 * outcome windows use) when the guard sums them.
 *
 * A joining replica: its config's `rollout:` waits (release.c's hold hook)
 * until a peer was heard or FLEET_SETTLE_MS passed, so it takes up the
 * fleet's rollout instead of starting its own.
 */
#include "fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>

#include "config.h"
#include "discovery.h"
#include "events.h"
#include "fleet_key.h"
#include "fleet_msg.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "outcome.h"
#include "release.h"
#include "rollout.h"
#include "runtime.h"
#include "snapshot.h"
#include "state.h"

#define TARGET_MAGIC 0x464c5447u /* "FLTG" */
#define FLEET_TARGETS_MAX 64
#define FLEET_REPLICAS_MAX 64
#define FLEET_LOST_MS 3000   /* not heard for this long: lost */
#define FLEET_SETTLE_MS 1500 /* a joining replica's wait for the fleet */
#define FLEET_SEND_TIMEOUT_S 2
#define FLEET_RESOLVE_MS 2000      /* the peers' DNS name, re-resolved */
#define FLEET_VERSION_NAME "fleet" /* discovery's set name for the peers */

struct target {
    uint32_t magic;
    char addr[128];                 /* "host:port" as configured or resolved */
    struct evhttp_connection *conn; /* owned */
    bool listed;                    /* in the current peer set; else freed when idle */
    bool in_flight;                 /* a request is out */
    bool resend;                    /* state changed while in flight: send on the answer */
    bool self;                      /* it answered with our own boot: never sent to again */
    uint64_t sent, failed;
    int64_t last_ok_ms;  /* wall clock of the last 2xx answer, 0 never */
    char last_error[96]; /* "" after a success */
};

struct replica {
    bool used;
    char name[FLEET_REPLICA_MAX];
    char addr[128]; /* source IP : admin port of its last message */
    struct fleet_msg_replay replay;
    int64_t last_heard_ms; /* wall clock */
    bool lost;             /* not heard for FLEET_LOST_MS (announced) */
    uint64_t generation;
    struct rollout rollout;
    struct fleet_msg counts; /* owned: its latest message (counts used) */
};

enum reject {
    REJ_TOO_LARGE = 0,
    REJ_BAD_MAC,
    REJ_MALFORMED,
    REJ_STALE,
    REJ_REPLAYED,
    REJ_N,
};

static const char *const reject_names[REJ_N] = {"too_large", "bad_mac", "malformed", "stale",
                                                "replayed"};

static struct {
    bool on;
    struct event_base *base; /* borrowed */
    uint8_t key[FLEET_KEY_MAX_BYTES];
    size_t key_len;
    char replica[FLEET_REPLICA_MAX];
    char boot[FLEET_BOOT_HEX + 1];
    char local_ip[INET6_ADDRSTRLEN]; /* the admin listener's IP; "" for a wildcard */
    uint64_t seq;
    uint32_t interval_ms;
    uint64_t started_ms; /* util_now_ms() at fleet_start */
    bool heard_any;
    bool too_large_logged;                     /* counts did not fit once (said once) */
    struct event *tick;                        /* owned: every interval */
    struct event *kick;                        /* owned: send now (a change) */
    struct evdns_base *dns;                    /* owned: for peers given by host name */
    struct discovery *discovery;               /* owned: when peers is one DNS name */
    struct target *targets[FLEET_TARGETS_MAX]; /* owned */
    size_t n_targets;
    struct replica replicas[FLEET_REPLICAS_MAX];
    uint64_t rejected[REJ_N];
    uint64_t sent, send_errors, received;
    uint64_t last_reject_log_ms[REJ_N];
    struct rollout refused; /* a join that could not be applied */
    bool has_refused;
} fl;

/* ---- helpers ---------------------------------------------------------------- */

static void fleet_event(const char *what, const char *replica, const char *detail)
{
    char members[1024];
    events_publish("fleet", snapshot_generation(),
                   events_members(members, sizeof(members), "what", what, "replica", replica,
                                  "detail", detail, (const char *)NULL));
}

static bool same_rollout(const struct rollout *a, const struct rollout *b)
{
    return rollout_id_cmp(a, b) == 0 && a->state == b->state && a->step == b->step &&
           a->pause_seq == b->pause_seq && a->step_started_ms == b->step_started_ms &&
           strcmp(a->reason, b->reason) == 0;
}

/* Split "host:port" / "[v6]:port" into host (no brackets) and port. */
static int split_hostport(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return -1;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    unsigned long p = strtoul(colon + 1, NULL, 10);
    if (p == 0 || p > 65535)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

/* ---- the key -------------------------------------------------------------- */

static int load_key(const char *path)
{
    char why[512], warn[1024];
    ssize_t n = fleet_key_read(path, fl.key, sizeof(fl.key), why, sizeof(why), warn, sizeof(warn));
    if (warn[0])
        log_warn("fleet: %s", warn);
    if (n < 0) {
        log_error("fleet: %s", why);
        return -1;
    }
    fl.key_len = (size_t)n;
    return 0;
}

/* ---- targets ------------------------------------------------------------- */

static void target_free(struct target *t)
{
    CHECK(t->magic == TARGET_MAGIC);
    if (t->conn)
        evhttp_connection_free(t->conn);
    t->magic = 0;
    free(t);
}

static struct target *target_find(const char *addr)
{
    for (size_t i = 0; i < fl.n_targets; i++)
        if (strcmp(fl.targets[i]->addr, addr) == 0)
            return fl.targets[i];
    return NULL;
}

/* Drop targets no longer listed and not waiting for an answer. */
static void targets_reap(void)
{
    size_t o = 0;
    for (size_t i = 0; i < fl.n_targets; i++) {
        struct target *t = fl.targets[i];
        if (!t->listed && !t->in_flight)
            target_free(t);
        else
            fl.targets[o++] = t;
    }
    fl.n_targets = o;
}

/* The peer set is now addrs (n): keep the known, add the new. */
static void targets_set(char *const *addrs, size_t n)
{
    for (size_t i = 0; i < fl.n_targets; i++)
        fl.targets[i]->listed = false;
    for (size_t i = 0; i < n; i++) {
        struct target *t = target_find(addrs[i]);
        if (t) {
            t->listed = true;
            continue;
        }
        if (fl.n_targets == FLEET_TARGETS_MAX) {
            log_warn("fleet: more than %d peers; %s is not told", FLEET_TARGETS_MAX, addrs[i]);
            continue;
        }
        t = xcalloc(1, sizeof(*t));
        t->magic = TARGET_MAGIC;
        snprintf(t->addr, sizeof(t->addr), "%s", addrs[i]);
        t->listed = true;
        fl.targets[fl.n_targets++] = t;
    }
    targets_reap();
}

static void on_discovered(const struct discovery_set *sets, size_t n_sets, const char *why,
                          void *arg)
{
    (void)arg;
    const struct discovery_set *s = discovery_sets_find(sets, n_sets, FLEET_VERSION_NAME);
    size_t n = s ? s->n_eps : 0;
    char **addrs = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        addrs[i] = s->eps[i].address;
    targets_set(addrs, n);
    free(addrs);
    log_info("fleet: peers now %zu address%s (%s)", n, n == 1 ? "" : "es", why);
}

/* Resolve the peers' DNS name with discovery.c: a config of one version. */
static void discovery_follow(const struct config *cfg)
{
    struct config_version v;
    memset(&v, 0, sizeof(v));
    v.name = (char *)FLEET_VERSION_NAME;
    v.discover = cfg->fleet.peers_dns && cfg->fleet.n_peers ? cfg->fleet.peers[0] : NULL;
    v.discover_interval_ms = FLEET_RESOLVE_MS;
    struct config c;
    memset(&c, 0, sizeof(c));
    c.versions = &v;
    c.n_versions = 1;
    c.resolvers = cfg->resolvers;
    c.n_resolvers = cfg->n_resolvers;
    if (!fl.discovery)
        fl.discovery = discovery_new(fl.base, on_discovered, NULL);
    discovery_configure(fl.discovery, &c);
}

/* ---- the message we send ------------------------------------------------- */

/* Our own outcome windows of every configured version, slot by slot. */
static void add_counts(struct fleet_msg *m)
{
    const struct config *cfg = runtime_config();
    if (!cfg || !cfg->guard.enabled)
        return; /* nobody judges: nothing to merge */
    uint64_t mono = util_now_ms();
    int64_t offset = state_now_ms() - (int64_t)mono;
    static struct outcome_sum slot_sum; /* ~3 KiB; main thread */
    for (size_t v = 0; v < cfg->n_versions; v++) {
        struct vstats *vs = metrics_vstats(cfg->versions[v].name);
        if (!vs || !vs->outcomes[0])
            continue;
        uint32_t slot_ms = vs->outcomes[0]->slot_ms;
        uint64_t n = (cfg->guard.window_ms + slot_ms - 1) / slot_ms + 2;
        if (n > OUTCOME_SLOTS - 4)
            n = OUTCOME_SLOTS - 4;
        uint64_t cur = mono / slot_ms;
        struct fleet_msg_counts *c = NULL;
        for (uint64_t k = cur + 1 > n ? cur + 1 - n : 0; k <= cur; k++) {
            uint64_t since = k * slot_ms, until = since + slot_ms - 1;
            if (until > mono)
                until = mono;
            outcome_sum_clear(&slot_sum);
            for (size_t w = 0; w < WORKERS_MAX; w++)
                if (vs->outcomes[w])
                    outcome_window_add(vs->outcomes[w], since, until, &slot_sum);
            if (!slot_sum.requests)
                continue;
            if (!c && !(c = fleet_msg_add_counts(m, cfg->versions[v].name, slot_ms)))
                return;
            if (fleet_msg_counts_add_slot(c, (int64_t)since + offset, &slot_sum) < 0)
                break;
        }
    }
}

/* The next message: encoded into body, its MAC into mac. */
static void build(struct json_buf *body, char mac[FLEET_MAC_HEX + 1])
{
    static struct fleet_msg m; /* its counts are freed each time */
    fleet_msg_init(&m);
    snprintf(m.replica, sizeof(m.replica), "%s", fl.replica);
    memcpy(m.boot, fl.boot, sizeof(m.boot));
    m.seq = ++fl.seq;
    m.time_ms = state_now_ms();
    m.generation = snapshot_generation();
    m.rollout = *release_rollout();
    add_counts(&m);
    fleet_msg_encode(&m, body);
    if (body->len > FLEET_MSG_MAX_BYTES) {
        /* Peers would refuse it: the rollout state matters most. */
        if (!fl.too_large_logged)
            log_warn("fleet: the outcome counts (%zu bytes) do not fit in a message; sent "
                     "without them",
                     body->len);
        fl.too_large_logged = true;
        fleet_msg_dispose(&m);
        fleet_msg_init(&m);
        snprintf(m.replica, sizeof(m.replica), "%s", fl.replica);
        memcpy(m.boot, fl.boot, sizeof(m.boot));
        m.seq = fl.seq;
        m.time_ms = state_now_ms();
        m.generation = snapshot_generation();
        m.rollout = *release_rollout();
        json_buf_reset(body);
        fleet_msg_encode(&m, body);
    }
    fleet_msg_dispose(&m);
    fleet_msg_mac_hex(fl.key, fl.key_len, body->p, body->len, mac);
}

static void send_to(struct target *t, const struct json_buf *body, const char *mac);

static void on_sent(struct evhttp_request *req, void *arg)
{
    struct target *t = arg;
    CHECK(t->magic == TARGET_MAGIC);
    t->in_flight = false;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 409) {
        /* "this is me": the address is this replica's own (fleet_receive). */
        if (!t->self)
            log_info("fleet: %s is this replica; not telling it", t->addr);
        t->self = true;
    } else if (code >= 200 && code < 300) {
        t->last_ok_ms = state_now_ms();
        t->last_error[0] = '\0';
    } else {
        t->failed++;
        fl.send_errors++;
        char why[96];
        if (code)
            snprintf(why, sizeof(why), "answered %d", code);
        else
            snprintf(why, sizeof(why), "no answer (connection refused, reset or timed out)");
        if (strcmp(why, t->last_error) != 0)
            log_warn("fleet: peer %s: %s", t->addr, why);
        snprintf(t->last_error, sizeof(t->last_error), "%s", why);
    }
    /* An unlisted target is freed by the next tick, not here: its
     * connection is still working on this answer. */
    if (!fl.on || !t->listed)
        return;
    if (t->resend && !t->self) {
        t->resend = false;
        struct json_buf body;
        json_buf_init(&body);
        char mac[FLEET_MAC_HEX + 1];
        build(&body, mac);
        send_to(t, &body, mac);
        json_buf_dispose(&body);
    }
}

static void send_to(struct target *t, const struct json_buf *body, const char *mac)
{
    if (!t->conn) {
        char host[128];
        uint16_t port;
        if (split_hostport(t->addr, host, sizeof(host), &port) < 0) {
            snprintf(t->last_error, sizeof(t->last_error), "not host:port");
            return;
        }
        t->conn = evhttp_connection_base_new(fl.base, fl.dns, host, port);
        if (!t->conn) {
            snprintf(t->last_error, sizeof(t->last_error), "cannot make a connection");
            return;
        }
        /* From the admin listener's address when it is a specific one, so
         * that peers see where to find us (and a DNS name lists us). */
        if (fl.local_ip[0])
            evhttp_connection_set_local_address(t->conn, fl.local_ip);
        evhttp_connection_set_timeout(t->conn, FLEET_SEND_TIMEOUT_S);
        evhttp_connection_set_retries(t->conn, 0);
    }
    struct evhttp_request *req = evhttp_request_new(on_sent, t);
    if (!req)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", t->addr);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, FLEET_MAC_HEADER, mac);
    evbuffer_add(evhttp_request_get_output_buffer(req), body->p, body->len);
    t->in_flight = true;
    t->sent++;
    fl.sent++;
    if (evhttp_make_request(t->conn, req, EVHTTP_REQ_POST, "/fleet") < 0) {
        /* req is freed by libevent */
        t->in_flight = false;
        t->failed++;
        fl.send_errors++;
        snprintf(t->last_error, sizeof(t->last_error), "cannot send");
    }
}

/* Tell every peer now (those with a request out: when it is answered). */
static void send_all(void)
{
    struct json_buf body;
    json_buf_init(&body);
    char mac[FLEET_MAC_HEX + 1];
    bool built = false;
    for (size_t i = 0; i < fl.n_targets; i++) {
        struct target *t = fl.targets[i];
        if (t->self || !t->listed)
            continue;
        if (t->in_flight) {
            t->resend = true;
            continue;
        }
        if (!built) {
            build(&body, mac);
            built = true;
        }
        send_to(t, &body, mac);
    }
    json_buf_dispose(&body);
}

/* Replicas not heard for FLEET_LOST_MS are announced lost once. */
static void check_lost(void)
{
    int64_t now = state_now_ms();
    for (size_t i = 0; i < FLEET_REPLICAS_MAX; i++) {
        struct replica *r = &fl.replicas[i];
        if (!r->used || r->lost || now - r->last_heard_ms < FLEET_LOST_MS)
            continue;
        r->lost = true;
        log_warn("fleet: replica %s (%s) not heard for %d ms", r->name, r->addr, FLEET_LOST_MS);
        fleet_event("lost", r->name, r->addr);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    targets_reap();
    check_lost();
    send_all();
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    send_all();
}

/* ---- release.c's hooks ----------------------------------------------------- */

static void on_changed(void *arg)
{
    (void)arg;
    if (fl.kick)
        event_active(fl.kick, EV_TIMEOUT, 0); /* after the change's own work */
}

static bool on_hold_config_rollout(void *arg)
{
    (void)arg;
    return !fl.heard_any && util_now_ms() - fl.started_ms < FLEET_SETTLE_MS;
}

/* Add every replica's latest counts of version whose slot (its middle) is
 * in [since_ms - slot/2, now_ms + slot/2] on our monotonic clock. */
static void on_counts(const char *version, uint64_t since_ms, uint64_t now_ms,
                      struct outcome_sum *sum, void *arg)
{
    (void)arg;
    int64_t offset = state_now_ms() - (int64_t)util_now_ms();
    for (size_t i = 0; i < FLEET_REPLICAS_MAX; i++) {
        const struct replica *r = &fl.replicas[i];
        if (!r->used)
            continue;
        for (size_t c = 0; c < r->counts.n_counts; c++) {
            const struct fleet_msg_counts *fc = &r->counts.counts[c];
            if (strcmp(fc->version, version) != 0)
                continue;
            for (size_t s = 0; s < fc->n_slots; s++) {
                int64_t mid = fc->slots[s].start_ms - offset + fc->slot_ms / 2;
                if (mid + (int64_t)fc->slot_ms / 2 >= (int64_t)since_ms &&
                    mid - (int64_t)fc->slot_ms / 2 <= (int64_t)now_ms)
                    outcome_sum_add(sum, &fc->slots[s].sum);
            }
        }
    }
}

/* ---- receiving ------------------------------------------------------------- */

static int reject(enum reject why_r, int status, const char *detail, const char *src_ip,
                  char *why, size_t whylen)
{
    fl.rejected[why_r]++;
    snprintf(why, whylen, "refused (%s): %s", reject_names[why_r], detail);
    uint64_t now = util_now_ms();
    /* Logged and announced at most once a second per reason: a flood of
     * forgeries must not become a flood of log lines. */
    if (now - fl.last_reject_log_ms[why_r] >= 1000 || !fl.last_reject_log_ms[why_r]) {
        fl.last_reject_log_ms[why_r] = now;
        log_warn("fleet: message from %s refused (%s): %s", src_ip, reject_names[why_r], detail);
        fleet_event("rejected", src_ip, reject_names[why_r]);
    }
    return status;
}

static struct replica *replica_slot(const char *name, bool *fresh)
{
    struct replica *free_r = NULL, *oldest_lost = NULL;
    *fresh = false;
    for (size_t i = 0; i < FLEET_REPLICAS_MAX; i++) {
        struct replica *r = &fl.replicas[i];
        if (r->used && strcmp(r->name, name) == 0)
            return r;
        if (!r->used && !free_r)
            free_r = r;
        /* Only one silent for longer than the clock window may go: any
         * message of its that could be replayed is stale by now. */
        if (r->used && r->lost && state_now_ms() - r->last_heard_ms > FLEET_SKEW_MS &&
            (!oldest_lost || r->last_heard_ms < oldest_lost->last_heard_ms))
            oldest_lost = r;
    }
    struct replica *r = free_r ? free_r : oldest_lost;
    if (!r)
        return NULL;
    fleet_msg_dispose(&r->counts);
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    *fresh = true;
    return r;
}

/* Join a peer's rollout with ours; apply the join when it differs. */
static void take_rollout(const struct rollout *theirs, const char *from)
{
    const struct rollout *ours = release_rollout();
    struct rollout joined;
    rollout_join(ours, theirs, &joined);
    if (same_rollout(&joined, ours))
        return;
    if (fl.has_refused && same_rollout(&joined, &fl.refused))
        return; /* refused already, said so once */
    char err[256];
    if (release_rollout_adopt(&joined, from, err, sizeof(err)) < 0) {
        log_error("fleet: the rollout from %s cannot be applied here: %s", from, err);
        fl.refused = joined;
        fl.has_refused = true;
        return;
    }
    fl.has_refused = false;
    char detail[256];
    snprintf(detail, sizeof(detail), "rollout %s %s step %u", joined.plan.version,
             rollout_state_name(joined.state), joined.step);
    fleet_event("adopted", from, detail);
}

int fleet_receive(const char *body, size_t len, const char *mac, const char *src_ip,
                  char *why, size_t whylen)
{
    if (!fl.on) {
        snprintf(why, whylen, "no fleet is configured here");
        return 404;
    }
    if (len > FLEET_MSG_MAX_BYTES)
        return reject(REJ_TOO_LARGE, 413, "body too large", src_ip, why, whylen);
    if (!fleet_msg_mac_ok(fl.key, fl.key_len, body, len, mac))
        return reject(REJ_BAD_MAC, 403, mac ? "wrong MAC" : "no " FLEET_MAC_HEADER " header",
                      src_ip, why, whylen);
    static struct fleet_msg m;
    char detail[160];
    if (fleet_msg_decode(body, len, &m, detail, sizeof(detail)) < 0)
        return reject(REJ_MALFORMED, 400, detail, src_ip, why, whylen);
    const char *colon = strrchr(m.replica, ':');
    char addr[128];
    snprintf(addr, sizeof(addr), "%s%s%s%s", strchr(src_ip, ':') ? "[" : "", src_ip,
             strchr(src_ip, ':') ? "]" : "", colon ? colon : "");
    if (strcmp(m.boot, fl.boot) == 0) {
        /* Our own message, through a DNS name that lists us too. */
        struct target *t = target_find(addr);
        if (t && !t->self) {
            t->self = true;
            log_info("fleet: %s is this replica; not telling it", t->addr);
        }
        fleet_msg_dispose(&m);
        snprintf(why, whylen, "this is me");
        return 409;
    }
    bool fresh;
    struct replica *r = replica_slot(m.replica, &fresh);
    if (!r) {
        fleet_msg_dispose(&m);
        snprintf(why, whylen, "too many replicas");
        return 503;
    }
    const char *bad = fleet_msg_replay_check(&r->replay, m.boot, m.seq, m.time_ms, state_now_ms());
    if (bad) {
        if (fresh)
            r->used = false;
        snprintf(detail, sizeof(detail), "%s seq %" PRIu64 " boot %s", m.replica, m.seq, m.boot);
        fleet_msg_dispose(&m);
        return reject(strcmp(bad, "stale") == 0 ? REJ_STALE : REJ_REPLAYED, 403, detail, src_ip,
                      why, whylen);
    }
    fl.received++;
    bool was_new = fresh || r->lost;
    r->used = true;
    r->lost = false;
    r->last_heard_ms = state_now_ms();
    snprintf(r->addr, sizeof(r->addr), "%s", addr);
    r->generation = m.generation;
    r->rollout = m.rollout;
    fleet_msg_dispose(&r->counts);
    r->counts = m; /* the latest report replaces the previous one */
    fleet_msg_init(&m);
    if (!fl.heard_any)
        fl.heard_any = true;
    if (was_new) {
        log_info("fleet: replica %s (%s) heard", r->name, r->addr);
        fleet_event("joined", r->name, r->addr);
    }
    take_rollout(&r->rollout, r->name);
    snprintf(why, whylen, "ok");
    return 204;
}

/* ---- lifecycle --------------------------------------------------------------- */

bool fleet_enabled(void)
{
    return fl.on;
}

void fleet_configure(const struct config *cfg)
{
    if (!fl.on)
        return;
    if (!cfg->fleet.n_peers) {
        log_warn("fleet: the reloaded config has no peers; the fleet stays as it was until "
                 "a restart");
        return;
    }
    if (cfg->fleet.peers_dns) {
        discovery_follow(cfg);
    } else {
        if (fl.discovery) {
            discovery_free(fl.discovery);
            fl.discovery = NULL;
        }
        targets_set(cfg->fleet.peers, cfg->fleet.n_peers);
    }
}

int fleet_start(struct event_base *base, const struct config *cfg)
{
    if (!cfg->fleet.n_peers || fl.on)
        return 0;
    memset(&fl, 0, sizeof(fl));
    if (!cfg->admin || !cfg->fleet.key_file) {
        log_error("fleet: peers need an admin listener and a key_file");
        return -1;
    }
    if (load_key(cfg->fleet.key_file) < 0)
        return -1;
    fl.base = base;
    fl.interval_ms = cfg->fleet.interval_ms ? cfg->fleet.interval_ms : 250;
    uint8_t rnd[FLEET_BOOT_HEX / 2];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        log_error("fleet: no random bytes for the boot id: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(fl.boot + 2 * i, 3, "%02x", rnd[i]);
    char host[64] = "weir";
    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "weir");
    host[sizeof(host) - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == ';' || *c == ',' || (unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            *c = '-';
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->admin_sa;
    if (cfg->admin_sa.ss_family == AF_INET && sin->sin_addr.s_addr != htonl(INADDR_ANY))
        inet_ntop(AF_INET, &sin->sin_addr, fl.local_ip, sizeof(fl.local_ip));
    else if (cfg->admin_sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&cfg->admin_sa;
        if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            inet_ntop(AF_INET6, &s6->sin6_addr, fl.local_ip, sizeof(fl.local_ip));
    }
    /* Host name and admin port; with a specific admin address, that too
     * (replicas on one host must not share a name: replay state is kept
     * per name). */
    snprintf(fl.replica, sizeof(fl.replica), "%s%s%s:%u", host, fl.local_ip[0] ? "@" : "",
             fl.local_ip, (unsigned)ntohs(sin->sin_port));
    bool names = false;
    for (size_t i = 0; !cfg->fleet.peers_dns && i < cfg->fleet.n_peers; i++) {
        struct sockaddr_storage sa;
        socklen_t sl;
        const char *why;
        names = names || util_parse_addr(cfg->fleet.peers[i], &sa, &sl, &why) < 0;
    }
    if (names)
        fl.dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                          EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    fl.tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    fl.kick = event_new(base, -1, 0, on_kick, NULL);
    CHECK(fl.tick && fl.kick);
    struct timeval tv = {(time_t)(fl.interval_ms / 1000), (suseconds_t)(fl.interval_ms % 1000) * 1000};
    event_add(fl.tick, &tv);
    fl.started_ms = util_now_ms();
    fl.on = true;
    struct release_fleet_hooks hooks = {.replica = fl.replica,
                                        .counts = on_counts,
                                        .changed = on_changed,
                                        .hold_config_rollout = on_hold_config_rollout};
    release_set_fleet(&hooks);
    fleet_configure(cfg);
    log_info("fleet: replica %s (boot %s), telling %s%s every %ums", fl.replica, fl.boot,
             cfg->fleet.peers_dns ? "the addresses of " : "",
             cfg->fleet.n_peers == 1 ? cfg->fleet.peers[0] : "its peers", fl.interval_ms);
    return 0;
}

void fleet_stop(void)
{
    if (!fl.on)
        return;
    fl.on = false;
    release_set_fleet(NULL);
    if (fl.discovery)
        discovery_free(fl.discovery);
    for (size_t i = 0; i < fl.n_targets; i++)
        target_free(fl.targets[i]);
    if (fl.dns)
        evdns_base_free(fl.dns, 0);
    if (fl.tick)
        event_free(fl.tick);
    if (fl.kick)
        event_free(fl.kick);
    for (size_t i = 0; i < FLEET_REPLICAS_MAX; i++)
        fleet_msg_dispose(&fl.replicas[i].counts);
    OPENSSL_cleanse(fl.key, sizeof(fl.key));
    memset(&fl, 0, sizeof(fl));
}

/* ---- views ------------------------------------------------------------------ */

static void render_time(struct json_buf *out, const char *key, int64_t ms)
{
    json_buf_puts(out, ",");
    json_buf_key(out, key);
    if (!ms) {
        json_buf_puts(out, "null");
        return;
    }
    char when[64];
    state_format_time(ms, when, sizeof(when));
    json_buf_str(out, when);
}

static void render_replica(struct json_buf *out, const struct replica *r, int64_t now)
{
    json_buf_puts(out, ",\"replica\":");
    if (!r) {
        json_buf_puts(out, "null,\"last_heard\":null,\"heard_ago_s\":null,\"lost\":null,"
                           "\"generation\":null,\"rollout\":null");
        return;
    }
    json_buf_str(out, r->name);
    render_time(out, "last_heard", r->last_heard_ms);
    json_buf_printf(out, ",\"heard_ago_s\":%.3f,\"lost\":%s,\"generation\":%" PRIu64,
                    (double)(now - r->last_heard_ms) / 1000.0, r->lost ? "true" : "false",
                    r->generation);
    json_buf_puts(out, ",\"rollout\":{\"version\":");
    if (r->rollout.state != ROLLOUT_S_NONE)
        json_buf_str(out, r->rollout.plan.version);
    else
        json_buf_puts(out, "null");
    json_buf_puts(out, ",\"state\":");
    json_buf_str(out, rollout_state_name(r->rollout.state));
    char pct[16];
    util_format_bp(rollout_percent_bp(&r->rollout), pct, sizeof(pct));
    json_buf_printf(out, ",\"step\":%u,\"percent\":%s}", r->rollout.step, pct);
}

static const struct replica *replica_at(const char *addr)
{
    for (size_t i = 0; i < FLEET_REPLICAS_MAX; i++)
        if (fl.replicas[i].used && strcmp(fl.replicas[i].addr, addr) == 0)
            return &fl.replicas[i];
    return NULL;
}

void fleet_render(struct json_buf *out)
{
    json_buf_printf(out, ",\"fleet\":{\"enabled\":%s", fl.on ? "true" : "false");
    if (!fl.on) {
        json_buf_puts(out, ",\"peers\":[]}");
        return;
    }
    json_buf_puts(out, ",\"replica\":");
    json_buf_str(out, fl.replica);
    json_buf_puts(out, ",\"boot\":");
    json_buf_str(out, fl.boot);
    json_buf_printf(out, ",\"interval_ms\":%" PRIu32 ",\"peers\":[", fl.interval_ms);
    int64_t now = state_now_ms();
    bool first = true;
    bool shown[FLEET_REPLICAS_MAX] = {false};
    for (size_t i = 0; i < fl.n_targets; i++) {
        const struct target *t = fl.targets[i];
        if (t->self || !t->listed)
            continue;
        const struct replica *r = replica_at(t->addr);
        if (r)
            shown[r - fl.replicas] = true;
        json_buf_puts(out, first ? "{\"address\":" : ",{\"address\":");
        first = false;
        json_buf_str(out, t->addr);
        render_replica(out, r, now);
        render_time(out, "last_sent_ok", t->last_ok_ms);
        json_buf_printf(out, ",\"sent\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"last_error\":",
                        t->sent, t->failed);
        if (t->last_error[0])
            json_buf_str(out, t->last_error);
        else
            json_buf_puts(out, "null");
        json_buf_puts(out, "}");
    }
    /* Replicas that tell us but that we do not tell (not in our peers). */
    for (size_t i = 0; i < FLEET_REPLICAS_MAX; i++) {
        const struct replica *r = &fl.replicas[i];
        if (!r->used || shown[i])
            continue;
        json_buf_puts(out, first ? "{\"address\":" : ",{\"address\":");
        first = false;
        json_buf_str(out, r->addr);
        render_replica(out, r, now);
        json_buf_puts(out, ",\"last_sent_ok\":null,\"sent\":0,\"send_errors\":0,"
                           "\"last_error\":\"not in this replica's peers\"}");
    }
    json_buf_puts(out, "],\"rejected\":{");
    for (int i = 0; i < REJ_N; i++)
        json_buf_printf(out, "%s\"%s\":%" PRIu64, i ? "," : "", reject_names[i], fl.rejected[i]);
    json_buf_printf(out, "},\"sent\":%" PRIu64 ",\"received\":%" PRIu64 "}", fl.sent,
                    fl.received);
}

void fleet_render_metrics(struct json_buf *out)
{
    if (!fl.on)
        return;
    size_t live = 0;
    for (size_t i = 0; i < FLEET_REPLICAS_MAX; i++)
        live += fl.replicas[i].used && !fl.replicas[i].lost;
    json_buf_printf(out, "# HELP weir_fleet_peers Peers heard from in the last %d ms.\n"
                         "# TYPE weir_fleet_peers gauge\nweir_fleet_peers %zu\n",
                    FLEET_LOST_MS, live);
    json_buf_puts(out, "# HELP weir_fleet_rejected_total Fleet messages refused, by reason.\n"
                       "# TYPE weir_fleet_rejected_total counter\n");
    for (int i = 0; i < REJ_N; i++)
        json_buf_printf(out, "weir_fleet_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                        reject_names[i], fl.rejected[i]);
    json_buf_printf(out,
                    "# HELP weir_fleet_messages_sent_total Fleet messages sent to peers.\n"
                    "# TYPE weir_fleet_messages_sent_total counter\n"
                    "weir_fleet_messages_sent_total %" PRIu64 "\n"
                    "# HELP weir_fleet_send_errors_total Fleet messages not taken by a peer.\n"
                    "# TYPE weir_fleet_send_errors_total counter\n"
                    "weir_fleet_send_errors_total %" PRIu64 "\n"
                    "# HELP weir_fleet_messages_received_total Fleet messages taken from "
                    "peers.\n# TYPE weir_fleet_messages_received_total counter\n"
                    "weir_fleet_messages_received_total %" PRIu64 "\n",
                    fl.sent, fl.send_errors, fl.received);
}
