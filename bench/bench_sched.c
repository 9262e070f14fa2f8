/*
 * bench_sched.c — see bench_sched.h. Control replies are read with
 * json.c's parser (the one weirctl uses); only "ok", "error",
 * "generation", "split" and the keys of "versions" are looked at, so new
 * fields in weir's replies never break it.
 */
#include "bench_sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

uint64_t bench_sched_intended_ns(double rate_per_s, uint32_t conns,
                                 uint32_t conn, uint64_t k)
{
    /* Slot numbers stay below 2^53, so the double product is exact enough
     * (< 1 ns) for any run length weir-bench accepts. */
    uint64_t slot = (uint64_t)conn + k * (uint64_t)conns;
    return (uint64_t)llround((double)slot * 1e9 / rate_per_s);
}

int bench_sched_split_find(const struct bench_split *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return (int)i;
    return -1;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

int bench_sched_parse_ramp(const char *arg, char *target, size_t target_len,
                           uint32_t *steps_bp, size_t max_steps,
                           size_t *n_steps, const char **err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        *err = "expected VERSION=P1,P2,... (e.g. v2=10,25,50,100)";
        return -1;
    }
    size_t nlen = (size_t)(eq - arg);
    if (nlen >= target_len || nlen >= BENCH_SCHED_NAME_MAX) {
        *err = "version name too long";
        return -1;
    }
    for (size_t i = 0; i < nlen; i++) {
        if (!is_name_char(arg[i])) {
            *err = "version name may only hold letters, digits, '-', '_', '.'";
            return -1;
        }
    }
    memcpy(target, arg, nlen);
    target[nlen] = '\0';
    size_t n = 0;
    const char *p = eq + 1;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char num[16];
        if (len == 0 || len >= sizeof(num)) {
            *err = "each step must be a percent 0..100 (two decimals at most)";
            return -1;
        }
        memcpy(num, p, len);
        num[len] = '\0';
        uint32_t bp;
        if (util_parse_percent_bp(num, &bp) != 0) {
            *err = "each step must be a percent 0..100 (two decimals at most)";
            return -1;
        }
        if (n == max_steps) {
            *err = "too many steps";
            return -1;
        }
        steps_bp[n++] = bp;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n_steps = n;
    return 0;
}

int bench_sched_ramp_split(const struct bench_split *cur, const char *target,
                           uint32_t target_bp, struct bench_split *out,
                           const char **err)
{
    if (target_bp > 10000) {
        *err = "percent above 100";
        return -1;
    }
    if (strlen(target) >= BENCH_SCHED_NAME_MAX) {
        *err = "version name too long";
        return -1;
    }
    *out = *cur;
    int t = bench_sched_split_find(out, target);
    if (t < 0) {
        if (out->n == BENCH_SCHED_MAX_VERSIONS) {
            *err = "too many versions";
            return -1;
        }
        t = (int)out->n++;
        snprintf(out->name[t], BENCH_SCHED_NAME_MAX, "%s", target);
        out->bp[t] = 0;
    }
    uint32_t rest = 10000 - target_bp;
    size_t others = out->n - 1;
    uint64_t sum = 0;
    for (size_t i = 0; i < out->n; i++)
        if ((int)i != t)
            sum += out->bp[i];
    if (others == 0 && rest > 0) {
        *err = "no other version to give the rest of the split to";
        return -1;
    }
    /* Largest remainder: floor shares first, then hand the leftover basis
     * points one each to the largest remainders (earlier version on ties). */
    uint64_t rem[BENCH_SCHED_MAX_VERSIONS] = {0};
    uint32_t given = 0;
    for (size_t i = 0; i < out->n; i++) {
        if ((int)i == t)
            continue;
        uint64_t num = sum ? (uint64_t)rest * cur->bp[i] : rest;
        uint64_t den = sum ? sum : others;
        out->bp[i] = (uint32_t)(num / den);
        rem[i] = num % den; /* same denominator for all: comparable */
        given += out->bp[i];
    }
    uint32_t left = rest - given;
    while (left > 0) {
        int best = -1;
        for (size_t i = 0; i < out->n; i++) {
            if ((int)i == t || rem[i] == UINT64_MAX)
                continue;
            /* With sum > 0 a version at 0 keeps 0: only proportional shares
             * round up. */
            if (sum && cur->bp[i] == 0)
                continue;
            if (best < 0 || rem[i] > rem[best])
                best = (int)i;
        }
        CHECK(best >= 0);
        out->bp[best]++;
        rem[best] = UINT64_MAX; /* each version gets at most one */
        left--;
    }
    out->bp[t] = target_bp;
    return 0;
}

