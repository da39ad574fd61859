/* cli: what every part of xmppctl does on the command line. */
#ifndef XMPPCTL_CLI_H
#define XMPPCTL_CLI_H

/* Prints "xmppctl: " and the message on stderr, and exits with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
