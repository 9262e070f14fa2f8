/*
 * weir_bench.c — weir-bench: a load generator that tells versions apart.
 *
 * Shape: the main thread parses the command line, resolves the URL once,
 * probes it (a refused connection is reported before any load starts),
 * applies ramp step 1 through the control socket, then starts -t worker
 * threads. Each worker owns an event_base and a fixed array of connections
 * (connection i of the run lives on worker i % threads); nothing a worker
 * touches is shared except a few atomics (end of the run, current ramp step)
 * and the live counters the main thread reads for the progress line. The
 * main thread then sleeps in sigtimedwait() between its own duties: the
 * progress line each second, the ramp steps, SIGINT/SIGTERM (first: stop
 * sending and drain; second: stop now). After joining the workers it merges
 * their reports and prints the table or JSON (bench_report.c).
 *
 * The connection state machine and the workers are bench_load.c's; this
 * file is the CLI: options, setup (resolve, probe, the request), the ramp
 * through the control socket (control_client.c), progress and the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench_gate.h"
#include "bench_events.h"
#include "bench_h2.h"
#include "bench_hist.h"
#include "bench_load.h"
#include "bench_report.h"
#include "bench_sched.h"
#include "bench_url.h"
#include "control_client.h"
#include "json.h"
#include "util.h"

#define MAX_HEADERS 64
#define CONTROL_TIMEOUT_S 3
#define DEFAULT_CONNS 16
#define DEFAULT_DURATION_S 10.0
#define DEFAULT_STEP_S 10.0
#define DEFAULT_TIMEOUT_S 5.0

/* ---- options and run-wide state ---- */

struct opts {
    uint32_t conns;
    uint32_t threads;
    double duration_s;
    bool duration_given;
    double rate_per_s;                /* 0: closed loop */
    const char *headers[MAX_HEADERS]; /* borrowed from argv */
    size_t n_headers;
    const char *version_header; /* borrowed */
    bool json;
    bool quiet;
    const char *plot_path; /* borrowed */
    char ramp_target[BENCH_SCHED_NAME_MAX];
    uint32_t ramp_bp[BENCH_SCHED_MAX_STEPS];
    size_t n_ramp;
    double step_s;
    const char *control_path; /* borrowed */
    const char *events_path;  /* borrowed: --events, weir's control socket */
    double timeout_s;
    const char *url_text; /* borrowed */
    struct bench_url url;
    bool h2;          /* --h2: h2c with prior knowledge (bench_h2.c) */
    bool grpc;        /* --grpc: unary gRPC calls (implies --h2) */
    uint32_t streams; /* --streams: concurrent streams per h2 connection */
};

static struct opts opts;
static struct bench_gates gates; /* --max-error-rate, --max-p99, --max-p99-ratio */

/* ---- control socket client (main thread, blocking with timeouts) ---- */

/*
 * Send one command line to the control socket and read one reply line
 * (control_client.c, weirctl's client). Returns a heap string (caller
 * frees) or NULL with err filled.
 */
static char *control_call(const char *cmd, char *err, size_t errlen)
{
    struct json_buf ans;
    json_buf_init(&ans);
    if (control_client_call(opts.control_path, cmd, CONTROL_TIMEOUT_S * 1000, &ans, err,
                            errlen) != 0) {
        json_buf_dispose(&ans);
        return NULL;
    }
    return ans.p; /* the buffer's memory, NUL-terminated */
}

/* Read the current split. Returns 0 or -1 (err filled). */
static int control_status(struct bench_split *split, uint64_t *gen, char *err,
                          size_t errlen)
{
    char *reply = control_call("status", err, errlen);
    if (!reply)
        return -1;
    char why[512];
    int rc = bench_sched_parse_reply(reply, strlen(reply), split, gen, why,
                                     sizeof(why));
    if (rc != 0)
        snprintf(err, errlen, "status: %s", why);
    free(reply);
    return rc;
}

