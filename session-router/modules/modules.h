/* modules: every feature module of the router. main.c registers them from one list; each
 * is defined in its own file (mod_NAME.c) and reaches the rest of the router only through
 * the core's headers and hooks (core/module.h). */
#ifndef ROUTER_MODULES_H
#define ROUTER_MODULES_H

#include "module.h"

extern module_t mod_avatar;
extern module_t mod_blocking;
extern module_t mod_bookmarks;
extern module_t mod_carbons;
extern module_t mod_contact;
extern module_t mod_csi;
extern module_t mod_disco;
extern module_t mod_extdisco;
extern module_t mod_last;
extern module_t mod_mam;
extern module_t mod_muc;
extern module_t mod_offline;
extern module_t mod_pep;
extern module_t mod_ping;
extern module_t mod_presence;
extern module_t mod_private;
extern module_t mod_register;
extern module_t mod_roster;
extern module_t mod_time;
extern module_t mod_unregister;
extern module_t mod_upload;
extern module_t mod_vcard;
extern module_t mod_version;

/* mod_offline's store script (the account check, the count and the push in one step),
 * known to the unit tests' fake Redis, which runs it as the commands it stands for. */
extern const char offline_store_script[];

/* The configuration keys of muc_archive.c (the room archive side of mod_muc). */

#endif
