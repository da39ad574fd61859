"""Federation with a real peer: private Prosody servers from Debian's `prosody` package
(prosody_peer.py), each with its own config, domain, certificate from a test CA made here,
and every DNS question answered by the test's own DNS server.

The first tests federate two Prosody servers with each other through the harness alone, by
certificate (SASL EXTERNAL, XEP-0178), by Server Dialback (XEP-0220) and over XEP-0368
direct TLS, and check that a Prosody requiring certificates refuses a peer without a valid
one: they prove the harness (CA, DNS, configs, the log probe, the scenario helpers) before
our server takes one of the seats. The tests against our server use a private stack with its
own domain, one frontend serving c2s and s2s (s2s_helpers.our_server).

Domains end in .example: libunbound (Prosody's resolver) answers .test and .localhost
itself and never asks the test's DNS server (prosody_peer.py).
"""

import uuid
from contextlib import ExitStack, contextmanager

import pytest

import prosody_peer as pp
from s2s_helpers import (befriend_chat_presence, dns, online, opened,  # noqa: F401 (fixtures)
                         our_server, pki)

_unavailable = pp.available()
pytestmark = pytest.mark.skipif(_unavailable is not None, reason=_unavailable or "")

# ------------------------------------------------------------------ fixtures
@contextmanager
def prosody(workdir, domain, cert, trust, dns, auth, direct_tls=False):
    """A started ProsodyPeer whose domain FakeDNS points at (direct_tls: only through
    _xmpps-server to its direct TLS port, the SRV target a name of its own, so nothing
    reaches its STARTTLS port); stopped and checked after."""
    peer = pp.ProsodyPeer(workdir / domain, domain, cert, trust, dns, auth,
                          direct_tls=direct_tls)
    if direct_tls:
        dns.xmpp_server(domain, peer.s2s_tls_port, service="xmpps-server",
                        target="xmpps." + domain)
    else:
        dns.xmpp_server(domain, peer.s2s_port)
    peer.start()
    try:
        yield peer
    finally:
        problems = peer.stop()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def cert_pair(tmp_path_factory, pki, dns):
    """pros1.example and pros2.example: certificates from pki.ca, which both trust;
    s2s_secure_auth, no dialback."""
    tmp = tmp_path_factory.mktemp("s2s-cert")
    with prosody(tmp, "pros1.example", pki.ca.issue("pros1.example"), pki.ca.cafile, dns,
                 "certificate") as p1, \
            prosody(tmp, "pros2.example", pki.ca.issue("pros2.example"), pki.ca.cafile, dns,
                    "certificate") as p2:
        yield p1, p2


@pytest.fixture(scope="module")
def dialback_pair(tmp_path_factory, pki, dns):
    """prosd1.example and prosd2.example: certificates from pki.untrusted, trusting only
    pki.ca (so no certificate verifies); s2s_secure_auth off, mod_dialback."""
    tmp = tmp_path_factory.mktemp("s2s-dialback")
    with prosody(tmp, "prosd1.example", pki.untrusted.issue("prosd1.example"), pki.ca.cafile,
                 dns, "dialback") as p1, \
            prosody(tmp, "prosd2.example", pki.untrusted.issue("prosd2.example"),
                    pki.ca.cafile, dns, "dialback") as p2:
        yield p1, p2


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory, pki, dns):
    """prost1.example and prost2.example as cert_pair, published in DNS only with XEP-0368
    direct TLS (_xmpps-server to their direct TLS ports)."""
    tmp = tmp_path_factory.mktemp("s2s-direct-tls")
    with prosody(tmp, "prost1.example", pki.ca.issue("prost1.example"), pki.ca.cafile, dns,
                 "certificate", direct_tls=True) as p1, \
            prosody(tmp, "prost2.example", pki.ca.issue("prost2.example"), pki.ca.cafile,
                    dns, "certificate", direct_tls=True) as p2:
        yield p1, p2


