#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

typedef enum { CFG_STR, CFG_INT, CFG_BOOL } cfg_type_t;

typedef struct {
    const char *key;
    cfg_type_t type;
    const char *def;
    long min, max; /* CFG_INT only */
} cfg_key_t;

/* Every key of every process; README.md documents each one. */
static const cfg_key_t cfg_keys[] = {
    {"domain", CFG_STR, "localhost", 0, 0},
    {"log_level", CFG_STR, "info", 0, 0},
    {"c2s_listen", CFG_STR, "0.0.0.0:5222", 0, 0},
    {"tls_cert", CFG_STR, "", 0, 0},
    {"tls_key", CFG_STR, "", 0, 0},
    {"require_tls", CFG_BOOL, "true", 0, 0},
    {"frontend_name", CFG_STR, "", 0, 0},
    {"router_endpoint", CFG_STR, "tcp://127.0.0.1:5555", 0, 0},
    {"router_bind", CFG_STR, "tcp://127.0.0.1:5555", 0, 0},
    {"redis_host", CFG_STR, "127.0.0.1", 0, 0},
    {"redis_port", CFG_INT, "6379", 1, 65535},
    {"redis_prefix", CFG_STR, "xmpp:", 0, 0},
    {"max_stanza_size", CFG_INT, "262144", 1024, 16777216},
    {"max_depth", CFG_INT, "64", 4, 1024},
    {"max_connections", CFG_INT, "10000", 1, 10000000},
    {"auth_timeout", CFG_INT, "30", 1, 3600},
    {"heartbeat_interval", CFG_INT, "1000", 100, 60000},
    {"scram_iterations", CFG_INT, "4096", 4096, 1000000},
    {"max_roster_items", CFG_INT, "1000", 1, 100000},
    {"max_offline_messages", CFG_INT, "100", 0, 100000},
    {"hide_version", CFG_BOOL, "false", 0, 0},
    /* scale-out and deployment (README.md, "Deployment") */
    {"frontend_timeout", CFG_INT, "5000", 200, 600000},
    {"router_timeout", CFG_INT, "3000", 200, 600000},
    {"router_buffer", CFG_INT, "10000", 0, 1000000},
    {"link_hwm", CFG_INT, "100000", 10, 10000000},
    {"request_timeout", CFG_INT, "10000", 100, 600000},
    {"proxy_protocol", CFG_BOOL, "false", 0, 0},
    {"c2s_tls_listen", CFG_STR, "", 0, 0},
    /* internal link and Redis security (README.md, "Security") */
    {"link_curve", CFG_BOOL, "false", 0, 0},
    {"router_curve_secret", CFG_STR, "", 0, 0},
    {"router_curve_secret_file", CFG_STR, "", 0, 0},
    {"router_curve_public", CFG_STR, "", 0, 0},
    {"router_curve_allow", CFG_STR, "", 0, 0},
    {"router_curve_allow_file", CFG_STR, "", 0, 0},
    {"frontend_curve_secret", CFG_STR, "", 0, 0},
    {"frontend_curve_secret_file", CFG_STR, "", 0, 0},
    {"frontend_curve_public", CFG_STR, "", 0, 0},
    {"redis_user", CFG_STR, "", 0, 0},
    {"redis_password", CFG_STR, "", 0, 0},
    {"redis_password_file", CFG_STR, "", 0, 0},
    {"redis_tls", CFG_BOOL, "false", 0, 0},
    {"redis_tls_ca", CFG_STR, "", 0, 0},
    {"redis_tls_cert", CFG_STR, "", 0, 0},
    {"redis_tls_key", CFG_STR, "", 0, 0},
    {"redis_tls_server_name", CFG_STR, "", 0, 0},
    /* TLS policy and privileges (README.md, "Security") */
    {"user", CFG_STR, "", 0, 0},
    {"group", CFG_STR, "", 0, 0},
    /* limits against abuse (README.md, "Limits"); 0 turns off those that say so there */
    {"max_connections_per_ip", CFG_INT, "100", 0, 10000000},
    {"connection_rate_per_ip", CFG_INT, "20", 0, 1000000},
    {"connection_burst_per_ip", CFG_INT, "100", 1, 1000000},
    {"stream_open_timeout", CFG_INT, "10", 1, 3600},
    {"auth_failures_per_ip", CFG_INT, "20", 0, 1000000},
    {"auth_failures_per_account", CFG_INT, "10", 0, 1000000},
    {"auth_backoff", CFG_INT, "30", 1, 86400},
    {"max_bytes_per_second", CFG_INT, "262144", 0, 1073741824},
    {"max_stanza_size_preauth", CFG_INT, "16384", 1024, 16777216},
    {"max_depth_preauth", CFG_INT, "16", 4, 1024},
    {"max_output_buffer", CFG_INT, "1048576", 65536, 1073741824},
    {"max_resources", CFG_INT, "10", 1, 100000},
};

