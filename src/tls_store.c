/*
 * tls_store.c — see tls_store.h.
 */
#include "tls_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#include <openssl/x509.h>

static struct {
    struct tls_set *cur; /* owned ref */
    char *failed_fp;     /* owned: fingerprint of the last failed build */
    char error[600];     /* its reason */
    struct event *poll;  /* owned */
    const struct config *(*current)(void);
    void (*republish)(const char *why);
    unsigned long reloads, failures;
} ts;

int tls_store_update(const struct config *cfg, struct config_pos *at, char *err,
                     size_t errlen)
{
    char *fp = tls_set_fingerprint(cfg);
    if (ts.cur && strcmp(fp, ts.cur->fingerprint) == 0) {
        free(fp);
        return 0;
    }
    *at = (struct config_pos){0, 0};
    struct tls_set *s = tls_set_build(cfg, at, err, errlen);
    if (!s) {
        ts.failures++;
        snprintf(ts.error, sizeof(ts.error), "%s", err);
        free(ts.failed_fp);
        ts.failed_fp = fp;
        return -1;
    }
    free(fp);
    if (ts.cur)
        ts.reloads++;
    tls_set_unref(ts.cur);
    ts.cur = s;
    ts.error[0] = '\0';
    return 0;
}

struct tls_set *tls_store_acquire(void)
{
    if (ts.cur)
        tls_set_ref(ts.cur);
    return ts.cur;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    const struct config *cfg = ts.current();
    if (!cfg)
        return;
    char *fp = tls_set_fingerprint(cfg);
    bool same = ts.cur && strcmp(fp, ts.cur->fingerprint) == 0;
    bool failed_before = ts.failed_fp && strcmp(fp, ts.failed_fp) == 0;
    free(fp);
    if (same || failed_before)
        return; /* nothing new (a failure is reported once per change) */
    char err[512];
    struct config_pos at;
    if (tls_store_update(cfg, &at, err, sizeof(err)) < 0) {
        log_error("TLS certificates changed on disk but cannot be used, keeping the "
                  "previous ones: %s",
                  err);
        return;
    }
    log_info("TLS certificates changed on disk: reloaded");
    ts.republish("TLS certificates changed");
}

void tls_store_start(struct event_base *base, const struct config *(*current)(void),
                     void (*republish)(const char *why))
{
    ts.current = current;
    ts.republish = republish;
    ts.poll = event_new(base, -1, EV_PERSIST, on_poll, NULL);
    CHECK(ts.poll);
    struct timeval tv = {TLS_STORE_POLL_MS / 1000, (TLS_STORE_POLL_MS % 1000) * 1000};
    event_add(ts.poll, &tv);
}

void tls_store_stop(void)
{
    if (ts.poll)
        event_free(ts.poll);
    ts.poll = NULL;
    tls_set_unref(ts.cur);
    ts.cur = NULL;
    free(ts.failed_fp);
    ts.failed_fp = NULL;
}

const char *tls_store_error(void)
{
    return ts.error;
}

unsigned long tls_store_reloads(void)
{
    return ts.reloads;
}

unsigned long tls_store_failures(void)
{
    return ts.failures;
}

static void cert_json(struct json_buf *b, bool *first, const char *listener, const char *name,
                      SSL_CTX *ctx)
{
    X509 *x = ctx ? SSL_CTX_get0_certificate(ctx) : NULL;
    struct tm tm;
    char when[40] = "";
    if (x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_buf_puts(b, *first ? "{\"listener\":" : ",{\"listener\":");
    *first = false;
    json_buf_str(b, listener);
    json_buf_puts(b, ",\"name\":");
    json_buf_str(b, name);
    json_buf_puts(b, ",\"not_after\":");
    json_buf_str(b, when);
    json_buf_puts(b, "}");
}

void tls_store_render_status(struct json_buf *b, const struct snapshot *s)
{
    const struct tls_set *t = s->tls;
    bool any = false;
    for (size_t i = 0; t && i < t->n_ls; i++)
        any |= t->ls[i].def != NULL;
    if (!any && !ts.error[0])
        return;
    json_buf_puts(b, ",\"tls\":{\"certificates\":[");
    bool first = true;
    for (size_t i = 0; t && i < t->n_ls && i < s->cfg->n_listeners; i++) {
        const struct tls_listener *l = &t->ls[i];
        if (!l->def)
            continue;
        const char *addr = s->cfg->listeners[i].address;
        cert_json(b, &first, addr, "default", l->def);
        for (size_t k = 0; k < l->n_names; k++)
            cert_json(b, &first, addr, l->names[k].name, l->names[k].ctx);
    }
    json_buf_puts(b, "],\"error\":");
    if (ts.error[0])
        json_buf_str(b, ts.error);
    else
        json_buf_puts(b, "null");
    json_buf_puts(b, "}");
}
