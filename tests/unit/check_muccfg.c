/* A room's configuration and the XEP-0045 privilege rules (session-router/core/muccfg.c):
 * defaults, the muc#roomconfig form both ways, each field's values good and bad, the stored
 * form, disco#info, and the rows of the role and affiliation tables (sections 5.1, 5.2). */
#include <check.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "muccfg.h"
#include "stanza.h"
#include "suites.h"

#define LIMIT 200

/* A submitted form with `fields` as raw XML after the FORM_TYPE field. */
static xml_node_t *form_xml(const char *type, const char *fields)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "<x xmlns='jabber:x:data' type='%s'><field var='FORM_TYPE' type='hidden'>"
                   "<value>" FORM_MUC_ROOMCONFIG "</value></field>%s</x>", type, fields);
    xml_node_t *x = stanza_parse(b.data, b.len);
    ck_assert_ptr_nonnull(x);
    buf_free(&b);
    return x;
}

/* Applies one field var=value to `c`: muccfg_apply's result, with the condition in *cond. */
static int apply1(muccfg_t *c, const char *var, const char *value, const char **cond)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "<field var='%s'><value>%s</value></field>", var, value);
    xml_node_t *x = form_xml("submit", b.data);
    muccfg_err_t err = {0};
    int rc = muccfg_apply(c, x, LIMIT, &err);
    if (cond)
        *cond = rc < 0 ? err.cond : NULL;
    xml_node_free(&x);
    buf_free(&b);
    return rc;
}

/* The first value of field `var` in a form, or NULL (malloc'd). */
static char *form_value(const xml_node_t *x, const char *var)
{
    for (const xml_node_t *f = x->children; f; f = f->next)
        if (f->name && strcmp(f->name, "field") == 0 && xml_node_attr(f, "var") &&
            strcmp(xml_node_attr(f, "var"), var) == 0) {
            const xml_node_t *v = xml_node_child(f, "value", NULL);
            return v ? xml_node_text(v) : strdup("");
        }
    return NULL;
}

static int cfg_equal(const muccfg_t *a, const muccfg_t *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->desc, b->desc) == 0 &&
           strcmp(a->password, b->password) == 0 && a->persistent == b->persistent &&
           a->public_ == b->public_ && a->members_only == b->members_only &&
           a->moderated == b->moderated && a->password_protected == b->password_protected &&
           a->change_subject == b->change_subject && a->allow_invites == b->allow_invites &&
           a->whois == b->whois && a->allow_pm == b->allow_pm && a->max_users == b->max_users &&
           a->history_max == b->history_max && a->archive == b->archive &&
           a->presence_visitors == b->presence_visitors;
}

START_TEST(defaults)
{
    muccfg_t c;
    muccfg_default(&c, 20);
    ck_assert_int_eq(c.persistent, 0);
    ck_assert_int_eq(c.public_, 1);
    ck_assert_int_eq(c.members_only, 0);
    ck_assert_int_eq(c.moderated, 0);
    ck_assert_int_eq(c.password_protected, 0);
    ck_assert_int_eq(c.whois, WHO_MODERATORS);
    ck_assert_int_eq(c.history_max, 20);
    ck_assert_int_eq(c.max_users, 0);
    ck_assert_str_eq(c.name, "");
    ck_assert_str_eq(c.password, "");
}
END_TEST

/* The form shows the values; submitting it back (as a client does, type 'submit', each
 * field with its values) changes nothing. */