/* Ramp step s: read the split, set the target's percent. 0 or -1. */
static int ramp_apply(size_t s, struct bench_ramp_step *st, char *err,
                      size_t errlen)
{
    struct bench_split cur, next;
    uint64_t gen = 0;
    const char *why;
    if (control_status(&cur, &gen, err, errlen) != 0)
        return -1;
    if (bench_sched_split_find(&cur, opts.ramp_target) < 0) {
        char have[512];
        snprintf(err, errlen, "version %s is not in weir's split or versions "
                              "(%s)",
                 opts.ramp_target,
                 bench_sched_format_split(&cur, have, sizeof(have)));
        return -1;
    }
    if (bench_sched_ramp_split(&cur, opts.ramp_target, opts.ramp_bp[s], &next,
                               &why) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    char cmd[4096];
    if (bench_sched_format_split_cmd(&next, cmd, sizeof(cmd)) == 0) {
        snprintf(err, errlen, "split command too long");
        return -1;
    }
    char *reply = control_call(cmd, err, errlen);
    if (!reply)
        return -1;
    char rerr[512];
    uint64_t ngen = 0;
    int rc = bench_sched_parse_reply(reply, strlen(reply), NULL, &ngen, rerr,
                                     sizeof(rerr));
    free(reply);
    if (rc != 0) {
        snprintf(err, errlen, "'%.300s' refused: %.500s", cmd, rerr);
        return -1;
    }
    if (ngen == 0) {
        /* Not every reply names the generation; ask for it. */
        struct bench_split after;
        if (control_status(&after, &ngen, rerr, sizeof(rerr)) != 0)
            ngen = 0;
    }
    st->target_bp = opts.ramp_bp[s];
    st->split = next;
    st->applied = true;
    st->generation = ngen;
    return 0;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
            /* clang-format off */
"usage: weir-bench [options] URL\n"
"\n"
"Load-test URL (http://HOST[:PORT]/PATH; HOST is IPv4, [IPv6] or a name\n"
"resolved once) and report latency and errors per version, the version\n"
"being the value of a response header that weir adds (version_header).\n"
"\n"
"  -c, --connections N     keep-alive connections (default %d)\n"
"  -d, --duration TIME     run length: seconds (10, 2.5) or 500ms/30s/2m\n"
"                          (default %.0f s; with --ramp, steps x --step)\n"
"  -R, --rate N            open loop: N requests/s in total, spread evenly\n"
"                          over the connections; latency counts from each\n"
"                          request's intended send time, so a stall shows in\n"
"                          the tail (coordinated omission corrected).\n"
"                          Without -R: closed loop, each connection sends its\n"
"                          next request when the previous answer arrives.\n"
"  -t, --threads N         worker threads (default 1; connections are spread)\n"
"      --h2                HTTP/2 with prior knowledge (h2c) instead of\n"
"                          HTTP/1.1; each stream is a request, counted and\n"
"                          timed like an HTTP/1.1 one\n"
"      --streams N         with --h2: requests in flight per connection\n"
"                          (default 1; -R spreads over connections x streams)\n"
"      --grpc              unary gRPC calls (implies --h2): POST of one\n"
"                          message to URL's path (weir-pod: /weir.Echo/Unary);\n"
"                          a non-zero grpc-status is an error (kind grpc)\n"
"  -H, --header 'N: V'     add a request header (repeatable; may replace Host)\n"
"      --version-header N  response header naming the version\n"
"                          (default X-Weir-Version)\n"
"      --timeout TIME      per request and per connect (default %.0f s)\n"
"      --json              print one JSON document instead of the table\n"
"      --plot FILE.svg     draw request rate, p50/p99 latency and error %% per\n"
"                          version over time into a self-contained SVG\n"
"      --control SOCKET    weir's control socket: read the configured split\n"
"                          at start (shown next to the achieved share)\n"
"      --events SOCKET     follow weir's event stream on its control socket:\n"
"                          the report marks when the split changed and why\n"
"                          (guard trips, rollout steps), in the table, the\n"
"                          JSON (\"events\") and the plot\n"
"      --ramp V=P1,P2,...  with --control: at start and every --step set\n"
"                          version V to the next percent; the other versions\n"
"                          share the rest in proportion to their current split\n"
"                          (evenly if all are 0). The run still ends after -d.\n"
"      --step TIME         ramp step length (default %.0f s)\n"
"      --max-error-rate V=R  CI gate: fail (exit 3) when version V's error\n"
"                          rate is above R (1%%, 0.5%% or a fraction 0.01);\n"
"                          V = all: the whole run. Repeatable.\n"
"      --max-p99 V=T       fail when V's p99 latency is above T (200ms, 0.5s)\n"
"      --max-p99-ratio V/B=X  fail when V's p99 is above X times B's (v2/v1=1.5)\n"
"                          A threshold whose version finished no request is\n"
"                          broken. Each broken one is a line on stderr; --json\n"
"                          adds \"thresholds\": [{threshold, value, pass}...].\n"
"  -q, --quiet             no progress lines on stderr\n"
"  -h, --help              this text\n"
"  -V, --version           print the version\n"
"\n"
"Counting: a request is finished when its response is complete or it failed.\n"
"Errors are transport failures plus 5xx responses; 4xx responses are answers,\n"
"not errors. Kinds: connect (refused, unreachable, timed out), reset (reset\n"
"or EOF inside a response), closed (the server closed a kept-alive connection\n"
"before answering), timeout, parse (not HTTP/1.x; with --h2 an HTTP/1.x\n"
"answer), http_5xx, grpc (--grpc). Latency covers\n"
"every complete response (5xx included). Responses without the version header\n"
"and requests that failed before any response header count as \"unknown\".\n"
"Open loop: a request due while its connection is busy waits for it, and the\n"
"wait is part of its latency; a failed connect fails every request due by\n"
"then. At the end nothing new is sent; requests in flight (and requests\n"
"already due) get min(timeout, 2 s) to finish, and what is left counts as\n"
"timed out. Progress: one line per second on stderr (-q silences it).\n"
"\n"
"Exit status: 0 done; 1 every request failed, none finished, or a ramp step\n"
"failed mid-run; 2 usage error, bad URL, connection refused at start or the\n"
"control socket unusable at start; 3 a threshold (--max-*) broken; 130\n"
"interrupted (report still printed).\n",
            DEFAULT_CONNS, DEFAULT_DURATION_S, DEFAULT_TIMEOUT_S,
            DEFAULT_STEP_S);
    /* clang-format on */
}

