/*
 * fuzz_config.c — the YAML config loader and validator
 * (config_load_string: libyaml events → node tree → struct config →
 * config_validate) on arbitrary text, as weir reads a config file, a
 * reload, or a ConfigMap.
 *
 * Invariants:
 *  - a config either loads (no errors) or is refused with at least one
 *    error; every error message is printable (untrusted text is quoted,
 *    control bytes escaped: messages go to logs and control answers);
 *  - a loaded config passes config_validate again, and so does its
 *    config_clone (the runtime path clones before every change); its
 *    split sums to 100 % and its counts stay within the limits;
 *  - config_errors_format never overruns a small buffer.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"

static void check_valid(const struct config *cfg)
{
    struct config_errors errs;
    config_errors_init(&errs, "fuzz.yaml");
    FUZZ_CHECK(config_validate(cfg, &errs) == 0);
    FUZZ_CHECK(errs.n == 0);
    config_errors_dispose(&errs);
    FUZZ_CHECK(cfg->n_versions >= 1 && cfg->n_versions <= CONFIG_MAX_VERSIONS);
    FUZZ_CHECK(cfg->n_rules <= CONFIG_MAX_RULES);
    uint32_t sum = 0;
    for (size_t i = 0; i < cfg->n_versions; i++) {
        FUZZ_CHECK(cfg->versions[i].n_endpoints <= CONFIG_MAX_ENDPOINTS);
        FUZZ_CHECK(config_version_index(cfg, cfg->versions[i].name) == (int)i);
        sum += cfg->split_bp ? cfg->split_bp[i] : 0;
    }
    FUZZ_CHECK(sum == SPLIT_TOTAL_BP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_errors errs;
    config_errors_init(&errs, "fuzz.yaml");
    struct config *cfg = config_load_string("fuzz.yaml", (const char *)data, size, &errs);
    if (cfg) {
        FUZZ_CHECK(errs.n == 0);
        check_valid(cfg);
        struct config *copy = config_clone(cfg);
        check_valid(copy);
        config_free(copy);
        config_free(cfg);
    } else {
        FUZZ_CHECK(errs.n >= 1);
        for (size_t i = 0; i < errs.n; i++) {
            FUZZ_CHECK(errs.v[i].msg[0] != '\0');
            FUZZ_CHECK(errs.v[i].pos.line >= 0 && errs.v[i].pos.col >= 0);
            for (const char *m = errs.v[i].msg; *m; m++)
                FUZZ_CHECK((unsigned char)*m >= 0x20 && *m != 0x7f);
        }
        char small[48];
        memset(small, 'x', sizeof(small));
        config_errors_format(&errs, small, sizeof(small) - 8);
        FUZZ_CHECK(strlen(small) < sizeof(small) - 8);
        for (size_t i = sizeof(small) - 8; i < sizeof(small); i++)
            FUZZ_CHECK(small[i] == 'x');
    }
    config_errors_dispose(&errs);
    return 0;
}
