/*
 * state.c — see state.h. Maps are sorted arrays (a few dozen keys at most
 * in practice; binary search, insertion by memmove). The file is written
 * whole on every change: it is small, and a full rewrite through
 * temp + fsync + rename is the simplest way to be crash-safe.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

#define STATE_MAX_FILE_BYTES (64u << 20)

/* ---- maps -------------------------------------------------------------- */

void state_map_init(struct state_map *m)
{
    m->v = NULL;
    m->n = m->cap = 0;
}

void state_map_dispose(struct state_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].value);
    }
    free(m->v);
    state_map_init(m);
}

void state_map_copy(struct state_map *dst, const struct state_map *src)
{
    state_map_init(dst);
    if (src->n == 0)
        return;
    dst->v = xcalloc(src->n, sizeof(*dst->v));
    dst->cap = dst->n = src->n;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].key = xstrdup(src->v[i].key);
        dst->v[i].value = xstrdup(src->v[i].value);
        dst->v[i].ts_ms = src->v[i].ts_ms;
    }
}

/* Index of key, or -(insertion point) - 1. */
static ptrdiff_t map_search(const struct state_map *m, const char *key)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->v[mid].key, key);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

void state_map_set(struct state_map *m, const char *key, const char *value,
                   int64_t ts_ms)
{
    ptrdiff_t i = map_search(m, key);
    if (i >= 0) {
        char *nv = xstrdup(value);
        free(m->v[i].value);
        m->v[i].value = nv;
        m->v[i].ts_ms = ts_ms;
        return;
    }
    size_t at = (size_t)(-i - 1);
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    memmove(&m->v[at + 1], &m->v[at], (m->n - at) * sizeof(*m->v));
    m->v[at].key = xstrdup(key);
    m->v[at].value = xstrdup(value);
    m->v[at].ts_ms = ts_ms;
    m->n++;
}

const struct state_item *state_map_find(const struct state_map *m,
                                        const char *key)
{
    ptrdiff_t i = map_search(m, key);
    return i >= 0 ? &m->v[i] : NULL;
}

const char *state_map_value(const struct state_map *m, const char *key)
{
    const struct state_item *it = state_map_find(m, key);
    return it ? it->value : STATE_ABSENT;
}

void state_map_remove(struct state_map *m, const char *key)
{
    ptrdiff_t i = map_search(m, key);
    if (i < 0)
        return;
    free(m->v[i].key);
    free(m->v[i].value);
    memmove(&m->v[i], &m->v[i + 1], (m->n - (size_t)i - 1) * sizeof(*m->v));
    m->n--;
}

bool state_map_equal(const struct state_map *a, const struct state_map *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].key, b->v[i].key) != 0 ||
            strcmp(a->v[i].value, b->v[i].value) != 0)
            return false;
    return true;
}

/* ---- state ------------------------------------------------------------- */

void state_init(struct state *st)
{
    memset(st, 0, sizeof(*st));
    state_map_init(&st->file);
    state_map_init(&st->changes);
    state_map_init(&st->extra);
}

static void history_dispose(struct state_history *h)
{
    free(h->what);
    state_map_dispose(&h->map);
}

void state_dispose(struct state *st)
{
    state_map_dispose(&st->file);
    state_map_dispose(&st->changes);
    state_map_dispose(&st->extra);
    for (size_t i = 0; i < st->n_hist; i++)
        history_dispose(&st->hist[i]);
    free(st->hist);
    state_init(st);
}

void state_history_push(struct state *st, int64_t ts_ms, const char *what,
                        const struct state_map *map)
{
    if (st->n_hist == STATE_HISTORY_MAX) {
        history_dispose(&st->hist[0]);
        memmove(&st->hist[0], &st->hist[1], (st->n_hist - 1) * sizeof(*st->hist));
        st->n_hist--;
    }
    if (st->n_hist == st->cap_hist) {
        st->cap_hist = st->cap_hist ? st->cap_hist * 2 : 8;
        st->hist = xrealloc(st->hist, st->cap_hist * sizeof(*st->hist));
    }
    struct state_history *h = &st->hist[st->n_hist++];
    h->ts_ms = ts_ms;
    h->what = xstrdup(what ? what : "");
    state_map_copy(&h->map, map);
}

void state_history_pop(struct state *st, struct state_map *out)
{
    CHECK(st->n_hist > 0);
    struct state_history *h = &st->hist[--st->n_hist];
    *out = h->map;
    free(h->what);
}

