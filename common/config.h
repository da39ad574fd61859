/* config: one key = value file shared by every process, then environment overrides
 * (XMPP_<KEY IN UPPER CASE>). Every key is declared by the module that reads it, in a table
 * of config_key_t (name, type, default, range, one line of help); a process registers the
 * tables of the modules it runs before loading, and reads each value once at start.
 * A bad value is reported with its source (file:line or the variable) and the key's name.
 * The file may also hold keys of the project's other programs (the build indexes every
 * declared key: config_known_key); any other key is an error. */
#ifndef COMMON_CONFIG_H
#define COMMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { CFG_STR, CFG_INT, CFG_BOOL } cfg_type_t;

typedef struct {
    const char *key;
    cfg_type_t type;
    const char *def;
    long min, max; /* CFG_INT only */
    const char *help;
} config_key_t;

/* Table entries; a table ends with CONFIG_END. The build scans sources for these macros to
 * index every key of the project (mk/config.mk). */
#define CONFIG_STR(key, def, help) {key, CFG_STR, def, 0, 0, help}
#define CONFIG_INT(key, def, min, max, help) {key, CFG_INT, def, min, max, help}
#define CONFIG_BOOL(key, def, help) {key, CFG_BOOL, def, 0, 0, help}
#define CONFIG_END {NULL, CFG_STR, NULL, 0, 0, NULL}

/* The keys every process takes: domain, log_level. */
extern const config_key_t config_base_keys[];

/* Adds a table of keys this process takes (kept by pointer). Registering one key twice is
 * a programming error unless both declarations agree. Call before config_load. */
void config_register(const config_key_t *table);
/* Forgets every registered key and value (tests). */
void config_reset(void);
/* Resets every key to its default, then reads `path` (NULL: no file) and the environment.
 * Returns 0, or -1 with a message naming the key and where it came from in err. */
int config_load(const char *path, char *err, size_t errlen);
/* Sets one key from text as if read from `source` (used by config_load and the tests). */
int config_set(const char *key, const char *value, const char *source, char *err,
               size_t errlen);
/* Values of registered keys; asking for an unregistered key is a programming error (aborts). */
const char *config_str(const char *key);
long config_int(const char *key);
int config_bool(const char *key);
/* Walks a comma-separated list value ("a, b,c"): returns the next entry with spaces and
 * tabs around it trimmed (its length in *len; 0 for an empty entry, which callers refuse
 * with a message naming their key), advancing *cursor, or NULL after the last. Start with
 * *cursor = the value; a value of only blanks still yields one empty entry. */
const char *config_list_next(const char **cursor, size_t *len);
/* Prints every registered key: name, type, default, range and help (--help-config). */
void config_print_help(FILE *out, const char *program);
/* 1 when `key` is declared by any program of the project (the build's index). */
int config_known_key(const char *key);
/* Frees the loaded values. */
void config_free(void);

#endif
