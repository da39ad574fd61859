"""The router's side of federation over its real link (docs/PROTOCOL.md, "Server-to-server"):
a stand-in s2s frontend (a ZeroMQ DEALER that says hello with the s2s flag, as
c2s-frontend does with s2s_listen set) gets the stanzas a real client sends to another
domain as s2s-out, and what it hands the router as s2s-in reaches the client or is answered
back out. No server-to-server connection is made here: those are the frontend's, tested
with it."""

import os
import struct
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import DOMAIN, running_private_stack
from xmpp_client import (NS_CLIENT, NS_DISCO_INFO, NS_STANZAS, XMPPClient, dump, q,
                         stanza_error_condition)

REMOTE = "remote.example"
ROMEO = "romeo@" + REMOTE
HDR = ">BBBBQIBBBB"
T_HELLO, T_HEARTBEAT, T_S2S_OUT, T_S2S_IN, T_S2S_ACK = 1, 2, 25, 26, 27
KIND = {"message": 1, "presence": 2, "iq": 3}
STYPE = {None: 0, "normal": 1, "chat": 2, "error": 5, "unavailable": 6, "subscribe": 7,
         "subscribed": 8, "unsubscribe": 9, "unsubscribed": 10, "probe": 11, "get": 12, "set": 13,
         "result": 14}


def header(type_, conn=0, flags=0, kind=0, stype=0, fields=(), seq=0):
    out = struct.pack(HDR, 0x58, 1, type_, flags, conn, seq, kind, stype, 0, len(fields))
    for f in fields:
        out += struct.pack(">H", len(f)) + f
    return out


def parse_header(data):
    magic, version, type_, flags, conn, seq, kind, stype, status, n = struct.unpack_from(HDR, data)
    pos, fields = struct.calcsize(HDR), []
    for _ in range(n):
        (ln,) = struct.unpack_from(">H", data, pos)
        fields.append(data[pos + 2:pos + 2 + ln].decode())
        pos += 2 + ln
    assert magic == 0x58 and version == 1 and pos == len(data)
    return {"type": type_, "flags": flags, "conn": conn, "seq": seq, "kind": kind,
            "stype": stype, "fields": fields}


class FakeS2S:
    """The router's view of an s2s frontend: hello with flag 0x01, heartbeats, s2s-in out,
    s2s-out in."""

    def __init__(self, zmq, port, name="fake-s2s"):
        self.epoch = int.from_bytes(os.urandom(8), "big")
        self.name = name.encode()
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IDENTITY, b"%s:%016x" % (self.name, self.epoch))
        self.sock.connect("tcp://127.0.0.1:%d" % port)
        self.zmq = zmq
        self.backlog = []
        self.sock.send_multipart([header(T_HELLO, conn=self.epoch, flags=1, fields=(self.name,))])
        hello = self.recv(lambda h, p: h["type"] == T_HELLO, "the router's hello")
        assert hello[0]["fields"] == ["router"]

    def heartbeat(self):
        self.sock.send_multipart([header(T_HEARTBEAT, conn=self.epoch, fields=(self.name,))])

    def recv(self, pred, what, timeout=10.0):
        """The first message matching pred(header, payload), earlier ones that did not
        match included (they stay for a later call); heartbeats sent meanwhile, so the
        router keeps us alive however long it takes."""
        for i, (h, payload) in enumerate(self.backlog):
            if pred(h, payload):
                del self.backlog[i]
                return h, payload
        deadline = time.monotonic() + timeout
        beat = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - beat >= 1.0:
                self.heartbeat()
                beat = time.monotonic()
            if self.sock.poll(200):
                parts = self.sock.recv_multipart()
                h = parse_header(parts[0])
                payload = parts[1].decode() if len(parts) > 1 else None
                if pred(h, payload):
                    return h, payload
                if h["type"] != T_HEARTBEAT:
                    self.backlog.append((h, payload))
        raise AssertionError("no %s from the router within %.0fs; got %s"
                             % (what, timeout, [(h["type"], p) for h, p in self.backlog]))

    def s2s_out(self, pred, what):
        """The next s2s-out whose parsed stanza matches pred: (header, element)."""
        def match(h, p):
            if h["type"] != T_S2S_OUT:
                return False
            return pred(_first(ET.fromstring(wrap(p))))
        h, p = self.recv(match, what)
        el = _first(ET.fromstring(wrap(p)))
        # The header's facts are the stanza's: to, from (both required), no connection.
        assert h["fields"][0] == el.get("to") and h["fields"][1] == el.get("from"), (h, p)
        assert h["conn"] == 0 and h["flags"] == 0
        assert "jabber:client" not in p.split(">", 1)[0], p  # no xmlns on the top element
        return h, el

    def s2s_in(self, xml, conn=1):
        """Hands the router a stanza another server sent (from already checked)."""
        el = _first(ET.fromstring(wrap(xml)))
        name = el.tag.split("}")[-1]
        fields = (el.get("to").encode(), el.get("from").encode(), (el.get("id") or "").encode())
        self.sock.send_multipart([header(T_S2S_IN, conn=conn, kind=KIND[name],
                                         stype=STYPE[el.get("type")], fields=fields),
                                  xml.encode()])

    def ack(self, *seqs):
        """s2s-ack: done with these s2s-out (written to a server connection, or bounced)."""
        self.sock.send_multipart([header(T_S2S_ACK, seq=len(seqs)),
                                  b"".join(struct.pack(">I", s) for s in seqs)])

    def close(self):
        self.sock.close()
        self.ctx.term()


