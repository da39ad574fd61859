/* invite: invitation tokens for in-band registration while allow_registration is off
 * (xmppctl invite; XEP-0401 easy onboarding, XEP-0445 pre-authenticated registration). A
 * token is stored as PREFIX "invite:" TOKEN with an expiry; the router deletes it when an
 * account is registered with it. */
#ifndef XMPPCTL_INVITE_H
#define XMPPCTL_INVITE_H

#include <stddef.h>

#include "config.h"

/* invite_ttl: how long a new token stays valid unless --ttl says otherwise. */
extern const config_key_t invite_config_keys[];

/* A new random token (24 characters of the base64url alphabet, 144 bits) into out (at
 * least 25 bytes). */
void invite_token(char *out, size_t n);
/* Parses `xmppctl invite [--ttl SECONDS]`: the TTL in seconds, or -1 on bad arguments. */
long invite_parse_args(int argc, char **argv, long default_ttl);

#endif
