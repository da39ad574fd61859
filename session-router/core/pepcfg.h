/* pepcfg: a PEP node's configuration (XEP-0060 section 8.2, the options XEP-0163 nodes use)
 * as pure functions, so that unit tests cover them without Redis or sockets: defaults,
 * the form fields, publish-options preconditions (XEP-0060 section 7.1.5), the access
 * models (section 4.5) and the stored text form. mod_pep does the I/O. */
#ifndef ROUTER_PEPCFG_H
#define ROUTER_PEPCFG_H

#include "buf.h"
#include "xml.h"

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_XDATA "jabber:x:data"
#define FORM_NODE_CONFIG NS_PUBSUB "#node_config"
#define FORM_PUBLISH_OPTIONS NS_PUBSUB "#publish-options"

/* pep_config_t.max_items for 'max': as many as the server's limit allows. */
#define MAX_ITEMS_MAX (-1L)

typedef enum { ACCESS_OPEN, ACCESS_PRESENCE, ACCESS_WHITELIST } pep_access_t;
typedef enum { SENDLAST_NEVER, SENDLAST_ON_SUB, SENDLAST_ON_SUB_AND_PRESENCE } pep_sendlast_t;

/* A node's configuration: only what the service acts on. */
typedef struct {
    pep_access_t access;
    long max_items; /* >= 1, or MAX_ITEMS_MAX */
    int persist;    /* pubsub#persist_items */
    pep_sendlast_t sendlast;
    int notify_retract, notify_delete;
} pep_config_t;

/* Who asks, as the access models see it: the owner, a contact with a subscription to the
 * owner's presence, anyone else. */
typedef enum { REL_OWNER, REL_SUBSCRIBED, REL_OTHER } pep_rel_t;

/* An error (type, RFC 6120 condition, pubsub#errors condition). */
typedef struct {
    const char *etype, *cond, *app;
} pep_err_t;

/* XEP-0163 section 5 defaults: presence access, one item kept and sent. */
void pepcfg_default(pep_config_t *c);
int pepcfg_equal(const pep_config_t *a, const pep_config_t *b);
/* "1"/"true" and "0"/"false" (XEP-0004 booleans): 0, or -1 for anything else. */
int pepcfg_parse_bool(const char *v, int *out);
/* Sets one form field; `limit` bounds pubsub#max_items. 0, -1 for a bad value, -2 for a
 * field this service does not know. */
int pepcfg_set_field(pep_config_t *c, const char *var, const char *v, long limit);
/* The stored text form ("access=presence max=1 ..."), and back: what is missing or
 * unreadable keeps its default. */
void pepcfg_encode(const pep_config_t *c, buf_t *out);
void pepcfg_decode(const char *s, pep_config_t *c);
/* How many items the node keeps under the server's limit. */
long pepcfg_keep(const pep_config_t *c, long limit);
/* NULL when `rel` may read the node, else the error XEP-0060 names (static). */
const pep_err_t *pepcfg_refuses(const pep_config_t *c, pep_rel_t rel);
/* The pubsub#node_config form (type 'form') of a configuration (new tree). */
xml_node_t *pepcfg_form(const pep_config_t *c);
/* The FORM_TYPE of a data form, or "" (malloc'd). */
char *pepcfg_form_type(const xml_node_t *x);
/* Applies a submitted node_config form: 0, or -1 when a value is not acceptable (unknown
 * fields are left alone). */
int pepcfg_apply_form(pep_config_t *c, const xml_node_t *x, long limit);
/* Publish options: with `exists`, every field must be known and hold the node's value; for
 * a new node they become its configuration. 0, or -1: precondition not met. */
int pepcfg_preconditions(pep_config_t *c, int exists, const xml_node_t *x, long limit);

#endif
