/*
 * runtime.h — the running configuration: the config file's content with the
 * runtime changes made through the control socket applied on top, the
 * history of applied changes (for rollback), and the state file that keeps
 * runtime changes across reload and restart.
 *
 * Every change goes: clone the running config → modify → config_validate()
 * (the file's own validator) → snapshot_new() (with the endpoints discovery
 * last reported, runtime_set_discovered) → snapshot_publish() → save the
 * state file (write temp + fsync + rename). Refused changes leave
 * everything as it was. Main thread only.
 *
 * What is tracked (see state.h for the key format): the split, the rules,
 * each version's endpoints with their weights, and which endpoints drain.
 * The running config always equals the last good config file plus the
 * tracked keys whose runtime value differs from the file's ("changes").
 *
 * Merge rule when the config file is (re)loaded — reload, SIGHUP, file
 * watch, start: for every runtime change,
 *   - the file now has the same value      → the change is retired (agreed);
 *   - the file's value is the one the change was made against (unchanged
 *     there)                               → the runtime value stays;
 *   - the file changed it too              → the newer wins: the file's
 *     mtime against the change's timestamp, and the log says which won.
 * Runtime values that no longer apply (their version or endpoint left the
 * file, or they would make the config invalid) are dropped with a warning.
 *
 * History: before each applied change (not rollbacks; reloads only when
 * they changed a tracked value) the full tracked state is pushed; rollback
 * pops it and re-establishes it, so `rollback` walks back step by step
 * (STATE_HISTORY_MAX deep), across reloads and restarts (it is saved).
 */
#ifndef WEIR_RUNTIME_H
#define WEIR_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct discovery_set;

/*
 * First load: read config_path, restore the state file, publish the first
 * snapshot. On failure errs holds the problems and nothing is published.
 */
int runtime_start(const char *config_path, struct config_errors *errs) WUR;

/*
 * Re-read the config file (SIGHUP, `reload`, file watch). On any error keep
 * the running config, return -1 with errs filled. On success returns 0 and
 * writes a one-line human summary into msg (e.g. what changed, settings that
 * need a restart).
 */
/* Publish the running config again (its TLS certificates changed). */
void runtime_republish(const char *why);

int runtime_reload(struct config_errors *errs, char *msg, size_t msglen) WUR;

/* What an applied change did, for the control answer and the log. */
struct runtime_result {
    uint64_t generation;    /* the generation published by the change */
    char change[1024];      /* human: "split v1=90,v2=10 -> v1=50,v2=50; drain v2 ..." */
    char restart[256];      /* reload: settings that need a restart ("listen, workers") */
    char warning[512];      /* non-fatal problem (state file not saved...), "" if none */
    struct config *preview; /* owned, NULL unless a dry run (struct runtime_opts)
                             * got as far as a candidate: the config the change
                             * would install; the caller config_free()s it */
};

/*
 * How a change made by hand is applied (the control commands pass one; the
 * guard and the rollout's own steps pass NULL and are neither checked nor
 * previewed):
 *   - availability.c's rule: a change giving a version a larger share is
 *     refused when that version has no available endpoint, unless force
 *     (then it applies with the reason in res->warning);
 *   - dry_run: everything up to publishing (edit, validate, the rule), then
 *     res->change says what would change, res->preview holds the candidate,
 *     res->generation is the current one; nothing is published, recorded or
 *     saved, refused or not.
 */
struct runtime_opts {
    bool force;   /* apply even when availability.c would refuse */
    bool dry_run; /* show, change nothing */
};

/*
 * Modify cfg (a clone of the running config) in place. Returns 0, or -1
 * with a human sentence in err. Must only set values config_validate()
 * can check; positions of new values stay {0,0}.
 */
typedef int (*runtime_edit_cb)(struct config *cfg, void *arg, char *err,
                               size_t errlen);

/*
 * Apply one runtime change: clone, edit, validate, publish, record history
 * ("what" names the change in it, e.g. the command line), save the state.
 * Returns 0 with res filled, or -1 with a human sentence in err and nothing
 * changed.
 */
int runtime_edit(const char *what, runtime_edit_cb edit, void *arg,
                 struct runtime_result *res, char *err, size_t errlen) WUR;

/* runtime_edit() for a change made by hand: opts (borrowed, NULL = none) as
 * above. */
int runtime_edit_opts(const char *what, runtime_edit_cb edit, void *arg,
                      const struct runtime_opts *opts, struct runtime_result *res,
                      char *err, size_t errlen) WUR;

/*
 * Restore the state in force before the last change and drop that history
 * entry. -1 with err when the history is empty or the old state cannot be
 * applied to the current config file (nothing changed then).
 */
int runtime_rollback(struct runtime_result *res, char *err, size_t errlen) WUR;

/* runtime_rollback() with opts (borrowed, NULL = none) as above; a dry run
 * pops nothing. */
int runtime_rollback_opts(const struct runtime_opts *opts, struct runtime_result *res,
                          char *err, size_t errlen) WUR;

/* runtime_reload() with the structured result (the control socket's reload).
 * The file is the operator's declaration: a split in it onto a version
 * with no available endpoint is applied, with availability.c's reason in
 * res->warning. */
int runtime_reload_result(struct config_errors *errs,
                          struct runtime_result *res) WUR;

/* What runtime_reload_result() would do, changing nothing: 0 with
 * res->change, res->restart, res->warning and res->preview filled, or -1
 * with errs. */
int runtime_reload_preview(struct config_errors *errs, struct runtime_result *res) WUR;

/*
 * Called after every successful reload, whatever triggered it (SIGHUP,
 * `reload`, the file watch), with the new running config: for settings
 * other modules apply themselves (access log, discovery). One hook; NULL
 * removes it.
 */
typedef void (*runtime_reload_cb)(const struct config *cfg);
void runtime_on_reload(runtime_reload_cb cb);

/* History, newest first: i = 0 is what `rollback` would undo. NULL past the end. */
size_t runtime_history_len(void);
const char *runtime_history_what(size_t i, int64_t *ts_ms);

/* Runtime changes in force: key, value ("-" = removed) and when set. */
size_t runtime_changes_len(void);
const char *runtime_change_at(size_t i, const char **value, int64_t *ts_ms);

/* The config file path given to runtime_start (borrowed). */
const char *runtime_config_path(void);

/* Content hash of the config file as last read by a load/reload attempt. */
uint64_t runtime_file_hash(void);
/* The hash runtime_file_hash() uses, over any bytes. */
uint64_t runtime_hash(const char *p, size_t n);

/* The running config (borrowed; valid until the next change). */
const struct config *runtime_config(void);

/*
 * Discovery's current sets (every version's; borrowed, copied here): from
 * now on an input of every snapshot published. When they change what a
 * snapshot of the running config holds (the set of a version that
 * discovers), publish one at once with the running config unchanged: logs
 * `why`, records no history and no runtime change; generation + 1. Before
 * runtime_start the sets are only kept. Main thread.
 */
void runtime_set_discovered(const struct discovery_set *sets, size_t n_sets,
                            const char *why);

/* Free everything at exit. */
void runtime_stop(void);

/*
 * Opaque state another module keeps in the state file (the rollout:
 * release.c), outside rollback's history. get: the stored value or NULL
 * (borrowed until the next set). set: store and save the file now. Main
 * thread.
 */
const char *runtime_extra_get(const char *key);
void runtime_extra_set(const char *key, const char *value);

#endif
