/*
 * txn_error.h — why a request did not end as a plain answered response: the
 * one table that maps each reason to the status weir answers (or logs), the
 * log level of its warning, the metric label it is counted under, and
 * whether it is a failure of the upstream (an "error" to the guard even
 * when the status the client saw was not a 5xx).
 *
 * Reasons are small integers so per-worker counters can be indexed by them;
 * the human sentence (txn_errors[e].reason) is what the access log's
 * "error" field and the warning say. Any thread (the table is constant).
 */
#ifndef WEIR_TXN_ERROR_H
#define WEIR_TXN_ERROR_H

#include <stdbool.h>

enum txn_error {
    /* clang-format off */
    TXN_E_NONE = 0,         /* no error: the response completed */
    TXN_E_BAD_REQUEST,      /* 400: the head failed vetting or parsing */
    TXN_E_HEAD_TOO_LARGE,   /* 431: head over limits.max_header_bytes */
    TXN_E_HEAD_TIMEOUT,     /* 408: head not complete in client_header */
    TXN_E_BAD_BODY,         /* 400: bad request body framing */
    TXN_E_NO_ENDPOINT,      /* 503: the version has no available endpoint */
    TXN_E_CONNECT,          /* 502: upstream connect failed */
    TXN_E_CONNECT_TIMEOUT,  /* 504: upstream connect timed out */
    TXN_E_TIMEOUT,          /* 504: upstream response timeout */
    TXN_E_RESET,            /* 502: upstream closed before responding */
    TXN_E_BAD_RESPONSE,     /* 502: unparsable or ill-framed response */
    TXN_E_TRUNCATED,        /* 502: upstream closed mid-response */
    TXN_E_CLIENT_HEAD,      /* 499: client gone before the response head */
    TXN_E_CLIENT_BODY,      /* 499: client gone during the response body */
    TXN_E_STOPPED,          /* 503: weir stopped before the response ended */
    TXN_E_COUNT             /* number of reasons (array size) */
    /* clang-format on */
};

struct txn_error_info {
    const char *reason; /* human sentence: log "error" field, warnings */
    int status;         /* what weir answers, or logs when it cannot */
    int log_level;      /* enum log_level of the warning (log.h) */
    const char *label;  /* metric label: weir_errors_total{error} */
    bool upstream;      /* a failure of the upstream side */
};

/* Indexed by enum txn_error. */
extern const struct txn_error_info txn_errors[TXN_E_COUNT];

/*
 * Is this ending an error in the INTERFACE's sense (a 5xx from the upstream
 * or from weir, or an upstream failure)? Any thread.
 */
bool txn_error_is_failure(int status, enum txn_error e);

#endif
