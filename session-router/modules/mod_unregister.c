/* XEP-0077 3.2: a user cancels its registration in-band (<remove/>), and the account is
 * deleted by the one procedure every path uses (core/account.h): tombstone, contacts told,
 * sessions ended, data removed. The rest of jabber:iq:register (the form, password
 * changes) belongs to the registration module; this handler passes on anything but
 * <remove/>. */
#include <stdlib.h>

#include "account.h"
#include "module.h"
#include "modules.h"
#include "stanza.h"
#include "util.h"

#define NS_REGISTER "jabber:iq:register"

/* The request, kept until the deletion is committed; its sender is found again by JID. */
typedef struct {
    char *full;
    xml_node_t *st;
} removal_t;

static void on_deleted(void *arg, account_status_t status)
{
    removal_t *r = arg;
    session_t *s = session_find_jid(r->full);
    if (status == ACCOUNT_COMMITTED) {
        /* 3.2: the result first; the stream ends right after it, with the other sessions
         * of the account. */
        if (s)
            session_reply_result(s, r->st, NULL);
        return;
    }
    if (s && status == ACCOUNT_FAILED)
        session_reply_error(s, r->st, "wait", "internal-server-error");
    else if (s && status == ACCOUNT_NOT_FOUND)
        session_reply_error(s, r->st, "cancel", "registration-required");
    xml_node_free(&r->st);
    free(r->full);
    free(r);
}

static mod_result_t unregister_iq(mod_iq_t *iq)
{
    const xml_node_t *remove = xml_node_child(iq->payload, "remove", NS_REGISTER);
    if (!remove)
        return MOD_PASS;
    /* 3.2, table of errors: <remove/> must be the only child of <query/>. */
    size_t children = 0;
    for (const xml_node_t *c = iq->payload->children; c; c = c->next)
        children += c->name != NULL;
    if (children != 1) {
        session_reply_error(iq->from, iq->st, "modify", "bad-request");
        return MOD_HANDLED;
    }
    removal_t *r = xcalloc(1, sizeof *r);
    r->full = xstrdup(iq->from->full);
    r->st = xml_node_copy(iq->st);
    account_delete(iq->from->user->bare, "not-authorized", "Account deleted", on_deleted, r);
    return MOD_HANDLED;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_REGISTER, "query", MOD_SET, MOD_AT_SERVER, unregister_iq},
    {0},
};

module_t mod_unregister = {
    .name = "unregister",
    .iq = iq_handlers,
};