def wrap(payload):
    """A payload (no xmlns on its top element) parsed in the stream's default namespace."""
    return "<w xmlns='%s'>%s</w>" % (NS_CLIENT, payload) if payload else "<w/>"


def _first(el):
    return list(el)[0]


@pytest.fixture
def zmq():
    return pytest.importorskip("zmq")


def login(ps, user, resource):
    c = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile, timeout=5.0)
    c.login(user.localpart, user.password, resource=resource)
    c.presence(0)
    token = "sync-%s" % resource
    c.message(c.jid, token)
    c.wait_message(token, sender=c.jid)
    return c


def test_no_s2s_frontend_remote_server_not_found(private_stack):
    ps = private_stack
    c = login(ps, ps.new_user("nos2s"), "r")
    try:
        mid = c.message(ROMEO, "anyone there?")
        err = c.wait_for(lambda e: e.get("id") == mid and e.get("type") == "error",
                         what="the bounce")
        assert stanza_error_condition(err) == ("cancel", "remote-server-not-found"), dump(err)
    finally:
        c.close()


def test_stanzas_leave_and_arrive_through_the_s2s_frontend(private_stack, zmq):
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port)
    user = ps.new_user("fed")
    c = login(ps, user, "desk")
    try:
        # Out: the client's message, 'from' its full JID, 'to' as sent.
        mid = c.message(ROMEO + "/balcony", "wherefore art thou")
        h, el = fake.s2s_out(lambda e: e.get("id") == mid, "the message")
        assert el.get("from") == c.jid and el.get("to") == ROMEO + "/balcony", ET.tostring(el)
        assert el.findtext(q(NS_CLIENT, "body")) == "wherefore art thou"
        assert h["kind"] == KIND["message"] and h["stype"] == STYPE["chat"]

        # In: a message from the remote user reaches the client, as another server sent it.
        fake.s2s_in("<message from='%s/balcony' to='%s' type='chat' id='in1'>"
                    "<body>by any other name</body></message>" % (ROMEO, user.jid))
        m = c.wait_message("by any other name", sender=ROMEO + "/balcony")
        assert m.get("to") == user.jid, dump(m)

        # A remote server's disco#info to our domain is answered back out.
        fake.s2s_in("<iq from='%s' to='%s' type='get' id='d1'><query xmlns='%s'/></iq>"
                    % (REMOTE, DOMAIN, NS_DISCO_INFO))
        _, res = fake.s2s_out(lambda e: e.get("id") == "d1", "the disco#info result")
        assert res.get("type") == "result" and res.get("from") == DOMAIN and res.get("to") == REMOTE
        ident = res.find("%s/%s" % (q(NS_DISCO_INFO, "query"), q(NS_DISCO_INFO, "identity")))
        assert ident is not None and ident.get("category") == "server", ET.tostring(res)

        # Local users see every service; other domains see those open to them: the rooms,
        # not the upload service (local accounts only).
        items = "{http://jabber.org/protocol/disco#items}item"
        mine = c.iq("get", "<query xmlns='http://jabber.org/protocol/disco#items'/>", to=DOMAIN)
        local_items = [i.get("jid") for i in mine.iter(items)]
        assert {"conference." + DOMAIN, "upload." + DOMAIN} <= set(local_items), dump(mine)
        fake.s2s_in("<iq from='%s' to='%s' type='get' id='d2'>"
                    "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>" % (REMOTE, DOMAIN))
        _, res = fake.s2s_out(lambda e: e.get("id") == "d2", "the disco#items result")
        assert res.get("type") == "result", ET.tostring(res)
        assert [i.get("jid") for i in res.iter(items)] == ["conference." + DOMAIN], \
            ET.tostring(res)
        # A remote user asking the upload service for a slot: service-unavailable.
        fake.s2s_in("<iq from='%s/balcony' to='upload.%s' type='get' id='u1'><request "
                    "xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='3'/></iq>"
                    % (ROMEO, DOMAIN))
        _, err = fake.s2s_out(lambda e: e.get("id") == "u1", "the refused slot request")
        assert err.get("type") == "error", ET.tostring(err)
        assert err.find("{%s}error/{%s}service-unavailable" % (NS_CLIENT, NS_STANZAS)) \
            is not None, ET.tostring(err)
        # A remote user may join an existing room, not make one (XEP-0045 10.1.1).
        fake.s2s_in("<presence from='%s/balcony' to='room@conference.%s/romeo' id='j1'>"
                    "<x xmlns='http://jabber.org/protocol/muc'/></presence>" % (ROMEO, DOMAIN))
        _, err = fake.s2s_out(lambda e: e.get("id") == "j1", "the refused creation")
        assert err.get("type") == "error", ET.tostring(err)
        assert err.find("{%s}error/{%s}not-allowed" % (NS_CLIENT, NS_STANZAS)) is not None, \
            ET.tostring(err)

        # A message to an account that does not exist: service-unavailable back out.
        fake.s2s_in("<message from='%s/balcony' to='nobody-%s@%s' type='chat' id='nx'>"
                    "<body>x</body></message>" % (ROMEO, os.urandom(4).hex(), DOMAIN))
        _, err = fake.s2s_out(lambda e: e.get("id") == "nx", "the error")
        assert err.get("type") == "error" and err.get("to") == ROMEO + "/balcony"
        cond = _first(err.find(q(NS_CLIENT, "error")))
        assert cond.tag == q(NS_STANZAS, "service-unavailable"), ET.tostring(err)

        # A subscription request leaves stamped with the bare JID.
        c.send("<presence to='%s' type='subscribe' id='sub1'/>" % ROMEO)
        _, p = fake.s2s_out(lambda e: e.get("type") == "subscribe", "the subscription request")
        assert p.get("from") == user.jid and p.get("to") == ROMEO
    finally:
        c.close()
        fake.close()


