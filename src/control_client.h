/*
 * control_client.h — the client side of the control socket, shared by
 * weirctl and weir-bench's --ramp: connect to the Unix socket, send one
 * command line, read one answer line. Blocking, with a deadline for the
 * whole answer; no parsing (callers json_parse the line).
 *
 * Errors come back as one human sentence naming the socket path
 * ("cannot connect to /run/weir/weir.sock: No such file or directory").
 * Any thread; holds no state between calls.
 */
#ifndef WEIR_CONTROL_CLIENT_H
#define WEIR_CONTROL_CLIENT_H

#include <stddef.h>

#include "json.h"
#include "util.h"

#define CONTROL_CLIENT_ANSWER_MAX (64u << 20) /* bytes; a longer answer is refused */

/*
 * Connect to the control socket at path. Returns the fd (caller closes),
 * or -1 with err filled and errno set (ENAMETOOLONG: path does not fit a
 * Unix socket address).
 */
int control_client_connect(const char *path, char *err, size_t errlen) WUR;

/*
 * On a connected fd, send line[0..len) (which must end with its newline)
 * and read one answer line into ans (emptied first; the newline is
 * dropped, ans stays NUL-terminated), waiting at most timeout_ms for it.
 * path only names the socket in errors. Returns 0, or -1 with err filled.
 */
int control_client_exchange(int fd, const char *line, size_t len, int timeout_ms,
                            const char *path, struct json_buf *ans, char *err,
                            size_t errlen) WUR;

/*
 * Connect, send cmd (one command, without a newline), read the answer,
 * close: control_client_connect + control_client_exchange. Returns 0 with
 * the answer line in ans, or -1 with err filled.
 */
int control_client_call(const char *path, const char *cmd, int timeout_ms,
                        struct json_buf *ans, char *err, size_t errlen) WUR;

#endif
