/*
 * fuzz_control.c — the control protocol's command layer on hostile lines:
 * control_cmd_split (the tokenizer: words, quotes, escapes) and
 * control_cmd_execute (validation, lookup, if-generation, every command's
 * argument parsing and its edit through the real runtime).
 *
 * The runtime runs once per process on a small two-version config in a
 * private directory on /dev/shm (state file saves are cheap there). The
 * input is split at newlines into up to 16 command lines, executed in
 * order; when they changed anything the runtime is restarted from the
 * unchanged config with no state file, so every input starts from the same
 * state and a crash reproduces from its file alone.
 *
 * Invariants:
 *  - every line gets exactly one answer line of valid JSON, an object with
 *    a boolean "ok" and, when refused, a string "error";
 *  - the words control_cmd_split returns, quoted again with
 *    control_cmd_quote and joined by spaces, split back to the same words
 *    (weirctl builds its lines that way).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control_cmd.h"
#include "fuzz.h"
#include "json.h"
#include "log.h"
#include "runtime.h"
#include "snapshot.h"

#define LINES_MAX 16

static char dir[64];
static char cfg_path[128], state_path[160], sock_path[128];
static uint64_t start_gen;

static void on_exit_cleanup(void)
{
    runtime_stop();
    snapshot_shutdown();
    unlink(state_path);
    unlink(cfg_path);
    rmdir(dir);
}

static void start(void)
{
    unlink(state_path);
    struct config_errors errs;
    config_errors_init(&errs, cfg_path);
    if (runtime_start(cfg_path, &errs) < 0) {
        char buf[2048];
        config_errors_format(&errs, buf, sizeof(buf));
        fprintf(stderr, "runtime_start: %s\n", buf);
        abort();
    }
    config_errors_dispose(&errs);
    start_gen = snapshot_generation();
}

static void setup(void)
{
    if (dir[0])
        return;
    log_set_level(LOG_L_ERROR);
    snprintf(dir, sizeof(dir), "/dev/shm/weir-fuzz-control-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof(dir), "/tmp/weir-fuzz-control-XXXXXX");
        FUZZ_CHECK(mkdtemp(dir) != NULL);
    }
    snprintf(cfg_path, sizeof(cfg_path), "%s/weir.yaml", dir);
    snprintf(sock_path, sizeof(sock_path), "%s/weir.sock", dir);
    snprintf(state_path, sizeof(state_path), "%s.state", sock_path);
    FILE *f = fopen(cfg_path, "w");
    FUZZ_CHECK(f != NULL);
    fprintf(f,
            "listen: 127.0.0.1:18080\n"
            "control: %s\n"
            "version_header: X-Version\n"
            "versions:\n"
            "  v1:\n"
            "    endpoints: [127.0.0.1:9001, {address: 127.0.0.1:9002, weight: 3}]\n"
            "  v2:\n"
            "    endpoints: [127.0.0.1:9003]\n"
            "    fallback: v1\n"
            "split:\n"
            "  v1: 90\n"
            "  v2: 10\n"
            "rules:\n"
            "  - header: X-Canary\n"
            "    value: always\n"
            "    version: v2\n"
            "sticky:\n"
            "  cookie: weir_id\n",
            sock_path);
    FUZZ_CHECK(fclose(f) == 0);
    start();
    atexit(on_exit_cleanup);
}

static void check_answer(const struct json_buf *out)
{
    FUZZ_CHECK(out->len > 0 && out->p[out->len - 1] == '\n');
    FUZZ_CHECK(memchr(out->p, '\n', out->len) == out->p + out->len - 1);
    char err[128];
    struct json_value *v = json_parse(out->p, out->len, err, sizeof(err));
    if (!v)
        fprintf(stderr, "answer is not JSON (%s): %s", err, out->p);
    FUZZ_CHECK(v != NULL && v->type == JSON_T_OBJECT);
    const struct json_value *ok = json_get(v, "ok");
    FUZZ_CHECK(ok && ok->type == JSON_T_BOOL);
    if (!ok->b) {
        const struct json_value *e = json_get(v, "error");
        FUZZ_CHECK(e && e->type == JSON_T_STRING && e->str_len > 0);
    }
    json_free(v);
}

static void check_split(const char *line, size_t len)
{
    char *argv[CONTROL_ARGS_MAX], *storage = NULL;
    char err[256];
    int n = control_cmd_split(line, len, argv, CONTROL_ARGS_MAX, &storage, err, sizeof(err));
    if (n < 0) {
        FUZZ_CHECK(err[0] != '\0');
        free(storage);
        return;
    }
    struct json_buf b;
    json_buf_init(&b);
    for (int i = 0; i < n; i++) {
        if (i)
            json_buf_puts(&b, " ");
        control_cmd_quote(&b, argv[i]);
    }
    char *argv2[CONTROL_ARGS_MAX], *storage2 = NULL;
    int n2 = control_cmd_split(b.p, b.len, argv2, CONTROL_ARGS_MAX, &storage2, err,
                               sizeof(err));
    FUZZ_CHECK(n2 == n);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(strcmp(argv[i], argv2[i]) == 0);
    free(storage2);
    json_buf_dispose(&b);
    free(storage);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    const char *p = (const char *)data, *end = p + size;
    struct json_buf out;
    json_buf_init(&out);
    struct control_caller caller = {.known = true, .pid = 1, .uid = 0, .gid = 0};
    for (int k = 0; k < LINES_MAX && p <= end; k++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > CONTROL_LINE_MAX)
            len = CONTROL_LINE_MAX; /* control.c refuses longer lines itself */
        check_split(p, len);
        json_buf_reset(&out);
        control_cmd_execute(p, len, &caller, &out);
        check_answer(&out);
        if (!nl)
            break;
        p = nl + 1;
    }
    json_buf_dispose(&out);
    if (snapshot_generation() != start_gen) {
        runtime_stop();
        snapshot_shutdown();
        start();
    }
    return 0;
}
