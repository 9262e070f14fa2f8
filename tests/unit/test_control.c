/*
 * test_control.c — the control protocol without sockets: line splitting,
 * refusals, split/flip/rollback history, if-generation, endpoints, rules,
 * explain, reload, the state file round trip and the merge rule, JSON
 * escaping, and a quick fuzz of the line parser (every answer must be one
 * line of valid JSON, whatever the input).
 *
 * Runs the real runtime (runtime_start on a config in a temp directory) and
 * feeds lines to control_cmd_execute().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "control_cmd.h"
#include "json.h"
#include "runtime.h"
#include "snapshot.h"
#include "state.h"
#include "tap.h"

static char dir[256];
static char cfg_path[300];
static char state_path[320];

/* clang-format off */
#define BASE_YAML                                                              \
    "listen: 127.0.0.1:18080\n"                                                \
    "control: %s/weir.sock\n"                                                  \
    "versions:\n"                                                              \
    "  v1:\n"                                                                  \
    "    endpoints: [127.0.0.1:9001, 127.0.0.1:9002]\n"                        \
    "  v2:\n"                                                                  \
    "    endpoints: [127.0.0.1:9003]\n"                                        \
    "split:\n"                                                                 \
    "  v1: %s\n"                                                               \
    "  v2: %s\n"                                                               \
    "%s"
/* clang-format on */

