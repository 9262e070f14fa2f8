/*
 * runtime.c — see runtime.h for the model (file + tracked changes, merge
 * rule, history). This file owns the running config, the last good file
 * config and the struct state that state.c persists.
 *
 * The tracked part of a config is turned into a state map
 * (runtime_map_from_config) and a map is applied back item by item
 * (runtime_map_apply_item); that codec is runtime_map.c's. Every operation
 * is expressed through these two functions:
 *   change    changes = { k : running[k] != file[k] }, keeping the old
 *             timestamp of an item whose value did not change;
 *   rollback  apply { k : target[k] } where target differs from running;
 *   reload    merge the old changes into the new file (runtime.h), then
 *             apply what survived, validating after each item.
 * Nothing here touches sockets; the control socket, SIGHUP and the file
 * watch all come in through these functions on the main thread.
 */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "availability.h"
#include "discovery.h"
#include "events.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "snapshot.h"
#include "runtime_map.h"
#include "state.h"
#include "tls_store.h"

static struct {
    bool started;
    char *path;                  /* owned: config file as given */
    struct config *file;         /* owned: last good config file */
    struct config *running;      /* owned: file + changes (what is published) */
    uint64_t seen_hash;          /* content hash of the last read attempt */
    struct state st;             /* file map, changes, history */
    runtime_reload_cb on_reload; /* borrowed function */
    struct discovery_set *found; /* owned: discovery's last report, an input
                                  * of every snapshot (discovery_sets_copy) */
    size_t n_found;
} rt;

/* ---- small helpers ----------------------------------------------------- */

uint64_t runtime_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h ^ n;
}

/* All messages of errs joined by "; " (for runtime refusals: no positions). */
static void errors_sentence(const struct config_errors *errs, char *buf,
                            size_t buflen)
{
    buf[0] = '\0';
    for (size_t i = 0; i < errs->n; i++)
        util_append(buf, buflen, "; ", "%s", errs->v[i].msg);
    if (!buf[0])
        snprintf(buf, buflen, "the change would make the config invalid");
}

/* ---- publish and save -------------------------------------------------- */

/* The TLS contexts of the file config fn (tls_store.h); a set that cannot
 * be built refuses the start or the reload, the running one stays. */
static int update_tls(const struct config *fn, struct config_errors *errs)
{
    char err[512];
    struct config_pos at;
    if (tls_store_update(fn, &at, err, sizeof(err)) == 0)
        return 0;
    config_errors_add(errs, at, "%s", err);
    return -1;
}

static void publish(const struct config *cfg)
{
    struct snapshot *prev = snapshot_acquire();
    struct snapshot *s = snapshot_new(config_clone(cfg), prev, rt.found, rt.n_found);
    CHECK(s != NULL);
    s->tls = tls_store_acquire();
    snapshot_unref(prev);
    metrics_bind(s);
    snapshot_publish(s);
}

static void save_state(char *warn, size_t warnlen)
{
    const char *path = rt.running ? rt.running->state : NULL;
    if (!path)
        return;
    /* Nothing to remember and nothing to overwrite: leave no file behind. */
    if (rt.st.changes.n == 0 && rt.st.n_hist == 0 && rt.st.extra.n == 0 &&
        access(path, F_OK) < 0 &&
        errno == ENOENT)
        return;
    char err[512];
    if (state_save(path, &rt.st, err, sizeof(err)) < 0) {
        log_error("runtime state not saved, runtime changes will not survive a restart: %s",
                  err);
        util_append(warn, warnlen, "; ", "runtime state not saved (%s): the change is live "
                                         "but will not survive a restart",
                    err);
    }
}

/*
 * Install newcfg (owned) as the running config: record history (when
 * push), recompute the changes against the file, publish, save.
 */
static void commit(struct config *newcfg, const char *what, bool push,
                   struct runtime_result *res, bool save)
{
    struct state_map oldm, newm;
    runtime_map_from_config(rt.running, &oldm);
    runtime_map_from_config(newcfg, &newm);
    runtime_map_describe(&oldm, &newm, res->change, sizeof(res->change));
    int64_t now = state_now_ms();
    if (push)
        state_history_push(&rt.st, now, what, &oldm);

    /* Changes = where running differs from the file; an item keeps its
     * timestamp while its value stays the same. */
    struct state_map changes;
    runtime_map_diff(&rt.st.file, &newm, &changes);
    for (size_t i = 0; i < changes.n; i++) {
        const struct state_item *old = state_map_find(&rt.st.changes, changes.v[i].key);
        changes.v[i].ts_ms =
            old && strcmp(old->value, changes.v[i].value) == 0 ? old->ts_ms : now;
    }
    state_map_dispose(&rt.st.changes);
    rt.st.changes = changes;
    state_map_dispose(&oldm);
    state_map_dispose(&newm);

