/*
 * watch.c — see watch.h. One inotify descriptor on the main event_base,
 * a set of watched directories recomputed after every check (a ConfigMap
 * update deletes the old timestamped directory and creates a new one), and
 * one debounce timer.
 *
 * Which directories: for each hop of the path's symlink chain, the
 * directory holding that link, plus the directory of the final file
 * (realpath). Which events count: structural ones (create, delete, move,
 * attrib) always; writes (modify, close-after-write) only when they name a
 * file of the chain, so a busy log file next to the config costs nothing.
 *
 * When to load (issue 21: a half-written file that parses must never
 * apply):
 *   swap     only structural events (a rename onto the path, a ConfigMap
 *            symlink swap: atomic, the file is complete): load after the
 *            WATCH_DEBOUNCE_MS debounce.
 *   write    the file itself was written in place (an editor, `cat >`):
 *            wait while a writer still has it open (a modify not yet
 *            followed by close-after-write; at most WATCH_OPEN_MAX_MS), then
 *            until size, mtime and content hash are the same at two
 *            samples WATCH_SETTLE_MS apart with no event in between; every
 *            new write restarts the wait.
 */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "runtime.h"

#define WATCH_DIRS_MAX 20
#define WATCH_HOPS_MAX 16

static struct {
    struct event_base *base; /* borrowed */
    char *path;              /* owned */
    int fd;                  /* inotify, -1 when not started */
    struct event *ev_read;   /* owned */
    struct event *ev_timer;  /* owned */
    bool pending;            /* timer armed */
    uint64_t first_ms;       /* first event of the pending burst */
    bool written;            /* the burst wrote a chain file in place */
    bool writing;            /* a writer has it open (modify, no close yet) */
    uint64_t writing_ms;     /* when writing began */
    bool have_sample;        /* `sample` holds the previous timer's look */
    struct watch_sample {
        off_t size;
        struct timespec mtime;
        ino_t ino;
        uint64_t hash;
    } sample;
    int wd[WATCH_DIRS_MAX];
    size_t n_wd;
    char *names[WATCH_DIRS_MAX]; /* owned: basenames along the chain */
    size_t n_names;
} w = {.fd = -1};

struct chain {
    char dirs[WATCH_DIRS_MAX][PATH_MAX];
    size_t n_dirs;
    char names[WATCH_DIRS_MAX][NAME_MAX + 1];
    size_t n_names;
};

static void chain_add(struct chain *c, const char *p)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(p, '/');
    const char *base = slash ? slash + 1 : p;
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == p)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - p), p);
    bool have = false;
    for (size_t i = 0; i < c->n_dirs; i++)
        have |= strcmp(c->dirs[i], dir) == 0;
    if (!have && c->n_dirs < WATCH_DIRS_MAX)
        snprintf(c->dirs[c->n_dirs++], PATH_MAX, "%s", dir);
    have = false;
    for (size_t i = 0; i < c->n_names; i++)
        have |= strcmp(c->names[i], base) == 0;
    if (!have && *base && c->n_names < WATCH_DIRS_MAX)
        snprintf(c->names[c->n_names++], NAME_MAX + 1, "%s", base);
}

/* The directories and names along path's symlink chain. */
static void chain_compute(const char *path, struct chain *c)
{
    memset(c, 0, sizeof(*c));
    char cur[PATH_MAX];
    snprintf(cur, sizeof(cur), "%s", path);
    for (int hop = 0; hop < WATCH_HOPS_MAX; hop++) {
        chain_add(c, cur);
        struct stat st;
        if (lstat(cur, &st) < 0 || !S_ISLNK(st.st_mode))
            break;
        char target[PATH_MAX];
        ssize_t n = readlink(cur, target, sizeof(target) - 1);
        if (n <= 0)
            break;
        target[n] = '\0';
        char next[PATH_MAX];
        const char *slash = strrchr(cur, '/');
        int len;
        if (target[0] == '/' || !slash)
            len = snprintf(next, sizeof(next), "%s", target);
        else
            len = snprintf(next, sizeof(next), "%.*s/%s", (int)(slash - cur), cur, target);
        if (len < 0 || (size_t)len >= sizeof(next))
            break; /* too long to follow: watch what we have */
        memcpy(cur, next, (size_t)len + 1);
    }
    char real[PATH_MAX];
    if (realpath(path, real))
        chain_add(c, real);
}

/* Re-establish the watches for the current chain; drop stale ones. */
static void refresh_watches(void)
{
    struct chain c;
    chain_compute(w.path, &c);
    int wd[WATCH_DIRS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < c.n_dirs; i++) {
        int d = inotify_add_watch(w.fd, c.dirs[i],
                                  IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                      IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB |
                                      IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
        if (d < 0) {
            log_debug("watch: cannot watch %s: %s", c.dirs[i], strerror(errno));
            continue;
        }
        bool have = false;
        for (size_t k = 0; k < n; k++)
            have |= wd[k] == d;
        if (!have)
            wd[n++] = d;
    }
    for (size_t i = 0; i < w.n_wd; i++) {
        bool keep = false;
        for (size_t k = 0; k < n; k++)
            keep |= wd[k] == w.wd[i];
        if (!keep)
            inotify_rm_watch(w.fd, w.wd[i]); /* may already be gone: fine */
    }
    memcpy(w.wd, wd, n * sizeof(*wd));
    w.n_wd = n;
    for (size_t i = 0; i < w.n_names; i++)
        free(w.names[i]);
    for (size_t i = 0; i < c.n_names; i++)
        w.names[i] = xstrdup(c.names[i]);
    w.n_names = c.n_names;
}

/* Hash of the file's current content; -1 if it cannot be read right now. */
static int hash_file(uint64_t *out)
{
    int fd = open(w.path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 8192, n = 0;
    char *buf = xmalloc(cap);
    int rc = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= (8u << 20)) {
                rc = -1;
                break;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -1 : 0;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0)
        *out = runtime_hash(buf, n);
    free(buf);
    return rc;
}

static void arm(uint64_t delay_ms)
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000)};
    evtimer_add(w.ev_timer, &tv);
    w.pending = true;
}

