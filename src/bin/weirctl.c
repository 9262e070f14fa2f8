/*
 * weirctl.c — the control socket client (INTERFACE.md "weirctl").
 *
 *   weirctl [-s SOCKET] [--json] [--timeout SECONDS] COMMAND [ARGS...]
 *
 * Sends one command line (ARGS joined by spaces, quoted when they hold
 * spaces), reads the one-line JSON answer, prints a human rendering (or the
 * raw JSON with --json) and exits 0 on "ok":true, 1 on "ok":false, 2 on
 * usage or connection errors. The socket is -s, else $WEIR_SOCKET, else the
 * default `control` path. `weirctl help` is printed from the same command
 * table the server dispatches on (control_cmd.c), without connecting.
 *
 * Exit 2 also for weir's usage refusals: an answer with "usage":true
 * (unknown command, missing arguments) is a usage error, as --help says.
 *
 * Why json.c and not jansson (Debian's libjansson) for the answers: weirctl
 * prints numbers as weir wrote them (a split of 0.01 or 87.5, a generation
 * past 2^53) and json.c keeps each number's source text, where jansson
 * turns them into doubles to be re-formatted; and json.c is already the one
 * reader weir-bench and the unit tests use, depth-limited and under the
 * fuzz_json harness, so a second parser would be a second thing to keep
 * safe for one client's few lookups.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_client.h"
#include "control_cmd.h"
#include "json.h"
#include "util.h"

#define DEFAULT_SOCKET "/run/weir/weir.sock"
#define EXIT_OK 0
#define EXIT_REFUSED 1
#define EXIT_USAGE 2

static void print_usage(FILE *f)
{
    fprintf(f,
            "usage: weirctl [-s SOCKET] [--json] [--timeout SECONDS] COMMAND [ARGS...]\n"
            "\n"
            "  -s, --socket PATH   control socket (default: $WEIR_SOCKET, else %s)\n"
            "  -j, --json          print the raw JSON answer\n"
            "  -t, --timeout SECS  give up waiting for an answer after SECS (default 30)\n"
            "  -h, --help          this help and the command list\n"
            "  -V, --version       print the weirctl version\n"
            "\n"
            "exit status: 0 ok, 1 refused by weir (\"ok\":false), 2 usage or connection "
            "error\n",
            DEFAULT_SOCKET);
}

static void print_commands(FILE *f)
{
    size_t w = 0;
    for (size_t i = 0; i < control_cmd_count; i++) {
        const struct control_cmd *c = &control_cmd_table[i];
        size_t l = strlen(c->name) + (c->args[0] ? strlen(c->args) + 1 : 0);
        if (l > w && l <= 44)
            w = l;
    }
    fprintf(f, "commands:\n");
    for (size_t i = 0; i < control_cmd_count; i++) {
        const struct control_cmd *c = &control_cmd_table[i];
        char syn[256];
        snprintf(syn, sizeof(syn), "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
        if (strlen(syn) > w)
            fprintf(f, "  %s\n  %-*s  %s\n", syn, (int)w, "", c->summary);
        else
            fprintf(f, "  %-*s  %s\n", (int)w, syn, c->summary);
    }
    fprintf(f, "\nCommands that change something also take:\n"
               "  if-generation=N  refused unless N is the current generation (see status)\n"
               "  dry-run=1        show what would change (the new split, or why it would\n"
               "                   be refused); change nothing\n"
               "  force=1          apply even a change that gives a share to a version with\n"
               "                   no available endpoint (refused otherwise)\n");
}

/* ---- rendering --------------------------------------------------------- */

static const char *num_text(const struct json_value *v)
{
    return v && v->type == JSON_T_NUMBER ? v->str : "?";
}

static const char *yes_no(const struct json_value *obj, const char *key)
{
    return json_get_bool(obj, key, false) ? "yes" : "no";
}

struct table {
    char *cell[512][8]; /* owned */
    size_t rows, cols;
};

