"""Server iq services: XEP-0030 disco (server and account), XEP-0092 version (and its
hiding), XEP-0199 ping, XEP-0054 vcard-temp, XEP-0049 private storage, XEP-0191 blocking,
XEP-0280 carbons; unknown iq -> service-unavailable (RFC 6120 8.3.3.19, RFC 6121 8.5)."""

import base64
import os

import pytest

from test_im_helpers import (QUIET, WAIT, assert_error, bare, befriend, configured_stack,
                             drop_pending, online)
from xmpp_client import IQ_TAG, MESSAGE_TAG, PRESENCE_TAG, dump, new_id, q

NS = "{jabber:client}"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_PING = "urn:xmpp:ping"
NS_VERSION = "jabber:iq:version"
NS_VCARD = "vcard-temp"
NS_PRIVATE = "jabber:iq:private"
NS_BLOCKING = "urn:xmpp:blocking"
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_HINTS = "urn:xmpp:hints"

# Features the server must list because it implements them (issue "IM semantics", 6).
REQUIRED_SERVER_FEATURES = {NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_VERSION, NS_VCARD,
                            NS_PRIVATE, NS_BLOCKING, NS_CARBONS, "msgoffline"}

# For each feature a request that must succeed when the feature is advertised.
PROBES = {
    NS_DISCO_INFO: ("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, "localhost"),
    NS_DISCO_ITEMS: ("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, "localhost"),
    NS_PING: ("get", "<ping xmlns='%s'/>" % NS_PING, "localhost"),
    NS_VERSION: ("get", "<query xmlns='%s'/>" % NS_VERSION, "localhost"),
    NS_VCARD: ("get", "<vCard xmlns='%s'/>" % NS_VCARD, None),
    NS_PRIVATE: ("get", "<query xmlns='%s'><probe xmlns='urn:example:probe'/></query>" % NS_PRIVATE, None),
    NS_BLOCKING: ("get", "<blocklist xmlns='%s'/>" % NS_BLOCKING, None),
    NS_CARBONS: ("set", "<enable xmlns='%s'/>" % NS_CARBONS, None),
    "jabber:iq:roster": ("get", "<query xmlns='jabber:iq:roster'/>", None),
}


def disco_info(c, to):
    res = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to)
    assert res.get("type") == "result", dump(res)
    query = res.find(q(NS_DISCO_INFO, "query"))
    assert query is not None, dump(res)
    ids = [(i.get("category"), i.get("type")) for i in query.findall(q(NS_DISCO_INFO, "identity"))]
    feats = [f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))]
    return res, ids, feats


def check_truthful(c, feats):
    for f in feats:
        if f in PROBES:
            type_, payload, to = PROBES[f]
            res = c.im_iq(type_, payload, to=to)
            if f == NS_VCARD and res.get("type") == "error":
                assert_error(res, "item-not-found")     # XEP-0054: no vCard stored yet
                continue
            assert res.get("type") == "result", \
                "feature %s is advertised but its request fails: %s" % (f, dump(res))


# ------------------------------------------------------------------ XEP-0030
def test_server_disco_info_lists_features_truthfully(login, new_user):
    c = online(login, new_user(), "d", roster=False)
    res, ids, feats = disco_info(c, "localhost")
    assert res.get("from") == "localhost", dump(res)
    assert ("server", "im") in ids, dump(res)
    assert len(feats) == len(set(feats)), "duplicate features: %s" % feats
    missing = REQUIRED_SERVER_FEATURES - set(feats)
    assert not missing, "server disco#info lacks %s: %s" % (sorted(missing), dump(res))
    check_truthful(c, feats)


def test_server_disco_items(login, new_user):
    c = online(login, new_user(), "d", roster=False)
    res = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to="localhost")
    assert res.get("type") == "result" and res.find(q(NS_DISCO_ITEMS, "query")) is not None, dump(res)


def test_account_disco_info(login, new_user):
    # XEP-0030 / disco registry: the server answers for the account's bare JID with an
    # account identity; what it lists works.
    u = new_user()
    c = online(login, u, "d", roster=False)
    res, ids, feats = disco_info(c, u.jid)
    assert res.get("from") == u.jid, dump(res)
    assert ("account", "registered") in ids, dump(res)
    assert NS_DISCO_INFO in feats, dump(res)
    for f in feats:
        if f == NS_VCARD:
            r = c.im_iq("get", "<vCard xmlns='vcard-temp'/>", to=u.jid)
            if r.get("type") != "result":
                assert_error(r, "item-not-found")
        elif f == NS_PING:
            assert c.im_iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=u.jid).get("type") == "result"
    r = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=u.jid)
    assert r.get("type") == "result", dump(r)


