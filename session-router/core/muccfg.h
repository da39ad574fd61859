/* muccfg: a multi-user chat room's configuration and the XEP-0045 privilege rules as pure
 * functions, so that unit tests cover them without Redis or sockets: defaults, the
 * muc#roomconfig form (XEP-0045 section 10.2, field list in section 15.5.3), the
 * muc#roominfo disco form and features (section 6.4, 15.5.4), the stored text form, and who
 * may do what to whom (sections 5.1.1, 5.2, 9, 10). mod_muc does the I/O. */
#ifndef ROUTER_MUCCFG_H
#define ROUTER_MUCCFG_H

#include "buf.h"
#include "xml.h"

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER NS_MUC "#user"
#define NS_MUC_ADMIN NS_MUC "#admin"
#define NS_MUC_OWNER NS_MUC "#owner"
#define FORM_MUC_ROOMCONFIG NS_MUC "#roomconfig"
#define FORM_MUC_ROOMINFO NS_MUC "#roominfo"
#define FORM_MUC_REGISTER "http://jabber.org/protocol/muc#register"

#define MUCCFG_TEXT_MAX 1024 /* room name, description, password: longer is refused */
#define MUCCFG_HISTORY_LIMIT 10000 /* muc#maxhistoryfetch above this is refused */

/* Affiliations (XEP-0045 section 5.2), ordered so that a greater one outranks. */
typedef enum { AFF_OUTCAST = -1, AFF_NONE = 0, AFF_MEMBER, AFF_ADMIN, AFF_OWNER } muc_aff_t;
/* Roles (section 5.1), ordered likewise; ROLE_NONE: not in the room. */
typedef enum { ROLE_NONE = 0, ROLE_VISITOR, ROLE_PARTICIPANT, ROLE_MODERATOR } muc_role_t;
/* Who may send private messages (muc#roomconfig_allowpm) or see real JIDs. */
typedef enum { WHO_NONE = 0, WHO_MODERATORS, WHO_PARTICIPANTS, WHO_ANYONE } muc_who_t;

/* What the room acts on; every field a muc#roomconfig form may set. */
typedef struct {
    char name[MUCCFG_TEXT_MAX + 1], desc[MUCCFG_TEXT_MAX + 1];
    char password[MUCCFG_TEXT_MAX + 1]; /* "" with password_protected 0 */
    int persistent, public_, members_only, moderated, password_protected;
    int change_subject;     /* occupants (participants) may change the subject */
    int allow_invites;      /* occupants may invite (members-only rooms) */
    muc_who_t whois;        /* real JIDs shown to: WHO_MODERATORS (semi-anonymous) or
                               WHO_ANYONE (non-anonymous) */
    muc_who_t allow_pm;     /* who may send private messages */
    int max_users;          /* 0: the service's limit */
    int history_max;        /* messages given on join at most (0: none) */
    int archive;            /* XEP-0313 archive of the room (muc#roomconfig_enablearchiving) */
    int presence_visitors;  /* visitors' presence is broadcast (presencebroadcast) */
} muccfg_t;

/* An error (type and RFC 6120 condition, text or NULL). */
typedef struct {
    const char *etype, *cond, *text;
} muccfg_err_t;

/* Defaults for a new room: temporary, public, open, not moderated, semi-anonymous,
 * private messages from anyone, visitors' presence broadcast, archived, history_max from
 * the service. */
void muccfg_default(muccfg_t *c, int history_max);
/* The muc#roomconfig form (type 'form') with the current values (new tree). */
xml_node_t *muccfg_form(const muccfg_t *c, int max_users_limit);
/* Applies a submitted form (<x xmlns='jabber:x:data' type='submit'>) over `c`: 0, or -1
 * with *err set (static strings): bad-request for an unknown field, a malformed value or a
 * FORM_TYPE other than muc#roomconfig; not-acceptable for a value over a limit (text over
 * MUCCFG_TEXT_MAX, maxusers over max_users_limit, a password-protected room without a
 * password). On error `c` is unchanged. A 'cancel' form is 0 with no change. Fields:
 * muc#roomconfig_ roomname, roomdesc, persistentroom, publicroom, membersonly,
 * moderatedroom, passwordprotectedroom, roomsecret, whois, allowpm, changesubject,
 * allowinvites, maxusers, presencebroadcast, enablearchiving, and muc#maxhistoryfetch. */
int muccfg_apply(muccfg_t *c, const xml_node_t *x, int max_users_limit, muccfg_err_t *err);
/* Adds a data form <field/> (type, label and value each optional) to `x`; returns it. */
xml_node_t *muccfg_form_field(xml_node_t *x, const char *var, const char *type,
                              const char *label, const char *value);
/* The stored text form, and back: decode starts from muccfg_default(c, 0) and reads every
 * field encode wrote (what is missing or unreadable keeps its default). */
void muccfg_encode(const muccfg_t *c, buf_t *out);
void muccfg_decode(const char *s, muccfg_t *c);
/* Adds the room's disco#info features (muc_public/hidden, persistent/temporary, open/
 * membersonly, moderated/unmoderated, nonanonymous/semianonymous, passwordprotected/
 * unsecured, plus NS_MUC) and the muc#roominfo form to a <query/>; `occupants` is the
 * current count, `subject` the subject or "". */
void muccfg_disco(const muccfg_t *c, xml_node_t *query, int occupants, const char *subject);

/* Privileges (XEP-0045 sections 5.1.1, 5.2.1, 8, 9, 10). Each returns 1 when allowed. */
/* The role an occupant gets on joining with affiliation `a` (section 5.1.2). */
muc_role_t muccfg_default_role(const muccfg_t *c, muc_aff_t a);
/* May an occupant with role/affiliation (ar, aa) change the role of one with (tr, ta) to
 * `to` (kick = ROLE_NONE, voice, moderator)? Section 8.2..8.6, 9.6..9.7. */
int muccfg_may_set_role(muc_role_t ar, muc_aff_t aa, muc_role_t tr, muc_aff_t ta, muc_role_t to);
/* May affiliation `aa` change affiliation `ta` to `to` (ban = AFF_OUTCAST, member, admin,
 * owner)? Sections 9.1..9.5, 10.3..10.8. */
int muccfg_may_set_aff(muc_aff_t aa, muc_aff_t ta, muc_aff_t to);
/* May (ar, aa) read the list of `aff` (or of `role`: pass AFF_NONE with role set)? */
int muccfg_may_list(muc_role_t ar, muc_aff_t aa, muc_aff_t aff, muc_role_t role);
/* The XEP-0045 names ("owner", "moderator", ...) and back (-2 for an unknown name). */
const char *muccfg_aff_name(muc_aff_t a);
const char *muccfg_role_name(muc_role_t r);
int muccfg_aff_parse(const char *s);
int muccfg_role_parse(const char *s);

#endif
