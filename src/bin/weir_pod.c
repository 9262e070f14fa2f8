/*
 * weir_pod.c — weir-pod, the demo and test upstream.
 *
 * Answers like the demo app of the Kubernetes deployment-strategy tutorials
 * (`Host: NAME, Version: VERSION`), and is the scripted upstream of weir's
 * integration tests and benchmarks, so it speaks strict HTTP/1.1 and is fast.
 * On the same listeners it speaks h2c with prior knowledge (a connection
 * that opens with the HTTP/2 client preface, pod_h2.c) with the same
 * answers, and a gRPC echo service over the gRPC wire format (pod_grpc.c).
 *
 * Shape: main() parses the CLI, binds every listening socket (so port 0 can
 * be printed back as `listening ADDR` / `probe ADDR`), then starts N workers,
 * each a thread with its own event_base and its own SO_REUSEPORT listener
 * (worker 0 also owns the probe listener), and sleeps in sigwait() until
 * SIGTERM/SIGINT. Stopping: one byte into a pipe that every worker watches.
 * Nothing crosses threads except the configuration (read-only once workers
 * start), the readiness flag and the error-injection counter (atomics).
 *
 * A client (struct conn) is a socket with a fixed input buffer parsed in
 * place by llhttp (no allocation per request) and an evbuffer of output,
 * written with one writev() as soon as a read has been parsed. Requests are
 * answered strictly in order, one at a time: on_message_complete pauses the
 * parser, so a pipelined request is parsed only once the answer before it is
 * queued. State machine (enum conn_state):
 *
 *   READ ──(answer needs a timer)──▶ WAIT ──(timer)──┐
 *    ▲  ──(/bytes, /chunked)───────▶ STREAM ─(done)──┤
 *    └───────────────────────────────────────────────┘
 *   READ ──(101 on /ws)──▶ TUNNEL (echo bytes)
 *   READ ──(first bytes are the h2c preface)──▶ H2 (nghttp2 session)
 *   any ──(last answer, error, EOF)──▶ CLOSING ──(output drained)──▶ LINGER
 *        (write side shut, input discarded until EOF or LINGER_MS) ──▶ freed
 *
 * Backpressure: the parser stops while the output holds OUT_HIGH bytes, the
 * socket is not read while the input buffer is full, streamed bodies are
 * refilled from one static page of 'x' (evbuffer references, no copies).
 *
 * Paths (main listener): any path not below → the demo answer; /echo[/...]
 * → the request line, headers and body as received (body up to 1 MiB,
 * else 413); /upload → consumes any body, `received N bytes`; /status/NNN;
 * /bytes/N; /chunked/N; /sleep/MS; /close; /ws (101 then a raw byte echo).
 * Probes (probe listener, or the main one when --probe is not given):
 * /live, /ready, POST /ready/on, POST /ready/off, POST /faults/on|off.
 * --latency and --error-rate apply to every request on the main listener
 * except the probes, from the start or (--faults-off) from /faults/on.
 *
 * Files: weir_pod.c (this: command line, listeners, workers, signals),
 * pod_conn.c (a client connection), pod_http.c (parsing and answers),
 * pod_h2.c (h2c streams), pod_grpc.c (the gRPC echo), pod.h and pod_h2.h
 * (what they share). Only util.c of weir's core is used.
 */
#include "pod.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

#define MAX_THREADS 256

static struct pod_config config; /* see struct pod_config */
static int stop_pipe[2] = {-1, -1};

static void on_accept_main(struct evconnlistener *l, evutil_socket_t fd,
                           struct sockaddr *sa, int salen, void *arg)
{
    struct worker *w = arg;
    (void)l, (void)sa, (void)salen;
    CHECK(w->magic == WORKER_MAGIC);
    pod_conn_new(w, fd, false);
}

static void on_accept_probe(struct evconnlistener *l, evutil_socket_t fd,
                            struct sockaddr *sa, int salen, void *arg)
{
    struct worker *w = arg;
    (void)l, (void)sa, (void)salen;
    CHECK(w->magic == WORKER_MAGIC);
    pod_conn_new(w, fd, true);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd, (void)what;
    CHECK(w->magic == WORKER_MAGIC);
    event_base_loopbreak(w->base);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    CHECK(w->magic == WORKER_MAGIC);
    event_base_dispatch(w->base);
    while (w->conns)
        pod_conn_free(w->conns, "shutdown");
    return NULL;
}