/* ---- time -------------------------------------------------------------- */

int64_t state_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void state_format_time(int64_t ms, char *buf, size_t buflen)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r(&sec, &tm)) {
        snprintf(buf, buflen, "?");
        return;
    }
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ---- escaping ---------------------------------------------------------- */

static bool needs_escape(unsigned char c, const char *also)
{
    return c <= 0x20 || c >= 0x7f || c == '%' || c == '"' ||
           (also && c && strchr(also, c));
}

char *state_escape(const char *s, const char *also)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += needs_escape(*p, also) ? 3 : 1;
    char *out = xmalloc(n + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (needs_escape(*p, also)) {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}

int state_unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p != '%') {
            *o++ = *p;
            continue;
        }
        int hi = util_hexval(p[1]);
        int lo = hi < 0 ? -1 : util_hexval(p[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *o++ = (char)(hi * 16 + lo);
        p += 2;
    }
    *o = '\0';
    return 0;
}

/* ---- save -------------------------------------------------------------- */

/* Append one %-escaped token ("" for the empty string) and a separator. */
static void put_token(struct json_buf *b, const char *s, char sep)
{
    if (!*s) {
        json_buf_puts(b, "\"\"");
    } else {
        char *e = state_escape(s, NULL);
        json_buf_puts(b, e);
        free(e);
    }
    json_buf_add(b, &sep, 1);
}

static void render(const struct state *st, struct json_buf *b)
{
    char when[40];
    int64_t now = state_now_ms();
    state_format_time(now, when, sizeof(when));
    json_buf_printf(b,
                    "# weir runtime state (%s). Rewritten by weir on every runtime\n"
                    "# change; edit only while weir is stopped.\n"
                    "weir-state 1\nsaved %" PRId64 "\n",
                    when, now);
    for (size_t i = 0; i < st->file.n; i++) {
        json_buf_puts(b, "file ");
        put_token(b, st->file.v[i].key, ' ');
        put_token(b, st->file.v[i].value, '\n');
    }
    for (size_t i = 0; i < st->changes.n; i++) {
        json_buf_printf(b, "change %" PRId64 " ", st->changes.v[i].ts_ms);
        put_token(b, st->changes.v[i].key, ' ');
        put_token(b, st->changes.v[i].value, '\n');
    }
    for (size_t i = 0; i < st->extra.n; i++) {
        json_buf_puts(b, "extra ");
        put_token(b, st->extra.v[i].key, ' ');
        put_token(b, st->extra.v[i].value, '\n');
    }
    for (size_t h = 0; h < st->n_hist; h++) {
        const struct state_history *e = &st->hist[h];
        json_buf_printf(b, "history %" PRId64 " ", e->ts_ms);
        put_token(b, e->what, '\n');
        /* Only the keys that differ from the file section. */
        for (size_t i = 0; i < e->map.n; i++) {
            if (strcmp(state_map_value(&st->file, e->map.v[i].key),
                       e->map.v[i].value) == 0)
                continue;
            json_buf_puts(b, "was ");
            put_token(b, e->map.v[i].key, ' ');
            put_token(b, e->map.v[i].value, '\n');
        }
        for (size_t i = 0; i < st->file.n; i++) {
            if (state_map_find(&e->map, st->file.v[i].key))
                continue;
            json_buf_puts(b, "was ");
            put_token(b, st->file.v[i].key, ' ');
            put_token(b, STATE_ABSENT, '\n');
        }
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* mkdir -p the directory holding path (new directories 0755). */
static int make_parents(const char *path)
{
    char dir[4096];
    int n = snprintf(dir, sizeof(dir), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(dir))
        return -1;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = saved;
        if (!saved)
            break;
    }
    return 0;
}

int state_save(const char *path, const struct state *st, char *err,
               size_t errlen)
{
    struct json_buf b;
    json_buf_init(&b);
    render(st, &b);

    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "state file path too long");
        json_buf_dispose(&b);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == ENOENT && make_parents(path) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        json_buf_dispose(&b);
        return -1;
    }
    const char *what = "write";
    if (write_all(fd, b.p, b.len) < 0 || (what = "fsync", fsync(fd) < 0)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        snprintf(err, errlen, "cannot %s %s: %s", what, tmp, strerror(e));
        json_buf_dispose(&b);
        return -1;
    }
    json_buf_dispose(&b);
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(e));
        return -1;
    }
    /* Make the rename itself durable. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash && slash != path)
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: some filesystems refuse it */
        close(dfd);
    }
    return 0;
}

