/*
 * control_view.h — renderers of the control socket's read-only views into
 * a JSON buffer (control_view.c). They append object members, not whole
 * documents: the caller owns the surrounding {"ok":true ...}. Main thread
 * (they read the runtime state).
 */
#ifndef WEIR_CONTROL_VIEW_H
#define WEIR_CONTROL_VIEW_H

#include "json.h"

struct config;
struct snapshot;

/* Append "split":{"v1":90,"v2":10} for cfg (every version, config order). */
void control_view_render_split(struct json_buf *b, const struct config *cfg);

/* Append the members of the `status` answer after "ok" (",\"generation\":N,
 * \"split\":...,\"versions\":...,...") for snapshot s (borrowed). */
void control_view_render_status(struct json_buf *b, const struct snapshot *s);

#endif