/* Write the config file; mtime_offset_s moves its mtime (negative: past). */
static void write_config(const char *v1, const char *v2, const char *extra,
                         int mtime_offset_s)
{
    char tmp[400];
    snprintf(tmp, sizeof(tmp), "%s.tmp", cfg_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        abort();
    fprintf(f, BASE_YAML, dir, v1, v2, extra);
    fclose(f);
    if (mtime_offset_s) {
        struct timeval tv[2];
        gettimeofday(&tv[0], NULL);
        tv[0].tv_sec += mtime_offset_s;
        tv[1] = tv[0];
        utimes(tmp, tv);
    }
    if (rename(tmp, cfg_path) < 0)
        abort();
}

/* Execute one line; returns the parsed answer (caller frees) and checks shape. */
static struct json_value *run(const char *line)
{
    struct json_buf out;
    json_buf_init(&out);
    struct control_caller caller = {.known = true, .pid = 1, .uid = 0, .gid = 0};
    control_cmd_execute(line, strlen(line), &caller, &out);
    char err[128];
    bool one_line = out.len > 0 && out.p[out.len - 1] == '\n' &&
                    memchr(out.p, '\n', out.len) == out.p + out.len - 1;
    struct json_value *v = one_line ? json_parse(out.p, out.len, err, sizeof(err)) : NULL;
    if (!v || !json_get(v, "ok"))
        printf("# bad answer to '%s': %s\n", line, out.p);
    json_buf_dispose(&out);
    return v;
}

static bool is_ok(const char *line)
{
    struct json_value *v = run(line);
    bool ok = v && json_get_bool(v, "ok", false);
    if (v && !ok)
        printf("# '%s' refused: %s\n", line, json_get_str(v, "error", "?"));
    json_free(v);
    return ok;
}

/* Refused, with an error containing `needle`. */
static bool refused(const char *line, const char *needle)
{
    struct json_value *v = run(line);
    bool r = v && !json_get_bool(v, "ok", true) &&
             strstr(json_get_str(v, "error", ""), needle) != NULL;
    if (v && !r)
        printf("# '%s' answered ok=%d error=%s\n", line, json_get_bool(v, "ok", false),
               json_get_str(v, "error", "-"));
    json_free(v);
    return r;
}

/* The split as "v1=..,v2=.." from status. */
static void status_split(char *buf, size_t len)
{
    struct json_value *v = run("status");
    const struct json_value *s = json_get(v, "split");
    buf[0] = '\0';
    for (size_t i = 0; s && i < s->n; i++) {
        size_t u = strlen(buf);
        snprintf(buf + u, len - u, "%s%s=%s", i ? "," : "", s->keys[i], s->items[i]->str);
    }
    json_free(v);
}

static uint64_t gen(void)
{
    return snapshot_generation();
}

/* Draining flag of an endpoint in status, -1 when absent. */
static int status_draining(const char *version, const char *addr)
{
    struct json_value *v = run("status");
    const struct json_value *eps =
        json_get(json_get(json_get(v, "versions"), version), "endpoints");
    int r = -1;
    for (size_t i = 0; eps && i < eps->n; i++)
        if (strcmp(json_get_str(eps->items[i], "address", ""), addr) == 0)
            r = json_get_bool(eps->items[i], "draining", false) ? 1 : 0;
    json_free(v);
    return r;
}

static void restart(void)
{
    runtime_stop();
    snapshot_shutdown();
    struct config_errors errs;
    config_errors_init(&errs, cfg_path);
    int rc = runtime_start(cfg_path, &errs);
    if (rc < 0) {
        char buf[2048];
        config_errors_format(&errs, buf, sizeof(buf));
        printf("# start failed: %s\n", buf);
    }
    config_errors_dispose(&errs);
}

static void test_split_words(void)
{
    char *argv[8], *storage = NULL;
    char err[128];
    const char *l = "explain GET / \"X-User-Id: 42\" a\\b \"q\\\"x\"";
    int n = control_cmd_split(l, strlen(l), argv, 8, &storage, err, sizeof(err));
    is_int(n, 6, "split: six words");
    if (n == 6) {
        is_str(argv[3], "X-User-Id: 42", "split: quoted word keeps its space");
        is_str(argv[4], "a\\b", "split: backslash outside quotes is literal");
        is_str(argv[5], "q\"x", "split: \\\" inside quotes");
    }
    free(storage);
    n = control_cmd_split("a \"b", 4, argv, 8, &storage, err, sizeof(err));
    ok(n < 0 && strstr(err, "quote"), "split: unterminated quote refused");
    free(storage);
    n = control_cmd_split("a b c d e f g h i", 17, argv, 8, &storage, err, sizeof(err));
    ok(n < 0, "split: too many words refused");
    free(storage);
    n = control_cmd_split("  \t ", 4, argv, 8, &storage, err, sizeof(err));
    is_int(n, 0, "split: blank line has no words");
    free(storage);

    struct json_buf b;
    json_buf_init(&b);
    control_cmd_quote(&b, "X-User-Id: 4\"2");
    json_buf_puts(&b, " ");
    control_cmd_quote(&b, "plain");
    json_buf_puts(&b, " ");
    control_cmd_quote(&b, "");
    is_str(b.p, "\"X-User-Id: 4\\\"2\" plain \"\"", "quote: quotes only when needed");
    n = control_cmd_split(b.p, b.len, argv, 8, &storage, err, sizeof(err));
    ok(n == 3 && strcmp(argv[0], "X-User-Id: 4\"2") == 0 && argv[2][0] == '\0',
       "quote: round trip through split");
    free(storage);
    json_buf_dispose(&b);
}

static void test_json(void)
{
    struct json_buf b;
    json_buf_init(&b);
    json_buf_str(&b, "a\"b\\c\n\x01\xff\xc3\xa9");
    is_str(b.p, "\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\"", "json: escaping and bad UTF-8");
    struct json_value *v = json_parse(b.p, b.len, NULL, 0);
    ok(v && v->type == JSON_T_STRING && strcmp(v->str, "a\"b\\c\n\x01\xef\xbf\xbd\xc3\xa9") == 0,
       "json: parse back");
    json_free(v);
    json_buf_dispose(&b);
    const char *bad[] = {"{", "[1,]", "{\"a\":}", "\"\\x\"", "01", "[1] x", "nul", "\"\x01\""};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        v = json_parse(bad[i], strlen(bad[i]), NULL, 0);
        ok(!v, "json: rejects %zu", i);
        json_free(v);
    }
    char deep[200];
    memset(deep, '[', sizeof(deep));
    ok(!json_parse(deep, sizeof(deep), NULL, 0), "json: depth limit");
    const char *doc = "{\"a\":[1,2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\"]}";
    v = json_parse(doc, strlen(doc), NULL, 0);
    ok(v && json_get(v, "a") && json_get(v, "a")->n == 5 &&
           strcmp(json_get(v, "a")->items[4]->str, "\xc3\xa9\xf0\x9f\x98\x80") == 0,
       "json: nested values and surrogate pairs");
    json_free(v);
}

