/* jid: Jabber identifiers per RFC 7622, prepared with libidn's stringprep profiles
 * (nodeprep for the localpart, nameprep for the domainpart, resourceprep for the resource).
 * Each part must be 1..1023 bytes after preparation; absent parts are empty strings. */
#ifndef COMMON_JID_H
#define COMMON_JID_H

#include <stddef.h>

#define JID_PART_MAX 1023
#define JID_MAX (3 * JID_PART_MAX + 2)

typedef struct {
    char local[JID_PART_MAX + 1];    /* "" when absent */
    char domain[JID_PART_MAX + 1];   /* never empty in a parsed JID */
    char resource[JID_PART_MAX + 1]; /* "" when absent */
} jid_t;

/* Parses and prepares `s`. Returns 0, or -1 if it is not a valid JID (empty part after '@'
 * or '/', prohibited characters, too long, bad domain, ...). */
int jid_parse(jid_t *out, const char *s);
/* Prepares one part in place-free fashion into out[JID_PART_MAX + 1]; 0 or -1. */
int jid_prep_local(char *out, const char *in);
int jid_prep_domain(char *out, const char *in);
int jid_prep_resource(char *out, const char *in);
/* 1 (default): a part of printable ASCII is prepared without libidn, with the result
 * stringprep would give (jid.c); 0: always through libidn (tests compare the two). */
extern int jid_ascii_fast_path;
/* Writes "local@domain" (or "domain") into out; returns the length, or -1 if it did not fit. */
int jid_bare(const jid_t *jid, char *out, size_t n);
/* Writes "local@domain/resource" (parts present only); returns length or -1. */
int jid_full(const jid_t *jid, char *out, size_t n);

#endif
