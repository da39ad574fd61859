"""Routing of messages, presence and iq (RFC 6120 section 10, RFC 6121 section 8)."""

import socket

import pytest

from xmpp_client import (NS_CLIENT, NS_DISCO_INFO, NS_PING, NS_STANZAS, IQ_TAG, PRESENCE_TAG,
                         body_of, dump, q, stanza_error_condition)


def assert_next_message_is(c, body, sender):
    """The next message `c` receives is `body` from `sender`; used with a marker message
    sent after the one under test, to prove an earlier message was NOT delivered here
    (messages between two sessions are delivered in order)."""
    m = c.next_message()
    assert body_of(m) == body, \
        "expected the marker %r first, got %s (a message meant for another resource?)" % (body, dump(m))
    assert m.get("from") == sender, dump(m)


def test_message_to_full_jid_goes_to_that_resource_only(stack, login, new_user):
    a, b = new_user(), new_user()
    a1 = login(a, resource="one")
    a2 = login(a, resource="two")
    s = login(b, resource="sender")
    s.message(a.jid + "/two", "for two only")
    m = a2.wait_message("for two only")
    assert m.get("from") == s.jid, dump(m)
    assert m.get("type") == "chat" and m.get("to") == a.jid + "/two", dump(m)
    s.message(a.jid + "/one", "marker for one")
    assert_next_message_is(a1, "marker for one", s.jid)


def test_bare_jid_message_goes_to_highest_priority(stack, login, new_user):
    a, b = new_user(), new_user()
    hi = login(a, resource="hi", priority=5)
    lo = login(a, resource="lo", priority=1)
    s = login(b, resource="s")
    for text in ("bare 1", "bare 2"):
        s.message(a.jid, text)
        m = hi.wait_message(text)
        assert m.get("from") == s.jid, dump(m)
    s.message(a.jid + "/lo", "marker for lo")
    assert_next_message_is(lo, "marker for lo", s.jid)


def test_bare_jid_priority_order_does_not_depend_on_login_order(stack, login, new_user):
    a, b = new_user(), new_user()
    lo = login(a, resource="lo", priority=1)
    hi = login(a, resource="hi", priority=5)
    s = login(b, resource="s")
    s.message(a.jid, "to the best resource")
    hi.wait_message("to the best resource", sender=s.jid)
    s.message(a.jid + "/lo", "marker")
    assert_next_message_is(lo, "marker", s.jid)


def test_priority_change_redirects_bare_jid_messages(stack, login, new_user):
    a, b = new_user(), new_user()
    r1 = login(a, resource="r1", priority=5)
    r2 = login(a, resource="r2", priority=1)
    s = login(b, resource="s")
    s.message(a.jid, "first")
    r1.wait_message("first", sender=s.jid)
    r2.presence(10)              # r2 now has the highest priority
    # A message sent after the presence on the same stream: once it has arrived, the
    # presence has been processed too.
    r2.message(s.jid, "sync")
    s.wait_message("sync", sender=r2.jid)
    s.message(a.jid, "second")
    r2.wait_message("second", sender=s.jid)
    s.message(a.jid + "/r1", "marker r1")
    assert_next_message_is(r1, "marker r1", s.jid)


def test_negative_priority_never_gets_bare_jid_messages(stack, login, new_user):
    a, b = new_user(), new_user()
    neg = login(a, resource="neg", priority=-1)
    pos = login(a, resource="pos", priority=0)
    s = login(b, resource="s")
    s.message(a.jid, "to bare")
    pos.wait_message("to bare", sender=s.jid)
    s.message(a.jid + "/neg", "marker neg")
    assert_next_message_is(neg, "marker neg", s.jid)


def test_only_negative_priority_resource_gets_no_bare_jid_message(stack, login, new_user):
    a, b = new_user(), new_user()
    neg = login(a, resource="neg", priority=-5)
    s = login(b, resource="s")
    s.message(a.jid, "nobody should get this")
    # Full-JID delivery to a negative-priority resource still works.
    s.message(a.jid + "/neg", "direct to neg")
    assert_next_message_is(neg, "direct to neg", s.jid)


def test_from_is_stamped_with_sender_full_jid(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="spoofer")
    s.message(a.jid + "/r", "spoofed", extra_attrs=" from='someone@else/x'")
    m = r.wait_message("spoofed")
    assert m.get("from") == s.jid, "from not rewritten to the sender's full JID: %s" % dump(m)
    s.message(a.jid, "spoofed bare", extra_attrs=" from='%s/other'" % b.jid)
    m = r.wait_message("spoofed bare")
    assert m.get("from") == s.jid, dump(m)


