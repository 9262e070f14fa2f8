/*
 * config_edit.h — small edits of a config in place, as the runtime changes
 * make them (control_edit.c, release.c) and the state codec applies them
 * (runtime_map.c): endpoints of a version found, added and removed, the
 * split replaced and rendered. Pure over the struct config they are given;
 * validation is the caller's (config_validate). Any thread.
 */
#ifndef WEIR_CONFIG_EDIT_H
#define WEIR_CONFIG_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * Endpoints are matched by
 * parsed address when it parses ("localhost:80" is "127.0.0.1:80"), else by
 * text. find returns the endpoint's index or -1; add/remove return 0 or -1
 * with err.
 */
int config_edit_find_endpoint(const struct config_version *v, const char *address);
int config_edit_add_endpoint(struct config_version *v, const char *address,
                             uint32_t weight, char *err, size_t errlen) WUR;
void config_edit_remove_endpoint(struct config_version *v, size_t i);
/* Replace cfg's split: bp[i] for version i (n_versions entries). */
void config_edit_set_split(struct config *cfg, const uint32_t *bp);
/* Render the split "v1=90,v2=10" (all versions, config order). */
void config_edit_format_split(const struct config *cfg, char *buf, size_t buflen);

#endif
