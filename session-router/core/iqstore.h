/* iqstore: iq requests answered from one Redis command, for modules that keep an XML
 * element per user (vCard, private storage, ...). The sender is found again by full JID
 * when Redis answers; a Redis failure is answered with a 'wait' error. `from` NULL: a
 * request from another domain, answered by address (deliver.h). */
#ifndef ROUTER_IQSTORE_H
#define ROUTER_IQSTORE_H

#include "types.h"
#include "xml.h"

/* Runs a write command (hiredis format) and answers `st` with an empty result once Redis
 * acknowledged it. Returns 0, or -1 when Redis is away (the error is already sent). */
int iqstore_write(session_t *from, const xml_node_t *st, const char *fmt, ...);
/* Runs a read command and hands its reply (a string or nil) to `answer`, with the request
 * and its sender found again; a Redis failure is answered with a 'wait' error instead, and
 * nothing runs when the sender is gone. Returns 0, or -1 when Redis is away (answered). */
typedef void (*iqstore_answer_fn)(session_t *from, const xml_node_t *st, const char *data,
                                  size_t len, void *arg);
int iqstore_get(session_t *from, const xml_node_t *st, iqstore_answer_fn answer, void *arg,
                const char *fmt, ...);
/* Runs a read command whose reply is one stored element (or nil) and answers `st` with it,
 * inside a new element `wrap_name` in `wrap_ns` when wrap_name is not NULL; with `empty`
 * (taken) when nothing is stored. Returns 0 or -1 as above (`empty` is freed then). */
int iqstore_read(session_t *from, const xml_node_t *st, const char *wrap_name,
                 const char *wrap_ns, xml_node_t *empty, const char *fmt, ...);

#endif
