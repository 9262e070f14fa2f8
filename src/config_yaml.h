/*
 * config_yaml.h — internal interface of the three config files; everyone
 * else uses config.h.
 *
 *   config_yaml.c   YAML text → tree of struct config_node (with positions)
 *   config_parse.c  the field table; tree → struct config: keys, shapes, values
 *   config.c        the model: defaults, clone, free, restart list (walking the
 *                   table), validator, errors, load
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

/* ---- the field table (rows in config_parse.c, walkers in config.c) ------ */

/*
 * One row per setting. A row says how the key is parsed (type, min, max,
 * what), where its value lives (off, store), its default, and whether a
 * reload may change it (restart). config.c derives the defaults, the deep
 * copy, the free and the "needs a restart" list from these rows, so adding
 * a key is one row plus its struct member: nothing else to keep in step.
 *
 * Why a table rather than a per-config string arena: a config is edited
 * in place by every runtime change (runtime.c frees and replaces a
 * fallback, an endpoint, a rule), and a clone must still copy every
 * string, so an arena would make neither edit nor clone simpler, only
 * change which free() to call. The table also gives the default and the
 * restart flag, which an arena cannot.
 */
#define CONFIG_MAX_FIELDS 64 /* rows in one table (parse_map's bitmap) */

enum config_field_type {
    F_STR = 0,  /* any string → char * */
    F_PATH,     /* non-empty path → char * */
    F_SOCKPATH, /* Unix socket path that fits sun_path → char * */
    F_ID,       /* user/group name or number → char * */
    F_TOKEN,    /* HTTP token (header or cookie name) → char * */
    F_ADDR,     /* host:port → char * + sockaddr + socklen_t */
    F_DUR,      /* duration → uint32_t ms, >= min */
    F_UINT,     /* decimal integer min..max → uint32_t */
    F_PORT,     /* decimal integer 0..65535 → uint16_t */
    F_BOOL,     /* true/false/yes/no/on/off → bool */
    F_MODE,     /* octal permission bits → uint32_t */
    F_MAP,      /* nested mapping described by sub, at base + off */
    F_FN,       /* custom: fn parses the value; store says what it keeps */
    F_DATA,     /* not a key: data filled by other means (the file's path,
                   a version's name), listed for copy and free only */
};

/* What a row keeps at base + off; what copy, free and restart work on. */
enum config_store {
    CS_AUTO = 0, /* implied by the type (F_FN and F_DATA rows must say) */
    CS_NONE,     /* nothing of its own (a custom row writing elsewhere) */
    CS_STR,      /* owned char *, NULL or a copy of def_str by default */
    CS_ADDR,     /* CS_STR + struct sockaddr_storage at off_sa + socklen_t at off_salen */
    CS_U32,      /* uint32_t, default def */
    CS_U16,      /* uint16_t, default def */
    CS_BOOL,     /* bool, default def != 0 */
    CS_ENUM,     /* an enum (int-sized), default def */
    CS_SUB,      /* a struct described by sub, embedded at off */
    CS_ARRAY,    /* owned array of off_n (size_t) structs described by sub */
    CS_STRV,     /* owned array of off_n (size_t) owned strings */
    CS_U32V,     /* owned array of off_n (size_t) uint32_t */
};

struct config_type;
struct config_field;
struct config_pctx; /* config_parse.c's parse state */
typedef void (*config_field_cb)(struct config_pctx *p, const struct config_field *f,
                                const struct config_node *key,
                                const struct config_node *val, void *base);

struct config_field {
    const char *name;              /* the YAML key; NULL ends a table */
    enum config_field_type type;   /* how the value is parsed */
    enum config_store store;       /* what is kept; CS_AUTO = from type */
    bool required;                 /* the key must be present */
    bool restart;                  /* a reload keeps the running value */
    size_t off, off_sa, off_salen; /* storage in the base struct */
    size_t off_n;                  /* CS_ARRAY, CS_STRV, CS_U32V: the count */
    uint32_t min, max;             /* F_DUR, F_UINT */
    uint32_t def;                  /* default of a number, bool or enum */
    const char *def_str;           /* borrowed: default of a string, NULL = none */
    const char *what;              /* override of the type's description */
    const struct config_type *sub; /* F_MAP, CS_SUB, CS_ARRAY: nested rows */
    bool named;                    /* CS_ARRAY: a mapping of user-chosen names
                                      (versions), not a list */
    config_field_cb fn;            /* F_FN */
};

/* A struct the rows describe. */
struct config_type {
    size_t size;                     /* sizeof the struct */
    const struct config_field *rows; /* borrowed, static */
};

/* The whole config (struct config), and one version (struct config_version). */
extern const struct config_type config_type_top;
extern const struct config_type config_type_version;

/* The store of row f, CS_AUTO resolved. */
enum config_store config_field_store(const struct config_field *f);

/* Set the defaults of every row into the zeroed struct at base. */
void config_fields_init(const struct config_type *t, void *base);

/* Free everything the rows own in the struct at base (not base itself). */
void config_fields_dispose(const struct config_type *t, void *base);

/*
 * Every key the parser accepts, as a path from the top: "timeouts.drain",
 * "*" for a user-chosen name, "[]" for a list item:
 * "versions.*.endpoints[].address". Returns the count; *out is a new array
 * of new strings in table order (free each, then the array).
 */
size_t config_schema_keys(char ***out);

/* ---- config_parse.c ---------------------------------------------------- */

/* What config_validate_skip() must not check, because parsing already failed there. */
struct config_skip {
    bool split;        /* split missing or had bad entries: skip the sum */
    bool all_names;    /* `versions` missing or not a mapping */
    char **lost_names; /* owned: version names that were rejected */
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