__attribute__((format(printf, 1, 2), noreturn)) static void
usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "weir-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'weir-bench --help'.\n");
    va_end(ap);
    exit(2);
}

static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Seconds as "10", "2.5", "10s", "500ms", "2m", "1h". */
static bool parse_seconds(const char *s, double *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v))
        return false;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "ms") == 0)
        mult = 0.001;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else {
        uint32_t ms; /* compound, as Go writes them: 1m30s */
        if (util_parse_duration(s, &ms, NULL) < 0 || ms == 0)
            return false;
        *out = ms / 1000.0;
        return true;
    }
    v *= mult;
    if (!(v > 0) || v > 86400 * 7)
        return false;
    *out = v;
    return true;
}

static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* "Name: value" per RFC 9110 §5.1 / §5.5. */
static bool valid_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    for (const char *p = h; p < colon; p++)
        if (!is_token_char(*p))
            return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\0')
            return false;
    return true;
}

static bool has_header(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < opts.n_headers; i++)
        if (strncasecmp(opts.headers[i], name, n) == 0 &&
            opts.headers[i][n] == ':')
            return true;
    return false;
}

static void parse_args(int argc, char **argv)
{
    enum {
        OPT_VERSION_HEADER = 256,
        OPT_JSON,
        OPT_PLOT,
        OPT_RAMP,
        OPT_STEP,
        OPT_CONTROL,
        OPT_EVENTS,
        OPT_TIMEOUT,
        OPT_GATE_ERRORS,
        OPT_GATE_P99,
        OPT_GATE_RATIO,
        OPT_H2,
        OPT_STREAMS,
        OPT_GRPC,
    };
    static const struct option longopts[] = {
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'R'},
        {"threads", required_argument, NULL, 't'},
        {"header", required_argument, NULL, 'H'},
        {"version-header", required_argument, NULL, OPT_VERSION_HEADER},
        {"json", no_argument, NULL, OPT_JSON},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"ramp", required_argument, NULL, OPT_RAMP},
        {"step", required_argument, NULL, OPT_STEP},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"events", required_argument, NULL, OPT_EVENTS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-error-rate", required_argument, NULL, OPT_GATE_ERRORS},
        {"max-p99", required_argument, NULL, OPT_GATE_P99},
        {"max-p99-ratio", required_argument, NULL, OPT_GATE_RATIO},
        {"h2", no_argument, NULL, OPT_H2},
        {"streams", required_argument, NULL, OPT_STREAMS},
        {"grpc", no_argument, NULL, OPT_GRPC},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    bool step_given = false;
    const char *ramp_arg = NULL;
    opts.conns = DEFAULT_CONNS;
    opts.threads = 1;
    opts.duration_s = DEFAULT_DURATION_S;
    opts.version_header = "X-Weir-Version";
    opts.step_s = DEFAULT_STEP_S;
    opts.timeout_s = DEFAULT_TIMEOUT_S;

    int ch;
    while ((ch = getopt_long(argc, argv, "c:d:R:t:H:qhV", longopts, NULL)) !=
           -1) {
        switch (ch) {
        case 'c':
            if (!parse_u32(optarg, 1, 1000000, &opts.conns))
                usage_error("-c wants a number of connections 1..1000000, "
                            "not '%s'",
                            optarg);
            break;
        case 'd':
            if (!parse_seconds(optarg, &opts.duration_s))
                usage_error("-d wants a duration (10, 2.5, 500ms, 2m), not "
                            "'%s'",
                            optarg);
            opts.duration_given = true;
            break;
        case 'R': {
            char *end;
            errno = 0;
            opts.rate_per_s = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(opts.rate_per_s > 0) ||
                opts.rate_per_s > 1e8)
                usage_error("-R wants a rate in requests/s above 0, not '%s'",
                            optarg);
            break;
        }
        case 't':
            if (!parse_u32(optarg, 1, 256, &opts.threads))
                usage_error("-t wants 1..256 threads, not '%s'", optarg);
            break;
        case 'H':
            if (!valid_header(optarg))
                usage_error("-H wants 'Name: value', not '%s'", optarg);
            if (opts.n_headers == MAX_HEADERS)
                usage_error("too many -H headers (at most 64)");
            opts.headers[opts.n_headers++] = optarg;
            break;
        case OPT_VERSION_HEADER: {
            size_t n = strlen(optarg);
            bool ok = n > 0 && n < BENCH_LOAD_HEADER_NAME_MAX;
            for (size_t i = 0; ok && i < n; i++)
                ok = is_token_char(optarg[i]);
            if (!ok)
                usage_error("--version-header wants a header name, not '%s'",
                            optarg);
            opts.version_header = optarg;
            break;
        }
        case OPT_JSON:
            opts.json = true;
            break;
        case OPT_PLOT:
            opts.plot_path = optarg;
            break;
        case OPT_RAMP:
            ramp_arg = optarg;
            break;
        case OPT_STEP:
            if (!parse_seconds(optarg, &opts.step_s))
                usage_error("--step wants a duration (10, 2.5, 500ms), not "
                            "'%s'",
                            optarg);
            step_given = true;
            break;
        case OPT_EVENTS:
            opts.events_path = optarg;
            break;
        case OPT_CONTROL:
            opts.control_path = optarg;
            break;
        case OPT_TIMEOUT:
            if (!parse_seconds(optarg, &opts.timeout_s))
                usage_error("--timeout wants a duration (5, 500ms), not '%s'",
                            optarg);
            break;
        case OPT_GATE_ERRORS:
        case OPT_GATE_P99:
        case OPT_GATE_RATIO: {
            char why[256];
            enum bench_gate_kind k = ch == OPT_GATE_ERRORS ? BENCH_GATE_ERROR_RATE
                                     : ch == OPT_GATE_P99  ? BENCH_GATE_P99
                                                           : BENCH_GATE_P99_RATIO;
            if (bench_gate_parse(&gates, k, optarg, why, sizeof(why)) < 0)
                usage_error("%s", why);
            break;
        }
        case OPT_H2:
            opts.h2 = true;
            break;
        case OPT_GRPC:
            opts.grpc = opts.h2 = true;
            break;
        case OPT_STREAMS:
            if (!parse_u32(optarg, 1, BENCH_H2_MAX_STREAMS, &opts.streams))
                usage_error("--streams wants 1..%d streams per connection, not '%s'",
                            BENCH_H2_MAX_STREAMS, optarg);
            break;
        case 'q':
            opts.quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("weir-bench %s\n", WEIR_VERSION);
            exit(0);
        default:
            fprintf(stderr, "Try 'weir-bench --help'.\n");
            exit(2);
        }
    }
    if (optind != argc - 1)
        usage_error("%s", optind >= argc ? "missing URL"
                                         : "exactly one URL, please");
    opts.url_text = argv[optind];
    char err[256];
    if (bench_url_parse(opts.url_text, &opts.url, err, sizeof(err)) != 0) {
        fprintf(stderr, "weir-bench: bad URL '%s': %s\n", opts.url_text, err);
        exit(2);
    }
    if (ramp_arg) {
        const char *why;
        if (bench_sched_parse_ramp(ramp_arg, opts.ramp_target,
                                   sizeof(opts.ramp_target), opts.ramp_bp,
                                   BENCH_SCHED_MAX_STEPS, &opts.n_ramp,
                                   &why) != 0) {
            fprintf(stderr, "weir-bench: --ramp '%s': %s\nTry 'weir-bench "
                            "--help'.\n",
                    ramp_arg, why);
            exit(2);
        }
        if (!opts.control_path)
            usage_error("--ramp needs --control SOCKET (weir's control "
                        "socket)");
        if (!opts.duration_given)
            opts.duration_s = (double)opts.n_ramp * opts.step_s;
    } else if (step_given) {
        usage_error("--step only makes sense with --ramp");
    }
    if (opts.streams && !opts.h2)
        usage_error("--streams needs --h2 (HTTP/1.1 sends one request at a time)");
    if (!opts.streams)
        opts.streams = 1;
    if (opts.h2 && (uint64_t)opts.conns * opts.streams > 1000000)
        usage_error("-c x --streams is above 1000000 requests in flight");
    if (opts.threads > opts.conns)
        opts.threads = opts.conns;
    if (opts.rate_per_s > 0 &&
        opts.rate_per_s * opts.duration_s / opts.conns > 4e15)
        usage_error("-R and -d describe too many requests");
}

