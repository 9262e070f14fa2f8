/*
 * metrics_tls.c — see metrics_tls.h.
 */
#include "metrics_tls.h"

#include <inttypes.h>

#include "client.h"
#include "conn_tls.h"
#include "tls_store.h"

static void labels(struct json_buf *out, const char *name, const struct config_listener *l)
{
    json_buf_puts(out, name);
    json_buf_puts(out, "{listener=\"");
    /* an address util_parse_addr took: no quote, backslash or newline to escape */
    json_buf_puts(out, l->address);
    json_buf_puts(out, "\"");
}

void metrics_tls_render(struct json_buf *out, const struct snapshot *s)
{
    const struct config *cfg = s->cfg;
    json_buf_puts(out, "# HELP weir_listener_connections Open client connections by listener.\n"
                       "# TYPE weir_listener_connections gauge\n");
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        labels(out, "weir_listener_connections", &cfg->listeners[i]);
        json_buf_printf(out, ",protocol=\"%s\"} %u\n",
                        cfg->listeners[i].tls.enabled ? "https" : "http",
                        client_open_count_on((unsigned)i));
    }
    json_buf_puts(out, "# HELP weir_tls_handshakes_total TLS handshakes on a listener by "
                       "result.\n# TYPE weir_tls_handshakes_total counter\n");
    for (size_t i = 0; i < cfg->n_listeners && i < CONN_TLS_MAX_LISTENERS; i++) {
        if (!cfg->listeners[i].tls.enabled)
            continue;
        for (int r = 0; r < CONN_TLS_N_RESULTS; r++) {
            labels(out, "weir_tls_handshakes_total", &cfg->listeners[i]);
            json_buf_printf(out, ",result=\"%s\"} %" PRIu64 "\n",
                            conn_tls_result_name((enum conn_tls_result)r),
                            conn_tls_count((unsigned)i, (enum conn_tls_result)r));
        }
    }
    json_buf_printf(out,
                    "# HELP weir_tls_certificate_reloads_total Certificate sets loaded after "
                    "the first (reload or files changed).\n"
                    "# TYPE weir_tls_certificate_reloads_total counter\n"
                    "weir_tls_certificate_reloads_total %lu\n"
                    "# HELP weir_tls_certificate_errors_total New certificate sets refused "
                    "(the previous one stayed).\n"
                    "# TYPE weir_tls_certificate_errors_total counter\n"
                    "weir_tls_certificate_errors_total %lu\n",
                    tls_store_reloads(), tls_store_failures());
}