/* clang-format off */
static void usage(FILE *f)
{
    fprintf(f,
"usage: weir-pod [--name NAME] [--version VERSION] [--listen ADDR] [--probe ADDR]\n"
"                [--latency DUR] [--latency-jitter DUR] [--error-rate FRACTION]\n"
"                [--threads N] [--idle-timeout DUR] [--seed N] [--unready]\n"
"                [--faults-off]\n"
"                [--quiet] [--verbose]\n"
"       weir-pod --version | --help\n"
"\n"
"Demo and test upstream for weir: answers GET / with\n"
"  \"Host: NAME, Version: VERSION\\n\" (text/plain).\n"
"\n"
"  --name NAME           pod name (default: the host name)\n"
"  --version VERSION     app version to report (default: v1); given alone,\n"
"                        prints weir-pod's own version\n"
"  --listen ADDR         host:port or [v6]:port (default 0.0.0.0:8080);\n"
"                        port 0 picks a free port; \":PORT\" means 0.0.0.0\n"
"  --probe ADDR          serve the probes on their own listener (else on --listen)\n"
"  --latency DUR         delay every answer (e.g. 20ms, 1s)\n"
"  --latency-jitter DUR  add a uniform random 0..DUR to each delay\n"
"  --error-rate F        answer 500 \"error injected\" to a fraction F (0..1):\n"
"                        the k-th request fails iff floor(k*F) > floor((k-1)*F)\n"
"  --threads N           worker threads, each with its own SO_REUSEPORT listener\n"
"  --idle-timeout DUR    close idle keep-alive connections (default 60s, 0 = never)\n"
"  --seed N              seed of the jitter generator (default: time and pid)\n"
"  --unready             start with /ready answering 503\n"
"  --faults-off          --latency and --error-rate start switched off (POST\n"
"                        /faults/on starts them at a known instant)\n"
"  --quiet               no messages on stderr except errors\n"
"  --verbose             log every answer and every close on stderr\n"
"\n"
"On start, prints one line per listener on stdout: \"listening ADDR\" and\n"
"\"probe ADDR\" (the bound address, so port 0 can be read back).\n"
"\n"
"Paths on the main listener (--latency and --error-rate apply to these):\n"
"  /echo[/...]     200; body: \"METHOD TARGET HTTP/x.y\\n\", each request header as\n"
"                  \"Name: value\\n\", \"\\n\", then the body (413 above 1 MiB)\n"
"  /upload         consumes a body of any size; \"received N bytes\\n\"\n"
"  /status/NNN     answers status NNN (200..999; 204 and 304 without a body)\n"
"  /bytes/N        N bytes of 'x' with Content-Length, streamed\n"
"  /chunked/N      the same with Transfer-Encoding: chunked (HTTP/1.1 clients)\n"
"  /sleep/MS       answers after MS milliseconds\n"
"  /close          answers with Connection: close, then closes\n"
"  /ws             with Upgrade: websocket, 101 then echoes every byte raw;\n"
"                  else 426\n"
"  anything else   the demo answer\n"
"Probes (on --probe, or on the main listener when --probe is not given):\n"
"  GET /live       200 \"ok\\n\"\n"
"  GET /ready      200 \"ready\\n\" or 503 \"not ready\\n\"\n"
"  POST /ready/on, POST /ready/off   set readiness (200)\n"
"  POST /faults/on, POST /faults/off  switch --latency and --error-rate (200)\n"
"Every answer carries X-Pod: NAME and X-Version: VERSION.\n"
"\n"
"HTTP/2: a connection that starts with the HTTP/2 preface (h2c, prior\n"
"knowledge: curl --http2-prior-knowledge, h2load) gets the same answers per\n"
"stream, with --latency and --error-rate (/chunked/N is /bytes/N; /ws: 400).\n"
"gRPC echo (h2 only, content-type application/grpc, else 415; over HTTP/1.1\n"
"505), messages framed as 1 byte compressed flag + 4 byte length:\n"
"  /weir.Echo/Unary   one message in, the same message out, grpc-status 0\n"
"  /weir.Echo/Stream  each message echoed as it arrives (flow-controlled),\n"
"                     grpc-status 0 after the client ends its stream\n"
"  /weir.Echo/ClientStream  many messages in, one back: all their payloads\n"
"  /weir.Echo/ServerStream  one message in, x-repeat: N copies back (1..1e6)\n"
"  --error-rate fails a call with grpc-status 14 (UNAVAILABLE) and\n"
"  grpc-message \"error injected\"; not one message 13 (INTERNAL); compressed\n"
"  or unknown method 12 (UNIMPLEMENTED); above 1 MiB 8 (RESOURCE_EXHAUSTED).\n"
"SIGTERM/SIGINT: exit 0.\n");
    /* clang-format on */
}

