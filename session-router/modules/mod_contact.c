/* XEP-0157 contact addresses: the contact_addresses key (format in core/contactaddr.h)
 * published in the server's disco#info as an XEP-0128 extended form of FORM_TYPE
 * http://jabber.org/network/serverinfo (XEP-0157 section 3). Nothing is added when the
 * key is empty. */
#include "contactaddr.h"
#include "log.h"
#include "module.h"
#include "modules.h"

static contactaddr_t contacts;

static void contact_open(void)
{
    char err[512];
    if (contactaddr_parse(config_str("contact_addresses"), &contacts, err, sizeof err) < 0)
        log_fatal("config: key 'contact_addresses': %s", err);
    if (contactaddr_count(&contacts))
        log_info("contact: %zu contact addresses published (XEP-0157)",
                 contactaddr_count(&contacts));
}

static void contact_close(void)
{
    contactaddr_free(&contacts);
}

/* Only the server's own disco#info: XEP-0157 section 3 names the bare domain. */
static void contact_disco_extend(xml_node_t *query, unsigned at)
{
    if (!(at & MOD_AT_SERVER))
        return;
    xml_node_t *form = contactaddr_form(&contacts);
    if (form)
        xml_node_add_child(query, form);
}

static const config_key_t config[] = {
    CONFIG_STR("contact_addresses", "", "the server's contact addresses published in its disco#info (XEP-0157): KIND=URI[,URI...][;KIND=...], KIND abuse, admin, feedback, sales, security, status or support; empty: none"),
    CONFIG_END,
};

module_t mod_contact = {
    .name = "contact",
    .config = config,
    .open = contact_open,
    .close = contact_close,
    .disco_extend = contact_disco_extend,
};
