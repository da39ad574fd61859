/* A multi-user chat room's configuration and the XEP-0045 privilege rules (muccfg.h). */
#include "muccfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifndef NS_XDATA
#define NS_XDATA "jabber:x:data"
#endif

#define F_PREFIX "muc#roomconfig_"

/* Errors of muccfg_apply. RFC 6120 8.3.3.1 bad-request: the form cannot be processed (a
 * field this room does not have, a value that is not of the field's type: XEP-0004 section
 * 3.3 types); 8.3.3.12 not-acceptable: a well-formed value the room does not accept (over a
 * limit, a password-protected room without a password). Prosody answers bad-request for
 * unknown values too; XEP-0045 section 10.2 names no condition of its own. */
static const muccfg_err_t err_type = {"modify", "bad-request", "Not a muc#roomconfig form"};
static const muccfg_err_t err_unknown = {"modify", "bad-request", "Unknown field"};
static const muccfg_err_t err_value = {"modify", "bad-request", "Malformed field value"};
static const muccfg_err_t err_long = {"modify", "not-acceptable", "Text too long"};
static const muccfg_err_t err_limit = {"modify", "not-acceptable", "Value over the limit"};
static const muccfg_err_t err_secret = {"modify", "not-acceptable",
                                        "A password-protected room needs a password"};

static const char *const who_names[] = {"none", "moderators", "participants", "anyone"};
static const char *const role_names[] = {"none", "visitor", "participant", "moderator"};
static const char *const aff_names[] = {"outcast", "none", "member", "admin", "owner"};

/* XEP-0045 section 10.1.3 / 10.2 (and the defaults most services use): a temporary, public,
 * open, unmoderated, semi-anonymous room where participants may send private messages. */
void muccfg_default(muccfg_t *c, int history_max)
{
    memset(c, 0, sizeof *c);
    c->public_ = 1;
    c->whois = WHO_MODERATORS;
    c->allow_pm = WHO_ANYONE;
    c->history_max = history_max < 0 ? 0 : history_max;
    c->archive = 1;
    c->presence_visitors = 1;
}

/* Names */

const char *muccfg_aff_name(muc_aff_t a)
{
    return a >= AFF_OUTCAST && a <= AFF_OWNER ? aff_names[a + 1] : "none";
}

const char *muccfg_role_name(muc_role_t r)
{
    return r >= ROLE_NONE && r <= ROLE_MODERATOR ? role_names[r] : "none";
}

int muccfg_aff_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, aff_names[i]) == 0)
            return i - 1;
    return -2;
}

int muccfg_role_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, role_names[i]) == 0)
            return i;
    return -2;
}

/* The form */

xml_node_t *muccfg_form_field(xml_node_t *x, const char *var, const char *type,
                              const char *label, const char *value)
{
    xml_node_t *f = xml_node_new_child(x, "field", NULL);
    xml_node_set_attr(f, "var", var);
    if (type)
        xml_node_set_attr(f, "type", type);
    if (label)
        xml_node_set_attr(f, "label", label);
    if (value) {
        xml_node_t *v = xml_node_new_child(f, "value", NULL);
        xml_node_add_text(v, value, strlen(value));
    }
    return f;
}

static void field_value_add(xml_node_t *f, const char *value)
{
    xml_node_add_text(xml_node_new_child(f, "value", NULL), value, strlen(value));
}

static void field_option(xml_node_t *f, const char *label, const char *value)
{
    xml_node_t *o = xml_node_new_child(f, "option", NULL);
    if (label)
        xml_node_set_attr(o, "label", label);
    field_value_add(o, value);
}

static xml_node_t *field_bool(xml_node_t *x, const char *var, const char *label, int v)
{
    return muccfg_form_field(x, var, "boolean", label, v ? "1" : "0");
}

