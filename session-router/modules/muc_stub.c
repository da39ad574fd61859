/* TEMPORARY stand-ins for core/muccfg.c and muc_archive.c (helper "mucarch"), so mod_muc
 * links and its tests run until the real ones are merged. Deleted then. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "muc.h"
#include "stanza.h"
#include "util.h"

#define NS_XDATA "jabber:x:data"

void muccfg_default(muccfg_t *c, int history_max)
{
    memset(c, 0, sizeof *c);
    c->public_ = 1;
    c->whois = WHO_MODERATORS;
    c->allow_pm = WHO_ANYONE;
    c->history_max = history_max;
    c->presence_visitors = 1;
}

static void field(xml_node_t *x, const char *var, const char *type, const char *val)
{
    xml_node_t *f = xml_node_new_child(x, "field", NULL);
    xml_node_set_attr(f, "var", var);
    xml_node_set_attr(f, "type", type);
    xml_node_add_text(xml_node_new_child(f, "value", NULL), val, strlen(val));
}

static const char *who_name(muc_who_t w)
{
    return w == WHO_ANYONE ? "anyone" : w == WHO_PARTICIPANTS ? "participants"
           : w == WHO_MODERATORS ? "moderators" : "none";
}

xml_node_t *muccfg_form(const muccfg_t *c, int max_users_limit)
{
    (void)max_users_limit;
    xml_node_t *x = xml_node_new("x", NS_XDATA);
    xml_node_set_attr(x, "type", "form");
    char n[32];
    field(x, "FORM_TYPE", "hidden", FORM_MUC_ROOMCONFIG);
    field(x, "muc#roomconfig_roomname", "text-single", c->name);
    field(x, "muc#roomconfig_roomdesc", "text-single", c->desc);
    field(x, "muc#roomconfig_persistentroom", "boolean", c->persistent ? "1" : "0");
    field(x, "muc#roomconfig_publicroom", "boolean", c->public_ ? "1" : "0");
    field(x, "muc#roomconfig_membersonly", "boolean", c->members_only ? "1" : "0");
    field(x, "muc#roomconfig_moderatedroom", "boolean", c->moderated ? "1" : "0");
    field(x, "muc#roomconfig_passwordprotectedroom", "boolean",
          c->password_protected ? "1" : "0");
    field(x, "muc#roomconfig_roomsecret", "text-private", c->password);
    field(x, "muc#roomconfig_changesubject", "boolean", c->change_subject ? "1" : "0");
    field(x, "muc#roomconfig_allowinvites", "boolean", c->allow_invites ? "1" : "0");
    field(x, "muc#roomconfig_whois", "list-single", who_name(c->whois));
    field(x, "muc#roomconfig_allowpm", "list-single", who_name(c->allow_pm));
    snprintf(n, sizeof n, "%d", c->max_users);
    field(x, "muc#roomconfig_maxusers", "list-single", n);
    snprintf(n, sizeof n, "%d", c->history_max);
    field(x, "muc#maxhistoryfetch", "text-single", n);
    field(x, "muc#roomconfig_enablearchiving", "boolean", c->archive ? "1" : "0");
    return x;
}

static int pbool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true"))
        return *out = 1, 0;
    if (!strcmp(v, "0") || !strcmp(v, "false"))
        return *out = 0, 0;
    return -1;
}

static int pwho(const char *v, muc_who_t *out)
{
    if (!strcmp(v, "anyone"))
        return *out = WHO_ANYONE, 0;
    if (!strcmp(v, "participants"))
        return *out = WHO_PARTICIPANTS, 0;
    if (!strcmp(v, "moderators"))
        return *out = WHO_MODERATORS, 0;
    if (!strcmp(v, "none"))
        return *out = WHO_NONE, 0;
    return -1;
}

int muccfg_apply(muccfg_t *c, const xml_node_t *x, int max_users_limit, muccfg_err_t *err)
{
    const char *t = xml_node_attr(x, "type");
    if (t && !strcmp(t, "cancel"))
        return 0;
    muccfg_t n = *c;
    for (xml_node_t *f = x->children; f; f = f->next) {
        if (!f->name || strcmp(f->name, "field"))
            continue;
        const char *var = xml_node_attr(f, "var");
        xml_node_t *ve = xml_node_child(f, "value", NULL);
        char *v = ve ? xml_node_text(ve) : xstrdup("");
        int bad = 0;
        if (!var)
            bad = 1;
        else if (!strcmp(var, "FORM_TYPE"))
            bad = strcmp(v, FORM_MUC_ROOMCONFIG) != 0;
        else if (!strcmp(var, "muc#roomconfig_roomname"))
            bad = strlen(v) > MUCCFG_TEXT_MAX || (snprintf(n.name, sizeof n.name, "%s", v) < 0);
        else if (!strcmp(var, "muc#roomconfig_roomdesc"))
            bad = strlen(v) > MUCCFG_TEXT_MAX || (snprintf(n.desc, sizeof n.desc, "%s", v) < 0);
        else if (!strcmp(var, "muc#roomconfig_roomsecret"))
            bad = strlen(v) > MUCCFG_TEXT_MAX ||
                  (snprintf(n.password, sizeof n.password, "%s", v) < 0);
        else if (!strcmp(var, "muc#roomconfig_persistentroom"))
            bad = pbool(v, &n.persistent);
        else if (!strcmp(var, "muc#roomconfig_publicroom"))
            bad = pbool(v, &n.public_);
        else if (!strcmp(var, "muc#roomconfig_membersonly"))
            bad = pbool(v, &n.members_only);
        else if (!strcmp(var, "muc#roomconfig_moderatedroom"))
            bad = pbool(v, &n.moderated);
        else if (!strcmp(var, "muc#roomconfig_passwordprotectedroom"))
            bad = pbool(v, &n.password_protected);
        else if (!strcmp(var, "muc#roomconfig_changesubject"))
            bad = pbool(v, &n.change_subject);
        else if (!strcmp(var, "muc#roomconfig_allowinvites"))
            bad = pbool(v, &n.allow_invites);
        else if (!strcmp(var, "muc#roomconfig_enablearchiving"))
            bad = pbool(v, &n.archive);
        else if (!strcmp(var, "muc#roomconfig_presencebroadcast"))
            n.presence_visitors = strstr(v, "visitor") != NULL;
        else if (!strcmp(var, "muc#roomconfig_whois"))
            bad = pwho(v, &n.whois) || n.whois == WHO_PARTICIPANTS || n.whois == WHO_NONE;
        else if (!strcmp(var, "muc#roomconfig_allowpm"))
            bad = pwho(v, &n.allow_pm);
        else if (!strcmp(var, "muc#roomconfig_maxusers")) {
            char *e;
            long m = strtol(v, &e, 10);
            bad = !*v || *e || m < 0 || m > max_users_limit;
            n.max_users = (int)m;
        } else if (!strcmp(var, "muc#maxhistoryfetch") ||
                   !strcmp(var, "muc#roomconfig_historylength")) {
            char *e;
            long m = strtol(v, &e, 10);
            bad = !*v || *e || m < 0 || m > 100000;
            n.history_max = (int)m;
        } else
            bad = 1;
        free(v);
        if (bad) {
            err->etype = "modify";
            err->cond = "not-acceptable";
            err->text = NULL;
            return -1;
        }
    }
    if (!n.password_protected)
        n.password[0] = '\0';
    *c = n;
    return 0;
}

void muccfg_encode(const muccfg_t *c, buf_t *out)
{
    buf_printf(out, "p=%d\npub=%d\nmo=%d\nmod=%d\npp=%d\ncs=%d\nai=%d\nw=%d\npm=%d\nmu=%d\nh=%d\n"
               "ar=%d\npv=%d\nname=%s\ndesc=%s\npw=%s\n",
               c->persistent, c->public_, c->members_only, c->moderated, c->password_protected,
               c->change_subject, c->allow_invites, c->whois, c->allow_pm, c->max_users,
               c->history_max, c->archive, c->presence_visitors, c->name, c->desc, c->password);
}

void muccfg_decode(const char *s, muccfg_t *c)
{
    char *copy = xstrdup(s), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *v = eq + 1;
        int i = atoi(v);
        if (!strcmp(l, "p")) c->persistent = i;
        else if (!strcmp(l, "pub")) c->public_ = i;
        else if (!strcmp(l, "mo")) c->members_only = i;
        else if (!strcmp(l, "mod")) c->moderated = i;
        else if (!strcmp(l, "pp")) c->password_protected = i;
        else if (!strcmp(l, "cs")) c->change_subject = i;
        else if (!strcmp(l, "ai")) c->allow_invites = i;
        else if (!strcmp(l, "w")) c->whois = (muc_who_t)i;
        else if (!strcmp(l, "pm")) c->allow_pm = (muc_who_t)i;
        else if (!strcmp(l, "mu")) c->max_users = i;
        else if (!strcmp(l, "h")) c->history_max = i;
        else if (!strcmp(l, "ar")) c->archive = i;
        else if (!strcmp(l, "pv")) c->presence_visitors = i;
        else if (!strcmp(l, "name")) snprintf(c->name, sizeof c->name, "%s", v);
        else if (!strcmp(l, "desc")) snprintf(c->desc, sizeof c->desc, "%s", v);
        else if (!strcmp(l, "pw")) snprintf(c->password, sizeof c->password, "%s", v);
    }
    free(copy);
}

void muccfg_disco(const muccfg_t *c, xml_node_t *q, int occupants, const char *subject)
{
    const char *f[] = {NS_MUC,
                       c->public_ ? "muc_public" : "muc_hidden",
                       c->persistent ? "muc_persistent" : "muc_temporary",
                       c->members_only ? "muc_membersonly" : "muc_open",
                       c->moderated ? "muc_moderated" : "muc_unmoderated",
                       c->whois == WHO_ANYONE ? "muc_nonanonymous" : "muc_semianonymous",
                       c->password_protected ? "muc_passwordprotected" : "muc_unsecured",
                       NULL};
    for (int i = 0; f[i]; i++)
        xml_node_set_attr(xml_node_new_child(q, "feature", NULL), "var", f[i]);
    xml_node_t *x = xml_node_new_child(q, "x", NS_XDATA);
    xml_node_set_attr(x, "type", "result");
    char n[16];
    snprintf(n, sizeof n, "%d", occupants);
    field(x, "FORM_TYPE", "hidden", FORM_MUC_ROOMINFO);
    field(x, "muc#roominfo_description", "text-single", c->desc);
    field(x, "muc#roominfo_occupants", "text-single", n);
    field(x, "muc#roominfo_subject", "text-single", subject);
}

muc_role_t muccfg_default_role(const muccfg_t *c, muc_aff_t a)
{
    if (a == AFF_OUTCAST)
        return ROLE_NONE;
    if (a >= AFF_ADMIN)
        return ROLE_MODERATOR;
    if (c->moderated && a == AFF_NONE)
        return ROLE_VISITOR;
    return ROLE_PARTICIPANT;
}

int muccfg_may_set_role(muc_role_t ar, muc_aff_t aa, muc_role_t tr, muc_aff_t ta, muc_role_t to)
{
    (void)tr;
    if (ar != ROLE_MODERATOR)
        return 0;
    if (ta >= AFF_ADMIN && aa <= ta)
        return 0;
    if ((to == ROLE_MODERATOR || tr == ROLE_MODERATOR) && aa < AFF_ADMIN)
        return 0;
    return 1;
}

int muccfg_may_set_aff(muc_aff_t aa, muc_aff_t ta, muc_aff_t to)
{
    if (aa == AFF_OWNER)
        return 1;
    if (aa == AFF_ADMIN)
        return ta < AFF_ADMIN && to < AFF_ADMIN;
    return 0;
}

int muccfg_may_list(muc_role_t ar, muc_aff_t aa, muc_aff_t aff, muc_role_t role)
{
    if (role != ROLE_NONE)
        return ar == ROLE_MODERATOR;
    if (aff == AFF_ADMIN || aff == AFF_OWNER)
        return aa >= AFF_ADMIN;
    return aa >= AFF_ADMIN;
}

const char *muccfg_aff_name(muc_aff_t a)
{
    switch (a) {
    case AFF_OUTCAST: return "outcast";
    case AFF_MEMBER: return "member";
    case AFF_ADMIN: return "admin";
    case AFF_OWNER: return "owner";
    default: return "none";
    }
}

const char *muccfg_role_name(muc_role_t r)
{
    switch (r) {
    case ROLE_VISITOR: return "visitor";
    case ROLE_PARTICIPANT: return "participant";
    case ROLE_MODERATOR: return "moderator";
    default: return "none";
    }
}

int muccfg_aff_parse(const char *s)
{
    const char *n[] = {"outcast", "none", "member", "admin", "owner"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, n[i]))
            return i - 1;
    return -2;
}

int muccfg_role_parse(const char *s)
{
    const char *n[] = {"none", "visitor", "participant", "moderator"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, n[i]))
            return i;
    return -2;
}

int muc_history_parse(const xml_node_t *history, muc_history_req_t *out)
{
    (void)history;
    out->maxchars = out->maxstanzas = out->seconds = -1;
    out->since_ms = -1;
    return 0;
}

void muc_archive_open(void) {}
void muc_archive_close(void) {}

void muc_archive_add(const char *room, xml_node_t *msg, int archive)
{
    (void)archive;
    xml_node_t *c;
    while ((c = xml_node_child(msg, "stanza-id", "urn:xmpp:sid:0"))) {
        xml_node_remove_child(msg, c);
        xml_node_free(&c);
    }
    static unsigned long long n;
    char id[32];
    snprintf(id, sizeof id, "stub%llu", ++n);
    xml_node_t *s = xml_node_new_child(msg, "stanza-id", "urn:xmpp:sid:0");
    xml_node_set_attr(s, "by", room);
    xml_node_set_attr(s, "id", id);
}

void muc_history_send(const char *room, const char *to, const muc_history_req_t *req,
                      long history_max, void (*done)(void *ud), void *ud)
{
    (void)room, (void)to, (void)req, (void)history_max;
    done(ud);
}

void muc_archive_query(session_t *from, const xml_node_t *st, const char *room)
{
    (void)room;
    session_reply_error(from, st, "cancel", "service-unavailable");
}

void muc_archive_delete(const char *room)
{
    (void)room;
}
