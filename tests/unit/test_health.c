/*
 * test_health.c — the pure parts of active health checks: rise/fall
 * hysteresis with its initial states, and the status-line parser.
 */
#include <string.h>

#include "health.h"
#include "tap.h"

/* Feed a sequence of results ('+' pass, '-' fail); return the verdicts as a
 * string of 'U'/'D' after each step. */
static const char *run(struct health_hyst *h, const char *seq, unsigned rise,
                       unsigned fall, char *out)
{
    size_t i = 0;
    for (; seq[i]; i++) {
        health_hyst_step(h, seq[i] == '+', rise, fall);
        out[i] = h->healthy ? 'U' : 'D';
    }
    out[i] = '\0';
    return out;
}

static void test_hysteresis(void)
{
    char buf[64];
    struct health_hyst h = {.healthy = true};
    is_str(run(&h, "+-+--+-++", 2, 2, buf), "UUUUDDDDU",
           "healthy start: first pass confirms; fall=2 needs two failures; rise=2 two passes");

    h = (struct health_hyst){.healthy = true};
    is_str(run(&h, "-+", 2, 2, buf), "DD",
           "healthy start: the first failed check alone takes it out");

    h = (struct health_hyst){.healthy = false};
    is_str(run(&h, "+-", 3, 3, buf), "UU",
           "new endpoint: the first passing check alone lets it in");

    h = (struct health_hyst){.healthy = false};
    is_str(run(&h, "--+-++", 2, 2, buf), "DDDDDU",
           "new endpoint failing: stays out until rise passes in a row");

    h = (struct health_hyst){.healthy = true};
    is_str(run(&h, "+-+-+-+-", 2, 2, buf), "UUUUUUUU",
           "alternating results never flap a healthy endpoint (fall=2)");

    h = (struct health_hyst){.healthy = true};
    is_str(run(&h, "+---+-+-+", 2, 2, buf), "UUDDDDDDD",
           "alternating results never flap an unhealthy one back (rise=2)");

    h = (struct health_hyst){.healthy = true};
    is_str(run(&h, "+-+", 1, 1, buf), "UDU", "rise=1 fall=1 follow every result");

    h = (struct health_hyst){.healthy = true};
    is_str(run(&h, "+-+", 0, 0, buf), "UDU", "rise/fall 0 behave as 1");

    h = (struct health_hyst){.healthy = true, .confirmed = true};
    enum health_transition t1 = health_hyst_step(&h, false, 2, 2);
    enum health_transition t2 = health_hyst_step(&h, false, 2, 2);
    enum health_transition t3 = health_hyst_step(&h, false, 2, 2);
    is_int(t1, HEALTH_T_NONE, "one failure: no transition");
    is_int(t2, HEALTH_T_DOWN, "second failure: down");
    is_int(t3, HEALTH_T_NONE, "third failure: already down");
    is_int(h.failures, 3, "consecutive failures counted");
    is_int(h.successes, 0, "successes reset by a failure");
    health_hyst_step(&h, true, 2, 2);
    is_int(health_hyst_step(&h, true, 2, 2), HEALTH_T_UP, "second pass: up");
    is_int(h.failures, 0, "failures reset by a pass");

    h = (struct health_hyst){.healthy = false, .confirmed = true};
    for (int i = 0; i < 2000000; i += 1000)
        for (int j = 0; j < 1000; j++)
            health_hyst_step(&h, false, 2, 2);
    ok(h.failures >= 1000000 && h.failures < 2000000, "counts saturate");
}

static void test_status_line(void)
{
#define S(lit) lit, sizeof(lit) - 1
    is_int(health_parse_status_line(S("HTTP/1.1 200 OK\r\n")), 200, "200 OK");
    is_int(health_parse_status_line(S("HTTP/1.0 503 Service Unavailable\r\nX: y\r\n")), 503,
           "HTTP/1.0 503 with more after");
    is_int(health_parse_status_line(S("HTTP/1.1 204\r\n")), 204, "no reason phrase");
    is_int(health_parse_status_line(S("HTTP/1.1 302 \r\n")), 302, "empty reason phrase");
    is_int(health_parse_status_line(S("HTTP/1.1 200 OK\n")), 200, "bare LF");
    is_int(health_parse_status_line(S("HTTP/1.1 200 OK")), 0, "incomplete line: need more");
    is_int(health_parse_status_line(S("HTTP/1.")), 0, "prefix only: need more");
    is_int(health_parse_status_line(S("HTT")), 0, "partial prefix: need more");
    is_int(health_parse_status_line(S("SSH-2.0-OpenSSH\r\n")), -1, "not HTTP");
    is_int(health_parse_status_line(S("X")), -1, "garbage rejected at once");
    is_int(health_parse_status_line(S("HTTP/2 200\r\n")), -1, "HTTP/2 is not 1.x");
    is_int(health_parse_status_line(S("HTTP/1.1 20 OK\r\n")), -1, "two digits");
    is_int(health_parse_status_line(S("HTTP/1.1 2000 OK\r\n")), -1, "four digits");
    is_int(health_parse_status_line(S("HTTP/1.1 099 OK\r\n")), -1, "below 100");
    is_int(health_parse_status_line(S("HTTP/1.1  200 OK\r\n")), -1, "double space");
    is_int(health_parse_status_line(S("HTTP/1.x 200 OK\r\n")), -1, "minor not a digit");
#undef S
    ok(health_status_is_ok(200) && health_status_is_ok(204) && health_status_is_ok(301) &&
           health_status_is_ok(399),
       "2xx and 3xx pass");
    ok(!health_status_is_ok(199) && !health_status_is_ok(400) && !health_status_is_ok(503) &&
           !health_status_is_ok(-1) && !health_status_is_ok(0),
       "1xx, 4xx, 5xx and failures do not");
}

int main(void)
{
    test_hysteresis();
    test_status_line();
    return tap_done();
}
