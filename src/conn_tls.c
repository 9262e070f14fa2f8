/*
 * conn_tls.c — see conn_tls.h.
 *
 * The BIO: one object of our own method is both the SSL's rbio and wbio;
 * reads take from wire_in (retry when empty), writes append to wire_out
 * (never refused: how much is queued is bounded by conn_tls_fill's
 * high-water mark and by the handshake's own size).
 */
#include "conn_tls.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "log.h"
#include "util.h"

#define TLS_READ_CHUNK 16384u

static _Atomic uint64_t counts[CONN_TLS_MAX_LISTENERS][CONN_TLS_N_RESULTS];

static const char *const result_names[CONN_TLS_N_RESULTS] = {
    [CONN_TLS_OK] = "ok",
    [CONN_TLS_FAILED] = "failed",
    [CONN_TLS_PLAIN_HTTP] = "plain_http",
    [CONN_TLS_NOT_TLS] = "not_tls",
    [CONN_TLS_TIMEOUT] = "timeout",
    [CONN_TLS_RENEGOTIATE] = "renegotiation",
};

const char *conn_tls_result_name(enum conn_tls_result r)
{
    return r < CONN_TLS_N_RESULTS ? result_names[r] : "?";
}

uint64_t conn_tls_count(unsigned listener, enum conn_tls_result r)
{
    if (listener >= CONN_TLS_MAX_LISTENERS || r >= CONN_TLS_N_RESULTS)
        return 0;
    return atomic_load_explicit(&counts[listener][r], memory_order_relaxed);
}

/* Count the handshake's result once (server sides only). */
static void count(struct conn_tls *t, enum conn_tls_result r)
{
    if (r == CONN_TLS_RENEGOTIATE && t->server && t->listener < CONN_TLS_MAX_LISTENERS) {
        /* after the handshake's own count */
        atomic_fetch_add_explicit(&counts[t->listener][r], 1, memory_order_relaxed);
        return;
    }
    if (!t->server || t->counted || t->listener >= CONN_TLS_MAX_LISTENERS)
        return;
    t->counted = true;
    atomic_fetch_add_explicit(&counts[t->listener][r], 1, memory_order_relaxed);
    if (t->timer) { /* the deadline is over: no event kept while idle */
        event_free(t->timer);
        t->timer = NULL;
    }
}

