/*
 * memtrim.h — give memory a worker no longer uses back to the system, and
 * size the allocator's per-thread caches for the data path.
 *
 * With jemalloc (the release build links it), a data-path request
 * allocates and frees four evbuffer chains of 4 KiB (client in and out,
 * upstream in and out); a loop turn serving 64 connections does that 64
 * times before it frees any. jemalloc's default thread cache holds 20
 * objects of that class, so most of those calls took the arena's slow
 * path (~700 instructions each instead of ~30). memtrim.c raises the
 * cache to 128 per small class (malloc_conf; MALLOC_CONF in the
 * environment still overrides it) and, so that a burst does not stay in
 * the RSS, memtrim_thread() empties the calling thread's cache and purges
 * its arena's unused pages. Without jemalloc both are no-ops.
 */
#ifndef WEIR_MEMTRIM_H
#define WEIR_MEMTRIM_H

/*
 * Return the calling thread's cached free memory to the system: flush its
 * allocator cache, purge the dirty pages of its arena. Costs a few
 * madvise() calls; call it when the thread has gone idle, not per request.
 * Returns whether there was an allocator to ask (jemalloc linked).
 */
int memtrim_thread(void);

#endif
