/*
 * control_cmd.c — see control_cmd.h. Parsing and execution of control
 * commands; no sockets here (control.c feeds lines in and writes answers
 * out).
 *
 * This file is the dispatch: the command table (name, arguments, help,
 * handler), lines and words, if-generation, the answer envelope and the
 * audit log, plus help and version. The handlers live in control_view.c
 * (read-only: status, explain, history) and control_edit.c (changes).
 *
 * Flow of one line: validate bytes (UTF-8, no control characters) → split
 * into words → look the command up in control_cmd_table → pull out
 * if-generation=N (mutating commands only) and compare it → run the handler.
 * A mutating handler goes through runtime_edit(); the answer is built only
 * after the new snapshot is published, so a client that reads the answer
 * knows every later request sees the change.
 */
#include "control_cmd.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control_ctx.h"
#include "control_view.h"
#include "log.h"
#include "runtime.h"
#include "snapshot.h"

#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

/* ---- help / version ---------------------------------------------------- */

static int cmd_help(struct control_ctx *ctx)
{
    struct json_buf *b = ctx->out;
    json_buf_puts(b, ",\"commands\":[");
    for (size_t i = 0; i < control_cmd_count; i++) {
        const struct control_cmd *c = &control_cmd_table[i];
        char usage_s[256];
        snprintf(usage_s, sizeof(usage_s), "%s%s%s", c->name, c->args[0] ? " " : "",
                 c->args);
        if (i)
            json_buf_puts(b, ",");
        json_buf_puts(b, "{\"name\":");
        json_buf_str(b, c->name);
        json_buf_puts(b, ",\"usage\":");
        json_buf_str(b, usage_s);
        json_buf_puts(b, ",\"summary\":");
        json_buf_str(b, c->summary);
        json_buf_printf(b, ",\"mutating\":%s}", c->mutating ? "true" : "false");
    }
    json_buf_puts(b, "],\"note\":");
    json_buf_str(b, "commands that change something also take if-generation=N "
                    "(refused unless N is the current generation), dry-run=1 (show what "
                    "would change, change nothing) and force=1 (apply even a change that "
                    "gives a share to a version with no available endpoint)");
    return 0;
}

static int cmd_version(struct control_ctx *ctx)
{
    if (ctx->argc)
        return control_ctx_usage(ctx);
    json_buf_puts(ctx->out, ",\"version\":");
    json_buf_str(ctx->out, WEIR_VERSION);
    return 0;
}

/* ---- the table --------------------------------------------------------- */

/* clang-format off */
const struct control_cmd control_cmd_table[] = {
    {"status", "", "show the generation, the split, every version's endpoints "
     "(health, draining, in-flight requests), rules and runtime changes", false,
     control_view_status},
    {"split", "VERSION=PERCENT...", "set the split atomically; must sum to 100, "
     "at most two decimals; versions left out get 0", true, control_edit_split},
    {"flip", "VERSION", "blue/green: VERSION gets 100 %, every other version 0", true,
     control_edit_flip},
    {"rollback", "", "undo the last change (repeat to walk further back)", true,
     control_edit_rollback},
    {"rollout", "[start VERSION steps=P,P,... hold=DUR | pause | resume | promote | abort]",
     "progressive rollout: show it, or start one (step 1 at once, each next after the "
     "hold on the guard's pass), pause, resume, promote (100 % now) or abort (back to "
     "the split before the start)", true, control_edit_rollout},
    {"reload", "", "re-read the config file; on any error the running config stays",
     true, control_edit_reload},
    {"drain", "VERSION ADDRESS", "stop sending new requests to an endpoint; "
     "in-flight requests finish (status shows how many)", true, control_edit_drain},
    {"undrain", "VERSION ADDRESS", "let a drained endpoint take new requests again",
     true, control_edit_undrain},
    {"add-endpoint", "VERSION ADDRESS [weight=N]", "add an endpoint to a version", true,
     control_edit_add_endpoint},
    {"remove-endpoint", "VERSION ADDRESS", "remove an endpoint; in-flight requests "
     "finish", true, control_edit_remove_endpoint},
    {"add-rule", "header=NAME|cookie=NAME [value=VALUE] version=VERSION [at=INDEX]",
     "route requests whose header (or cookie) matches to VERSION; without value= a "
     "header rule matches when the header is present", true, control_edit_add_rule},
    {"remove-rule", "INDEX", "remove the rule with this index (as shown by status)",
     true, control_edit_remove_rule},
    {"explain", "[METHOD] [PATH] [Name: value]...", "which version a request would go "
     "to, and why (rule, sticky bucket or split)", false, control_view_explain},
    {"history", "", "the changes rollback would undo, newest first", false,
     control_view_history},
    {"events", "", "follow what changes, one JSON line per event (change, guard, rollout, "
     "reload, fleet) until the client closes; on a connection of its own", false,
     control_view_events},
    {"guard", "", "the release guard: per judged version its verdict (hold, pass, "
     "fail), requests, error rates and latency beside the baseline's, and why", false,
     control_view_guard},
    {"fleet", "", "the fleet: this replica, and per peer its address, when it was last "
     "heard, the rollout state and generation it reported, and refused messages", false,
     control_view_fleet},
    {"mirror", "[set version=VERSION percent=PERCENT | off]",
     "dark launch: show the mirror's counts (match, differ, error, dropped) and the last "
     "differences, or set the shadow version and the share of requests copied to it, "
     "or turn it off", true, control_edit_mirror},
    {"version", "", "the weir version", false, cmd_version},
    {"help", "", "list the commands", false, cmd_help},
};
/* clang-format on */

