/* store: the upload process's files on disk. upload_dir/XX/ID holds one file (XX: the first
 * two hex digits of its 32-digit slot id): a small text header (the owner's bare JID, the
 * content type, the file name, the size, the time it was stored), then the bytes. A file is
 * written under upload_dir/tmp/ and linked into place, so a reader never sees half a file
 * and of two PUTs of one slot only the first gets in. The name a client chose never touches
 * the file system. Safe to use from several threads and several processes at once. */
#ifndef UPLOAD_STORE_H
#define UPLOAD_STORE_H

#include <stddef.h>

#include "jid.h"
#include "upslot.h"

typedef struct {
    char *dir;
} store_t;

/* What the header of a stored file says. */
typedef struct {
    const char *bare, *ctype, *name;
    long long size, created;
} store_meta_t;

/* A stored file opened for reading: fd is positioned nowhere; its bytes start at data_off. */
typedef struct {
    int fd;
    long long data_off, size, created;
    char bare[JID_MAX + 1];
    char ctype[UPSLOT_CTYPE_MAX + 1];
    char name[UPSLOT_NAME_MAX + 1];
} store_file_t;

/* Uses `dir` (created with tmp/ when missing). 0, or -1 with a message naming upload_dir. */
int store_init(store_t *s, const char *dir, char *err, size_t errlen);
void store_close(store_t *s);

/* 1 when slot `id` has a stored file. */
int store_exists(const store_t *s, const char *id);
/* Starts a file: creates a temporary one with the header written, its path into tmp.
 * Returns its fd, -2 when another PUT is writing this slot now, or -1 (logged). */
int store_begin(const store_t *s, const char *id, const store_meta_t *m, char *tmp, size_t n);
/* Appends n bytes; 0 or -1 (logged). */
int store_write(int fd, const char *data, size_t n);
/* Syncs, closes and links the temporary file into place, then removes its temporary name.
 * 0 stored; 1 the slot has a file already (nothing changed); -1 an error (logged). The
 * temporary file is gone in every case. */
int store_commit(const store_t *s, int fd, const char *tmp, const char *id);
/* Closes fd (-1: none) and removes the temporary file (tmp "" : none). */
void store_abort(const store_t *s, int fd, const char *tmp);
/* Opens slot `id`'s file and reads its header. 0, or -1 when there is none (or it is not
 * one of ours). */
int store_open(const store_t *s, const char *id, store_file_t *f);
/* Closes f->fd when it is still open. */
void store_file_close(store_file_t *f);
/* Deletes slot `id`'s file (nothing when there is none). */
void store_remove(const store_t *s, const char *id);
/* Calls fn for every stored file's id. */
void store_each(const store_t *s, void (*fn)(const char *id, long long now, long long exp),
                long long now, long long exp);
/* Deletes temporary files last written before `before` (Unix seconds): PUTs that died. */
void store_sweep_tmp(const store_t *s, long long before);

/* Parses a header (the first n bytes of a file) into f (fd untouched). 0, or -1. */
int store_header_parse(const char *data, size_t n, store_file_t *f);

#endif
