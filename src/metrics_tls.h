/*
 * metrics_tls.h — the listeners' and TLS's Prometheus families:
 * weir_listener_connections{listener,protocol} (open client connections
 * by listener), weir_tls_handshakes_total{listener,result} (conn_tls.h's
 * results), weir_tls_certificate_reloads_total and
 * weir_tls_certificate_errors_total (tls_store.h).
 */
#ifndef WEIR_METRICS_TLS_H
#define WEIR_METRICS_TLS_H

#include "json.h"
#include "snapshot.h"

void metrics_tls_render(struct json_buf *out, const struct snapshot *s);

#endif
