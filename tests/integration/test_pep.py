"""XEP-0163 Personal Eventing Protocol on the XEP-0060 subset served at every account's bare
JID (session-router/modules/mod_pep.c): publishing (with publish-options), items, retraction,
purge, deletion, configuration, access models, the errors XEP-0060 names, the limits,
notifications by interest (XEP-0115 +notify), the last item for a session that comes online,
and the account's deletion taking its nodes."""

import time

import pytest

from pep_helpers import (NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, NS_XDATA,
                         assert_pubsub_error, caps_online, caps_presence, config_of,
                         event_item_ids, get_items, is_event, item_ids, item_list,
                         options_form, publish, published_id, pubsub)
from test_account_delete import REMOVE, user_keys
from test_im_helpers import QUIET, WAIT, bare, befriend, configured_stack, drop_pending, online
from test_im_services import disco_info
from xmpp_client import NS_DISCO_INFO, dump, q

NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_TUNE = "http://jabber.org/protocol/tune"
NODE = NS_TUNE


def tune(title):
    return "<tune xmlns='%s'><title>%s</title></tune>" % (NS_TUNE, title)


def titles(res):
    return [p.findtext(q(NS_TUNE, "title")) for _, p in item_list(res)]


# ---- publishing and reading ----

def test_publish_creates_the_node_and_keeps_the_last_item(login, new_user):
    c = online(login, new_user("pub"))
    assert_pubsub_error(get_items(c, NODE), "item-not-found", etype="cancel")
    assert published_id(publish(c, NODE, tune("one"), item_id="current")) == "current"
    # XEP-0163 defaults: presence access, one item kept.
    assert published_id(publish(c, NODE, tune("two"))) != "current"
    res = get_items(c, NODE)
    assert titles(res) == ["two"]
    cfg = config_of(c, NODE)
    assert cfg["pubsub#access_model"] == "presence"
    assert cfg["pubsub#max_items"] == "1"
    # Asked with 'to' = the own bare JID, the answer is the same.
    assert titles(get_items(c, NODE, to=bare(c.jid))) == ["two"]


def test_items_all_by_id_and_most_recent(login, new_user):
    c = online(login, new_user("items"))
    for i in range(1, 5):
        publish(c, NODE, tune("t%d" % i), item_id="i%d" % i, options={"pubsub#max_items": "10"})
    assert item_ids(get_items(c, NODE)) == ["i1", "i2", "i3", "i4"]
    assert item_ids(get_items(c, NODE, max_items=2)) == ["i3", "i4"]
    assert item_ids(get_items(c, NODE, ids=["i2", "nope", "i4"])) == ["i2", "i4"]
    # Publishing an existing id replaces the item and makes it the newest.
    publish(c, NODE, tune("again"), item_id="i1", options={"pubsub#max_items": "10"})
    assert item_ids(get_items(c, NODE)) == ["i2", "i3", "i4", "i1"]
    assert titles(get_items(c, NODE, ids=["i1"])) == ["again"]
    assert_pubsub_error(get_items(c, NODE, max_items="zero"), "bad-request")


def test_max_items_trims_the_oldest(login, new_user):
    c = online(login, new_user("trim"))
    for i in range(5):
        publish(c, NODE, tune("t%d" % i), item_id="i%d" % i, options={"pubsub#max_items": "3"})
    assert item_ids(get_items(c, NODE)) == ["i2", "i3", "i4"]


def test_retract(login, new_user):
    c = online(login, new_user("retract"))
    for i in range(3):
        publish(c, NODE, tune("t%d" % i), item_id="i%d" % i, options={"pubsub#max_items": "5"})
    res = pubsub(c, "set", "<retract node='%s'><item id='i1'/></retract>" % NODE)
    assert res.get("type") == "result", dump(res)
    assert item_ids(get_items(c, NODE)) == ["i0", "i2"]
    assert_pubsub_error(pubsub(c, "set", "<retract node='%s'><item id='i1'/></retract>" % NODE),
                        "item-not-found")
    assert_pubsub_error(pubsub(c, "set", "<retract node='%s'/>" % NODE), "bad-request",
                        "item-required")
    assert_pubsub_error(pubsub(c, "set", "<retract node='urn:example:none'><item id='x'/></retract>"),
                        "item-not-found")


