#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

typedef enum { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM } mtype_t;

typedef struct family family_t;

struct metric {
    family_t *family;
    metric_t *next; /* the next series of the family */
    char *labels;
    double value; /* counter, gauge; a histogram's sum */
    double (*fn)(void *ud);
    void *ud;
    /* histogram: counts per bucket (not cumulative), the last one for +Inf */
    size_t nbounds;
    double bounds[METRICS_MAX_BUCKETS];
    unsigned long long buckets[METRICS_MAX_BUCKETS + 1];
    unsigned long long count;
};

struct family {
    char *name;
    char *help;
    mtype_t type;
    metric_t *first, *last;
};

/* Families in registration order; a few dozen, so lookups are linear. */
static family_t **families;
static size_t nfamilies, families_cap;
static size_t nseries;

static int name_ok(const char *s, int colon)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return 0;
    }
    return 1;
}

/* Preformatted labels: "" or k="v" pairs separated by commas, values escaped. */
static int labels_ok(const char *s)
{
    if (strlen(s) >= METRICS_LABELS_MAX)
        return 0;
    while (*s) {
        const char *k = s;
        while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
               (s > k && *s >= '0' && *s <= '9'))
            s++;
        if (s == k || s[0] != '=' || s[1] != '"')
            return 0;
        for (s += 2; *s != '"'; s++) {
            if (!*s || *s == '\n')
                return 0;
            if (*s == '\\') {
                if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                    return 0;
                s++;
            }
        }
        s++;
        if (*s == ',' && s[1])
            s++;
        else if (*s)
            return 0;
    }
    return 1;
}

static family_t *family_find(const char *name)
{
    for (size_t i = 0; i < nfamilies; i++)
        if (strcmp(families[i]->name, name) == 0)
            return families[i];
    return NULL;
}

metric_t *metrics_find(const char *name, const char *labels)
{
    family_t *f = family_find(name);
    if (!f)
        return NULL;
    for (metric_t *m = f->first; m; m = m->next)
        if (strcmp(m->labels, labels) == 0)
            return m;
    return NULL;
}

static metric_t *series(const char *name, const char *labels, const char *help, mtype_t type)
{
    if (!name_ok(name, 1) || !labels_ok(labels))
        log_fatal("metrics: bad metric name or labels: %s{%s}", name, labels);
    family_t *f = family_find(name);
    if (f && f->type != type)
        log_fatal("metrics: %s registered with two types", name);
    metric_t *m = metrics_find(name, labels);
    if (m)
        return m;
    if (nseries >= METRICS_MAX_SERIES) {
        log_warn("metrics: more than %d series, %s{%s} not kept", METRICS_MAX_SERIES, name,
                 labels);
        return NULL;
    }
    if (!f) {
        if (nfamilies == families_cap) {
            families_cap = families_cap ? 2 * families_cap : 32;
            families = xrealloc(families, families_cap * sizeof *families);
        }
        f = xcalloc(1, sizeof *f);
        f->name = xstrdup(name);
        f->help = xstrdup(help ? help : "");
        f->type = type;
        families[nfamilies++] = f;
    }
    m = xcalloc(1, sizeof *m);
    m->family = f;
    m->labels = xstrdup(labels);
    if (f->last)
        f->last->next = m;
    else
        f->first = m;
    f->last = m;
    nseries++;
    return m;
}

metric_t *metrics_counter(const char *name, const char *labels, const char *help)
{
    return series(name, labels, help, MT_COUNTER);
}

void metrics_counters_by(metric_t **out, size_t n, const char *name, const char *label,
                         const char *const *values, const char *help)
{
    for (size_t i = 0; i < n; i++) {
        char labels[METRICS_LABELS_MAX];
        metrics_label(labels, sizeof labels, label, values[i]);
        out[i] = metrics_counter(name, labels, help);
    }
}

metric_t *metrics_gauge(const char *name, const char *labels, const char *help)
{
    return series(name, labels, help, MT_GAUGE);
}

metric_t *metrics_gauge_fn(const char *name, const char *labels, const char *help,
                           double (*fn)(void *ud), void *ud)
{
    metric_t *m = series(name, labels, help, MT_GAUGE);
    if (m) {
        m->fn = fn;
        m->ud = ud;
    }
    return m;
}

metric_t *metrics_histogram(const char *name, const char *labels, const char *help,
                            const double *bounds, size_t n)
{
    if (n > METRICS_MAX_BUCKETS)
        log_fatal("metrics: %s has more than %d buckets", name, METRICS_MAX_BUCKETS);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            log_fatal("metrics: %s: bucket bounds must be finite and increasing", name);
    if (strstr(labels, "le=\"") == labels || strstr(labels, ",le=\""))
        log_fatal("metrics: %s: the label le is the histogram's own", name);
    metric_t *m = series(name, labels, help, MT_HISTOGRAM);
    if (m && m->nbounds == 0) {
        m->nbounds = n;
        memcpy(m->bounds, bounds, n * sizeof *bounds);
    }
    return m;
}

