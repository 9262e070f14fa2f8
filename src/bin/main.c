/*
 * main.c — the `weir` command line: -c FILE runs, -t checks, --version,
 * --help. Everything else is in server.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define DEFAULT_CONFIG "/etc/weir/weir.yaml"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: weir [-t] [-c FILE]\n"
            "  -c, --config FILE   config file (default " DEFAULT_CONFIG ")\n"
            "  -t, --test          check the config and exit: 0 valid, 1 invalid\n"
            "                      (problems on stderr as FILE:LINE:COL: message)\n"
            "  -v, --version       print the version\n"
            "  -h, --help          this help\n"
            "signals: SIGHUP reload the config, SIGTERM/SIGINT graceful stop,\n"
            "         SIGUSR1 reopen the access log file\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = DEFAULT_CONFIG;
    int test = 0, c;
    while ((c = getopt_long(argc, argv, "c:tvh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'v':
            printf("weir %s\n", WEIR_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weir: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return test ? server_check_config(config) : server_run(config);
}
