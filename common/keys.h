/* keys: the Redis data model shared by the router and xmppctl. Every key of one user
 * carries the bare JID as a hash tag ("{...}") so that all of a user's data lands in one
 * Redis Cluster slot; every key starts with the configured prefix. */
#ifndef COMMON_KEYS_H
#define COMMON_KEYS_H

#include <stddef.h>

#include "scram.h"

/* Hash of one account: field per SCRAM hash, value scram_cred_encode() text. */
#define KEYS_ACCOUNT "acct"
/* Hash of a user's roster: contact bare JID -> item (session-router/roster.c). */
#define KEYS_ROSTER "roster"
/* The roster version counter (XEP-0237). */
#define KEYS_ROSTER_VER "rosterver"
/* List of a user's offline messages, oldest first (XEP-0160). */
#define KEYS_OFFLINE "offline"
/* A user's vCard (XEP-0054) and private XML storage (XEP-0049, a hash). */
#define KEYS_VCARD "vcard"
#define KEYS_PRIVATE "private"
/* A user's PEP service (XEP-0163, session-router/modules/mod_pep.c): a hash of node ->
 * configuration, a hash of NODE \0 ID -> order + item, and a sorted set ordering each
 * node's items (three fixed keys, so deleting the account finds every node). */
#define KEYS_PEP_NODES "pep"
#define KEYS_PEP_ITEMS "pepitems"
#define KEYS_PEP_ORDER "peporder"
/* XEP-0313 message archive (mod_mam.c): "mam" is a stream of a user's archived messages
 * (entry id = the XEP-0359 stanza-id, fields with = the other party's full JID, dir = in or
 * out, xml = the message); "mamwith" PREFIX "mamwith:{BARE}:" CONTACT is a stream per
 * conversation holding the same ids (field with only), so a 'with' query reads just that
 * conversation; "mamidx" is a sorted set of the contacts having one (score: last message,
 * ms), so expiry and account deletion can name them; "mamprefs" is a hash of the
 * preferences (field default; "a:" JID and "n:" JID for the always and never lists). */
#define KEYS_MAM "mam"
#define KEYS_MAM_WITH "mamwith"
#define KEYS_MAM_INDEX "mamidx"
#define KEYS_MAM_PREFS "mamprefs"
/* A room's messages (muc_archive.c): PREFIX "mucmam:{ROOM@SERVICE}" is a stream (entry id
 * = the room's XEP-0359 stanza-id, fields with = the sender's room JID room/nick, k = m for
 * a message or s for a subject change, xml = the message as reflected, without 'to'): the
 * room's XEP-0313 archive and its history on join. Trimmed to muc_archive_max_messages on
 * every write, by id to muc_archive_expires_after, deleted with the room. */
#define KEYS_MUC_ARCHIVE "mucmam"
/* The last unavailable presence of a user who went offline (answers probes). */
#define KEYS_LAST_UNAVAILABLE "lastpresence"
/* The hex SHA-1 of a user's avatar image, "" for none (XEP-0398: mod_avatar). */
#define KEYS_AVATAR_HASH "avatarhash"
/* Set of the JIDs a user blocks (XEP-0191). */
#define KEYS_BLOCKLIST "blocklist"
/* A deleted account's tombstone (XEP-0077 removal, xmppctl deluser): a string holding the
 * deletion time (Unix seconds). Written with keys_user() so it shares the user's hash tag
 * (one Cluster slot with acct:{...}), but it is not among the kinds removing a user's data
 * deletes: it outlives the account, and an expiry (tombstone_expiry) is the only way it
 * goes on its own. While it exists the address is not handed to anyone new. */
#define KEYS_TOMBSTONE "tombstone"
/* An invitation token (xmppctl invite; XEP-0401, XEP-0445): PREFIX "invite:" TOKEN, a
 * string holding its creation time (Unix seconds), with an expiry (invite_ttl). The
 * router deletes it when an account is registered with it; it belongs to no user. */
#define KEYS_INVITE "invite:"
/* A verified entity capabilities hash (XEP-0115): PREFIX "caps:" HASH ":" VER, a string
 * holding the features it names, one per line, with an expiry (caps.c). Belongs to no user. */
#define KEYS_CAPS "caps:"
/* A persistent multi-user chat room (XEP-0045, mod_muc.c / muc_admin.c): PREFIX
 * "mucroom:{ROOM@SERVICE}" is a hash: cfg (muccfg_encode text), subject, subjectby (the
 * nickname), "a:" BARE -> affiliation name, "n:" BARE -> registered nickname. "mucrooms"
 * is the set of the persistent rooms' JIDs (read at start); "mucsecret" the random secret
 * XEP-0421 occupant ids are made with. Temporary rooms and occupants live in the router's
 * memory only. */
#define KEYS_MUC_ROOM "mucroom"
#define KEYS_MUC_ROOMS "mucrooms"
#define KEYS_MUC_SECRET "mucsecret"
/* Set of every account's bare JID (for listing). */
#define KEYS_ACCOUNTS "accounts"

/* Writes PREFIX KIND ":{" BARE "}" into out; returns the length or -1 if it did not fit. */
int keys_user(char *out, size_t n, const char *prefix, const char *kind, const char *bare);
/* Writes PREFIX NAME into out (keys that belong to no user). */
int keys_global(char *out, size_t n, const char *prefix, const char *name);
/* The account hash field of a SCRAM hash: "scram-sha-1" or "scram-sha-256". */
const char *keys_cred_field(scram_hash_t hash);

#endif