static void table_add(struct table *t, const char *const *cells, size_t n)
{
    if (t->rows == ARRAY_LEN(t->cell))
        return;
    for (size_t i = 0; i < n && i < 8; i++)
        t->cell[t->rows][i] = xstrdup(cells[i] ? cells[i] : "");
    if (n > t->cols)
        t->cols = n;
    t->rows++;
}

static void table_print(struct table *t)
{
    size_t w[8] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->cols; c++)
            if (t->cell[r][c] && strlen(t->cell[r][c]) > w[c])
                w[c] = strlen(t->cell[r][c]);
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *s = t->cell[r][c] ? t->cell[r][c] : "";
            if (c + 1 == t->cols)
                printf("%s\n", s);
            else
                printf("%-*s  ", (int)w[c], s);
        }
    }
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < 8; c++) {
            free(t->cell[r][c]);
            t->cell[r][c] = NULL;
        }
    t->rows = t->cols = 0;
}

/* One event line for people: "TIME EVENT gen N: what/change/reason". */
static void print_event(const char *text, size_t len, bool raw)
{
    if (raw) {
        printf("%.*s\n", (int)len, text);
        fflush(stdout);
        return;
    }
    char err[128];
    struct json_value *e = json_parse(text, len, err, sizeof(err));
    if (!e || e->type != JSON_T_OBJECT) {
        printf("%.*s\n", (int)len, text);
    } else {
        const char *detail = json_get_str(e, "change", NULL);
        if (!detail)
            detail = json_get_str(e, "reason", NULL);
        printf("%s  %-8s gen %s  %s%s%s\n", json_get_str(e, "time", "?"),
               json_get_str(e, "event", "?"), num_text(json_get(e, "generation")),
               json_get_str(e, "what", json_get_str(e, "version", "")), detail ? ": " : "",
               detail ? detail : "");
    }
    json_free(e);
    fflush(stdout);
}

/* `events`: send the line, then print every event line until weir closes
 * the stream (or the user stops weirctl). 0 at the end of the stream, 1
 * when refused, 2 on a connection error. */