static bool sample_equal(const struct watch_sample *a, const struct watch_sample *b)
{
    return a->size == b->size && a->ino == b->ino && a->hash == b->hash &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void on_settled(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    w.pending = false;
    refresh_watches();
    const struct config *cfg = runtime_config();
    if (cfg && !cfg->watch) {
        log_debug("watch: %s changed, but watch is off", w.path);
        w.written = w.have_sample = false;
        return;
    }
    if (w.written && w.writing && util_now_ms() - w.writing_ms < WATCH_OPEN_MAX_MS) {
        log_debug("watch: %s is still open for writing; waiting", w.path);
        arm(WATCH_SETTLE_MS);
        return;
    }
    uint64_t h;
    struct stat st;
    if (stat(w.path, &st) < 0 || hash_file(&h) < 0) {
        log_debug("watch: %s not readable right now: %s", w.path, strerror(errno));
        w.have_sample = false;
        return;
    }
    if (w.written) {
        /* Written in place: load only what stayed the same for a settle
         * period (no half-written file, whatever the writer's pauses
         * short of that). */
        struct watch_sample now = {st.st_size, st.st_mtim, st.st_ino, h};
        if (!w.have_sample || !sample_equal(&now, &w.sample)) {
            w.sample = now;
            w.have_sample = true;
            arm(WATCH_SETTLE_MS);
            return;
        }
    }
    w.written = w.have_sample = false;
    if (h == runtime_file_hash())
        return; /* touched, not changed, or already reloaded */
    log_info("config file %s changed; reloading", w.path);
    struct config_errors errs;
    config_errors_init(&errs, w.path);
    char msg[1024];
    /* runtime_reload logs the outcome (changes, or each FILE:LINE:COL error). */
    if (runtime_reload(&errs, msg, sizeof(msg)) < 0)
        log_warn("config file %s changed but has errors; still running the previous "
                 "config",
                 w.path);
    config_errors_dispose(&errs);
}

/* True when the event names a file of the chain. */
static bool names_chain(const struct inotify_event *ev)
{
    if (ev->len == 0)
        return false;
    for (size_t i = 0; i < w.n_names; i++)
        if (strcmp(ev->name, w.names[i]) == 0)
            return true;
    return false;
}

static bool relevant(const struct inotify_event *ev)
{
    if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
        return true;
    if (!(ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)))
        return true;
    if (ev->len == 0)
        return true;
    for (size_t i = 0; i < w.n_names; i++)
        if (strcmp(ev->name, w.names[i]) == 0)
            return true;
    return false;
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_IGNORED) {
                for (size_t i = 0; i < w.n_wd; i++)
                    if (w.wd[i] == ev->wd) {
                        w.wd[i] = w.wd[--w.n_wd];
                        break;
                    }
            }
            any |= relevant(ev);
            if (names_chain(ev)) {
                if (ev->mask & IN_MODIFY) {
                    if (!w.writing)
                        w.writing_ms = util_now_ms();
                    w.writing = w.written = true;
                }
                /* Closed after writing, or replaced by a new inode. */
                if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE))
                    w.writing = false;
                if (ev->mask & IN_CLOSE_WRITE)
                    w.written = true;
            }
            p += sizeof(*ev) + ev->len;
        }
    }
    if (!any)
        return;
    uint64_t now = util_now_ms();
    if (!w.pending)
        w.first_ms = now;
    if (w.written) {
        /* Every write restarts the settle wait; no deadline. */
        w.have_sample = false;
        arm(WATCH_SETTLE_MS);
        return;
    }
    uint64_t left = w.first_ms + WATCH_MAX_DELAY_MS > now ? w.first_ms + WATCH_MAX_DELAY_MS - now
                                                          : 0;
    arm(left < WATCH_DEBOUNCE_MS ? left : WATCH_DEBOUNCE_MS);
}

int watch_start(struct event_base *base, const char *path)
{
    CHECK(w.fd < 0);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        log_warn("watch: inotify unavailable (%s); config changes need SIGHUP or "
                 "`weirctl reload`",
                 strerror(errno));
        return -1;
    }
    w.fd = fd;
    w.base = base;
    w.path = xstrdup(path);
    w.ev_read = event_new(base, fd, EV_READ | EV_PERSIST, on_inotify, NULL);
    w.ev_timer = evtimer_new(base, on_settled, NULL);
    CHECK(w.ev_read && w.ev_timer);
    event_add(w.ev_read, NULL);
    refresh_watches();
    if (w.n_wd == 0) {
        log_warn("watch: cannot watch the directory of %s; config changes need SIGHUP "
                 "or `weirctl reload`",
                 path);
        watch_stop();
        return -1;
    }
    /* A change between the first load and now is caught by the hash check. */
    on_settled(-1, 0, NULL);
    const struct config *cfg = runtime_config();
    log_info("watching %s for changes%s", path,
             cfg && !cfg->watch ? " (inactive: watch is false)" : "");
    return 0;
}

void watch_stop(void)
{
    if (w.fd < 0)
        return;
    if (w.ev_read)
        event_free(w.ev_read);
    if (w.ev_timer)
        event_free(w.ev_timer);
    close(w.fd);
    for (size_t i = 0; i < w.n_names; i++)
        free(w.names[i]);
    free(w.path);
    memset(&w, 0, sizeof(w));
    w.fd = -1;
}
