/* adminproto: the router's admin endpoint protocol (docs/PROTOCOL.md, "Admin endpoint"),
 * shared by the session-router and xmppctl. A request is one ZeroMQ multipart message of
 * text frames: the command, then its arguments; the reply is two frames, the status ("ok"
 * or "error") and a text. This module checks a request's frames; it does no I/O. */
#ifndef COMMON_ADMINPROTO_H
#define COMMON_ADMINPROTO_H

#include <stddef.h>

#include "zlink.h"

/* The command and at most 5 arguments. */
#define ADMIN_MAX_ARGS 6
/* The longest argument (an announcement's text, a kick's reason) and request. */
#define ADMIN_ARG_MAX 4096
#define ADMIN_REQUEST_MAX 8192

#define ADMIN_STATUS_OK "ok"
#define ADMIN_STATUS_ERROR "error"

/* A request read from its frames: argv[0] is the command. Strings are NUL-terminated
 * copies held inside the struct. */
typedef struct {
    int argc;
    const char *argv[ADMIN_MAX_ARGS];
    char store[ADMIN_REQUEST_MAX + ADMIN_MAX_ARGS];
} admin_request_t;

/* Reads the frames of a request (the command first; the routing envelope already taken
 * off). Returns 0, or -1 with *why set to a static reason: no command, too many frames, a
 * frame too long, too many bytes in all, a NUL byte, or text that is not UTF-8. */
int adminproto_parse(admin_request_t *r, const zpart_t *parts, int nparts, const char **why);
/* 1 when s[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points
 * past U+10FFFF) holding no control character but tab; else 0. */
int adminproto_text_ok(const char *s, size_t n);

#endif
