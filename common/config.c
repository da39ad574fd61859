#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* The keys every process takes. */
const config_key_t config_base_keys[] = {
    CONFIG_STR("domain", "localhost", "the one domain served"),
    CONFIG_STR("log_level", "info", "debug, info, warn or error (stderr)"),
    CONFIG_END,
};

/* The build's index of every key of every program (mk/config.mk); a program linked without
 * it knows only its own keys. */
extern const char *const config_index[] __attribute__((weak));

static const config_key_t **keys; /* registered, in order */
static size_t nkeys;
static char **values; /* parallel to keys */

static int key_index(const char *key)
{
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i]->key, key) == 0)
            return (int)i;
    return -1;
}

static int same_decl(const config_key_t *a, const config_key_t *b)
{
    return a->type == b->type && strcmp(a->def, b->def) == 0 && a->min == b->min &&
           a->max == b->max;
}

void config_register(const config_key_t *table)
{
    for (const config_key_t *k = table; k->key; k++) {
        int i = key_index(k->key);
        if (i >= 0) {
            if (!same_decl(keys[i], k))
                log_fatal("config: key '%s' is declared twice, differently (programming error)",
                          k->key);
            continue;
        }
        keys = xrealloc(keys, (nkeys + 1) * sizeof *keys);
        values = xrealloc(values, (nkeys + 1) * sizeof *values);
        keys[nkeys] = k;
        values[nkeys] = NULL;
        nkeys++;
    }
}

void config_reset(void)
{
    config_free();
    free(keys);
    free(values);
    keys = NULL;
    values = NULL;
    nkeys = 0;
}

const char *config_list_next(const char **cursor, size_t *len)
{
    const char *s = *cursor;
    if (!s)
        return NULL;
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    *cursor = comma ? comma + 1 : NULL;
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return s;
}

int config_known_key(const char *key)
{
    if (key_index(key) >= 0)
        return 1;
    for (size_t i = 0; config_index && config_index[i]; i++)
        if (strcmp(config_index[i], key) == 0)
            return 1;
    return 0;
}

void config_print_help(FILE *out, const char *program)
{
    static const char *const type_names[] = {"string", "integer", "boolean"};
    fprintf(out, "%s takes these configuration keys (file: key = value; environment: "
                 "XMPP_KEY):\n", program);
    for (size_t i = 0; i < nkeys; i++) {
        const config_key_t *k = keys[i];
        fprintf(out, "%s\t%s\tdefault '%s'", k->key, type_names[k->type], k->def);
        if (k->type == CFG_INT)
            fprintf(out, "\trange %ld..%ld", k->min, k->max);
        fprintf(out, "\t%s\n", k->help);
    }
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
    const config_key_t *k = keys[i];
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
    free(values[i]);
    values[i] = xstrdup(value);
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
        /* Another program's key in the shared file is that program's business. */
        if (key_index(key) < 0 && config_known_key(key))
            continue;
        rc = config_set(key, value, src, err, errlen);
    }
    fclose(f);
    return rc;
}

int config_load(const char *path, char *err, size_t errlen)
{
    config_free();
    for (size_t i = 0; i < nkeys; i++)
        values[i] = xstrdup(keys[i]->def);
    if (path && load_file(path, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < nkeys; i++) {
        char var[128] = "XMPP_";
        size_t n = strlen(var);
        for (const char *p = keys[i]->key; *p && n + 1 < sizeof var; p++)
            var[n++] = (char)toupper((unsigned char)*p);
        var[n] = '\0';
        const char *v = getenv(var);
        if (v && config_set(keys[i]->key, v, var, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static const char *value_of(const char *key, cfg_type_t type)
{
    int i = key_index(key);
    if (i < 0 || keys[i]->type != type)
        log_fatal("config: no %s key '%s' registered (programming error)",
                  type == CFG_STR ? "string" : type == CFG_INT ? "integer" : "boolean", key);
    return values[i] ? values[i] : keys[i]->def;
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
    for (size_t i = 0; i < nkeys; i++)
        xfree(&values[i]);
}