@pytest.fixture(autouse=True)
def _prosody_logs_on_failure(request):
    """On a test failure, prints what each running Prosody logged during the test."""
    sizes = {p: p.log_size() for p in pp.ProsodyPeer.running}
    peers = list(pp.ProsodyPeer.running)
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for p in peers + [p for p in pp.ProsodyPeer.running if p not in peers]:
            print(p.dump_log(since=sizes.get(p, 0), limit=8000))


# ------------------------------------------------------------------ the harness alone
def test_two_prosody_servers_federate_by_certificate(cert_pair, dns, opened):
    p1, p2 = cert_pair
    a = online(opened, p1, p1.new_user("a"), "one")
    b = online(opened, p2, p2.new_user("b"), "two")
    pp.befriend(a, b)
    pp.chat(a, b, "hello from pros1 \u2603")
    pp.chat(b, a, "hello back from pros2")
    pp.presence_both_ways(a, b)
    # Each reached the other through the test's DNS (SRV, then the target's address) ...
    for domain in ("pros1.example", "pros2.example"):
        assert dns.asked("_xmpp-server._tcp." + domain, "SRV"), dns.queries
        assert dns.asked(domain, "A"), dns.queries
    # ... and both streams were authenticated by certificate, chain and name verified.
    for me, other, other_port in ((p1, "pros2.example", p2.s2s_port),
                                  (p2, "pros1.example", p1.s2s_port)):
        out = me.wait_authenticated(other, "outgoing")
        assert (out.mechanism, out.chain, out.identity) == ("EXTERNAL", "valid", "valid")
        assert out.port == str(other_port)
        inc = me.wait_authenticated(other, "incoming")
        assert (inc.mechanism, inc.chain, inc.identity) == ("EXTERNAL", "valid", "valid")
        assert inc.port == str(me.s2s_port)
    assert all(a.mechanism == "EXTERNAL" for a in
               p1.s2s_authentications() + p2.s2s_authentications())


def test_two_prosody_servers_federate_by_dialback(dialback_pair, opened):
    p1, p2 = dialback_pair
    a = online(opened, p1, p1.new_user("a"), "one")
    b = online(opened, p2, p2.new_user("b"), "two")
    pp.befriend(a, b)
    pp.chat(a, b, "dialback hello from prosd1")
    pp.chat(b, a, "dialback hello back")
    pp.presence_both_ways(a, b)
    for me, other in ((p1, "prosd2.example"), (p2, "prosd1.example")):
        for direction in ("outgoing", "incoming"):
            auth = me.wait_authenticated(other, direction)
            assert auth.mechanism == "dialback"
            assert auth.chain != "valid", "the certificate was meant not to verify"


def test_two_prosody_servers_federate_over_direct_tls(tls_pair, dns, opened):
    """XEP-0368: each finds the other only by _xmpps-server and connects with TLS from
    the first byte to its direct TLS port."""
    p1, p2 = tls_pair
    a = online(opened, p1, p1.new_user("a"), "one")
    b = online(opened, p2, p2.new_user("b"), "two")
    pp.befriend(a, b)
    pp.chat(a, b, "direct TLS hello")
    pp.chat(b, a, "direct TLS reply")
    for me, other in ((p1, p2), (p2, p1)):
        assert dns.asked("_xmpps-server._tcp." + other.domain, "SRV")
        out = me.wait_authenticated(other.domain, "outgoing")
        assert (out.mechanism, out.chain, out.port) == ("EXTERNAL", "valid",
                                                        str(other.s2s_tls_port))
        inc = me.wait_authenticated(other.domain, "incoming")
        assert (inc.mechanism, inc.chain, inc.port) == ("EXTERNAL", "valid",
                                                        str(me.s2s_tls_port))


