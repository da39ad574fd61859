"""XEP-0411 / XEP-0402 compat (session-router/modules/mod_bookmarks.c): bookmarks kept in
private XML storage (storage:bookmarks, XEP-0048 over XEP-0049) and in the PEP node
urn:xmpp:bookmarks:1 (XEP-0402) are one set, whichever kind of client changes them."""

from pep_helpers import (NS_PUBSUB, assert_pubsub_error, config_of, get_items, item_list,
                         publish, published_id, pubsub, wait_until)
from test_im_helpers import bare, online
from test_im_services import disco_info
from xmpp_client import dump, q

NS_PRIVATE = "jabber:iq:private"
NS_STORAGE = "storage:bookmarks"
NODE = "urn:xmpp:bookmarks:1"
BM2_OPTIONS = {"pubsub#persist_items": "true", "pubsub#max_items": "max",
               "pubsub#send_last_published_item": "never", "pubsub#access_model": "whitelist"}


def private_set(c, conferences):
    body = "".join("<conference jid='%s' name='%s' autojoin='%s'><nick>%s</nick></conference>"
                   % (jid, name, "true" if autojoin else "false", nick)
                   for jid, name, autojoin, nick in conferences)
    res = c.im_iq("set", "<query xmlns='%s'><storage xmlns='%s'>%s<url name='site' "
                  "url='https://example.org/'/></storage></query>" % (NS_PRIVATE, NS_STORAGE, body))
    assert res.get("type") == "result", dump(res)


def private_conferences(c):
    res = c.im_iq("get", "<query xmlns='%s'><storage xmlns='%s'/></query>" % (NS_PRIVATE, NS_STORAGE))
    assert res.get("type") == "result", dump(res)
    st = res.find("%s/%s" % (q(NS_PRIVATE, "query"), q(NS_STORAGE, "storage")))
    assert st is not None, dump(res)
    return {cf.get("jid"): (cf.get("name"), cf.get("autojoin"), cf.findtext(q(NS_STORAGE, "nick")))
            for cf in st.findall(q(NS_STORAGE, "conference"))}


def pep_bookmarks(c):
    res = get_items(c, NODE)
    if res.get("type") == "error":
        return {}
    out = {}
    for jid, conf in item_list(res):
        out[jid] = (conf.get("name"), conf.get("autojoin"), conf.findtext(q(NODE, "nick")))
    return out


def test_private_storage_is_published_to_the_pep_node(login, new_user):
    c = online(login, new_user("bmpriv"))
    private_set(c, [("room1@conference.example.org", "Room One", True, "alice"),
                    ("room2@conference.example.org", "Room Two", False, "al")])
    want = {"room1@conference.example.org": ("Room One", "true", "alice"),
            "room2@conference.example.org": ("Room Two", "false", "al")}
    assert wait_until(lambda: pep_bookmarks(c) == want, "both bookmarks on the node")
    cfg = config_of(c, NODE)
    assert (cfg["pubsub#access_model"], cfg["pubsub#max_items"],
            cfg["pubsub#send_last_published_item"]) == ("whitelist", "max", "never")
    # A bookmark gone from private storage is retracted from the node.
    private_set(c, [("room2@conference.example.org", "Room Two", False, "al")])
    assert wait_until(lambda: list(pep_bookmarks(c)) == ["room2@conference.example.org"],
                      "room1 retracted")
    # Private storage keeps what the legacy client stored (the <url/> too).
    res = c.im_iq("get", "<query xmlns='%s'><storage xmlns='%s'/></query>" % (NS_PRIVATE, NS_STORAGE))
    assert res.find(".//%s" % q(NS_STORAGE, "url")) is not None, dump(res)


def test_pep_bookmarks_are_copied_to_private_storage(login, new_user):
    u = new_user("bmpep")
    c = online(login, u)
    other = online(login, new_user("bmother"))
    res = publish(c, NODE, "<conference xmlns='%s' name='Chat' autojoin='true'><nick>bob</nick>"
                  "</conference>" % NODE, item_id="chat@muc.example.org", options=BM2_OPTIONS)
    published_id(res)
    assert wait_until(lambda: private_conferences(c).get("chat@muc.example.org")
                      == ("Chat", "true", "bob"), "the private copy")
    publish(c, NODE, "<conference xmlns='%s' name='Other' autojoin='false'/>" % NODE,
            item_id="other@muc.example.org", options=BM2_OPTIONS)
    assert wait_until(lambda: set(private_conferences(c)) ==
                      {"chat@muc.example.org", "other@muc.example.org"}, "two bookmarks")
    res = pubsub(c, "set", "<retract node='%s'><item id='chat@muc.example.org'/></retract>" % NODE)
    assert res.get("type") == "result", dump(res)
    assert wait_until(lambda: set(private_conferences(c)) == {"other@muc.example.org"},
                      "the retraction copied")
    # Nobody else reads them (whitelist).
    assert_pubsub_error(get_items(other, NODE, to=bare(c.jid)), "not-allowed", "closed-node")


def test_compat_is_advertised(login, new_user):
    c = online(login, new_user("bmdisco"))
    _, _, feats = disco_info(c, bare(c.jid))
    assert NODE + "#compat" in feats
    assert NS_PUBSUB + "#publish-options" in feats
