/* curve: CURVE keys of the frontend-router link in their text form, Z85 (ZeroMQ RFC 32):
 * 40 characters for 32 bytes. Checked here so that a malformed key stops the process at
 * start with a message naming the config key, instead of a silent handshake failure. */
#ifndef COMMON_CURVE_H
#define COMMON_CURVE_H

#include "config.h"

#define CURVE_KEY_LEN 32
#define CURVE_Z85_LEN 40

/* 0 when `z85` is exactly 40 characters of the Z85 alphabet encoding 32 bytes, which are
 * written to key (NULL: only checked); -1 otherwise. */
int curve_key_parse(const char *z85, unsigned char key[CURVE_KEY_LEN]);
/* Reads the key of config key `name` (with `secret`, also from the file of `name`_file) into
 * z85 (41 bytes, NUL-terminated). 1 when set, 0 when not; a malformed key is fatal and the
 * message names the key (a secret's value is never printed). */
int curve_key_config(const char *name, int secret, char z85[CURVE_Z85_LEN + 1]);
/* The Z85 public key (41 bytes with the NUL) of a Z85 secret key; fatal when libzmq lacks
 * CURVE. */
void curve_public_of(const char *z85_secret, char z85_public[CURVE_Z85_LEN + 1]);

/* The keys link_curve and router_curve_public. */
extern const config_key_t curve_config_keys[];

#endif
