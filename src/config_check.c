/*
 * config_check.c — see config_check.h.
 *
 * The access log: an existing file must open for appending (O_WRONLY |
 * O_APPEND, no O_CREAT); a missing one must be creatable, which is tried
 * (O_CREAT | O_EXCL, then removed: permission bits alone do not tell for
 * root, read-only mounts or /proc), as access.c's open(O_CREAT) needs. The control
 * socket: control.c creates missing parent directories and replaces a
 * stale socket, but refuses a path that exists and is not a socket, a
 * parent that cannot be created (a component is a file, or not writable),
 * and an unknown control_owner or control_group. Errors say what start-up
 * would say, at the value's position. The fleet's key_file (when peers are
 * set): what fleet.c's start-up refuses (fleet_key.c, one rule for both).
 */
#include "config_check.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleet_key.h"
#include "fleet_msg.h"
#include "tls_ctx.h"

/* The directory part of path into dir ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

static void check_access_log(const struct config *cfg, struct config_errors *errs)
{
    const struct config_access_log *al = &cfg->access_log;
    if (!al->enabled || !al->path)
        return;
    int fd = open(al->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
            config_errors_add(errs, al->path_pos, "access log \"%s\" cannot be opened: "
                                                  "it is a directory",
                              al->path);
        close(fd);
        return;
    }
    int err = errno;
    if (err != ENOENT) {
        config_errors_add(errs, al->path_pos, "access log \"%s\" cannot be opened: %s",
                          al->path, strerror(err));
        return;
    }
    char dir[4096];
    dir_of(al->path, dir, sizeof(dir));
    struct stat st;
    if (stat(dir, &st) < 0) {
        config_errors_add(errs, al->path_pos, "access log \"%s\" cannot be created: "
                                              "directory \"%s\": %s",
                          al->path, dir, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        config_errors_add(errs, al->path_pos, "access log \"%s\" cannot be created: "
                                              "\"%s\" is not a directory",
                          al->path, dir);
        return;
    }
    /* Permission bits do not tell (root, read-only mounts, /proc): create
     * it as start-up would, then remove it again. */
    fd = open(al->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
        if (errno != EEXIST) /* appeared meanwhile: it exists, start-up will open it */
            config_errors_add(errs, al->path_pos, "access log \"%s\" cannot be created in "
                                                  "\"%s\": %s",
                              al->path, dir, strerror(errno));
        return;
    }
    close(fd);
    unlink(al->path);
}

static void check_control(const struct config *cfg, struct config_errors *errs)
{
    const char *path = cfg->control;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            config_errors_add(errs, cfg->control_pos, "control socket \"%s\": the path "
                                                      "exists and is not a socket (start-up refuses to replace it)",
                              path);
        return; /* a socket: stale ones are replaced, live ones found at start */
    }
    /* The nearest existing ancestor must be a directory weir can write in
     * (control.c creates the rest). */
    char dir[4096];
    dir_of(path, dir, sizeof(dir));
    for (;;) {
        if (stat(dir, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                config_errors_add(errs, cfg->control_pos, "control socket \"%s\": \"%s\" "
                                                          "is not a directory",
                                  path, dir);
            else if (access(dir, W_OK | X_OK) < 0)
                config_errors_add(errs, cfg->control_pos, "control socket \"%s\": cannot "
                                                          "create it in \"%s\": %s",
                                  path, dir, strerror(errno));
            return;
        }
        if (errno != ENOENT) {
            config_errors_add(errs, cfg->control_pos, "control socket \"%s\": \"%s\": %s",
                              path, dir, strerror(errno));
            return;
        }
        if (strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0)
            return;
        char up[4096];
        dir_of(dir, up, sizeof(up));
        snprintf(dir, sizeof(dir), "%s", up);
    }
}

/* A name or a number; numbers are taken as they are (control.c does too). */
static bool is_number(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void check_owner(const struct config *cfg, struct config_errors *errs)
{
    char buf[4096];
    if (cfg->control_owner && !is_number(cfg->control_owner)) {
        struct passwd pw, *res = NULL;
        if (getpwnam_r(cfg->control_owner, &pw, buf, sizeof(buf), &res) != 0 || !res)
            config_errors_add(errs, cfg->control_owner_pos, "control_owner: unknown user "
                                                            "\"%s\"",
                              cfg->control_owner);
    }
    if (cfg->control_group && !is_number(cfg->control_group)) {
        struct group gr, *res = NULL;
        if (getgrnam_r(cfg->control_group, &gr, buf, sizeof(buf), &res) != 0 || !res)
            config_errors_add(errs, cfg->control_group_pos, "control_group: unknown group "
                                                            "\"%s\"",
                              cfg->control_group);
    }
}

static void check_fleet_key(const struct config *cfg, struct config_errors *errs)
{
    if (!cfg->fleet.n_peers || !cfg->fleet.key_file)
        return;
    uint8_t key[FLEET_KEY_MAX_BYTES];
    char why[512], warn[1024];
    ssize_t n = fleet_key_read(cfg->fleet.key_file, key, sizeof(key), why, sizeof(why), warn,
                               sizeof(warn));
    explicit_bzero(key, sizeof(key));
    if (n < 0)
        config_errors_add(errs, cfg->fleet.pos, "fleet: %s", why);
}

/* Every certificate/key pair as start-up loads it (tls_ctx.c): readable,
 * matching, valid now; then the whole set (OCSP staples, upstream CAs). */
static void check_tls(const struct config *cfg, struct config_errors *errs)
{
    char why[512];
    size_t before = errs->n;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listen_tls *t = &cfg->listeners[i].tls;
        if (!t->enabled)
            continue;
        if (tls_ctx_check_pair(t->cert, t->key, why, sizeof(why)) < 0)
            config_errors_add(errs, t->pos, "listener %s: %s", cfg->listeners[i].address, why);
        for (size_t j = 0; j < t->n_sni; j++)
            if (tls_ctx_check_pair(t->sni[j].cert, t->sni[j].key, why, sizeof(why)) < 0)
                config_errors_add(errs, t->sni[j].pos, "listener %s: sni: %s",
                                  cfg->listeners[i].address, why);
    }
    if (errs->n != before)
        return;
    struct config_pos at;
    struct tls_set *s = tls_set_build(cfg, &at, why, sizeof(why));
    if (!s)
        config_errors_add(errs, at, "%s", why);
    tls_set_unref(s);
}

int config_check_environment(const struct config *cfg, struct config_errors *errs)
{
    size_t before = errs->n;
    check_access_log(cfg, errs);
    check_control(cfg, errs);
    check_owner(cfg, errs);
    check_fleet_key(cfg, errs);
    check_tls(cfg, errs);
    return errs->n == before ? 0 : -1;
}