def test_purge_and_delete(login, new_user):
    c = online(login, new_user("purge"))
    for i in range(3):
        publish(c, NODE, tune("t%d" % i), options={"pubsub#max_items": "5"})
    res = pubsub(c, "set", "<purge node='%s'/>" % NODE, owner=True)
    assert res.get("type") == "result", dump(res)
    assert item_ids(get_items(c, NODE)) == []
    res = pubsub(c, "set", "<delete node='%s'/>" % NODE, owner=True)
    assert res.get("type") == "result", dump(res)
    assert_pubsub_error(get_items(c, NODE), "item-not-found")
    assert_pubsub_error(pubsub(c, "set", "<delete node='%s'/>" % NODE, owner=True), "item-not-found")
    assert_pubsub_error(pubsub(c, "set", "<purge node='%s'/>" % NODE, owner=True), "item-not-found")
    # A deleted node comes back with the defaults on the next publish.
    publish(c, NODE, tune("new"), options={"pubsub#max_items": "5"})
    assert config_of(c, NODE)["pubsub#max_items"] == "5"


def test_configure_and_default(login, new_user):
    c = online(login, new_user("conf"))
    res = pubsub(c, "get", "<default/>", owner=True)
    x = res.find("%s/%s/%s" % (q(NS_PUBSUB_OWNER, "pubsub"), q(NS_PUBSUB_OWNER, "default"),
                               q(NS_XDATA, "x")))
    assert x is not None, dump(res)
    form = {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in x.findall(q(NS_XDATA, "field"))}
    assert form["FORM_TYPE"] == NS_PUBSUB + "#node_config"
    assert form["pubsub#access_model"] == "presence"
    for i in range(4):
        publish(c, NODE, tune("t%d" % i), item_id="i%d" % i, options={"pubsub#max_items": "max"})
    res = pubsub(c, "set", "<configure node='%s'>%s</configure>"
                 % (NODE, options_form(NS_PUBSUB + "#node_config",
                                       {"pubsub#max_items": "2", "pubsub#access_model": "open",
                                        "pubsub#send_last_published_item": "never"})), owner=True)
    assert res.get("type") == "result", dump(res)
    cfg = config_of(c, NODE)
    assert (cfg["pubsub#max_items"], cfg["pubsub#access_model"],
            cfg["pubsub#send_last_published_item"]) == ("2", "open", "never")
    # Fewer items allowed: the oldest went.
    assert item_ids(get_items(c, NODE)) == ["i2", "i3"]
    bad = pubsub(c, "set", "<configure node='%s'>%s</configure>"
                 % (NODE, options_form(NS_PUBSUB + "#node_config",
                                       {"pubsub#access_model": "authorize"})), owner=True)
    assert_pubsub_error(bad, "not-acceptable")
    assert config_of(c, NODE)["pubsub#access_model"] == "open"
    assert_pubsub_error(pubsub(c, "get", "<configure node='urn:example:none'/>", owner=True),
                        "item-not-found")
    # Explicit creation (XEP-0060 8.1): a taken name is a conflict.
    res = pubsub(c, "set", "<create node='urn:example:made'/>")
    assert res.get("type") == "result", dump(res)
    assert_pubsub_error(pubsub(c, "set", "<create node='urn:example:made'/>"), "conflict")
    assert item_ids(get_items(c, "urn:example:made")) == []


# ---- publish-options (XEP-0060 7.1.5) ----

