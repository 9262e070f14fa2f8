/*
 * test_state.c — the state file format (state.c): save/load round trip
 * (awkward bytes in keys and values, empty values, timestamps, history
 * entries stored as diffs against the file section), a missing file, the
 * file replaced atomically (no temp file left), unknown line kinds and
 * comments skipped, and corrupted or truncated files refused with an
 * error naming the file and line, leaving the state empty.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"
#include "tap.h"

static char dir[256];
static char path[320];

static void write_file(const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    fwrite(text, 1, len, f);
    fclose(f);
}

static char *read_file(void)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static size_t dir_entries(void)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static bool is_empty(const struct state *st)
{
    return st->file.n == 0 && st->changes.n == 0 && st->n_hist == 0;
}

static void test_round_trip(void)
{
    struct state st;
    state_init(&st);
    state_map_set(&st.file, "split", "v1=90,v2=10", 0);
    state_map_set(&st.file, "rules", "1;h,X-Canary,al%ways ok,v2", 0);
    state_map_set(&st.file, "endpoint/v1/127.0.0.1:9001", "1", 0);
    state_map_set(&st.file, "endpoint/v2/[::1]:9003", "5", 0);
    state_map_set(&st.changes, "split", "v1=50,v2=50", 1764340207123);
    state_map_set(&st.changes, "drain/v2/[::1]:9003", "1", 1764340208000);
    state_map_set(&st.changes, "k\xc3\xa9y with\ttab", "", 7); /* empty value */

    struct state_map before;
    state_map_copy(&before, &st.file);
    state_history_push(&st, 1764340200000, "split v1=50 v2=50", &before);
    state_map_remove(&before, "endpoint/v1/127.0.0.1:9001");
    state_map_set(&before, "endpoint/v3/10.0.0.1:80", "2", 0);
    state_history_push(&st, 1764340201000, "remove-endpoint v1 127.0.0.1:9001 \"odd\"",
                       &before);

    char err[512] = "";
    is_int(state_save(path, &st, err, sizeof(err)), 0, "save: %s", err);
    is_int(dir_entries(), 1, "save leaves the state file only (temp file renamed)");
    const char *text = read_file();
    ok(text && strstr(text, "\nweir-state 1\nsaved ") != NULL, "the file starts with its header");
    ok(text && strstr(text, "change 1764340207123 split v1=50,v2=50\n") != NULL,
       "a change is one line: kind, time, key, value");
    ok(text && strstr(text, "k%C3%A9y%20with%09tab") != NULL,
       "non-ASCII, space and tab bytes are %%-escaped");
    ok(text && strstr(text, "al%25ways%20ok") != NULL, "%% itself is escaped");

    struct state back;
    state_init(&back);
    is_int(state_load(path, &back, err, sizeof(err)), 0, "load: %s", err);
    ok(state_map_equal(&back.file, &st.file), "file section survives");
    ok(state_map_equal(&back.changes, &st.changes), "changes survive");
    const struct state_item *it = state_map_find(&back.changes, "split");
    ok(it && it->ts_ms == 1764340207123, "a change keeps its timestamp");
    it = state_map_find(&back.changes, "k\xc3\xa9y with\ttab");
    ok(it && strcmp(it->value, "") == 0 && it->ts_ms == 7, "an empty value survives");
    is_int(back.n_hist, 2, "both history entries");
    if (back.n_hist == 2) {
        is_str(back.hist[1].what, "remove-endpoint v1 127.0.0.1:9001 \"odd\"",
               "history text with quotes and spaces");
        ok(back.hist[0].ts_ms == 1764340200000 && back.hist[1].ts_ms == 1764340201000,
           "history timestamps, oldest first");
        ok(state_map_equal(&back.hist[0].map, &st.hist[0].map),
           "history entry equal to the file section");
        ok(state_map_equal(&back.hist[1].map, &st.hist[1].map),
           "history entry with a removed and an added key (stored as a diff)");
    }

    /* Saving again replaces the file whole. */
    state_map_remove(&st.changes, "split");
    is_int(state_save(path, &st, err, sizeof(err)), 0, "second save");
    struct state again;
    state_init(&again);
    is_int(state_load(path, &again, err, sizeof(err)), 0, "second load");
    ok(!state_map_find(&again.changes, "split") && again.changes.n == 2,
       "the second save replaced the first");
    is_int(dir_entries(), 1, "still one file");

    state_map_dispose(&before);
    state_dispose(&st);
    state_dispose(&back);
    state_dispose(&again);
}

