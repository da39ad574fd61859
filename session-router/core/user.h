/* user: the users the router holds, with their roster (RFC 6121 section 2) and blocklist
 * (XEP-0191) cached from Redis. The roster store lives here because several modules change
 * it (roster items, subscriptions); every change is written to Redis with a bumped version
 * (XEP-0237) and pushed to the user's interested resources. */
#ifndef ROUTER_USER_H
#define ROUTER_USER_H

#include <hiredis/hiredis.h>

#include "types.h"

typedef void (*user_op_fn)(user_t *u, int ok, void *arg);

/* The held user of a bare JID, created (and held by the caller) when absent. */
user_t *user_get(const char *bare);
/* Lets go of a user held by user_get or an operation: freed when nothing holds it. */
void user_release(user_t *u);
/* Frees a user that nothing holds any more (no sessions, operations or loading). */
void user_check(user_t *u);
/* Runs fn once the user's roster and blocklist are loaded (ok = 0 when storage failed).
 * Operations on one user run in the order they were asked for. */
void user_with_roster(const char *bare, user_op_fn fn, void *arg);

/* What is cached of a user becomes what storage holds once its account is deleted
 * (account.h): an empty roster and blocklist, no account, a tombstone. Operations queued
 * behind the deletion see that, never a half-freed user. */
void user_deleted(user_t *u);
roster_item_t *roster_find(user_t *u, const char *contact);
/* Creates a hidden item for the contact (caller fills it and calls roster_save). */
roster_item_t *roster_add(user_t *u, const char *contact);
/* Stores the item (or deletes it when `removed`), bumps the version and, unless the item is
 * hidden, pushes it to the user's interested resources. `done` (may be NULL) gets the reply
 * of the transaction. The item is freed when removed. */
void roster_save(user_t *u, roster_item_t *it, int removed, redisCallbackFn *done, void *arg);
/* The <item/> of a roster result or push. */
void roster_item_to_xml(xml_node_t *query, const roster_item_t *it, int removed);
void roster_item_free(roster_item_t *it);

/* 1 when `u` blocks `jid` (a full or bare JID; matched as XEP-0191 section 3.2 says). */
int user_blocks(const user_t *u, const char *jid);

#endif