/* clang-format off */
__attribute__((noreturn, format(printf, 1, 2)))
static void die_usage(const char *fmt, ...)
/* clang-format on */
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weir-pod: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'weir-pod --help'.\n", stderr);
    exit(2);
}

/* Like util_parse_addr, also accepting port 0 and an empty host (0.0.0.0). */
static int pod_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[128];
    size_t n = strlen(s);
    if (n + 8 >= sizeof(buf))
        return -1;
    int k = snprintf(buf, sizeof(buf), "%s%s", s[0] == ':' ? "0.0.0.0" : "", s);
    bool port0 = k >= 2 && buf[k - 1] == '0' && buf[k - 2] == ':';
    if (port0)
        buf[k - 1] = '1';
    if (util_parse_addr(buf, ss, len, NULL) < 0)
        return -1;
    if (port0 && ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = 0;
    else if (port0)
        ((struct sockaddr_in6 *)ss)->sin6_port = 0;
    return 0;
}

static uint32_t parse_duration_arg(const char *opt, const char *s)
{
    uint32_t ms;
    if (strcmp(s, "0") == 0)
        return 0;
    if (util_parse_duration_ms(s, &ms) < 0)
        die_usage("bad duration '%s' (write e.g. 250ms, 2s, 1m)", s);
    (void)opt;
    return ms;
}

static bool is_header_safe(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > IDENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return s[0] != ' ' && s[n - 1] != ' ';
}