def test_archive_and_carbons_with_a_remote_contact(private_stack, zmq):
    """XEP-0313: what a user sends to and gets from another domain is in its archive
    (directions out and in), stamped with its stanza-id; XEP-0280: its other resource gets
    the carbon copies."""
    from test_mam import NS_SID, query
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mam")
    user = ps.new_user("arch")
    c = login(ps, user, "one")
    c2 = login(ps, user, "two")
    try:
        r = c2.iq("set", "<enable xmlns='urn:xmpp:carbons:2'/>")
        assert r.get("type") == "result", dump(r)
        mid = c.message(ROMEO, "out to romeo")
        _, el = fake.s2s_out(lambda e: e.get("id") == mid, "the message")
        sid = el.find("{%s}stanza-id" % NS_SID)
        assert sid is not None and sid.get("by") == user.jid, ET.tostring(el)
        c2.wait_for(lambda e: e.find("{urn:xmpp:carbons:2}sent") is not None, what="sent carbon")
        fake.s2s_in("<message from='%s/balcony' to='%s' type='chat' id='back'>"
                    "<body>in from romeo</body></message>" % (ROMEO, user.jid))
        m = c.wait_message("in from romeo", sender=ROMEO + "/balcony")
        sids = [s for s in m.findall("{%s}stanza-id" % NS_SID) if s.get("by") == user.jid]
        assert len(sids) == 1, dump(m)
        page = query(c, with_=ROMEO)
        assert page.bodies == ["out to romeo", "in from romeo"], page.bodies
        assert page.ids[1] == sids[0].get("id")
    finally:
        c.close()
        c2.close()
        fake.close()


