/*
 * bench_sched.c — see bench_sched.h. The JSON reader here is deliberately
 * small: it walks one reply line, picks out "ok", "error", "generation",
 * "split" and the keys of "versions", and skips every other value whatever
 * its type (nesting bounded), so new fields in weir's replies never break it.
 */
#include "bench_sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- the small JSON reader ---- */

struct jp {
    const char *p;   /* borrowed: next byte */
    const char *end; /* borrowed: one past the last byte */
};

static void jp_ws(struct jp *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static bool jp_eat(struct jp *j, char c)
{
    jp_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

/* Read a string into out (NUL-terminated, truncated to outlen - 1; *trunc
 * set if it was). \u escapes become UTF-8. Returns 0 or -1. */
static int jp_string(struct jp *j, char *out, size_t outlen, bool *trunc)
{
    size_t n = 0;
    if (trunc)
        *trunc = false;
    if (!jp_eat(j, '"'))
        return -1;
    while (j->p < j->end && *j->p != '"') {
        char buf[4];
        size_t blen = 1;
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20)
            return -1;
        buf[0] = (char)c;
        if (c == '\\') {
            if (j->p >= j->end)
                return -1;
            char e = *j->p++;
            switch (e) {
            case '"': case '\\': case '/': buf[0] = e; break;
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            case 'u': {
                if (j->end - j->p < 4)
                    return -1;
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *j->p++;
                    cp <<= 4;
                    if (h >= '0' && h <= '9')
                        cp |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f')
                        cp |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F')
                        cp |= (unsigned)(h - 'A' + 10);
                    else
                        return -1;
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = '?'; /* surrogates: not worth pairing here */
                if (cp < 0x80) {
                    buf[0] = (char)cp;
                } else if (cp < 0x800) {
                    buf[0] = (char)(0xC0 | (cp >> 6));
                    buf[1] = (char)(0x80 | (cp & 0x3F));
                    blen = 2;
                } else {
                    buf[0] = (char)(0xE0 | (cp >> 12));
                    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    buf[2] = (char)(0x80 | (cp & 0x3F));
                    blen = 3;
                }
                break;
            }
            default:
                return -1;
            }
        }
        if (out && n + blen < outlen) {
            memcpy(out + n, buf, blen);
            n += blen;
        } else if (trunc) {
            *trunc = true;
        }
    }
    if (j->p >= j->end)
        return -1;
    j->p++;
    if (out && outlen)
        out[n] = '\0';
    return 0;
}

/* The raw text of a number token into out. Returns 0 or -1. */
static int jp_number(struct jp *j, char *out, size_t outlen)
{
    jp_ws(j);
    const char *s = j->p;
    while (j->p < j->end && (strchr("+-.eE", *j->p) ||
                             (*j->p >= '0' && *j->p <= '9')))
        j->p++;
    size_t len = (size_t)(j->p - s);
    if (len == 0 || len >= outlen)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static bool jp_literal(struct jp *j, const char *lit)
{
    jp_ws(j);
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, lit, n) == 0) {
        j->p += n;
        return true;
    }
    return false;
}

static int jp_skip(struct jp *j, int depth)
{
    if (depth > 32)
        return -1;
    jp_ws(j);
    if (j->p >= j->end)
        return -1;
    char c = *j->p;
    if (c == '"')
        return jp_string(j, NULL, 0, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (jp_eat(j, close))
            return 0;
        do {
            if (c == '{') {
                if (jp_string(j, NULL, 0, NULL) != 0 || !jp_eat(j, ':'))
                    return -1;
            }
            if (jp_skip(j, depth + 1) != 0)
                return -1;
        } while (jp_eat(j, ','));
        return jp_eat(j, close) ? 0 : -1;
    }
    if (jp_literal(j, "true") || jp_literal(j, "false") ||
        jp_literal(j, "null"))
        return 0;
    char num[64];
    return jp_number(j, num, sizeof(num));
}