def test_prosody_requiring_certificates_refuses_a_peer_without_one(cert_pair, dialback_pair,
                                                                   opened):
    """The check the certificate tests rely on: pros1 (s2s_secure_auth, no dialback) does
    not federate with prosd1, whose certificate does not verify; a message either way
    comes back as an error and is not delivered."""
    p1, d1 = cert_pair[0], dialback_pair[0]
    a = online(opened, p1, p1.new_user("a"), "one")
    b = online(opened, d1, d1.new_user("b"), "two")
    for sender, receiver in ((a, b), (b, a)):
        body = "must not arrive " + uuid.uuid4().hex[:8]
        sender.message(pp.bare(receiver.jid), body)
        m, cond = pp.wait_error(sender, pp.bare(receiver.jid))
        assert cond in ("remote-server-not-found", "remote-server-timeout"), pp.dump(m)
        # Prosody says why: the certificate (not, say, a name it could not resolve).
        text = m.findtext("%s/%s" % (pp.q(pp.NS_CLIENT, "error"), pp.q(pp.NS_STANZAS, "text")))
        assert "certificate" in (text or ""), pp.dump(m)
        receiver.im_expect_none(lambda e: e.findtext(pp.q(pp.NS_CLIENT, "body")) == body,
                                duration=0.5, what="the refused message")
    assert not [x for x in p1.s2s_authentications() if x.remote == "prosd1.example"]


# ------------------------------------------------------------------ our server and Prosody
def federate(stack, tmp_path, pki, dns, auth, tag, route="static", direct_tls=False):
    """(ExitStack, ours, peer): our private stack and a Prosody, both authenticating
    `auth`, Prosody finding ours through FakeDNS and ours finding Prosody by
    s2s_static_hosts (route 'static') or through FakeDNS too (route 'dns', s2s_dns_servers).
    direct_tls: both reach each other only by XEP-0368 direct TLS."""
    ours_domain, peer_domain = "%s-ours.example" % tag, "%s-pros.example" % tag
    if auth == "certificate":
        issuer = pki.ca          # both certificates verify against the CA both trust
    else:
        issuer = pki.untrusted   # neither verifies: dialback or nothing
    es = ExitStack()
    try:
        peer = es.enter_context(prosody(tmp_path, peer_domain, issuer.issue(peer_domain),
                                        pki.ca.cafile, dns, auth, direct_tls=direct_tls))
        static = None
        if route == "static":
            static = {peer_domain: ("tls:127.0.0.1:%d" % peer.s2s_tls_port if direct_tls
                                    else "127.0.0.1:%d" % peer.s2s_port)}
        ours = es.enter_context(our_server(
            stack, tag, ours_domain, issuer.issue(ours_domain), pki.ca.cafile, auth,
            static_hosts=static, dns_port=dns.port if route == "dns" else None,
            direct_tls=direct_tls))
        if direct_tls:
            dns.xmpp_server(ours_domain, ours.s2s_tls_port, service="xmpps-server",
                            target="xmpps." + ours_domain)
        else:
            dns.xmpp_server(ours_domain, ours.s2s_port)
    except BaseException:
        es.close()
        raise
    return es, ours, peer


def test_ours_and_prosody_by_certificate(stack, tmp_path, pki, dns, opened):
    """A user of ours adds a Prosody user; they chat both ways and see each other's
    presence; both directions authenticated by certificate (SASL EXTERNAL, XEP-0178),
    chain and name verified, as Prosody saw it. Ours reaches Prosody by s2s_static_hosts,
    Prosody reaches ours by SRV."""
    es, ours, peer = federate(stack, tmp_path, pki, dns, "certificate", "s2sc")
    with es:
        a = online(opened, ours, ours.new_user("oa"), "ours")
        b = online(opened, peer, peer.new_user("pb"), "prosody")
        befriend_chat_presence(a, b)
        out = peer.wait_authenticated(ours.domain, "outgoing")
        assert (out.mechanism, out.chain, out.identity) == ("EXTERNAL", "valid", "valid")
        assert out.port == str(ours.s2s_port)
        inc = peer.wait_authenticated(ours.domain, "incoming")
        assert (inc.mechanism, inc.chain, inc.identity) == ("EXTERNAL", "valid", "valid")
        assert dns.asked("_xmpp-server._tcp." + ours.domain, "SRV")