def test_remote_user_reads_pep_nodes_as_the_access_model_allows(private_stack, zmq):
    """XEP-0163 / XEP-0060 6.5: a user at another domain reads an account's node with the
    open access model (OMEMO keys are published so), not one restricted to presence
    subscribers; the answers go back out through s2s."""
    from pep_helpers import NS_PUBSUB, publish, published_id
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-pep")
    user = ps.new_user("pep")
    c = login(ps, user, "one")
    try:
        published_id(publish(c, "urn:example:open", "<open xmlns='urn:example'/>", "i1",
                             options={"pubsub#access_model": "open"}))
        published_id(publish(c, "urn:example:closed", "<closed xmlns='urn:example'/>", "i2"))
        for node, iid in (("urn:example:open", "g1"), ("urn:example:closed", "g2")):
            fake.s2s_in("<iq from='%s/r' to='%s' type='get' id='%s'><pubsub xmlns='%s'>"
                        "<items node='%s'/></pubsub></iq>" % (ROMEO, user.jid, iid, NS_PUBSUB, node))
        _, res = fake.s2s_out(lambda e: e.get("id") == "g1", "the open node's items")
        assert res.get("type") == "result" and res.get("from") == user.jid, ET.tostring(res)
        items = res.find("{%s}pubsub/{%s}items" % (NS_PUBSUB, NS_PUBSUB))
        assert [i.get("id") for i in items] == ["i1"], ET.tostring(res)
        _, err = fake.s2s_out(lambda e: e.get("id") == "g2", "the closed node's answer")
        assert err.get("type") == "error" and err.get("to") == ROMEO + "/r", ET.tostring(err)
        # Publishing is the owner's.
        fake.s2s_in("<iq from='%s/r' to='%s' type='set' id='p1'><pubsub xmlns='%s'><publish "
                     "node='urn:example:open'><item id='x'/></publish></pubsub></iq>"
                     % (ROMEO, user.jid, NS_PUBSUB))
        _, err = fake.s2s_out(lambda e: e.get("id") == "p1", "the refused publish")
        assert err.get("type") == "error", ET.tostring(err)
        assert err.find("{%s}error/{%s}forbidden" % (NS_CLIENT, NS_STANZAS)) is not None, \
            ET.tostring(err)
    finally:
        c.close()
        fake.close()


def weight(name, domain):
    """The router's weight of (frontend name, domain) (docs/PROTOCOL.md): FNV-1a over both
    with a 0xff separator, then the splitmix64 finaliser. The highest carries the domain."""
    m = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for b in name.encode() + b"\xff" + domain.encode():
        h = ((h ^ b) * 0x100000001b3) & m
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & m
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & m
    return h ^ (h >> 31)


def close_all(fakes):
    """Closes every stand-in frontend, those a test closed already included."""
    for f in fakes:
        try:
            f.close()
        except Exception:  # noqa: BLE001 - closed above
            pass


def next_out(live, pred, what, timeout=15.0):
    """(fake, header, element) of the first s2s-out matching pred that any of the `live`
    stand-ins gets, all of them sending heartbeats meanwhile (the others are silent). One
    that does not match is confirmed (s2s-ack), as a frontend that wrote it would."""
    deadline = time.monotonic() + timeout
    beat = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - beat >= 0.5:
            for f in live:
                f.heartbeat()
            beat = time.monotonic()
        for f in live:
            if f.sock.poll(50):
                parts = f.sock.recv_multipart()
                h = parse_header(parts[0])
                if h["type"] != T_S2S_OUT:
                    continue
                el = _first(ET.fromstring(wrap(parts[1].decode())))
                if pred(el):
                    return f, h, el
                f.ack(h["seq"])
    raise AssertionError("no %s reached %s within %.0fs" % (what, [f.name for f in live],
                                                              timeout))