#define CFG_NKEYS (sizeof cfg_keys / sizeof cfg_keys[0])

static char *cfg_values[CFG_NKEYS];

static int key_index(const char *key)
{
    for (size_t i = 0; i < CFG_NKEYS; i++)
        if (strcmp(cfg_keys[i].key, key) == 0)
            return (int)i;
    return -1;
}

static int parse_bool(const char *v, int *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_long(const char *v, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

int config_set(const char *key, const char *value, const char *source, char *err, size_t errlen)
{
    int i = key_index(key);
    if (i < 0) {
        snprintf(err, errlen, "%s: unknown key '%s'", source, key);
        return -1;
    }
    const cfg_key_t *k = &cfg_keys[i];
    if (k->type == CFG_INT) {
        long n;
        if (parse_long(value, &n) < 0) {
            snprintf(err, errlen, "%s: key '%s': '%s' is not a whole number", source, key, value);
            return -1;
        }
        if (n < k->min || n > k->max) {
            snprintf(err, errlen, "%s: key '%s': %ld is outside %ld..%ld", source, key, n, k->min,
                     k->max);
            return -1;
        }
    } else if (k->type == CFG_BOOL) {
        int b;
        if (parse_bool(value, &b) < 0) {
            snprintf(err, errlen, "%s: key '%s': '%s' is not true or false", source, key, value);
            return -1;
        }
    } else if (strcmp(key, "log_level") == 0) {
        log_level_t lvl;
        if (log_level_parse(value, &lvl) < 0) {
            snprintf(err, errlen, "%s: key '%s': '%s' is not debug, info, warn or error", source,
                     key, value);
            return -1;
        }
    }
    free(cfg_values[i]);
    cfg_values[i] = xstrdup(value);
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int load_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char line[4096], src[1100];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(src, sizeof src, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s: line too long", src);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'key = value'", src);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        /* Optional quotes let a value keep leading or trailing spaces or a '#'. */
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        rc = config_set(key, value, src, err, errlen);
    }
    fclose(f);
    return rc;
}

int config_load(const char *path, char *err, size_t errlen)
{
    config_free();
    for (size_t i = 0; i < CFG_NKEYS; i++)
        cfg_values[i] = xstrdup(cfg_keys[i].def);
    if (path && load_file(path, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        char var[128] = "XMPP_";
        size_t n = strlen(var);
        for (const char *p = cfg_keys[i].key; *p && n + 1 < sizeof var; p++)
            var[n++] = (char)toupper((unsigned char)*p);
        var[n] = '\0';
        const char *v = getenv(var);
        if (v && config_set(cfg_keys[i].key, v, var, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static const char *value_of(const char *key, cfg_type_t type)
{
    int i = key_index(key);
    if (i < 0 || cfg_keys[i].type != type)
        log_fatal("config: no %s key '%s' (programming error)",
                  type == CFG_STR ? "string" : type == CFG_INT ? "integer" : "boolean", key);
    return cfg_values[i] ? cfg_values[i] : cfg_keys[i].def;
}

const char *config_str(const char *key)
{
    return value_of(key, CFG_STR);
}

long config_int(const char *key)
{
    long n = 0;
    parse_long(value_of(key, CFG_INT), &n);
    return n;
}

int config_bool(const char *key)
{
    int b = 0;
    parse_bool(value_of(key, CFG_BOOL), &b);
    return b;
}

void config_free(void)
{
    for (size_t i = 0; i < CFG_NKEYS; i++)
        xfree(&cfg_values[i]);
}
