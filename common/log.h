/* log: levelled logging to stderr, one line per event, with printf format checking.
 * The level is checked before any formatting is done. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

typedef enum { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR } log_level_t;

extern log_level_t log_min_level;

/* Sets the process name shown on each line. */
void log_init(const char *progname);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s, log_level_t *out);

void log_write(log_level_t lvl, int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs at error level and exits the process with status 1. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_min_level <= LOG_LVL_DEBUG)                                                        \
            log_write(LOG_LVL_DEBUG, 0, __VA_ARGS__);                                              \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_min_level <= LOG_LVL_INFO)                                                         \
            log_write(LOG_LVL_INFO, 0, __VA_ARGS__);                                               \
    } while (0)
#define log_warn(...) log_write(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_error(...) log_write(LOG_LVL_ERROR, 0, __VA_ARGS__)
/* The same with ": strerror(errno)" appended. */
#define log_warn_errno(...) log_write(LOG_LVL_WARN, 1, __VA_ARGS__)
#define log_error_errno(...) log_write(LOG_LVL_ERROR, 1, __VA_ARGS__)

#endif
