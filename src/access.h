/*
 * access.h — the access log: one line per finished txn (JSON lines by
 * default, or combined log format), to stdout or a file, off if asked.
 */
#ifndef WEIR_ACCESS_H
#define WEIR_ACCESS_H

#include <stdint.h>
#include <sys/socket.h>

#include "router.h"
#include "util.h"

struct worker;
struct config;

struct access_entry {
    const struct sockaddr *client;
    struct strview method;
    struct strview target;
    int status;            /* 0 = none sent */
    uint64_t bytes;        /* response body bytes sent */
    const char *version;   /* NULL = not routed */
    const char *endpoint;  /* NULL = none */
    enum route_reason reason;
    int rule;
    int32_t bucket;
    uint64_t upstream_us;  /* to the first response byte */
    uint64_t total_us;
    unsigned retries;
    const char *error;     /* weir's reason, NULL if none */
};

/* Apply the access_log settings of cfg (open/close the file). Main thread. */
int access_configure(const struct config *cfg) WUR;

/* Log one txn. Worker thread; never blocks on the output. */
void access_log_txn(struct worker *w, const struct access_entry *e);

/* Reopen the log file (SIGUSR1). Main thread. */
void access_reopen(void);

/* Flush and stop. Main thread, after workers stopped. */
void access_shutdown(void);

#endif