const size_t control_cmd_count = ARRAY_LEN(control_cmd_table);

/* ---- lines, words ------------------------------------------------------ */

int control_cmd_split(const char *line, size_t len, char **argv, size_t max,
                      char **storage, char *err, size_t errlen)
{
    char *buf = xmalloc(len + 1);
    *storage = buf;
    size_t o = 0, n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            break;
        if (n == max) {
            snprintf(err, errlen, "too many words (at most %zu)", max);
            return -1;
        }
        argv[n++] = buf + o;
        bool quoted = false;
        while (i < len && (quoted || (line[i] != ' ' && line[i] != '\t'))) {
            char c = line[i++];
            if (c == '"') {
                quoted = !quoted;
            } else if (quoted && c == '\\' && i < len &&
                       (line[i] == '"' || line[i] == '\\')) {
                buf[o++] = line[i++];
            } else {
                buf[o++] = c;
            }
        }
        if (quoted) {
            snprintf(err, errlen, "unterminated quote");
            return -1;
        }
        buf[o++] = '\0';
    }
    return (int)n;
}

void control_cmd_quote(struct json_buf *b, const char *arg)
{
    bool plain = arg[0] != '\0';
    for (const char *p = arg; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '"')
            plain = false;
    if (plain) {
        json_buf_puts(b, arg);
        return;
    }
    json_buf_puts(b, "\"");
    for (const char *p = arg; *p; p++) {
        if (*p == '"' || *p == '\\')
            json_buf_puts(b, "\\");
        json_buf_add(b, p, 1);
    }
    json_buf_puts(b, "\"");
}

void control_cmd_error_line(struct json_buf *out, const char *msg)
{
    json_buf_puts(out, "{\"ok\":false,\"error\":");
    json_buf_str(out, msg);
    json_buf_puts(out, "}\n");
}

static const struct control_cmd *lookup(const char *name)
{
    for (size_t i = 0; i < control_cmd_count; i++)
        if (strcasecmp(control_cmd_table[i].name, name) == 0)
            return &control_cmd_table[i];
    return NULL;
}

/* Remove if-generation=N from the words; -1 with err when malformed. */
static int take_if_generation(struct control_ctx *ctx, bool *has, uint64_t *gen)
{
    *has = false;
    size_t o = 0;
    for (size_t i = 0; i < ctx->argc; i++) {
        const char *a = ctx->argv[i];
        if (strncmp(a, "if-generation=", 14) != 0) {
            ctx->argv[o++] = ctx->argv[i];
            continue;
        }
        if (*has)
            return control_ctx_fail(ctx, "if-generation= is given twice");
        const char *v = a + 14;
        char *end;
        unsigned long long g = strtoull(v, &end, 10);
        if (!isdigit((unsigned char)v[0]) || *end || strlen(v) > 19)
            return control_ctx_fail(ctx, "bad if-generation \"%s\": expected a generation number", v);
        *has = true;
        *gen = g;
    }
    ctx->argc = o;
    return 0;
}

/* Remove dry-run=1 and force=1 (or =0, =true, =false) from the words. */
static int take_flags(struct control_ctx *ctx, bool *seen)
{
    *seen = false;
    size_t o = 0;
    for (size_t i = 0; i < ctx->argc; i++) {
        char *a = ctx->argv[i];
        bool *flag = NULL;
        const char *v = NULL;
        if (strncmp(a, "dry-run=", 8) == 0) {
            flag = &ctx->opts.dry_run;
            v = a + 8;
        } else if (strncmp(a, "force=", 6) == 0) {
            flag = &ctx->opts.force;
            v = a + 6;
        } else {
            ctx->argv[o++] = a;
            continue;
        }
        *seen = true;
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
            *flag = true;
        } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
            *flag = false;
        } else {
            ctx->usage = true;
            return control_ctx_fail(ctx, "bad value in \"%s\": expected 1 or 0", a);
        }
    }
    ctx->argc = o;
    return 0;
}

static void caller_text(const struct control_caller *c, char *buf, size_t buflen)
{
    if (c && c->known)
        snprintf(buf, buflen, "uid=%u pid=%d", (unsigned)c->uid, (int)c->pid);
    else
        snprintf(buf, buflen, "uid=? pid=?");
}

