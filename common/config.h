/* config: one key = value file shared by every process, then environment overrides
 * (XMPP_<KEY IN UPPER CASE>), checked against the table of known keys in config.c.
 * A bad value is reported with its source (file:line or the variable) and the key's name. */
#ifndef COMMON_CONFIG_H
#define COMMON_CONFIG_H

#include <stddef.h>

/* Resets every key to its default, then reads `path` (NULL: no file) and the environment.
 * Returns 0, or -1 with a message naming the key and where it came from in err. */
int config_load(const char *path, char *err, size_t errlen);
/* Sets one key from text as if read from `source` (used by config_load and the tests). */
int config_set(const char *key, const char *value, const char *source, char *err,
               size_t errlen);
/* Values of registered keys; asking for an unknown key is a programming error (aborts). */
const char *config_str(const char *key);
long config_int(const char *key);
int config_bool(const char *key);
/* Frees the loaded values. */
void config_free(void);

#endif
