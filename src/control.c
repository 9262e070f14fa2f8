/*
 * control.c — see control.h. The Unix control socket: creation (safely:
 * never replaces anything that is not a stale socket; mode/owner/group from
 * the config), accepting, reading lines, writing answers. Commands
 * themselves are control_cmd.c's.
 *
 * Per connection (struct control_conn, on the main event_base):
 *   reading  each complete line (LF, optional CR) is executed at once and
 *            its one-line answer queued; blank lines are ignored.
 *   long     a line longer than CONTROL_LINE_MAX gets an error answer as
 *            soon as that is known and the rest of it is discarded up to
 *            its newline (state `discarding`); the connection stays usable.
 *   paused   when a client sends faster than it reads, reading stops while
 *            more than CONTROL_OUT_HIGH bytes of answers wait (resumes on
 *            drain), so a client cannot make weir buffer without bound.
 *   closing  after EOF (an unterminated last line is answered with an
 *            error, not executed: a half-written command must not act),
 *            the queued answers are flushed, then the connection is freed.
 *
 * Limits (issue 21: an operator's command must always get through):
 *   - a command connection that sends nothing for CONTROL_IDLE_S is closed;
 *   - at most CONTROL_CONNS_MAX command connections are kept. They sit in
 *     ctl.conns by last activity (accept or a read), most recent first; a
 *     new one arriving at the limit closes the least recently active one
 *     to make room, so idle connections can fill the table but never keep
 *     a new command out. Evictions are logged at most once per
 *     CONTROL_EVICT_LOG_S, with their count.
 *   - room for event streams (`events`, long-lived on purpose): a stream
 *     connection (CONTROL_K_STREAM) has no idle timeout and is never
 *     evicted, so it has a cap of its own, CONTROL_STREAMS_MAX, and a full
 *     stream table refuses streams, never commands.
 */
#include "control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "accept_guard.h"
#include "control_cmd.h"
#include "events.h"
#include "log.h"

#define CONTROL_MAGIC 0x4354524cu /* "CTRL" */
#define CONTROL_CONNS_MAX 64      /* command connections kept at once */
#define CONTROL_STREAMS_MAX 16    /* event-stream connections, on top */
#define CONTROL_OUT_HIGH (256u * 1024u)
#define CONTROL_IDLE_S 60 /* a command connection's idle timeout */
#define CONTROL_EVICT_LOG_S 10

/* What a connection is for; decides its timeout and whether it may be
 * evicted. */
enum control_kind {
    CONTROL_K_COMMAND = 0, /* command lines and answers: idle timeout, LRU */
    CONTROL_K_STREAM,      /* an event stream: no timeout, never evicted */
};

struct control_conn {
    uint32_t magic;
    uint64_t id;
    enum control_kind kind;
    struct bufferevent *bev; /* owned */
    struct control_caller caller;
    bool discarding;                  /* inside an over-long line: drop up to its newline */
    bool closing;                     /* free once the output is flushed */
    bool paused;                      /* reading stopped until answers drain */
    bool eof;                         /* the client finished sending */
    struct control_conn *prev, *next; /* in ctl.conns */
};

static struct {
    struct event_base *base;         /* borrowed */
    struct evconnlistener *listener; /* owned */
    struct accept_guard guard;       /* the listener's accept backoff */
    char *path;                      /* owned */
    dev_t dev;                       /* the socket file we created */
    ino_t ino;
    struct control_conn *conns; /* owned list, most recently active first */
    struct control_conn *lru;   /* borrowed: the list's last element */
    size_t n_conns;             /* of kind CONTROL_K_COMMAND */
    size_t n_streams;           /* of kind CONTROL_K_STREAM */
    uint64_t next_id;
    uint64_t evicted;    /* evictions not yet logged */
    time_t evict_logged; /* when the last eviction was logged */
} ctl;

static void list_unlink(struct control_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        ctl.lru = c->prev;
    c->prev = c->next = NULL;
}

static void list_push_front(struct control_conn *c)
{
    c->prev = NULL;
    c->next = ctl.conns;
    if (ctl.conns)
        ctl.conns->prev = c;
    else
        ctl.lru = c;
    ctl.conns = c;
}

