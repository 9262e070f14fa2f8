/*
 * tls_ctx.h — the OpenSSL contexts of one config: a `struct tls_set`
 * holds, per listener (config order), the server SSL_CTX of its default
 * certificate and those of its SNI certificates, and per version the
 * client SSL_CTX of its upstream TLS. Built on the main thread
 * (tls_set_build), refcounted, read-only afterwards: workers hand its
 * contexts to SSL_new(), and an SSL keeps its SSL_CTX alive on its own, so
 * a connection outlives the set it was accepted under.
 *
 * Policy (the same for every server context): TLS 1.2 and 1.3 only; the
 * Mozilla "intermediate" TLS 1.2 ciphers minus DHE (ECDHE only, no
 * dhparams to manage); groups X25519:P-256:P-384; no renegotiation, no
 * compression; session tickets whose keys are process-wide (every worker
 * decrypts every worker's tickets) and rotate (tls_ticket.c); an OCSP
 * staple read from a file when configured; ALPN http/1.1 (h2 too once an
 * HTTP/2 session layer calls tls_ctx_enable_h2).
 */
#ifndef WEIR_TLS_CTX_H
#define WEIR_TLS_CTX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

/* One certificate's names (lower case; "*.x" matches one label). */
struct tls_name {
    char *name;   /* owned */
    SSL_CTX *ctx; /* borrowed from the listener's ctxs */
};

struct tls_listener {
    SSL_CTX *def;   /* owned ref; NULL: a plain listener */
    SSL_CTX **ctxs; /* owned refs: the SNI certificates' */
    size_t n_ctxs;
    struct tls_name *names; /* owned array */
    size_t n_names;
    unsigned char *ocsp; /* owned DER, NULL: none */
    size_t ocsp_len;
    unsigned index; /* the listener's */
};

struct tls_set {
    atomic_uint refs;
    struct tls_listener *ls; /* owned array, one per config listener */
    size_t n_ls;
    SSL_CTX **up; /* owned refs, one per version; NULL: plain */
    size_t n_up;
    char *fingerprint; /* owned: what it was built from (config + file stats) */
};

/* The contexts of cfg's TLS listeners and versions; NULL with a reason in
 * err (a file, an OpenSSL reason) and the `tls` key's position in *at
 * when one cannot be built. Main thread. */
struct tls_set *tls_set_build(const struct config *cfg, struct config_pos *at, char *err,
                              size_t errlen);

/* What a set built from cfg now would be built from: the TLS settings and
 * the identity (device, inode, size, mtime) of every file they name. */
char *tls_set_fingerprint(const struct config *cfg);

void tls_set_ref(struct tls_set *s);
void tls_set_unref(struct tls_set *s); /* NULL is a no-op; any thread */

/* One server context with the policy above for a certificate/key pair
 * (no SNI table, no OCSP); NULL with the reason in err. */
SSL_CTX *tls_ctx_server(const char *cert, const char *key, char *err, size_t errlen);

/* Check one certificate/key pair as weir would load it: readable, the key
 * matches, valid now. Returns -1 with the reason in err. */
int tls_ctx_check_pair(const char *cert, const char *key, char *err, size_t errlen);

/* Offer "h2" in ALPN (before "http/1.1") from now on: the hook of an
 * HTTP/2 session layer. */
void tls_ctx_enable_h2(bool on);

/* The listener a server SSL was made for (SSL_set_ex_data). */
int tls_ctx_ex_index(void);

#endif