/* Append ,"restart_required":["a","b"] from "a, b". */
static void emit_restart(struct json_buf *b, const char *list)
{
    json_buf_puts(b, ",\"restart_required\":[");
    const char *p = list;
    bool first = true;
    while (*p) {
        const char *e = strstr(p, ", ");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!first)
            json_buf_puts(b, ",");
        json_buf_strn(b, p, n);
        first = false;
        p += n;
        if (e)
            p += 2;
    }
    json_buf_puts(b, "]");
}

void control_cmd_execute(const char *line, size_t len,
                         const struct control_caller *caller, struct json_buf *out)
{
    char who[64];
    caller_text(caller, who, sizeof(who));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            control_cmd_error_line(out, "the command contains control characters");
            return;
        }
    }
    if (!json_is_utf8(line, len)) {
        control_cmd_error_line(out, "the command is not valid UTF-8");
        return;
    }
    char *argv[CONTROL_ARGS_MAX];
    char *storage = NULL;
    char err[256];
    int n = control_cmd_split(line, len, argv, ARRAY_LEN(argv), &storage, err,
                              sizeof(err));
    if (n <= 0) {
        control_cmd_error_line(out, n < 0 ? err : "empty command (try help)");
        free(storage);
        return;
    }
    char *text = xstrndup(line, len);
    struct control_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.argv = argv + 1;
    ctx.argc = (size_t)n - 1;
    ctx.line = text;
    ctx.caller = caller;
    ctx.cmd = lookup(argv[0]);
    if (ctx.cmd) {
        ctx.name = ctx.cmd->name;
        ctx.args = ctx.cmd->args;
    }
    struct json_buf body;
    json_buf_init(&body);
    ctx.out = &body;
    int rc;
    bool has_gen = false, has_flags = false;
    uint64_t gen = 0;
    if (!ctx.cmd) {
        ctx.usage = true;
        rc = control_ctx_fail(&ctx, "unknown command \"%s\" (try help)", argv[0]);
    } else if ((rc = take_if_generation(&ctx, &has_gen, &gen)) < 0 ||
               (rc = take_flags(&ctx, &has_flags)) < 0) {
        /* err set */
    } else if (has_gen && !ctx.cmd->mutating) {
        rc = control_ctx_fail(&ctx, "if-generation applies only to commands that change something");
    } else if (has_flags && !ctx.cmd->mutating) {
        ctx.usage = true;
        rc = control_ctx_fail(&ctx, "dry-run= and force= apply only to commands that change "
                                    "something");
    } else if (has_gen && gen != snapshot_generation()) {
        rc = control_ctx_fail(&ctx, "generation is %" PRIu64 ", not %" PRIu64 ": something changed in between; nothing done",
                              snapshot_generation(), gen);
    } else {
        rc = ctx.cmd->run(&ctx);
    }

    bool dry = ctx.opts.dry_run && ctx.cmd && ctx.cmd->mutating;
    if (rc < 0) {
        json_buf_puts(out, "{\"ok\":false,\"error\":");
        json_buf_str(out, ctx.err);
        if (ctx.usage)
            json_buf_puts(out, ",\"usage\":true");
        if (dry) {
            /* What the refused change would have made, when it got that far. */
            json_buf_printf(out, ",\"dry_run\":true,\"generation\":%" PRIu64,
                            snapshot_generation());
            if (ctx.res.preview) {
                json_buf_puts(out, ",");
                control_view_render_split(out, ctx.res.preview);
            }
        }
        json_buf_puts(out, "}\n");
        if (ctx.cmd && ctx.cmd->mutating)
            log_info("control %s: \"%s\" %s: %s", who, text,
                     dry ? "dry run, would be refused" : "refused", ctx.err);
    } else {
        json_buf_puts(out, "{\"ok\":true");
        if (dry)
            json_buf_puts(out, ",\"dry_run\":true");
        if (ctx.applied) {
            json_buf_printf(out, ",\"generation\":%" PRIu64 ",\"change\":",
                            ctx.res.generation);
            json_buf_str(out, ctx.res.change);
            json_buf_puts(out, ",");
            control_view_render_split(out, ctx.res.preview ? ctx.res.preview
                                                           : runtime_config());
            if (ctx.res.restart[0])
                emit_restart(out, ctx.res.restart);
            if (ctx.res.warning[0]) {
                json_buf_puts(out, ",\"warning\":");
                json_buf_str(out, ctx.res.warning);
            }
            log_info("control %s: \"%s\" %s, generation %" PRIu64 ": %s%s%s", who,
                     text, dry ? "dry run, would apply" : "applied", ctx.res.generation,
                     ctx.res.change,
                     ctx.res.warning[0] ? "; warning: " : "", ctx.res.warning);
        }
        json_buf_add(out, body.p, body.len);
        json_buf_puts(out, "}\n");
    }
    json_buf_dispose(&body);
    config_free(ctx.res.preview);
    free(text);
    free(storage);
}