xml_node_t *muccfg_form(const muccfg_t *c, int max_users_limit)
{
    xml_node_t *x = xml_node_new("x", NS_XDATA);
    xml_node_set_attr(x, "type", "form");
    const char *title = "Room configuration";
    xml_node_add_text(xml_node_new_child(x, "title", NULL), title, strlen(title));
    muccfg_form_field(x, "FORM_TYPE", "hidden", NULL, FORM_MUC_ROOMCONFIG);
    muccfg_form_field(x, F_PREFIX "roomname", "text-single", "Room name", c->name);
    muccfg_form_field(x, F_PREFIX "roomdesc", "text-single", "Description", c->desc);
    field_bool(x, F_PREFIX "persistentroom", "Persistent room", c->persistent);
    field_bool(x, F_PREFIX "publicroom", "Listed in the room directory", c->public_);
    field_bool(x, F_PREFIX "membersonly", "Members only", c->members_only);
    field_bool(x, F_PREFIX "moderatedroom", "Moderated (only participants speak)", c->moderated);
    field_bool(x, F_PREFIX "passwordprotectedroom", "Password required to enter",
               c->password_protected);
    muccfg_form_field(x, F_PREFIX "roomsecret", "text-private", "Password", c->password);
    xml_node_t *f = muccfg_form_field(x, F_PREFIX "whois", "list-single", "Who may see real JIDs",
                              c->whois == WHO_ANYONE ? "anyone" : "moderators");
    field_option(f, "Moderators only", "moderators");
    field_option(f, "Anyone", "anyone");
    f = muccfg_form_field(x, F_PREFIX "allowpm", "list-single", "Who may send private messages",
                  who_names[c->allow_pm]);
    field_option(f, "Anyone", "anyone");
    field_option(f, "Participants", "participants");
    field_option(f, "Moderators", "moderators");
    field_option(f, "Nobody", "none");
    field_bool(x, F_PREFIX "changesubject", "Participants may change the subject",
               c->change_subject);
    field_bool(x, F_PREFIX "allowinvites", "Occupants may invite others", c->allow_invites);
    char n[32];
    if (c->max_users > 0)
        snprintf(n, sizeof n, "%d", c->max_users);
    else
        snprintf(n, sizeof n, "none");
    f = muccfg_form_field(x, F_PREFIX "maxusers", "list-single", "Maximum number of occupants", n);
    static const int steps[] = {10, 20, 30, 50, 100, 200, 500, 1000};
    int listed = c->max_users <= 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && steps[i] <= max_users_limit; i++) {
        snprintf(n, sizeof n, "%d", steps[i]);
        field_option(f, NULL, n);
        listed |= steps[i] == c->max_users;
    }
    if (!listed) {
        snprintf(n, sizeof n, "%d", c->max_users);
        field_option(f, NULL, n);
    }
    field_option(f, "Service limit", "none");
    f = muccfg_form_field(x, F_PREFIX "presencebroadcast", "list-multi",
                  "Roles whose presence is broadcast", NULL);
    field_value_add(f, "moderator");
    field_value_add(f, "participant");
    if (c->presence_visitors)
        field_value_add(f, "visitor");
    field_option(f, "Moderator", "moderator");
    field_option(f, "Participant", "participant");
    field_option(f, "Visitor", "visitor");
    snprintf(n, sizeof n, "%d", c->history_max);
    muccfg_form_field(x, "muc#maxhistoryfetch", "text-single",
              "Messages of history sent on joining at most", n);
    field_bool(x, F_PREFIX "enablearchiving", "Keep a message archive (XEP-0313)", c->archive);
    return x;
}

/* Applying a submitted form */

/* The <value/> children of a field: count, and the first's text (malloc'd, "" when none). */
static char *field_first(const xml_node_t *f, int *count)
{
    *count = 0;
    char *first = NULL;
    for (const xml_node_t *v = f->children; v; v = v->next)
        if (v->name && strcmp(v->name, "value") == 0) {
            if (++*count == 1)
                first = xml_node_text(v);
        }
    return first ? first : xstrdup("");
}

/* XEP-0004 section 3.3 boolean: "0", "1", "false", "true". */
static int parse_bool(const char *v, int *out)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* A decimal integer 0 <= n <= INT32_MAX with nothing else: 0, or -1. */
static int parse_uint(const char *v, long *out)
{
    if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
        return -1;
    *out = strtol(v, NULL, 10);
    return 0;
}

