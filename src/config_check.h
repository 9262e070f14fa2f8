/*
 * config_check.h — what `weir -t` checks beyond the file itself: the
 * things start-up opens or looks up and would refuse (the access log file,
 * the control socket's path, its owner and group), so a config that passes
 * `weir -t` does not then fail to start for one of them.
 *
 * Checks only: nothing is left behind (a missing access log file is
 * created and removed again), nothing is bound or changed. Main thread
 * (it calls getpwnam_r and stats files).
 */
#ifndef WEIR_CONFIG_CHECK_H
#define WEIR_CONFIG_CHECK_H

#include "config.h"

/*
 * Check what start-up would open for cfg (a valid config) and append one
 * FILE:LINE:COL error per problem to errs. Returns 0 when start-up would
 * get past all of them, -1 otherwise.
 */
int config_check_environment(const struct config *cfg, struct config_errors *errs) WUR;

#endif