def test_ours_and_prosody_by_dialback(stack, tmp_path, pki, dns, opened):
    """The same with certificates neither side can verify and s2s_secure_auth off on both:
    Server Dialback (XEP-0220) both ways, here first contact from the Prosody side."""
    es, ours, peer = federate(stack, tmp_path, pki, dns, "dialback", "s2sd")
    with es:
        a = online(opened, ours, ours.new_user("oa"), "ours")
        b = online(opened, peer, peer.new_user("pb"), "prosody")
        befriend_chat_presence(b, a)
        for direction in ("incoming", "outgoing"):
            auth = peer.wait_authenticated(ours.domain, direction)
            assert auth.mechanism == "dialback" and auth.chain != "valid", auth


def test_ours_finds_prosody_by_srv(stack, tmp_path, pki, dns, opened):
    """Ours looks Prosody's domain up in DNS (s2s_dns_servers pointing at the test's DNS
    server, no static host): SRV _xmpp-server._tcp, then the target's address."""
    es, ours, peer = federate(stack, tmp_path, pki, dns, "certificate", "s2sv", route="dns")
    with es:
        a = online(opened, ours, ours.new_user("oa"), "ours")
        b = online(opened, peer, peer.new_user("pb"), "prosody")
        pp.befriend(a, b)
        pp.chat(a, b, "found you by SRV")
        assert dns.asked("_xmpp-server._tcp." + peer.domain, "SRV"), dns.queries
        inc = peer.wait_authenticated(ours.domain, "incoming")
        assert (inc.mechanism, inc.chain, inc.port) == ("EXTERNAL", "valid",
                                                        str(peer.s2s_port))


def test_ours_and_prosody_over_direct_tls(stack, tmp_path, pki, dns, opened):
    """XEP-0368 both ways: Prosody finds ours only by _xmpps-server (to s2s_tls_listen),
    ours reaches Prosody's direct TLS port (s2s_static_hosts tls:host:port)."""
    es, ours, peer = federate(stack, tmp_path, pki, dns, "certificate", "s2st",
                              direct_tls=True)
    with es:
        a = online(opened, ours, ours.new_user("oa"), "ours")
        b = online(opened, peer, peer.new_user("pb"), "prosody")
        pp.befriend(a, b)
        pp.chat(a, b, "direct TLS from ours")
        pp.chat(b, a, "direct TLS from Prosody")
        out = peer.wait_authenticated(ours.domain, "outgoing")
        assert (out.mechanism, out.chain, out.port) == ("EXTERNAL", "valid",
                                                        str(ours.s2s_tls_port))
        inc = peer.wait_authenticated(ours.domain, "incoming")
        assert (inc.mechanism, inc.chain, inc.port) == ("EXTERNAL", "valid",
                                                        str(peer.s2s_tls_port))


def test_ours_refuses_prosody_without_a_valid_certificate(stack, tmp_path, pki, dns, opened):
    """Certificates are checked: ours (s2s_secure_auth on by default) and a Prosody whose
    certificate does not verify (it would do dialback) do not federate; a message either
    way comes back to its sender as an error and never arrives."""
    ours_domain, peer_domain = "s2sx-ours.example", "s2sx-pros.example"
    with prosody(tmp_path, peer_domain, pki.untrusted.issue(peer_domain), pki.ca.cafile, dns,
                 "dialback") as peer, \
            our_server(stack, "s2sx", ours_domain, pki.ca.issue(ours_domain), pki.ca.cafile,
                       "certificate",
                       static_hosts={peer_domain: "127.0.0.1:%d" % peer.s2s_port}) as ours:
        dns.xmpp_server(ours_domain, ours.s2s_port)
        a = online(opened, ours, ours.new_user("oa"), "ours")
        b = online(opened, peer, peer.new_user("pb"), "prosody")
        for sender, receiver in ((a, b), (b, a)):
            body = "must not arrive " + uuid.uuid4().hex[:8]
            sender.message(pp.bare(receiver.jid), body)
            m, cond = pp.wait_error(sender, pp.bare(receiver.jid), timeout=30)
            assert cond in ("remote-server-not-found", "remote-server-timeout"), pp.dump(m)
            receiver.im_expect_none(lambda e: e.findtext(pp.q(pp.NS_CLIENT, "body")) == body,
                                    duration=0.5, what="the refused message")
        assert not [x for x in peer.s2s_authentications() if x.remote == ours_domain]


NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = NS_MUC + "#user"


def muc_codes(el):
    x = el.find(pp.q(NS_MUC_USER, "x"))
    return {int(s.get("code")) for s in x.findall(pp.q(NS_MUC_USER, "status"))} \
        if x is not None else set()


def muc_join(c, room, nick):
    """Sends the join presence; returns the room's answer: the self-presence (status 110)
    or an error."""
    c.send("<presence to='%s/%s'><x xmlns='%s'/></presence>" % (room, nick, NS_MUC))
    return c.im_wait(lambda e: e.tag == pp.q(pp.NS_CLIENT, "presence")
                     and e.get("from") == "%s/%s" % (room, nick)
                     and (110 in muc_codes(e) or e.get("type") == "error"),
                     pp.WAIT, "the answer from %s" % room)


def muc_talk(room, a, a_nick, b, b_nick):
    """a and b, occupants of `room` on different servers, see each other there and say
    something each: the room reflects every message to both."""
    a.im_wait(lambda e: e.get("from") == "%s/%s" % (room, b_nick) and e.get("type") is None,
              pp.WAIT, "%s's presence in the room" % b_nick)
    for sender, receiver, nick in ((a, b, a_nick), (b, a, b_nick)):
        body = "groupchat from %s %s" % (nick, uuid.uuid4().hex[:6])
        sender.send("<message to='%s' type='groupchat'><body>%s</body></message>"
                    % (room, body))
        for c in (receiver, sender):
            m = c.im_wait(lambda e: e.findtext(pp.q(pp.NS_CLIENT, "body")) == body,
                          pp.WAIT, "the groupchat message")
            assert m.get("type") == "groupchat", pp.dump(m)
            assert m.get("from") == "%s/%s" % (room, nick), pp.dump(m)


def test_ours_joins_a_room_on_prosody(stack, tmp_path, pki, dns, opened):
    """What a user of ours does with a channel elsewhere (issue #17: "join rooms
    elsewhere"): joins a room of Prosody's multi-user chat service (XEP-0045, a component
    domain of its own, rooms.DOMAIN), sees the Prosody occupant, talks with it both ways
    (groupchat through both servers), and leaves, which the other occupant sees."""
    ours_domain, peer_domain = "s2sm-ours.example", "s2sm-pros.example"
    rooms = "rooms." + peer_domain
    cert = pki.ca.issue(peer_domain, extra_names=(rooms,))
    muc = ('Component {rooms} "muc"\n'
           '    muc_room_locking = false\n'
           '    ssl = {{ certificate = {crt}; key = {key} }}\n'
           .format(rooms=pp.lua_str(rooms), crt=pp.lua_str(cert.certfile),
                   key=pp.lua_str(cert.keyfile)))
    peer = pp.ProsodyPeer(tmp_path / peer_domain, peer_domain, cert, pki.ca.cafile, dns,
                          "certificate", extra_config=muc)
    dns.xmpp_server(peer_domain, peer.s2s_port)
    dns.xmpp_server(rooms, peer.s2s_port)
    peer.start()
    try:
        hosts = {peer_domain: "127.0.0.1:%d" % peer.s2s_port,
                 rooms: "127.0.0.1:%d" % peer.s2s_port}
        with our_server(stack, "s2sm", ours_domain, pki.ca.issue(ours_domain), pki.ca.cafile,
                        "certificate", static_hosts=hosts) as ours:
            dns.xmpp_server(ours_domain, ours.s2s_port)
            a = online(opened, ours, ours.new_user("oa"), "ours")
            b = online(opened, peer, peer.new_user("pb"), "prosody")
            room = "lounge-%s@%s" % (uuid.uuid4().hex[:6], rooms)

            # Ours creates the room by joining it (Prosody's instant room), then Prosody's
            # user joins: each sees the other's presence from the room.
            me = muc_join(a, room, "alice")
            assert me.get("type") != "error" and 201 in muc_codes(me), pp.dump(me)
            me = muc_join(b, room, "bob")
            assert me.get("type") != "error", pp.dump(me)
            muc_talk(room, a, "alice", b, "bob")

            a.send("<presence to='%s/alice' type='unavailable'/>" % room)
            b.im_wait(lambda e: e.get("from") == room + "/alice"
                      and e.get("type") == "unavailable", pp.WAIT, "alice leaving")
    finally:
        problems = peer.stop()
    assert not problems, "\n".join(problems)