static int parse_text(const char *v, char *dst, size_t cap, const muccfg_err_t **err)
{
    size_t n = strlen(v);
    if (n > MUCCFG_TEXT_MAX || n >= cap) {
        *err = &err_long;
        return -1;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* One field of the form; `multi` says there were several values (only presencebroadcast,
 * a list-multi, may have several). 0, or -1 with *err. */
static int apply_field(muccfg_t *c, const xml_node_t *f, const char *var, int max_users_limit,
                       const muccfg_err_t **err)
{
    int count;
    char *v = field_first(f, &count);
    int rc = 0, b = 0;
    long n;
    *err = &err_value;
    if (strcmp(var, F_PREFIX "presencebroadcast") == 0) {
        int visitor = 0;
        for (const xml_node_t *e = f->children; e && rc == 0; e = e->next) {
            if (!e->name || strcmp(e->name, "value") != 0)
                continue;
            char *t = xml_node_text(e);
            int r = muccfg_role_parse(t);
            free(t);
            if (r <= ROLE_NONE)
                rc = -1;
            visitor |= r == ROLE_VISITOR;
        }
        if (rc == 0)
            c->presence_visitors = visitor;
        free(v);
        return rc;
    }
    if (count > 1) {
        /* Every other field is single-valued (XEP-0004 section 3.3). */
        free(v);
        return -1;
    }
    int is_bool = 1;
    int *bool_dst = NULL;
    if (strcmp(var, F_PREFIX "persistentroom") == 0)
        bool_dst = &c->persistent;
    else if (strcmp(var, F_PREFIX "publicroom") == 0)
        bool_dst = &c->public_;
    else if (strcmp(var, F_PREFIX "membersonly") == 0)
        bool_dst = &c->members_only;
    else if (strcmp(var, F_PREFIX "moderatedroom") == 0)
        bool_dst = &c->moderated;
    else if (strcmp(var, F_PREFIX "passwordprotectedroom") == 0)
        bool_dst = &c->password_protected;
    else if (strcmp(var, F_PREFIX "changesubject") == 0)
        bool_dst = &c->change_subject;
    else if (strcmp(var, F_PREFIX "allowinvites") == 0)
        bool_dst = &c->allow_invites;
    else if (strcmp(var, F_PREFIX "enablearchiving") == 0)
        bool_dst = &c->archive;
    else
        is_bool = 0;
    if (is_bool) {
        rc = parse_bool(v, &b);
        if (rc == 0)
            *bool_dst = b;
    } else if (strcmp(var, F_PREFIX "roomname") == 0) {
        rc = parse_text(v, c->name, sizeof c->name, err);
    } else if (strcmp(var, F_PREFIX "roomdesc") == 0) {
        rc = parse_text(v, c->desc, sizeof c->desc, err);
    } else if (strcmp(var, F_PREFIX "roomsecret") == 0) {
        rc = parse_text(v, c->password, sizeof c->password, err);
    } else if (strcmp(var, F_PREFIX "whois") == 0) {
        /* XEP-0045 section 15.5.3: the options are moderators and anyone. */
        if (strcmp(v, "moderators") == 0)
            c->whois = WHO_MODERATORS;
        else if (strcmp(v, "anyone") == 0)
            c->whois = WHO_ANYONE;
        else
            rc = -1;
    } else if (strcmp(var, F_PREFIX "allowpm") == 0) {
        rc = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(v, who_names[i]) == 0) {
                c->allow_pm = (muc_who_t)i;
                rc = 0;
            }
    } else if (strcmp(var, F_PREFIX "maxusers") == 0) {
        /* "none" (or 0): no limit of the room's own, the service's applies. */
        if (strcmp(v, "none") == 0) {
            c->max_users = 0;
        } else if (parse_uint(v, &n) < 0) {
            rc = -1;
        } else if (max_users_limit > 0 && n > max_users_limit) {
            *err = &err_limit;
            rc = -1;
        } else {
            c->max_users = (int)n;
        }
    } else if (strcmp(var, "muc#maxhistoryfetch") == 0 ||
               strcmp(var, F_PREFIX "historylength") == 0) {
        if (parse_uint(v, &n) < 0) {
            rc = -1;
        } else if (n > MUCCFG_HISTORY_LIMIT) {
            *err = &err_limit;
            rc = -1;
        } else {
            c->history_max = (int)n;
        }
    } else {
        *err = &err_unknown;
        rc = -1;
    }
    free(v);
    return rc;
}

int muccfg_apply(muccfg_t *c, const xml_node_t *x, int max_users_limit, muccfg_err_t *err)
{
    const char *type = xml_node_attr(x, "type");
    if (!x->name || strcmp(x->name, "x") != 0 || !x->ns || strcmp(x->ns, NS_XDATA) != 0 ||
        !type) {
        *err = err_type;
        return -1;
    }
    /* XEP-0045 section 10.1.3/10.2: a cancelled form leaves the room as it is. */
    if (strcmp(type, "cancel") == 0)
        return 0;
    if (strcmp(type, "submit") != 0) {
        *err = err_type;
        return -1;
    }
    muccfg_t next = *c;
    const muccfg_err_t *e = NULL;
    for (const xml_node_t *f = x->children; f; f = f->next) {
        if (!f->name || strcmp(f->name, "field") != 0)
            continue; /* title, instructions: nothing to apply */
        const char *var = xml_node_attr(f, "var");
        if (!var) {
            *err = err_value;
            return -1;
        }
        if (strcmp(var, "FORM_TYPE") == 0) {
            /* XEP-0068: a FORM_TYPE other than muc#roomconfig is another form. A submitted
             * form may leave FORM_TYPE out (XEP-0004 section 3.4 does not require it). */
            int count;
            char *ft = field_first(f, &count);
            int bad = strcmp(ft, FORM_MUC_ROOMCONFIG) != 0 || count != 1;
            free(ft);
            if (bad) {
                *err = err_type;
                return -1;
            }
            continue;
        }
        if (apply_field(&next, f, var, max_users_limit, &e) < 0) {
            *err = *e;
            return -1;
        }
    }
    /* XEP-0045 section 10.2: a password-protected room has a password; a room that is not
     * protected keeps none. */
    if (next.password_protected && !next.password[0]) {
        *err = err_secret;
        return -1;
    }
    if (!next.password_protected)
        next.password[0] = '\0';
    *c = next;
    return 0;
}

/* The stored text form: "key=value" tokens separated by spaces, text values with every byte
 * outside [A-Za-z0-9._~-] as %XX. */

static void put_text(buf_t *out, const char *key, const char *s)
{
    buf_printf(out, " %s=", key);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '.' || *p == '_' || *p == '~' || *p == '-')
            buf_append(out, p, 1);
        else
            buf_printf(out, "%%%02X", *p);
    }
}

