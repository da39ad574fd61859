/* turnrest: time-limited TURN credentials in the "REST API" scheme that coturn checks with
 * use-auth-secret (draft-uberti-behave-turn-rest-00, section 2.2): the username is the
 * expiry time (Unix seconds), a separator and the user's name; the password is
 * base64(HMAC-SHA1(shared secret, username)). The TURN server recomputes the password
 * from the username and refuses an expired one, so nothing is stored anywhere.
 * Pure (no I/O): mod_extdisco hands them out, the unit tests check them. */
#ifndef ROUTER_TURNREST_H
#define ROUTER_TURNREST_H

#include <stddef.h>
#include <stdint.h>

/* Room for any username made here: 20 digits, the separator, a bare JID (at most 3071
 * bytes, RFC 7622 section 3.1) and the NUL. */
#define TURNREST_USERNAME_MAX 3100

/* Writes "EXPIRY<sep>user" into username (size bytes) and returns its password: a malloc'd
 * base64 string the caller frees. NULL when it does not fit. */
char *turnrest_credentials(const char *secret, const char *user, char sep, int64_t expiry,
                           char *username, size_t size);

/* `t` as an XEP-0082 dateTime in UTC ("2026-12-08T03:50:28Z") into buf (32 bytes do). */
void turnrest_datetime(int64_t t, char *buf, size_t size);

#endif
