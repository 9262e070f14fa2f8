/*
 * fuzz_state.c — the runtime state file loader (state_load) on arbitrary
 * file contents, and the save/load round trip.
 *
 * The input is written to a file in a private directory on /dev/shm
 * (tmpfs: state_save's fsyncs cost nothing there) and loaded. Invariants:
 *  - 0 (loaded) or -1 with a reason naming the file; never 1 (it exists);
 *  - a loaded state saved with state_save loads again to the same state:
 *    the same file and change maps (values and timestamps), the same
 *    history (times, descriptions, and maps equal once absent and "-" are
 *    read alike, as runtime.c reads them).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "state.h"

static char dir[64];
static char in_path[128], out_path[128];

static void on_exit_cleanup(void)
{
    unlink(in_path);
    unlink(out_path);
    rmdir(dir);
}

static void setup(void)
{
    if (dir[0])
        return;
    snprintf(dir, sizeof(dir), "/dev/shm/weir-fuzz-state-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof(dir), "/tmp/weir-fuzz-state-XXXXXX");
        FUZZ_CHECK(mkdtemp(dir) != NULL);
    }
    snprintf(in_path, sizeof(in_path), "%s/in.state", dir);
    snprintf(out_path, sizeof(out_path), "%s/out.state", dir);
    atexit(on_exit_cleanup);
}

static bool maps_same(const struct state_map *a, const struct state_map *b, bool ts)
{
    if (!state_map_equal(a, b))
        return false;
    for (size_t i = 0; ts && i < a->n; i++)
        if (a->v[i].ts_ms != b->v[i].ts_ms)
            return false;
    return true;
}

/* Equal when a missing key and "-" count as the same. */
static bool maps_alike(const struct state_map *a, const struct state_map *b)
{
    for (int pass = 0; pass < 2; pass++) {
        const struct state_map *x = pass ? b : a, *y = pass ? a : b;
        for (size_t i = 0; i < x->n; i++)
            if (strcmp(x->v[i].value, state_map_value(y, x->v[i].key)) != 0)
                return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    FILE *f = fopen(in_path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);

    struct state st;
    state_init(&st);
    char err[512] = "";
    int rc = state_load(in_path, &st, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc < 0) {
        FUZZ_CHECK(strncmp(err, in_path, strlen(in_path)) == 0);
        FUZZ_CHECK(st.file.n == 0 && st.changes.n == 0 && st.n_hist == 0);
        state_dispose(&st);
        return 0;
    }
    FUZZ_CHECK(st.n_hist <= STATE_HISTORY_MAX);
    for (size_t i = 1; i < st.file.n; i++)
        FUZZ_CHECK(strcmp(st.file.v[i - 1].key, st.file.v[i].key) < 0);

    FUZZ_CHECK(state_save(out_path, &st, err, sizeof(err)) == 0);
    struct state again;
    state_init(&again);
    FUZZ_CHECK(state_load(out_path, &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(maps_same(&st.file, &again.file, false));
    FUZZ_CHECK(maps_same(&st.changes, &again.changes, true));
    FUZZ_CHECK(st.n_hist == again.n_hist);
    for (size_t h = 0; h < st.n_hist; h++) {
        FUZZ_CHECK(st.hist[h].ts_ms == again.hist[h].ts_ms);
        FUZZ_CHECK(strcmp(st.hist[h].what, again.hist[h].what) == 0);
        FUZZ_CHECK(maps_alike(&st.hist[h].map, &again.hist[h].map));
    }
    state_dispose(&again);
    state_dispose(&st);
    return 0;
}