    publish(newcfg);
    config_free(rt.running);
    rt.running = newcfg;
    res->generation = snapshot_generation();
    if (save)
        save_state(res->warning, sizeof(res->warning));
    char members[2048];
    events_publish(strcmp(what, "reload") == 0 ? "reload" : "change", res->generation,
                   events_members(members, sizeof(members), "what", what, "change",
                                  res->change, (const char *)NULL));
}

/* ---- reading the file and merging -------------------------------------- */

/* Read the config file; sets *mtime_ms (wall clock). NULL with errs on failure. */
static char *read_config(const char *path, size_t *len, int64_t *mtime_ms,
                         struct config_errors *errs)
{
    char *text = config_read_file(path, len, mtime_ms);
    if (!text)
        config_errors_add_read_error(errs, errno);
    return text;
}

static struct config *load_file(struct config_errors *errs, int64_t *mtime_ms)
{
    size_t len = 0;
    char *text = read_config(rt.path, &len, mtime_ms, errs);
    if (!text)
        return NULL;
    rt.seen_hash = runtime_hash(text, len);
    struct config *cfg = config_load_string(rt.path, text, len, errs);
    free(text);
    return cfg;
}

/*
 * Merge the runtime changes into the freshly loaded file config fn (see the
 * rule in runtime.h). Returns the new running config (owned); rt.st.changes
 * keeps the surviving items with their timestamps. Reasons for dropped
 * items are appended to warn.
 */
static struct config *merge(const struct config *fn, int64_t mtime_ms,
                            char *warn, size_t warnlen)
{
    struct state_map fnm, kept;
    runtime_map_from_config(fn, &fnm);
    state_map_init(&kept);
    char t_file[40], t_rt[40];
    state_format_time(mtime_ms, t_file, sizeof(t_file));
    for (size_t i = 0; i < rt.st.changes.n; i++) {
        const struct state_item *o = &rt.st.changes.v[i];
        const char *now = state_map_value(&fnm, o->key);
        const char *base = state_map_value(&rt.st.file, o->key);
        state_format_time(o->ts_ms, t_rt, sizeof(t_rt));
        if (strcmp(now, o->value) == 0) {
            log_info("config file now agrees with the runtime change %s=%s; "
                     "it is no longer a runtime change",
                     o->key, o->value);
        } else if (strcmp(now, base) == 0) {
            state_map_set(&kept, o->key, o->value, o->ts_ms);
        } else if (mtime_ms > o->ts_ms) {
            log_info("config file wins for %s: the file changed it to %s "
                     "(file modified %s), after the runtime change to %s (made %s)",
                     o->key, now, t_file, o->value, t_rt);
        } else {
            log_info("runtime change wins for %s: %s (made %s) is newer than the "
                     "config file's %s (file modified %s)",
                     o->key, o->value, t_rt, now, t_file);
            state_map_set(&kept, o->key, o->value, o->ts_ms);
        }
    }
    state_map_dispose(&fnm);

    struct config *cur = config_clone(fn);
    struct state_map applied;
    state_map_init(&applied);
    for (int cat = 0; cat < RUNTIME_MAP_ORDERS; cat++) {
        for (size_t i = 0; i < kept.n; i++) {
            const struct state_item *it = &kept.v[i];
            if (runtime_map_key_order(it->key) != cat)
                continue;
            char err[512] = "";
            struct config *next = config_clone(cur);
            int rc = runtime_map_apply_item(next, it->key, it->value, err, sizeof(err));
            if (rc == 0) {
                struct config_errors errs;
                config_errors_init(&errs, rt.path);
                if (config_validate(next, &errs) < 0) {
                    errors_sentence(&errs, err, sizeof(err));
                    rc = -1;
                }
                config_errors_dispose(&errs);
            }
            if (rc < 0) {
                log_warn("runtime change %s=%s dropped: %s", it->key, it->value, err);
                util_append(warn, warnlen, "; ", "runtime change %s=%s dropped: %s",
                            it->key, it->value, err);
                config_free(next);
                continue;
            }
            config_free(cur);
            cur = next;
            state_map_set(&applied, it->key, it->value, it->ts_ms);
        }
    }
    state_map_dispose(&kept);
    state_map_dispose(&rt.st.changes);
    rt.st.changes = applied;
    return cur;
}

/* ---- public ------------------------------------------------------------ */

