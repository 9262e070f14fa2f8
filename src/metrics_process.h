/*
 * metrics_process.h — the process_* metrics as the Prometheus client
 * libraries export them (client_golang's process collector, client_python's
 * ProcessCollector), so dashboards and alerts written for any exporter work
 * on weir: process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds.
 */
#ifndef WEIR_METRICS_PROCESS_H
#define WEIR_METRICS_PROCESS_H

#include "json.h"

/* Append the process_* families (read from /proc/self now) to out. A value
 * that cannot be read is left out with its family. Main thread. */
void metrics_process_render(struct json_buf *out);

#endif