/* ---- control replies (json.c's parser) ---- */

/* Add name at bp to s unless present. -1 with *why when it cannot. */
static int split_add(struct bench_split *s, const struct json_value *key_owner,
                     size_t i, uint32_t bp, const char **why)
{
    const char *name = key_owner->keys[i];
    if (strlen(name) >= BENCH_SCHED_NAME_MAX) {
        *why = "a version name is too long";
        return -1;
    }
    if (bench_sched_split_find(s, name) >= 0)
        return 0;
    if (s->n == BENCH_SCHED_MAX_VERSIONS) {
        *why = "too many versions";
        return -1;
    }
    snprintf(s->name[s->n], BENCH_SCHED_NAME_MAX, "%s", name);
    s->bp[s->n++] = bp;
    return 0;
}

int bench_sched_parse_reply(const char *json, size_t len,
                            struct bench_split *split, uint64_t *generation,
                            char *errbuf, size_t errlen)
{
    const char *why = "malformed reply from the control socket";
    struct json_value *v = json_parse(json, len, NULL, 0);
    const struct json_value *ok = json_get(v, "ok");
    const struct json_value *err = json_get(v, "error");
    const struct json_value *gen = json_get(v, "generation");
    const struct json_value *sp = json_get(v, "split");
    const struct json_value *vs = json_get(v, "versions");
    uint64_t g = 0;
    struct bench_split out = {0};
    if (!ok || ok->type != JSON_T_BOOL || (err && err->type != JSON_T_STRING) ||
        (sp && sp->type != JSON_T_OBJECT) || (vs && vs->type != JSON_T_OBJECT))
        goto bad;
    if (gen) {
        char *end;
        if (gen->type != JSON_T_NUMBER)
            goto bad;
        g = strtoull(gen->str, &end, 10);
        if (*end || gen->str[0] == '-')
            goto bad;
    }
    for (size_t i = 0; sp && i < sp->n; i++) {
        uint32_t bp;
        if (sp->items[i]->type != JSON_T_NUMBER ||
            util_parse_percent_bp(sp->items[i]->str, &bp) != 0) {
            why = "a split value is not a percent with two decimals at most";
            goto bad;
        }
        if (split_add(&out, sp, i, bp, &why) != 0)
            goto bad;
    }
    if (!ok->b) {
        snprintf(errbuf, errlen, "%s",
                 err && err->str[0] ? err->str : "the control socket refused");
        json_free(v);
        return -1;
    }
    if (split) {
        if (!sp) {
            why = "the status reply has no \"split\"";
            goto bad;
        }
        /* Versions at 0 % that "split" leaves out; names past the limits
         * are not fatal here (they cannot be ramp targets). */
        const char *ignored;
        for (size_t i = 0; vs && i < vs->n; i++)
            (void)split_add(&out, vs, i, 0, &ignored);
        *split = out;
    }
    if (gen && generation)
        *generation = g;
    json_free(v);
    return 0;
bad:
    json_free(v);
    snprintf(errbuf, errlen, "%s", why);
    return -1;
}

size_t bench_sched_format_split_cmd(const struct bench_split *s, char *buf,
                                    size_t len)
{
    size_t n = 0;
    int w = snprintf(buf, len, "split");
    if (w < 0 || (size_t)w >= len)
        return 0;
    n = (size_t)w;
    for (size_t i = 0; i < s->n; i++) {
        if (s->bp[i] == 0)
            continue;
        char pct[16];
        util_format_bp(s->bp[i], pct, sizeof(pct));
        w = snprintf(buf + n, len - n, " %s=%s", s->name[i], pct);
        if (w < 0 || (size_t)w >= len - n)
            return 0;
        n += (size_t)w;
    }
    return n;
}

const char *bench_sched_format_split(const struct bench_split *s, char *buf,
                                     size_t len)
{
    size_t n = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < s->n && n < len; i++) {
        char pct[16];
        util_format_bp(s->bp[i], pct, sizeof(pct));
        int w = snprintf(buf + n, len - n, "%s%s=%s", i ? " " : "",
                         s->name[i], pct);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return buf;
}