/* Activity on c: it becomes the most recently active. */
static void touch(struct control_conn *c)
{
    if (ctl.conns != c) {
        list_unlink(c);
        list_push_front(c);
    }
}

static void conn_free(struct control_conn *c, const char *reason)
{
    CHECK(c->magic == CONTROL_MAGIC);
    log_debug("control c#%llu closed: %s", (unsigned long long)c->id, reason);
    list_unlink(c);
    if (c->kind == CONTROL_K_STREAM)
        ctl.n_streams--;
    else
        ctl.n_conns--;
    bufferevent_free(c->bev);
    c->magic = 0;
    free(c);
}

static void answer(struct control_conn *c, const struct json_buf *b)
{
    bufferevent_write(c->bev, b->p, b->len);
}

static void answer_error(struct control_conn *c, const char *msg)
{
    struct json_buf b;
    json_buf_init(&b);
    control_cmd_error_line(&b, msg);
    answer(c, &b);
    json_buf_dispose(&b);
}

/*
 * `events`: the connection becomes a stream of event lines (events.h) until
 * its client closes. Streams have their own cap and no idle timeout; one
 * whose client does not read is dropped rather than buffered without bound.
 */
static void start_stream(struct control_conn *c)
{
    if (ctl.n_streams >= CONTROL_STREAMS_MAX) {
        answer_error(c, "too many event streams (at most 16); close one first");
        return;
    }
    c->kind = CONTROL_K_STREAM;
    ctl.n_conns--;
    ctl.n_streams++;
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    static const char ok[] = "{\"ok\":true,\"events\":\"streaming\"}\n";
    bufferevent_write(c->bev, ok, sizeof(ok) - 1);
    log_debug("control c#%llu: event stream", (unsigned long long)c->id);
}

static void on_event_line(const char *line, size_t len, void *arg)
{
    (void)arg;
    struct control_conn *next;
    for (struct control_conn *c = ctl.conns; c; c = next) {
        next = c->next;
        if (c->kind != CONTROL_K_STREAM || c->closing)
            continue;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > CONTROL_OUT_HIGH) {
            conn_free(c, "event stream not read");
            continue;
        }
        bufferevent_write(c->bev, line, len);
    }
}

/* Execute every complete line in the input, within the output limit. */
static void process(struct control_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char line[CONTROL_LINE_MAX + 2];
    struct json_buf b;
    json_buf_init(&b);
    for (;;) {
        if (c->closing) {
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (evbuffer_get_length(out) > CONTROL_OUT_HIGH) {
            bufferevent_disable(c->bev, EV_READ);
            c->paused = true;
            break;
        }
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
        size_t avail = evbuffer_get_length(in);
        if (eol.pos < 0) {
            if (c->discarding) {
                evbuffer_drain(in, avail);
            } else if (avail > CONTROL_LINE_MAX + 1) {
                /* +1: room for the CR of a CRLF ending. */
                answer_error(c, "command line too long (at most 4096 bytes); ignored");
                c->discarding = true;
                evbuffer_drain(in, avail);
            }
            break;
        }
        size_t len = (size_t)eol.pos;
        if (c->discarding) {
            evbuffer_drain(in, len + eol_len);
            c->discarding = false;
            continue;
        }
        if (len > CONTROL_LINE_MAX + 1) {
            evbuffer_drain(in, len + eol_len);
            answer_error(c, "command line too long (at most 4096 bytes); ignored");
            continue;
        }
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, eol_len);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len > CONTROL_LINE_MAX) {
            answer_error(c, "command line too long (at most 4096 bytes); ignored");
            continue;
        }
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == len)
            continue; /* blank line: not a command */
        if (c->kind == CONTROL_K_STREAM)
            continue; /* a stream only sends; what its client writes is ignored */
        size_t e = len;
        while (e > k && (line[e - 1] == ' ' || line[e - 1] == '\t'))
            e--;
        if (e - k == 6 && memcmp(line + k, "events", 6) == 0) {
            start_stream(c);
            continue;
        }
        json_buf_reset(&b);
        control_cmd_execute(line, len, &c->caller, &b);
        answer(c, &b);
    }
    json_buf_dispose(&b);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct control_conn *c = arg;
    CHECK(c->magic == CONTROL_MAGIC && c->bev == bev);
    touch(c);
    process(c);
}