/* ---- setup ---- */

/* Connect once, blocking with a timeout. 0, or -1 with errno. */
static int probe(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, sa, len);
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, (int)(opts.timeout_s * 1000));
        if (n == 0) {
            errno = ETIMEDOUT;
        } else if (n > 0) {
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            rc = err ? -1 : 0;
            errno = err;
        }
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc == 0 ? 0 : -1;
}

/* Resolve the URL's host once and keep the first address that accepts. */
static void resolve_and_probe(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(opts.url.host, opts.url.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "weir-bench: cannot resolve '%s': %s\n", opts.url.host,
                gai_strerror(rc));
        exit(2);
    }
    int last_err = 0;
    char text[80] = "";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        util_format_addr(ai->ai_addr, text, sizeof(text));
        if (probe(ai->ai_addr, ai->ai_addrlen) == 0) {
            memcpy(&bench_load_shared.addr, ai->ai_addr, ai->ai_addrlen);
            bench_load_shared.addr_len = ai->ai_addrlen;
            snprintf(bench_load_shared.addr_text, sizeof(bench_load_shared.addr_text), "%s", text);
            freeaddrinfo(res);
            return;
        }
        last_err = errno;
    }
    freeaddrinfo(res);
    fprintf(stderr, "weir-bench: cannot connect to %s (%s): %s\n", text,
            opts.url_text, strerror(last_err));
    exit(2);
}

