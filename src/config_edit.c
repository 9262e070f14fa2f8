/*
 * config_edit.c — see config_edit.h.
 */
#include "config_edit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int config_edit_find_endpoint(const struct config_version *v, const char *address)
{
    struct sockaddr_storage sa;
    socklen_t sa_len;
    bool parsed = util_parse_addr(address, &sa, &sa_len, NULL) == 0;
    for (size_t i = 0; i < v->n_endpoints; i++) {
        const struct config_endpoint *e = &v->endpoints[i];
        if (parsed && e->sa_len == sa_len && memcmp(&e->sa, &sa, sa_len) == 0)
            return (int)i;
        if (e->address && strcmp(e->address, address) == 0)
            return (int)i;
    }
    return -1;
}

int config_edit_add_endpoint(struct config_version *v, const char *address,
                             uint32_t weight, char *err, size_t errlen)
{
    struct config_endpoint e;
    memset(&e, 0, sizeof(e));
    const char *why = NULL;
    if (util_parse_addr(address, &e.sa, &e.sa_len, &why) < 0) {
        snprintf(err, errlen, "bad endpoint address \"%s\": %s", address, why);
        return -1;
    }
    if (v->n_endpoints >= CONFIG_MAX_ENDPOINTS) {
        snprintf(err, errlen, "version %s already has %d endpoints (the most allowed)",
                 v->name, CONFIG_MAX_ENDPOINTS);
        return -1;
    }
    e.address = xstrdup(address);
    e.weight = weight;
    v->endpoints = xrealloc(v->endpoints, (v->n_endpoints + 1) * sizeof(*v->endpoints));
    v->endpoints[v->n_endpoints++] = e;
    return 0;
}

void config_edit_remove_endpoint(struct config_version *v, size_t i)
{
    CHECK(i < v->n_endpoints);
    free(v->endpoints[i].address);
    memmove(&v->endpoints[i], &v->endpoints[i + 1],
            (v->n_endpoints - i - 1) * sizeof(*v->endpoints));
    v->n_endpoints--;
}

void config_edit_set_split(struct config *cfg, const uint32_t *bp)
{
    if (!cfg->split_bp)
        cfg->split_bp = xcalloc(cfg->n_versions ? cfg->n_versions : 1,
                                sizeof(*cfg->split_bp));
    memcpy(cfg->split_bp, bp, cfg->n_versions * sizeof(*bp));
}

void config_edit_format_split(const struct config *cfg, char *buf, size_t buflen)
{
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_versions; i++) {
        char pct[16];
        util_format_bp(cfg->split_bp ? cfg->split_bp[i] : 0, pct, sizeof(pct));
        util_append(buf, buflen, ",", "%s=%s", cfg->versions[i].name, pct);
    }
}
