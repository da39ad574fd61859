#include "curve.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "config.h"
#include "log.h"
#include "secret.h"
#include "util.h"

/* The link's CURVE switch and the router's public key: read by frontends and the router. */
const config_key_t curve_config_keys[] = {
    CONFIG_BOOL("link_curve", "false", "encrypt and authenticate the frontend-router link with CURVE"),
    CONFIG_STR("router_curve_public", "", "the router's CURVE public key (xmppctl keygen router); frontends need it, the router checks it"),
    CONFIG_END,
};

static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                ".-:+=^!/*?&<>()[]{}@%$#";

int curve_key_parse(const char *z85, unsigned char key[CURVE_KEY_LEN])
{
    if (!z85 || strlen(z85) != CURVE_Z85_LEN)
        return -1;
    for (int group = 0; group < CURVE_Z85_LEN / 5; group++) {
        uint64_t v = 0;
        for (int i = 0; i < 5; i++) {
            char ch = z85[group * 5 + i];
            const char *p = ch ? strchr(z85_chars, ch) : NULL;
            if (!p)
                return -1;
            v = v * 85 + (uint64_t)(p - z85_chars);
        }
        if (v > UINT32_MAX)
            return -1;
        if (key)
            for (int i = 0; i < 4; i++)
                key[group * 4 + i] = (unsigned char)(v >> (24 - 8 * i));
    }
    return 0;
}

int curve_key_config(const char *name, int secret, char z85[CURVE_Z85_LEN + 1])
{
    char *value = secret ? secret_from_config(name) : NULL;
    if (!secret && *config_str(name))
        value = xstrdup(config_str(name));
    if (!value)
        return 0;
    if (curve_key_parse(value, NULL) < 0) {
        char which[128];
        snprintf(which, sizeof which, "%s%s", name, *config_str(name) ? "" : "_file");
        if (secret)
            log_fatal("config: key '%s': not a CURVE key (%zu characters; a key is 40 Z85 "
                      "characters, made by xmppctl keygen)",
                      which, strlen(value));
        log_fatal("config: key '%s': '%s' is not a CURVE key (40 Z85 characters, made by "
                  "xmppctl keygen)",
                  name, value);
    }
    memcpy(z85, value, CURVE_Z85_LEN + 1);
    secret_free(&value);
    return 1;
}

void curve_public_of(const char *z85_secret, char z85_public[CURVE_Z85_LEN + 1])
{
    if (!zmq_has("curve"))
        log_fatal("link: this libzmq has no CURVE support");
    if (zmq_curve_public(z85_public, z85_secret) < 0)
        log_fatal("link: cannot derive a CURVE public key: %s", zmq_strerror(errno));
}
