/*
 * tls_ctx.c — see tls_ctx.h.
 *
 * SNI: the default context's servername callback looks the name up in
 * the listener's table (exact names first, then "*.rest" for the name
 * minus its first label) and switches the SSL to that certificate's
 * context; no match or no SNI keeps the default certificate. ALPN and
 * the ticket callback are set on every context (the ClientHello is read
 * under the default one, resumption under either).
 */
#include "tls_ctx.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "log.h"
#include "tls_ticket.h"
#include "util.h"

/* Mozilla "intermediate" (v5.7) TLS 1.2 suites, ECDHE only. TLS 1.3
 * suites: OpenSSL's default (AES-GCM, ChaCha20-Poly1305). */
#define TLS12_CIPHERS                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

static atomic_bool alpn_h2;

void tls_ctx_enable_h2(bool on)
{
    atomic_store(&alpn_h2, on);
}

static int ex_index = -1;

int tls_ctx_ex_index(void)
{
    return ex_index;
}

/* The first OpenSSL error's reason (and clear the queue). */
static const char *ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e)
        snprintf(buf, len, "unknown error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h2_h1[] = "\x02h2\x08http/1.1";
    static const unsigned char h1[] = "\x08http/1.1";
    bool h2 = atomic_load_explicit(&alpn_h2, memory_order_relaxed);
    const unsigned char *srv = h2 ? h2_h1 : h1;
    unsigned srvlen = h2 ? sizeof(h2_h1) - 1 : sizeof(h1) - 1;
    unsigned char *sel = NULL;
    unsigned char sellen = 0;
    if (SSL_select_next_proto(&sel, &sellen, srv, srvlen, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN */
    *out = sel;
    *outlen = sellen;
    return SSL_TLSEXT_ERR_OK;
}

static bool name_matches(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        return dot && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct tls_listener *l = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || !l->n_names)
        return SSL_TLSEXT_ERR_OK;
    const struct tls_name *hit = NULL;
    for (size_t i = 0; i < l->n_names && !hit; i++)
        if (l->names[i].name[0] != '*' && name_matches(l->names[i].name, name))
            hit = &l->names[i];
    for (size_t i = 0; i < l->n_names && !hit; i++)
        if (l->names[i].name[0] == '*' && name_matches(l->names[i].name, name))
            hit = &l->names[i];
    if (hit)
        SSL_set_SSL_CTX(ssl, hit->ctx);
    return SSL_TLSEXT_ERR_OK;
}

static int on_status(SSL *ssl, void *arg)
{
    const struct tls_listener *l = arg;
    if (!l->ocsp)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc(l->ocsp_len);
    if (!copy)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, l->ocsp, l->ocsp_len);
    if (!SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)l->ocsp_len)) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* The validity of the leaf certificate now; -1 with err when outside. */
static int check_validity(SSL_CTX *ctx, const char *cert, char *err, size_t errlen)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (!x) {
        snprintf(err, errlen, "certificate \"%s\": no certificate in the file", cert);
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        snprintf(err, errlen, "certificate \"%s\" is not yet valid", cert);
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        snprintf(err, errlen, "certificate \"%s\" has expired", cert);
        return -1;
    }
    return 0;
}