def test_message_without_from_gets_full_jid(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="plain")
    s.message(a.jid + "/r", "hello")
    m = r.wait_message("hello")
    assert m.get("from") == s.jid, dump(m)


def test_iq_between_users_and_result_back(stack, login, new_user):
    a, b = new_user(), new_user()
    target = login(a, resource="target")
    asker = login(b, resource="asker")
    asker.send("<iq type='get' id='ver-42' to='%s/target'><query xmlns='jabber:iq:version'/></iq>" % a.jid)
    got = target.wait_for(lambda e: e.tag == IQ_TAG and e.get("id") == "ver-42")
    assert got.get("type") == "get" and got.get("from") == asker.jid, dump(got)
    assert got.find("{jabber:iq:version}query") is not None, dump(got)
    target.send("<iq type='result' id='ver-42' to='%s'><query xmlns='jabber:iq:version'>"
                "<name>itest</name><version>1</version></query></iq>" % asker.jid)
    res = asker.wait_for(lambda e: e.tag == IQ_TAG and e.get("id") == "ver-42")
    assert res.get("type") == "result" and res.get("from") == target.jid, dump(res)
    assert res.findtext("{jabber:iq:version}query/{jabber:iq:version}name") == "itest", dump(res)


def test_iq_error_routed_back(stack, login, new_user):
    a, b = new_user(), new_user()
    target = login(a, resource="t")
    asker = login(b, resource="a")
    asker.send("<iq type='get' id='e-1' to='%s'><query xmlns='urn:example:x'/></iq>" % target.jid)
    target.wait_for(lambda e: e.tag == IQ_TAG and e.get("id") == "e-1")
    target.send("<iq type='error' id='e-1' to='%s'><error type='cancel'>"
                "<feature-not-implemented xmlns='%s'/></error></iq>" % (asker.jid, NS_STANZAS))
    res = asker.wait_for(lambda e: e.tag == IQ_TAG and e.get("id") == "e-1")
    assert res.get("type") == "error" and res.get("from") == target.jid, dump(res)
    assert stanza_error_condition(res) == ("cancel", "feature-not-implemented"), dump(res)


@pytest.mark.parametrize("to", ["localhost", None], ids=["to-domain", "no-to"])
def test_server_ping(stack, login, new_user, to):
    c = login(new_user(), resource="p")
    res = c.ping(to)
    assert res.get("type") == "result", dump(res)
    if res.get("from") is not None:
        assert res.get("from") in ("localhost", c.jid.split("/")[0]), dump(res)


def test_server_disco_info(stack, login, new_user):
    c = login(new_user(), resource="d")
    res = c.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to="localhost")
    assert res.get("type") == "result", dump(res)
    query = res.find(q(NS_DISCO_INFO, "query"))
    assert query is not None, dump(res)
    ids = [(i.get("category"), i.get("type")) for i in query.findall(q(NS_DISCO_INFO, "identity"))]
    assert ("server", "im") in ids, dump(res)
    features = {f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))}
    assert {NS_DISCO_INFO, NS_PING} <= features, dump(res)


@pytest.mark.parametrize("payload", [
    "<query xmlns='urn:example:no-such-service'/>",
    "<vCard xmlns='urn:example:unknown-vcard'/>",
])
def test_server_unknown_iq_is_service_unavailable(stack, login, new_user, payload):
    c = login(new_user(), resource="u")
    res = c.iq("get", payload, to="localhost")
    assert res.get("type") == "error", dump(res)
    assert stanza_error_condition(res) == ("cancel", "service-unavailable"), dump(res)
    # The connection is still fine.
    assert c.ping().get("type") == "result"


def _wait_unavailable(c, full_jid):
    return c.wait_for(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable"
                      and e.get("from") == full_jid,
                      timeout=5.0, what="unavailable presence from %s" % full_jid)


def test_unavailable_presence_on_stream_close(stack, login, new_user):
    a = new_user()
    stay = login(a, resource="stay")
    leave = login(a, resource="leave")
    # Make sure both are known as available before one leaves.
    leave.message(stay.jid, "sync")      # after its presence on the same stream
    stay.wait_message("sync", sender=leave.jid)
    leave.end_stream()
    _wait_unavailable(stay, a.jid + "/leave")


def test_unavailable_presence_on_abrupt_disconnect(stack, login, new_user):
    a = new_user()
    stay = login(a, resource="stay")
    drop = login(a, resource="drop")
    drop.message(stay.jid, "sync")
    stay.wait_message("sync", sender=drop.jid)
    drop.abort()
    _wait_unavailable(stay, a.jid + "/drop")


