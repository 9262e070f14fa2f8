/*
 * control_cmd.h — the control protocol's commands, separate from socket I/O
 * so they can be unit tested and shared: one table (name, arguments,
 * summary, mutating?) drives the server's dispatch, its `help` answer and
 * `weirctl help`.
 *
 * A command line is UTF-8 without control characters, words separated by
 * spaces or tabs; a double-quoted part keeps its spaces ("X-User-Id: 42"),
 * \" and \\ escape inside quotes. Any mutating command also takes
 * `if-generation=N` (compare-and-set: refused unless N is the current
 * generation). Every line gets exactly one JSON answer line:
 * {"ok":true,...} or {"ok":false,"error":"<human sentence>"}.
 *
 * Main thread (commands read and change the runtime state).
 */
#ifndef WEIR_CONTROL_CMD_H
#define WEIR_CONTROL_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "json.h"

#define CONTROL_LINE_MAX 4096 /* bytes per command line, newline excluded */
#define CONTROL_ARGS_MAX 128  /* words per command line */

/* Who sent a command (SO_PEERCRED), for the audit log. */
struct control_caller {
    bool known; /* false when credentials were unavailable (tests) */
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

struct control_ctx; /* one command being executed (control_ctx.h) */

struct control_cmd {
    const char *name;                    /* the command word */
    const char *args;                    /* argument synopsis, "" when none */
    const char *summary;                 /* one line for help */
    bool mutating;                       /* changes state: takes if-generation=N, is logged */
    int (*run)(struct control_ctx *ctx); /* 0 ok, -1 refused (ctx has the reason) */
};

/* The command table, in help order. */
extern const struct control_cmd control_cmd_table[];
extern const size_t control_cmd_count;

/*
 * Execute one command line (without its newline; any bytes, any length)
 * and append exactly one JSON answer line, newline included, to out.
 */
void control_cmd_execute(const char *line, size_t len,
                         const struct control_caller *caller,
                         struct json_buf *out);

/* Append the error answer line for msg (used by control.c for I/O-level refusals). */
void control_cmd_error_line(struct json_buf *out, const char *msg);

/*
 * Split a command line into words (quotes and escapes as above). Returns the
 * number of words (argv[i] point into *storage, which the caller frees),
 * or -1 with a reason in err.
 */
int control_cmd_split(const char *line, size_t len, char **argv, size_t max,
                      char **storage, char *err, size_t errlen) WUR;

/* Append arg to b as one word of a command line, quoting it when needed. */
void control_cmd_quote(struct json_buf *b, const char *arg);

#endif
