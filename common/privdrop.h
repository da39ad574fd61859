/* privdrop: gives up root once a process has bound its ports and read its secrets. Used by
 * both c2s-frontend and session-router with the config keys `user` and `group`. */
#ifndef COMMON_PRIVDROP_H
#define COMMON_PRIVDROP_H

#include "config.h"

#include <stddef.h>
#include <sys/types.h>

/* The ids `user` and `group` name (names or numbers, as privdrop_apply takes them). */
typedef struct {
    uid_t uid;
    gid_t gid;
    int has_entry; /* the user is in the user database (its groups come from there) */
    char uname[256], gname[256];
} privdrop_ids_t;

/* Resolves `user` (not empty) and `group` (empty: the user's primary group); 0, or -1 with
 * a message naming the key in err. */
int privdrop_resolve(const char *user, const char *group, privdrop_ids_t *ids, char *err,
                     size_t errlen);

/* Switches the process (every thread) to `user` and `group` (the user's primary group when
 * empty): supplementary groups from the group database, then gid, then uid, then checks that
 * root cannot be regained, and logs the result. An empty user changes nothing (with a
 * warning when running as root). Returns 0, or -1 with a message naming the config key in
 * err (unknown user or group, not root, a failed call); the caller should exit then. */
int privdrop_apply(const char *user, const char *group, char *err, size_t errlen);

/* The keys user and group. */
extern const config_key_t privdrop_config_keys[];

#endif
