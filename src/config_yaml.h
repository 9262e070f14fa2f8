/*
 * config_yaml.h — internal interface of the three config files; everyone
 * else uses config.h.
 *
 *   config_yaml.c   YAML text → tree of struct config_node (with positions)
 *   config_parse.c  tree → struct config: keys, shapes, single values
 *   config.c        the model: defaults, validator, clone, free, errors, load
 *
 * The parser stores only values that parsed; whatever it could not store it
 * describes in a struct config_skip, so that the validator, which then runs
 * on the partial config, does not report follow-on errors (a split entry
 * dropped for a bad percentage must not also make the split "sum to 90 %").
 */
#ifndef WEIR_CONFIG_YAML_H
#define WEIR_CONFIG_YAML_H

#include <stdarg.h>

#include "config.h"

#define CONFIG_MAX_PARSE_ERRORS 100 /* beyond this it is not a config at all */

/* ---- config_yaml.c ----------------------------------------------------- */

enum config_node_kind {
    CN_NULL = 0, /* plain empty, ~ or null: treated as if the key were absent */
    CN_SCALAR,   /* any other scalar; text holds it */
    CN_MAP,      /* kids: key, value, key, value... */
    CN_SEQ,      /* kids: items */
    CN_BAD,      /* already reported (alias, NUL byte): skipped silently */
};

struct config_node {
    enum config_node_kind kind;
    struct config_pos pos;
    char *text;                /* owned, NUL-terminated; all but maps and lists */
    struct config_node **kids; /* owned array of owned nodes */
    size_t n, cap;
    bool dup; /* a key already seen in the same mapping (reported): skip it */
};

/* Where parse errors go. taint counts errors and silently skipped nodes. */
struct config_report {
    struct config_errors *errs; /* borrowed */
    size_t errs_start;          /* errs->n when parsing began */
    unsigned taint;
};

/* Report one problem (at most CONFIG_MAX_PARSE_ERRORS); bumps taint. */
void config_yaml_error(struct config_report *r, struct config_pos pos,
                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void config_yaml_verror(struct config_report *r, struct config_pos pos,
                        const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/*
 * Read TEXT into a tree (caller frees with config_yaml_free). Returns NULL
 * for an empty stream; NULL with *failed = true after a fatal problem, which
 * is reported.
 */
struct config_node *config_yaml_read(struct config_report *r, const char *text,
                                     size_t len, bool *failed);
void config_yaml_free(struct config_node *n);

/* A short, printable, quoted rendering of untrusted text, for messages. */
struct config_qbuf {
    char s[72];
};
const char *config_yaml_quote(struct config_qbuf *q, const char *s);
/* What a node is, for messages: "a mapping", "a list", "empty" or its quoted text. */
const char *config_yaml_describe(struct config_qbuf *q, const struct config_node *n);

/* ---- config_parse.c ---------------------------------------------------- */

/* What config_validate_skip() must not check, because parsing already failed there. */
struct config_skip {
    bool split;          /* split missing or had bad entries: skip the sum */
    bool all_names;      /* `versions` missing or not a mapping */
    char **lost_names;   /* owned: version names that were rejected */
    size_t n_lost;
    bool version[CONFIG_MAX_VERSIONS]; /* version i had errors: skip its
                                          "no endpoints" check */
};

/*
 * Parse YAML TEXT into a new config with defaults for everything absent.
 * Appends every problem to errs and records in skip what could not be
 * stored. Returns NULL only when there is no usable tree at all (YAML
 * syntax error, empty document, top level not a mapping); otherwise the
 * caller must check errs for problems and validate with skip.
 */
struct config *config_parse(const char *file, const char *text, size_t len,
                             struct config_errors *errs,
                             struct config_skip *skip) WUR;

/* ---- config.c ---------------------------------------------------------- */

void config_skip_dispose(struct config_skip *skip);

/* True when a reference to NAME must not be reported as undefined. */
bool config_skip_name(const struct config_skip *skip, const char *name);

/* A config holding only the defaults (no versions, no listen). */
struct config *config_new_default(const char *file);

/* A version holding only the defaults; name is copied. */
void config_version_init(struct config_version *v, const char *name);

/* config_validate(), minus the checks skip marks as already reported. */
int config_validate_skip(const struct config *cfg, struct config_errors *errs,
                         const struct config_skip *skip) WUR;

/* Syntax checks shared by the parser and the validator. */
bool config_is_version_name(const char *s);
bool config_is_token(const char *s); /* RFC 9110 §5.6.2 token */

#endif
