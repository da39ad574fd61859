/* Measurements: server CPU and RSS from /proc, this process's CPU, latency histograms. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lg.h"

static void proc_name(pid_t pid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)n, f)) out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
}

static int procs_add(lg_procs_t *p, pid_t pid)
{
    if (p->n >= (int)(sizeof p->pids / sizeof p->pids[0])) return -1;
    p->pids[p->n] = pid;
    proc_name(pid, p->names[p->n], sizeof p->names[p->n]);
    p->n++;
    return 0;
}

int procs_from_list(lg_procs_t *p, const char *list)
{
    const char *s = list;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || procs_add(p, (pid_t)v) < 0) return -1;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return 0;
}

int procs_from_names(lg_procs_t *p, const char *names)
{
    DIR *d = opendir("/proc");
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0])) continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        char comm[64];
        proc_name(pid, comm, sizeof comm);
        const char *s = names;
        size_t cl = strlen(comm);
        while (*s && cl) {
            size_t l = strcspn(s, ",");
            if (l == cl && strncmp(s, comm, l) == 0) {
                procs_add(p, pid);
                break;
            }
            s += l + (s[l] == ',');
        }
    }
    closedir(d);
    return 0;
}

/* utime + stime of /proc/PID/stat (fields 14 and 15, counting from 1), in clock ticks. The
 * command name may hold spaces and parentheses, so fields are counted after the last ')'. */
static long long proc_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

double procs_cpu_ms(const lg_procs_t *p)
{
    static long hz;
    if (!hz) hz = sysconf(_SC_CLK_TCK);
    long long t = 0;
    for (int i = 0; i < p->n; i++) {
        long long v = proc_ticks(p->pids[i]);
        if (v > 0) t += v;
    }
    return (double)t * 1000.0 / (double)hz;
}

double proc_cpu_ms(pid_t pid)
{
    static long hz;
    if (!hz) hz = sysconf(_SC_CLK_TCK);
    long long v = proc_ticks(pid);
    return v > 0 ? (double)v * 1000.0 / (double)hz : 0;
}

long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

long procs_rss_kib(const lg_procs_t *p)
{
    long t = 0;
    for (int i = 0; i < p->n; i++) {
        long v = proc_rss_kib(p->pids[i]);
        if (v > 0) t += v;
    }
    return t;
}

double self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

#define H_FINE 10000  /* 10 us buckets: 0 .. 100 ms */
#define H_COARSE 9900 /* 1 ms buckets: 100 ms .. 10 s */

void hist_init(lg_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->b = calloc(H_FINE + H_COARSE, sizeof *h->b);
    if (!h->b) abort();
}

void hist_free(lg_hist_t *h)
{
    free(h->b);
    h->b = NULL;
}

void hist_add(lg_hist_t *h, uint64_t us)
{
    h->n++;
    if (us > h->max_us) h->max_us = us;
    if (us < 100000)
        h->b[us / 10]++;
    else if (us < 10000000)
        h->b[H_FINE + (us - 100000) / 1000]++;
    else
        h->over++;
}

double hist_ms(const lg_hist_t *h, double q)
{
    if (!h->n) return 0;
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    if (want >= h->n) want = h->n - 1;
    for (size_t i = 0; i < H_FINE + H_COARSE; i++) {
        seen += h->b[i];
        if (seen > want) {
            /* the upper edge of the bucket: never reports better than measured */
            return i < H_FINE ? (double)(i + 1) * 0.01 : 100.0 + (double)(i - H_FINE + 1);
        }
    }
    return (double)h->max_us / 1000.0;
}