/* Parse the members of the "split" object into s. */
static int jp_split(struct jp *j, struct bench_split *s, const char **why)
{
    if (!jp_eat(j, '{'))
        return -1;
    if (jp_eat(j, '}'))
        return 0;
    do {
        char name[BENCH_SCHED_NAME_MAX], num[32];
        bool trunc;
        uint32_t bp;
        if (jp_string(j, name, sizeof(name), &trunc) != 0 || !jp_eat(j, ':'))
            return -1;
        if (jp_number(j, num, sizeof(num)) != 0 ||
            util_parse_percent_bp(num, &bp) != 0) {
            *why = "a split value is not a percent with two decimals at most";
            return -1;
        }
        if (trunc) {
            *why = "a version name is too long";
            return -1;
        }
        if (bench_sched_split_find(s, name) < 0) {
            if (s->n == BENCH_SCHED_MAX_VERSIONS) {
                *why = "too many versions";
                return -1;
            }
            snprintf(s->name[s->n], BENCH_SCHED_NAME_MAX, "%s", name);
            s->bp[s->n++] = bp;
        }
    } while (jp_eat(j, ','));
    return jp_eat(j, '}') ? 0 : -1;
}

/* Collect the keys of the "versions" object (values skipped). */
static int jp_version_names(struct jp *j, struct bench_split *extra)
{
    if (!jp_eat(j, '{'))
        return -1;
    if (jp_eat(j, '}'))
        return 0;
    do {
        char name[BENCH_SCHED_NAME_MAX];
        bool trunc;
        if (jp_string(j, name, sizeof(name), &trunc) != 0 || !jp_eat(j, ':') ||
            jp_skip(j, 1) != 0)
            return -1;
        if (!trunc && extra->n < BENCH_SCHED_MAX_VERSIONS &&
            bench_sched_split_find(extra, name) < 0) {
            snprintf(extra->name[extra->n], BENCH_SCHED_NAME_MAX, "%s", name);
            extra->bp[extra->n++] = 0;
        }
    } while (jp_eat(j, ','));
    return jp_eat(j, '}') ? 0 : -1;
}

int bench_sched_parse_reply(const char *json, size_t len,
                            struct bench_split *split, uint64_t *generation,
                            char *errbuf, size_t errlen)
{
    struct jp j = {json, json + len};
    struct bench_split sp = {0}, names = {0};
    int ok = -1; /* -1 missing, 0 false, 1 true */
    bool have_split = false;
    const char *why = "malformed reply from the control socket";
    char errtext[512] = "";
    uint64_t gen = 0;
    bool have_gen = false;

    if (!jp_eat(&j, '{'))
        goto bad;
    if (!jp_eat(&j, '}')) {
        do {
            char key[64];
            bool trunc;
            if (jp_string(&j, key, sizeof(key), &trunc) != 0 ||
                !jp_eat(&j, ':'))
                goto bad;
            if (strcmp(key, "ok") == 0) {
                if (jp_literal(&j, "true"))
                    ok = 1;
                else if (jp_literal(&j, "false"))
                    ok = 0;
                else
                    goto bad;
            } else if (strcmp(key, "error") == 0) {
                if (jp_string(&j, errtext, sizeof(errtext), &trunc) != 0)
                    goto bad;
            } else if (strcmp(key, "generation") == 0) {
                char num[32];
                char *end;
                if (jp_number(&j, num, sizeof(num)) != 0)
                    goto bad;
                gen = strtoull(num, &end, 10);
                if (*end)
                    goto bad;
                have_gen = true;
            } else if (strcmp(key, "split") == 0) {
                if (jp_split(&j, &sp, &why) != 0)
                    goto bad;
                have_split = true;
            } else if (strcmp(key, "versions") == 0) {
                if (jp_version_names(&j, &names) != 0)
                    goto bad;
            } else if (jp_skip(&j, 1) != 0) {
                goto bad;
            }
        } while (jp_eat(&j, ','));
        if (!jp_eat(&j, '}'))
            goto bad;
    }
    jp_ws(&j);
    if (j.p != j.end)
        goto bad;
    if (ok == 0) {
        snprintf(errbuf, errlen, "%s",
                 errtext[0] ? errtext : "the control socket refused");
        return -1;
    }
    if (ok != 1)
        goto bad;
    if (split) {
        if (!have_split) {
            why = "the status reply has no \"split\"";
            goto bad;
        }
        for (size_t i = 0; i < names.n; i++) {
            if (bench_sched_split_find(&sp, names.name[i]) < 0 &&
                sp.n < BENCH_SCHED_MAX_VERSIONS) {
                snprintf(sp.name[sp.n], BENCH_SCHED_NAME_MAX, "%s",
                         names.name[i]);
                sp.bp[sp.n++] = 0;
            }
        }
        *split = sp;
    }
    if (have_gen && generation)
        *generation = gen;
    return 0;
bad:
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
