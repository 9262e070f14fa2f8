/*
 * server.h — the main thread: loads the config (through runtime.c), opens
 * the listeners, starts the workers, serves the control socket, admin
 * listener, health checks and file watch on its own event_base, and turns
 * signals into reloads and a graceful stop.
 */
#ifndef WEIR_SERVER_H
#define WEIR_SERVER_H

/* Run weir with this config file until stopped. Returns the exit status. */
int server_run(const char *config_path);

/* Check a config file: prints problems as FILE:LINE:COL: message on stderr.
 * Returns 0 (valid) or 1. */
int server_check_config(const char *config_path);

#endif
