/*
 * control_ctx.h — what a control command's handler runs with: its words,
 * the answer being built, the refusal reason, the result of an applied
 * change. Internal to the control commands (control_cmd.c dispatches,
 * control_view.c and control_edit.c hold the handlers); main thread.
 */
#ifndef WEIR_CONTROL_CTX_H
#define WEIR_CONTROL_CTX_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "json.h"
#include "runtime.h"

struct control_cmd;
struct control_caller;

struct control_ctx {
    const struct control_cmd *cmd; /* borrowed: the table row */
    const char *name;              /* borrowed: the row's command word */
    const char *args;              /* borrowed: the row's argument synopsis */
    char **argv;                   /* borrowed: arguments after the command word */
    size_t argc;
    const char *line;                    /* borrowed: the whole validated line */
    const struct control_caller *caller; /* borrowed */
    struct json_buf *out;                /* borrowed: answer members after {"ok":true */
    char err[1024];
    struct runtime_result res;
    bool applied; /* res holds an applied runtime change (or, with
                   * opts.dry_run, the one that would be) */
    bool usage;   /* the refusal is a usage error (unknown command, wrong
                   * arguments): the answer says "usage":true */
    /* force=1 / dry-run=1 of a changing command (control_cmd.c takes them
     * off the words); handlers pass &ctx->opts to runtime_edit_opts and the
     * other *_opts functions, so every change made by hand is checked by
     * availability.c's rule and can be previewed. */
    struct runtime_opts opts;
};

/* Refuse the command with a human sentence; returns -1 (the handler's result). */
static inline int control_ctx_fail(struct control_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int control_ctx_fail(struct control_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    return -1;
}

/* Refuse with the command's synopsis ("usage: split VERSION=PERCENT..."). */
static inline int control_ctx_usage(struct control_ctx *ctx)
{
    ctx->usage = true;
    return control_ctx_fail(ctx, "usage: %s%s%s", ctx->name, ctx->args[0] ? " " : "",
                            ctx->args);
}

/* Handlers of control_cmd_table: 0 done (ctx->out has the answer members),
 * -1 refused (ctx->err has the reason). */
int control_view_status(struct control_ctx *ctx);
int control_view_explain(struct control_ctx *ctx);
int control_view_history(struct control_ctx *ctx);
int control_view_guard(struct control_ctx *ctx);
int control_view_fleet(struct control_ctx *ctx);
int control_view_events(struct control_ctx *ctx);
int control_edit_split(struct control_ctx *ctx);
int control_edit_flip(struct control_ctx *ctx);
int control_edit_rollback(struct control_ctx *ctx);
int control_edit_rollout(struct control_ctx *ctx);
int control_edit_mirror(struct control_ctx *ctx);
int control_edit_reload(struct control_ctx *ctx);
int control_edit_drain(struct control_ctx *ctx);
int control_edit_undrain(struct control_ctx *ctx);
int control_edit_add_endpoint(struct control_ctx *ctx);
int control_edit_remove_endpoint(struct control_ctx *ctx);
int control_edit_add_rule(struct control_ctx *ctx);
int control_edit_remove_rule(struct control_ctx *ctx);

#endif
