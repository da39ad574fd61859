/* secret: values that should not sit in the environment or in a shared config file (CURVE
 * secret keys, the Redis password) may come from a file instead: key NAME, or NAME_file
 * naming a file whose first line that is neither empty nor a '#' comment is the value. */
#ifndef COMMON_SECRET_H
#define COMMON_SECRET_H

#include <stddef.h>

/* The value of config key `name`, or of the file named by `name`_file (both are registered
 * keys). Returns a malloc'd string the caller wipes and frees with secret_free, or NULL when
 * neither is set. Both set, or an unreadable or empty file, is fatal, naming the key. A file
 * others may read is accepted with a warning. */
char *secret_from_config(const char *name);
/* Wipes and frees *s, then sets it to NULL; NULL is accepted. */
void secret_free(char **s);

#endif