static void test_garbage(void)
{
    ok(refused("", "empty"), "empty line refused");
    ok(refused("frobnicate", "unknown command"), "unknown command refused");
    ok(refused("status\x01", "control characters"), "control characters refused");
    ok(refused("split v1=\xff", "UTF-8"), "invalid UTF-8 refused");
    ok(refused("split \"v1=50 v2=50", "quote"), "unterminated quote refused");
    ok(refused("status extra", "usage"), "status takes no arguments");
    ok(refused("status if-generation=1", "only to commands that change"),
       "if-generation refused on read-only commands");
    ok(is_ok("STATUS"), "command words are case-insensitive");
}

static void test_status(void)
{
    struct json_value *v = run("status");
    ok(v && json_get_bool(v, "ok", false), "status ok");
    is_int((long long)json_get_num(v, "generation", -1), (long long)gen(),
           "status generation is the published one");
    const struct json_value *s = json_get(v, "split");
    ok(s && s->n == 2 && strcmp(json_get(s, "v1")->str, "90") == 0 &&
           strcmp(json_get(s, "v2")->str, "10") == 0,
       "status split as numbers");
    const struct json_value *eps =
        json_get(json_get(json_get(v, "versions"), "v1"), "endpoints");
    ok(eps && eps->n == 2 &&
           strcmp(json_get_str(eps->items[0], "address", ""), "127.0.0.1:9001") == 0 &&
           json_get_bool(eps->items[0], "healthy", false) &&
           !json_get_bool(eps->items[0], "draining", true) &&
           json_get(eps->items[0], "inflight"),
       "status lists endpoints with healthy/draining/inflight");
    json_free(v);
}

static void test_split_flip_rollback(void)
{
    char s[128];
    uint64_t g0 = gen();
    ok(is_ok("split v1=50 v2=50"), "split v1=50 v2=50");
    is_int(gen(), g0 + 1, "generation grows by one");
    status_split(s, sizeof(s));
    is_str(s, "v1=50,v2=50", "split applied");
    ok(is_ok("split v2=100"), "split with a version left out");
    status_split(s, sizeof(s));
    is_str(s, "v1=0,v2=100", "left-out version gets 0");
    ok(is_ok("split v1=87.5 v2=12.5"), "split with decimals");
    ok(is_ok("split v1=99.99 v2=0.01%"), "split with 0.01 and a %% sign");
    status_split(s, sizeof(s));
    is_str(s, "v1=99.99,v2=0.01", "0.01 steps kept");

    uint64_t g1 = gen();
    ok(refused("split v1=50", "sums to 50"), "split not summing to 100 refused");
    ok(refused("split v1=50 v3=50", "unknown version \"v3\""), "unknown version refused");
    ok(refused("split v1=50 v1=50", "twice"), "version given twice refused");
    ok(refused("split v1=abc v2=100", "bad percent"), "bad percent refused");
    ok(refused("split v1=33.333 v2=66.667", "two decimals"), "three decimals refused");
    ok(refused("split v1=-10 v2=110", "bad percent"), "negative refused");
    ok(refused("split", "usage"), "split without arguments refused");
    ok(refused("split v1", "VERSION=PERCENT"), "split word without = refused");
    ok(refused("flip v9", "unknown version"), "flip unknown version refused");
    ok(refused("flip", "usage"), "flip without version refused");
    ok(refused("flip v1 v2", "usage"), "flip with two versions refused");
    is_int(gen(), g1, "refusals change nothing (generation)");
    status_split(s, sizeof(s));
    is_str(s, "v1=99.99,v2=0.01", "refusals change nothing (split)");

    ok(is_ok("flip v2"), "flip v2");
    status_split(s, sizeof(s));
    is_str(s, "v1=0,v2=100", "flip v2: v2 100, others 0");
    ok(is_ok("flip v1"), "flip v1");

    /* Walk back: flip v1 → flip v2 → 99.99 → 87.5 → v2=100 → 50/50 → 90/10. */
    const char *expect[] = {"v1=0,v2=100", "v1=99.99,v2=0.01", "v1=87.5,v2=12.5",
                            "v1=0,v2=100", "v1=50,v2=50", "v1=90,v2=10"};
    for (size_t i = 0; i < ARRAY_LEN(expect); i++) {
        uint64_t g = gen();
        ok(is_ok("rollback"), "rollback %zu", i + 1);
        status_split(s, sizeof(s));
        is_str(s, expect[i], "rollback %zu restores the split before", i + 1);
        is_int(gen(), g + 1, "rollback is a change (generation + 1)");
    }
    ok(refused("rollback", "nothing to roll back"), "rollback with empty history refused");
}

