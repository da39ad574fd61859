/* mamrun: runs a parsed XEP-0313 query (mamq.h) against an archive stream in Redis and
 * answers the requester: the result messages, then the iq result with <fin/>; and the
 * archive's metadata (first and last message). Shared by users' archives (mod_mam.c) and
 * rooms' archives (muc_archive.c): an archive is a stream whose entry ids are the archive
 * ids, with fields 'with' (the other party's JID) and 'xml' (the stored message). */
#ifndef ROUTER_MAMRUN_H
#define ROUTER_MAMRUN_H

#include "mamq.h"
#include "xml.h"

/* Runs `q` on the stream `key`, reading ids from `src` (`key` itself, or a stream holding a
 * subset of its ids such as one conversation's); `filter` is a 'with' value an entry must
 * hold ("" for none). The answer goes to the session of `full` (if it is still there), or
 * for a `full` at another domain by address (through s2s),
 * results from `archive` (the archive's JID), the iq result answering `st` (copied). 0, or
 * -1 when Redis refused the command (the caller answers). */
int mamrun_query(const char *full, const xml_node_t *st, const char *archive,
                 const mamq_query_t *q, const char *key, const char *src, const char *filter,
                 mamq_id_t min_kept);
/* Answers <metadata/> (XEP-0313 "Archive metadata") for the stream `key`: 0 or -1. */
int mamrun_metadata(const char *full, const xml_node_t *st, const char *key, mamq_id_t min_kept);

#endif