void muccfg_encode(const muccfg_t *c, buf_t *out)
{
    buf_printf(out, "v=1 persistent=%d public=%d membersonly=%d moderated=%d pwprotected=%d "
                    "changesubject=%d invites=%d whois=%s allowpm=%s maxusers=%d history=%d "
                    "archive=%d visitorpresence=%d",
               c->persistent, c->public_, c->members_only, c->moderated, c->password_protected,
               c->change_subject, c->allow_invites, who_names[c->whois], who_names[c->allow_pm],
               c->max_users, c->history_max, c->archive, c->presence_visitors);
    put_text(out, "name", c->name);
    put_text(out, "desc", c->desc);
    put_text(out, "password", c->password);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Decodes n bytes of %-encoded text into dst (cap bytes): 0, or -1 when malformed or long. */
static int get_text(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            ch = h * 16 + l;
            i += 2;
        }
        if (ch == 0 || o + 1 >= cap)
            return -1;
        dst[o++] = (char)ch;
    }
    dst[o] = '\0';
    return 0;
}

static int get_int(const char *v, size_t n, long lo, long hi, int *out)
{
    char tmp[16];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long x = strtol(tmp, &end, 10);
    if (*end || errno || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

static int get_who(const char *v, size_t n, muc_who_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strlen(who_names[i]) == n && memcmp(v, who_names[i], n) == 0) {
            *out = (muc_who_t)i;
            return 0;
        }
    return -1;
}

/* Resets `c` to muccfg_default(c, 0), then reads what muccfg_encode wrote. */
void muccfg_decode(const char *s, muccfg_t *c)
{
    muccfg_default(c, 0);
    while (s && *s) {
        size_t n = strcspn(s, " ");
        const char *eq = memchr(s, '=', n);
        if (eq) {
            size_t kn = (size_t)(eq - s), vn = n - kn - 1;
            const char *v = eq + 1;
            char key[16];
            if (kn < sizeof key) {
                memcpy(key, s, kn);
                key[kn] = '\0';
                int *ip = NULL;
                long hi = 1;
                if (strcmp(key, "persistent") == 0)
                    ip = &c->persistent;
                else if (strcmp(key, "public") == 0)
                    ip = &c->public_;
                else if (strcmp(key, "membersonly") == 0)
                    ip = &c->members_only;
                else if (strcmp(key, "moderated") == 0)
                    ip = &c->moderated;
                else if (strcmp(key, "pwprotected") == 0)
                    ip = &c->password_protected;
                else if (strcmp(key, "changesubject") == 0)
                    ip = &c->change_subject;
                else if (strcmp(key, "invites") == 0)
                    ip = &c->allow_invites;
                else if (strcmp(key, "archive") == 0)
                    ip = &c->archive;
                else if (strcmp(key, "visitorpresence") == 0)
                    ip = &c->presence_visitors;
                else if (strcmp(key, "maxusers") == 0)
                    ip = &c->max_users, hi = 1000000000;
                else if (strcmp(key, "history") == 0)
                    ip = &c->history_max, hi = MUCCFG_HISTORY_LIMIT;
                if (ip) {
                    int x;
                    if (get_int(v, vn, 0, hi, &x) == 0)
                        *ip = x;
                } else if (strcmp(key, "whois") == 0) {
                    muc_who_t w;
                    if (get_who(v, vn, &w) == 0 && (w == WHO_MODERATORS || w == WHO_ANYONE))
                        c->whois = w;
                } else if (strcmp(key, "allowpm") == 0) {
                    get_who(v, vn, &c->allow_pm);
                } else if (strcmp(key, "name") == 0) {
                    if (get_text(v, vn, c->name, sizeof c->name) < 0)
                        c->name[0] = '\0';
                } else if (strcmp(key, "desc") == 0) {
                    if (get_text(v, vn, c->desc, sizeof c->desc) < 0)
                        c->desc[0] = '\0';
                } else if (strcmp(key, "password") == 0) {
                    if (get_text(v, vn, c->password, sizeof c->password) < 0)
                        c->password[0] = '\0';
                }
            }
        }
        s += n;
        while (*s == ' ')
            s++;
    }
    if (!c->password_protected)
        c->password[0] = '\0';
}

/* disco#info */

static void feature(xml_node_t *q, const char *var)
{
    xml_node_set_attr(xml_node_new_child(q, "feature", NULL), "var", var);
}

void muccfg_disco(const muccfg_t *c, xml_node_t *query, int occupants, const char *subject)
{
    /* XEP-0045 section 6.4 and the registered features of section 15.3. */
    feature(query, NS_MUC);
    feature(query, c->public_ ? "muc_public" : "muc_hidden");
    feature(query, c->persistent ? "muc_persistent" : "muc_temporary");
    feature(query, c->members_only ? "muc_membersonly" : "muc_open");
    feature(query, c->moderated ? "muc_moderated" : "muc_unmoderated");
    feature(query, c->whois == WHO_ANYONE ? "muc_nonanonymous" : "muc_semianonymous");
    feature(query, c->password_protected ? "muc_passwordprotected" : "muc_unsecured");
    /* XEP-0359 section 6: the room stamps stanza-ids; XEP-0313 section 7 (rooms): the room
     * keeps an archive. */
    feature(query, "urn:xmpp:sid:0");
    if (c->archive)
        feature(query, "urn:xmpp:mam:2");
    xml_node_t *x = xml_node_new_child(query, "x", NS_XDATA);
    xml_node_set_attr(x, "type", "result");
    muccfg_form_field(x, "FORM_TYPE", "hidden", NULL, FORM_MUC_ROOMINFO);
    muccfg_form_field(x, F_PREFIX "roomname", NULL, "Name", c->name);
    muccfg_form_field(x, "muc#roominfo_description", NULL, "Description", c->desc);
    muccfg_form_field(x, "muc#roominfo_subject", NULL, "Subject", subject ? subject : "");
    char n[32];
    snprintf(n, sizeof n, "%d", occupants < 0 ? 0 : occupants);
    muccfg_form_field(x, "muc#roominfo_occupants", NULL, "Number of occupants", n);
    muccfg_form_field(x, "muc#roominfo_changesubject", NULL, "Occupants may change the subject",
              c->change_subject ? "1" : "0");
    snprintf(n, sizeof n, "%d", c->history_max);
    muccfg_form_field(x, "muc#maxhistoryfetch", NULL, "Messages of history sent on joining at most", n);
}

/* Privileges */

/* XEP-0045 section 5.1.2 (default roles) and 7.2.6 (members-only rooms): an outcast never
 * enters; in a members-only room neither does someone without an affiliation; owners and
 * admins are moderators, members participants, others visitors in a moderated room. */
muc_role_t muccfg_default_role(const muccfg_t *c, muc_aff_t a)
{
    switch (a) {
    case AFF_OWNER:
    case AFF_ADMIN:
        return ROLE_MODERATOR;
    case AFF_MEMBER:
        return ROLE_PARTICIPANT;
    case AFF_NONE:
        if (c->members_only)
            return ROLE_NONE;
        return c->moderated ? ROLE_VISITOR : ROLE_PARTICIPANT;
    default:
        return ROLE_NONE;
    }
}

/* XEP-0045 section 5.1.1 (table: only moderators kick, grant and revoke voice) with its
 * notes, 5.2.1 (only admins and owners assign and remove the moderator role), 8.2 (a
 * moderator cannot kick someone of a higher affiliation), 8.4 (voice cannot be revoked from
 * an occupant whose affiliation is at or above the moderator's, nor from an admin or owner
 * by anyone), 9.7 (an admin cannot revoke moderator status from an admin or owner). */
int muccfg_may_set_role(muc_role_t ar, muc_aff_t aa, muc_role_t tr, muc_aff_t ta, muc_role_t to)
{
    if (ar != ROLE_MODERATOR || tr == ROLE_NONE || aa == AFF_OUTCAST)
        return 0;
    switch (to) {
    case ROLE_NONE: /* kick (8.2) */
        return ta <= aa;
    case ROLE_VISITOR: /* revoke voice (8.4) */
        return ta < aa && ta < AFF_ADMIN;
    case ROLE_PARTICIPANT:
        if (tr == ROLE_MODERATOR) /* revoke moderator status (9.7) */
            return aa >= AFF_ADMIN && ta < AFF_ADMIN;
        return 1; /* grant voice (8.3) */
    case ROLE_MODERATOR: /* grant moderator status (9.6) */
        return aa >= AFF_ADMIN;
    }
    return 0;
}

/* XEP-0045 section 5.2.1: admins ban, and edit the member list, of users below admin (9.1,
 * 9.3, 9.4: "an admin MUST NOT be allowed to ban an admin or owner", nor change their
 * affiliation); owners edit every list, admin and owner ones included (10.3..10.7). Keeping
 * at least one owner (10.5: conflict) is the caller's check, since it needs the list. */
int muccfg_may_set_aff(muc_aff_t aa, muc_aff_t ta, muc_aff_t to)
{
    if (aa == AFF_OWNER)
        return 1;
    if (aa == AFF_ADMIN)
        return ta < AFF_ADMIN && to < AFF_ADMIN;
    return 0;
}

/* Lists (XEP-0045 section 8.5 voice list: moderators; 9.2 ban list, 9.5 member list:
 * admins; 9.8 moderator list: admins; 10.5 owner list, 10.8 admin list: owners). */
int muccfg_may_list(muc_role_t ar, muc_aff_t aa, muc_aff_t aff, muc_role_t role)
{
    switch (aff) {
    case AFF_OWNER:
    case AFF_ADMIN:
        return aa == AFF_OWNER;
    case AFF_MEMBER:
    case AFF_OUTCAST:
        return aa >= AFF_ADMIN;
    case AFF_NONE:
        if (role == ROLE_PARTICIPANT)
            return ar == ROLE_MODERATOR;
        if (role == ROLE_MODERATOR)
            return aa >= AFF_ADMIN;
        return 0;
    }
    return 0;
}
