/*
 * fleet_key.h — reading and checking the fleet's shared key file, one
 * place for start-up (fleet.c) and `weir -t` (config_check.c), so a
 * config that `weir -t` passes has a key that start-up takes.
 */
#ifndef WEIR_FLEET_KEY_H
#define WEIR_FLEET_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Read the key at path into key (cap bytes, FLEET_KEY_MAX_BYTES is enough),
 * trailing white space dropped. Returns its length (> 0), or -1 with why
 * (why_len bytes) saying what is wrong: unreadable, not a regular file,
 * writable by group or others, larger than cap, empty. Something to warn
 * about but not refuse (readable by others, fewer than FLEET_KEY_MIN_BYTES)
 * goes into warn ("" when nothing).
 */
ssize_t fleet_key_read(const char *path, uint8_t *key, size_t cap, char *why, size_t why_len,
                       char *warn, size_t warn_len);

#endif
