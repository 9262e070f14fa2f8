/*
 * fleet_key.c — see fleet_key.h. Who may touch the key: writable by group
 * or others is refused (anyone could make this replica trust them);
 * readable by others than the owner (and its group when root owns it, as a
 * Kubernetes Secret volume with fsGroup has it, root:fsGroup 0440;
 * PostgreSQL's rule for its ssl_key_file) is started with a warning, as
 * nginx and HAProxy do with their keys; ssh's refusal would stop a fleet
 * over a umask.
 */
#include "fleet_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleet_msg.h"

ssize_t fleet_key_read(const char *path, uint8_t *key, size_t cap, char *why, size_t why_len,
                       char *warn, size_t warn_len)
{
    warn[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, why_len, "cannot read key_file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "key_file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 022) {
        snprintf(why, why_len, "key_file %s is writable by group or others (mode %04o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    size_t w = 0;
    if ((st.st_mode & 004) || ((st.st_mode & 040) && st.st_uid != 0)) {
        int k = snprintf(warn, warn_len,
                         "key_file %s is readable by others (mode %04o, owner uid %u): anyone "
                         "who reads it can speak for this fleet; chmod 600 it (a root-owned "
                         "file may be 0640)",
                         path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        w = k < 0 ? 0 : (size_t)k < warn_len ? (size_t)k
                                             : warn_len - 1;
    }
    ssize_t n = read(fd, key, cap);
    char extra;
    bool more = n == (ssize_t)cap && read(fd, &extra, 1) == 1;
    int err = errno;
    close(fd);
    if (n < 0 || more) {
        snprintf(why, why_len, "key_file %s: %s", path,
                 n < 0 ? strerror(err) : "larger than the 4096 bytes a key may have");
        return -1;
    }
    /* Trailing white space (the newline of `echo ... > key`) is not key. */
    while (n > 0 &&
           (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' ' || key[n - 1] == '\t'))
        n--;
    if (n == 0) {
        snprintf(why, why_len, "key_file %s is empty (make one with openssl rand -hex 32)", path);
        return -1;
    }
    if ((size_t)n < FLEET_KEY_MIN_BYTES)
        snprintf(warn + w, warn_len - w,
                 "%skey_file %s holds only %zd bytes, easy to guess; use at least %u "
                 "(openssl rand -hex 32)",
                 w ? "; " : "", path, n, FLEET_KEY_MIN_BYTES);
    return n;
}