static void test_missing_and_unwritable(void)
{
    struct state st;
    state_init(&st);
    char err[512] = "";
    unlink(path);
    is_int(state_load(path, &st, err, sizeof(err)), 1, "a missing file is not an error (1)");
    ok(is_empty(&st), "state stays empty");

    char bad[400];
    snprintf(bad, sizeof(bad), "%s/file/x.state", path);
    write_file("x", 1); /* `path` is a regular file: no directory below it */
    is_int(state_save(bad, &st, err, sizeof(err)), -1, "save under a file fails");
    ok(strstr(err, "cannot create") != NULL, "with a reason: %s", err);
    state_dispose(&st);
}

static void test_unknown_lines(void)
{
    static const char text[] =
        "# a comment\n"
        "\n"
        "weir-state 1\r\n"
        "saved 1764340207123\n"
        "future-kind a b c\n"
        "file split v1=100\n"
        "   \n"
        "# another\n"
        "change 5 split v1=50,v2=50\r\n"
        "future-kind-2\n";
    write_file(text, sizeof(text) - 1);
    struct state st;
    state_init(&st);
    char err[512] = "";
    is_int(state_load(path, &st, err, sizeof(err)), 0,
           "unknown line kinds, comments, blank lines and CRLF are accepted: %s", err);
    is_str(state_map_value(&st.file, "split"), "v1=100", "known lines around them are read");
    is_str(state_map_value(&st.changes, "split"), "v1=50,v2=50", "change after them read");
    state_dispose(&st);
}

static void refused(const char *text, size_t len, const char *line_why, const char *name)
{
    write_file(text, len);
    struct state st;
    state_init(&st);
    char err[512] = "";
    int rc = state_load(path, &st, err, sizeof(err));
    char want[600];
    snprintf(want, sizeof(want), "%s%s", path, line_why);
    is_int(rc, -1, "%s: refused", name);
    ok(strcmp(err, want) == 0, "%s: error '%s'", name, err);
    if (strcmp(err, want) != 0)
        printf("#   expected '%s'\n", want);
    ok(is_empty(&st), "%s: state left empty", name);
    state_dispose(&st);
}

#define REFUSED(text, why, name) refused(text, sizeof(text) - 1, why, name)

static void test_corrupted(void)
{
    REFUSED("", ":0: empty state file", "empty file");
    REFUSED("# only a comment\n", ":1: empty state file", "comments only");
    REFUSED("weir-st", ":1: not a weir state file (first line must be \"weir-state 1\")",
            "header cut short");
    REFUSED("{\"split\":1}\n", ":1: not a weir state file (first line must be \"weir-state 1\")",
            "another format");
    REFUSED("weir-state 2\n", ":1: unsupported state file version", "a newer version");
    REFUSED("weir-state 1\nsaved 1\nfile split v1=100\nchange 17643402",
            ":4: malformed line", "cut inside a change line");
    REFUSED("weir-state 1\nfile split\n", ":2: malformed line", "file line without value");
    REFUSED("weir-state 1\nchange soon split v1=100\n", ":2: malformed line",
            "timestamp not a number");
    REFUSED("weir-state 1\nchange -5 split v1=100\n", ":2: malformed line",
            "negative timestamp");
    REFUSED("weir-state 1\nfile split v1%G0\n", ":2: malformed line", "bad %%-escape");
    REFUSED("weir-state 1\nfile split v1%00\n", ":2: malformed line", "escaped NUL");
    REFUSED("weir-state 1\nwas split v1=100\n", ":2: malformed line",
            "was line before any history");
    REFUSED("weir-state 1\nfile a b c d e f g h i\n", ":2: malformed line", "too many tokens");
    REFUSED("weir-state 1\nfile split v1=100\nweir-state 1\n", ":3: malformed line",
            "a second header (two files concatenated)");
    REFUSED("weir-state 1\nfile split v1=\0"
            "100\n",
            ": not a weir state file (binary data)",
            "a NUL byte");
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_state_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/weir.state", dir);

    test_round_trip();
    test_missing_and_unwritable();
    test_unknown_lines();
    test_corrupted();

    unlink(path);
    rmdir(dir);
    return tap_done();
}
