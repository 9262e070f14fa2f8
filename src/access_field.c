/*
 * access_field.c — see access_field.h.
 */
#include "access_field.h"

#include <string.h>

static const char *const field_names[ACCESS_F_COUNT] = {
    [ACCESS_F_TIME] = "time",
    [ACCESS_F_REQUEST_ID] = "request_id",
    [ACCESS_F_CLIENT] = "client",
    [ACCESS_F_CLIENT_PORT] = "client_port",
    [ACCESS_F_METHOD] = "method",
    [ACCESS_F_HOST] = "host",
    [ACCESS_F_TARGET] = "target",
    [ACCESS_F_PROTOCOL] = "protocol",
    [ACCESS_F_STATUS] = "status",
    [ACCESS_F_BYTES] = "bytes",
    [ACCESS_F_BYTES_RECEIVED] = "bytes_received",
    [ACCESS_F_VERSION] = "version",
    [ACCESS_F_ENDPOINT] = "endpoint",
    [ACCESS_F_ROUTE] = "route",
    [ACCESS_F_RULE] = "rule",
    [ACCESS_F_BUCKET] = "bucket",
    [ACCESS_F_UPSTREAM_MS] = "upstream_ms",
    [ACCESS_F_UPSTREAM_CONNECT_MS] = "upstream_connect_ms",
    [ACCESS_F_DURATION_MS] = "duration_ms",
    [ACCESS_F_RETRIES] = "retries",
    [ACCESS_F_USER_AGENT] = "user_agent",
    [ACCESS_F_REFERER] = "referer",
    [ACCESS_F_ERROR] = "error",
};

const char *access_field_name(enum access_field f)
{
    return (unsigned)f < ACCESS_F_COUNT ? field_names[f] : "?";
}

int access_field_id(const char *name)
{
    for (int i = 0; i < ACCESS_F_COUNT; i++)
        if (strcmp(field_names[i], name) == 0)
            return i;
    return -1;
}
