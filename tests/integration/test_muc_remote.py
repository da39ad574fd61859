"""Remote occupants of our rooms (XEP-0045 through s2s): what a server at another domain can
make a room keep, what a room owner can do about a server, and what happens when the
connection that carried an occupant is lost. Stanzas from the remote user are injected
through the router's real link by the stand-in s2s frontend of test_router_s2s_link
(FakeS2S)."""

import time
import xml.etree.ElementTree as ET

from conftest import running_private_stack
from test_muc import (NS_MUC, NS_REGISTER, NS_XDATA, codes, create, groupchat, new_room)
from test_router_s2s_link import (REMOTE, ROMEO, FakeS2S, T_S2S_OUT, _first, header, login,
                                  wrap, zmq)  # noqa: F401 - zmq is a fixture
from xmpp_client import NS_CLIENT, PRESENCE_TAG, dump

T_S2S_CLOSED = 28
IPC_S2S_CLOSED_LOST = 0x01


def out_el(h, p):
    return _first(ET.fromstring(wrap(p))) if h["type"] == T_S2S_OUT and p else None


def collect(fake, pred, duration):
    """Every s2s-out matching pred(element) within `duration` seconds."""
    got = []
    deadline = time.monotonic() + duration

    def match(h, p):
        el = out_el(h, p)
        return el is not None and pred(el)

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            h, p = fake.recv(match, "x", timeout=left)
        except AssertionError:
            return got
        got.append(out_el(h, p))


def remote_join(fake, room, nick, full, id_, conn=1):
    """A remote user's join presence; returns the room's answer to it (self-presence 110,
    or the error)."""
    fake.s2s_in("<presence from='%s' to='%s/%s' id='%s'><x xmlns='%s'/></presence>"
                % (full, room, nick, id_, NS_MUC), conn=conn)
    occ = "%s/%s" % (room, nick)

    def answer(el):
        return (el.tag == PRESENCE_TAG and el.get("to") == full and el.get("from") == occ
                and (el.get("type") == "error" or 110 in codes(el)))
    return fake.s2s_out(answer, "the answer to %s's join" % full)[1]


def romeo_in_a_room(fake, owner, id_, conn=1):
    """A new room of `owner` with romeo@remote.example/balcony in it, which the owner saw
    come in: (room, romeo's full JID)."""
    room = new_room()
    create(owner, room, "owner")
    full = ROMEO + "/balcony"
    me = remote_join(fake, room, "romeo", full, id_, conn=conn)
    assert me.get("type") != "error", ET.tostring(me)
    owner.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("from") == room + "/romeo",
                  5, "romeo's presence")
    return room, full


def test_remote_occupant_full_jids_are_bounded(private_stack, zmq):  # noqa: F811
    """A local account has at most max_resources sessions, so an occupant of a local user
    has at most that many full JIDs. A server at another domain names as many resources of
    one user as it likes: the room keeps at most max_resources full JIDs per occupant
    (more get resource-constraint), not an unbounded list (memory, and every groupchat
    message fans out once per full JID)."""
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucres")
    owner = login(ps, ps.new_user("mucres"), "desk")
    try:
        room = new_room()
        create(owner, room, "owner")
        n = 40
        for i in range(n):
            remote_join(fake, room, "romeo", "%s/r%d" % (ROMEO, i), "j%d" % i)
        mid = groupchat(owner, room, "to every full JID")
        copies = collect(fake, lambda e: e.get("id") == mid and e.get("type") == "groupchat",
                         3.0)
        assert len(copies) < n, \
            "one remote bare JID holds %d full JIDs in the room (every groupchat message " \
            "goes out %d times)" % (len(copies), len(copies))
    finally:
        owner.close()
        fake.close()


