"""RFC 6121 and XEP details served by the router's modules: presence of the user's other
resources on initial presence (RFC 6121 4.2.2, 4.4.2), blocking and presence (XEP-0191
3.3), account iq addressed to the domain or the own bare JID, disco#info on the account's
behalf (XEP-0030), XEP-0012 last activity, XEP-0202 entity time."""

import re
import time
from datetime import datetime, timezone

from test_im_helpers import (QUIET, WAIT, assert_error, bare, befriend, drop_pending, online,
                             subscribe_and_approve)
from xmpp_client import IQ_TAG, dump, q

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_BLOCKING = "urn:xmpp:blocking"
NS_LAST = "jabber:iq:last"
NS_TIME = "urn:xmpp:time"
DOMAIN = "localhost"


# ------------------------------------------------------------ RFC 6121 4.2.2 / 4.4.2
def test_new_resource_receives_presence_of_other_resources(login, new_user):
    u = new_user("multi")
    r1 = online(login, u, "r1", priority=3, show="away", status="first")
    r2 = online(login, u, "r2", priority=1, status="second", available=False)
    drop_pending(r1, r2)
    r2.im_presence(priority=1, status="second")
    # The new resource learns r1's current presence (with its show and status) ...
    p = r2.im_wait_presence(sender=r1.jid, timeout=WAIT)
    assert p.findtext("{jabber:client}show") == "away", dump(p)
    assert p.findtext("{jabber:client}status") == "first", dump(p)
    assert p.get("to") == r2.jid, dump(p)
    # ... and r1 receives r2's, once.
    r1.im_wait_presence(sender=r2.jid, timeout=WAIT)
    r1.im_expect_none(lambda e: e.get("from") == r2.jid and e.tag.endswith("presence"), QUIET,
                      "a second copy of r2's presence")
    # A resource that is connected but not available is not reported.
    r3 = online(login, u, "r3", available=False)
    drop_pending(r2)
    r2.im_presence(priority=1, status="again")
    r2.im_sync()
    r2.im_expect_none(lambda e: e.get("from") == r3.jid, QUIET, "presence of an unavailable resource")


# ------------------------------------------------------------ XEP-0191 3.3
def blocking_iq(c, op, jid=None, to=None):
    items = "<item jid='%s'/>" % jid if jid else ""
    type_ = "get" if op == "blocklist" else "set"
    return c.im_iq(type_, "<%s xmlns='%s'>%s</%s>" % (op, NS_BLOCKING, items, op), to=to)


def test_blocking_addressed_to_domain_or_own_bare_jid_is_served(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a")
    for to in (DOMAIN, ua.jid, None):
        res = blocking_iq(a, "blocklist", to=to)
        assert res.get("type") == "result", "blocklist to %r: %s" % (to, dump(res))
    res = blocking_iq(a, "block", ub.jid, to=DOMAIN)
    assert res.get("type") == "result", dump(res)
    res = blocking_iq(a, "blocklist", to=ua.jid)
    items = [i.get("jid") for i in res.find(q(NS_BLOCKING, "blocklist"))]
    assert items == [ub.jid], dump(res)
    res = blocking_iq(a, "unblock", ub.jid, to=ua.jid)
    assert res.get("type") == "result", dump(res)
    # Someone else's blocklist stays out of reach.
    res = blocking_iq(a, "blocklist", to=ub.jid)
    assert_error(res, "forbidden")


def test_account_iq_addressed_to_domain_or_own_bare_jid_is_served(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a", roster=False)
    for to in (DOMAIN, ua.jid, None):
        res = a.im_iq("get", "<query xmlns='jabber:iq:roster'/>", to=to)
        assert res.get("type") == "result", "roster to %r: %s" % (to, dump(res))
        res = a.im_iq("set", "<query xmlns='jabber:iq:private'><n xmlns='urn:example:n'>%s</n>"
                      "</query>" % (to or "none"), to=to)
        assert res.get("type") == "result", "private set to %r: %s" % (to, dump(res))
        res = a.im_iq("get", "<query xmlns='jabber:iq:private'><n xmlns='urn:example:n'/></query>",
                      to=to)
        assert res.get("type") == "result" and (to or "none") in dump(res), dump(res)
        res = a.im_iq("set", "<enable xmlns='urn:xmpp:carbons:2'/>", to=to)
        assert res.get("type") == "result", "carbons to %r: %s" % (to, dump(res))
    # Another account's roster and private storage stay its own.
    assert_error(a.im_iq("get", "<query xmlns='jabber:iq:roster'/>", to=ub.jid), "forbidden")
    assert_error(a.im_iq("get", "<query xmlns='jabber:iq:private'><n xmlns='urn:example:n'/>"
                         "</query>", to=ub.jid), "forbidden")


def test_block_sends_unavailable_from_each_resource_and_unblock_sends_presence(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1", priority=2, status="one")
    a2 = online(login, ua, "a2", priority=1, status="two")
    b1 = online(login, ub, "b1")
    befriend(a1, b1)
    a2.im_sync()
    drop_pending(a1, a2, b1)
    assert blocking_iq(a1, "block", ub.jid).get("type") == "result"
    for r in (a1, a2):
        b1.im_wait_presence(type_="unavailable", sender=r.jid, timeout=WAIT)
    assert blocking_iq(a1, "unblock", ub.jid).get("type") == "result"
    for r, status in ((a1, "one"), (a2, "two")):
        p = b1.im_wait_presence(sender=r.jid, timeout=WAIT)
        assert p.findtext("{jabber:client}status") == status, dump(p)


# ------------------------------------------------------------ XEP-0030 for the account
def disco(c, to):
    res = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to)
    assert res.get("type") == "result", dump(res)
    query = res.find(q(NS_DISCO_INFO, "query"))
    ids = [(i.get("category"), i.get("type")) for i in query.findall(q(NS_DISCO_INFO, "identity"))]
    feats = [f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))]
    return res, ids, feats