def test_unconfirmed_stanzas_survive_their_s2s_frontend(stack, zmq):
    """Issue #17, failure behaviour: the router keeps each stanza for another domain until
    the s2s frontend that took it confirms it (s2s-ack); when that frontend dies, what it
    had not confirmed goes out again through the frontend that carries the domain now, and
    with none left the sender gets remote-server-timeout: never lost unseen. A frontend
    found not connected is passed over at once, not after frontend_timeout."""
    with running_private_stack(stack, "s2sack", router_env={"frontend_timeout": "2000"}) as ps:
        names = ["fake-s2s-%s" % os.urandom(3).hex() for _ in range(3)]
        names.sort(key=lambda n: weight(n, REMOTE), reverse=True)
        first, second, third = fakes = [FakeS2S(zmq, ps.router_port, name=n) for n in names]
        c = login(ps, ps.new_user("fail"), "r")
        try:
            def is_(mid):
                return lambda e: e.get("id") == mid

            # The heaviest frontend carries the domain; it confirms one stanza, not the other.
            m1 = c.message(ROMEO, "confirmed")
            f, h1, _ = next_out(fakes, is_(m1), "the first message")
            assert f is first and h1["seq"] != 0, (f.name, h1)
            first.ack(h1["seq"])
            m2 = c.message(ROMEO, "not confirmed")
            f, h2, _ = next_out(fakes, is_(m2), "the second message")
            assert f is first and h2["seq"] not in (0, h1["seq"]), (f.name, h2)

            # It falls silent (heartbeats stop): once the router gives it up, the stanza it
            # did not confirm goes through the next one by weight, the confirmed one not.
            live = [second, third]
            f, h, el = next_out(live, lambda e: e.get("id") in (m1, m2), "the resent message")
            assert f is second and el.get("id") == m2, (f.name, ET.tostring(el))
            second.ack(h["seq"])
            assert el.findtext(q(NS_CLIENT, "body")) == "not confirmed"
            assert el.get("from") == c.jid and el.get("to") == ROMEO, ET.tostring(el)

            # The second takes one and is killed (its connection closes): the next stanza
            # goes to the third at once, the unconfirmed one when the router gives the
            # second up.
            m3 = c.message(ROMEO, "held by the second")
            f, h3, _ = next_out(live, is_(m3), "the third message")
            assert f is second, f.name
            second.close()
            live = [third]
            time.sleep(0.5)  # the router's link sees the connection go
            m4 = c.message(ROMEO, "after the kill")
            got = []
            while len(got) < 2:
                f, h, el = next_out(live, lambda e: e.get("id") in (m3, m4), "m3 and m4")
                third.ack(h["seq"])
                got.append(el.get("id"))
            assert got == [m4, m3], "the third got %s (m3 %s, m4 %s)" % (got, m3, m4)

            # The last one dies holding a stanza: nobody can take it, the sender is told.
            m5 = c.message(ROMEO, "nobody left")
            f, h5, _ = next_out(live, is_(m5), "the fifth message")
            third.close()
            err = c.wait_for(lambda e: e.get("id") == m5 and e.get("type") == "error",
                             what="the bounce of the unconfirmed stanza", timeout=15)
            assert stanza_error_condition(err) == ("wait", "remote-server-timeout"), dump(err)
            assert err.get("from") == ROMEO, dump(err)
            # No error for the others: each was sent once more or confirmed.
            c.message(c.jid, "sync-end")
            c.wait_message("sync-end", sender=c.jid)
            assert not [e for e in c.skipped if e.get("type") == "error"], \
                [dump(e) for e in c.skipped]
        finally:
            c.close()
            close_all(fakes)


def test_remote_contact_asks_last_activity(private_stack, zmq):
    """XEP-0012 section 3 across domains: a user at another domain learns an account's last
    activity only with a subscription to its presence (RFC 6121): forbidden before, an
    answer (seconds 0: online now) once the account approved it."""
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-last")
    user = ps.new_user("last")
    c = login(ps, user, "one")
    try:
        ask = ("<iq from='%s/balcony' to='%s' type='get' id='%%s'>"
               "<query xmlns='jabber:iq:last'/></iq>" % (ROMEO, user.jid))
        fake.s2s_in(ask % "l1")
        _, err = fake.s2s_out(lambda e: e.get("id") == "l1", "the refusal")
        assert err.get("type") == "error" and err.get("to") == ROMEO + "/balcony", \
            ET.tostring(err)
        assert err.find("{%s}error/{%s}forbidden" % (NS_CLIENT, NS_STANZAS)) is not None, \
            ET.tostring(err)

        # Romeo asks to see the user's presence; the user approves (a 'from' subscription).
        fake.s2s_in("<presence from='%s' to='%s' type='subscribe' id='s1'/>" % (ROMEO, user.jid))
        c.wait_for(lambda e: e.get("type") == "subscribe" and e.get("from") == ROMEO,
                   what="the subscription request")
        c.send("<presence to='%s' type='subscribed'/>" % ROMEO)
        fake.s2s_out(lambda e: e.get("type") == "subscribed", "the approval")
        fake.s2s_in(ask % "l2")
        _, res = fake.s2s_out(lambda e: e.get("id") == "l2", "the answer")
        assert res.get("type") == "result" and res.get("from") == user.jid, ET.tostring(res)
        assert res.find("{jabber:iq:last}query").get("seconds") == "0", ET.tostring(res)
    finally:
        c.close()
        fake.close()