def test_publish_options_create_and_check(login, new_user):
    c = online(login, new_user("popts"))
    opts = {"pubsub#access_model": "open", "pubsub#max_items": "max",
            "pubsub#persist_items": "true", "pubsub#send_last_published_item": "never"}
    published_id(publish(c, NODE, tune("a"), options=opts))
    cfg = config_of(c, NODE)
    assert (cfg["pubsub#access_model"], cfg["pubsub#max_items"],
            cfg["pubsub#send_last_published_item"]) == ("open", "max", "never")
    # The same options again: they hold, so the publish goes through.
    published_id(publish(c, NODE, tune("b"), options=opts))
    # A value that differs from the node's: conflict + precondition-not-met, nothing stored.
    res = publish(c, NODE, tune("c"), options={"pubsub#access_model": "whitelist"})
    assert_pubsub_error(res, "conflict", "precondition-not-met", etype="cancel")
    res = publish(c, NODE, tune("c"), options={"pubsub#notify_retract": "false"})
    assert_pubsub_error(res, "conflict", "precondition-not-met")
    # An option this service does not know.
    res = publish(c, NODE, tune("c"), options={"pubsub#x-unknown": "1"})
    assert_pubsub_error(res, "conflict", "precondition-not-met")
    assert titles(get_items(c, NODE)) == ["a", "b"]
    # A new node with an unknown option is not created either.
    res = publish(c, "urn:example:new", tune("x"), options={"pubsub#x-unknown": "1"})
    assert_pubsub_error(res, "conflict", "precondition-not-met")
    assert_pubsub_error(get_items(c, "urn:example:new"), "item-not-found")
    # A form of another FORM_TYPE is a bad request.
    res = pubsub(c, "set", "<publish node='%s'><item>%s</item></publish><publish-options>%s"
                 "</publish-options>" % (NODE, tune("y"), options_form("urn:example:form", {})))
    assert_pubsub_error(res, "bad-request", "invalid-options")


# ---- errors ----

def test_request_errors(login, new_user):
    ua, ub = new_user("erra"), new_user("errb")
    a = online(login, ua)
    b = online(login, ub)
    assert_pubsub_error(pubsub(a, "set", "<publish><item>%s</item></publish>" % tune("x")),
                        "bad-request", "nodeid-required", etype="modify")
    assert_pubsub_error(pubsub(a, "set", "<publish node='%s'/>" % NODE), "bad-request",
                        "item-required")
    assert_pubsub_error(pubsub(a, "set", "<publish node='%s'><item>%s%s</item></publish>"
                               % (NODE, tune("x"), tune("y"))), "bad-request", "invalid-payload")
    assert_pubsub_error(pubsub(a, "set", "<publish node='%s'><item/></publish>" % NODE),
                        "bad-request", "payload-required")
    big = tune("x" * 70000)
    assert_pubsub_error(publish(a, NODE, big), "not-acceptable", "payload-too-big",
                        etype="modify")
    assert_pubsub_error(get_items(a, NODE), "item-not-found")
    # Only the owner publishes or manages an account's nodes.
    publish(a, NODE, tune("mine"), options={"pubsub#access_model": "open"})
    assert_pubsub_error(publish(b, NODE, tune("theirs"), to=bare(a.jid)), "forbidden", etype="auth")
    assert_pubsub_error(pubsub(b, "set", "<purge node='%s'/>" % NODE, to=bare(a.jid), owner=True),
                        "forbidden")
    # Explicit subscriptions are not done: interest goes through entity capabilities.
    res = pubsub(b, "set", "<subscribe node='%s' jid='%s'/>" % (NODE, b.jid), to=bare(a.jid))
    assert_pubsub_error(res, "feature-not-implemented", "unsupported", etype="cancel",
                        feature="subscribe")
    res = pubsub(a, "get", "<affiliations node='%s'/>" % NODE, owner=True)
    assert_pubsub_error(res, "feature-not-implemented", "unsupported",
                        feature="modify-affiliations")


def test_access_models(login, new_user):
    ua, ub = new_user("owner"), new_user("other")
    a = online(login, ua)
    b = online(login, ub)
    owner = bare(a.jid)
    publish(a, "urn:example:presence", tune("p"))
    publish(a, "urn:example:open", tune("o"), options={"pubsub#access_model": "open"})
    publish(a, "urn:example:white", tune("w"), options={"pubsub#access_model": "whitelist"})
    # Not a contact: presence needs a subscription, whitelist is closed, open is open.
    assert_pubsub_error(get_items(b, "urn:example:presence", to=owner), "not-authorized",
                        "presence-subscription-required", etype="auth")
    assert_pubsub_error(get_items(b, "urn:example:white", to=owner), "not-allowed",
                        "closed-node", etype="cancel")
    assert titles(get_items(b, "urn:example:open", to=owner)) == ["o"]

    def listed(c):
        res = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=owner)
        assert res.get("type") == "result", dump(res)
        return sorted(i.get("node") for i in res.find(q(NS_DISCO_ITEMS, "query")))

    assert listed(b) == ["urn:example:open"]
    assert listed(a) == ["urn:example:open", "urn:example:presence", "urn:example:white"]
    befriend(a, b)
    drop_pending(a, b)
    assert titles(get_items(b, "urn:example:presence", to=owner)) == ["p"]
    assert_pubsub_error(get_items(b, "urn:example:white", to=owner), "not-allowed", "closed-node")
    assert listed(b) == ["urn:example:open", "urn:example:presence"]