def test_remote_domain_cannot_exhaust_room_registrations(stack, zmq):  # noqa: F811
    """XEP-0045 7.10 registration is open to any user of a room that is not members-only,
    without being in it. A server at another domain mints users at will, so they may not
    register (not-allowed): muc_max_affiliations of them would fill the room's registrations
    (kept for ever, in Redis for a persistent room) and a local user could register none."""
    with running_private_stack(stack, "mucreg", router_env={"muc_max_affiliations": "10"}) as ps:
        fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucreg")
        owner = login(ps, ps.new_user("regown"), "desk")
        local = login(ps, ps.new_user("regloc"), "desk")
        form = ("<query xmlns='%s'><x xmlns='%s' type='submit'>"
                "<field var='FORM_TYPE'><value>%s#register</value></field>"
                "<field var='muc#register_roomnick'><value>%%s</value></field></x></query>"
                % (NS_REGISTER, NS_XDATA, NS_MUC))
        try:
            room = new_room()
            create(owner, room, "owner")
            for i in range(10):
                fake.s2s_in("<iq from='minted%d@%s/x' to='%s' type='set' id='reg%d'>%s</iq>"
                            % (i, REMOTE, room, i, form % ("squat%d" % i)))
                fake.s2s_out(lambda e, i=i: e.get("id") == "reg%d" % i, "registration answer")
            res = local.im_iq("set", form % "localnick", to=room)
            assert res.get("type") == "result", \
                "a local user cannot register after one remote domain's minted users " \
                "did: %s" % dump(res)
        finally:
            owner.close()
            local.close()
            fake.close()


def test_remote_occupant_leaves_when_its_connection_is_lost(private_stack, zmq):  # noqa: F811
    """A remote server that crashes never sends its users' unavailable presence to the
    rooms they are in. The router learns it (IPC_S2S_CLOSED with 'lost', as rpresence uses
    for roster contacts); the room then checks on such occupants (a ping), so that a ghost
    does not stay for ever in a quiet room (counted against max_users, shown to everyone,
    its nickname held, iqs to it forwarded to a dead full JID)."""
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucghost")
    owner = login(ps, ps.new_user("mucghost"), "desk")
    try:
        room, full = romeo_in_a_room(fake, owner, "g1", conn=7)
        # The server connection that carried romeo's join is lost (no </stream>).
        fake.sock.send_multipart([header(T_S2S_CLOSED, conn=7, flags=IPC_S2S_CLOSED_LOST,
                                         fields=(REMOTE.encode(),))])
        checks = collect(fake, lambda e: e.get("to") == full and
                         (e.tag == "{%s}iq" % NS_CLIENT or e.get("type") == "probe"), 3.0)
        owner.im_collect(1.0)
        left = [e for e in owner._im_box() if e.tag == PRESENCE_TAG and e.get("from") == room + "/romeo"
                and e.get("type") == "unavailable"]
        assert checks or left, \
            "the room neither checked on nor removed the occupant whose server connection " \
            "was lost"
    finally:
        owner.close()
        fake.close()


def drain_ack(fake, duration):
    """Confirms (s2s-ack) every s2s-out that arrives within `duration` seconds, backlog
    included, as a frontend that wrote them to a server connection would."""
    seqs = [h["seq"] for h, _ in fake.backlog if h["type"] == T_S2S_OUT]
    fake.backlog = [(h, p) for h, p in fake.backlog if h["type"] != T_S2S_OUT]
    deadline = time.monotonic() + duration
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            h, _ = fake.recv(lambda h, p: h["type"] == T_S2S_OUT, "x", timeout=left)
        except AssertionError:
            break
        seqs.append(h["seq"])
    seqs = [s for s in seqs if s]
    if seqs:
        fake.ack(*seqs)


def test_remote_occupant_stays_while_our_s2s_frontend_is_away(private_stack, zmq):  # noqa: F811
    """With no s2s frontend alive (ENETUNREACH) a remote occupant is not gone: only our own
    s2s frontend is restarting, and the occupant could not be told it was taken out (its
    client would think it is still in the room). route_service_stanza answers -2 as for a
    full pipe, and the room keeps it."""
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucaway")
    owner = login(ps, ps.new_user("mucaway"), "desk")
    try:
        room, full = romeo_in_a_room(fake, owner, "a1")
        drain_ack(fake, 1.0)  # everything written: nothing left to resend or bounce
        fake.close()
        time.sleep(0.5)  # the router's link sees the connection go
        groupchat(owner, room, "while our s2s frontend restarts")
        owner.im_collect(1.5)
        kicked = [e for e in owner._im_box() if e.tag == PRESENCE_TAG
                  and e.get("from") == room + "/romeo" and e.get("type") == "unavailable"]
        assert not kicked, "the remote occupant was taken out because our own s2s " \
            "frontend was away: %s" % [dump(e) for e in kicked]
    finally:
        owner.close()
        try:
            fake.close()
        except Exception:  # noqa: BLE001 - closed above
            pass