int runtime_start(const char *config_path, struct config_errors *errs)
{
    CHECK(!rt.started);
    rt.path = xstrdup(config_path);
    state_init(&rt.st);
    int64_t mtime = 0;
    struct config *fn = load_file(errs, &mtime);
    if (!fn) {
        free(rt.path);
        rt.path = NULL;
        return -1;
    }
    if (update_tls(fn, errs) < 0) {
        config_free(fn);
        free(rt.path);
        rt.path = NULL;
        return -1;
    }
    rt.started = true;

    char err[512];
    int rc = state_load(fn->state, &rt.st, err, sizeof(err));
    if (rc < 0) {
        log_warn("ignoring the runtime state file: %s", err);
        state_init(&rt.st);
    } else if (rc == 0) {
        log_info("restoring runtime state from %s: %zu runtime change(s), %zu "
                 "history entr%s",
                 fn->state, rt.st.changes.n, rt.st.n_hist,
                 rt.st.n_hist == 1 ? "y" : "ies");
    }
    struct runtime_result res;
    memset(&res, 0, sizeof(res));
    struct state_map loaded_file, loaded_changes;
    state_map_copy(&loaded_file, &rt.st.file);
    state_map_copy(&loaded_changes, &rt.st.changes);
    struct config *running = merge(fn, mtime, res.warning, sizeof(res.warning));
    state_map_dispose(&rt.st.file);
    runtime_map_from_config(fn, &rt.st.file);
    rt.file = fn;
    commit(running, "start", false, &res, false);
    /* Rewrite the state file only when the merge changed something: a
     * start that finds everything as saved leaves the file alone. */
    if (!state_map_equal(&loaded_file, &rt.st.file) ||
        !state_map_equal(&loaded_changes, &rt.st.changes))
        save_state(res.warning, sizeof(res.warning));
    state_map_dispose(&loaded_file);
    state_map_dispose(&loaded_changes);
    for (size_t i = 0; i < rt.st.changes.n; i++)
        log_info("runtime change in force: %s=%s", rt.st.changes.v[i].key,
                 rt.st.changes.v[i].value);
    return 0;
}

/* What installing next over the running config would change, into buf. */
static void describe_change(const struct config *next, char *buf, size_t buflen)
{
    struct state_map oldm, newm;
    runtime_map_from_config(rt.running, &oldm);
    runtime_map_from_config(next, &newm);
    runtime_map_describe(&oldm, &newm, buf, buflen);
    state_map_dispose(&oldm);
    state_map_dispose(&newm);
}

/* A reload is not refused for availability (the file is the operator's
 * declaration), but the answer and the log say what it will cost. */
static void reload_availability(const struct config *next, struct runtime_result *res)
{
    char why[900];
    if (availability_check_now(rt.running, next, why, sizeof(why)) == 0)
        return;
    log_warn("the config file's split is applied as written, but %s", why);
    util_append(res->warning, sizeof(res->warning), "; ",
                "the config file's split is applied as written, but %s", why);
}

int runtime_reload_preview(struct config_errors *errs, struct runtime_result *res)
{
    CHECK(rt.started);
    memset(res, 0, sizeof(*res));
    /* The file watch compares runtime_file_hash() to what it saw: a look
     * at the file is not a load. */
    uint64_t seen = rt.seen_hash;
    int64_t mtime = 0;
    struct config *fn = load_file(errs, &mtime);
    rt.seen_hash = seen;
    if (!fn)
        return -1;
    struct state_map kept;
    state_map_copy(&kept, &rt.st.changes);
    struct config *next = merge(fn, mtime, res->warning, sizeof(res->warning));
    state_map_dispose(&rt.st.changes);
    rt.st.changes = kept;
    config_free(fn);
    config_keep_restart(next, rt.running, res->restart, sizeof(res->restart));
    char why[900];
    if (availability_check_now(rt.running, next, why, sizeof(why)) < 0)
        util_append(res->warning, sizeof(res->warning), "; ",
                    "the config file's split would be applied as written, but %s", why);
    describe_change(next, res->change, sizeof(res->change));
    res->generation = snapshot_generation();
    res->preview = next;
    return 0;
}