static void test_if_generation(void)
{
    char line[128];
    uint64_t g = gen();
    snprintf(line, sizeof(line), "split v1=60 v2=40 if-generation=%llu",
             (unsigned long long)(g - 1));
    ok(refused(line, "generation is"), "stale if-generation refused");
    is_int(gen(), g, "stale if-generation changes nothing");
    snprintf(line, sizeof(line), "split if-generation=%llu v1=60 v2=40",
             (unsigned long long)g);
    ok(is_ok(line), "current if-generation accepted (anywhere on the line)");
    ok(refused("split v1=60 v2=40 if-generation=abc", "bad if-generation"),
       "malformed if-generation refused");
    ok(refused("split v1=60 v2=40 if-generation=1 if-generation=1", "twice"),
       "if-generation twice refused");
    ok(is_ok("rollback"), "rollback the if-generation split");
}

static void test_endpoints(void)
{
    ok(is_ok("drain v1 127.0.0.1:9002"), "drain");
    is_int(status_draining("v1", "127.0.0.1:9002"), 1, "status shows draining");
    ok(is_ok("undrain v1 localhost:9002"), "undrain (address matched by value)");
    is_int(status_draining("v1", "127.0.0.1:9002"), 0, "undrained");
    ok(refused("drain v1 127.0.0.1:9999", "no endpoint"), "drain unknown endpoint refused");
    ok(refused("drain v7 127.0.0.1:9001", "unknown version"), "drain unknown version refused");
    ok(refused("drain v1", "usage"), "drain without address refused");
    ok(refused("drain v1 nonsense", "bad endpoint address"), "drain bad address refused");

    struct json_value *v = run("drain v2 127.0.0.1:9003");
    ok(v && json_get_bool(v, "ok", false) &&
           strstr(json_get_str(v, "warning", ""), "no endpoint taking new requests"),
       "draining a version's last endpoint warns");
    json_free(v);
    ok(is_ok("undrain v2 127.0.0.1:9003"), "undrain v2");

    ok(is_ok("add-endpoint v2 127.0.0.1:9004 weight=3"), "add-endpoint with weight");
    is_int(status_draining("v2", "127.0.0.1:9004"), 0, "added endpoint listed");
    ok(refused("add-endpoint v2 127.0.0.1:9004", "already has"), "duplicate add refused");
    ok(refused("add-endpoint v2 127.0.0.1:0", "port"), "bad port refused");
    ok(refused("add-endpoint v2 127.0.0.1:9005 weight=0", "bad weight"), "weight 0 refused");
    ok(is_ok("remove-endpoint v2 127.0.0.1:9004"), "remove-endpoint");
    is_int(status_draining("v2", "127.0.0.1:9004"), -1, "removed endpoint gone");
    ok(refused("remove-endpoint v2 127.0.0.1:9004", "no endpoint"), "remove unknown refused");
    ok(refused("remove-endpoint v2 127.0.0.1:9003", "no endpoints"),
       "removing a version's last endpoint refused by the validator");
    for (int i = 0; i < 5; i++)
        ok(is_ok("rollback"), "rollback endpoint change %d", i + 1);
    is_int(status_draining("v1", "127.0.0.1:9002"), 1,
           "rollback walks back to the drained state");
    ok(is_ok("rollback"), "rollback the drain");
    is_int(status_draining("v1", "127.0.0.1:9002"), 0, "and back to undrained");
}