static void build_request(void)
{
    size_t cap = 256 + strlen(opts.url.target) + strlen(opts.url.authority);
    for (size_t i = 0; i < opts.n_headers; i++)
        cap += strlen(opts.headers[i]) + 2;
    char *r = xmalloc(cap);
    int n = snprintf(r, cap, "GET %s HTTP/1.1\r\n", opts.url.target);
    size_t len = (size_t)n;
    if (!has_header("Host"))
        len += (size_t)snprintf(r + len, cap - len, "Host: %s\r\n",
                                opts.url.authority);
    if (!has_header("User-Agent"))
        len += (size_t)snprintf(r + len, cap - len,
                                "User-Agent: weir-bench/%s\r\n", WEIR_VERSION);
    for (size_t i = 0; i < opts.n_headers; i++)
        len += (size_t)snprintf(r + len, cap - len, "%s\r\n", opts.headers[i]);
    len += (size_t)snprintf(r + len, cap - len, "\r\n");
    CHECK(len < cap);
    bench_load_shared.request = r;
    bench_load_shared.request_len = len;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)opts.conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        fprintf(stderr, "weir-bench: %u connections need %llu file "
                        "descriptors but the hard limit is %llu "
                        "(ulimit -Hn)\n",
                opts.conns, (unsigned long long)want,
                (unsigned long long)rl.rlim_max);
        exit(2);
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "weir-bench: cannot raise the open-file limit to "
                        "%llu: %s\n",
                (unsigned long long)want, strerror(errno));
        exit(2);
    }
}

/* ---- progress ---- */

