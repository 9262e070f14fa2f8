/*
 * replay.c — main() for the harnesses in builds without libFuzzer: feeds
 * every regular file under each argument (a corpus directory, or a single
 * file) to LLVMFuzzerTestOneInput once, in name order, and reports one TAP
 * line per argument. A broken invariant aborts (FUZZ_CHECK), a memory error
 * is caught by ASan in the sanitizer build; either fails the meson test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Read a whole file into a new buffer (exact size, so ASan sees overreads). */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

static int run_file(const char *path)
{
    size_t len = 0;
    uint8_t *p = read_file(path, &len);
    if (!p) {
        printf("# cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    LLVMFuzzerTestOneInput(p, len);
    free(p);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay a directory (or one file); returns the number of inputs, -1 on error. */
static long replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        printf("# %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path) < 0 ? -1 : 1;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(path) + strlen(names[i]) + 2;
        char *full = malloc(plen);
        snprintf(full, plen, "%s/%s", path, names[i]);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(full) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(full);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        long n = replay(argv[i]);
        /* An empty corpus is a mistake too: the test would replay nothing. */
        if (n <= 0)
            failed++;
        printf("%sok %d - %s: %ld input(s) replayed, every invariant held\n",
               n > 0 ? "" : "not ", i, argv[i], n < 0 ? 0 : n);
    }
    printf("1..%d\n", argc - 1);
    return failed ? 1 : 0;
}
