/* A PEP node's configuration as pure functions (pepcfg.h). */
#include "pepcfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const access_names[] = {"open", "presence", "whitelist"};
static const char *const sendlast_names[] = {"never", "on_sub", "on_sub_and_presence"};

/* XEP-0163 section 5 (recommended defaults): presence access, the last item kept and
 * sent. */
void pepcfg_default(pep_config_t *c)
{
    *c = (pep_config_t){.access = ACCESS_PRESENCE, .max_items = 1, .persist = 1,
                        .sendlast = SENDLAST_ON_SUB_AND_PRESENCE, .notify_retract = 1,
                        .notify_delete = 1};
}

int pepcfg_equal(const pep_config_t *a, const pep_config_t *b)
{
    return a->access == b->access && a->max_items == b->max_items && a->persist == b->persist &&
           a->sendlast == b->sendlast && a->notify_retract == b->notify_retract &&
           a->notify_delete == b->notify_delete;
}

int pepcfg_parse_bool(const char *v, int *out)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_name(const char *v, const char *const *names, size_t n, int *out)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    return -1;
}

/* Sets one form field. 0, -1 for a bad value, -2 for a field this service does not know. */
int pepcfg_set_field(pep_config_t *c, const char *var, const char *v, long limit)
{
    int i;
    if (strcmp(var, "pubsub#access_model") == 0) {
        if (parse_name(v, access_names, 3, &i) < 0)
            return -1;
        c->access = (pep_access_t)i;
    } else if (strcmp(var, "pubsub#max_items") == 0) {
        if (strcmp(v, "max") == 0) {
            c->max_items = MAX_ITEMS_MAX;
        } else {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > limit)
                return -1;
            c->max_items = n;
        }
    } else if (strcmp(var, "pubsub#persist_items") == 0) {
        return pepcfg_parse_bool(v, &c->persist);
    } else if (strcmp(var, "pubsub#send_last_published_item") == 0) {
        if (parse_name(v, sendlast_names, 3, &i) < 0)
            return -1;
        c->sendlast = (pep_sendlast_t)i;
    } else if (strcmp(var, "pubsub#notify_retract") == 0) {
        return pepcfg_parse_bool(v, &c->notify_retract);
    } else if (strcmp(var, "pubsub#notify_delete") == 0) {
        return pepcfg_parse_bool(v, &c->notify_delete);
    } else if (strcmp(var, "pubsub#deliver_notifications") == 0 ||
               strcmp(var, "pubsub#deliver_payloads") == 0) {
        /* Always on here: only the value true is accepted. */
        int b;
        return pepcfg_parse_bool(v, &b) < 0 || !b ? -1 : 0;
    } else {
        return -2;
    }
    return 0;
}

void pepcfg_encode(const pep_config_t *c, buf_t *out)
{
    buf_printf(out, "access=%s max=%ld persist=%d sendlast=%s retract=%d delete=%d",
               access_names[c->access], c->max_items, c->persist, sendlast_names[c->sendlast],
               c->notify_retract, c->notify_delete);
}

/* Reads what pepcfg_encode wrote; what is missing or unreadable keeps its default. */
void pepcfg_decode(const char *s, pep_config_t *c)
{
    pepcfg_default(c);
    char tok[64];
    int i;
    while (*s) {
        size_t n = strcspn(s, " ");
        if (n && n < sizeof tok) {
            memcpy(tok, s, n);
            tok[n] = '\0';
            char *v = strchr(tok, '=');
            if (v) {
                *v++ = '\0';
                if (strcmp(tok, "access") == 0 && parse_name(v, access_names, 3, &i) == 0)
                    c->access = (pep_access_t)i;
                else if (strcmp(tok, "max") == 0)
                    c->max_items = strtol(v, NULL, 10) >= 1 ? strtol(v, NULL, 10) : MAX_ITEMS_MAX;
                else if (strcmp(tok, "persist") == 0)
                    pepcfg_parse_bool(v, &c->persist);
                else if (strcmp(tok, "sendlast") == 0 && parse_name(v, sendlast_names, 3, &i) == 0)
                    c->sendlast = (pep_sendlast_t)i;
                else if (strcmp(tok, "retract") == 0)
                    pepcfg_parse_bool(v, &c->notify_retract);
                else if (strcmp(tok, "delete") == 0)
                    pepcfg_parse_bool(v, &c->notify_delete);
            }
        }
        s += n;
        while (*s == ' ')
            s++;
    }
}

/* How many items the node keeps. In XEP-0060 a node with pubsub#persist_items false is
 * transient: its items are not persisted. XEP-0163 section 4.3.4 still has the service
 * send the last published item to sessions that come online, so such a node keeps exactly
 * its last item, for that and for items requests (which therefore see at most one). */
long pepcfg_keep(const pep_config_t *c, long limit)
{
    if (!c->persist)
        return 1;
    if (c->max_items == MAX_ITEMS_MAX || c->max_items > limit)
        return limit;
    return c->max_items;
}