START_TEST(form_round_trip)
{
    muccfg_t c;
    muccfg_default(&c, 20);
    strcpy(c.name, "Tea & <cakes>");
    strcpy(c.desc, "desc");
    c.persistent = c.members_only = c.moderated = 1;
    c.password_protected = 1;
    strcpy(c.password, "s3cret");
    c.whois = WHO_ANYONE;
    c.allow_pm = WHO_MODERATORS;
    c.max_users = 37;
    c.presence_visitors = 0;
    c.archive = 0;
    xml_node_t *x = muccfg_form(&c, LIMIT);
    ck_assert_str_eq(xml_node_attr(x, "type"), "form");
    char *v = form_value(x, "muc#roomconfig_roomname");
    ck_assert_str_eq(v, "Tea & <cakes>");
    free(v);
    v = form_value(x, "muc#roomconfig_maxusers");
    ck_assert_str_eq(v, "37");
    free(v);
    v = form_value(x, "FORM_TYPE");
    ck_assert_str_eq(v, FORM_MUC_ROOMCONFIG);
    free(v);
    /* Through text and back, as over the wire. */
    buf_t b = BUF_INIT;
    xml_serialize(x, NULL, &b);
    xml_node_free(&x);
    x = stanza_parse(b.data, b.len);
    ck_assert_ptr_nonnull(x);
    xml_node_set_attr(x, "type", "submit");
    muccfg_t d;
    muccfg_default(&d, 5);
    muccfg_err_t err;
    ck_assert_int_eq(muccfg_apply(&d, x, LIMIT, &err), 0);
    ck_assert(cfg_equal(&c, &d));
    xml_node_free(&x);
    buf_free(&b);
}
END_TEST

START_TEST(cancel_and_form_type)
{
    muccfg_t c, before;
    muccfg_default(&c, 10);
    before = c;
    muccfg_err_t err;
    xml_node_t *x = form_xml("cancel", "<field var='muc#roomconfig_bogus'><value>1</value></field>");
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), 0);
    ck_assert(cfg_equal(&c, &before));
    xml_node_free(&x);
    const char *bad[] = {
        "<x xmlns='jabber:x:data' type='form'/>",
        "<x xmlns='jabber:x:data'/>",
        "<x xmlns='urn:other' type='submit'/>",
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
        "http://jabber.org/protocol/pubsub#node_config</value></field></x>",
        "<x xmlns='jabber:x:data' type='submit'><field><value>1</value></field></x>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        x = stanza_parse(bad[i], strlen(bad[i]));
        ck_assert_ptr_nonnull(x);
        ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), -1);
        ck_assert_str_eq(err.cond, "bad-request");
        xml_node_free(&x);
    }
    /* FORM_TYPE may be left out of a submitted form. */
    const char *ok = "<x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_roomname'>"
                     "<value>n</value></field></x>";
    x = stanza_parse(ok, strlen(ok));
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), 0);
    ck_assert_str_eq(c.name, "n");
    xml_node_free(&x);
}
END_TEST

START_TEST(boolean_fields)
{
    static const struct {
        const char *var;
        size_t off;
    } fields[] = {
        {"muc#roomconfig_persistentroom", offsetof(muccfg_t, persistent)},
        {"muc#roomconfig_publicroom", offsetof(muccfg_t, public_)},
        {"muc#roomconfig_membersonly", offsetof(muccfg_t, members_only)},
        {"muc#roomconfig_moderatedroom", offsetof(muccfg_t, moderated)},
        {"muc#roomconfig_changesubject", offsetof(muccfg_t, change_subject)},
        {"muc#roomconfig_allowinvites", offsetof(muccfg_t, allow_invites)},
        {"muc#roomconfig_enablearchiving", offsetof(muccfg_t, archive)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        muccfg_t c;
        muccfg_default(&c, 10);
        int *p = (int *)((char *)&c + fields[i].off);
        const char *cond;
        ck_assert_int_eq(apply1(&c, fields[i].var, "1", NULL), 0);
        ck_assert_int_eq(*p, 1);
        ck_assert_int_eq(apply1(&c, fields[i].var, "false", NULL), 0);
        ck_assert_int_eq(*p, 0);
        ck_assert_int_eq(apply1(&c, fields[i].var, "true", NULL), 0);
        ck_assert_int_eq(*p, 1);
        ck_assert_int_eq(apply1(&c, fields[i].var, "0", NULL), 0);
        ck_assert_int_eq(*p, 0);
        ck_assert_int_eq(apply1(&c, fields[i].var, "yes", &cond), -1);
        ck_assert_str_eq(cond, "bad-request");
        ck_assert_int_eq(apply1(&c, fields[i].var, "", &cond), -1);
        ck_assert_int_eq(*p, 0);
    }
}
END_TEST

START_TEST(text_fields)
{
    muccfg_t c;
    muccfg_default(&c, 10);
    const char *cond;
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_roomname", "Room &amp; board", NULL), 0);
    ck_assert_str_eq(c.name, "Room & board");
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_roomdesc", "About", NULL), 0);
    ck_assert_str_eq(c.desc, "About");
    char *longtext = malloc(MUCCFG_TEXT_MAX + 2);
    memset(longtext, 'a', MUCCFG_TEXT_MAX + 1);
    longtext[MUCCFG_TEXT_MAX + 1] = '\0';
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_roomname", longtext, &cond), -1);
    ck_assert_str_eq(cond, "not-acceptable");
    ck_assert_str_eq(c.name, "Room & board");
    longtext[MUCCFG_TEXT_MAX] = '\0';
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_roomdesc", longtext, NULL), 0);
    ck_assert_uint_eq(strlen(c.desc), MUCCFG_TEXT_MAX);
    free(longtext);
    /* An empty text field clears it. */
    xml_node_t *x = form_xml("submit", "<field var='muc#roomconfig_roomname'/>");
    muccfg_err_t err;
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), 0);
    ck_assert_str_eq(c.name, "");
    xml_node_free(&x);
    /* Two values in a single-valued field. */
    x = form_xml("submit",
                 "<field var='muc#roomconfig_roomname'><value>a</value><value>b</value></field>");
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), -1);
    ck_assert_str_eq(err.cond, "bad-request");
    xml_node_free(&x);
}
END_TEST

