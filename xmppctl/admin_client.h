/* admin_client: xmppctl's side of the session-router's admin endpoint (docs/PROTOCOL.md,
 * "Admin endpoint"): one request, one answer, over a ZeroMQ REQ socket to admin_connect,
 * with CURVE when link_curve is on, bounded by admin_timeout. */
#ifndef XMPPCTL_ADMIN_CLIENT_H
#define XMPPCTL_ADMIN_CLIENT_H

#include "config.h"

/* admin_connect, admin_timeout, admin_curve_public, admin_curve_secret(_file). */
extern const config_key_t admin_client_config_keys[];

/* Sends argv (the command, then its arguments) to the router and prints its answer: the
 * text on stdout when it is "ok", on stderr when it is an error. Returns the exit status:
 * 0 ok, 1 an error, or no answer within admin_timeout (the message says where it tried). */
int admin_client_run(int argc, const char *const *argv);

/* Prints a new CURVE key pair for xmppctl as config lines (xmppctl keygen admin). */
void admin_client_keygen(const char *public, const char *secret);

#endif
