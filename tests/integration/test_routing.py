"""Routing of messages, presence and iq (RFC 6120 section 10, RFC 6121 section 8)."""

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