def test_disco_info_to_own_bare_jid_is_the_account(login, new_user):
    u = new_user("acct")
    c = online(login, u, "d", roster=False)
    res, ids, feats = disco(c, u.jid)
    assert res.get("from") == u.jid, dump(res)
    # The account, and its PEP service (XEP-0163 section 1: a virtual pubsub service).
    assert sorted(ids) == [("account", "registered"), ("pubsub", "pep")], dump(res)
    assert len(feats) == len(set(feats)), dump(res)
    for f in (NS_DISCO_INFO, NS_DISCO_ITEMS, NS_LAST, "vcard-temp"):
        assert f in feats, "account features lack %s: %s" % (f, dump(res))
    # Server-only features are not the account's.
    for f in ("jabber:iq:version", NS_TIME, "urn:xmpp:carbons:2"):
        assert f not in feats, "account lists the server feature %s: %s" % (f, dump(res))
    # The server's own answer is a server.
    _, sids, sfeats = disco(c, DOMAIN)
    assert ("server", "im") in sids and ("account", "registered") not in sids
    assert NS_TIME in sfeats and NS_LAST in sfeats


def test_disco_items_on_domain_lists_services(login, new_user):
    c = online(login, new_user(), "d", roster=False)
    res = c.im_iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=DOMAIN)
    assert res.get("type") == "result", dump(res)
    items = res.find(q(NS_DISCO_ITEMS, "query")).findall(q(NS_DISCO_ITEMS, "item"))
    # The services are listed by address, each a subdomain: XEP-0363 upload among them.
    jids = {i.get("jid") for i in items}
    assert "upload." + DOMAIN in jids, dump(res)
    assert all(j.endswith("." + DOMAIN) for j in jids), dump(res)


# ------------------------------------------------------------ XEP-0202
def test_entity_time_of_the_server(login, new_user):
    c = online(login, new_user(), "t", roster=False)
    res = c.im_iq("get", "<time xmlns='%s'/>" % NS_TIME, to=DOMAIN)
    assert res.get("type") == "result" and res.get("from") == DOMAIN, dump(res)
    t = res.find(q(NS_TIME, "time"))
    tzo, utc = t.findtext(q(NS_TIME, "tzo")), t.findtext(q(NS_TIME, "utc"))
    assert re.fullmatch(r"[+-]\d\d:\d\d|Z", tzo), dump(res)
    when = datetime.strptime(utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 60, dump(res)
    # A set is not served.
    assert_error(c.im_iq("set", "<time xmlns='%s'/>" % NS_TIME, to=DOMAIN),
                 "service-unavailable")


# ------------------------------------------------------------ XEP-0012
def last(c, to):
    return c.im_iq("get", "<query xmlns='%s'/>" % NS_LAST, to=to)


def seconds_of(res):
    assert res.get("type") == "result", dump(res)
    return int(res.find(q(NS_LAST, "query")).get("seconds")), \
        res.find(q(NS_LAST, "query")).text


def test_last_activity_server_uptime(login, new_user):
    c = online(login, new_user(), "l", roster=False)
    s1, _ = seconds_of(last(c, DOMAIN))
    assert s1 >= 0
    time.sleep(1.2)
    s2, _ = seconds_of(last(c, DOMAIN))
    assert s2 >= s1 + 1, (s1, s2)


def test_last_activity_of_offline_contact(login, new_user):
    ua, ub, stranger = new_user("a"), new_user("b"), new_user("s")
    a = online(login, ua, "a")
    b = online(login, ub, "b")
    s = online(login, stranger, "s")
    subscribe_and_approve(a, b)          # a may see b's presence
    # Online: zero seconds.
    assert seconds_of(last(a, ub.jid))[0] == 0
    b.im_presence(type_="unavailable", status="gone fishing")
    b.im_sync()
    a.im_wait_presence(type_="unavailable", sender=b.jid, timeout=WAIT)
    b.close()
    time.sleep(2.2)
    secs, text = seconds_of(last(a, ub.jid))
    assert 2 <= secs < 60, secs
    assert text == "gone fishing"
    # Someone not subscribed to b's presence learns nothing.
    assert_error(last(s, ub.jid), "forbidden")
    # Asked of one's own account while online: zero seconds.
    assert seconds_of(last(a, ua.jid))[0] == 0


def test_last_activity_to_online_full_jid_is_answered_by_the_client(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a = online(login, ua, "a")
    b = online(login, ub, "b")
    befriend(a, b)
    a.send("<iq type='get' id='idle1' to='%s'><query xmlns='%s'/></iq>" % (b.jid, NS_LAST))
    req = b.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == "idle1", WAIT, "routed iq:last")
    assert req.get("from") == a.jid, dump(req)
    b.send("<iq type='result' id='idle1' to='%s'><query xmlns='%s' seconds='42'/></iq>"
           % (a.jid, NS_LAST))
    res = a.im_wait(lambda e: e.tag == IQ_TAG and e.get("id") == "idle1", WAIT, "idle answer")
    assert seconds_of(res)[0] == 42
    assert bare(res.get("from")) == ub.jid