/* A password-protected room needs a password; an unprotected one keeps none. */
START_TEST(password_fields)
{
    muccfg_t c;
    muccfg_default(&c, 10);
    const char *cond;
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_passwordprotectedroom", "1", &cond), -1);
    ck_assert_str_eq(cond, "not-acceptable");
    ck_assert_int_eq(c.password_protected, 0);
    xml_node_t *x = form_xml("submit",
                             "<field var='muc#roomconfig_passwordprotectedroom'><value>1</value>"
                             "</field><field var='muc#roomconfig_roomsecret'><value>pw</value>"
                             "</field>");
    muccfg_err_t err;
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), 0);
    ck_assert_int_eq(c.password_protected, 1);
    ck_assert_str_eq(c.password, "pw");
    xml_node_free(&x);
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_passwordprotectedroom", "0", NULL), 0);
    ck_assert_str_eq(c.password, "");
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_roomsecret", "unused", NULL), 0);
    ck_assert_str_eq(c.password, "");
}
END_TEST

START_TEST(list_fields)
{
    muccfg_t c;
    muccfg_default(&c, 10);
    const char *cond;
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_whois", "anyone", NULL), 0);
    ck_assert_int_eq(c.whois, WHO_ANYONE);
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_whois", "moderators", NULL), 0);
    ck_assert_int_eq(c.whois, WHO_MODERATORS);
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_whois", "participants", &cond), -1);
    ck_assert_str_eq(cond, "bad-request");
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_whois", "none", NULL), -1);
    const char *pm[] = {"none", "moderators", "participants", "anyone"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(apply1(&c, "muc#roomconfig_allowpm", pm[i], NULL), 0);
        ck_assert_int_eq(c.allow_pm, i);
    }
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_allowpm", "everyone", NULL), -1);
    ck_assert_int_eq(c.allow_pm, WHO_ANYONE);

    ck_assert_int_eq(apply1(&c, "muc#roomconfig_maxusers", "50", NULL), 0);
    ck_assert_int_eq(c.max_users, 50);
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_maxusers", "none", NULL), 0);
    ck_assert_int_eq(c.max_users, 0);
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_maxusers", "200", NULL), 0);
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_maxusers", "201", &cond), -1);
    ck_assert_str_eq(cond, "not-acceptable");
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_maxusers", "-1", &cond), -1);
    ck_assert_str_eq(cond, "bad-request");
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_maxusers", "5x", NULL), -1);
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_maxusers", "99999999999999", NULL), -1);
    ck_assert_int_eq(c.max_users, 200);

    ck_assert_int_eq(apply1(&c, "muc#maxhistoryfetch", "0", NULL), 0);
    ck_assert_int_eq(c.history_max, 0);
    ck_assert_int_eq(apply1(&c, "muc#maxhistoryfetch", "40", NULL), 0);
    ck_assert_int_eq(c.history_max, 40);
    ck_assert_int_eq(apply1(&c, "muc#maxhistoryfetch", "100001", &cond), -1);
    ck_assert_str_eq(cond, "not-acceptable");
    ck_assert_int_eq(apply1(&c, "muc#maxhistoryfetch", "lots", &cond), -1);
    ck_assert_str_eq(cond, "bad-request");

    muccfg_err_t err;
    xml_node_t *x = form_xml("submit", "<field var='muc#roomconfig_presencebroadcast'>"
                                       "<value>moderator</value><value>participant</value></field>");
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), 0);
    ck_assert_int_eq(c.presence_visitors, 0);
    xml_node_free(&x);
    x = form_xml("submit", "<field var='muc#roomconfig_presencebroadcast'>"
                           "<value>moderator</value><value>visitor</value></field>");
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), 0);
    ck_assert_int_eq(c.presence_visitors, 1);
    xml_node_free(&x);
    x = form_xml("submit", "<field var='muc#roomconfig_presencebroadcast'>"
                           "<value>moderator</value><value>god</value></field>");
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), -1);
    ck_assert_str_eq(err.cond, "bad-request");
    ck_assert_int_eq(c.presence_visitors, 1);
    xml_node_free(&x);
}
END_TEST

