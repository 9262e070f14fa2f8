/*
 * txn_error.c — see txn_error.h. The one table of request-ending reasons.
 */
#include "txn_error.h"

#include <stddef.h>

#include "log.h"

const struct txn_error_info txn_errors[TXN_E_COUNT] = {
    [TXN_E_NONE] = {NULL, 0, LOG_L_DEBUG, "none", false},
    [TXN_E_BAD_REQUEST] = {"bad request", 400, LOG_L_WARN, "bad_request", false},
    [TXN_E_HEAD_TOO_LARGE] = {"request head too large", 431, LOG_L_WARN,
                              "head_too_large", false},
    [TXN_E_HEAD_TIMEOUT] = {"request head timeout", 408, LOG_L_WARN,
                            "head_timeout", false},
    [TXN_E_BAD_BODY] = {"bad request body framing", 400, LOG_L_WARN, "bad_body",
                        false},
    /* Not warned per request: a version without endpoints would flood. */
    [TXN_E_NO_ENDPOINT] = {"no healthy endpoint", 503, LOG_L_DEBUG, "no_endpoint",
                           true},
    [TXN_E_CONNECT] = {"upstream connect failed", 502, LOG_L_WARN, "connect", true},
    [TXN_E_CONNECT_TIMEOUT] = {"upstream connect timeout", 504, LOG_L_WARN,
                               "connect_timeout", true},
    [TXN_E_TIMEOUT] = {"upstream response timeout", 504, LOG_L_WARN, "timeout",
                       true},
    [TXN_E_RESET] = {"upstream closed before responding", 502, LOG_L_WARN, "reset",
                     true},
    [TXN_E_BAD_RESPONSE] = {"bad response from upstream", 502, LOG_L_WARN,
                            "bad_response", true},
    [TXN_E_TRUNCATED] = {"upstream closed mid-response", 502, LOG_L_WARN,
                         "truncated", true},
    /* 499 is nginx's "client closed request". */
    [TXN_E_CLIENT_HEAD] = {"client closed before response head", 499, LOG_L_DEBUG,
                           "client_closed_head", false},
    [TXN_E_CLIENT_BODY] = {"client closed during response body", 499, LOG_L_DEBUG,
                           "client_closed_body", false},
    [TXN_E_STOPPED] = {"weir stopped before the response completed", 503,
                       LOG_L_WARN, "stopped", false},
};

bool txn_error_is_failure(int status, enum txn_error e)
{
    return status >= 500 || (e > TXN_E_NONE && e < TXN_E_COUNT && txn_errors[e].upstream);
}
