/* The module registry: IQ handlers found by (namespace, element) in a hash map, hooks
 * handed to hook.c, disco#info built from what the modules declared. */
#include "module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stanza.h"
#include "user.h"
#include "util.h"

/* One registered IQ handler, chained with the others for the same element. */
typedef struct iq_entry {
    const mod_iq_handler_t *h;
    struct iq_entry *next;
} iq_entry_t;

static module_t *const *modules;
static size_t nmodules;
static hmap_t *iq_handlers; /* "ns name" -> iq_entry_t list */

static size_t iq_key(char *out, size_t n, const char *ns, const char *name)
{
    int len = snprintf(out, n, "%s %s", ns, name);
    return len < 0 || (size_t)len >= n ? 0 : (size_t)len;
}

void module_declare_config(module_t *const *mods, size_t n)
{
    for (size_t m = 0; m < n; m++)
        if (mods[m]->config)
            config_register(mods[m]->config);
}

void module_register(module_t *const *mods, size_t n)
{
    modules = mods;
    nmodules = n;
    iq_handlers = hmap_new();
    int slots = 0;
    size_t order = 0;
    for (size_t m = 0; m < n; m++) {
        module_t *mod = mods[m];
        mod->slot = 0;
        if (mod->wants_slot) {
            if (slots == SESSION_SLOTS)
                log_fatal("modules: more than %d modules keep session state", SESSION_SLOTS);
            mod->slot = slots++;
        }
        for (const mod_iq_handler_t *h = mod->iq; h && h->ns; h++) {
            char key[512];
            size_t kl = iq_key(key, sizeof key, h->ns, h->name);
            if (!kl)
                log_fatal("modules: %s: namespace too long", mod->name);
            iq_entry_t *e = xcalloc(1, sizeof *e), *head = hmap_get(iq_handlers, key, kl);
            e->h = h;
            /* Appended: handlers of earlier modules are asked first. */
            if (!head) {
                hmap_put(iq_handlers, key, kl, e);
            } else {
                while (head->next)
                    head = head->next;
                head->next = e;
            }
        }
        for (const mod_hook_t *h = mod->hooks; h && h->fn; h++)
            hook_add(h, order++);
        if (mod->admin)
            admin_register(mod->admin);
    }
    hook_sort();
    for (size_t m = 0; m < n; m++)
        if (mods[m]->open)
            mods[m]->open();
    log_debug("modules: %zu registered", n);
}

void module_close_all(void)
{
    for (size_t m = nmodules; m-- > 0;)
        if (modules[m]->close)
            modules[m]->close();
    if (iq_handlers) {
        size_t pos = 0, kl;
        const void *k;
        void *v;
        while (hmap_next(iq_handlers, &pos, &k, &kl, &v)) {
            for (iq_entry_t *e = v, *next; e; e = next) {
                next = e->next;
                free(e);
            }
        }
        hmap_destroy(&iq_handlers);
    }
    hook_clear();
    nmodules = 0;
}

/* Offers the iq to the handlers registered for its element and one address kind. */
static mod_result_t dispatch_at(const iq_entry_t *list, mod_iq_t *iq, unsigned at)
{
    unsigned type = iq->set ? MOD_SET : MOD_GET;
    iq->at = at;
    for (const iq_entry_t *e = list; e; e = e->next)
        if ((e->h->at & at) && (e->h->types & type) && (iq->from || (e->h->at & MOD_REMOTE)) &&
            e->h->fn(iq) == MOD_HANDLED)
            return MOD_HANDLED;
    return MOD_PASS;
}

void module_dispatch_iq(session_t *from, xml_node_t *st, unsigned at, user_t *target)
{
    mod_iq_t iq = {.from = from, .st = st, .target = target};
    const char *type = xml_node_attr(st, "type");
    iq.set = type && strcmp(type, "set") == 0;
    iq.payload = xml_node_first_element(st);
    iq.account = target ? target->bare : from ? from->user->bare : NULL;
    iq.sender = from ? from->full : xml_node_attr(st, "from");
    if (!iq.sender)
        return;
    const iq_entry_t *list = NULL;
    char key[512];
    size_t kl;
    if (iq.payload && iq.payload->ns &&
        (kl = iq_key(key, sizeof key, iq.payload->ns, iq.payload->name)))
        list = hmap_get(iq_handlers, key, kl);
    /* RFC 6120 10.3.3: no 'to' means the server answers on the sender's behalf; features
     * of the server come first, then those of the account. */
    static const unsigned order[] = {MOD_AT_SERVER, MOD_AT_SELF, MOD_AT_ACCOUNT};
    for (size_t i = 0; list && i < sizeof order / sizeof order[0]; i++)
        if ((at & order[i]) && dispatch_at(list, &iq, order[i]) == MOD_HANDLED)
            return;
    /* RFC 6120 8.3.3.19: nothing here serves this request. */
    session_reply_error(from, st, "cancel", "service-unavailable");
}

/* A request waiting for a user's data; the sender is found again by full JID. */
typedef struct {
    char *full;
    xml_node_t *st;
    mod_iq_later_fn fn;
} iq_later_t;

static void iq_later_run(user_t *u, int ok, void *arg)
{
    iq_later_t *l = arg;
    if (!l->full) {
        l->fn(NULL, u, ok, l->st); /* from another domain: answered by address */
    } else {
        session_t *from = session_find_jid(l->full);
        if (from)
            l->fn(from, u, ok, l->st);
    }
    xml_node_free(&l->st);
    free(l->full);
    free(l);
}

void module_iq_with_user(const mod_iq_t *iq, const char *bare, mod_iq_later_fn fn)
{
    iq_later_t *l = xcalloc(1, sizeof *l);
    l->full = iq->from ? xstrdup(iq->from->full) : NULL;
    l->st = xml_node_copy(iq->st);
    l->fn = fn;
    user_with_roster(bare, iq_later_run, l);
}

void module_disco_info(xml_node_t *query, unsigned at)
{
    for (size_t m = 0; m < nmodules; m++) {
        for (const mod_identity_t *i = modules[m]->identities; i && i->category; i++) {
            if (!(i->at & at))
                continue;
            xml_node_t *id = xml_node_new_child(query, "identity", NULL);
            xml_node_set_attr(id, "category", i->category);
            xml_node_set_attr(id, "type", i->type);
            if (i->name)
                xml_node_set_attr(id, "name", i->name);
        }
    }
    /* XEP-0030 section 3.1: each feature once, whichever modules declared it. */
    hmap_t *seen = hmap_new();
    for (size_t m = 0; m < nmodules; m++) {
        for (const mod_feature_t *f = modules[m]->features; f && f->var; f++) {
            if (!(f->at & at) || (f->enabled && !f->enabled()) || hmap_sget(seen, f->var))
                continue;
            hmap_sput(seen, f->var, (void *)f->var);
            xml_node_set_attr(xml_node_new_child(query, "feature", NULL), "var", f->var);
        }
    }
    hmap_destroy(&seen);
    for (size_t m = 0; m < nmodules; m++)
        if (modules[m]->disco_extend)
            modules[m]->disco_extend(query, at);
}