/* ---- the BIO ------------------------------------------------------------ */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *buf, int len)
{
    struct conn_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    int n = len > 0 ? evbuffer_remove(t->wire_in, buf, (size_t)len) : 0;
    if (n <= 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    return n;
}

static int bio_write(BIO *b, const char *buf, int len)
{
    struct conn_tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (evbuffer_add(t->wire_out, buf, (size_t)len) < 0)
        return -1;
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct conn_tls *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)evbuffer_get_length(t->wire_in);
    case BIO_CTRL_WPENDING:
        return 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_method(void)
{
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weir-evbuffer");
    CHECK(bio_method);
    BIO_meth_set_read(bio_method, bio_read);
    BIO_meth_set_write(bio_method, bio_write);
    BIO_meth_set_ctrl(bio_method, bio_ctrl);
    BIO_meth_set_create(bio_method, bio_create);
}

/* ---- life --------------------------------------------------------------- */

/* A renegotiation attempt (TLS 1.2 ClientHello after the handshake):
 * OpenSSL refuses it (SSL_OP_NO_RENEGOTIATION) with a no_renegotiation
 * warning alert and would go on; we close. */
static void on_info(const SSL *ssl, int where, int ret)
{
    struct conn_tls *t = SSL_get_app_data(ssl);
    if (!t || !t->done)
        return;
    if (((where & SSL_CB_WRITE_ALERT) && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION) ||
        ((where & SSL_CB_HANDSHAKE_START) && SSL_version(ssl) < TLS1_3_VERSION))
        t->reneg = true;
}

static struct conn_tls *tls_alloc(void)
{
    pthread_once(&bio_once, make_method);
    return xcalloc(1, sizeof(struct conn_tls));
}

int conn_tls_wake(struct conn_tls *t)
{
    if (!t->wire_in)
        t->wire_in = evbuffer_new();
    if (!t->wire_out)
        t->wire_out = evbuffer_new();
    return t->wire_in && t->wire_out ? 0 : -1;
}

void conn_tls_park(struct conn_tls *t)
{
    if (t->ssl)
        SSL_free_buffers(t->ssl);
    /* An empty evbuffer can still hold a reserved chain (4 KiB): drop both
     * while the connection is idle; conn_tls_wake makes them again. */
    if (t->wire_in && evbuffer_get_length(t->wire_in) == 0) {
        evbuffer_free(t->wire_in);
        t->wire_in = NULL;
    }
    if (t->wire_out && evbuffer_get_length(t->wire_out) == 0) {
        evbuffer_free(t->wire_out);
        t->wire_out = NULL;
    }
}

static int make_ssl(struct conn_tls *t, SSL_CTX *ctx)
{
    t->ssl = SSL_new(ctx);
    BIO *b = t->ssl ? BIO_new(bio_method) : NULL;
    if (!b) {
        ERR_clear_error();
        return -1;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b);
    SSL_set_app_data(t->ssl, t);
    SSL_set_info_callback(t->ssl, on_info);
    return 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct conn_tls *t = arg;
    (void)fd;
    (void)what;
    count(t, CONN_TLS_TIMEOUT);
    t->failed = true;
    t->on_timeout(t->arg); /* frees t */
}

struct conn_tls *conn_tls_new_server(struct loop *l, SSL_CTX *ctx, unsigned listener,
                                     uint32_t timeout_ms, void (*on_timeout)(void *arg),
                                     void *arg)
{
    struct conn_tls *t = tls_alloc();
    if (!t)
        return NULL;
    t->server = true;
    t->loop = l;
    t->listener = listener;
    t->on_timeout = on_timeout;
    t->arg = arg;
    SSL_CTX_up_ref(ctx);
    t->ctx = ctx;
    t->timer = evtimer_new(l->base, on_deadline, t);
    if (!t->timer) {
        conn_tls_free(t);
        return NULL;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(t->timer, &tv);
    return t;
}

struct conn_tls *conn_tls_new_client(SSL_CTX *ctx, const char *sni, const char *ip,
                                     SSL_SESSION *resume)
{
    struct conn_tls *t = tls_alloc();
    if (!t)
        return NULL;
    t->listener = UINT_MAX;
    if (conn_tls_wake(t) < 0 || make_ssl(t, ctx) < 0) {
        conn_tls_free(t);
        return NULL;
    }
    bool verify = SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER;
    bool named = true;
    if (sni) {
        named = SSL_set_tlsext_host_name(t->ssl, sni) == 1 &&
                (!verify || SSL_set1_host(t->ssl, sni) == 1);
    } else if (verify) {
        /* No name to check: the certificate must carry the endpoint's IP
         * (as nginx checks the address of an IP proxy_pass). */
        named = ip && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ip) == 1;
    }
    if (!named) {
        ERR_clear_error();
        conn_tls_free(t);
        return NULL;
    }
    if (resume)
        SSL_set_session(t->ssl, resume);
    SSL_set_connect_state(t->ssl);
    return t;
}

const SSL_CTX *conn_tls_ctx(const struct conn_tls *t)
{
    return t->ssl ? SSL_get_SSL_CTX(t->ssl) : t->ctx;
}

void conn_tls_free(struct conn_tls *t)
{
    if (!t)
        return;
    if (t->timer)
        event_free(t->timer);
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    if (t->wire_in)
        evbuffer_free(t->wire_in);
    if (t->wire_out)
        evbuffer_free(t->wire_out);
    free(t);
}

/* ---- data --------------------------------------------------------------- */

static const char plain_http_answer[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 46\r\n"
    "Connection: close\r\n"
    "\r\n"
    "The plain HTTP request was sent to HTTPS port\n";

_Static_assert(sizeof("The plain HTTP request was sent to HTTPS port\n") - 1 == 46,
               "Content-Length of the plain-HTTP answer");

/* The first bytes of a server side: a TLS handshake record, or not. */
static int sniff(struct conn_tls *t)
{
    unsigned char b0;
    if (evbuffer_copyout(t->wire_in, &b0, 1) < 1)
        return CONN_TLS_IN_NONE;
    if (b0 != 0x16) {
        bool http = b0 >= 'A' && b0 <= 'Z';
        if (http)
            evbuffer_add(t->wire_out, plain_http_answer, sizeof(plain_http_answer) - 1);
        count(t, http ? CONN_TLS_PLAIN_HTTP : CONN_TLS_NOT_TLS);
        evbuffer_drain(t->wire_in, evbuffer_get_length(t->wire_in));
        t->failed = true;
        return CONN_TLS_IN_FAIL;
    }
    SSL_CTX *ctx = t->ctx;
    t->ctx = NULL;
    int rc = make_ssl(t, ctx);
    SSL_CTX_free(ctx);
    if (rc < 0) {
        t->failed = true;
        return CONN_TLS_IN_FAIL;
    }
    SSL_set_accept_state(t->ssl);
    return CONN_TLS_IN_DATA;
}

static int fail(struct conn_tls *t, enum conn_tls_result r)
{
    char why[160];
    unsigned long e = ERR_peek_error();
    ERR_error_string_n(e, why, sizeof(why));
    log_debug("TLS %s: %s", conn_tls_result_name(r), e ? why : "closed");
    ERR_clear_error();
    count(t, r);
    t->failed = true;
    return CONN_TLS_IN_FAIL;
}

int conn_tls_input(struct conn_tls *t, struct evbuffer *in)
{
    if (t->failed)
        return CONN_TLS_IN_FAIL;
    if (t->eof)
        return CONN_TLS_IN_EOF;
    if (!t->ssl && sniff(t) != CONN_TLS_IN_DATA)
        return t->failed ? CONN_TLS_IN_FAIL : CONN_TLS_IN_NONE;
    if (!t->done) {
        if (evbuffer_get_length(t->wire_in) > CONN_TLS_HANDSHAKE_IN_MAX)
            return fail(t, CONN_TLS_FAILED);
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return CONN_TLS_IN_NONE;
            return fail(t, CONN_TLS_FAILED);
        }
        t->done = true;
        count(t, CONN_TLS_OK);
    }
    int got = CONN_TLS_IN_NONE;
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(in, TLS_READ_CHUNK, &v, 1) < 1)
            return fail(t, CONN_TLS_FAILED);
        size_t want = v.iov_len < INT_MAX ? v.iov_len : INT_MAX;
        int n = SSL_read(t->ssl, v.iov_base, (int)want);
        v.iov_len = n > 0 ? (size_t)n : 0;
        evbuffer_commit_space(in, &v, 1);
        if (t->reneg) /* a renegotiation attempt (on_info) */
            return fail(t, CONN_TLS_RENEGOTIATE);
        if (n > 0) {
            got = CONN_TLS_IN_DATA;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return got;
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->eof = true;
            return got == CONN_TLS_IN_DATA ? got : CONN_TLS_IN_EOF;
        }
        if (got == CONN_TLS_IN_DATA) {
            /* deliver what came before the error; the next input fails */
            ERR_clear_error();
            t->failed = true;
            return got;
        }
        return fail(t, CONN_TLS_FAILED);
    }
}

