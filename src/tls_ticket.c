/*
 * tls_ticket.c — see tls_ticket.h. AES-256-CBC + HMAC-SHA256, the
 * construction OpenSSL's own ticket keys use.
 */
#include "tls_ticket.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t born; /* 0: none yet */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct ticket_key cur, prev;

static int new_key(struct ticket_key *k)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -1;
    k->born = time(NULL);
    return 0;
}

/* The key to issue with (rotating when due); false if none can be made. */
static bool current_key(struct ticket_key *out)
{
    time_t now = time(NULL);
    if (!cur.born || now - cur.born >= TLS_TICKET_ROTATE_S) {
        struct ticket_key k;
        if (new_key(&k) < 0) {
            log_error("TLS session tickets: no random bytes for a new key");
            if (!cur.born)
                return false;
        } else {
            prev = cur;
            cur = k;
        }
    }
    *out = cur;
    return true;
}

static int set_keys(const struct ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *ectx,
                    EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_CTX_set_params(hctx, params))
        return -1;
    int ok = enc ? EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv)
                 : EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv);
    return ok ? 0 : -1;
}

int tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
                  EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    struct ticket_key k;
    int rc;
    pthread_mutex_lock(&mu);
    if (enc) {
        bool have = current_key(&k);
        pthread_mutex_unlock(&mu);
        if (!have || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
        memcpy(name, k.name, sizeof(k.name));
        return set_keys(&k, iv, ectx, hctx, 1) < 0 ? -1 : 1;
    }
    if (cur.born && memcmp(name, cur.name, sizeof(cur.name)) == 0) {
        k = cur;
        rc = 1;
    } else if (prev.born && memcmp(name, prev.name, sizeof(prev.name)) == 0) {
        k = prev;
        rc = 2; /* good, but issue a ticket under the current key */
    } else {
        rc = 0; /* unknown or expired key: a full handshake */
    }
    pthread_mutex_unlock(&mu);
    if (rc == 0)
        return 0;
    return set_keys(&k, iv, ectx, hctx, 0) < 0 ? -1 : rc;
}
