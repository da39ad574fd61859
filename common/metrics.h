/* metrics: a small registry of Prometheus metrics for one single-threaded process, rendered
 * in the text exposition format 0.0.4 (metrics_http.h serves it on /metrics).
 *
 * A metric is one series: a name, a label set and a value. Series of one name form a
 * family, whose HELP and TYPE lines are printed once, with the first series; every series
 * of a family must have the same type. Labels are given preformatted, `""` or
 * `kind="message",result="ok"`; metrics_label() builds a pair from an arbitrary value with
 * the escaping the format needs.
 *
 * Metrics are registered at start whether or not they are served (it costs a few bytes and
 * keeps callers free of tests), and every metric_* call accepts NULL and does nothing: a
 * metric nobody registered (a unit test without main) or one refused because the registry
 * is full (METRICS_MAX_SERIES) is silently not counted. */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stddef.h>

#include "buf.h"

typedef struct metric metric_t;

/* Bounds of the registry: series beyond it are refused (NULL), never a crash. */
#define METRICS_MAX_SERIES 4096
#define METRICS_MAX_BUCKETS 32
#define METRICS_LABELS_MAX 512

/* Each returns the series `name{labels}`, registering it on first use (a second call with
 * the same name and labels returns the same series; `help` is kept from the first series of
 * the family). A bad name, labels that are not `k="v",...` or a type that differs from the
 * family's are programming errors (abort). NULL when the registry is full. */
metric_t *metrics_counter(const char *name, const char *labels, const char *help);
metric_t *metrics_gauge(const char *name, const char *labels, const char *help);
/* A family of counters, one per value of one label: out[i] = name{label="values[i]"}. */
void metrics_counters_by(metric_t **out, size_t n, const char *name, const char *label,
                         const char *const *values, const char *help);
/* A gauge whose value is fn(ud), asked for at every rendering. */
metric_t *metrics_gauge_fn(const char *name, const char *labels, const char *help,
                           double (*fn)(void *ud), void *ud);
/* A histogram with `n` upper bounds in increasing order (+Inf is implied). */
metric_t *metrics_histogram(const char *name, const char *labels, const char *help,
                            const double *bounds, size_t n);
/* The series registered as name{labels}, or NULL. */
metric_t *metrics_find(const char *name, const char *labels);

/* Counter or gauge: value += v (a counter ignores v < 0). */
void metric_add(metric_t *m, double v);
void metric_inc(metric_t *m);
/* Gauge: value = v. */
void metric_set(metric_t *m, double v);
/* Histogram: counts v in its bucket, adds it to the sum. */
void metric_observe(metric_t *m, double v);
/* The current value (counter, gauge; a histogram's count); 0 for NULL. */
double metric_value(const metric_t *m);

/* Appends every family in the text format 0.0.4, in registration order. */
void metrics_render(buf_t *out);
/* Writes `key="value"` into out with \, " and newline escaped; returns 0, or -1 when it
 * does not fit (out is then ""). */
int metrics_label(char *out, size_t outlen, const char *key, const char *value);
/* A monotonic clock in seconds, for durations. */
double metrics_now(void);
/* Forgets every metric (shutdown, tests); pointers handed out become invalid. */
void metrics_reset(void);

#endif