SSL_CTX *tls_ctx_server(const char *cert, const char *key, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot make a TLS context: %s", ossl_reason(why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) ||
        !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
        snprintf(err, errlen, "TLS policy: %s", ossl_reason(why, sizeof(why)));
        goto fail;
    }
    /* One ticket per full handshake (TLS 1.3 sends two by default). */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (access(cert, R_OK) < 0) {
        snprintf(err, errlen, "certificate \"%s\" cannot be read: %s", cert, strerror(errno));
        goto fail;
    }
    if (access(key, R_OK) < 0) {
        snprintf(err, errlen, "key \"%s\" cannot be read: %s", key, strerror(errno));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "certificate \"%s\": %s", cert, ossl_reason(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            snprintf(err, errlen, "key \"%s\" does not match certificate \"%s\"", key, cert);
        } else {
            snprintf(err, errlen, "key \"%s\": %s", key, ossl_reason(why, sizeof(why)));
        }
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "key \"%s\" does not match certificate \"%s\"", key, cert);
        goto fail;
    }
    if (check_validity(ctx, cert, err, errlen) < 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int tls_ctx_check_pair(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_ctx_server(cert, key, err, errlen);
    if (!ctx)
        return -1;
    SSL_CTX_free(ctx);
    return 0;
}

static int read_ocsp(struct tls_listener *l, const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    int64_t mtime = 0;
    char *data = config_read_file(path, &len, &mtime);
    if (!data) {
        snprintf(err, errlen, "OCSP staple \"%s\" cannot be read: %s", path, strerror(errno));
        return -1;
    }
    const unsigned char *p = (const unsigned char *)data;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (!r) {
        free(data);
        ERR_clear_error();
        snprintf(err, errlen, "OCSP staple \"%s\" is not a DER OCSP response", path);
        return -1;
    }
    OCSP_RESPONSE_free(r);
    l->ocsp = (unsigned char *)data;
    l->ocsp_len = len;
    return 0;
}

static void listener_dispose(struct tls_listener *l)
{
    SSL_CTX_free(l->def);
    for (size_t i = 0; i < l->n_ctxs; i++)
        SSL_CTX_free(l->ctxs[i]);
    free(l->ctxs);
    for (size_t i = 0; i < l->n_names; i++)
        free(l->names[i].name);
    free(l->names);
    free(l->ocsp);
    memset(l, 0, sizeof(*l));
}

static int listener_build(struct tls_listener *l, const struct config_listener *cl,
                          char *err, size_t errlen)
{
    const struct config_listen_tls *t = &cl->tls;
    l->def = tls_ctx_server(t->cert, t->key, err, errlen);
    if (!l->def)
        return -1;
    if (t->ocsp && read_ocsp(l, t->ocsp, err, errlen) < 0)
        return -1;
    l->ctxs = xcalloc(t->n_sni ? t->n_sni : 1, sizeof(SSL_CTX *));
    size_t n_names = 0;
    for (size_t i = 0; i < t->n_sni; i++)
        n_names += t->sni[i].n_names;
    l->names = xcalloc(n_names ? n_names : 1, sizeof(*l->names));
    for (size_t i = 0; i < t->n_sni; i++) {
        SSL_CTX *c = tls_ctx_server(t->sni[i].cert, t->sni[i].key, err, errlen);
        if (!c)
            return -1;
        l->ctxs[l->n_ctxs++] = c;
        for (size_t j = 0; j < t->sni[i].n_names; j++) {
            l->names[l->n_names].name = xstrdup(t->sni[i].names[j]);
            l->names[l->n_names++].ctx = c;
        }
    }
    SSL_CTX_set_tlsext_servername_callback(l->def, on_servername);
    SSL_CTX_set_tlsext_servername_arg(l->def, l);
    SSL_CTX_set_tlsext_status_cb(l->def, on_status);
    SSL_CTX_set_tlsext_status_arg(l->def, l);
    for (size_t i = 0; i < l->n_ctxs; i++) {
        SSL_CTX_set_tlsext_status_cb(l->ctxs[i], on_status);
        SSL_CTX_set_tlsext_status_arg(l->ctxs[i], l);
    }
    return 0;
}

static SSL_CTX *client_ctx(const struct config_version *v, char *err, size_t errlen)
{
    char why[256];
    const struct config_upstream_tls *t = &v->tls;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot make a TLS context: %s", ossl_reason(why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) ||
        !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
        snprintf(err, errlen, "TLS policy: %s", ossl_reason(why, sizeof(why)));
        goto fail;
    }
    static const unsigned char h1[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, h1, sizeof(h1) - 1);
    /* Client-side session cache: tls_upstream keeps the last session per
     * endpoint for resumption. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    if (t->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = t->ca ? SSL_CTX_load_verify_locations(ctx, t->ca, NULL)
                       : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            snprintf(err, errlen, "version \"%s\": tls.ca \"%s\": %s", v->name,
                     t->ca ? t->ca : "(system store)", ossl_reason(why, sizeof(why)));
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_set *tls_set_build(const struct config *cfg, struct config_pos *at, char *err,
                              size_t errlen)
{
    if (ex_index < 0)
        ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    struct tls_set *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->fingerprint = tls_set_fingerprint(cfg);
    s->ls = xcalloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*s->ls));
    s->n_ls = cfg->n_listeners;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        s->ls[i].index = (unsigned)i;
        *at = cfg->listeners[i].tls.pos;
        if (cfg->listeners[i].tls.enabled &&
            listener_build(&s->ls[i], &cfg->listeners[i], err, errlen) < 0)
            goto fail;
    }
    s->up = xcalloc(cfg->n_versions ? cfg->n_versions : 1, sizeof(SSL_CTX *));
    s->n_up = cfg->n_versions;
    for (size_t v = 0; v < cfg->n_versions; v++) {
        *at = cfg->versions[v].tls.pos;
        if (cfg->versions[v].tls.enabled &&
            !(s->up[v] = client_ctx(&cfg->versions[v], err, errlen)))
            goto fail;
    }
    return s;
fail:
    tls_set_unref(s);
    return NULL;
}

void tls_set_ref(struct tls_set *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void tls_set_unref(struct tls_set *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->n_ls; i++)
        listener_dispose(&s->ls[i]);
    free(s->ls);
    for (size_t v = 0; v < s->n_up; v++)
        SSL_CTX_free(s->up[v]);
    free(s->up);
    free(s->fingerprint);
    free(s);
}

static void add_file(char *buf, size_t len, const char *path)
{
    struct stat st;
    if (!path) {
        util_append(buf, len, "|", "-");
    } else if (stat(path, &st) < 0) {
        util_append(buf, len, "|", "%s!%d", path, errno);
    } else {
        util_append(buf, len, "|", "%s@%llu:%llu:%lld:%lld.%09ld", path,
                    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                    (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    }
}

char *tls_set_fingerprint(const struct config *cfg)
{
    size_t len = 32768;
    char *buf = xmalloc(len);
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listen_tls *t = &cfg->listeners[i].tls;
        util_append(buf, len, "|", "L%zu:%d", i, t->enabled);
        if (!t->enabled)
            continue;
        add_file(buf, len, t->cert);
        add_file(buf, len, t->key);
        add_file(buf, len, t->ocsp);
        for (size_t j = 0; j < t->n_sni; j++) {
            for (size_t k = 0; k < t->sni[j].n_names; k++)
                util_append(buf, len, "|", "n=%s", t->sni[j].names[k]);
            add_file(buf, len, t->sni[j].cert);
            add_file(buf, len, t->sni[j].key);
        }
    }
    for (size_t v = 0; v < cfg->n_versions; v++) {
        const struct config_upstream_tls *t = &cfg->versions[v].tls;
        util_append(buf, len, "|", "V%s:%d:%d:%s", cfg->versions[v].name, t->enabled,
                    t->verify, t->sni ? t->sni : "-");
        if (t->enabled)
            add_file(buf, len, t->ca);
    }
    return buf;
}