/* An unknown field refuses the whole form, and nothing of it is applied. */
START_TEST(unknown_field_refused)
{
    muccfg_t c, before;
    muccfg_default(&c, 10);
    before = c;
    xml_node_t *x = form_xml("submit", "<field var='muc#roomconfig_roomname'><value>n</value>"
                                       "</field><field var='muc#roomconfig_lunch'><value>1"
                                       "</value></field>");
    muccfg_err_t err;
    ck_assert_int_eq(muccfg_apply(&c, x, LIMIT, &err), -1);
    ck_assert_str_eq(err.etype, "modify");
    ck_assert_str_eq(err.cond, "bad-request");
    ck_assert(cfg_equal(&c, &before));
    xml_node_free(&x);
    const char *cond;
    ck_assert_int_eq(apply1(&c, "muc#roomconfig_persistentroom ", "1", &cond), -1);
    ck_assert_str_eq(cond, "bad-request");
}
END_TEST

START_TEST(encode_decode_round_trip)
{
    muccfg_t c, d;
    muccfg_default(&c, 33);
    strcpy(c.name, "na me=%20 \xc3\xa9\n");
    strcpy(c.desc, "d");
    strcpy(c.password, "p w");
    c.password_protected = 1;
    c.persistent = c.members_only = c.moderated = c.change_subject = c.allow_invites = 1;
    c.public_ = c.archive = c.presence_visitors = 0;
    c.whois = WHO_ANYONE;
    c.allow_pm = WHO_NONE;
    c.max_users = 123;
    buf_t b = BUF_INIT;
    muccfg_encode(&c, &b);
    ck_assert_ptr_null(strchr(b.data, '\n'));
    muccfg_decode(b.data, &d);
    ck_assert(cfg_equal(&c, &d));
    buf_free(&b);
    /* Defaults survive too. */
    muccfg_default(&c, 7);
    muccfg_encode(&c, &b);
    muccfg_decode(b.data, &d);
    ck_assert(cfg_equal(&c, &d));
    buf_free(&b);
    /* Garbage keeps defaults. */
    muccfg_decode("persistent=7 whois=none allowpm=x maxusers=-3 name=%zz desc=%4 history=1 "
                  "junk nokey= =v",
                  &d);
    muccfg_default(&c, 0);
    c.history_max = 1;
    ck_assert(cfg_equal(&c, &d));
    muccfg_decode("", &d);
    muccfg_default(&c, 0);
    ck_assert(cfg_equal(&c, &d));
}
END_TEST