struct progress {
    uint64_t last_req;
    uint64_t last_ns;
    char names[BENCH_REPORT_MAX_VERSIONS][BENCH_SCHED_NAME_MAX];
    uint64_t last_by[BENCH_REPORT_MAX_VERSIONS];
    size_t n;
};

static size_t progress_slot(struct progress *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            return i;
    if (p->n == BENCH_REPORT_MAX_VERSIONS)
        return 0;
    snprintf(p->names[p->n], BENCH_SCHED_NAME_MAX, "%s", name);
    p->last_by[p->n] = 0;
    return p->n++;
}

static void progress_print(struct progress *p, struct bench_load_worker **ws, size_t nw,
                           size_t step_shown)
{
    uint64_t now = bench_load_now_ns();
    uint64_t req = 0, err = 0;
    uint64_t by[BENCH_REPORT_MAX_VERSIONS] = {0};
    for (size_t i = 0; i < nw; i++) {
        struct bench_report *r = &ws[i]->report;
        size_t n = atomic_load_explicit(&r->n_versions, memory_order_acquire);
        for (size_t k = 0; k < n; k++) {
            uint64_t v = atomic_load_explicit(&r->v[k]->live_requests,
                                              memory_order_relaxed);
            by[progress_slot(p, r->v[k]->name)] += v;
            req += v;
        }
        err += bench_report_live_errors(r);
    }
    double dt = (double)(now - p->last_ns) / 1e9;
    uint64_t dreq = req - p->last_req;
    char line[1024];
    size_t len = (size_t)snprintf(line, sizeof(line),
                                  "weir-bench: %6.1fs %9.0f req/s  %llu "
                                  "errors ",
                                  (double)(now - bench_load_shared.t0_ns) / 1e9,
                                  dt > 0 ? (double)dreq / dt : 0,
                                  (unsigned long long)err);
    for (size_t i = 0; i < p->n && len < sizeof(line); i++) {
        uint64_t d = by[i] - p->last_by[i];
        p->last_by[i] = by[i];
        if (d == 0)
            continue;
        len += (size_t)snprintf(line + len, sizeof(line) - len, " %s %.1f%%",
                                p->names[i],
                                dreq ? 100.0 * (double)d / (double)dreq : 0.0);
    }
    if (opts.n_ramp && len < sizeof(line)) {
        char pct[16];
        util_format_bp(opts.ramp_bp[step_shown], pct, sizeof(pct));
        snprintf(line + len, sizeof(line) - len, "   [step %zu/%zu: %s %s%%]",
                 step_shown + 1, opts.n_ramp, opts.ramp_target, pct);
    }
    fprintf(stderr, "%s\n", line);
    p->last_req = req;
    p->last_ns = now;
}