def test_room_owner_can_ban_a_remote_domain(private_stack, zmq):  # noqa: F811
    """A server at another domain names as many users as it likes, so banning its users one
    bare JID at a time cannot keep it out (and muc_max_affiliations ends the ban list): an
    outcast entry for the domain (jid='remote.example', as Prosody and ejabberd honour)
    keeps all of its users out."""
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucban")
    owner = login(ps, ps.new_user("mucban"), "desk")
    try:
        room = new_room()
        create(owner, room, "owner")
        from test_muc import admin_set
        res = admin_set(owner, room, "<item jid='%s' affiliation='outcast'/>" % REMOTE)
        assert res.get("type") == "result", dump(res)
        me = remote_join(fake, room, "spam1", "spam1@%s/x" % REMOTE, "b1")
        assert me.get("type") == "error", \
            "a user of a banned domain joined the room: %s" % ET.tostring(me)
    finally:
        owner.close()
        fake.close()


def test_room_check_after_a_lost_connection_takes_out_only_the_gone(private_stack, zmq):  # noqa: F811
    """After the connection from a remote domain is lost, the room pings each of its
    occupants there (XEP-0199 from the room's JID): one whose server cannot be reached
    (the s2s bounce, remote-server-not-found) leaves with status 333; one whose client
    answers stays, and so does one that answers service-unavailable (a client without
    XEP-0199 says so too, RFC 6120 8.4)."""
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-muccheck")
    owner = login(ps, ps.new_user("mucchk"), "desk")
    try:
        room = new_room()
        create(owner, room, "owner")
        gone, alive, noping = ROMEO + "/gone", "juliet@%s/here" % REMOTE, "nurse@%s/x" % REMOTE
        for nick, full, id_ in (("romeo", gone, "c1"), ("juliet", alive, "c2"),
                                ("nurse", noping, "c3")):
            me = remote_join(fake, room, nick, full, id_, conn=9)
            assert me.get("type") != "error", ET.tostring(me)
        fake.sock.send_multipart([header(T_S2S_CLOSED, conn=9, flags=IPC_S2S_CLOSED_LOST,
                                         fields=(REMOTE.encode(),))])
        pings = {}
        for _ in range(3):
            _, el = fake.s2s_out(lambda e: e.tag == "{%s}iq" % NS_CLIENT
                                 and e.find("{urn:xmpp:ping}ping") is not None, "a ping")
            assert el.get("from") == room and el.get("type") == "get", ET.tostring(el)
            pings[el.get("to")] = el.get("id")
        assert set(pings) == {gone, alive, noping}, pings
        error = ("<iq from='%s' to='%s' type='error' id='%s'><ping xmlns='urn:xmpp:ping'/>"
                 "<error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                 "</iq>")
        fake.s2s_in(error % (gone, room, pings[gone], "cancel", "remote-server-not-found"))
        fake.s2s_in(error % (noping, room, pings[noping], "cancel", "service-unavailable"))
        fake.s2s_in("<iq from='%s' to='%s' type='result' id='%s'/>" % (alive, room, pings[alive]))
        left = owner.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable"
                             and e.get("from") == room + "/romeo", 5, "romeo taken out")
        assert 333 in codes(left), dump(left)
        owner.im_collect(1.0)
        assert not [e for e in owner._im_box() if e.tag == PRESENCE_TAG
                    and e.get("type") == "unavailable"
                    and e.get("from") in (room + "/juliet", room + "/nurse")]
    finally:
        owner.close()
        fake.close()