/* Open a listening socket; binds to *ss and writes the bound address back. */
static int open_listener(struct sockaddr_storage *ss, socklen_t len, bool reuseport)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Only with several threads: a lone pod must fail on a port in use. */
    if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, (struct sockaddr *)ss, len) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)ss, &len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int open_listeners(const char *what, const char *text, struct sockaddr_storage *ss,
                          socklen_t len, int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        fds[i] = open_listener(ss, len, n > 1);
        if (fds[i] < 0) {
            fprintf(stderr, "weir-pod: cannot listen on %s: %s\n", text, strerror(errno));
            return -1;
        }
    }
    char buf[INET6_ADDRSTRLEN + 16];
    util_format_addr((struct sockaddr *)ss, buf, sizeof(buf));
    printf("%s %s\n", what, buf);
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_NAME = 256,
           O_VERSION,
           O_LISTEN,
           O_PROBE,
           O_LATENCY,
           O_JITTER,
           O_ERROR_RATE,
           O_THREADS,
           O_IDLE,
           O_SEED,
           O_UNREADY,
           O_QUIET,
           O_VERBOSE,
           O_FAULTS_OFF };
    static const struct option opts[] = {
        {"name", required_argument, NULL, O_NAME},
        {"version", required_argument, NULL, O_VERSION},
        {"listen", required_argument, NULL, O_LISTEN},
        {"probe", required_argument, NULL, O_PROBE},
        {"latency", required_argument, NULL, O_LATENCY},
        {"latency-jitter", required_argument, NULL, O_JITTER},
        {"error-rate", required_argument, NULL, O_ERROR_RATE},
        {"threads", required_argument, NULL, O_THREADS},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"seed", required_argument, NULL, O_SEED},
        {"faults-off", no_argument, NULL, O_FAULTS_OFF},
        {"unready", no_argument, NULL, O_UNREADY},
        {"quiet", no_argument, NULL, O_QUIET},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* "--version" alone is the program's version; with a value, the app's. */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("weir-pod %s\n", WEIR_VERSION);
        return 0;
    }
    static char hostname[IDENT_MAX + 1];
    const char *listen_s = "0.0.0.0:8080", *probe_s = NULL;
    char *end;
    config.version = "v1";
    config.threads = 1;
    config.idle_ms = 60000;
    config.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    atomic_init(&config.ready, true);
    atomic_init(&config.faults, true);
    atomic_init(&config.app_requests, 0);
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_NAME: config.name = optarg; break;
        case O_VERSION: config.version = optarg; break;
        case O_LISTEN: listen_s = optarg; break;
        case O_PROBE: probe_s = optarg; break;
        case O_FAULTS_OFF: atomic_store(&config.faults, false); break;
        case O_LATENCY: config.latency_ms = parse_duration_arg("latency", optarg); break;
        case O_JITTER: config.jitter_ms = parse_duration_arg("latency-jitter", optarg); break;
        case O_IDLE: config.idle_ms = parse_duration_arg("idle-timeout", optarg); break;
        case O_ERROR_RATE: {
            errno = 0;
            double r = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(r >= 0.0 && r <= 1.0))
                die_usage("--error-rate must be a fraction 0..1, not '%s'", optarg);
            config.error_ppm = (uint32_t)(r * 1e6 + 0.5);
            break;
        }
        case O_THREADS: {
            errno = 0;
            unsigned long t = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || t < 1 || t > MAX_THREADS)
                die_usage("--threads must be 1..256, not '%s'", optarg);
            config.threads = (unsigned)t;
            break;
        }
        case O_SEED:
            errno = 0;
            config.seed = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end)
                die_usage("bad --seed '%s'", optarg);
            break;
        case O_UNREADY: atomic_store(&config.ready, false); break;
        case O_QUIET: config.quiet = true; break;
        case O_VERBOSE: config.verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: die_usage("%s", "bad arguments");
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!config.name) {
        if (gethostname(hostname, sizeof(hostname) - 1) < 0 || !hostname[0])
            snprintf(hostname, sizeof(hostname), "weir-pod");
        config.name = hostname;
    }
    if (!is_header_safe(config.name))
        die_usage("--name must be 1..256 printable characters: '%s'", config.name);
    if (!is_header_safe(config.version))
        die_usage("--version must be 1..256 printable characters: '%s'", config.version);
    struct sockaddr_storage listen_ss, probe_ss;
    socklen_t listen_len, probe_len = 0;
    if (pod_parse_addr(listen_s, &listen_ss, &listen_len) < 0)
        die_usage("bad --listen address '%s' (host:port or [v6]:port)", listen_s);
    if (probe_s && pod_parse_addr(probe_s, &probe_ss, &probe_len) < 0)
        die_usage("bad --probe address '%s' (host:port or [v6]:port)", probe_s);
    config.has_probe = probe_s != NULL;
    config.ident_len = (size_t)snprintf(config.ident, sizeof(config.ident),
                                        "X-Pod: %s\r\nX-Version: %s\r\n",
                                        config.name, config.version);
    config.demo_body_len = (size_t)snprintf(config.demo_body, sizeof(config.demo_body),
                                            "Host: %s, Version: %s\n",
                                            config.name, config.version);
    pod_http_init();
    signal(SIGPIPE, SIG_IGN);

    int main_fds[MAX_THREADS], probe_fd = -1;
    if (open_listeners("listening", listen_s, &listen_ss, listen_len, main_fds,
                       config.threads) < 0 ||
        (probe_s && open_listeners("probe", probe_s, &probe_ss, probe_len, &probe_fd, 1) < 0))
        return 1;
    fflush(stdout);

    /* Workers inherit a mask with the stop signals blocked; main sigwaits. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
        perror("weir-pod: pipe");
        return 1;
    }

    if (!config.quiet)
        fprintf(stderr, "weir-pod %s: %s %s, %u thread%s\n", WEIR_VERSION, config.name,
                config.version, config.threads, config.threads == 1 ? "" : "s");

    struct worker *workers = xcalloc(config.threads, sizeof(*workers));
    for (unsigned i = 0; i < config.threads; i++) {
        struct worker *w = &workers[i];
        w->magic = WORKER_MAGIC;
        w->id = i;
        w->cfg = &config;
        w->rng = (config.seed + i) * UINT64_C(0x9e3779b97f4a7c15) | 1;
        w->base = event_base_new();
        CHECK(w->base);
        w->main_lst = evconnlistener_new(w->base, on_accept_main, w,
                                         LEV_OPT_CLOSE_ON_FREE, 0, main_fds[i]);
        if (i == 0 && probe_fd >= 0)
            w->probe_lst = evconnlistener_new(w->base, on_accept_probe, w,
                                              LEV_OPT_CLOSE_ON_FREE, 0, probe_fd);
        w->stop_ev = event_new(w->base, stop_pipe[0], EV_READ | EV_PERSIST, on_stop, w);
        CHECK(w->main_lst && (i != 0 || probe_fd < 0 || w->probe_lst) && w->stop_ev);
        event_add(w->stop_ev, NULL);
        CHECK(pthread_create(&w->thread, NULL, worker_main, w) == 0);
    }
    int sig = 0;
    while (sigwait(&stop_set, &sig) != 0)
        ;
    /* Never read: the byte keeps the pipe readable for every worker. */
    if (write(stop_pipe[1], "x", 1) != 1)
        _exit(0);
    for (unsigned i = 0; i < config.threads; i++) {
        struct worker *w = &workers[i];
        pthread_join(w->thread, NULL);
        evconnlistener_free(w->main_lst);
        if (w->probe_lst)
            evconnlistener_free(w->probe_lst);
        event_free(w->stop_ev);
        event_base_free(w->base);
        w->magic = 0;
    }
    free(workers);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    if (!config.quiet)
        fprintf(stderr, "weir-pod: stopped by signal %d\n", sig);
    return 0;
}