/* After EOF, once every complete line is answered: answer an unterminated
 * rest with an error, then close when the output is flushed. May free c. */
static void finish_eof(struct control_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (!c->closing && !c->discarding && evbuffer_get_length(in) > 0)
        answer_error(c, "incomplete command (no newline before the end of input); "
                        "not executed");
    c->closing = true;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c, "end of input");
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct control_conn *c = arg;
    CHECK(c->magic == CONTROL_MAGIC && c->bev == bev);
    if (c->closing) {
        conn_free(c, "done");
        return;
    }
    if (c->paused) {
        c->paused = false;
        if (!c->eof)
            bufferevent_enable(c->bev, EV_READ);
        process(c);
        if (c->eof && !c->paused)
            finish_eof(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct control_conn *c = arg;
    CHECK(c->magic == CONTROL_MAGIC && c->bev == bev);
    if (what & BEV_EVENT_ERROR) {
        conn_free(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        conn_free(c, "idle timeout");
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->eof = true;
        /* Lines that arrived with the EOF are still waiting. */
        process(c);
        if (!c->paused)
            finish_eof(c);
    }
}

/*
 * At the limit: close the least recently active command connection, so the
 * one just accepted is served (an idle or stuck client never locks the
 * operator out). Streams are not candidates.
 */
static void evict_one(void)
{
    struct control_conn *c = ctl.lru;
    while (c && c->kind != CONTROL_K_COMMAND)
        c = c->prev;
    if (!c)
        return;
    ctl.evicted++;
    time_t now = time(NULL);
    if (now - ctl.evict_logged >= CONTROL_EVICT_LOG_S) {
        log_warn("control: %d connections open; closed the least recently active "
                 "(%llu so closed since the last such line)",
                 CONTROL_CONNS_MAX,
                 (unsigned long long)ctl.evicted);
        ctl.evicted = 0;
        ctl.evict_logged = now;
    }
    conn_free(c, "evicted: connection limit, least recently active");
}

static void on_accept(struct evconnlistener *lst, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    (void)lst;
    (void)sa;
    (void)salen;
    (void)arg;
    accept_guard_accepted(&ctl.guard);
    if (ctl.n_conns >= CONTROL_CONNS_MAX)
        evict_one();
    struct control_conn *c = xcalloc(1, sizeof(*c));
    c->magic = CONTROL_MAGIC;
    c->id = ++ctl.next_id;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->caller.known = true;
        c->caller.pid = cred.pid;
        c->caller.uid = cred.uid;
        c->caller.gid = cred.gid;
    }
    c->bev = bufferevent_socket_new(ctl.base, fd, BEV_OPT_CLOSE_ON_FREE);
    CHECK(c->bev != NULL);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    struct timeval idle = {CONTROL_IDLE_S, 0};
    bufferevent_set_timeouts(c->bev, &idle, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    list_push_front(c);
    ctl.n_conns++;
    log_debug("control c#%llu accepted (uid=%u pid=%d)", (unsigned long long)c->id,
              (unsigned)c->caller.uid, (int)c->caller.pid);
}

static void on_listen_error(struct evconnlistener *lst, void *arg)
{
    (void)lst;
    (void)arg;
    accept_guard_failed(&ctl.guard, EVUTIL_SOCKET_ERROR());
}

/* mkdir -p for the directory holding path (new directories mode 0755). */
static int make_parents(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            log_error("control socket: cannot create directory %s: %s", dir,
                      strerror(errno));
            return -1;
        }
        *p = saved;
        if (!saved)
            break;
    }
    return 0;
}