def test_banning_a_remote_domain_removes_its_present_occupants(private_stack, zmq):  # noqa: F811
    """review-3: an outcast entry for a domain (XEP-0045 9.1) must also take out the users
    of that domain already in the room (status 301), as a ban of one bare JID does
    (muc_occ_apply_aff compares o->bare with the item's JID, and no occupant's bare JID
    equals a domain)."""
    ps = private_stack
    fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucbanin")
    owner = login(ps, ps.new_user("mucbanin"), "desk")
    try:
        room = new_room()
        create(owner, room, "owner")
        me = remote_join(fake, room, "spam1", "spam1@%s/x" % REMOTE, "d1")
        assert me.get("type") != "error", ET.tostring(me)
        owner.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("from") == room + "/spam1",
                      5, "spam1's presence")
        from test_muc import admin_set
        res = admin_set(owner, room, "<item jid='%s' affiliation='outcast'/>" % REMOTE)
        assert res.get("type") == "result", dump(res)
        left = owner.im_wait(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable"
                             and e.get("from") == room + "/spam1", 5,
                             "spam1 taken out by the domain ban")
        assert 301 in codes(left), dump(left)
    finally:
        owner.close()
        fake.close()


def test_room_checks_remote_occupants_once_an_s2s_frontend_is_back(stack, zmq):  # noqa: F811
    """review-3: when the only s2s frontend dies (declared gone after frontend_timeout),
    HOOK_REMOTE_LOST runs at once, while no s2s frontend is alive: every ping fails with
    ENETUNREACH (route_service_stanza -2) and is dropped. Nothing checks again when an s2s
    frontend is back, so an occupant whose server could not tell us it left meanwhile
    stays a ghost for ever in a quiet room. The check should reach the frontend that
    carries the domain again."""
    with running_private_stack(stack, "mucback", router_env={"frontend_timeout": "2000"}) as ps:
        fake = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucback")
        owner = login(ps, ps.new_user("mucback"), "desk")
        fake2 = None
        try:
            room = new_room()
            create(owner, room, "owner")
            full = ROMEO + "/balcony"
            fake.s2s_in("<presence from='%s' to='%s/romeo' id='k1'><x xmlns='%s'/></presence>"
                        % (full, room, NS_MUC))
            h, me = fake.s2s_out(lambda e: e.tag == PRESENCE_TAG and e.get("to") == full
                                 and 110 in codes(e), "romeo's self-presence")
            fake.ack(h["seq"])  # written: nothing of ours is left to bounce
            drain_ack(fake, 0.5)
            fake.close()
            time.sleep(4.0)  # past frontend_timeout: the router declares it gone
            fake2 = FakeS2S(zmq, ps.router_port, name="fake-s2s-mucback2")
            checks = collect(fake2, lambda e: e.get("to") == full and
                             (e.tag == "{%s}iq" % NS_CLIENT or e.get("type") == "probe"), 4.0)
            owner.im_collect(0.5)
            left = [e for e in owner._im_box() if e.tag == PRESENCE_TAG
                    and e.get("from") == room + "/romeo" and e.get("type") == "unavailable"]
            assert checks or left, \
                "no check on the remote occupant once an s2s frontend was back (still in the room)"
        finally:
            owner.close()
            if fake2:
                fake2.close()


def test_domain_ban_does_not_lift_the_affiliation_bound(stack, zmq):  # noqa: F811
    """review-3: muc_max_affiliations bounds a room's lists (memory, its Redis hash). With
    an outcast entry for a domain, muc_room_aff answers 'outcast' for every user there,
    so muc_admin_set counts no new entry for them (it counts only ta == AFF_NONE): any
    local user who creates a room can then add users of that domain without end (with
    the ban on another domain, the 11th is refused)."""
    with running_private_stack(stack, "mucaffb", router_env={"muc_max_affiliations": "10"}) as ps:
        owner = login(ps, ps.new_user("affbown"), "desk")
        try:
            room = new_room()
            create(owner, room, "owner")
            from test_muc import admin_set
            res = admin_set(owner, room, "<item jid='banned.example' affiliation='outcast'/>")
            assert res.get("type") == "result", dump(res)
            refused = None
            for i in range(20):
                res = admin_set(owner, room, "<item jid='u%d@banned.example' "
                                "affiliation='member'/>" % i)
                if res.get("type") == "error":
                    refused = i
                    break
            assert refused is not None, \
                "20 members of a banned domain added past muc_max_affiliations=10"
        finally:
            owner.close()