static int has_feature(const xml_node_t *q, const char *var)
{
    for (const xml_node_t *f = q->children; f; f = f->next)
        if (f->name && strcmp(f->name, "feature") == 0 && strcmp(xml_node_attr(f, "var"), var) == 0)
            return 1;
    return 0;
}

START_TEST(disco_features_and_roominfo)
{
    muccfg_t c;
    muccfg_default(&c, 10);
    strcpy(c.name, "Room");
    strcpy(c.desc, "Desc");
    xml_node_t *q = xml_node_new("query", "http://jabber.org/protocol/disco#info");
    muccfg_disco(&c, q, 3, "Topic");
    ck_assert(has_feature(q, NS_MUC));
    ck_assert(has_feature(q, "muc_public"));
    ck_assert(has_feature(q, "muc_temporary"));
    ck_assert(has_feature(q, "muc_open"));
    ck_assert(has_feature(q, "muc_unmoderated"));
    ck_assert(has_feature(q, "muc_semianonymous"));
    ck_assert(has_feature(q, "muc_unsecured"));
    ck_assert(has_feature(q, "urn:xmpp:mam:2"));
    ck_assert(!has_feature(q, "muc_hidden"));
    xml_node_t *x = xml_node_child(q, "x", "jabber:x:data");
    ck_assert_ptr_nonnull(x);
    char *v = form_value(x, "FORM_TYPE");
    ck_assert_str_eq(v, FORM_MUC_ROOMINFO);
    free(v);
    v = form_value(x, "muc#roominfo_description");
    ck_assert_str_eq(v, "Desc");
    free(v);
    v = form_value(x, "muc#roominfo_subject");
    ck_assert_str_eq(v, "Topic");
    free(v);
    v = form_value(x, "muc#roominfo_occupants");
    ck_assert_str_eq(v, "3");
    free(v);
    v = form_value(x, "muc#roomconfig_roomname");
    ck_assert_str_eq(v, "Room");
    free(v);
    xml_node_free(&q);
    c.public_ = 0;
    c.persistent = c.members_only = c.moderated = c.password_protected = 1;
    c.whois = WHO_ANYONE;
    c.archive = 0;
    q = xml_node_new("query", "http://jabber.org/protocol/disco#info");
    muccfg_disco(&c, q, 0, "");
    ck_assert(has_feature(q, "muc_hidden"));
    ck_assert(has_feature(q, "muc_persistent"));
    ck_assert(has_feature(q, "muc_membersonly"));
    ck_assert(has_feature(q, "muc_moderated"));
    ck_assert(has_feature(q, "muc_nonanonymous"));
    ck_assert(has_feature(q, "muc_passwordprotected"));
    ck_assert(!has_feature(q, "urn:xmpp:mam:2"));
    xml_node_free(&q);
}
END_TEST

START_TEST(names)
{
    for (int a = AFF_OUTCAST; a <= AFF_OWNER; a++)
        ck_assert_int_eq(muccfg_aff_parse(muccfg_aff_name((muc_aff_t)a)), a);
    for (int r = ROLE_NONE; r <= ROLE_MODERATOR; r++)
        ck_assert_int_eq(muccfg_role_parse(muccfg_role_name((muc_role_t)r)), r);
    ck_assert_str_eq(muccfg_aff_name(AFF_OUTCAST), "outcast");
    ck_assert_str_eq(muccfg_role_name(ROLE_MODERATOR), "moderator");
    ck_assert_int_eq(muccfg_aff_parse("Owner"), -2);
    ck_assert_int_eq(muccfg_aff_parse(NULL), -2);
    ck_assert_int_eq(muccfg_role_parse("king"), -2);
}
END_TEST

/* XEP-0045 section 5.1.2: the default role for each affiliation, in open, moderated and
 * members-only rooms. */
