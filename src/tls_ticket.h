/*
 * tls_ticket.h — session ticket keys shared by every worker: one current
 * key (new tickets) and the previous one (still accepted, and the ticket
 * renewed), rotated every TLS_TICKET_ROTATE_S seconds when a ticket is
 * issued after that. Keys are random, in memory only (a restart ends every
 * ticket). A mutex guards them: one lock per ticket issued or presented,
 * next to a handshake's public-key work.
 */
#ifndef WEIR_TLS_TICKET_H
#define WEIR_TLS_TICKET_H

#include <openssl/ssl.h>

#define TLS_TICKET_ROTATE_S (12 * 3600)

/* For SSL_CTX_set_tlsext_ticket_key_evp_cb. */
int tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
                  EVP_MAC_CTX *hctx, int enc);

#endif