def test_unconfirmed_stanza_goes_to_the_restarted_s2s_frontend(stack, zmq):
    """An s2s frontend that is killed holding an unconfirmed stanza and restarted
    (same name, new epoch) before frontend_timeout wins the domain again (the weight is by
    name): the stanza goes out again through it, not bounced. The router must not give up
    the stale epoch's stanzas before the new one is a candidate for their domain."""
    with running_private_stack(stack, "s2srestart") as ps:
        name = "fake-s2s-%s" % os.urandom(3).hex()
        old = FakeS2S(zmq, ps.router_port, name=name)
        c = login(ps, ps.new_user("restart"), "r")
        new = None
        try:
            mid = c.message(ROMEO, "held when the frontend died")
            f, h, _ = next_out([old], lambda e: e.get("id") == mid, "the message")
            assert h["seq"] != 0, h
            old.close()  # killed before it confirmed the stanza
            new = FakeS2S(zmq, ps.router_port, name=name)  # restarted: a new epoch
            try:
                # It may come before the router's hello (kept in the backlog then).
                early = [(bh, bp) for bh, bp in new.backlog if bh["type"] == T_S2S_OUT
                         and _first(ET.fromstring(wrap(bp))).get("id") == mid]
                if early:
                    h2 = early[0][0]
                else:
                    _, h2, el = next_out([new], lambda e: e.get("id") == mid,
                                         "the message sent again", timeout=5)
                new.ack(h2["seq"])
            except AssertionError:
                errs = [dump(e) for e in c.skipped if e.get("type") == "error"]
                try:
                    errs.append(dump(c.wait_for(lambda e: e.get("type") == "error",
                                                what="an error", timeout=2)))
                except Exception:  # noqa: BLE001 - none came
                    pass
                raise AssertionError("not resent through the restarted frontend; the sender "
                                     "got: %s" % errs)
        finally:
            c.close()
            if new:
                new.close()


def test_late_ack_of_an_earlier_registration_does_not_confirm_a_new_stanza(stack, zmq):
    """An s2s frontend the router gave up (missed heartbeats) that comes back says hello
    again under the same routing id and gets a fresh journal, numbered from a new random
    start. Its confirmation of a stanza it took before (written late, once its server
    connection came up) must not confirm the new stanza that got the same number: when it
    then dies, that new stanza has to go out through another frontend (or bounce), not be
    lost unseen."""
    with running_private_stack(stack, "s2sseq", router_env={"frontend_timeout": "2000"}) as ps:
        names = ["fake-s2s-%s" % os.urandom(3).hex() for _ in range(2)]
        names.sort(key=lambda n: weight(n, REMOTE), reverse=True)
        a, b = [FakeS2S(zmq, ps.router_port, name=n) for n in names]
        c = login(ps, ps.new_user("seq"), "r")
        try:
            m1 = c.message(ROMEO, "taken before the stall")
            f, h1, _ = next_out([a, b], lambda e: e.get("id") == m1, "the first message")
            assert f is a, f.name
            # a stalls past frontend_timeout: the router gives it up and m1 goes through b.
            _, hb, _ = next_out([b], lambda e: e.get("id") == m1, "m1 through b", timeout=10)
            b.ack(hb["seq"])
            # a comes back: the router does not know it any more and asks for a hello.
            a.heartbeat()
            a.recv(lambda h, p: h["type"] == T_HELLO, "the router's hello")
            a.sock.send_multipart([header(T_HELLO, conn=a.epoch, flags=1, fields=(a.name,))])
            a.recv(lambda h, p: h["type"] == T_HELLO, "the answer to the new hello")
            m2 = c.message(ROMEO, "taken after the new hello")
            f, h2, _ = next_out([a, b], lambda e: e.get("id") == m2, "the second message")
            assert f is a, f.name
            # a writes m1 at last (its connection came up) and says so; m2 is still queued.
            a.ack(h1["seq"])
            time.sleep(0.3)
            a.close()  # a dies holding m2
            try:
                _, h3, _ = next_out([b], lambda e: e.get("id") == m2, "m2 sent again",
                                    timeout=10)
                b.ack(h3["seq"])
            except AssertionError:
                errs = [dump(e) for e in c.skipped if e.get("type") == "error"]
                raise AssertionError("m2 (seq %d) lost: not sent again after a's late ack of "
                                     "m1 (seq %d); sender errors: %s"
                                     % (h2["seq"], h1["seq"], errs))
        finally:
            c.close()
            close_all([a, b])
