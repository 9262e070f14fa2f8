/*
 * fuzz_tls_hello.c — the server side of conn_tls (conn_tls.h) on arbitrary
 * bytes where a ClientHello belongs: the sniffing of the first byte (plain
 * HTTP, other bytes), OpenSSL's handshake under weir's policy (tls_ctx.c)
 * and the plaintext path after it, fed in chunks whose sizes come from the
 * input's hash (so a crash reproduces from the file alone).
 *
 * Invariants:
 *  - conn_tls_input returns one of its four results, and once it said
 *    CONN_TLS_IN_FAIL it keeps saying so (a failed connection stays dead);
 *  - what weir queues toward the peer stays bounded (an answer or alerts,
 *    never more than a handshake flight: 64 KiB);
 *  - no plaintext before the handshake is done;
 *  - everything is freed (ASan/LSan in the replay build).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conn_tls.h"
#include "fuzz.h"
#include "loop.h"
#include "tls_ctx.h"

static SSL_CTX *ctx;
static struct loop lp;

static void on_timeout(void *arg)
{
    (void)arg;
}

/* A throwaway P-256 certificate in temporary files, loaded the way weir
 * loads one. */
static void init(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FUZZ_CHECK(k && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365 * 10);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, n);
    FUZZ_CHECK(X509_sign(x, k, EVP_sha256()) > 0);
    char crt[] = "/tmp/weir-fuzz-crt-XXXXXX", key[] = "/tmp/weir-fuzz-key-XXXXXX";
    int cf = mkstemp(crt), kf = mkstemp(key);
    FUZZ_CHECK(cf >= 0 && kf >= 0);
    FILE *f = fdopen(cf, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fdopen(kf, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    char err[256];
    ctx = tls_ctx_server(crt, key, err, sizeof(err));
    if (!ctx)
        fprintf(stderr, "fuzz_tls_hello: %s\n", err);
    FUZZ_CHECK(ctx);
    unlink(crt);
    unlink(key);
    X509_free(x);
    EVP_PKEY_free(k);
    FUZZ_CHECK(loop_init(&lp, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        init();
    struct conn_tls *t = conn_tls_new_server(&lp, ctx, 0, 10000, on_timeout, NULL);
    FUZZ_CHECK(t && conn_tls_wake(t) == 0);
    struct evbuffer *in = evbuffer_new();
    uint64_t rng = fuzz_hash(data, size);
    bool failed = false;
    size_t off = 0;
    while (off < size) {
        size_t n = 1 + (size_t)(fuzz_rand(&rng) % 600);
        if (n > size - off)
            n = size - off;
        evbuffer_add(t->wire_in, data + off, n);
        off += n;
        int r = conn_tls_input(t, in);
        FUZZ_CHECK(r == CONN_TLS_IN_NONE || r == CONN_TLS_IN_DATA || r == CONN_TLS_IN_EOF ||
                   r == CONN_TLS_IN_FAIL);
        FUZZ_CHECK(!failed || r == CONN_TLS_IN_FAIL);
        if (!t->done)
            FUZZ_CHECK(evbuffer_get_length(in) == 0);
        failed = r == CONN_TLS_IN_FAIL;
        FUZZ_CHECK(evbuffer_get_length(t->wire_out) <= 64 * 1024);
        /* what weir sent is gone (the conn layer writes it out) */
        evbuffer_drain(t->wire_out, evbuffer_get_length(t->wire_out));
        if (failed)
            break;
    }
    evbuffer_free(in);
    conn_tls_free(t);
    return 0;
}