def test_no_delivery_to_closed_resource(stack, login, new_user):
    a, b = new_user(), new_user()
    stay = login(a, resource="stay", priority=1)
    gone = login(a, resource="gone", priority=10)
    s = login(b, resource="s")
    gone.end_stream()
    _wait_unavailable(stay, a.jid + "/gone")
    s.message(a.jid, "after gone")
    m = stay.wait_message("after gone")
    assert m.get("from") == s.jid, dump(m)


def test_message_body_roundtrip_unicode_and_escaping(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    text = "h\u00e9llo \u2603 <tag> & 'quotes' \"dq\" \U0001F600"
    s.message(r.jid, text)
    m = r.wait_message(text)
    assert body_of(m) == text
    assert m.find(q(NS_CLIENT, "body")) is not None


# ----------------------------------------------------------------------------- RFC 6121 8.5
def test_iq_to_offline_full_jid_is_service_unavailable(stack, login, new_user):
    # RFC 6121 8.5.3.2.1: no such resource -> the server answers the iq.
    a, b = new_user(), new_user()
    login(a, resource="here")
    s = login(b, resource="s")
    res = s.iq("get", "<query xmlns='jabber:iq:version'/>", to=a.jid + "/not-here")
    assert res.get("type") == "error", dump(res)
    assert stanza_error_condition(res) == ("cancel", "service-unavailable"), dump(res)


def test_iq_to_other_users_bare_jid_is_answered_by_server(stack, login, new_user):
    # RFC 6121 8.5.2.1.3: the server replies on behalf of the account and does not deliver
    # the iq to any resource.
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    res = s.iq("get", "<query xmlns='urn:example:unknown'/>", to=a.jid, id="bare-iq")
    assert res.get("type") == "error", dump(res)
    assert stanza_error_condition(res)[1] == "service-unavailable", dump(res)
    s.message(r.jid, "marker")
    m = r.wait_for(lambda e: e.tag != PRESENCE_TAG)
    assert body_of(m) == "marker", "the bare-JID iq reached a resource: %s" % dump(m)


def test_message_to_user_without_available_resource_is_kept_for_later(stack, login, new_user):
    # RFC 6121 8.5.2.2.1 with offline storage (XEP-0160): no error to the sender, and the
    # message arrives, delay-stamped, when the recipient next sends initial presence.
    a, b = new_user(), new_user()   # a is offline
    s = login(b, resource="s")
    s.message(a.jid, "anyone there?", id="later-1")
    s.expect_nothing(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("type") == "error",
                     1.0)
    r = login(a, resource="back", priority=False)  # no sync round trip to skip past it
    r.presence()
    got = r.wait_message("anyone there?")
    assert got.get("from") == s.jid, dump(got)
    assert got.find("{urn:xmpp:delay}delay") is not None, dump(got)


def test_message_to_nonexistent_account_bounces(stack, login, new_user):
    s = login(new_user(), resource="s")
    s.message("nobody-%s@localhost" % new_user().localpart, "hello?", id="bounce-2")
    err = s.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("type") == "error")
    assert err.get("id") == "bounce-2", dump(err)
    assert stanza_error_condition(err)[1] == "service-unavailable", dump(err)


def test_headline_to_bare_jid_goes_to_all_non_negative(stack, login, new_user):
    a, b = new_user(), new_user()
    r5 = login(a, resource="r5", priority=5)
    r1 = login(a, resource="r1", priority=1)
    neg = login(a, resource="neg", priority=-1)
    s = login(b, resource="s")
    s.message(a.jid, "news", type_="headline")
    for r in (r5, r1):
        m = r.wait_message("news")
        assert m.get("type") == "headline" and m.get("from") == s.jid, dump(m)
    s.message(neg.jid, "marker")
    assert_next_message_is(neg, "marker", s.jid)


def test_presence_broadcast_to_own_resources(stack, login, new_user):
    a = new_user()
    one = login(a, resource="one")
    two = login(a, resource="two", priority=False)
    two.send("<presence><show>away</show><status>lunch &amp; more</status></presence>")
    p = one.wait_for(lambda e: e.tag == PRESENCE_TAG and e.get("from") == two.jid
                     and e.get("type") is None)
    assert p.findtext(q(NS_CLIENT, "show")) == "away", dump(p)
    assert p.findtext(q(NS_CLIENT, "status")) == "lunch & more", dump(p)


