"""Bad input from one client must end that client's stream only (RFC 6120 4.9, 11)."""

import pytest

from xmpp_client import StreamClosed, XMPPClient, dump


def assert_still_serving(stack, login, new_user):
    """A fresh pair of sessions can log in and exchange a message."""
    a, b = new_user(), new_user()
    r = login(a, resource="check-r")
    s = login(b, resource="check-s")
    s.message(r.jid, "still alive")
    m = r.wait_message("still alive")
    assert m.get("from") == s.jid, dump(m)


def test_malformed_xml_disconnects_only_that_client(stack, login, new_user):
    a, b, bad = new_user(), new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    evil = login(bad, resource="evil")
    evil.send_raw(b"<message><body></message>")
    evil.expect_stream_error("not-well-formed")
    # The other sessions were not affected.
    s.message(r.jid, "after the malformed client")
    m = r.wait_message("after the malformed client")
    assert m.get("from") == s.jid, dump(m)
    assert_still_serving(stack, login, new_user)


NWF = {"not-well-formed"}


@pytest.mark.parametrize("garbage,conditions", [
    (b"<message to='a@localhost'><body>x</body></mess>", NWF),
    (b"<<<>>>", NWF),
    (b"<message to='a@localhost' type='chat' type='normal'/>", NWF),   # duplicate attribute
    (b"<foo:message xmlns='jabber:client'/>", NWF),                     # unbound prefix
    (b"<message>\xff\xfe</message>", NWF | {"unsupported-encoding"}),  # invalid UTF-8
    (b"<message>&undefined;</message>", NWF | {"restricted-xml"}),     # undeclared entity
], ids=["mismatched-end", "garbage", "duplicate-attr", "unbound-prefix", "bad-utf8",
        "undeclared-entity"])
def test_malformed_xml_variants(stack, login, new_user, garbage, conditions):
    c = login(new_user(), resource="bad")
    c.send_raw(garbage)
    c.expect_stream_error(conditions)