def test_disco_on_the_account(login, new_user):
    ua, ub = new_user("disco"), new_user("disco2")
    a = online(login, ua)
    b = online(login, ub)
    for c in (a, b):
        _, ids, feats = disco_info(c, bare(a.jid))
        assert ("pubsub", "pep") in ids
        for f in ("publish", "publish-options", "retract-items", "retrieve-items",
                  "delete-nodes", "purge-nodes", "config-node", "access-presence",
                  "access-open", "access-whitelist", "auto-create", "auto-subscribe",
                  "last-published", "persistent-items", "multi-items"):
            assert "%s#%s" % (NS_PUBSUB, f) in feats, f


def test_configured_limits(stack, login):
    with configured_stack(stack, pep_max_nodes=2, pep_max_items=3, pep_max_item_size=1024) as ps:
        c = online(login, ps.new_user("lim"), port=ps.frontend.port)
        published_id(publish(c, "urn:example:one", tune("1"), options={"pubsub#max_items": "max"}))
        published_id(publish(c, "urn:example:two", tune("2")))
        assert_pubsub_error(publish(c, "urn:example:three", tune("3")), "policy-violation",
                            etype="cancel")
        # 'max' means pep_max_items; more than that is a precondition that cannot hold.
        for i in range(5):
            published_id(publish(c, "urn:example:one", tune("t%d" % i), item_id="i%d" % i,
                                 options={"pubsub#max_items": "max"}))
        assert item_ids(get_items(c, "urn:example:one")) == ["i2", "i3", "i4"]
        assert_pubsub_error(publish(c, "urn:example:two", tune("x"),
                                    options={"pubsub#max_items": "4"}),
                            "conflict", "precondition-not-met")
        assert_pubsub_error(publish(c, "urn:example:one", tune("y" * 1100)), "not-acceptable",
                            "payload-too-big")
        c.close()


# ---- account deletion ----

def pep_keys(stack, jid):
    """The user's PEP keys (nodes, items, order)."""
    return [k for k in user_keys(stack, jid)
            if k.split("{")[0].endswith(("pep:", "pepitems:", "peporder:"))]