/* If path exists: a live socket → -1; a stale socket → removed; else -1. */
static int clear_stale(const char *path, const struct sockaddr_un *sun)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        log_error("control socket %s: the path exists and is not a socket; "
                  "refusing to replace it",
                  path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
    close(fd);
    if (rc == 0) {
        log_error("control socket %s is in use by another running process "
                  "(another weir?); give each instance its own `control` path",
                  path);
        return -1;
    }
    log_info("control socket %s: removing a stale socket", path);
    if (unlink(path) < 0 && errno != ENOENT) {
        log_error("control socket %s: cannot remove the stale socket: %s", path,
                  strerror(errno));
        return -1;
    }
    return 0;
}

static int resolve_owner(const char *owner, const char *group, uid_t *uid, gid_t *gid)
{
    char buf[4096];
    char *end;
    if (owner) {
        unsigned long v = strtoul(owner, &end, 10);
        if (owner[0] && !*end) {
            *uid = (uid_t)v;
        } else {
            struct passwd pw, *res = NULL;
            if (getpwnam_r(owner, &pw, buf, sizeof(buf), &res) != 0 || !res) {
                log_error("control socket: unknown user \"%s\"", owner);
                return -1;
            }
            *uid = pw.pw_uid;
        }
    }
    if (group) {
        unsigned long v = strtoul(group, &end, 10);
        if (group[0] && !*end) {
            *gid = (gid_t)v;
        } else {
            struct group gr, *res = NULL;
            if (getgrnam_r(group, &gr, buf, sizeof(buf), &res) != 0 || !res) {
                log_error("control socket: unknown group \"%s\"", group);
                return -1;
            }
            *gid = gr.gr_gid;
        }
    }
    return 0;
}

int control_start(struct event_base *base, const struct config *cfg)
{
    CHECK(!ctl.listener);
    const char *path = cfg->control;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (!path || !path[0] || strlen(path) >= sizeof(sun.sun_path)) {
        log_error("control socket path \"%s\" is empty or longer than %zu bytes",
                  path ? path : "", sizeof(sun.sun_path) - 1);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (resolve_owner(cfg->control_owner, cfg->control_group, &uid, &gid) < 0)
        return -1;
    if (make_parents(path) < 0 || clear_stale(path, &sun) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("control socket: socket(): %s", strerror(errno));
        return -1;
    }
    /* Created owner-only, then opened up to the configured mode: the socket
     * is never reachable with wider permissions than asked for. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0) {
        log_error("control socket %s: bind: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    const char *step = NULL;
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0)
        step = "chown";
    else if (chmod(path, cfg->control_mode & 07777) < 0)
        step = "chmod";
    else if (listen(fd, 64) < 0)
        step = "listen";
    struct stat st;
    if (!step && lstat(path, &st) < 0)
        step = "stat";
    if (step) {
        log_error("control socket %s: %s: %s", path, step, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    ctl.listener = evconnlistener_new(base, on_accept, NULL,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!ctl.listener) {
        log_error("control socket %s: cannot listen with libevent", path);
        close(fd);
        unlink(path);
        return -1;
    }
    evconnlistener_set_error_cb(ctl.listener, on_listen_error);
    if (accept_guard_init(&ctl.guard, base, ctl.listener, "control socket") < 0) {
        log_error("control socket %s: out of memory", path);
        evconnlistener_free(ctl.listener);
        ctl.listener = NULL;
        unlink(path);
        return -1;
    }
    ctl.base = base;
    ctl.path = xstrdup(path);
    ctl.dev = st.st_dev;
    ctl.ino = st.st_ino;
    log_info("control socket listening on %s (mode %04o)", path,
             (unsigned)(cfg->control_mode & 07777));
    events_set_sink(on_event_line, NULL);
    return 0;
}

void control_stop(void)
{
    events_set_sink(NULL, NULL);
    while (ctl.conns)
        conn_free(ctl.conns, "shutdown");
    accept_guard_dispose(&ctl.guard);
    if (ctl.listener) {
        evconnlistener_free(ctl.listener);
        /* Remove the socket only if it is still the one we created. */
        struct stat st;
        if (lstat(ctl.path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == ctl.dev &&
            st.st_ino == ctl.ino)
            unlink(ctl.path);
    }
    free(ctl.path);
    memset(&ctl, 0, sizeof(ctl));
}