def test_disco_info_with_unknown_node_is_item_not_found(login, new_user):
    c = online(login, new_user(), "d", roster=False)
    res = c.im_iq("get", "<query xmlns='%s' node='urn:example:no-such-node'/>" % NS_DISCO_INFO,
                  to="localhost")
    assert_error(res, "item-not-found")


# ------------------------------------------------------------------ XEP-0092
def test_server_version(login, new_user):
    c = online(login, new_user(), "v", roster=False)
    res = c.im_iq("get", "<query xmlns='%s'/>" % NS_VERSION, to="localhost")
    assert res.get("type") == "result" and res.get("from") == "localhost", dump(res)
    query = res.find(q(NS_VERSION, "query"))
    assert query is not None, dump(res)
    assert (query.findtext(q(NS_VERSION, "name")) or "").strip(), "no <name/>: %s" % dump(res)
    assert (query.findtext(q(NS_VERSION, "version")) or "").strip(), "no <version/>: %s" % dump(res)


def test_server_version_hidden_by_config(stack, login):
    # hide_version=true: <name/> and <version/> are REQUIRED in a XEP-0092 result, so the
    # hidden version is refused (service-unavailable) and no longer advertised.
    with configured_stack(stack, hide_version="true") as ps:
        c = online(login, ps.new_user("v"), "v", roster=False, port=ps.frontend.port)
        res = c.im_iq("get", "<query xmlns='%s'/>" % NS_VERSION, to="localhost")
        assert_error(res, "service-unavailable")
        _, _, feats = disco_info(c, "localhost")
        assert NS_VERSION not in feats, "hidden version still advertised: %s" % feats
        assert c.im_iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="localhost").get("type") == "result"


# ------------------------------------------------------------------ XEP-0199
def test_ping_server(login, new_user):
    c = online(login, new_user(), "p", roster=False)
    for to in ("localhost", None):
        res = c.im_iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=to)
        assert res.get("type") == "result", dump(res)


def test_ping_user_full_jid_is_routed(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a", roster=False)
    b = online(login, ub, "b", roster=False)
    pid = new_id("ping")
    a.send("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % (pid, b.jid))
    got = b.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == pid, WAIT, "routed ping")
    assert got.get("type") == "get" and got.get("from") == a.jid, dump(got)
    assert got.find(q(NS_PING, "ping")) is not None, dump(got)
    b.send("<iq type='result' id='%s' to='%s'/>" % (pid, a.jid))
    res = a.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == pid, WAIT, "pong")
    assert res.get("type") == "result" and res.get("from") == b.jid, dump(res)


# ------------------------------------------------------------------ XEP-0054
def vcard_of(res):
    return res.find(q(NS_VCARD, "vCard"))


def test_vcard_set_and_get(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a", roster=False)
    b = online(login, ub, "b", roster=False)
    photo = base64.b64encode(os.urandom(12000)).decode()
    res = a.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Alice Example</FN><NICKNAME>ali</NICKNAME>"
                         "<PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard>" % photo)
    assert res.get("type") == "result", dump(res)
    # Own vCard, without 'to' and addressed to the own bare JID.
    for to in (None, ua.jid):
        res = a.im_iq("get", "<vCard xmlns='vcard-temp'/>", to=to)
        assert res.get("type") == "result", dump(res)
        v = vcard_of(res)
        assert v is not None and v.findtext(q(NS_VCARD, "FN")) == "Alice Example", dump(res)
        assert v.findtext("{vcard-temp}PHOTO/{vcard-temp}BINVAL") == photo
    # Another user reads it, from the account's bare JID.
    res = b.im_iq("get", "<vCard xmlns='vcard-temp'/>", to=ua.jid)
    assert res.get("type") == "result" and res.get("from") == ua.jid, dump(res)
    assert vcard_of(res).findtext(q(NS_VCARD, "NICKNAME")) == "ali", dump(res)
    # Replaced, not merged.
    assert a.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Alice B</FN></vCard>").get("type") == "result"
    v = vcard_of(b.im_iq("get", "<vCard xmlns='vcard-temp'/>", to=ua.jid))
    assert v.findtext(q(NS_VCARD, "FN")) == "Alice B" and v.find(q(NS_VCARD, "NICKNAME")) is None, dump(v)


