#include "invite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const config_key_t invite_config_keys[] = {
    CONFIG_INT("invite_ttl", "604800", 1, 31536000, "seconds an invitation token from xmppctl invite stays valid, unless --ttl is given"),
    CONFIG_END,
};

void invite_token(char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[18];
    random_bytes(rnd, sizeof rnd);
    size_t o = 0;
    for (size_t i = 0; i + 2 < sizeof rnd && o + 4 < n; i += 3) {
        unsigned v = (unsigned)rnd[i] << 16 | (unsigned)rnd[i + 1] << 8 | rnd[i + 2];
        for (int k = 3; k >= 0; k--)
            out[o++] = alphabet[(v >> (6 * k)) & 63];
    }
    out[o] = '\0';
}

long invite_parse_args(int argc, char **argv, long default_ttl)
{
    if (argc == 0)
        return default_ttl;
    if (argc != 2 || strcmp(argv[0], "--ttl") != 0)
        return -1;
    char *end;
    long ttl = strtol(argv[1], &end, 10);
    return *argv[1] && !*end && ttl >= 1 && ttl <= 31536000 ? ttl : -1;
}