static int follow_events(int fd, const char *line, size_t len, bool raw)
{
    if (write(fd, line, len) != (ssize_t)len) {
        fprintf(stderr, "weirctl: cannot send: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    struct json_buf buf;
    json_buf_init(&buf);
    bool first = true;
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        json_buf_add(&buf, chunk, (size_t)n);
        char *nl;
        while ((nl = memchr(buf.p, '\n', buf.len)) != NULL) {
            size_t l = (size_t)(nl - buf.p);
            if (first) {
                first = false;
                char err[128];
                struct json_value *a = json_parse(buf.p, l, err, sizeof(err));
                bool ok = a && json_get_bool(a, "ok", false);
                if (!ok)
                    fprintf(stderr, "weirctl: %s\n",
                            a ? json_get_str(a, "error", "refused") : "unexpected answer");
                json_free(a);
                if (!ok) {
                    json_buf_dispose(&buf);
                    return EXIT_REFUSED;
                }
                if (raw)
                    print_event(buf.p, l, true);
            } else {
                print_event(buf.p, l, raw);
            }
            memmove(buf.p, nl + 1, buf.len - l - 1);
            buf.len -= l + 1;
            buf.p[buf.len] = '\0';
        }
    }
    json_buf_dispose(&buf);
    return first ? EXIT_USAGE : EXIT_OK;
}

/* `guard`: one row per judged version, its numbers beside the baseline's. */
static void render_guard(const struct json_value *a)
{
    const struct json_value *g = json_get(a, "guard");
    if (!g || !json_get_bool(g, "enabled", false)) {
        printf("guard: not configured (add guard: to the config)\n");
        return;
    }
    printf("guard: baseline %s\n", json_get_str(g, "baseline", "-"));
    const struct json_value *vs = json_get(g, "versions");
    if (!vs || vs->type != JSON_T_OBJECT || vs->n == 0) {
        printf("no version is judged (none has a share between 0 and 100 %%)\n");
        return;
    }
    static struct table t;
    const char *head[] = {"VERSION", "VERDICT", "REQUESTS", "ERRORS", "LATENCY", "WHY"};
    table_add(&t, head, 6);
    for (size_t i = 0; i < vs->n; i++) {
        const struct json_value *v = vs->items[i];
        char n[64], e[64], l[64];
        snprintf(n, sizeof(n), "%s vs %s", num_text(json_get(v, "requests")),
                 num_text(json_get(v, "baseline_requests")));
        snprintf(e, sizeof(e), "%.2f%% vs %.2f%%", 100.0 * json_get_num(v, "error_rate", 0),
                 100.0 * json_get_num(v, "baseline_error_rate", 0));
        snprintf(l, sizeof(l), "%.1fms vs %.1fms", json_get_num(v, "latency_ms", 0),
                 json_get_num(v, "baseline_latency_ms", 0));
        const char *row[] = {vs->keys[i], json_get_str(v, "verdict", "?"), n, e, l,
                             json_get_str(v, "reason", "")};
        table_add(&t, row, 6);
    }
    table_print(&t);
}

/* `fleet`: this replica, then one row per peer: address, replica, last
 * heard, the rollout and generation it reported, how sending to it goes. */
static void render_fleet(const struct json_value *a)
{
    const struct json_value *f = json_get(a, "fleet");
    if (!f || !json_get_bool(f, "enabled", false)) {
        printf("fleet: not configured (add fleet: with peers and key_file to the config)\n");
        return;
    }
    printf("fleet: this replica is %s (boot %s), telling its peers every %sms\n",
           json_get_str(f, "replica", "?"), json_get_str(f, "boot", "?"),
           num_text(json_get(f, "interval_ms")));
    const struct json_value *rej = json_get(f, "rejected");
    printf("messages: %s sent, %s received; refused:", num_text(json_get(f, "sent")),
           num_text(json_get(f, "received")));
    for (size_t i = 0; rej && rej->type == JSON_T_OBJECT && i < rej->n; i++)
        printf(" %s=%s", rej->keys[i], num_text(rej->items[i]));
    printf("\n\n");
    static struct table t;
    const char *head[] = {"PEER", "REPLICA", "LAST HEARD", "ROLLOUT", "GENERATION", "SENDING"};
    table_add(&t, head, 6);
    const struct json_value *ps = json_get(f, "peers");
    for (size_t i = 0; ps && ps->type == JSON_T_ARRAY && i < ps->n; i++) {
        const struct json_value *p = ps->items[i];
        const struct json_value *r = json_get(p, "rollout");
        char heard[64] = "never", ro[96] = "-", gen[32] = "-";
        const struct json_value *ago = json_get(p, "heard_ago_s");
        if (ago && ago->type == JSON_T_NUMBER)
            snprintf(heard, sizeof(heard), "%.1fs ago%s", ago->num,
                     json_get_bool(p, "lost", false) ? " (lost)" : "");
        if (r && r->type == JSON_T_OBJECT) {
            const char *st = json_get_str(r, "state", "?");
            if (strcmp(st, "none") == 0)
                snprintf(ro, sizeof(ro), "none");
            else
                snprintf(ro, sizeof(ro), "%s %s step %s (%s%%)", json_get_str(r, "version", "?"),
                         st, num_text(json_get(r, "step")), num_text(json_get(r, "percent")));
            snprintf(gen, sizeof(gen), "%s", num_text(json_get(p, "generation")));
        }
        const char *err = json_get_str(p, "last_error", NULL);
        const char *row[] = {json_get_str(p, "address", "?"), json_get_str(p, "replica", "-"),
                             heard, ro, gen, err ? err : "ok"};
        table_add(&t, row, 6);
    }
    if (t.rows == 1) {
        const char *row[] = {"(no peers yet)", "", "", "", "", ""};
        table_add(&t, row, 6);
    }
    table_print(&t);
}

/* `rollout ...`: one line, "rollout: v2 running, step 1 of 4 (5%)[: reason]". */
static void render_rollout(const struct json_value *a)
{
    const struct json_value *r = json_get(a, "rollout");
    if (!r || r->type != JSON_T_OBJECT)
        return;
    const char *st = json_get_str(r, "state", "none");
    if (strcmp(st, "none") == 0) {
        printf("rollout: none\n");
        return;
    }
    const struct json_value *steps = json_get(r, "steps");
    printf("rollout: %s %s, step %s of %zu (%s%%)", json_get_str(r, "version", "?"), st,
           num_text(json_get(r, "step")), steps && steps->type == JSON_T_ARRAY ? steps->n : 0,
           num_text(json_get(r, "percent")));
    const char *why = json_get_str(r, "reason", NULL);
    printf(why ? ": %s\n" : "\n", why);
}

/* `mirror`: the settings, one row of counts per shadow, the differences. */
static void render_mirror(const struct json_value *a)
{
    const struct json_value *m = json_get(a, "mirror");
    if (!m)
        return;
    if (json_get(a, "generation"))
        printf("generation %s: %s\n", num_text(json_get(a, "generation")),
               json_get_str(a, "change", ""));
    if (json_get_bool(m, "enabled", false))
        printf("mirror: %s%% of the other versions' requests to %s (in flight %s)\n",
               num_text(json_get(m, "percent")), json_get_str(m, "version", "-"),
               num_text(json_get(m, "in_flight")));
    else
        printf("mirror: off\n");
    const struct json_value *cs = json_get(m, "counts");
    if (cs && cs->type == JSON_T_OBJECT && cs->n) {
        static struct table t;
        const char *head[] = {"SHADOW", "MATCH", "DIFFER", "ERROR", "DROPPED", "DIFFER%"};
        table_add(&t, head, 6);
        for (size_t i = 0; i < cs->n; i++) {
            const struct json_value *c = cs->items[i];
            char rate[32];
            snprintf(rate, sizeof(rate), "%.2f", 100.0 * json_get_num(c, "differ_rate", 0));
            char v[4][32];
            const char *keys[4] = {"match", "differ", "error", "dropped"};
            for (int k = 0; k < 4; k++)
                snprintf(v[k], sizeof(v[k]), "%s", num_text(json_get(c, keys[k])));
            const char *row[] = {cs->keys[i], v[0], v[1], v[2], v[3], rate};
            table_add(&t, row, 6);
        }
        table_print(&t);
    }
    const struct json_value *ds = json_get(m, "differences");
    if (!ds || ds->type != JSON_T_ARRAY || ds->n == 0)
        return;
    printf("\nlast differences, newest first (primary vs shadow):\n");
    for (size_t i = 0; i < ds->n; i++) {
        const struct json_value *d = ds->items[i];
        const struct json_value *pa = json_get(d, "primary"), *sh = json_get(d, "shadow");
        printf("%s  %s %s  %s vs %s\n", json_get_str(d, "time", ""),
               json_get_str(d, "method", ""), json_get_str(d, "target", ""),
               json_get_str(d, "primary_version", "?"), json_get_str(d, "version", "?"));
        const struct json_value *what = json_get(d, "differs");
        printf("  differs:");
        for (size_t k = 0; what && what->type == JSON_T_ARRAY && k < what->n; k++)
            printf("%s %s", k ? "," : "",
                   what->items[k]->type == JSON_T_STRING ? what->items[k]->str : "?");
        printf("\n  status %s vs %s\n", num_text(json_get(pa, "status")),
               num_text(json_get(sh, "status")));
        const struct json_value *ha = json_get(pa, "headers"), *hb = json_get(sh, "headers");
        for (size_t k = 0; ha && ha->type == JSON_T_OBJECT && k < ha->n; k++)
            printf("  %s: %s vs %s\n", ha->keys[k], json_get_str(ha, ha->keys[k], "(none)"),
                   json_get_str(hb, ha->keys[k], "(none)"));
        printf("  body sha256 %.16s... (%s bytes) vs %.16s... (%s bytes)\n",
               json_get_str(pa, "body_sha256", ""), num_text(json_get(pa, "body_bytes")),
               json_get_str(sh, "body_sha256", ""), num_text(json_get(sh, "body_bytes")));
    }
}

static void render_status(const struct json_value *a)
{
    printf("generation %s", num_text(json_get(a, "generation")));
    const char *cfg = json_get_str(a, "config", NULL);
    if (cfg)
        printf("   config %s", cfg);
    printf("\n\n");
    static struct table t;
    const char *head[] = {"VERSION", "SPLIT", "ENDPOINT", "HEALTHY", "DRAINING",
                          "INFLIGHT", "WEIGHT", "REQUESTS"};
    table_add(&t, head, 8);
    const struct json_value *vs = json_get(a, "versions");
    for (size_t v = 0; vs && vs->type == JSON_T_OBJECT && v < vs->n; v++) {
        const struct json_value *ver = vs->items[v];
        char pct[64];
        snprintf(pct, sizeof(pct), "%s%%",
                 num_text(json_get(json_get(a, "split"), vs->keys[v])));
        const struct json_value *eps = json_get(ver, "endpoints");
        size_t n = eps && eps->type == JSON_T_ARRAY ? eps->n : 0;
        if (n == 0) {
            const char *row[] = {vs->keys[v], pct, "(no endpoints)", "", "", "", "", ""};
            table_add(&t, row, 8);
        }
        for (size_t i = 0; i < n; i++) {
            const struct json_value *ep = eps->items[i];
            char healthy[32];
            snprintf(healthy, sizeof(healthy), "%s%s", yes_no(ep, "healthy"),
                     json_get_bool(ep, "ejected", false) ? " (ejected)" : "");
            const char *row[] = {i == 0 ? vs->keys[v] : "",
                                 i == 0 ? pct : "",
                                 json_get_str(ep, "address", "?"),
                                 healthy,
                                 yes_no(ep, "draining"),
                                 num_text(json_get(ep, "inflight")),
                                 num_text(json_get(ep, "weight")),
                                 num_text(json_get(ep, "requests"))};
            table_add(&t, row, 8);
        }
    }
    table_print(&t);
    for (size_t v = 0; vs && vs->type == JSON_T_OBJECT && v < vs->n; v++)
        if (json_get_bool(vs->items[v], "fallback_active", false))
            printf("%s has no available endpoint: its traffic goes to %s\n",
                   vs->keys[v], json_get_str(vs->items[v], "fallback", "?"));
    const struct json_value *rules = json_get(a, "rules");
    if (rules && rules->type == JSON_T_ARRAY && rules->n) {
        printf("\nrules (first match wins):\n");
        for (size_t i = 0; i < rules->n; i++) {
            const struct json_value *r = rules->items[i];
            const char *kind = json_get(r, "cookie") ? "cookie" : "header";
            char match[600];
            const char *val = json_get_str(r, "value", NULL);
            if (val)
                snprintf(match, sizeof(match), "%s %s = %s", kind,
                         json_get_str(r, kind, "?"), val);
            else
                snprintf(match, sizeof(match), "%s %s present", kind,
                         json_get_str(r, kind, "?"));
            char idx[32], to[100];
            snprintf(idx, sizeof(idx), "  %s", num_text(json_get(r, "index")));
            snprintf(to, sizeof(to), "-> %s", json_get_str(r, "version", "?"));
            const char *row[] = {idx, match, to, json_get_str(r, "source", "")};
            table_add(&t, row, 4);
        }
        table_print(&t);
    }
    const struct json_value *st = json_get(a, "sticky");
    if (st && st->type == JSON_T_OBJECT && st->n)
        printf("\nsticky: %s %s\n", st->keys[0],
               st->items[0]->type == JSON_T_STRING ? st->items[0]->str : "?");
    const struct json_value *ch = json_get(a, "runtime_changes");
    if (ch && ch->type == JSON_T_ARRAY && ch->n) {
        printf("\nruntime changes (kept across reload and restart):\n");
        for (size_t i = 0; i < ch->n; i++) {
            const char *row[] = {"", json_get_str(ch->items[i], "key", "?"), "=",
                                 json_get_str(ch->items[i], "value", "?"), "since",
                                 json_get_str(ch->items[i], "since", "?")};
            table_add(&t, row, 6);
        }
        table_print(&t);
    }
    printf("\nrollback history: %s change(s)\n", num_text(json_get(a, "history")));
}

static void render_generic(const struct json_value *a)
{
    const char *change = json_get_str(a, "change", NULL);
    if (change) {
        if (json_get_bool(a, "dry_run", false))
            printf("dry run, nothing changed (generation %s); it would do: %s\n",
                   num_text(json_get(a, "generation")), change);
        else
            printf("generation %s: %s\n", num_text(json_get(a, "generation")), change);
        const struct json_value *split = json_get(a, "split");
        if (split && split->type == JSON_T_OBJECT) {
            printf("split:");
            for (size_t i = 0; i < split->n; i++)
                printf(" %s=%s", split->keys[i], num_text(split->items[i]));
            printf("\n");
        }
        const struct json_value *rr = json_get(a, "restart_required");
        if (rr && rr->type == JSON_T_ARRAY && rr->n) {
            printf("needs a restart to change:");
            for (size_t i = 0; i < rr->n; i++)
                printf("%s %s", i ? "," : "",
                       rr->items[i]->type == JSON_T_STRING ? rr->items[i]->str : "?");
            printf("\n");
        }
        const char *warn = json_get_str(a, "warning", NULL);
        if (warn)
            fprintf(stderr, "weirctl: warning: %s\n", warn);
        return;
    }
    if (json_get(a, "reason")) { /* explain */
        const struct json_value *v = json_get(a, "version");
        printf("%s %s -> %s (%s)\n", json_get_str(a, "method", "GET"),
               json_get_str(a, "path", "/"),
               v && v->type == JSON_T_STRING ? v->str : "none",
               json_get_str(a, "reason", "?"));
        printf("%s\n", json_get_str(a, "detail", ""));
        const char *fb = json_get_str(a, "fallback", NULL);
        if (fb)
            printf("it has no available endpoint right now: its fallback %s takes it\n", fb);
        return;
    }
    const struct json_value *h = json_get(a, "history");
    if (h && h->type == JSON_T_ARRAY) {
        if (h->n == 0)
            printf("no changes to roll back\n");
        for (size_t i = 0; i < h->n; i++)
            printf("%zu  %s  %s\n", i + 1, json_get_str(h->items[i], "when", "?"),
                   json_get_str(h->items[i], "what", "?"));
        return;
    }
    /* Anything else: its members, one per line. */
    for (size_t i = 0; i < a->n; i++) {
        const struct json_value *m = a->items[i];
        if (strcmp(a->keys[i], "ok") == 0)
            continue;
        if (m->type == JSON_T_STRING)
            printf("%s: %s\n", a->keys[i], m->str);
        else if (m->type == JSON_T_NUMBER)
            printf("%s: %s\n", a->keys[i], m->str);
        else if (m->type == JSON_T_BOOL)
            printf("%s: %s\n", a->keys[i], m->b ? "true" : "false");
    }
}

int main(int argc, char **argv)
{
    const char *sock = getenv("WEIR_SOCKET");
    if (!sock || !*sock)
        sock = DEFAULT_SOCKET;
    bool raw = false;
    int timeout_s = 30;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0) {
            raw = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_usage(stdout);
            printf("\n");
            print_commands(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("weirctl %s\n", WEIR_VERSION);
            return EXIT_OK;
        } else if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0 ||
                   strcmp(a, "-t") == 0 || strcmp(a, "--timeout") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "weirctl: %s needs a value\n", a);
                print_usage(stderr);
                return EXIT_USAGE;
            }
            const char *val = argv[++i];
            if (a[1] == 's' || a[2] == 's') {
                sock = val;
            } else {
                char *end;
                long t = strtol(val, &end, 10);
                if (*end || t < 1 || t > 3600) {
                    fprintf(stderr, "weirctl: bad timeout \"%s\" (1..3600 seconds)\n", val);
                    return EXIT_USAGE;
                }
                timeout_s = (int)t;
            }
        } else if (strncmp(a, "--socket=", 9) == 0) {
            sock = a + 9;
        } else {
            fprintf(stderr, "weirctl: unknown option %s\n", a);
            print_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "weirctl: no command given\n");
        print_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0 && i + 1 == argc) {
        if (raw) {
            struct json_buf b;
            json_buf_init(&b);
            control_cmd_execute("help", 4, NULL, &b);
            fputs(b.p, stdout);
            json_buf_dispose(&b);
        } else {
            print_commands(stdout);
        }
        return EXIT_OK;
    }

    struct json_buf line;
    json_buf_init(&line);
    for (int k = i; k < argc; k++) {
        if (k > i)
            json_buf_puts(&line, " ");
        if (strchr(argv[k], '\n') || strchr(argv[k], '\r')) {
            fprintf(stderr, "weirctl: arguments cannot contain line breaks\n");
            json_buf_dispose(&line);
            return EXIT_USAGE;
        }
        control_cmd_quote(&line, argv[k]);
    }
    if (line.len > CONTROL_LINE_MAX) {
        fprintf(stderr, "weirctl: command too long (%zu bytes, at most %d)\n", line.len,
                CONTROL_LINE_MAX);
        json_buf_dispose(&line);
        return EXIT_USAGE;
    }
    json_buf_puts(&line, "\n");

    char cerr[512];
    int fd = control_client_connect(sock, cerr, sizeof(cerr));
    if (fd < 0) {
        fprintf(stderr, "weirctl: %s%s\n", cerr,
                errno == ENAMETOOLONG ? "" : " (is weir running? use -s or WEIR_SOCKET)");
        json_buf_dispose(&line);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "events") == 0 && i + 1 == argc) {
        int frc = follow_events(fd, line.p, line.len, raw);
        close(fd);
        json_buf_dispose(&line);
        return frc;
    }
    struct json_buf ans;
    json_buf_init(&ans);
    int rc = control_client_exchange(fd, line.p, line.len, timeout_s * 1000, sock, &ans,
                                     cerr, sizeof(cerr));
    close(fd);
    json_buf_dispose(&line);
    if (rc < 0) {
        fprintf(stderr, "weirctl: %s\n", cerr);
        json_buf_dispose(&ans);
        return EXIT_USAGE;
    }
    char err[128];
    struct json_value *a = json_parse(ans.p, ans.len, err, sizeof(err));
    if (!a || a->type != JSON_T_OBJECT || !json_get(a, "ok")) {
        fprintf(stderr, "weirctl: unexpected answer (%s): %s\n", a ? "not an object" : err,
                ans.p);
        json_free(a);
        json_buf_dispose(&ans);
        return EXIT_USAGE;
    }
    bool ok = json_get_bool(a, "ok", false);
    /* weir marks unknown commands and wrong arguments "usage":true: exit 2. */
    bool usage = !ok && json_get_bool(a, "usage", false);
    if (raw) {
        printf("%s\n", ans.p);
    } else if (!ok) {
        fprintf(stderr, "weirctl: %s%s\n", json_get_str(a, "error", "refused"),
                json_get_bool(a, "dry_run", false) ? " (dry run)" : "");
    } else if (strcmp(argv[i], "status") == 0) {
        render_status(a);
    } else if (strcmp(argv[i], "guard") == 0) {
        render_guard(a);
    } else if (strcmp(argv[i], "fleet") == 0) {
        render_fleet(a);
    } else if (strcmp(argv[i], "rollout") == 0) {
        render_generic(a);
        render_rollout(a);
    } else if (strcmp(argv[i], "mirror") == 0) {
        render_mirror(a);
    } else {
        render_generic(a);
    }
    json_free(a);
    json_buf_dispose(&ans);
    return ok ? EXIT_OK : usage ? EXIT_USAGE
                                : EXIT_REFUSED;
}
