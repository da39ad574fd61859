/* XEP-0280 message carbons: resources that enabled carbons get a copy of the chat messages
 * their account sends ('sent') and receives on another resource ('received'). Which
 * messages qualify is core/rules.c (section 6). */
#include <string.h>

#include "module.h"
#include "modules.h"
#include "rules.h"
#include "stanza.h"

/* A session with carbons enabled has its slot set. */
#define ENABLED(s) (module_slot(s, mod_carbons) != NULL)

static mod_result_t carbons_iq(mod_iq_t *iq)
{
    module_slot(iq->from, mod_carbons) =
        strcmp(iq->payload->name, "enable") == 0 ? (void *)iq->from : NULL;
    session_reply_result(iq->from, iq->st, NULL);
    return MOD_HANDLED;
}

/* Sends `what` ("sent" or "received") copies to the user's carbon-enabled resources except
 * `skip` and those selected to receive the message itself. */
static void copy(user_t *u, const session_t *skip, const char *what, const char *payload,
                 size_t len)
{
    for (session_t *s = u->sessions; s; s = s->next) {
        if (!ENABLED(s) || s == skip || s->selected)
            continue;
        buf_t b = BUF_INIT;
        buf_append_str(&b, "<message from='");
        xml_escape(&b, u->bare, strlen(u->bare));
        buf_append_str(&b, "' to='");
        xml_escape(&b, s->full, strlen(s->full));
        buf_printf(&b, "' type='chat'><%s xmlns='" NS_CARBONS "'>"
                       "<forwarded xmlns='urn:xmpp:forward:0'>", what);
        /* The forwarded stanza keeps its own namespace (serialised for jabber:client, its
         * top element carries no xmlns of its own). */
        buf_append_str(&b, "<message xmlns='jabber:client'");
        buf_append(&b, payload + 8, len - 8);
        buf_printf(&b, "</forwarded></%s></message>", what);
        session_deliver_server(s, b.data, b.len, "a carbon copy");
        buf_free(&b);
    }
}

static int eligible(const hook_ev_t *ev)
{
    return rules_carbon_eligible(ev->msg->kind, ev->msg->stype,
                                 ev->payload, ev->len);
}

/* What the user sends (to a local address or another domain) goes to the user's other
 * resources; a stanza from another domain (no session) has no sender here to copy for. */
static mod_result_t on_stanza_out(hook_ev_t *ev)
{
    if (ev->session && eligible(ev))
        copy(ev->session->user, ev->session, "sent", ev->payload, ev->len);
    return MOD_PASS;
}

static mod_result_t on_deliver_full(hook_ev_t *ev)
{
    if (eligible(ev))
        copy(ev->target->user, ev->target, "received", ev->payload, ev->len);
    return MOD_PASS;
}

static mod_result_t on_deliver_bare(hook_ev_t *ev)
{
    if (eligible(ev))
        copy(ev->user, NULL, "received", ev->payload, ev->len);
    return MOD_PASS;
}

static mod_result_t on_resync(hook_ev_t *ev)
{
    module_slot(ev->session, mod_carbons) =
        ev->resync->flags & IPC_RESYNC_CARBONS ? (void *)ev->session : NULL;
    return MOD_PASS;
}

static mod_result_t on_describe(hook_ev_t *ev)
{
    if (module_slot(ev->session, mod_carbons))
        ev->desc->flags |= IPC_RESYNC_CARBONS;
    return MOD_PASS;
}

static const mod_iq_handler_t iq_handlers[] = {
    {NS_CARBONS, "enable", MOD_SET, MOD_AT_SERVER | MOD_AT_SELF, carbons_iq},
    {NS_CARBONS, "disable", MOD_SET, MOD_AT_SERVER | MOD_AT_SELF, carbons_iq},
    {0},
};

static const mod_feature_t features[] = {
    {NS_CARBONS, MOD_AT_SERVER, NULL},
    {0},
};

/* After blocking (which may stop the stanza), before delivery. */
static const mod_hook_t hooks[] = {
    {HOOK_STANZA_OUT, 50, on_stanza_out},
    {HOOK_DELIVER_FULL, 50, on_deliver_full},
    {HOOK_DELIVER_BARE, 50, on_deliver_bare},
    {HOOK_SESSION_RESYNC, 0, on_resync},
    {HOOK_SESSION_DESCRIBE, 0, on_describe},
    {0},
};

module_t mod_carbons = {
    .name = "carbons",
    .iq = iq_handlers,
    .features = features,
    .hooks = hooks,
    .wants_slot = 1,
};