void metric_add(metric_t *m, double v)
{
    if (!m || m->fn || m->family->type == MT_HISTOGRAM)
        return;
    if (m->family->type == MT_COUNTER && !(v >= 0))
        return;
    m->value += v;
}

void metric_inc(metric_t *m)
{
    metric_add(m, 1);
}

void metric_set(metric_t *m, double v)
{
    if (m && !m->fn && m->family->type == MT_GAUGE)
        m->value = v;
}

void metric_observe(metric_t *m, double v)
{
    if (!m || m->family->type != MT_HISTOGRAM || isnan(v))
        return;
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    m->buckets[i]++;
    m->count++;
    m->value += v;
}

double metric_value(const metric_t *m)
{
    if (!m)
        return 0;
    if (m->fn)
        return m->fn(m->ud);
    if (m->family->type == MT_HISTOGRAM)
        return (double)m->count;
    return m->value;
}

/* The shortest of %.15g and %.17g that reads back as the same number. */
static void put_double(buf_t *out, double v)
{
    if (isnan(v)) {
        buf_append_str(out, "NaN");
        return;
    }
    if (isinf(v)) {
        buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    buf_append_str(out, tmp);
}

/* HELP text: backslash and newline escaped. */
static void put_help(buf_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append_str(out, "\\\\");
        else if (*s == '\n')
            buf_append_str(out, "\\n");
        else
            buf_append(out, s, 1);
    }
}

/* name{labels[,extra]} with the braces left out when there is no label at all. */
static void put_series(buf_t *out, const char *name, const char *suffix, const char *labels,
                       const char *extra)
{
    buf_append_str(out, name);
    buf_append_str(out, suffix);
    if (*labels || extra) {
        buf_append_str(out, "{");
        buf_append_str(out, labels);
        if (extra) {
            if (*labels)
                buf_append_str(out, ",");
            buf_append_str(out, extra);
        }
        buf_append_str(out, "}");
    }
    buf_append_str(out, " ");
}

static void render_histogram(buf_t *out, const family_t *f, const metric_t *m)
{
    unsigned long long cum = 0;
    for (size_t i = 0; i <= m->nbounds; i++) {
        cum += m->buckets[i];
        buf_t le = BUF_INIT;
        buf_append_str(&le, "le=\"");
        if (i < m->nbounds)
            put_double(&le, m->bounds[i]);
        else
            buf_append_str(&le, "+Inf");
        buf_append_str(&le, "\"");
        put_series(out, f->name, "_bucket", m->labels, le.data);
        buf_printf(out, "%llu\n", cum);
        buf_free(&le);
    }
    put_series(out, f->name, "_sum", m->labels, NULL);
    put_double(out, m->value);
    buf_append_str(out, "\n");
    put_series(out, f->name, "_count", m->labels, NULL);
    buf_printf(out, "%llu\n", m->count);
}

void metrics_render(buf_t *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    for (size_t i = 0; i < nfamilies; i++) {
        const family_t *f = families[i];
        buf_printf(out, "# HELP %s ", f->name);
        put_help(out, f->help);
        buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (const metric_t *m = f->first; m; m = m->next) {
            if (f->type == MT_HISTOGRAM) {
                render_histogram(out, f, m);
                continue;
            }
            put_series(out, f->name, "", m->labels, NULL);
            put_double(out, metric_value(m));
            buf_append_str(out, "\n");
        }
    }
}

int metrics_label(char *out, size_t outlen, const char *key, const char *value)
{
    size_t n = 0;
    int klen = (int)strlen(key);
    int w = snprintf(out, outlen, "%s=\"", key);
    if (w < 0 || (size_t)w >= outlen || !name_ok(key, 0))
        goto toolong;
    n = (size_t)klen + 2;
    for (const char *s = value; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        size_t rl = rep ? 2 : 1;
        if (n + rl + 2 > outlen)
            goto toolong;
        if (rep)
            memcpy(out + n, rep, 2);
        else
            out[n] = *s;
        n += rl;
    }
    if (n + 2 > outlen)
        goto toolong;
    out[n++] = '"';
    out[n] = '\0';
    return 0;
toolong:
    if (outlen)
        out[0] = '\0';
    return -1;
}

double metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void metrics_reset(void)
{
    for (size_t i = 0; i < nfamilies; i++) {
        family_t *f = families[i];
        for (metric_t *m = f->first, *next; m; m = next) {
            next = m->next;
            free(m->labels);
            free(m);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    free(families);
    families = NULL;
    nfamilies = families_cap = nseries = 0;
}