int runtime_reload_result(struct config_errors *errs, struct runtime_result *res)
{
    CHECK(rt.started);
    memset(res, 0, sizeof(*res));
    int64_t mtime = 0;
    struct config *fn = load_file(errs, &mtime);
    if (fn)
        config_keep_listeners(fn, rt.running);
    if (fn && update_tls(fn, errs) < 0) {
        config_free(fn);
        fn = NULL;
    }
    if (!fn) {
        char buf[4096];
        config_errors_format(errs, buf, sizeof(buf));
        for (char *line = buf, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            log_error("reload refused, keeping the running config: %s", line);
            if (!nl)
                break;
        }
        return -1;
    }
    struct config *running = merge(fn, mtime, res->warning, sizeof(res->warning));
    config_keep_restart(running, rt.running, res->restart, sizeof(res->restart));
    reload_availability(running, res);
    state_map_dispose(&rt.st.file);
    runtime_map_from_config(fn, &rt.st.file);
    config_free(rt.file);
    rt.file = fn;

    struct state_map oldm, newm;
    runtime_map_from_config(rt.running, &oldm);
    runtime_map_from_config(running, &newm);
    bool changed = !state_map_equal(&oldm, &newm);
    state_map_dispose(&oldm);
    state_map_dispose(&newm);
    commit(running, "reload", changed, res, true);
    log_info("reloaded %s (generation %" PRIu64 "): %s%s%s%s%s", rt.path,
             res->generation, res->change,
             res->restart[0] ? "; needs a restart to change: " : "", res->restart,
             res->warning[0] ? "; " : "", res->warning);
    if (rt.on_reload)
        rt.on_reload(rt.running);
    return 0;
}

void runtime_on_reload(runtime_reload_cb cb)
{
    rt.on_reload = cb;
}

/* Would a snapshot of cfg built from `b` differ from one built from `a`?
 * Only the sets of versions that discover in cfg are merged. */
static bool found_differs(const struct config *cfg, const struct discovery_set *a,
                          size_t na, const struct discovery_set *b, size_t nb)
{
    for (size_t v = 0; v < cfg->n_versions; v++) {
        const char *name = cfg->versions[v].name;
        if (cfg->versions[v].discover &&
            !discovery_set_equal(discovery_sets_find(a, na, name),
                                 discovery_sets_find(b, nb, name)))
            return true;
    }
    return false;
}

void runtime_set_discovered(const struct discovery_set *sets, size_t n_sets,
                            const char *why)
{
    bool differs = rt.started && found_differs(rt.running, rt.found, rt.n_found,
                                               sets, n_sets);
    discovery_sets_free(rt.found, rt.n_found);
    rt.found = discovery_sets_copy(sets, n_sets);
    rt.n_found = n_sets;
    if (!differs)
        return;
    publish(rt.running);
    log_info("published generation %" PRIu64 ": %s", snapshot_generation(),
             why ? why : "discovery");
}

void runtime_republish(const char *why)
{
    if (!rt.started)
        return;
    publish(rt.running);
    log_info("published generation %" PRIu64 ": %s", snapshot_generation(), why);
}

int runtime_reload(struct config_errors *errs, char *msg, size_t msglen)
{
    struct runtime_result res;
    if (runtime_reload_result(errs, &res) < 0)
        return -1;
    snprintf(msg, msglen, "generation %" PRIu64 ": %s%s%s", res.generation,
             res.change, res.restart[0] ? "; needs a restart to change: " : "",
             res.restart);
    return 0;
}

/*
 * A change made by hand (runtime.h, struct runtime_opts), c a validated
 * candidate (owned): availability.c's rule, then the dry run. Returns 1
 * when the caller commits c; 0 for a dry run, c in res->preview; -1
 * refused with err (c freed, or in res->preview for a dry run).
 */
static int by_hand(struct config *c, const struct runtime_opts *opts,
                   struct runtime_result *res, char *err, size_t errlen)
{
    if (!opts)
        return 1;
    char why[900];
    if (availability_check_now(rt.running, c, why, sizeof(why)) < 0) {
        if (!opts->force) {
            snprintf(err, errlen, "%s; nothing changed (force=1 applies it anyway)",
                     why);
            if (opts->dry_run)
                res->preview = c;
            else
                config_free(c);
            return -1;
        }
        util_append(res->warning, sizeof(res->warning), "; ", "forced: %s", why);
    }
    if (!opts->dry_run)
        return 1;
    describe_change(c, res->change, sizeof(res->change));
    res->generation = snapshot_generation();
    res->preview = c;
    return 0;
}

int runtime_edit(const char *what, runtime_edit_cb edit, void *arg,
                 struct runtime_result *res, char *err, size_t errlen)
{
    return runtime_edit_opts(what, edit, arg, NULL, res, err, errlen);
}

