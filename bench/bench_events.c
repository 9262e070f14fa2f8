/*
 * bench_events.c — see bench_events.h.
 *
 * The reader blocks in read() on the stream socket; stop shuts the socket
 * down, which ends that read, and joins. Times are taken when a line
 * arrives (CLOCK_MONOTONIC, as the load's t0), so an event's offset is at
 * most one read late: weir writes each event when it happens.
 */
#include "bench_events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "json.h"
#include "util.h"

struct raw_event {
    uint64_t t_ns;
    char line[1024]; /* the event line, cut at this length */
};

struct bench_events {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    struct raw_event ev[BENCH_EVENTS_MAX]; /* under lock */
    size_t n;                              /* under lock */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int bench_events_parse(const char *line, size_t len, uint64_t t_ns, uint64_t t0_ns,
                       struct bench_event *ev)
{
    char err[128];
    struct json_value *v = json_parse(line, len, err, sizeof(err));
    const char *name = v ? json_get_str(v, "event", NULL) : NULL;
    if (!v || v->type != JSON_T_OBJECT || !name) {
        json_free(v);
        return -1;
    }
    memset(ev, 0, sizeof(*ev));
    ev->at_s = ((double)t_ns - (double)t0_ns) / 1e9;
    copy_str(ev->event, sizeof(ev->event), name);
    copy_str(ev->version, sizeof(ev->version), json_get_str(v, "version", NULL));
    ev->generation = (uint64_t)json_get_num(v, "generation", 0);
    const char *reason = json_get_str(v, "reason", NULL);
    if (strcmp(name, "guard") == 0)
        snprintf(ev->what, sizeof(ev->what), "guard %s %s (%s): %s", ev->version,
                 json_get_str(v, "verdict", "?"), json_get_str(v, "action", "?"),
                 reason ? reason : "");
    else if (strcmp(name, "rollout") == 0)
        snprintf(ev->what, sizeof(ev->what), "rollout %s %s, step %s at %s%%%s%s", ev->version,
                 json_get_str(v, "state", "?"), json_get_str(v, "step", "?"),
                 json_get_str(v, "percent", "?"), reason ? ": " : "", reason ? reason : "");
    else
        snprintf(ev->what, sizeof(ev->what), "%s%s%s", json_get_str(v, "what", name),
                 json_get_str(v, "change", NULL) ? ": " : "",
                 json_get_str(v, "change", ""));
    json_free(v);
    return 0;
}

static void *on_thread(void *arg)
{
    struct bench_events *e = arg;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(e->fd, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0)
            return NULL;
        have += (size_t)r;
        uint64_t t = now_ns();
        char *nl;
        while ((nl = memchr(buf, '\n', have)) != NULL) {
            size_t l = (size_t)(nl - buf);
            pthread_mutex_lock(&e->lock);
            if (e->n < BENCH_EVENTS_MAX) {
                struct raw_event *re = &e->ev[e->n++];
                re->t_ns = t;
                size_t c = l < sizeof(re->line) - 1 ? l : sizeof(re->line) - 1;
                memcpy(re->line, buf, c);
                re->line[c] = '\0';
            }
            pthread_mutex_unlock(&e->lock);
            memmove(buf, nl + 1, have - l - 1);
            have -= l + 1;
        }
        if (have == sizeof(buf) - 1)
            have = 0; /* a line longer than the buffer: drop it */
    }
}

struct bench_events *bench_events_start(const char *path, char *err, size_t errlen)
{
    int fd = control_client_connect(path, err, errlen);
    if (fd < 0)
        return NULL;
    static const char cmd[] = "events\n";
    if (write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)(sizeof(cmd) - 1)) {
        snprintf(err, errlen, "cannot send to %s", path);
        close(fd);
        return NULL;
    }
    struct bench_events *e = xcalloc(1, sizeof(*e));
    e->fd = fd;
    pthread_mutex_init(&e->lock, NULL);
    if (pthread_create(&e->thread, NULL, on_thread, e) != 0) {
        snprintf(err, errlen, "cannot start the event reader");
        pthread_mutex_destroy(&e->lock);
        close(fd);
        free(e);
        return NULL;
    }
    return e;
}

void bench_events_stop(struct bench_events *e, uint64_t t0_ns, struct bench_event **out,
                       size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!e)
        return;
    shutdown(e->fd, SHUT_RDWR);
    pthread_join(e->thread, NULL);
    close(e->fd);
    if (e->n) {
        *out = xcalloc(e->n, sizeof(**out));
        for (size_t i = 0; i < e->n; i++)
            if (bench_events_parse(e->ev[i].line, strlen(e->ev[i].line), e->ev[i].t_ns, t0_ns,
                                   &(*out)[*n]) == 0)
                (*n)++;
    }
    pthread_mutex_destroy(&e->lock);
    free(e);
}