static void test_rules_explain(void)
{
    struct json_value *v = run("explain GET /x");
    ok(v && strcmp(json_get_str(v, "reason", ""), "split") == 0 &&
           strcmp(json_get_str(v, "version", ""), "v1") == 0,
       "explain without rules: split, largest share");
    json_free(v);
    ok(is_ok("add-rule header=X-Canary value=always version=v2"), "add-rule");
    v = run("explain GET / X-Canary: always");
    ok(v && strcmp(json_get_str(v, "reason", ""), "rule") == 0 &&
           strcmp(json_get_str(v, "version", ""), "v2") == 0 &&
           json_get_num(v, "rule", -1) == 0,
       "explain names the rule");
    json_free(v);
    v = run("explain \"x-canary: always\"");
    ok(v && strcmp(json_get_str(v, "reason", ""), "rule") == 0,
       "explain: quoted header, any case");
    json_free(v);
    v = run("explain X-Canary: never");
    ok(v && strcmp(json_get_str(v, "reason", ""), "split") == 0, "explain: value must match");
    json_free(v);
    ok(is_ok("add-rule cookie=beta value=\"yes please\" version=v2 at=0"),
       "add-rule cookie at 0");
    v = run("explain POST /api Cookie: a=b; beta=yes please");
    ok(v && json_get_num(v, "rule", -1) == 0 && strcmp(json_get_str(v, "method", ""), "POST") == 0,
       "explain: cookie rule, value joined from words");
    json_free(v);
    ok(refused("add-rule header=X version=v9", "unknown version"), "rule to unknown version");
    ok(refused("add-rule version=v2", "header=NAME or cookie=NAME"), "rule without match");
    ok(refused("add-rule cookie=c version=v2", "needs value"), "cookie rule without value");
    ok(refused("add-rule header=\"bad name\" version=v2", "valid header name"),
       "invalid header name refused by the validator");
    ok(refused("explain nonsense", "expected a header"), "explain garbage refused");
    ok(refused("remove-rule 7", "no rule 7"), "remove-rule out of range");
    ok(refused("remove-rule x", "bad rule index"), "remove-rule not a number");
    ok(is_ok("remove-rule 0"), "remove-rule 0");
    v = run("status");
    const struct json_value *rules = json_get(v, "rules");
    ok(rules && rules->n == 1 && strcmp(json_get_str(rules->items[0], "header", ""), "X-Canary") == 0 &&
           strcmp(json_get_str(rules->items[0], "source", ""), "runtime") == 0,
       "status lists the remaining rule, made at runtime");
    json_free(v);
}

static void test_help(void)
{
    struct json_value *v = run("help");
    const struct json_value *c = json_get(v, "commands");
    ok(c && c->n == control_cmd_count, "help lists every command of the table");
    bool all = true;
    const char *need[] = {"status", "split", "flip", "rollback", "reload", "help", "drain",
                          "undrain", "add-endpoint", "remove-endpoint", "explain"};
    for (size_t i = 0; i < ARRAY_LEN(need); i++) {
        bool found = false;
        for (size_t k = 0; c && k < c->n; k++)
            found |= strcmp(json_get_str(c->items[k], "name", ""), need[i]) == 0;
        all &= found;
    }
    ok(all, "help has the INTERFACE.md and issue 3 commands");
    json_free(v);
}