def test_prosody_user_joins_a_room_here(stack, tmp_path, pki, dns, opened):
    """The other way: a Prosody user joins a room of our multi-user chat service
    (conference.DOMAIN, reached through our s2s frontend), sees our occupant, talks both
    ways, asks the room's archive (XEP-0313, answered through s2s), and leaves; a room it
    names that does not exist is not created for it (XEP-0045 10.1.1: not-allowed)."""
    ours_domain, peer_domain = "s2sr-ours.example", "s2sr-pros.example"
    conference = "conference." + ours_domain
    peer = pp.ProsodyPeer(tmp_path / peer_domain, peer_domain, pki.ca.issue(peer_domain),
                          pki.ca.cafile, dns, "certificate")
    dns.xmpp_server(peer_domain, peer.s2s_port)
    peer.start()
    try:
        with our_server(stack, "s2sr", ours_domain,
                        pki.ca.issue(ours_domain, extra_names=(conference,)), pki.ca.cafile,
                        "certificate",
                        static_hosts={peer_domain: "127.0.0.1:%d" % peer.s2s_port}) as ours:
            dns.xmpp_server(ours_domain, ours.s2s_port)
            dns.xmpp_server(conference, ours.s2s_port)
            a = online(opened, ours, ours.new_user("oa"), "ours")
            b = online(opened, peer, peer.new_user("pb"), "prosody")
            room = "hall-%s@%s" % (uuid.uuid4().hex[:6], conference)

            # Ours creates the room (an instant room: the default configuration accepted).
            me = muc_join(a, room, "alice")
            assert {110, 201} <= muc_codes(me), pp.dump(me)
            res = a.im_iq("set", "<query xmlns='%s#owner'><x xmlns='jabber:x:data' "
                          "type='submit'/></query>" % NS_MUC, to=room, timeout=pp.WAIT)
            assert res.get("type") == "result", pp.dump(res)

            me = muc_join(b, room, "bob")
            assert me.get("type") != "error", pp.dump(me)
            muc_talk(room, a, "alice", b, "bob")

            # The room's archive answers the remote occupant through s2s.
            res = b.im_iq("set", "<query xmlns='urn:xmpp:mam:2' queryid='q1'/>", to=room,
                          timeout=pp.WAIT)
            assert res.get("type") == "result", pp.dump(res)
            got = b.im_take(lambda e: e.find("{urn:xmpp:mam:2}result") is not None)
            bodies = [e.findtext(".//" + pp.q(pp.NS_CLIENT, "body")) for e in got]
            assert len(bodies) == 2 and all("groupchat from" in x for x in bodies), \
                [pp.dump(e) for e in got]

            b.send("<presence to='%s/bob' type='unavailable'/>" % room)
            a.im_wait(lambda e: e.get("from") == room + "/bob"
                      and e.get("type") == "unavailable", pp.WAIT, "bob leaving")

            # Prosody's user cannot make a room here.
            err = muc_join(b, "new-%s@%s" % (uuid.uuid4().hex[:6], conference), "bob")
            assert err.get("type") == "error", pp.dump(err)
            assert err.find("%s/{%s}not-allowed" % (pp.q(pp.NS_CLIENT, "error"),
                                                    pp.NS_STANZAS)) is not None, pp.dump(err)
    finally:
        problems = peer.stop()
    assert not problems, "\n".join(problems)