def test_account_deletion_removes_the_nodes(stack, login, new_user):
    if getattr(stack, "remote", False):
        pytest.skip("reads Redis")
    u = new_user("pepdel")
    c = online(login, u)
    publish(c, NODE, tune("x"))
    publish(c, "urn:example:other", tune("y"), options={"pubsub#max_items": "5"})
    assert len(pep_keys(stack, u.jid)) == 3, user_keys(stack, u.jid)
    res = c.im_iq("set", REMOVE)
    assert res.get("type") == "result", dump(res)
    deadline = time.monotonic() + WAIT
    while pep_keys(stack, u.jid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pep_keys(stack, u.jid) == []


# ---- notifications (XEP-0163 section 4) and the last item ----

def test_notification_goes_to_interested_sessions_of_contacts(login, new_user):
    ua, ub, uc = new_user("nota"), new_user("notb"), new_user("notc")
    a = caps_online(login, ua, "a1", notify=[NODE])
    b1 = caps_online(login, ub, "b1", notify=[NODE])
    b2 = caps_online(login, ub, "b2", notify=["urn:example:other"])
    c = caps_online(login, uc, "c1", notify=[NODE])
    befriend(a, b1)
    drop_pending(a, b1, b2, c)
    owner = bare(a.jid)
    published_id(publish(a, NODE, tune("hello"), item_id="n1"))
    for who in (a, b1):
        msg = who.im_wait(is_event(owner, NODE), WAIT, "the notification")
        assert msg.get("type") == "headline" and msg.get("to") == who.jid, dump(msg)
        assert event_item_ids(msg) == ["n1"]
        item = msg.find("%s/%s/%s" % (q(NS_PUBSUB_EVENT, "event"), q(NS_PUBSUB_EVENT, "items"),
                                      q(NS_PUBSUB_EVENT, "item")))
        assert item.findtext("%s/%s" % (q(NS_TUNE, "tune"), q(NS_TUNE, "title"))) == "hello"
    # b2 did not ask for this node; c is no contact.
    b2.im_expect_none(is_event(owner, NODE), QUIET, "a notification")
    c.im_expect_none(is_event(owner, NODE), QUIET, "a notification")
    # Whitelist: the owner only.
    publish(a, "urn:example:white", tune("w"), options={"pubsub#access_model": "whitelist"})
    caps_presence(b1, notify=[NODE, "urn:example:white"])
    b1.im_expect_none(is_event(owner, "urn:example:white"), QUIET, "a whitelist notification")


def test_retract_delete_and_purge_notifications(login, new_user):
    ua, ub = new_user("reta"), new_user("retb")
    a = caps_online(login, ua, "a1", notify=[NODE])
    b = caps_online(login, ub, "b1", notify=[NODE])
    befriend(a, b)
    drop_pending(a, b)
    owner = bare(a.jid)
    publish(a, NODE, tune("x"), item_id="r1", options={"pubsub#max_items": "5"})
    b.im_wait(is_event(owner, NODE), WAIT, "the publish notification")
    res = pubsub(a, "set", "<retract node='%s' notify='true'><item id='r1'/></retract>" % NODE)
    assert res.get("type") == "result", dump(res)
    msg = b.im_wait(is_event(owner, NODE), WAIT, "the retract notification")
    assert event_item_ids(msg, "retract") == ["r1"], dump(msg)
    pubsub(a, "set", "<purge node='%s'/>" % NODE, owner=True)
    b.im_wait(is_event(owner, NODE, "purge"), WAIT, "the purge notification")
    pubsub(a, "set", "<delete node='%s'/>" % NODE, owner=True)
    b.im_wait(is_event(owner, NODE, "delete"), WAIT, "the delete notification")


def test_last_item_when_a_session_comes_online(login, new_user):
    ua, ub = new_user("lasta"), new_user("lastb")
    a = online(login, ua, "a1")
    b = online(login, ub, "b1")
    befriend(a, b)
    drop_pending(a, b)
    owner = bare(a.jid)
    publish(a, NODE, tune("first"), item_id="x1")
    publish(a, NODE, tune("latest"), item_id="x2")
    publish(a, "urn:example:quiet", tune("q"), options={"pubsub#send_last_published_item": "never"})
    publish(a, "urn:example:white", tune("w"), options={"pubsub#access_model": "whitelist"})
    interest = [NODE, "urn:example:quiet", "urn:example:white"]
    b2 = caps_online(login, ub, "b2", notify=interest)
    msg = b2.im_wait(is_event(owner, NODE), WAIT, "the last item")
    assert event_item_ids(msg) == ["x2"]
    b2.im_expect_none(lambda e: is_event(owner, "urn:example:quiet")(e)
                      or is_event(owner, "urn:example:white")(e), QUIET, "another last item")
    # The owner's own new session gets its whitelist node's last item too.
    a2 = caps_online(login, ua, "a2", notify=["urn:example:white"])
    a2.im_wait(is_event(owner, "urn:example:white"), WAIT, "the owner's last item")
    # A session that is not interested gets nothing.
    b3 = caps_online(login, ub, "b3", notify=[])
    b3.im_expect_none(is_event(owner, NODE), QUIET, "a last item")


# ---- a real client library: slixmpp's XEP-0115, XEP-0163 and XEP-0118 plugins ----

def test_slixmpp_tune_reaches_a_contact(stack, login, new_user):
    pytest.importorskip("slixmpp")
    import asyncio

    from test_im_interop_slixmpp import STEP, Client, close_all, run
    ua, ub = new_user("sxa"), new_user("sxb")
    a, b = online(login, ua, "raw"), online(login, ub, "raw")
    befriend(a, b)
    a.close()
    b.close()

    def client(user, resource):
        c = Client("%s/%s" % (user.jid, resource), user.password, stack.cafile)
        for p in ("xep_0030", "xep_0115", "xep_0163", "xep_0118"):
            c.register_plugin(p)
        c.add_event_handler("user_tune_publish", c._recorder("tune"))
        c.connect(("127.0.0.1", stack.port), force_starttls=True, disable_starttls=False)
        return c

    async def scenario():
        ca, cb = client(ua, "slixa"), client(ub, "slixb")
        try:
            await asyncio.gather(ca.started, cb.started)
            # slixmpp announces tune+notify through its entity capabilities (XEP-0115),
            # answers the server's disco#info query, and gets the contact's tune.
            await ca["xep_0118"].publish_tune(artist="Someone", title="A song", timeout=STEP)
            msg = await cb.wait("tune", lambda m: m["from"].bare == ua.jid, what="the tune")
            tune = msg["pubsub_event"]["items"]["item"]["tune"]
            assert tune["title"] == "A song" and tune["artist"] == "Someone", str(msg)
        finally:
            await close_all([ca, cb])

    run(scenario())


def test_node_limit_holds_for_a_burst_of_publishes(stack, login):
    """pep_max_nodes holds when a client sends many publishes to new nodes at once (the
    node count is checked where the node is created, not only in an earlier lookup that
    every request of the burst passes before any of them has created its node)."""
    with configured_stack(stack, pep_max_nodes=2) as ps:
        c = online(login, ps.new_user("limb"), port=ps.frontend.port)
        ids = ["burst%d" % i for i in range(30)]
        c.send("".join(
            "<iq type='set' id='%s'><pubsub xmlns='%s'><publish node='urn:example:n%d'>"
            "<item>%s</item></publish></pubsub></iq>" % (iid, NS_PUBSUB, i, tune(str(i)))
            for i, iid in enumerate(ids)))
        got = {}
        for iid in ids:
            got[iid] = c.im_wait(lambda e, iid=iid: e.get("id") == iid, WAIT, iid).get("type")
        ok = [i for i, t in got.items() if t == "result"]
        assert len(ok) <= 2, "%d nodes created past pep_max_nodes=2" % len(ok)
        c.close()


def test_no_last_item_from_an_owner_who_blocks_the_contact(login, new_user):
    """XEP-0191: an owner who blocks a contact sends it nothing, so a session of the
    contact that comes online does not get the owner's last items (live notifications
    already skip blocked contacts)."""
    ua, ub = new_user("blka"), new_user("blkb")
    a = online(login, ua, "a1")
    b = online(login, ub, "b1")
    befriend(a, b)
    drop_pending(a, b)
    owner = bare(a.jid)
    published_id(publish(a, NODE, tune("secret"), item_id="s1"))
    res = a.im_iq("set", "<block xmlns='urn:xmpp:blocking'><item jid='%s'/></block>" % bare(b.jid))
    assert res.get("type") == "result", dump(res)
    drop_pending(a, b)
    b2 = caps_online(login, ub, "b2", notify=[NODE])
    b2.im_expect_none(is_event(owner, NODE), QUIET, "the blocking owner's last item")
    # An unblocked contact still gets it.
    res = a.im_iq("set", "<unblock xmlns='urn:xmpp:blocking'><item jid='%s'/></unblock>"
                  % bare(b.jid))
    assert res.get("type") == "result", dump(res)
    b3 = caps_online(login, ub, "b3", notify=[NODE])
    b3.im_wait(is_event(owner, NODE), WAIT, "the last item once unblocked")


def test_a_publish_racing_account_deletion_leaves_no_node(stack, login, new_user):
    """A publish the router reads right after the account's removal request (its node
    lookup answered after the deletion began) does not bring the account's PEP keys back
    once they are deleted."""
    if getattr(stack, "remote", False):
        pytest.skip("reads Redis")
    u = new_user("pepraced")
    c = online(login, u)
    publish(c, NODE, tune("before"))
    c.send("<iq type='set' id='rm1'>%s</iq>"
           "<iq type='set' id='pub1'><pubsub xmlns='%s'><publish node='urn:example:late'>"
           "<item>%s</item></publish></pubsub></iq>" % (REMOVE, NS_PUBSUB, tune("late")))
    res = c.im_wait(lambda e: e.get("id") == "rm1", WAIT, "the removal's answer")
    assert res.get("type") == "result", dump(res)
    # A round trip through the router's Redis connection: whatever it queued before ran.
    other = online(login, new_user("pepwitness"))
    get_items(other, NODE)
    assert pep_keys(stack, u.jid) == [], user_keys(stack, u.jid)
