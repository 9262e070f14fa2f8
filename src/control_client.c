/*
 * control_client.c — see control_client.h. send(2) with MSG_NOSIGNAL (a
 * closed socket is an error, not SIGPIPE), then poll(2)/recv(2) until a
 * newline or the deadline. Bytes after the first newline are dropped: one
 * command, one answer.
 */
#include "control_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int control_client_connect(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int control_client_exchange(int fd, const char *line, size_t len, int timeout_ms,
                            const char *path, struct json_buf *ans, char *err,
                            size_t errlen)
{
    json_buf_reset(ans);
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(err, errlen, "cannot send to %s: %s", path, strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    uint64_t deadline = util_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        char *nl = ans->len ? memchr(ans->p, '\n', ans->len) : NULL;
        if (nl) {
            ans->len = (size_t)(nl - ans->p);
            ans->p[ans->len] = '\0';
            return 0;
        }
        uint64_t now = util_now_ms();
        if (now >= deadline) {
            if (timeout_ms % 1000 == 0)
                snprintf(err, errlen, "no answer from %s within %d s", path,
                         timeout_ms / 1000);
            else
                snprintf(err, errlen, "no answer from %s within %d ms", path, timeout_ms);
            return -1;
        }
        uint64_t left = deadline - now;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
        if (pr <= 0)
            continue;
        char buf[65536];
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s closed the connection without an answer%s%s", path,
                     r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return -1;
        }
        if (ans->len + (size_t)r > CONTROL_CLIENT_ANSWER_MAX) {
            snprintf(err, errlen, "answer from %s too large", path);
            return -1;
        }
        json_buf_add(ans, buf, (size_t)r);
    }
}

int control_client_call(const char *path, const char *cmd, int timeout_ms,
                        struct json_buf *ans, char *err, size_t errlen)
{
    int fd = control_client_connect(path, err, errlen);
    if (fd < 0)
        return -1;
    struct json_buf line;
    json_buf_init(&line);
    json_buf_puts(&line, cmd);
    json_buf_add(&line, "\n", 1);
    int rc = control_client_exchange(fd, line.p, line.len, timeout_ms, path, ans, err,
                                     errlen);
    json_buf_dispose(&line);
    close(fd);
    return rc;
}
