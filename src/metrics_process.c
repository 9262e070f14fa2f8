/*
 * metrics_process.c — see metrics_process.h. Linux only, read as
 * client_python does: /proc/self/stat fields 14-15 (utime, stime in clock
 * ticks), 22 (starttime, ticks after boot), 23 (vsize, bytes), 24 (rss,
 * pages); btime from /proc/stat for the start time; the entries of
 * /proc/self/fd; RLIMIT_NOFILE's soft limit. Costs a few reads per scrape,
 * nothing on the data path.
 */
#include "metrics_process.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct proc_stat {
    unsigned long long utime, stime, starttime, vsize;
    long long rss;
};

static int read_stat(struct proc_stat *ps)
{
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: the
     * fields after it start at the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* field 3 (state) is the first after ") " */
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u " /* 3..13 */
                     "%llu %llu %*d %*d %*d %*d %*d %*d "           /* 14..21 */
                     "%llu %llu %lld",                              /* 22..24 */
                     &ps->utime, &ps->stime, &ps->starttime, &ps->vsize, &ps->rss);
    return got == 5 ? 0 : -1;
}

/* Boot time in seconds since the epoch (/proc/stat "btime"), 0 if unknown. */
static unsigned long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long bt = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd, open while counting */
}

static void gauge(struct json_buf *out, const char *name, const char *type,
                  const char *help, const char *value)
{
    json_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type,
                    name, value);
}

void metrics_process_render(struct json_buf *out)
{
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    char v[64];
    struct proc_stat ps;
    if (read_stat(&ps) == 0 && ticks > 0 && page > 0) {
        snprintf(v, sizeof(v), "%.2f", (double)(ps.utime + ps.stime) / (double)ticks);
        gauge(out, "process_cpu_seconds_total", "counter",
              "Total user and system CPU time spent in seconds.", v);
        snprintf(v, sizeof(v), "%lld", ps.rss * (long long)page);
        gauge(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
              v);
        snprintf(v, sizeof(v), "%llu", ps.vsize);
        gauge(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", v);
        unsigned long long bt = boot_time();
        if (bt) {
            snprintf(v, sizeof(v), "%.2f", (double)bt + (double)ps.starttime / (double)ticks);
            gauge(out, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.", v);
        }
    }
    long fds = open_fds();
    if (fds >= 0) {
        snprintf(v, sizeof(v), "%ld", fds);
        gauge(out, "process_open_fds", "gauge", "Number of open file descriptors.", v);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur == RLIM_INFINITY)
            snprintf(v, sizeof(v), "+Inf");
        else
            snprintf(v, sizeof(v), "%llu", (unsigned long long)rl.rlim_cur);
        gauge(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", v);
    }
}
