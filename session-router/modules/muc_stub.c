/* TEMPORARY stand-ins for muc_archive.c (helper "mucarch"), so mod_muc links and its tests
 * run until the real one is merged. Deleted then. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "muc.h"
#include "stanza.h"
#include "util.h"

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
