"""Resource binding (RFC 6120 section 7) and the legacy session iq (RFC 3921 / 6121 appx.)."""

import pytest

from xmpp_client import (NS_BIND, NS_SESSION, IQ_TAG, dump, q, stanza_error_condition)


def authed(clients, user, port=None):
    c = clients(port)
    c.open_stream()
    c.starttls()
    assert c.auth_scram(user.localpart, user.password) == "success"
    return c


def test_bind_client_chosen_resource(stack, clients, new_user):
    u = new_user()
    c = authed(clients, u)
    assert c.bind("laptop") == "%s/laptop" % u.jid


def test_bind_server_generated_resource(stack, clients, new_user):
    u = new_user()
    jids = []
    for _ in range(2):
        c = authed(clients, u)
        jid = c.bind(None)
        prefix = u.jid + "/"
        assert jid.startswith(prefix) and len(jid) > len(prefix), jid
        jids.append(jid)
    assert jids[0] != jids[1], "two sessions got the same generated resource: %r" % jids


def test_bound_session_can_use_its_jid(stack, clients, new_user):
    u = new_user()
    c = authed(clients, u)
    jid = c.bind("self")
    c.presence()
    c.message(jid, "note to self")
    m = c.wait_message("note to self")
    assert m.get("from") == jid and m.get("to") == jid, dump(m)


def test_legacy_session_iq(stack, clients, new_user):
    u = new_user()
    c = authed(clients, u)
    c.bind("legacy")
    res = c.iq("set", "<session xmlns='%s'/>" % NS_SESSION)
    assert res.get("type") == "result", dump(res)
    assert len(res) == 0, "session result should be empty: %s" % dump(res)
    # The session is usable afterwards.
    assert c.ping("localhost").get("type") == "result"


def test_resource_conflict_kicks_older_session(stack, clients, new_user):
    u = new_user()
    old = authed(clients, u)
    assert old.bind("dup") == u.jid + "/dup"
    old.presence()
    new = authed(clients, u)
    assert new.bind("dup") == u.jid + "/dup"
    old.expect_stream_error("conflict")
    # The newer session works, and owns the full JID.
    r = new.ping("localhost")
    assert r.get("type") == "result", dump(r)
    new.presence()
    other = new_user()
    o = authed(clients, other)
    o.bind("o")
    o.presence()
    o.message(u.jid + "/dup", "to the new session")
    m = new.wait_message("to the new session")
    assert m.get("from") == other.jid + "/o", dump(m)


@pytest.mark.parametrize("resource", [
    "del\x7fchar",        # U+007F, an ASCII control character (resourceprep C.2.1)
    "tab&#9;char",        # U+0009 written as a character reference
    "r" * 1024,           # longer than 1023 bytes
], ids=["DEL", "TAB", "too-long"])
def test_bind_invalid_resource_is_bad_request(stack, clients, new_user, resource):
    # Note: U+0007 itself cannot appear in an XML 1.0 document at all (it would be a
    # not-well-formed stream), so control characters legal in XML are used instead.
    u = new_user()
    c = authed(clients, u)
    payload = "<bind xmlns='%s'><resource>%s</resource></bind>" % (NS_BIND, resource)
    res = c.iq("set", payload)
    assert res.get("type") == "error", "invalid resource was bound: %s" % dump(res)
    etype, cond = stanza_error_condition(res)
    assert (etype, cond) == ("modify", "bad-request"), dump(res)
    # The stream stays usable and a valid resource can still be bound.
    assert c.bind("valid") == u.jid + "/valid"


def test_bind_result_has_matching_id(stack, clients, new_user):
    u = new_user()
    c = authed(clients, u)
    c.send("<iq type='set' id='bind-xyz'><bind xmlns='%s'><resource>idcheck</resource></bind></iq>"
           % NS_BIND)
    res = c.wait_for(lambda e: e.tag == IQ_TAG)
    assert res.get("id") == "bind-xyz" and res.get("type") == "result", dump(res)
    assert res.findtext("%s/%s" % (q(NS_BIND, "bind"), q(NS_BIND, "jid"))) == u.jid + "/idcheck"


def test_resource_conflict_across_frontends(stack, extra_frontend, clients, new_user):
    fe = extra_frontend()
    u = new_user()
    old = authed(clients, u, port=fe.port)
    assert old.bind("roam") == u.jid + "/roam"
    new = authed(clients, u)
    assert new.bind("roam") == u.jid + "/roam"
    old.expect_stream_error("conflict")
    new.presence()
    new.message(new.jid, "mine now")
    assert new.wait_message("mine now").get("from") == new.jid
