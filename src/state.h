/*
 * state.h — the runtime state and its file: what was changed through the
 * control socket, when, relative to which config-file values, and the
 * history that `rollback` walks back through.
 *
 * Everything weir lets an operator change at runtime is described as a
 * flat map of keys to canonical text values (runtime_map.c builds it from a
 * config and applies it back):
 *
 *   split              "v1=90,v2=10"          every version, file order
 *   rules              "1;h,X-Canary,always,v2" (count; then per rule
 *                      kind h|p|c, name, value, version, %-escaped)
 *   endpoint/V/ADDR    "1"                    present, with its weight
 *   drain/V/ADDR       "1"                    present only while draining
 *   mirror             "off" | "v2,12.5"      shadow version and percent
 *
 * A missing key, written "-", means absent (no such endpoint, not
 * draining). A `struct state` holds three things:
 *   file     the config file's values at its last load — the "base" each
 *            runtime change was made against;
 *   changes  the keys whose running value differs from the file's, with
 *            the running value and the wall-clock time it was set;
 *   history  full maps of the state in force before each change (oldest
 *            first), with when and what the change was.
 *
 * The file (written by state_save: temp file in the same directory, fsync,
 * rename, fsync of the directory — so a crash leaves the old or the new
 * state, never a torn one) is line based, tokens separated by one space,
 * each token %-escaped (bytes <= 0x20, '%', 0x7f and above as %XX):
 *
 *   weir-state 1
 *   saved 1764340207123
 *   file KEY VALUE
 *   change TS_MS KEY VALUE
 *   history TS_MS WHAT
 *   was KEY VALUE        (in the history entry above: a key whose value
 *                         differed from the `file` section; "-" = absent)
 *   extra KEY VALUE      opaque state another module keeps here (the
 *                         rollout: release.c), not part of rollback
 *
 * Lines starting with '#' and blank lines are ignored; unknown line kinds
 * are skipped (forward compatibility), malformed ones reject the file.
 * Pure data and file I/O, no config knowledge. Main thread.
 */
#ifndef WEIR_STATE_H
#define WEIR_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define STATE_ABSENT "-"
#define STATE_HISTORY_MAX 64

struct state_item {
    char *key;     /* owned */
    char *value;   /* owned; STATE_ABSENT = absent */
    int64_t ts_ms; /* wall clock, ms since the epoch; 0 when not tracked */
};

/* Items sorted by key (strcmp), keys unique. */
struct state_map {
    struct state_item *v; /* owned array */
    size_t n, cap;
};

struct state_history {
    int64_t ts_ms;        /* when the change that followed was made */
    char *what;           /* owned: that change, human ("split v1=50 v2=50") */
    struct state_map map; /* the full state in force before it */
};

struct state {
    struct state_map file;      /* the config file's values at last load */
    struct state_map changes;   /* runtime values that differ from the file */
    struct state_map extra;     /* state of other modules (the rollout), opaque */
    struct state_history *hist; /* owned array, oldest first */
    size_t n_hist, cap_hist;
};

void state_map_init(struct state_map *m);
void state_map_dispose(struct state_map *m);
void state_map_copy(struct state_map *dst, const struct state_map *src);
/* Insert or replace key (value STATE_ABSENT is stored like any value). */
void state_map_set(struct state_map *m, const char *key, const char *value,
                   int64_t ts_ms);
/* The item for key, or NULL. */
const struct state_item *state_map_find(const struct state_map *m,
                                        const char *key);
/* The value for key, STATE_ABSENT when missing. */
const char *state_map_value(const struct state_map *m, const char *key);
/* Remove key if present. */
void state_map_remove(struct state_map *m, const char *key);
/* Equal keys and values (timestamps ignored). */
bool state_map_equal(const struct state_map *a, const struct state_map *b);

void state_init(struct state *st);
void state_dispose(struct state *st);

/* Append a history entry (copies map); drops the oldest past STATE_HISTORY_MAX. */
void state_history_push(struct state *st, int64_t ts_ms, const char *what,
                        const struct state_map *map);
/* Remove the newest entry, moving its map into *out (caller disposes). */
void state_history_pop(struct state *st, struct state_map *out);

/*
 * Write st to path atomically. Returns 0, or -1 with a human reason in err.
 */
int state_save(const char *path, const struct state *st, char *err,
               size_t errlen) WUR;

/*
 * Read path into st (which must be freshly initialised). Returns 0, 1 when
 * the file does not exist (st left empty), or -1 with a reason naming the
 * line in err (st left empty).
 */
int state_load(const char *path, struct state *st, char *err,
               size_t errlen) WUR;

/* Wall clock in ms since the epoch. */
int64_t state_now_ms(void);

/* Format a wall-clock ms time as "2026-11-28T14:30:07.123Z". */
void state_format_time(int64_t ms, char *buf, size_t buflen);

/*
 * %-escape s: bytes <= 0x20, '%', 0x7f and above, and any byte in `also`
 * become %XX. Returns a new string (caller frees). Shared with the rules
 * encoding of runtime_map.c.
 */
char *state_escape(const char *s, const char *also);
/* Unescape in place; returns 0, or -1 on a malformed escape or a %00. */
int state_unescape(char *s) WUR;

#endif
