/* zbatch: the codec of link batches (docs/PROTOCOL.md, "Batches"): several multipart
 * messages in one frame, so that the messages one end sends the other in one pass of its
 * loop cross ZeroMQ as one (zlink.h). This module does no I/O.
 *
 * A batch is ZBATCH_MAGIC, then each message as its number of parts (one byte, 1 to
 * ZLINK_MAX_PARTS) and each part as its length (32 bits, network order) and its bytes. */
#ifndef COMMON_ZBATCH_H
#define COMMON_ZBATCH_H

#include <stddef.h>

#include "buf.h"

/* The link uses at most 3 parts; a ZAP request (RFC 27) has 7. */
#define ZLINK_MAX_PARTS 8

/* Not IPC_MAGIC (0x58), so that a batch never reads as a link header. */
#define ZBATCH_MAGIC 0x42

typedef struct {
    const void *data;
    size_t len;
} zpart_t;

/* One complete multipart message (extra parts beyond ZLINK_MAX_PARTS are dropped and
 * counted in nparts as ZLINK_MAX_PARTS + 1, so the receiver can reject it). */
typedef void (*zlink_cb)(void *ud, const zpart_t *parts, int nparts);

/* Adds a message of 1 to ZLINK_MAX_PARTS parts to the batch in `b` (the magic first when
 * `b` is empty). */
void zbatch_append(buf_t *b, const zpart_t *parts, int nparts);
/* Calls cb with each message of the batch (`prefix`, when not NULL, as its part 0: the
 * sender's routing id), the parts pointing into `data`. 0, or -1 when the frame is not a
 * batch or goes wrong somewhere (the messages before that point were given to cb). */
int zbatch_open(const void *data, size_t len, const zpart_t *prefix, zlink_cb cb, void *ud);

#endif