START_TEST(default_roles)
{
    static const struct {
        int moderated, members_only;
        muc_aff_t aff;
        muc_role_t role;
    } rows[] = {
        {0, 0, AFF_OWNER, ROLE_MODERATOR},     {0, 0, AFF_ADMIN, ROLE_MODERATOR},
        {0, 0, AFF_MEMBER, ROLE_PARTICIPANT},  {0, 0, AFF_NONE, ROLE_PARTICIPANT},
        {0, 0, AFF_OUTCAST, ROLE_NONE},        {1, 0, AFF_OWNER, ROLE_MODERATOR},
        {1, 0, AFF_ADMIN, ROLE_MODERATOR},     {1, 0, AFF_MEMBER, ROLE_PARTICIPANT},
        {1, 0, AFF_NONE, ROLE_VISITOR},        {1, 0, AFF_OUTCAST, ROLE_NONE},
        {0, 1, AFF_OWNER, ROLE_MODERATOR},     {0, 1, AFF_ADMIN, ROLE_MODERATOR},
        {0, 1, AFF_MEMBER, ROLE_PARTICIPANT},  {0, 1, AFF_NONE, ROLE_NONE},
        {0, 1, AFF_OUTCAST, ROLE_NONE},        {1, 1, AFF_NONE, ROLE_NONE},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        muccfg_t c;
        muccfg_default(&c, 0);
        c.moderated = rows[i].moderated;
        c.members_only = rows[i].members_only;
        ck_assert_msg(muccfg_default_role(&c, rows[i].aff) == rows[i].role, "row %zu", i);
    }
}
END_TEST

/* Section 5.1.1: only moderators kick, grant and revoke voice; participants and visitors do
 * none of it; with the limits of 8.2, 8.4, 9.6 and 9.7. */
