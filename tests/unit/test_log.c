/*
 * test_log.c — the diagnostic log (log.c): text lines, JSON lines that
 * parse whatever the message holds (quotes, control characters, invalid
 * UTF-8), the minimum level, and WEIR_DEBUG winning over the configured
 * level. stderr is a pipe read back by the test.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "tap.h"

static int pipe_rd = -1, saved_err = -1;

static void capture(void)
{
    int p[2];
    if (pipe(p) < 0)
        abort();
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    saved_err = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    close(p[1]);
    pipe_rd = p[0];
}

/* What was written since the last call. */
static const char *drain(void)
{
    static char buf[8192];
    ssize_t n = read(pipe_rd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

int main(void)
{
    capture();
    log_configure(LOG_L_INFO, false);
    log_info("hello %d", 42);
    const char *t = drain();
    bool text_ok = strstr(t, " weir[") && strstr(t, "] info: hello 42\n") && t[4] == '-';
    log_configure(LOG_L_INFO, true);
    log_warn("c#1 a\"b\\c\td\r\ne \xc3\xa9 \xff end");
    char got[8192];
    snprintf(got, sizeof(got), "%s", drain());
    log_debug("not shown");
    const char *none = drain();
    bool none_ok = none[0] == '\0';
    log_configure(LOG_L_ERROR, true);
    log_warn("below error");
    bool level_ok = drain()[0] == '\0';
    setenv("WEIR_DEBUG", "1", 1);
    log_configure(LOG_L_ERROR, false);
    log_debug("debug forced");
    bool forced = strstr(drain(), "debug: debug forced\n") != NULL;
    setenv("WEIR_DEBUG", "0", 1);
    log_configure(LOG_L_ERROR, false);
    log_debug("debug not forced by 0");
    bool zero = drain()[0] == '\0';
    dup2(saved_err, STDERR_FILENO);

    ok(text_ok, "text line: TIME weir[PID] info: message (%s)", t);
    size_t len = strlen(got);
    ok(len > 1 && got[len - 1] == '\n' && !memchr(got, '\n', len - 1),
       "a JSON entry is one line even with CR/LF in the message");
    char err[128];
    struct json_value *v = json_parse(got, len - 1, err, sizeof(err));
    ok(v != NULL, "the JSON line parses: %s", v ? got : err);
    const struct json_value *msg = v ? json_get(v, "msg") : NULL;
    const struct json_value *lvl = v ? json_get(v, "level") : NULL;
    ok(lvl && lvl->type == JSON_T_STRING && strcmp(lvl->str, "warn") == 0, "level is \"warn\"");
    ok(msg && msg->type == JSON_T_STRING &&
           strcmp(msg->str, "c#1 a\"b\\c\td\r\ne \xc3\xa9 \xef\xbf\xbd end") == 0,
       "msg round-trips (invalid UTF-8 as U+FFFD)");
    ok(v && json_get(v, "time") && json_get(v, "pid"), "time and pid fields");
    json_free(v);
    ok(none_ok, "debug is below the default info level");
    ok(level_ok, "level error hides warn");
    ok(forced, "WEIR_DEBUG=1 forces debug over the configured level");
    ok(zero, "WEIR_DEBUG=0 does not");
    return tap_done();
}
