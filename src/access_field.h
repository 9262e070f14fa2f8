/*
 * access_field.h — the names of the access log's JSON fields: one table
 * that the formatter (access_format.c) and the config's
 * `access_log.fields` (config_parse.c) both read. Pure; any thread.
 */
#ifndef WEIR_ACCESS_FIELD_H
#define WEIR_ACCESS_FIELD_H

/* The JSON line's fields, in the default order. */
enum access_field {
    ACCESS_F_TIME = 0,            /* "2026-11-28T14:30:07.123Z" */
    ACCESS_F_REQUEST_ID,          /* X-Request-Id as sent upstream, null if none */
    ACCESS_F_CLIENT,              /* client IP */
    ACCESS_F_CLIENT_PORT,
    ACCESS_F_METHOD,
    ACCESS_F_HOST,                /* the request's Host field, null if none */
    ACCESS_F_TARGET,
    ACCESS_F_PROTOCOL,            /* "HTTP/1.1" */
    ACCESS_F_STATUS,
    ACCESS_F_BYTES,               /* response body bytes sent */
    ACCESS_F_BYTES_RECEIVED,      /* request bytes read: head + body */
    ACCESS_F_VERSION,
    ACCESS_F_ENDPOINT,
    ACCESS_F_ROUTE,
    ACCESS_F_RULE,
    ACCESS_F_BUCKET,
    ACCESS_F_UPSTREAM_MS,         /* upstream start (connect included) to first response byte */
    ACCESS_F_UPSTREAM_CONNECT_MS, /* connect time, null when a pooled conn was reused */
    ACCESS_F_DURATION_MS,
    ACCESS_F_RETRIES,
    ACCESS_F_USER_AGENT,
    ACCESS_F_REFERER,
    ACCESS_F_ERROR,
    ACCESS_F_COUNT,
};

/* The name of field f in the JSON line. */
const char *access_field_name(enum access_field f);

/* The field named name, or -1. */
int access_field_id(const char *name);

#endif
