#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

log_level_t log_min_level = LOG_LVL_INFO;
static const char *log_prog = "xmpp";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *progname)
{
    log_prog = progname;
}

int log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

static void log_vwrite(log_level_t lvl, int with_errno, const char *fmt, va_list ap)
{
    int saved = errno;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_prog, level_names[lvl]);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m > 0)
        n += m;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    if (with_errno)
        snprintf(line + n, sizeof line - (size_t)n, ": %s", strerror(saved));
    /* Messages quote what clients and peers sent (JIDs, link fields): control bytes are
     * written as \xNN so that nobody can forge log lines with a newline. */
    char out[sizeof line * 4];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *p);
        else
            out[o++] = (char)*p;
    }
    out[o] = '\0';
    fprintf(stderr, "%s\n", out);
    errno = saved;
}

void log_write(log_level_t lvl, int with_errno, const char *fmt, ...)
{
    if (lvl < log_min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, with_errno, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(LOG_LVL_ERROR, 0, fmt, ap);
    va_end(ap);
    exit(1);
}