int runtime_edit_opts(const char *what, runtime_edit_cb edit, void *arg,
                      const struct runtime_opts *opts, struct runtime_result *res,
                      char *err, size_t errlen)
{
    CHECK(rt.started);
    memset(res, 0, sizeof(*res));
    struct config *c = config_clone(rt.running);
    err[0] = '\0';
    if (edit(c, arg, err, errlen) < 0) {
        if (!err[0])
            snprintf(err, errlen, "the change was refused");
        config_free(c);
        return -1;
    }
    struct config_errors errs;
    config_errors_init(&errs, rt.path);
    if (config_validate(c, &errs) < 0) {
        errors_sentence(&errs, err, errlen);
        config_errors_dispose(&errs);
        config_free(c);
        return -1;
    }
    config_errors_dispose(&errs);
    int go = by_hand(c, opts, res, err, errlen);
    if (go <= 0)
        return go;
    commit(c, what, true, res, true);
    return 0;
}

int runtime_rollback(struct runtime_result *res, char *err, size_t errlen)
{
    return runtime_rollback_opts(NULL, res, err, errlen);
}

int runtime_rollback_opts(const struct runtime_opts *opts, struct runtime_result *res,
                          char *err, size_t errlen)
{
    CHECK(rt.started);
    memset(res, 0, sizeof(*res));
    if (rt.st.n_hist == 0) {
        snprintf(err, errlen, "nothing to roll back: the history of changes is empty");
        return -1;
    }
    const struct state_history *h = &rt.st.hist[rt.st.n_hist - 1];
    struct state_map cur, diff;
    runtime_map_from_config(rt.running, &cur);
    runtime_map_diff(&cur, &h->map, &diff);
    state_map_dispose(&cur);
    struct config *c = config_clone(rt.running);
    char why[512] = "";
    int rc = runtime_map_apply_all(c, &diff, why, sizeof(why));
    state_map_dispose(&diff);
    if (rc == 0) {
        struct config_errors errs;
        config_errors_init(&errs, rt.path);
        if (config_validate(c, &errs) < 0) {
            errors_sentence(&errs, why, sizeof(why));
            rc = -1;
        }
        config_errors_dispose(&errs);
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot roll back \"%s\": %s", h->what, why);
        config_free(c);
        return -1;
    }
    char what[300];
    snprintf(what, sizeof(what), "%s", h->what);
    int go = by_hand(c, opts, res, err, errlen);
    if (go <= 0) {
        if (go < 0) {
            char why2[1024];
            snprintf(why2, sizeof(why2), "%s", err);
            snprintf(err, errlen, "cannot roll back \"%.200s\": %s", what, why2);
        } else {
            char would[sizeof(res->change)];
            snprintf(would, sizeof(would), "%s", res->change);
            snprintf(res->change, sizeof(res->change), "would undo \"%.200s\": %.770s",
                     what, would);
        }
        return go;
    }
    struct state_map popped;
    state_history_pop(&rt.st, &popped);
    state_map_dispose(&popped);
    commit(c, "rollback", false, res, true);
    char undone[sizeof(res->change)];
    snprintf(undone, sizeof(undone), "%s", res->change);
    snprintf(res->change, sizeof(res->change), "undid \"%.200s\": %.780s", what, undone);
    return 0;
}

size_t runtime_history_len(void)
{
    return rt.st.n_hist;
}

const char *runtime_history_what(size_t i, int64_t *ts_ms)
{
    if (i >= rt.st.n_hist)
        return NULL;
    const struct state_history *h = &rt.st.hist[rt.st.n_hist - 1 - i];
    if (ts_ms)
        *ts_ms = h->ts_ms;
    return h->what;
}

size_t runtime_changes_len(void)
{
    return rt.st.changes.n;
}

const char *runtime_change_at(size_t i, const char **value, int64_t *ts_ms)
{
    if (i >= rt.st.changes.n)
        return NULL;
    if (value)
        *value = rt.st.changes.v[i].value;
    if (ts_ms)
        *ts_ms = rt.st.changes.v[i].ts_ms;
    return rt.st.changes.v[i].key;
}

const char *runtime_config_path(void)
{
    return rt.path;
}

uint64_t runtime_file_hash(void)
{
    return rt.seen_hash;
}

const struct config *runtime_config(void)
{
    return rt.running;
}

void runtime_stop(void)
{
    discovery_sets_free(rt.found, rt.n_found);
    rt.found = NULL;
    rt.n_found = 0;
    if (!rt.started)
        return;
    config_free(rt.running);
    config_free(rt.file);
    state_dispose(&rt.st);
    free(rt.path);
    memset(&rt, 0, sizeof(rt));
}

const char *runtime_extra_get(const char *key)
{
    const struct state_item *it = state_map_find(&rt.st.extra, key);
    return it ? it->value : NULL;
}

void runtime_extra_set(const char *key, const char *value)
{
    state_map_set(&rt.st.extra, key, value, 0);
    char warn[512] = "";
    save_state(warn, sizeof(warn));
}