/* Whether `rel` may read a node: NULL, or the error (XEP-0060 sections 6.5.9.x). */
const pep_err_t *pepcfg_refuses(const pep_config_t *c, pep_rel_t rel)
{
    static const pep_err_t presence = {"auth", "not-authorized", "presence-subscription-required"};
    static const pep_err_t whitelist = {"cancel", "not-allowed", "closed-node"};
    if (rel == REL_OWNER || c->access == ACCESS_OPEN)
        return NULL;
    if (c->access == ACCESS_PRESENCE)
        return rel == REL_SUBSCRIBED ? NULL : &presence;
    return &whitelist;
}

static xml_node_t *field_new(xml_node_t *x, const char *var, const char *type, const char *value)
{
    xml_node_t *f = xml_node_new_child(x, "field", NULL);
    xml_node_set_attr(f, "var", var);
    if (type)
        xml_node_set_attr(f, "type", type);
    if (value) {
        xml_node_t *v = xml_node_new_child(f, "value", NULL);
        xml_node_add_text(v, value, strlen(value));
    }
    return f;
}

static void field_options(xml_node_t *f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        xml_node_t *v = xml_node_new_child(xml_node_new_child(f, "option", NULL), "value", NULL);
        xml_node_add_text(v, names[i], strlen(names[i]));
    }
}

/* The pubsub#node_config form (XEP-0060 section 8.2) of a configuration. */
xml_node_t *pepcfg_form(const pep_config_t *c)
{
    xml_node_t *x = xml_node_new("x", NS_XDATA);
    xml_node_set_attr(x, "type", "form");
    field_new(x, "FORM_TYPE", "hidden", FORM_NODE_CONFIG);
    field_options(field_new(x, "pubsub#access_model", "list-single", access_names[c->access]),
                  access_names, 3);
    char n[32];
    if (c->max_items == MAX_ITEMS_MAX)
        snprintf(n, sizeof n, "max");
    else
        snprintf(n, sizeof n, "%ld", c->max_items);
    field_new(x, "pubsub#max_items", "text-single", n);
    field_new(x, "pubsub#persist_items", "boolean", c->persist ? "1" : "0");
    field_options(field_new(x, "pubsub#send_last_published_item", "list-single",
                            sendlast_names[c->sendlast]),
                  sendlast_names, 3);
    field_new(x, "pubsub#notify_retract", "boolean", c->notify_retract ? "1" : "0");
    field_new(x, "pubsub#notify_delete", "boolean", c->notify_delete ? "1" : "0");
    field_new(x, "pubsub#deliver_notifications", "boolean", "1");
    field_new(x, "pubsub#deliver_payloads", "boolean", "1");
    return x;
}

/* The first <value/> of a form field ("" when none; malloc'd). */
static char *field_value(const xml_node_t *f)
{
    const xml_node_t *v = xml_node_child(f, "value", NULL);
    return v ? xml_node_text(v) : xstrdup("");
}

/* The FORM_TYPE of a data form, or "" (malloc'd). */
char *pepcfg_form_type(const xml_node_t *x)
{
    for (const xml_node_t *f = x->children; f; f = f->next)
        if (f->name && strcmp(f->name, "field") == 0 && xml_node_attr(f, "var") &&
            strcmp(xml_node_attr(f, "var"), "FORM_TYPE") == 0)
            return field_value(f);
    return xstrdup("");
}

/* Applies a submitted node_config form. 0, or -1 when a value is not acceptable. Fields
 * this service does not know are left alone (XEP-0060 section 8.2.4: the owner submits
 * the form it was given). */
int pepcfg_apply_form(pep_config_t *c, const xml_node_t *x, long limit)
{
    for (const xml_node_t *f = x->children; f; f = f->next) {
        const char *var = f->name && strcmp(f->name, "field") == 0 ? xml_node_attr(f, "var") : NULL;
        if (!var || strcmp(var, "FORM_TYPE") == 0)
            continue;
        char *v = field_value(f);
        int rc = pepcfg_set_field(c, var, v, limit);
        free(v);
        if (rc == -1)
            return -1;
    }
    return 0;
}

/* XEP-0060 section 7.1.5 publish options: with `exists`, every field must name an option
 * this service knows and hold the node's value; for a new node they become its
 * configuration. 0, or -1: precondition not met. */
int pepcfg_preconditions(pep_config_t *c, int exists, const xml_node_t *x, long limit)
{
    for (const xml_node_t *f = x->children; f; f = f->next) {
        const char *var = f->name && strcmp(f->name, "field") == 0 ? xml_node_attr(f, "var") : NULL;
        if (!var || strcmp(var, "FORM_TYPE") == 0)
            continue;
        char *v = field_value(f);
        pep_config_t want = *c;
        int rc = pepcfg_set_field(&want, var, v, limit);
        free(v);
        if (rc < 0 || (exists && !pepcfg_equal(&want, c)))
            return -1;
        *c = want;
    }
    return 0;
}