static void test_persistence(void)
{
    char s[128];
    ok(is_ok("split v1=70 v2=30"), "split before restart");
    ok(is_ok("drain v1 127.0.0.1:9001"), "drain before restart");
    ok(is_ok("add-endpoint v2 127.0.0.1:9010"), "add-endpoint before restart");
    size_t hist = runtime_history_len();
    ok(access(state_path, F_OK) == 0, "state file written");
    restart();
    status_split(s, sizeof(s));
    is_str(s, "v1=70,v2=30", "split survives a restart");
    is_int(status_draining("v1", "127.0.0.1:9001"), 1, "drain survives a restart");
    is_int(status_draining("v2", "127.0.0.1:9010"), 0, "added endpoint survives a restart");
    is_int(runtime_history_len(), hist, "history survives a restart");
    ok(is_ok("rollback"), "rollback after restart");
    is_int(status_draining("v2", "127.0.0.1:9010"), -1, "rollback after restart undoes the add");

    /* reload with the file unchanged keeps everything */
    ok(is_ok("reload"), "reload, file unchanged");
    status_split(s, sizeof(s));
    is_str(s, "v1=70,v2=30", "runtime split survives reload");
    is_int(status_draining("v1", "127.0.0.1:9001"), 1, "drain survives reload");

    /* the file changes the split, newer than the runtime change: file wins;
     * the drain, not touched by the file, stays */
    write_config("80", "20", "", 5);
    ok(is_ok("reload"), "reload, file changed the split (newer)");
    status_split(s, sizeof(s));
    is_str(s, "v1=80,v2=20", "newer file wins");
    is_int(status_draining("v1", "127.0.0.1:9001"), 1, "drain kept (file did not touch it)");

    /* runtime change, then a file edit whose mtime is older: runtime wins */
    ok(is_ok("split v1=60 v2=40"), "runtime split after the file change");
    write_config("85", "15", "", -3600);
    ok(is_ok("reload"), "reload, file changed the split (older mtime)");
    status_split(s, sizeof(s));
    is_str(s, "v1=60,v2=40", "newer runtime change wins");

    /* ... and across a restart too */
    restart();
    status_split(s, sizeof(s));
    is_str(s, "v1=60,v2=40", "runtime win survives a restart");
    write_config("85", "15", "", 10);
    restart();
    status_split(s, sizeof(s));
    is_str(s, "v1=60,v2=40", "file touched but split not changed: runtime split stays");
    runtime_stop();
    snapshot_shutdown();
    write_config("75", "25", "", 10);
    restart();
    status_split(s, sizeof(s));
    is_str(s, "v1=75,v2=25", "file edited (newer) while stopped wins at start");
    is_int(status_draining("v1", "127.0.0.1:9001"), 1, "drain still kept at start");

    /* the file removes the drained endpoint: the drain is dropped, not fatal */
    FILE *f = fopen(cfg_path, "w");
    fprintf(f, "listen: 127.0.0.1:18081\ncontrol: %s/weir.sock\nworkers: 3\n"
               "versions:\n  v1:\n    endpoints: [127.0.0.1:9002]\n"
               "  v2:\n    endpoints: [127.0.0.1:9003]\nsplit: {v1: 50, v2: 50}\n",
            dir);
    fclose(f);
    struct json_value *v = run("reload");
    ok(v && json_get_bool(v, "ok", false), "reload with the drained endpoint gone");
    const struct json_value *rr = json_get(v, "restart_required");
    ok(rr && rr->n == 2 && strcmp(rr->items[0]->str, "listen") == 0 &&
           strcmp(rr->items[1]->str, "workers") == 0,
       "listen and workers reported as needing a restart");
    ok(strcmp(runtime_config()->listen, "127.0.0.1:18080") == 0,
       "running listen unchanged until restart");
    json_free(v);
    is_int(status_draining("v1", "127.0.0.1:9001"), -1, "endpoint gone with the file");

    /* broken file: refused with FILE:LINE:COL, running config stays */
    uint64_t g = gen();
    f = fopen(cfg_path, "w");
    fprintf(f, "listen: 127.0.0.1:18080\nversions:\n  v1:\n    endpoints: [nope]\n"
               "split: {v1: 100}\n");
    fclose(f);
    v = run("reload");
    char want[400];
    snprintf(want, sizeof(want), "%s:4:", cfg_path);
    ok(v && !json_get_bool(v, "ok", true) && strstr(json_get_str(v, "error", ""), want),
       "broken file refused with FILE:LINE:COL (%s)", json_get_str(v, "error", "?"));
    json_free(v);
    is_int(gen(), g, "broken reload changes nothing");
    status_split(s, sizeof(s));
    is_str(s, "v1=50,v2=50", "running split kept");
    write_config("90", "10", "", 20);
    ok(is_ok("reload"), "fixed file reloads");

    /* corrupt state file: ignored at start, never fatal */
    f = fopen(state_path, "w");
    fprintf(f, "weir-state 1\nchange notanumber split v1=1\n");
    fclose(f);
    restart();
    ok(runtime_config() != NULL, "corrupt state file ignored at start");
    status_split(s, sizeof(s));
    is_str(s, "v1=90,v2=10", "file config used");

    /* a new version at 0 % in the file does not override a runtime split */
    ok(is_ok("split v1=55 v2=45"), "runtime split");
    f = fopen(cfg_path, "w");
    fprintf(f, "listen: 127.0.0.1:18080\ncontrol: %s/weir.sock\nversions:\n"
               "  v1:\n    endpoints: [127.0.0.1:9001, 127.0.0.1:9002]\n"
               "  v2:\n    endpoints: [127.0.0.1:9003]\n"
               "  v3:\n    endpoints: [127.0.0.1:9009]\n"
               "split: {v1: 90, v2: 10}\n",
            dir);
    fclose(f);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec += 30;
    tv[1] = tv[0];
    utimes(cfg_path, tv);
    ok(is_ok("reload"), "reload with a new version v3");
    status_split(s, sizeof(s));
    is_str(s, "v1=55,v2=45,v3=0", "adding a 0 %% version is not a split change");
    ok(is_ok("flip v3"), "flip to the new version");
    ok(is_ok("rollback"), "rollback");
    status_split(s, sizeof(s));
    is_str(s, "v1=55,v2=45,v3=0", "rollback to the runtime split");
}