bool conn_tls_close_notify(struct conn_tls *t)
{
    if (!t->ssl || !t->done || t->failed || t->notified || !t->wire_out)
        return false;
    t->notified = true;
    size_t before = evbuffer_get_length(t->wire_out);
    SSL_shutdown(t->ssl); /* 0: sent, the peer's not awaited (we linger) */
    ERR_clear_error();
    return evbuffer_get_length(t->wire_out) > before;
}

void conn_tls_fill(struct conn_tls *t, struct evbuffer *out)
{
    if (!t->done || t->failed)
        return;
    size_t len;
    while (evbuffer_get_length(t->wire_out) < CONN_TLS_WIRE_HIGH &&
           (len = evbuffer_get_length(out)) > 0) {
        size_t n = len < TLS_READ_CHUNK ? len : TLS_READ_CHUNK;
        const unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)n);
        if (!p)
            return;
        int w = SSL_write(t->ssl, p, (int)n);
        if (w <= 0) {
            ERR_clear_error();
            t->failed = true;
            return;
        }
        evbuffer_drain(out, (size_t)w);
    }
}

void conn_tls_connect(struct conn_tls *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            t->failed = true;
        }
    }
}

const char *conn_tls_version(const struct conn_tls *t)
{
    return t->ssl && t->done ? SSL_get_version(t->ssl) : "";
}

const char *conn_tls_sni(const struct conn_tls *t)
{
    const char *s = t->ssl ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    return s ? s : "";
}

void conn_tls_alpn(const struct conn_tls *t, char *buf, size_t len)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (t->ssl)
        SSL_get0_alpn_selected(t->ssl, &p, &n);
    snprintf(buf, len, "%.*s", (int)n, p ? (const char *)p : "");
}

SSL_SESSION *conn_tls_session(const struct conn_tls *t)
{
    return t->ssl && t->done ? SSL_get1_session(t->ssl) : NULL;
}