def test_malformed_xml_before_auth(stack, clients):
    c = clients()
    c.open_stream()
    c.starttls()
    c.send_raw(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'></wrong>")
    c.expect_stream_error("not-well-formed")


def test_doctype_is_restricted_xml(stack, clients, login, new_user):
    c = clients()
    c.send_raw(b"<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol 'lol'>]>"
               b"<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
               b"xmlns:stream='http://etherx.jabber.org/streams'>")
    c.expect_stream_error("restricted-xml")
    assert_still_serving(stack, login, new_user)


def test_billion_laughs_is_restricted_xml(stack, clients, login, new_user):
    entities = "<!ENTITY a0 'lol'>" + "".join(
        "<!ENTITY a%d '%s'>" % (i, ("&a%d;" % (i - 1)) * 10) for i in range(1, 10))
    c = clients()
    c.send_raw(("<?xml version='1.0'?><!DOCTYPE stream:stream [%s]>"
                "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams'>&a9;" % entities).encode())
    c.expect_stream_error("restricted-xml")
    assert_still_serving(stack, login, new_user)


@pytest.mark.parametrize("data", [
    b"<!-- a comment -->",
    b"<?some-pi data?>",
], ids=["comment", "processing-instruction"])
def test_comments_and_pis_are_restricted_xml(stack, login, new_user, data):
    # RFC 6120 11.1: comments and processing instructions are not allowed in a stream.
    c = login(new_user(), resource="pi")
    c.send_raw(data)
    c.expect_stream_error("restricted-xml")


def test_oversized_stanza_is_policy_violation(stack, extra_frontend, login, new_user):
    fe = extra_frontend(max_stanza_size="4096")
    a, b = new_user(), new_user()
    r = login(a, resource="r", port=fe.port)
    s = login(b, resource="s", port=fe.port)
    # A stanza well under the limit goes through.
    small = "s" * 2000
    s.message(r.jid, small)
    assert r.wait_message(small).get("from") == s.jid
    big = "B" * 8192
    s.send_tolerant("<message to='%s' type='chat'><body>%s</body></message>" % (r.jid, big))
    s.expect_stream_error("policy-violation")
    # The recipient never saw it, and is still fine.
    r.expect_nothing(lambda e: (e.findtext("{jabber:client}body") or "").startswith("BBBB"), 0.5)
    assert r.ping().get("type") == "result"


def test_oversized_stanza_sent_in_pieces(stack, extra_frontend, login, new_user):
    fe = extra_frontend(max_stanza_size="4096")
    c = login(new_user(), resource="pieces", port=fe.port)
    c.send("<message to='%s' type='chat'><body>" % c.jid)
    for _ in range(10):
        c.send_tolerant("x" * 1000)
    c.expect_stream_error("policy-violation")


def test_oversized_stanza_on_main_frontend(stack, login, new_user):
    c = login(new_user(), resource="big")
    c.send_tolerant("<message to='%s' type='chat'><body>%s</body></message>" % (c.jid, "z" * 300000))
    c.expect_stream_error("policy-violation")
    assert_still_serving(stack, login, new_user)


def test_too_deep_nesting_is_refused(stack, login, new_user):
    c = login(new_user(), resource="deep")
    depth = 1000
    c.send("<message to='%s'>%s%s</message>" % (c.jid, "<x>" * depth, "</x>" * depth))
    c.expect_stream_error({"policy-violation", "not-well-formed", "restricted-xml",
                           "resource-constraint"})
    assert_still_serving(stack, login, new_user)


def test_abrupt_disconnect_mid_stanza(stack, login, new_user, clients):
    c = login(new_user(), resource="cut")
    c.send("<message to='%s'><body>half" % c.jid)
    c.abort()
    c2 = clients()
    c2.open_stream()
    c2.send_raw(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    c2.recv()
    c2.send_raw(b"\x16\x03\x01\x00\x05garbage")   # a broken TLS ClientHello
    c2.abort()
    assert_still_serving(stack, login, new_user)


def test_whitespace_keepalive_between_stanzas_keeps_order(stack, login, new_user):
    a, b = new_user(), new_user()
    r = login(a, resource="r")
    s = login(b, resource="s")
    for i in range(5):
        s.message(r.jid, "ka %d" % i)
        s.send_raw(b" \n")
    for i in range(5):
        m = r.next_message()
        assert m.findtext("{jabber:client}body") == "ka %d" % i, dump(m)


def test_client_stream_end_answered(stack, login, new_user):
    c = login(new_user(), resource="end")
    c.end_stream()
    assert c.stream_ended and c.eof


# ------------------------------------------------------------- pieces going away
def _wait_unavailable(c, full_jid, timeout):
    return c.wait_for(lambda e: e.tag == "{jabber:client}presence" and e.get("type") == "unavailable"
                      and e.get("from") == full_jid, timeout=timeout,
                      what="unavailable presence from %s" % full_jid)


def test_frontend_sigterm_closes_streams_and_ends_sessions(stack, extra_frontend, login, new_user):
    fe = extra_frontend()
    a = new_user()
    main = login(a, resource="main")
    far = login(a, resource="far", port=fe.port)
    far.message(main.jid, "sync")
    main.wait_message("sync", sender=far.jid)
    assert fe.terminate() == 0, "frontend did not exit with status 0 after SIGTERM"
    # The client on the stopping frontend sees its stream end (with </stream:stream>, or
    # a system-shutdown stream error) and the connection close.
    while True:
        try:
            el = far.recv(timeout=5)
        except StreamClosed as e:
            assert not e.eof, "connection dropped without closing the stream"
            break
        if el.tag == "{http://etherx.jabber.org/streams}error":
            assert el.find("{urn:ietf:params:xml:ns:xmpp-streams}system-shutdown") is not None, dump(el)
            break
    far.assert_closed(5)
    # The router learns the session is gone.
    _wait_unavailable(main, far.jid, timeout=8)


def test_frontend_crash_ends_its_sessions(stack, extra_frontend, login, new_user):
    fe = extra_frontend()
    a, b = new_user(), new_user()
    main = login(a, resource="main", priority=1)
    far = login(a, resource="far", port=fe.port, priority=10)
    far.message(main.jid, "sync")
    main.wait_message("sync", sender=far.jid)
    fe.kill()
    # 5 heartbeat intervals (1 s each by default) and then some.
    _wait_unavailable(main, far.jid, timeout=12)
    s = login(b, resource="s")
    s.message(a.jid, "after crash")
    assert main.wait_message("after crash").get("from") == s.jid


def test_redis_outage_and_recovery(private_stack):
    ps = private_stack
    a, b = ps.new_user("ra"), ps.new_user("rb")
    ca = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile)
    cb = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile)
    try:
        ca.login(a.localpart, a.password, resource="a")
        cb.login(b.localpart, b.password, resource="b")
        ca.presence()
        cb.presence()
        ps.stop_redis()
        # Logins cannot be checked: temporary-auth-failure, not a crash or a hang.
        result = ps.try_login(a)
        assert result == "temporary-auth-failure", result
        # Established sessions keep working without Redis.
        ca.message(cb.jid, "no redis needed")
        assert cb.wait_message("no redis needed").get("from") == ca.jid
        # Redis comes back (empty: it keeps no data); the router reconnects by itself.
        ps.start_redis()
        assert ps.ctl("adduser", a.jid, a.password).returncode == 0
        ps.wait_login(a, timeout=10)
        assert ps.router.poll() is None, "router exited"
    finally:
        ca.close()
        cb.close()


def test_router_restart(private_stack):
    ps = private_stack
    u = ps.new_user("rr")
    ps.stop_router(allow_error_lines=False)
    ps.start_router()
    # The frontend finds the new router (heartbeats, hello) and logins work again.
    ps.wait_login(u, timeout=10)
    c = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile)
    try:
        c.login(u.localpart, u.password, resource="after")
        c.presence()
        c.message(c.jid, "router is back")
        assert c.wait_message("router is back").get("from") == c.jid
    finally:
        c.close()
