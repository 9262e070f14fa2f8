/*
 * memtrim.c — see memtrim.h. jemalloc is reached through a weak reference
 * to mallctl(): the core library is also linked without jemalloc (unit
 * tests, sanitizer builds), and then the reference is NULL.
 */
#include "memtrim.h"

#include <stddef.h>
#include <stdio.h>

/* jemalloc's control interface; NULL when jemalloc is not linked. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) __attribute__((weak));

/* Read by jemalloc at its start (a strong definition here wins over the
 * library's weak empty one). 128 cached objects per small size class per
 * thread: one loop turn of 64 connections allocates 64 chains of a class
 * before it frees one. */
extern const char *malloc_conf;
const char *malloc_conf = "tcache_nslots_small_min:128";

int memtrim_thread(void)
{
    if (!mallctl)
        return 0;
    (void)mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    unsigned arena = 0;
    size_t len = sizeof(arena);
    if (mallctl("thread.arena", &arena, &len, NULL, 0) == 0) {
        char name[48];
        snprintf(name, sizeof(name), "arena.%u.purge", arena);
        (void)mallctl(name, NULL, NULL, NULL, 0);
    }
    return 1;
}