/* ---- load -------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len, int *err_no)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err_no = errno;
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= STATE_MAX_FILE_BYTES) {
                *err_no = EFBIG;
                goto bad;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err_no = errno;
            goto bad;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
bad:
    close(fd);
    free(buf);
    return NULL;
}

/* Split line into at most max tokens (unescaped in place); returns count or -1. */
static int tokens(char *line, char **tok, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (n == max)
            return -1;
        if (strcmp(t, "\"\"") == 0)
            t[0] = '\0';
        else if (state_unescape(t) < 0)
            return -1;
        tok[n++] = t;
    }
    return n;
}

static int parse_ts(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

int state_load(const char *path, struct state *st, char *err, size_t errlen)
{
    size_t len;
    int e = 0;
    char *text = read_all(path, &len, &e);
    if (!text) {
        if (e == ENOENT)
            return 1;
        snprintf(err, errlen, "cannot read %s: %s", path,
                 e == EFBIG ? "file too large" : strerror(e));
        return -1;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "%s: not a weir state file (binary data)", path);
        free(text);
        return -1;
    }
    bool header = false;
    int lineno = 0;
    const char *why = NULL;
    /* Walk line by line by hand to keep line numbers for errors. */
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        char *line = p;
        p = nl ? nl + 1 : p + strlen(p);
        lineno++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (ll == 0 || line[0] == '#')
            continue;
        char *tok[8];
        int nt = tokens(line, tok, (int)ARRAY_LEN(tok));
        if (nt < 0) {
            why = "malformed line";
            break;
        }
        if (nt == 0)
            continue;
        if (!header) {
            if (nt != 2 || strcmp(tok[0], "weir-state") != 0) {
                why = "not a weir state file (first line must be \"weir-state 1\")";
                break;
            }
            if (strcmp(tok[1], "1") != 0) {
                why = "unsupported state file version";
                break;
            }
            header = true;
            continue;
        }
        int64_t ts;
        if (strcmp(tok[0], "file") == 0 && nt == 3 && tok[1][0]) {
            state_map_set(&st->file, tok[1], tok[2], 0);
        } else if (strcmp(tok[0], "change") == 0 && nt == 4 && tok[2][0] &&
                   parse_ts(tok[1], &ts) == 0) {
            state_map_set(&st->changes, tok[2], tok[3], ts);
        } else if (strcmp(tok[0], "history") == 0 && nt == 3 &&
                   parse_ts(tok[1], &ts) == 0) {
            struct state_map empty;
            state_map_init(&empty);
            state_history_push(st, ts, tok[2], &empty);
        } else if (strcmp(tok[0], "extra") == 0 && nt == 3 && tok[1][0]) {
            state_map_set(&st->extra, tok[1], tok[2], 0);
        } else if (strcmp(tok[0], "was") == 0 && nt == 3 && tok[1][0] &&
                   st->n_hist > 0) {
            /* Collected as a diff; resolved against `file` below. */
            state_map_set(&st->hist[st->n_hist - 1].map, tok[1], tok[2], 0);
        } else if (strcmp(tok[0], "file") == 0 || strcmp(tok[0], "change") == 0 ||
                   strcmp(tok[0], "history") == 0 || strcmp(tok[0], "was") == 0 ||
                   strcmp(tok[0], "extra") == 0 || strcmp(tok[0], "weir-state") == 0) {
            why = "malformed line";
            break;
        }
        /* saved and unknown kinds: ignored. */
    }
    free(text);
    if (!why && !header)
        why = "empty state file";
    if (why) {
        snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
        state_dispose(st);
        return -1;
    }
    /* History entries: the file section with their `was` lines applied. */
    for (size_t h = 0; h < st->n_hist; h++) {
        struct state_map full;
        state_map_copy(&full, &st->file);
        const struct state_map *diff = &st->hist[h].map;
        for (size_t i = 0; i < diff->n; i++) {
            if (strcmp(diff->v[i].value, STATE_ABSENT) == 0)
                state_map_remove(&full, diff->v[i].key);
            else
                state_map_set(&full, diff->v[i].key, diff->v[i].value, 0);
        }
        state_map_dispose(&st->hist[h].map);
        st->hist[h].map = full;
    }
    return 0;
}
