/* mamq: what every XEP-0313 archive of the router shares, as pure functions so that unit
 * tests and a fuzz harness cover them: archive ids (Redis stream ids "ms-seq" that the
 * router chooses, so the XEP-0359 stanza-id is known before Redis answers), XEP-0082
 * date-times, the query (its data form and XEP-0059 result set management) turned into
 * bounds on ids, which messages are worth keeping, and the text of one result. Users'
 * archives (mod_mam.c) and rooms' archives (muc_archive.c) run the query in Redis with
 * mamrun.h. */
#ifndef ROUTER_MAMQ_H
#define ROUTER_MAMQ_H

#include <stdint.h>

#include "buf.h"
#include "jid.h"
#include "xml.h"

#define NS_MAM "urn:xmpp:mam:2"
#define NS_MAM_EXT "urn:xmpp:mam:2#extended"
#define NS_SID "urn:xmpp:sid:0"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"

#define MAMQ_ID_MAX 48 /* "ms-seq" of two 64-bit numbers */
#define MAMQ_MUST_MAX 4 /* ids a query names that must exist (after-id, before-id, RSM) */

/* An archive id: wall-clock milliseconds and a sequence within the millisecond. */
typedef struct {
    uint64_t ms, seq;
} mamq_id_t;

/* The next id: now, never below the last one handed out by this process (shared by every
 * archive, so ids stay strictly increasing for the router's life even if the clock steps
 * back: then the sequence counts up). */
mamq_id_t mamq_next_id(void);
/* Wall-clock Unix milliseconds. */
uint64_t mamq_now_ms(void);
/* Parses "ms-seq" strictly (what an archive hands out): 0, or -1. */
int mamq_id_parse(const char *s, mamq_id_t *out);
/* Writes "ms-seq" into out (MAMQ_ID_MAX bytes). */
void mamq_id_fmt(mamq_id_t id, char *out);
int mamq_id_cmp(mamq_id_t a, mamq_id_t b);
mamq_id_t mamq_id_next(mamq_id_t a);
/* The id before `a`: 0, or -1 when there is none (0-0). */
int mamq_id_prev(mamq_id_t *a);
/* The oldest id kept under an expiry of `expires_after` seconds at `now_ms` (0-0 when 0). */
mamq_id_t mamq_min_kept(long expires_after, uint64_t now_ms);

/* XEP-0082 date-time (CCYY-MM-DDThh:mm:ss[.sss](Z|(+|-)hh:mm)) to Unix milliseconds: 0, or
 * -1 (malformed, before 1970, an impossible date). */
int mamq_parse_datetime(const char *s, int64_t *ms_out);
/* "CCYY-MM-DDThh:mm:ss.sssZ" (at least 25 bytes). */
void mamq_fmt_datetime(uint64_t ms, char *out, size_t n);

/* A text value of an element (malloc'd), trimmed of surrounding white space. */
char *mamq_text(const xml_node_t *n);

/* 1 when a message is one a person would want back (XEP-0313 "Business rules" leave the
 * choice to the server): a body, an encrypted payload, a correction, a retraction, a
 * reaction, and with `subject` also a subject change (rooms: XEP-0045 section 8.1). Not
 * chat states or receipts alone, carbon copies, or messages with XEP-0334 no-store or
 * no-permanent-store. */
int mamq_worth(const xml_node_t *st, int subject);

/* A parsed query: the inclusive id range, the ids that must exist (else item-not-found),
 * the page size and direction, the 'with' filter, the #extended ids. */
typedef struct {
    mamq_id_t lo, hi;
    mamq_id_t must[MAMQ_MUST_MAX];
    int nmust;
    long max;
    int backward; /* the last page below hi (RSM <before/>, XEP-0059 2.5) */
    int flip;     /* <flip-page/> (#extended) */
    char with_full[JID_MAX + 1]; /* "" unless 'with' named a resource */
    char with_bare[JID_MAX + 1]; /* "" without 'with' */
    int have_ids;
    char **ids; /* #extended 'ids' values that are ids of ours */
    int nids;
    const char *queryid; /* borrowed from the query element, or NULL */
} mamq_query_t;

/* Reads <query xmlns='urn:xmpp:mam:2'/> (its form and <set/>). `max_page` bounds the page
 * and the number of ids; `min_kept` is the oldest id the archive still keeps. 0, or -1 with
 * the error's type and condition (bad-request for an unknown field or malformed value,
 * item-not-found for an id that cannot be ours, policy-violation for too many ids); the
 * query needs mamq_query_free either way. */
int mamq_query_parse(const xml_node_t *q, long max_page, mamq_id_t min_kept, mamq_query_t *out,
                     const char **etype, const char **cond);
void mamq_query_free(mamq_query_t *q);

/* The query form (XEP-0313 "Retrieving the form"): a new <query/> holding it. */
xml_node_t *mamq_form(void);

/* Appends one result message (XEP-0313 "Query results"): to `to` from the archive's
 * JID `from`, with the queryid, the archive id and a delay stamped with the id's time, the
 * stored message `xml` (serialised for jabber:client) forwarded inside. */
void mamq_result_text(buf_t *b, const char *to, const char *from, const char *queryid,
                      const char *id, const char *xml, size_t xlen);

/* The <fin/> ending a page: `first`/`last` ids of the page (NULL when empty), `complete`
 * when nothing lies beyond it in the direction of paging. */
xml_node_t *mamq_fin(const char *first, const char *last, int complete);

#endif