START_TEST(role_changes)
{
    static const struct {
        muc_role_t ar;
        muc_aff_t aa;
        muc_role_t tr;
        muc_aff_t ta;
        muc_role_t to;
        int ok;
    } rows[] = {
        /* Kick (8.2): a moderator kicks participants and visitors... */
        {ROLE_MODERATOR, AFF_NONE, ROLE_PARTICIPANT, AFF_NONE, ROLE_NONE, 1},
        {ROLE_MODERATOR, AFF_NONE, ROLE_VISITOR, AFF_NONE, ROLE_NONE, 1},
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_PARTICIPANT, AFF_MEMBER, ROLE_NONE, 1},
        /* ...but nobody of a higher affiliation. */
        {ROLE_MODERATOR, AFF_NONE, ROLE_MODERATOR, AFF_ADMIN, ROLE_NONE, 0},
        {ROLE_MODERATOR, AFF_NONE, ROLE_PARTICIPANT, AFF_MEMBER, ROLE_NONE, 0},
        {ROLE_MODERATOR, AFF_MEMBER, ROLE_MODERATOR, AFF_OWNER, ROLE_NONE, 0},
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_MODERATOR, AFF_OWNER, ROLE_NONE, 0},
        {ROLE_MODERATOR, AFF_OWNER, ROLE_MODERATOR, AFF_ADMIN, ROLE_NONE, 1},
        /* Participants and visitors kick nobody. */
        {ROLE_PARTICIPANT, AFF_MEMBER, ROLE_VISITOR, AFF_NONE, ROLE_NONE, 0},
        {ROLE_VISITOR, AFF_NONE, ROLE_VISITOR, AFF_NONE, ROLE_NONE, 0},
        {ROLE_PARTICIPANT, AFF_OWNER, ROLE_PARTICIPANT, AFF_NONE, ROLE_NONE, 0},
        /* Someone not in the room cannot be kicked. */
        {ROLE_MODERATOR, AFF_OWNER, ROLE_NONE, AFF_NONE, ROLE_NONE, 0},
        /* Grant voice (8.3): moderators only. */
        {ROLE_MODERATOR, AFF_NONE, ROLE_VISITOR, AFF_NONE, ROLE_PARTICIPANT, 1},
        {ROLE_PARTICIPANT, AFF_MEMBER, ROLE_VISITOR, AFF_NONE, ROLE_PARTICIPANT, 0},
        {ROLE_VISITOR, AFF_NONE, ROLE_VISITOR, AFF_NONE, ROLE_PARTICIPANT, 0},
        /* Revoke voice (8.4): not from an equal or higher affiliation, never from admins
         * and owners. */
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_PARTICIPANT, AFF_NONE, ROLE_VISITOR, 1},
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_PARTICIPANT, AFF_MEMBER, ROLE_VISITOR, 1},
        {ROLE_MODERATOR, AFF_MEMBER, ROLE_PARTICIPANT, AFF_MEMBER, ROLE_VISITOR, 0},
        {ROLE_MODERATOR, AFF_OWNER, ROLE_MODERATOR, AFF_ADMIN, ROLE_VISITOR, 0},
        {ROLE_MODERATOR, AFF_OWNER, ROLE_MODERATOR, AFF_OWNER, ROLE_VISITOR, 0},
        {ROLE_PARTICIPANT, AFF_OWNER, ROLE_PARTICIPANT, AFF_NONE, ROLE_VISITOR, 0},
        /* Grant moderator status (9.6): admins and owners. */
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_PARTICIPANT, AFF_NONE, ROLE_MODERATOR, 1},
        {ROLE_MODERATOR, AFF_OWNER, ROLE_VISITOR, AFF_MEMBER, ROLE_MODERATOR, 1},
        {ROLE_MODERATOR, AFF_MEMBER, ROLE_PARTICIPANT, AFF_NONE, ROLE_MODERATOR, 0},
        {ROLE_MODERATOR, AFF_NONE, ROLE_PARTICIPANT, AFF_NONE, ROLE_MODERATOR, 0},
        /* Revoke moderator status (9.7): admins and owners, not from admins or owners. */
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_MODERATOR, AFF_MEMBER, ROLE_PARTICIPANT, 1},
        {ROLE_MODERATOR, AFF_OWNER, ROLE_MODERATOR, AFF_NONE, ROLE_PARTICIPANT, 1},
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_MODERATOR, AFF_ADMIN, ROLE_PARTICIPANT, 0},
        {ROLE_MODERATOR, AFF_ADMIN, ROLE_MODERATOR, AFF_OWNER, ROLE_PARTICIPANT, 0},
        {ROLE_MODERATOR, AFF_MEMBER, ROLE_MODERATOR, AFF_NONE, ROLE_PARTICIPANT, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        ck_assert_msg(muccfg_may_set_role(rows[i].ar, rows[i].aa, rows[i].tr, rows[i].ta,
                                          rows[i].to) == rows[i].ok,
                      "row %zu", i);
}
END_TEST

/* Section 5.2.1: admins ban and edit the member list (for users below admin); owners edit
 * every list; members and others edit none. */
START_TEST(affiliation_changes)
{
    static const muc_aff_t all[] = {AFF_OUTCAST, AFF_NONE, AFF_MEMBER, AFF_ADMIN, AFF_OWNER};
    for (size_t a = 0; a < 5; a++)
        for (size_t t = 0; t < 5; t++)
            for (size_t to = 0; to < 5; to++) {
                muc_aff_t aa = all[a], ta = all[t], nt = all[to];
                int want;
                if (aa == AFF_OWNER)
                    want = 1;
                else if (aa == AFF_ADMIN)
                    want = ta < AFF_ADMIN && nt < AFF_ADMIN;
                else
                    want = 0;
                ck_assert_msg(muccfg_may_set_aff(aa, ta, nt) == want, "%d %d %d", aa, ta, nt);
            }
    /* The rows named in 5.2.1. */
    ck_assert(muccfg_may_set_aff(AFF_ADMIN, AFF_MEMBER, AFF_OUTCAST));   /* ban members */
    ck_assert(muccfg_may_set_aff(AFF_ADMIN, AFF_NONE, AFF_OUTCAST));     /* ban unaffiliated */
    ck_assert(!muccfg_may_set_aff(AFF_ADMIN, AFF_ADMIN, AFF_OUTCAST));   /* not admins */
    ck_assert(!muccfg_may_set_aff(AFF_ADMIN, AFF_OWNER, AFF_OUTCAST));   /* nor owners */
    ck_assert(muccfg_may_set_aff(AFF_ADMIN, AFF_NONE, AFF_MEMBER));      /* member list */
    ck_assert(!muccfg_may_set_aff(AFF_ADMIN, AFF_MEMBER, AFF_ADMIN));    /* admin list */
    ck_assert(muccfg_may_set_aff(AFF_OWNER, AFF_MEMBER, AFF_ADMIN));
    ck_assert(muccfg_may_set_aff(AFF_OWNER, AFF_ADMIN, AFF_OWNER));      /* owner list */
    ck_assert(!muccfg_may_set_aff(AFF_MEMBER, AFF_NONE, AFF_MEMBER));
    ck_assert(!muccfg_may_set_aff(AFF_NONE, AFF_NONE, AFF_OUTCAST));
}
END_TEST