def test_vcard_persists_across_sessions(login, new_user):
    ua = new_user("a")
    a1 = login(ua, resource="one", priority=False)
    assert a1.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Kept</FN></vCard>").get("type") == "result"
    a1.end_stream()
    a2 = login(ua, resource="two", priority=False)
    assert vcard_of(a2.im_iq("get", "<vCard xmlns='vcard-temp'/>")).findtext(q(NS_VCARD, "FN")) == "Kept"


def test_vcard_of_user_without_one(login, new_user):
    # XEP-0054: no vCard -> an empty <vCard/> result or <item-not-found/>.
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a", roster=False)
    for to in (None, ub.jid):
        res = a.im_iq("get", "<vCard xmlns='vcard-temp'/>", to=to)
        if res.get("type") == "result":
            v = vcard_of(res)
            assert v is not None and len(v) == 0, dump(res)
        else:
            assert_error(res, "item-not-found")


def test_vcard_of_another_user_cannot_be_set(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a", roster=False)
    b = online(login, ub, "b", roster=False)
    assert b.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Bob</FN></vCard>").get("type") == "result"
    res = a.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Hacked</FN></vCard>", to=ub.jid)
    assert_error(res, {"forbidden", "not-allowed", "not-authorized", "service-unavailable"})
    assert vcard_of(b.im_iq("get", "<vCard xmlns='vcard-temp'/>")).findtext(q(NS_VCARD, "FN")) == "Bob"


# ------------------------------------------------------------------ XEP-0049
def private_get(c, ns, elem="prefs", to=None):
    return c.im_iq("get", "<query xmlns='jabber:iq:private'><%s xmlns='%s'/></query>" % (elem, ns), to=to)


def test_private_storage_set_and_get(login, new_user):
    u = new_user()
    c = online(login, u, "p", roster=False)
    res = c.im_iq("set", "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'>"
                         "<defaultnick>Hamlet</defaultnick><x attr='1'>&lt;deep&gt;</x></exodus></query>")
    assert res.get("type") == "result", dump(res)
    res = private_get(c, "exodus:prefs", "exodus")
    assert res.get("type") == "result", dump(res)
    ex = res.find("{jabber:iq:private}query/{exodus:prefs}exodus")
    assert ex is not None and ex.findtext("{exodus:prefs}defaultnick") == "Hamlet", dump(res)
    assert ex.find("{exodus:prefs}x").get("attr") == "1" and ex.findtext("{exodus:prefs}x") == "<deep>"
    # Another namespace is separate (and empty).
    res = private_get(c, "urn:example:other", "other")
    other = res.find("{jabber:iq:private}query/{urn:example:other}other")
    assert res.get("type") == "result" and other is not None and len(other) == 0, dump(res)
    # Overwrite.
    assert c.im_iq("set", "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'>"
                          "<defaultnick>Ophelia</defaultnick></exodus></query>").get("type") == "result"
    res = private_get(c, "exodus:prefs", "exodus")
    assert res.findtext("{jabber:iq:private}query/{exodus:prefs}exodus/{exodus:prefs}defaultnick") == "Ophelia"


def test_private_storage_persists_and_is_per_user(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = login(ua, resource="one", priority=False)
    assert a1.im_iq("set", "<query xmlns='jabber:iq:private'><n xmlns='urn:example:notes'>"
                           "secret</n></query>").get("type") == "result"
    a1.end_stream()
    a2 = login(ua, resource="two", priority=False)
    assert private_get(a2, "urn:example:notes", "n").findtext(
        "{jabber:iq:private}query/{urn:example:notes}n") == "secret"
    b = login(ub, resource="b", priority=False)
    res = private_get(b, "urn:example:notes", "n")
    assert (res.findtext("{jabber:iq:private}query/{urn:example:notes}n") or "") == "", dump(res)


@pytest.mark.parametrize("kind", ["get", "set"])
def test_private_storage_of_another_user_is_refused(login, new_user, kind):
    # XEP-0049: "Forbidden" (preferred) or "Service Unavailable".
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a", roster=False)
    b = online(login, ub, "b", roster=False)
    assert a.im_iq("set", "<query xmlns='jabber:iq:private'><n xmlns='urn:example:n'>mine</n>"
                          "</query>").get("type") == "result"
    if kind == "get":
        res = private_get(b, "urn:example:n", "n", to=ua.jid)
    else:
        res = b.im_iq("set", "<query xmlns='jabber:iq:private'><n xmlns='urn:example:n'>yours</n>"
                             "</query>", to=ua.jid)
    assert_error(res, {"forbidden", "service-unavailable"})
    assert "mine" not in dump(res)
    assert private_get(a, "urn:example:n", "n").findtext("{jabber:iq:private}query/{urn:example:n}n") == "mine"


def test_private_storage_set_without_child_is_not_acceptable(login, new_user):
    # XEP-0049: at least one child element; otherwise "Not Acceptable".
    c = online(login, new_user(), "p", roster=False)
    assert_error(c.im_iq("set", "<query xmlns='jabber:iq:private'/>"), "not-acceptable")


def test_private_storage_get_without_child_is_refused(login, new_user):
    # XEP-0049: "Bad Format" (bad-request), or "Not Acceptable" in some servers.
    c = online(login, new_user(), "p", roster=False)
    assert_error(c.im_iq("get", "<query xmlns='jabber:iq:private'/>"), {"bad-request", "not-acceptable"})


@pytest.mark.parametrize("ns", ["jabber:client", "jabber:iq:private"])
def test_private_storage_refuses_reserved_namespaces(login, new_user, ns):
    # XEP-0049: data in a reserved namespace ('jabber:*', ...) is refused with "Not
    # Acceptable". The XEP makes the refusal optional; this server refuses at least
    # the stanza and storage namespaces themselves.
    c = online(login, new_user(), "p", roster=False)
    res = c.im_iq("set", "<query xmlns='jabber:iq:private'><x xmlns='%s'>data</x></query>" % ns)
    assert_error(res, "not-acceptable")
    res = c.im_iq("get", "<query xmlns='jabber:iq:private'><x xmlns='%s'/></query>" % ns)
    assert_error(res, "not-acceptable")


# ------------------------------------------------------------------ XEP-0191
def blocklist(c):
    res = c.im_iq("get", "<blocklist xmlns='%s'/>" % NS_BLOCKING)
    assert res.get("type") == "result", dump(res)
    bl = res.find(q(NS_BLOCKING, "blocklist"))
    assert bl is not None, "no <blocklist/> in %s" % dump(res)
    return sorted(i.get("jid") for i in bl.findall(q(NS_BLOCKING, "item")))


def block(c, *jids, op="block"):
    items = "".join("<item jid='%s'/>" % j for j in jids)
    return c.im_iq("set", "<%s xmlns='%s'>%s</%s>" % (op, NS_BLOCKING, items, op))


def wait_block_push(c, op, jids):
    def pred(e):
        if e.tag != IQ_TAG or e.get("type") != "set":
            return False
        el = e.find(q(NS_BLOCKING, op))
        return el is not None and sorted(i.get("jid") for i in el.findall(q(NS_BLOCKING, "item"))) == sorted(jids)
    push = c.im_wait(pred, WAIT, "%s push %s" % (op, jids))
    if push.get("id"):
        c.send("<iq type='result' id='%s'/>" % push.get("id"))
    return push


def is_block_push(e):
    return e.tag == IQ_TAG and e.get("type") == "set" and (
        e.find(q(NS_BLOCKING, "block")) is not None or e.find(q(NS_BLOCKING, "unblock")) is not None)


def test_block_and_unblock_contact(login, new_user):
    ua, ub, uc = new_user("a"), new_user("b"), new_user("c")
    a1 = online(login, ua, "a1", priority=5)
    a2 = online(login, ua, "a2", priority=1)
    a3 = online(login, ua, "a3", priority=0)
    b1 = online(login, ub, "b1")
    c1 = online(login, uc, "c1", roster=False)
    befriend(a1, b1)
    assert blocklist(a1) == [] and blocklist(a2) == []     # a1, a2 requested the blocklist
    drop_pending(a1, a2, a3, b1, c1)

    res = block(a1, ub.jid)
    assert res.get("type") == "result", dump(res)
    for c in (a1, a2):
        wait_block_push(c, "block", [ub.jid])
    a3.im_expect_none(is_block_push, 0.3, "block push to a resource that never asked for the blocklist")
    # The blocked contact sees A go offline: unavailable from each available resource.
    for r in (a1, a2, a3):
        b1.im_wait_presence(type_="unavailable", sender=r.jid, timeout=WAIT)
    assert blocklist(a2) == [ub.jid]

    # Inbound from B: messages bounce with service-unavailable, iq get/set too,
    # presence vanishes silently.
    mid = new_id("blk")
    b1.send("<message to='%s' type='chat' id='%s'><body>blocked msg</body></message>" % (ua.jid, mid))
    err = b1.im_wait(lambda e: e.get("id") == mid and e.get("type") == "error", WAIT, "bounce")
    assert_error(err, "service-unavailable")
    mid = b1.message(a1.jid, "blocked to full")
    err = b1.im_wait(lambda e: e.get("id") == mid and e.get("type") == "error", WAIT, "bounce")
    assert_error(err, "service-unavailable")
    res = b1.im_iq("get", "<query xmlns='jabber:iq:version'/>", to=a1.jid)
    assert_error(res, "service-unavailable")
    b1.im_presence(status="B update")
    b1.im_presence(to=a1.jid, status="B directed")
    b1.im_sync()
    for c in (a1, a2, a3):
        c.im_expect_none(lambda e: (e.get("from") or "").split("/")[0] == ub.jid, QUIET,
                         "stanza from a blocked contact")
    b1.im_expect_none(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "error", 0.1,
                      "error for presence to a blocker")

    # Outbound to B: not routed; not-acceptable with <blocked/>.
    mid = new_id("out")
    a1.send("<message to='%s' type='chat' id='%s'><body>to blocked</body></message>" % (ub.jid, mid))
    err = a1.im_wait(lambda e: e.get("id") == mid and e.get("type") == "error", WAIT, "blocked error")
    assert_error(err, "not-acceptable")
    assert err.find("{jabber:client}error/{%s}blocked" % NS_BLOCKING_ERRORS) is not None, dump(err)
    a1.im_presence(show="away", status="A update", priority=5)
    a1.im_sync()
    b1.im_expect_none(lambda e: (e.get("from") or "").split("/")[0] == ua.jid
                      and e.get("type") != "unavailable", QUIET, "stanza to a blocked contact")

    # Others are unaffected.
    c1.message(ua.jid, "from C")
    a1.im_wait_message("from C", sender=c1.jid, timeout=WAIT)

    # Unblock: pushes, B gets A's current presence, traffic flows again.
    res = block(a2, ub.jid, op="unblock")
    assert res.get("type") == "result", dump(res)
    for c in (a1, a2):
        wait_block_push(c, "unblock", [ub.jid])
    # (The XEP allows cancelling subscriptions on block; if B is still allowed to see
    # A's presence, it MUST get A's current presence now.)
    if a1.roster().get(ub.jid, {}).get("subscription") in ("from", "both"):
        for r in (a1, a2, a3):
            b1.im_wait_presence(sender=r.jid, timeout=WAIT)
    assert blocklist(a1) == []
    b1.message(ua.jid, "after unblock")
    a1.im_wait_message("after unblock", sender=b1.jid, timeout=WAIT)
    a1.message(b1.jid, "reply after unblock")
    b1.im_wait_message("reply after unblock", sender=a1.jid, timeout=WAIT)


def test_unblock_all_and_empty_block(login, new_user):
    ua, ub, uc = new_user("a"), new_user("b"), new_user("c")
    a1 = online(login, ua, "a1")
    assert blocklist(a1) == []
    assert_error(block(a1), "bad-request")          # <block/> needs an item
    assert block(a1, ub.jid, uc.jid).get("type") == "result"
    wait_block_push(a1, "block", [ub.jid, uc.jid])
    assert blocklist(a1) == sorted([ub.jid, uc.jid])
    assert block(a1, op="unblock").get("type") == "result"     # empty: unblock everyone
    wait_block_push(a1, "unblock", [])
    assert blocklist(a1) == []


def test_block_persists_and_applies_while_offline(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = login(ua, resource="a1", priority=False)
    assert block(a1, ub.jid).get("type") == "result"
    a1.end_stream()
    b1 = online(login, ub, "b1", roster=False)
    mid = new_id("off")
    b1.send("<message to='%s' type='chat' id='%s'><body>blocked offline</body></message>" % (ua.jid, mid))
    err = b1.im_wait(lambda e: e.get("id") == mid and e.get("type") == "error", WAIT, "bounce")
    assert_error(err, "service-unavailable")
    a2 = online(login, ua, "a2", roster=False)
    assert blocklist(a2) == [ub.jid]
    a2.im_expect_none(lambda e: e.tag == MESSAGE_TAG and e.findtext(NS + "body") == "blocked offline",
                      QUIET, "a blocked contact's message stored offline")


# ------------------------------------------------------------------ XEP-0280
def carbon_of(el, kind):
    """(outer message, forwarded inner message) of a <received/> or <sent/> carbon."""
    wrapper = el.find(q(NS_CARBONS, kind))
    if wrapper is None:
        return None
    return wrapper.find("{%s}forwarded/{jabber:client}message" % NS_FORWARD)


def is_carbon(kind, body=None):
    def pred(e):
        if e.tag != MESSAGE_TAG:
            return False
        inner = carbon_of(e, kind)
        return inner is not None and (body is None or inner.findtext(NS + "body") == body)
    return pred


def enable_carbons(c, on=True):
    res = c.im_iq("set", "<%s xmlns='%s'/>" % ("enable" if on else "disable", NS_CARBONS))
    assert res.get("type") == "result", dump(res)


def carbon_setup(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1", priority=5, roster=False)
    a2 = online(login, ua, "a2", priority=1, roster=False)
    a3 = online(login, ua, "a3", priority=0, roster=False)
    b1 = online(login, ub, "b1", roster=False)
    enable_carbons(a1)
    enable_carbons(a2)
    return ua, ub, a1, a2, a3, b1


def test_carbons_received_copies(login, new_user):
    ua, ub, a1, a2, a3, b1 = carbon_setup(login, new_user)
    b1.message(ua.jid, "hello A")
    m = a1.im_wait_message("hello A", sender=b1.jid, timeout=WAIT)     # highest priority
    assert carbon_of(m, "received") is None
    c = a2.im_wait(is_carbon("received", "hello A"), WAIT, "received carbon")
    assert c.get("from") == ua.jid and c.get("to") == a2.jid, "carbon must come from the bare JID: %s" % dump(c)
    inner = carbon_of(c, "received")
    assert inner.get("from") == b1.jid and inner.get("type") == "chat", dump(c)
    assert inner.get("to") in (ua.jid, a1.jid), dump(c)
    a3.im_expect_none(is_carbon("received"), QUIET, "carbon to a resource without carbons")
    a1.im_expect_none(is_carbon("received"), 0.1, "carbon to the resource that got the message")
    # To a full JID: the other enabled resource gets the copy.
    b1.message(a2.jid, "for a2")
    a2.im_wait_message("for a2", sender=b1.jid, timeout=WAIT)
    c = a1.im_wait(is_carbon("received", "for a2"), WAIT, "received carbon of a full-JID message")
    assert carbon_of(c, "received").get("to") == a2.jid, dump(c)


def test_carbons_sent_copies(login, new_user):
    ua, ub, a1, a2, a3, b1 = carbon_setup(login, new_user)
    a1.message(ub.jid, "from a1 to B")
    b1.im_wait_message("from a1 to B", sender=a1.jid, timeout=WAIT)
    c = a2.im_wait(is_carbon("sent", "from a1 to B"), WAIT, "sent carbon")
    assert c.get("from") == ua.jid and c.get("to") == a2.jid, dump(c)
    inner = carbon_of(c, "sent")
    assert inner.get("from") == a1.jid and inner.get("to") == ub.jid, dump(c)
    a1.im_expect_none(is_carbon("sent"), QUIET, "sent carbon to the sending resource")
    a3.im_expect_none(is_carbon("sent"), 0.1, "sent carbon to a resource without carbons")


def test_carbons_private_and_disable(login, new_user):
    ua, ub, a1, a2, a3, b1 = carbon_setup(login, new_user)
    b1.send("<message to='%s' type='chat'><body>private in</body><private xmlns='%s'/>"
            "<no-copy xmlns='%s'/></message>" % (ua.jid, NS_CARBONS, NS_HINTS))
    a1.im_wait_message("private in", timeout=WAIT)
    a1.send("<message to='%s' type='chat'><body>private out</body><private xmlns='%s'/>"
            "<no-copy xmlns='%s'/></message>" % (ub.jid, NS_CARBONS, NS_HINTS))
    b1.im_wait_message("private out", timeout=WAIT)
    a2.im_expect_none(lambda e: is_carbon("received")(e) or is_carbon("sent")(e), QUIET,
                      "carbon of a private message")
    enable_carbons(a2, on=False)
    b1.message(ua.jid, "after disable")
    a1.im_wait_message("after disable", timeout=WAIT)
    a2.im_expect_none(is_carbon("received"), QUIET, "carbon after disable")


def test_carbons_not_enabled_by_default(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1", priority=5, roster=False)
    a2 = online(login, ua, "a2", priority=1, roster=False)
    b1 = online(login, ub, "b1", roster=False)
    b1.message(ua.jid, "no carbons")
    a1.im_wait_message("no carbons", timeout=WAIT)
    a2.im_expect_none(is_carbon("received"), QUIET, "carbon without enabling")


# --------------------------------------------------------------- unknown iq
@pytest.mark.parametrize("type_", ["get", "set"])
def test_unknown_iq_to_server_is_service_unavailable(login, new_user, type_):
    c = online(login, new_user(), "u", roster=False)
    for to in ("localhost", None):
        res = c.im_iq(type_, "<query xmlns='urn:example:unknown-service'/>", to=to)
        assert_error(res, "service-unavailable", "cancel")


@pytest.mark.parametrize("type_", ["get", "set"])
def test_unknown_iq_to_own_bare_jid_is_answered_by_server(login, new_user, type_):
    # RFC 6121 8.5.2.1.3: an iq to the bare JID is handled by the server on the
    # account's behalf; with no handler: service-unavailable, and no resource sees it.
    u = new_user()
    c1 = online(login, u, "one", roster=False)
    c2 = online(login, u, "two", roster=False)
    res = c1.im_iq(type_, "<query xmlns='urn:example:unknown-service'/>", to=u.jid)
    assert_error(res, "service-unavailable", "cancel")
    assert res.get("from") == u.jid, dump(res)
    for c in (c1, c2):
        c.im_expect_none(lambda e: e.tag == IQ_TAG and e.get("type") in ("get", "set"), 0.3,
                         "an iq to the bare JID delivered to a resource")


def test_iq_result_to_server_gets_no_answer(login, new_user):
    # RFC 6120 8.2.3: a result or error must not be answered.
    c = online(login, new_user(), "u", roster=False)
    c.send("<iq type='result' id='stray-1' to='localhost'/>")
    c.send("<iq type='error' id='stray-2' to='localhost'><error type='cancel'>"
           "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    c.im_sync()
    c.im_expect_none(lambda e: e.get("id") in ("stray-1", "stray-2"), QUIET, "answer to a result/error")


def test_blocking_a_non_subscriber_sends_nothing_and_drops_its_requests(login, new_user):
    # XEP-0191: presence from a blocked entity, subscriptions included, gets no answer
    # and no error, and does not reach the user.
    ua, uc = new_user("a"), new_user("c")
    a1 = online(login, ua, "a1")
    c1 = online(login, uc, "c1")
    assert blocklist(a1) == []          # a1 asks for the blocklist: it gets the pushes
    assert block(a1, uc.jid).get("type") == "result"
    wait_block_push(a1, "block", [uc.jid])
    a1.im_sync()
    # C has no subscription to A: blocking sends it nothing (the unavailable presence of
    # XEP-0191 goes only to a contact allowed to see A's presence).
    c1.im_expect_none(lambda e: bare(e.get("from") or "") == ua.jid, QUIET,
                      "presence to a blocked non-subscriber")
    c1.im_presence(to=ua.jid, type_="subscribe")
    c1.im_sync()
    a1.im_expect_none(lambda e: bare(e.get("from") or "") == uc.jid, QUIET,
                      "subscription request from a blocked entity")
    c1.im_expect_none(lambda e: bare(e.get("from") or "") == ua.jid, 0.2,
                      "answer to a blocked entity's subscription request")
    assert uc.jid not in a1.roster() or a1.roster()[uc.jid]["subscription"] == "none"
