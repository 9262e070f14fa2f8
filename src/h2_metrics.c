/*
 * h2_metrics.c — see h2_metrics.h.
 */
#include "h2_metrics.h"

#include <inttypes.h>
#include <stdatomic.h>

#include "json.h"

static _Atomic uint64_t connections, streams;
static _Atomic uint64_t goaways[H2_GA_COUNT];
static _Atomic uint64_t refused[H2_RF_COUNT];

static const char *const goaway_labels[H2_GA_COUNT] = {
    [H2_GA_IDLE] = "idle",
    [H2_GA_DRAIN] = "drain",
    [H2_GA_PROTOCOL] = "protocol",
    [H2_GA_RAPID_RESET] = "rapid_reset",
    [H2_GA_CONTINUATION] = "continuation_flood",
    [H2_GA_HPACK_BOMB] = "hpack_bomb",
    [H2_GA_SETTINGS] = "settings_flood",
    [H2_GA_PING] = "ping_flood",
    [H2_GA_EMPTY_FRAMES] = "empty_frames",
    [H2_GA_REFUSED] = "refused_streams",
    [H2_GA_STALL] = "stall",
    [H2_GA_HEADER_TIMEOUT] = "header_timeout",
};

static const char *const refuse_labels[H2_RF_COUNT] = {
    [H2_RF_MAX_CONCURRENT] = "max_concurrent",
    [H2_RF_HEADER_LIST] = "header_list",
};

static void bump(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void h2_metrics_connection(void)
{
    bump(&connections);
}

void h2_metrics_stream(void)
{
    bump(&streams);
}

void h2_metrics_goaway(enum h2_goaway_reason r)
{
    bump(&goaways[r]);
}

void h2_metrics_refused(enum h2_refuse_reason r)
{
    bump(&refused[r]);
}

const char *h2_metrics_goaway_label(enum h2_goaway_reason r)
{
    return goaway_labels[r];
}

static uint64_t get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void h2_metrics_render(struct json_buf *out)
{
    json_buf_puts(out, "# HELP weir_h2_connections_total HTTP/2 client connections accepted.\n"
                       "# TYPE weir_h2_connections_total counter\n");
    json_buf_printf(out, "weir_h2_connections_total %" PRIu64 "\n", get(&connections));
    json_buf_puts(out, "# HELP weir_h2_streams_total HTTP/2 request streams opened by clients.\n"
                       "# TYPE weir_h2_streams_total counter\n");
    json_buf_printf(out, "weir_h2_streams_total %" PRIu64 "\n", get(&streams));
    json_buf_puts(out, "# HELP weir_h2_goaway_total GOAWAY frames weir sent to clients, by reason.\n"
                       "# TYPE weir_h2_goaway_total counter\n");
    for (int i = 0; i < H2_GA_COUNT; i++)
        json_buf_printf(out, "weir_h2_goaway_total{reason=\"%s\"} %" PRIu64 "\n",
                        goaway_labels[i], get(&goaways[i]));
    json_buf_puts(out, "# HELP weir_h2_streams_refused_total HTTP/2 streams weir refused, by reason.\n"
                       "# TYPE weir_h2_streams_refused_total counter\n");
    for (int i = 0; i < H2_RF_COUNT; i++)
        json_buf_printf(out, "weir_h2_streams_refused_total{reason=\"%s\"} %" PRIu64 "\n",
                        refuse_labels[i], get(&refused[i]));
}
