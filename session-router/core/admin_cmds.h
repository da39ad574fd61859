/* admin_cmds: the core's admin commands (sessions, kick, stats, user, announce), served on
 * the admin endpoint (admin.h) for xmppctl. */
#ifndef ROUTER_ADMIN_CMDS_H
#define ROUTER_ADMIN_CMDS_H

/* Registers the core's commands (before admin_open). */
void admin_cmds_register(void);

#endif
