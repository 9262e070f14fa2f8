/*
 * events.c — see events.h. One sink; a line is built once per event.
 */
#include "events.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "state.h"

static events_sink_cb sink_fn;
static void *sink_arg;

void events_set_sink(events_sink_cb sink, void *arg)
{
    sink_fn = sink;
    sink_arg = arg;
}

void events_publish(const char *kind, uint64_t gen, const char *members)
{
    if (!sink_fn)
        return;
    char when[64];
    state_format_time(state_now_ms(), when, sizeof(when));
    struct json_buf b;
    json_buf_init(&b);
    json_buf_puts(&b, "{\"time\":");
    json_buf_str(&b, when);
    json_buf_puts(&b, ",\"event\":");
    json_buf_str(&b, kind);
    json_buf_printf(&b, ",\"generation\":%llu", (unsigned long long)gen);
    if (members)
        json_buf_puts(&b, members);
    json_buf_puts(&b, "}\n");
    sink_fn(b.p, b.len, sink_arg);
    json_buf_dispose(&b);
}

const char *events_members(char *buf, size_t buflen, ...)
{
    struct json_buf b;
    json_buf_init(&b);
    va_list ap;
    va_start(ap, buflen);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        json_buf_puts(&b, ",");
        json_buf_key(&b, k);
        if (v)
            json_buf_str(&b, v);
        else
            json_buf_puts(&b, "null");
    }
    va_end(ap);
    snprintf(buf, buflen, "%s", b.len ? b.p : "");
    json_buf_dispose(&b);
    return buf;
}
