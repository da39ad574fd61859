/* upslot: the pure parts of an HTTP File Upload slot (XEP-0363) shared by the router, which
 * hands slots out (session-router/modules/mod_upload.c), and the upload process, which
 * serves them (upload/): the file name and content type rules, the URL path of a slot,
 * the PUT token the client sends back in its Authorization header, and its signature.
 *
 * A slot's URL is UPLOAD_URL "/" ID "/" NAME (NAME percent-encoded): ID is 32 random hex
 * digits naming the file in the store (the name never reaches the file system). The PUT
 * carries "Authorization: Bearer EXPIRY.SIZE.HEX(CTYPE).HEX(BARE).SIG" where SIG is the hex
 * HMAC-SHA256, keyed with the shared secret (upload_secret), of
 * "PUT\n" ID "/" NAME "\n" SIZE "\n" CTYPE "\n" EXPIRY "\n" BARE: the upload process checks
 * it without asking anyone, and learns from it the owner (whose Redis record it checks) and
 * the size and type the router agreed to. */
#ifndef COMMON_UPSLOT_H
#define COMMON_UPSLOT_H

#include <stddef.h>

#include "buf.h"
#include "jid.h"

#define UPSLOT_ID_LEN 32
#define UPSLOT_NAME_MAX 255
#define UPSLOT_CTYPE_MAX 255
#define UPSLOT_SIG_LEN 64
/* The longest Authorization value a slot's token takes (with "Bearer "). */
#define UPSLOT_TOKEN_MAX (7 + 2 * 21 + 2 * UPSLOT_CTYPE_MAX + 2 * JID_MAX + UPSLOT_SIG_LEN + 8)

/* 1 when `name` is an acceptable file name: 1..UPSLOT_NAME_MAX bytes of valid UTF-8, no
 * control character, no '/' or '\\', not "." or "..". */
int upslot_name_ok(const char *name);
/* 1 when `ct` is a MIME type as RFC 9110 8.3 writes one (type "/" subtype, optional
 * parameters), printable ASCII, at most UPSLOT_CTYPE_MAX bytes. */
int upslot_ctype_ok(const char *ct);

/* The hex signature (UPSLOT_SIG_LEN digits and a NUL) of a PUT of `size` bytes of `ctype`
 * ("" when the request named none) to ID "/" NAME, valid until `expiry` (Unix seconds), for
 * `bare`. Returns 0, or -1 when HMAC fails. */
int upslot_sign(const char *secret, const char *id, const char *name, long long size,
                const char *ctype, long long expiry, const char *bare,
                char sig[UPSLOT_SIG_LEN + 1]);

/* The Authorization header value of a slot (taking the signature made above). */
void upslot_token_make(buf_t *out, long long expiry, long long size, const char *ctype,
                       const char *bare, const char *sig);

typedef struct {
    long long expiry, size;
    char ctype[UPSLOT_CTYPE_MAX + 1];
    char bare[JID_MAX + 1];
    char sig[UPSLOT_SIG_LEN + 1];
} upslot_token_t;

/* Reads an Authorization header value made by upslot_token_make. 0, or -1 when it is not
 * one (the fields are checked for form, not for truth: upslot_verify does that). */
int upslot_token_parse(const char *value, upslot_token_t *t);

/* 1 when `t` is the router's signature of a PUT to ID "/" NAME (constant-time compare). */
int upslot_verify(const char *secret, const char *id, const char *name,
                  const upslot_token_t *t);

typedef struct {
    char id[UPSLOT_ID_LEN + 1];
    char name[UPSLOT_NAME_MAX + 1];
} upslot_path_t;

/* Splits a request path (already percent-decoded, as the HTTP server hands it over) into
 * the slot's id and file name. `prefix` is the path of upload_url ("" or "/upload", no
 * trailing slash). Returns 0; -1 when the path is under the prefix but not of a slot's form
 * (a name with '/', "..", a control character, a bad id: 400); -2 when it is not under the
 * prefix at all (404). */
int upslot_path_parse(const char *path, const char *prefix, upslot_path_t *p);

/* Appends `s` percent-encoded for a URL path segment (unreserved characters kept). */
void upslot_url_escape(buf_t *out, const char *s);

/* The path part of an absolute http(s) URL ("" for none or "/"), without a trailing
 * slash, into out. 0, or -1 when `url` is not http:// or https:// or too long. */
int upslot_url_path(const char *url, char *out, size_t n);

/* A Range header (RFC 9110 14.2) against a file of `size` bytes: "bytes=A-B", "bytes=A-"
 * or "bytes=-N". 1 with the range in [*off, *off + *len); 0 when it is not one satisfiable
 * byte range of that form (several ranges, another unit, malformed: serve the whole file,
 * as the RFC allows); -1 when it is unsatisfiable (416). */
int upslot_range_parse(const char *h, long long size, long long *off, long long *len);

#endif
