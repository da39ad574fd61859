#include "registration.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"

const config_key_t register_config_keys[] = {
    CONFIG_BOOL("allow_registration", "false", "anyone may create an account in-band (XEP-0077); when off, only with an invitation token (xmppctl invite)"),
    CONFIG_INT("register_min_password", "8", 1, 1023, "characters a password set in-band must have at least (registration and password change)"),
    CONFIG_END,
};

register_pw_t register_password_check(const char *password, long min_chars)
{
    if (strlen(password) > REGISTER_PASSWORD_MAX)
        return REGISTER_PW_TOO_LONG;
    char *prepared = scram_saslprep(password, 1);
    if (!prepared)
        return REGISTER_PW_SASLPREP;
    size_t n = scram_utf8_chars(prepared);
    OPENSSL_cleanse(prepared, strlen(prepared));
    free(prepared);
    return (long)n < min_chars ? REGISTER_PW_TOO_SHORT : REGISTER_PW_OK;
}

const char *register_password_text(register_pw_t why)
{
    switch (why) {
    case REGISTER_PW_TOO_LONG:
        return "Password too long";
    case REGISTER_PW_SASLPREP:
        return "Password contains characters that are not allowed (SASLprep, RFC 4013)";
    case REGISTER_PW_TOO_SHORT:
        return "Password too short";
    default:
        return "Password accepted";
    }
}

int register_token_valid(const char *token)
{
    size_t n = strlen(token);
    return n >= 1 && n <= REGISTER_TOKEN_MAX &&
           strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int register_creds_join(char *out, size_t n, const char *sha1, const char *sha256)
{
    int r = snprintf(out, n, "%s\n%s", sha1, sha256);
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

int register_creds_split(char *buf, char **sha1, char **sha256)
{
    char *nl = strchr(buf, '\n');
    if (!nl || nl == buf || !nl[1] || strchr(nl + 1, '\n'))
        return -1;
    *nl = '\0';
    *sha1 = buf;
    *sha256 = nl + 1;
    return 0;
}

char *register_form_value(const xml_node_t *q, const char *name, int *twice)
{
    char *v = NULL;
    int n = 0;
    for (const xml_node_t *ch = q->children; ch; ch = ch->next)
        if (ch->name && ch->ns && strcmp(ch->ns, NS_REGISTER) == 0 &&
            strcmp(ch->name, name) == 0 && n++ == 0)
            v = xml_node_text(ch);
    const xml_node_t *x = xml_node_child(q, "x", NS_XDATA);
    const char *xtype = x ? xml_node_attr(x, "type") : NULL;
    if (x && xtype && strcmp(xtype, "submit") == 0) {
        for (const xml_node_t *f = x->children; f; f = f->next) {
            const char *var = f->name ? xml_node_attr(f, "var") : NULL;
            if (!var || !f->ns || strcmp(f->ns, NS_XDATA) != 0 || strcmp(f->name, "field") != 0 ||
                strcmp(var, name) != 0)
                continue;
            const xml_node_t *val = xml_node_child(f, "value", NS_XDATA);
            if (n++ == 0 && val)
                v = xml_node_text(val);
        }
    }
    *twice |= n > 1;
    return v;
}
