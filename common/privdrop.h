/* privdrop: gives up root once a process has bound its ports and read its secrets. Used by
 * both c2s-frontend and session-router with the config keys `user` and `group`. */
#ifndef COMMON_PRIVDROP_H
#define COMMON_PRIVDROP_H

#include <stddef.h>

/* Switches the process (every thread) to `user` and `group` (the user's primary group when
 * empty): supplementary groups from the group database, then gid, then uid, then checks that
 * root cannot be regained, and logs the result. An empty user changes nothing (with a
 * warning when running as root). Returns 0, or -1 with a message naming the config key in
 * err (unknown user or group, not root, a failed call); the caller should exit then. */
int privdrop_apply(const char *user, const char *group, char *err, size_t errlen);

#endif