static void test_state_file(void)
{
    struct state st, back;
    state_init(&st);
    state_map_set(&st.file, "split", "v1=90,v2=10", 0);
    state_map_set(&st.file, "endpoint/v1/127.0.0.1:1", "1", 0);
    state_map_set(&st.changes, "split", "v1=50,v2=50", 1234);
    state_map_set(&st.changes, "rules", "1;h,X%20Y,a b\xc3\xa9,v2", 99);
    state_map_set(&st.changes, "endpoint/v1/127.0.0.1:1", "-", 5);
    struct state_map h;
    state_map_init(&h);
    state_map_set(&h, "split", "v1=1,v2=99", 0);
    state_history_push(&st, 777, "split v1=1 v2=99 \"quoted\"", &h);
    state_map_dispose(&h);
    state_map_init(&h);
    state_history_push(&st, 778, "", &h);
    state_map_dispose(&h);
    char p[400], err[256];
    snprintf(p, sizeof(p), "%s/rt.state", dir);
    ok(state_save(p, &st, err, sizeof(err)) == 0, "state_save");
    state_init(&back);
    ok(state_load(p, &back, err, sizeof(err)) == 0, "state_load");
    ok(state_map_equal(&st.file, &back.file) && state_map_equal(&st.changes, &back.changes),
       "state round trip: file and changes");
    const struct state_item *it = state_map_find(&back.changes, "split");
    ok(it && it->ts_ms == 1234, "state round trip: timestamps");
    ok(back.n_hist == 2 && back.hist[0].ts_ms == 777 &&
           strcmp(back.hist[0].what, "split v1=1 v2=99 \"quoted\"") == 0 &&
           strcmp(state_map_value(&back.hist[0].map, "split"), "v1=1,v2=99") == 0 &&
           strcmp(state_map_value(&back.hist[0].map, "endpoint/v1/127.0.0.1:1"), "-") == 0 &&
           strcmp(back.hist[1].what, "") == 0 && back.hist[1].map.n == 0,
       "state round trip: history maps and texts");
    state_dispose(&back);
    state_dispose(&st);
    struct stat sb;
    ok(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600, "state file mode 0600");

    const char *bad[] = {"", "hello\n", "weir-state 2\n", "weir-state 1\nfile onlykey\n",
                         "weir-state 1\nchange x split v\n", "weir-state 1\nfile k %zz\n",
                         "weir-state 1\nfile k %00\n"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        FILE *f = fopen(p, "w");
        fputs(bad[i], f);
        fclose(f);
        state_init(&back);
        ok(state_load(p, &back, err, sizeof(err)) < 0, "bad state file %zu rejected: %s", i,
           err);
        state_dispose(&back);
    }
    state_init(&back);
    unlink(p);
    is_int(state_load(p, &back, err, sizeof(err)), 1, "missing state file");
    state_dispose(&back);
    FILE *f = fopen(p, "w");
    fputs("# comment\n\nweir-state 1\nfuture-kind x y z\nsaved 5\n", f);
    fclose(f);
    state_init(&back);
    is_int(state_load(p, &back, err, sizeof(err)), 0, "unknown line kinds skipped");
    state_dispose(&back);
}