START_TEST(list_reading)
{
    /* Voice list (8.5): moderators. */
    ck_assert(muccfg_may_list(ROLE_MODERATOR, AFF_NONE, AFF_NONE, ROLE_PARTICIPANT));
    ck_assert(!muccfg_may_list(ROLE_PARTICIPANT, AFF_MEMBER, AFF_NONE, ROLE_PARTICIPANT));
    /* Moderator list (9.8): admins and owners. */
    ck_assert(muccfg_may_list(ROLE_MODERATOR, AFF_ADMIN, AFF_NONE, ROLE_MODERATOR));
    ck_assert(!muccfg_may_list(ROLE_MODERATOR, AFF_MEMBER, AFF_NONE, ROLE_MODERATOR));
    /* Ban list (9.2) and member list (9.5): admins and owners. */
    for (int l = 0; l < 2; l++) {
        muc_aff_t list = l ? AFF_OUTCAST : AFF_MEMBER;
        ck_assert(muccfg_may_list(ROLE_MODERATOR, AFF_ADMIN, list, ROLE_NONE));
        ck_assert(muccfg_may_list(ROLE_MODERATOR, AFF_OWNER, list, ROLE_NONE));
        ck_assert(!muccfg_may_list(ROLE_MODERATOR, AFF_MEMBER, list, ROLE_NONE));
        ck_assert(!muccfg_may_list(ROLE_PARTICIPANT, AFF_NONE, list, ROLE_NONE));
    }
    /* Owner list (10.5) and admin list (10.8): owners. */
    ck_assert(muccfg_may_list(ROLE_MODERATOR, AFF_OWNER, AFF_OWNER, ROLE_NONE));
    ck_assert(muccfg_may_list(ROLE_MODERATOR, AFF_OWNER, AFF_ADMIN, ROLE_NONE));
    ck_assert(!muccfg_may_list(ROLE_MODERATOR, AFF_ADMIN, AFF_OWNER, ROLE_NONE));
    ck_assert(!muccfg_may_list(ROLE_MODERATOR, AFF_ADMIN, AFF_ADMIN, ROLE_NONE));
    /* Nothing named: nothing. */
    ck_assert(!muccfg_may_list(ROLE_MODERATOR, AFF_OWNER, AFF_NONE, ROLE_NONE));
}
END_TEST

Suite *make_muccfg_suite(void)
{
    Suite *s = suite_create("muccfg");
    TCase *tc = tcase_create("muccfg");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, form_round_trip);
    tcase_add_test(tc, cancel_and_form_type);
    tcase_add_test(tc, boolean_fields);
    tcase_add_test(tc, text_fields);
    tcase_add_test(tc, password_fields);
    tcase_add_test(tc, list_fields);
    tcase_add_test(tc, unknown_field_refused);
    tcase_add_test(tc, encode_decode_round_trip);
    tcase_add_test(tc, disco_features_and_roominfo);
    tcase_add_test(tc, names);
    tcase_add_test(tc, default_roles);
    tcase_add_test(tc, role_changes);
    tcase_add_test(tc, affiliation_changes);
    tcase_add_test(tc, list_reading);
    suite_add_tcase(s, tc);
    return s;
}
