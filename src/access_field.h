/*
 * access_field.h — the names of the access log's JSON fields: one table
 * that the formatter (access_format.c) and the config's
 * `access_log.fields` (config_parse.c) both read. Pure; any thread.
 */
#ifndef WEIR_ACCESS_FIELD_H
#define WEIR_ACCESS_FIELD_H

/*
 * The JSON line's fields, in the default order: X(ID, "name").
 * One list, so the formatter can build its key strings at compile time.
 */
#define ACCESS_FIELDS(X)                                                                      \
    X(TIME, "time")             /* "2026-11-28T14:30:07.123Z" */                              \
    X(REQUEST_ID, "request_id") /* X-Request-Id as sent upstream */                           \
    X(CLIENT, "client")         /* client IP */                                               \
    X(CLIENT_PORT, "client_port")                                                             \
    X(METHOD, "method")                                                                       \
    X(HOST, "host") /* the Host field, null if none */                                        \
    X(TARGET, "target")                                                                       \
    X(PROTOCOL, "protocol") /* "HTTP/1.1" */                                                  \
    X(STATUS, "status")                                                                       \
    X(BYTES, "bytes")                   /* response body bytes sent */                        \
    X(BYTES_RECEIVED, "bytes_received") /* request bytes read: head + body */                 \
    X(VERSION, "version")                                                                     \
    X(ENDPOINT, "endpoint")                                                                   \
    X(ROUTE, "route")                                                                         \
    X(RULE, "rule")                                                                           \
    X(BUCKET, "bucket")                                                                       \
    X(UPSTREAM_MS, "upstream_ms")                 /* upstream start to first response byte */ \
    X(UPSTREAM_CONNECT_MS, "upstream_connect_ms") /* null on a reused pooled conn */          \
    X(DURATION_MS, "duration_ms")                                                             \
    X(RETRIES, "retries")                                                                     \
    X(USER_AGENT, "user_agent")                                                               \
    X(REFERER, "referer")                                                                     \
    X(ERROR, "error")                                                                         \
    X(TLS, "tls")   /* "TLSv1.3", null on a plain listener */                                 \
    X(SNI, "sni")   /* the server name the TLS client asked for, null if none */              \
    X(ALPN, "alpn") /* the protocol ALPN chose, null if none */

#define ACCESS_FIELD_ENUM(id, name) ACCESS_F_##id,
enum access_field {
    ACCESS_FIELDS(ACCESS_FIELD_ENUM) /* ACCESS_F_TIME = 0, ... in list order */
    ACCESS_F_COUNT,                  /* number of fields */
};
#undef ACCESS_FIELD_ENUM

/* The name of field f in the JSON line. */
const char *access_field_name(enum access_field f);

/* The field named name, or -1. */
int access_field_id(const char *name);

#endif