static void print_step(size_t s, const struct bench_ramp_step *st)
{
    if (opts.quiet)
        return;
    char sp[512];
    fprintf(stderr, "weir-bench: ramp step %zu/%zu at %.1f s: %s", s + 1,
            opts.n_ramp, st->at_s,
            bench_sched_format_split(&st->split, sp, sizeof(sp)));
    if (st->generation)
        fprintf(stderr, " (generation %llu)",
                (unsigned long long)st->generation);
    fprintf(stderr, "\n");
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    resolve_and_probe();
    build_request();
    bench_load_shared.rate_per_s = opts.rate_per_s;
    bench_load_shared.conns = opts.conns;
    bench_load_shared.threads = opts.threads;
    bench_load_shared.version_header = opts.version_header;
    bench_load_shared.vh_len = strlen(opts.version_header);
    bench_load_shared.timeout_ns = (uint64_t)(opts.timeout_s * 1e9);
    bench_load_shared.grace_ns = (uint64_t)(fmin(opts.timeout_s, BENCH_LOAD_MAX_GRACE_S) * 1e9);
    atomic_init(&bench_load_shared.end_off_ns, (uint64_t)(opts.duration_s * 1e9));
    atomic_init(&bench_load_shared.step, 0);
    atomic_init(&bench_load_shared.abort_now, false);
    atomic_init(&bench_load_shared.workers_done, 0);
    char h2err[256];
    if (opts.h2 && bench_h2_setup(opts.url.target, opts.url.authority, opts.headers,
                                  opts.n_headers, opts.streams, opts.grpc, h2err,
                                  sizeof(h2err)) != 0)
        usage_error("%s", h2err);

    static struct bench_ramp_step steps[BENCH_SCHED_MAX_STEPS];
    struct bench_run run = {
        .url = opts.url_text,
        .version_header = opts.version_header,
        .open_loop = opts.rate_per_s > 0,
        .rate_per_s = opts.rate_per_s,
        .conns = opts.conns,
        .threads = opts.threads,
        .protocol = opts.grpc ? "grpc" : opts.h2 ? "h2c"
                                                 : "http/1.1",
        .streams = opts.h2 ? opts.streams : 0,
        .planned_s = opts.duration_s,
        .ramp_target = opts.n_ramp ? opts.ramp_target : NULL,
        .steps = steps,
    };
    char err[1024];
    if (opts.control_path) {
        uint64_t gen = 0;
        if (control_status(&run.configured, &gen, err, sizeof(err)) != 0) {
            fprintf(stderr, "weir-bench: control socket: %s\n", err);
            return 2;
        }
        run.has_configured = true;
    }
    if (opts.n_ramp) {
        if (ramp_apply(0, &steps[0], err, sizeof(err)) != 0) {
            fprintf(stderr, "weir-bench: ramp step 1: %s\n", err);
            return 2;
        }
        run.n_steps = 1;
        /* The split changes during the run: the ramp table shows each. */
        run.has_configured = false;
        print_step(0, &steps[0]);
        double ramp_s = (double)opts.n_ramp * opts.step_s;
        if (opts.duration_s < ramp_s - opts.step_s + 1e-9 && !opts.quiet)
            fprintf(stderr, "weir-bench: note: the run (%.1f s) ends before "
                            "the last ramp step (at %.1f s)\n",
                    opts.duration_s, ramp_s - opts.step_s);
    }

    struct bench_events *evs = NULL;
    if (opts.events_path && !(evs = bench_events_start(opts.events_path, err, sizeof(err)))) {
        fprintf(stderr, "weir-bench: --events: %s\n", err);
        return 2;
    }

    /* Block the signals in every thread; the main thread takes them with
     * sigtimedwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    size_t nw = opts.threads;
    struct bench_load_worker **ws = xcalloc(nw, sizeof(*ws));
    pthread_barrier_init(&bench_load_shared.connected, NULL, (unsigned)nw + 1);
    pthread_barrier_init(&bench_load_shared.go, NULL, (unsigned)nw + 1);
    for (size_t i = 0; i < nw; i++) {
        size_t n = opts.conns / nw + (i < opts.conns % nw ? 1 : 0);
        ws[i] = opts.h2 ? bench_h2_worker_new((unsigned)i, n, opts.duration_s, opts.n_ramp)
                        : bench_load_worker_new((unsigned)i, n, opts.duration_s, opts.n_ramp);
        if (pthread_create(&ws[i]->thread, NULL,
                           opts.h2 ? bench_h2_worker_main : bench_load_worker_main, ws[i]) != 0) {
            fprintf(stderr, "weir-bench: cannot start a thread: %s\n",
                    strerror(errno));
            return 2;
        }
    }
    pthread_barrier_wait(&bench_load_shared.connected);
    bench_load_shared.t0_ns = bench_load_now_ns();
    pthread_barrier_wait(&bench_load_shared.go);
    if (!opts.quiet && !opts.json)
        fprintf(stderr, "weir-bench: %s (%s), %s, %u connections%s, %.1f s\n",
                opts.url_text, bench_load_shared.addr_text,
                opts.rate_per_s > 0 ? "open loop" : "closed loop", opts.conns,
                opts.grpc ? " (gRPC over h2c)" : opts.h2 ? " (h2c)"
                                                         : "",
                opts.duration_s);

    struct progress prog = {.last_ns = bench_load_shared.t0_ns};
    uint64_t next_progress = bench_load_shared.t0_ns + 1000000000u;
    size_t next_step = 1;
    bool interrupted = false, ramp_failed = false;
    while (atomic_load(&bench_load_shared.workers_done) < nw) {
        uint64_t now = bench_load_now_ns();
        uint64_t end_abs = bench_load_shared.t0_ns + atomic_load(&bench_load_shared.end_off_ns);
        uint64_t step_abs = UINT64_MAX;
        if (next_step < opts.n_ramp && !ramp_failed)
            step_abs = bench_load_shared.t0_ns +
                       (uint64_t)((double)next_step * opts.step_s * 1e9);
        if (step_abs != UINT64_MAX && step_abs >= end_abs)
            step_abs = UINT64_MAX;
        uint64_t wake = now + 50000000u;
        if (next_progress < wake)
            wake = next_progress;
        if (step_abs < wake)
            wake = step_abs;
        if (wake > now) {
            struct timespec ts = {(time_t)((wake - now) / 1000000000u),
                                  (long)((wake - now) % 1000000000u)};
            int sig = sigtimedwait(&sigs, NULL, &ts);
            if (sig == SIGINT || sig == SIGTERM) {
                uint64_t off = bench_load_now_ns() - bench_load_shared.t0_ns;
                if (!interrupted) {
                    interrupted = true;
                    if (off < atomic_load(&bench_load_shared.end_off_ns))
                        atomic_store(&bench_load_shared.end_off_ns, off);
                    if (!opts.quiet)
                        fprintf(stderr, "weir-bench: interrupted: finishing "
                                        "requests in flight (again to stop "
                                        "now)\n");
                } else {
                    atomic_store(&bench_load_shared.abort_now, true);
                }
            }
            now = bench_load_now_ns();
        }
        if (step_abs != UINT64_MAX && now >= step_abs) {
            struct bench_ramp_step *st = &steps[next_step];
            st->at_s = (double)(now - bench_load_shared.t0_ns) / 1e9;
            if (ramp_apply(next_step, st, err, sizeof(err)) != 0) {
                fprintf(stderr, "weir-bench: ramp step %zu failed: %s; "
                                "stopping the run\n",
                        next_step + 1, err);
                ramp_failed = true;
                uint64_t off = bench_load_now_ns() - bench_load_shared.t0_ns;
                if (off < atomic_load(&bench_load_shared.end_off_ns))
                    atomic_store(&bench_load_shared.end_off_ns, off);
            } else {
                atomic_store(&bench_load_shared.step, (uint32_t)next_step);
                run.n_steps = next_step + 1;
                print_step(next_step, st);
            }
            next_step++;
        }
        if (now >= next_progress) {
            if (!opts.quiet && now < end_abs)
                progress_print(&prog, ws, nw, run.n_steps ? run.n_steps - 1 : 0);
            next_progress += 1000000000u;
        }
    }
    for (size_t i = 0; i < nw; i++)
        pthread_join(ws[i]->thread, NULL);

    run.duration_s = (double)atomic_load(&bench_load_shared.end_off_ns) / 1e9;
    struct bench_event *events = NULL;
    bench_events_stop(evs, bench_load_shared.t0_ns, &events, &run.n_events);
    run.events = events;
    struct bench_report total;
    bench_report_init(&total, opts.duration_s, BENCH_LOAD_MAX_GRACE_S, opts.n_ramp);
    for (size_t i = 0; i < nw; i++)
        bench_report_merge(&total, &ws[i]->report);

    size_t broken = bench_gate_eval(&gates, &total);
    struct json_buf gate_json;
    json_buf_init(&gate_json);
    bench_gate_json(&gates, &gate_json);
    run.extra_json = gate_json.len ? gate_json.p : NULL;
    if (opts.json)
        bench_report_print_json(&total, &run, stdout);
    else
        bench_report_print_table(&total, &run, stdout);
    if (!opts.json)
        bench_gate_print_table(&gates, stdout);
    fflush(stdout);
    bench_gate_print_broken(&gates, stderr);
    json_buf_dispose(&gate_json);
    int rc = broken ? BENCH_GATE_EXIT : 0;
    if (opts.plot_path) {
        if (bench_report_write_svg(&total, &run, opts.plot_path) != 0) {
            fprintf(stderr, "weir-bench: cannot write %s: %s\n",
                    opts.plot_path, strerror(errno));
            rc = 1;
        } else if (!opts.quiet) {
            fprintf(stderr, "weir-bench: plot written to %s\n",
                    opts.plot_path);
        }
    }
    uint64_t treq = bench_report_live_requests(&total);
    uint64_t terr = bench_report_live_errors(&total);
    if (treq == 0 || terr == treq || ramp_failed)
        rc = 1;
    if (interrupted)
        rc = 130;

    bench_report_dispose(&total);
    free(events);
    for (size_t i = 0; i < nw; i++) {
        if (opts.h2)
            bench_h2_worker_free(ws[i]);
        else
            bench_load_worker_free(ws[i]);
    }
    bench_h2_dispose();
    free(ws);
    free(bench_load_shared.request);
    pthread_barrier_destroy(&bench_load_shared.connected);
    pthread_barrier_destroy(&bench_load_shared.go);
    return rc;
}
