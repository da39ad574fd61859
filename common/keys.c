#include "keys.h"

#include <stdio.h>

int keys_user(char *out, size_t n, const char *prefix, const char *kind, const char *bare)
{
    int r = snprintf(out, n, "%s%s:{%s}", prefix, kind, bare);
    return r < 0 || (size_t)r >= n ? -1 : r;
}

int keys_global(char *out, size_t n, const char *prefix, const char *name)
{
    int r = snprintf(out, n, "%s%s", prefix, name);
    return r < 0 || (size_t)r >= n ? -1 : r;
}

const char *keys_cred_field(scram_hash_t hash)
{
    return hash == SCRAM_SHA1 ? "scram-sha-1" : "scram-sha-256";
}
