/* registration: the rules of in-band registration (XEP-0077) that the frontend and the router
 * share: their configuration keys, the password policy and the form of invitation tokens
 * (XEP-0401, XEP-0445). Pure functions, no I/O. */
#ifndef COMMON_REGISTRATION_H
#define COMMON_REGISTRATION_H

#include <stddef.h>

#include "config.h"
#include "xml.h"

#define NS_REGISTER "jabber:iq:register"
#define NS_XDATA "jabber:x:data"

/* A password is at most this many bytes as sent (before SASLprep). */
#define REGISTER_PASSWORD_MAX 1023
/* An invitation token: 1..REGISTER_TOKEN_MAX characters of [A-Za-z0-9_-]. */
#define REGISTER_TOKEN_MAX 128

/* allow_registration and register_min_password: read by the frontend (which advertises the
 * feature and checks passwords before deriving credentials) and the router (which decides). */
extern const config_key_t register_config_keys[];

/* Why a password cannot be used. */
typedef enum {
    REGISTER_PW_OK = 0,
    REGISTER_PW_TOO_LONG,  /* over REGISTER_PASSWORD_MAX bytes */
    REGISTER_PW_SASLPREP,  /* SASLprep (RFC 4013) refuses it, or it is not UTF-8 */
    REGISTER_PW_TOO_SHORT, /* fewer than min_chars characters once prepared */
} register_pw_t;

/* Checks a new password against the policy: prepared with SASLprep for storing, at least
 * min_chars characters (UTF-8 code points). */
register_pw_t register_password_check(const char *password, long min_chars);
/* The text a client is told for a refused password (English, for the error's <text/>). */
const char *register_password_text(register_pw_t why);
/* 1 when `token` has the form of an invitation token (above), else 0. */
int register_token_valid(const char *token);
/* The two credentials travel in one IPC field as "SHA1\nSHA256" (scram_cred_encode texts):
 * joins them into out (returns 0, -1 when out is too small), and splits one (pointers into
 * `buf`, which is modified; -1 when it is not two lines). */
/* The value of field `name` in a jabber:iq:register <query/>: the text of its child
 * element (<username/>, <password/>), else the <value/> of the data-form field of that var
 * in an <x type='submit'/> (XEP-0004). Malloc'd, or NULL when absent; *twice is set when
 * the field is given more than once. */
char *register_form_value(const xml_node_t *q, const char *name, int *twice);
int register_creds_join(char *out, size_t n, const char *sha1, const char *sha256);
int register_creds_split(char *buf, char **sha1, char **sha256);

#endif