def test_server_disco_items(stack, login, new_user):
    c = login(new_user(), resource="d")
    res = c.iq("get", "<query xmlns='http://jabber.org/protocol/disco#items'/>", to="localhost")
    assert res.get("type") == "result", dump(res)
    assert res.find("{http://jabber.org/protocol/disco#items}query") is not None, dump(res)


# ------------------------------------------------------------------- fidelity of routing
def test_extensions_namespaces_and_escaping_survive_routing(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    s.send("<cl:message xmlns:cl='jabber:client' to='%s' type='chat' id='x&amp;&quot;&apos;&lt;y'>"
           "<cl:body>prefixed &amp; escaped</cl:body>"
           "<e:ext xmlns:e='urn:example:ext' e:attr='v' plain='1&gt;0'>"
           "<e:deep>text<inner xmlns='urn:example:other'/></e:deep></e:ext>"
           "<thread>t-1</thread></cl:message>" % r.jid)
    m = r.wait_message("prefixed & escaped")
    assert m.get("id") == "x&\"'<y", dump(m)
    assert m.get("from") == s.jid, dump(m)
    ext = m.find("{urn:example:ext}ext")
    assert ext is not None, dump(m)
    assert ext.get("{urn:example:ext}attr") == "v" and ext.get("plain") == "1>0", dump(m)
    deep = ext.find("{urn:example:ext}deep")
    assert deep is not None and deep.text == "text", dump(m)
    assert deep.find("{urn:example:other}inner") is not None, dump(m)
    assert m.findtext(q(NS_CLIENT, "thread")) == "t-1", dump(m)


def test_pipelined_stanzas_in_one_write(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    batch = "".join("<message to='%s' type='chat'><body>p%d</body></message>" % (r.jid, i)
                    for i in range(20))
    s.send(batch + "<iq type='get' id='pipe-ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    for i in range(20):
        assert body_of(r.next_message()) == "p%d" % i
    res = s.wait_for(lambda e: e.tag == IQ_TAG and e.get("id") == "pipe-ping")
    assert res.get("type") == "result", dump(res)


def test_stanza_sent_one_byte_at_a_time(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = ("<message to='%s' type='chat'><body>slow \u00e9\u2603 drip</body></message>" % r.jid).encode()
    for i in range(len(data)):
        s.send_raw(data[i:i + 1])
    m = r.wait_message("slow \u00e9\u2603 drip")
    assert m.get("from") == s.jid, dump(m)


def test_large_message_under_limit_is_delivered_intact(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    body = "".join(chr(0x41 + (i % 26)) for i in range(200000))
    s.message(r.jid, body)
    m = r.wait_message(timeout=10)
    assert body_of(m) == body, "200 KB body altered (got %d chars)" % len(body_of(m) or "")


def test_many_sessions_exchange_messages(stack, login, new_user):
    n = 12
    users = [new_user("many") for _ in range(n)]
    cs = [login(u, resource="m") for u in users]
    for i, c in enumerate(cs):
        for k in range(5):
            c.message(cs[(i + 1) % n].jid, "from %d #%d" % (i, k))
    for i, c in enumerate(cs):
        src = (i - 1) % n
        for k in range(5):
            m = c.next_message()
            assert body_of(m) == "from %d #%d" % (src, k) and m.get("from") == cs[src].jid, dump(m)


def test_unavailable_resource_gets_no_bare_jid_messages(stack, login, new_user):
    a, b = new_user(), new_user()
    r1 = login(a, resource="r1", priority=5)
    r2 = login(a, resource="r2", priority=1)
    s = login(b, resource="s")
    r1.send("<presence type='unavailable'/>")
    # r2 sees r1 go unavailable; after that the router knows too.
    r2.wait_for(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable"
                and e.get("from") == r1.jid, what="r1's unavailable presence")
    s.message(a.jid, "to bare after r1 left")
    r2.wait_message("to bare after r1 left", sender=s.jid)
    s.message(r1.jid, "marker r1")       # full-JID delivery still reaches r1
    assert_next_message_is(r1, "marker r1", s.jid)


def test_resource_without_initial_presence_gets_no_bare_jid_messages(stack, login, new_user):
    a, b = new_user(), new_user()
    quiet = login(a, resource="quiet", priority=False)   # bound, never available
    avail = login(a, resource="avail", priority=0)
    s = login(b, resource="s")
    s.message(a.jid, "bare to available only")
    avail.wait_message("bare to available only", sender=s.jid)
    s.message(quiet.jid, "marker quiet")
    assert_next_message_is(quiet, "marker quiet", s.jid)