/* Random lines: every answer is one JSON line; weir never crashes. */
static void test_fuzz(void)
{
    static const char *words[] = {
        "status", "split", "flip", "rollback", "help", "drain", "undrain", "explain",
        "add-endpoint", "remove-endpoint", "add-rule", "remove-rule", "history", "v1", "v2",
        "v1=50", "v2=50", "v1=100", "127.0.0.1:9001", "\"", "\\", "if-generation=",
        "X-Canary:", "header=", "value=", "version=v2", "=", "%", "\xc3", "\xff", "\t",
        "weight=2", "at=0", "99999999999999999999999", "-1", "1e9", "version"};
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int bad = 0;
    for (int i = 0; i < 4000; i++) {
        char line[600];
        size_t len = 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int n = (int)(x % 7);
        for (int k = 0; k < n && len < 500; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (x % 5 == 0) {
                line[len++] = (char)(x >> 24);
            } else {
                const char *w = words[(x >> 8) % ARRAY_LEN(words)];
                size_t wl = strlen(w);
                memcpy(line + len, w, wl);
                len += wl;
            }
            line[len++] = (x >> 40) % 3 ? ' ' : '"';
        }
        struct json_buf out;
        json_buf_init(&out);
        control_cmd_execute(line, len, NULL, &out);
        struct json_value *v = json_parse(out.p, out.len, NULL, 0);
        if (!v || !json_get(v, "ok") || memchr(out.p, '\n', out.len) != out.p + out.len - 1)
            bad++;
        json_free(v);
        json_buf_dispose(&out);
    }
    is_int(bad, 0, "fuzz: 4000 random lines, every answer one valid JSON line");
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/weir-test-control-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(cfg_path, sizeof(cfg_path), "%s/weir.yaml", dir);
    snprintf(state_path, sizeof(state_path), "%s/weir.sock.state", dir);
    write_config("90", "10", "", 0);
    struct config_errors errs;
    config_errors_init(&errs, cfg_path);
    int rc = runtime_start(cfg_path, &errs);
    if (rc < 0) {
        char buf[2048];
        config_errors_format(&errs, buf, sizeof(buf));
        printf("Bail out! runtime_start: %s\n", buf);
        return 1;
    }
    config_errors_dispose(&errs);
    ok(access(state_path, F_OK) < 0, "no state file while nothing changed");

    test_split_words();
    test_json();
    test_garbage();
    test_status();
    test_help();
    test_split_flip_rollback();
    test_if_generation();
    test_endpoints();
    test_rules_explain();
    test_persistence();
    test_state_file();
    test_fuzz();

    runtime_stop();
    snapshot_shutdown();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
