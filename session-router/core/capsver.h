/* capsver: XEP-0115 section 5, whether a disco#info answer is what an entity capabilities
 * hash names. Pure (no I/O): the router's caps.c uses it, the unit tests and a fuzz
 * harness drive it directly. */
#ifndef ROUTER_CAPSVER_H
#define ROUTER_CAPSVER_H

#include <stddef.h>

#include "xml.h"

/* 1 for the hash names taken (the IANA names "sha-1", "sha-224", "sha-256", "sha-384",
 * "sha-512"; md5 is not: 5.2 step 3 lets a server refuse it). */
int capsver_hash_supported(const char *hash);

/* 1 when `query` (a disco#info <query/>) passes the checks of 5.4 (no identity, feature or
 * FORM_TYPE twice, a form's FORM_TYPE hidden and single) and its verification string (5.1)
 * hashed with `hash` is `ver` in base64; then *features holds its features, sorted
 * (strcmp), malloc'd (capsver_free), and *n their number. 0 otherwise, nothing allocated. */
int capsver_check(const xml_node_t *query, const char *hash, const char *ver, char ***features,
                  size_t *n);
void capsver_free(char **features, size_t n);

#endif
