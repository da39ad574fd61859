"""XEP-0352 client state indication, against the real frontend and router: the stream
feature, what an inactive client is spared (presence updates, only the newest per contact
kept; chat states) until something a person should see arrives (a message with a body, an
iq) or the client says <active/>, and the measurement of issue #12: 100 contacts changing
their presence 10 times each reach an inactive client as at most 100 presence stanzas once
it is active again, the newest of each contact."""

import pytest

from conftest import running_private_stack
from test_im_helpers import QUIET, WAIT, befriend, drop_pending, online
from xmpp_client import (IQ_TAG, MESSAGE_TAG, NS_PING, PRESENCE_TAG, XMPPClient, dump, new_id,
                         q)

NS_CSI = "urn:xmpp:csi:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
STATUS = q("jabber:client", "status")
BODY = q("jabber:client", "body")

INACTIVE = "<inactive xmlns='%s'/>" % NS_CSI
ACTIVE = "<active xmlns='%s'/>" % NS_CSI


def until_pong(c, timeout=WAIT):
    """Sends a ping to the server and returns everything the client got before its answer
    (pending elements first). XEP-0352 5.1: the server handles a client state indication
    before the stanzas sent after it, so what an <active/> releases comes before the pong."""
    pid = new_id("ping")
    c.send("<iq type='get' id='%s'><ping xmlns='%s'/></iq>" % (pid, NS_PING))
    box = c._im_box()
    got = []
    while True:
        el = box.pop(0) if box else c.recv(timeout)
        if el.tag == IQ_TAG and el.get("id") == pid:
            assert el.get("type") == "result", dump(el)
            return got
        got.append(el)


def set_state(c, inactive):
    """Sends the indication and waits until the router has handled it (a ping behind it:
    nothing is held yet, so the pong releases nothing)."""
    c.send(INACTIVE if inactive else ACTIVE)
    return until_pong(c)


def presences(els):
    return [e for e in els if e.tag == PRESENCE_TAG]


def chat_state(to, name="composing", id_=None):
    return ("<message type='chat' to='%s' id='%s'><%s xmlns='%s'/></message>"
            % (to, id_ or new_id("cs"), name, NS_CHATSTATES))


def test_csi_stream_feature(stack, clients, new_user):
    u = new_user("csif")
    c = clients()
    features = c.open_stream()
    assert features.find(q(NS_CSI, "csi")) is None, "offered before authentication"
    c.starttls()
    assert c.auth(u.localpart, u.password) == "success"
    # XEP-0352 4.1: after authentication, next to <bind/>.
    assert c.features.find(q(NS_CSI, "csi")) is not None, dump(c.features)
    assert c.features.find(q("urn:ietf:params:xml:ns:xmpp-bind", "bind")) is not None
    # Before binding, the indication is no more allowed than any other element.
    c.send(INACTIVE)
    c.expect_stream_error("not-authorized")


def test_inactive_holds_presence_and_chat_states_until_a_message(stack, login, new_user):
    ua, ub = new_user("csia"), new_user("csib")
    a = online(login, ua, "a")
    b = online(login, ub, "b")
    befriend(a, b)
    drop_pending(a, b)
    assert set_state(a, True) == []
    b.im_presence(status="b1")
    b.send(chat_state(a.jid, id_="cs1"))
    b.im_presence(status="b2")
    b.im_presence(status="b3")
    b.send(chat_state(a.jid, "paused", id_="cs2"))
    b.im_sync()             # the router has handled all of it
    a.im_expect_none(lambda e: True, QUIET, "stanza for an inactive client")
    # A message with a body: what was held comes first, in order, only b3 of b's updates.
    b.message(a.jid, "wake up", id="m1")
    got = [a.im_wait(lambda e: True, WAIT) for _ in range(4)]
    summary = [(e.tag, e.get("id") if e.tag == MESSAGE_TAG else e.findtext(STATUS)) for e in got]
    assert summary == [(MESSAGE_TAG, "cs1"), (PRESENCE_TAG, "b3"), (MESSAGE_TAG, "cs2"),
                       (MESSAGE_TAG, "m1")], [dump(e) for e in got]
    assert got[3].findtext(BODY) == "wake up"
    a.im_expect_none(lambda e: True, QUIET, "anything more")


def test_active_releases_what_is_held(stack, login, new_user):
    ua, ub = new_user("csic"), new_user("csid")
    a = online(login, ua, "a")
    b = online(login, ub, "b")
    befriend(a, b)
    drop_pending(a, b)
    set_state(a, True)
    b.im_presence(status="away for lunch", show="away")
    b.send(chat_state(a.jid, "gone", id_="cs"))
    b.im_sync()
    a.im_expect_none(lambda e: True, QUIET, "stanza for an inactive client")
    got = set_state(a, False)
    assert [e.tag for e in got] == [PRESENCE_TAG, MESSAGE_TAG], [dump(e) for e in got]
    assert got[0].findtext(STATUS) == "away for lunch" and got[1].get("id") == "cs"
    # Active again: presence arrives at once.
    b.im_presence(status="back")
    p = a.im_wait_presence(sender=b.jid, timeout=WAIT)
    assert p.findtext(STATUS) == "back"


def test_iq_releases_held_stanzas_first(stack, login, new_user):
    # An iq is something to answer now: what was held goes out before it (here the answer
    # to the client's own request, XEP-0352 5.1).
    ua, ub = new_user("csie"), new_user("csif")
    a = online(login, ua, "a")
    b = online(login, ub, "b")
    befriend(a, b)
    drop_pending(a, b)
    set_state(a, True)
    b.im_presence(status="held")
    b.im_sync()
    a.im_expect_none(lambda e: True, QUIET, "stanza for an inactive client")
    got = until_pong(a)
    assert [p.findtext(STATUS) for p in presences(got)] == ["held"], [dump(e) for e in got]


def login_quiet(stack, clients, user, resource):
    c = clients()
    c.login(user.localpart, user.password, resource=resource)
    return c


def test_presence_storm_of_100_contacts(stack, clients, login, new_user):
    """Issue #12: with 100 contacts each changing presence 10 times, an inactive session
    receives at most 100 presence stanzas once it becomes active, not 1,000: the newest
    of each contact."""
    n, updates = 100, 10
    ua = new_user("storm")
    a = online(login, ua, "a", roster=False)
    users = [new_user("c%d" % i) for i in range(n)]
    contacts = [login_quiet(stack, clients, u, "r") for u in users]
    # Each contact pre-approves A (RFC 6121 3.4), then A subscribes to all of them: the
    # server approves on their behalf. The contacts' rosters change through the protocol.
    for c in contacts:
        c.im_presence(to=ua.jid, type_="subscribed")
    for c in contacts:
        c.im_sync()
    for u in users:
        a.im_presence(to=u.jid, type_="subscribe")
    for u in users:
        a.im_wait_presence(sender=u.jid, type_="subscribed", timeout=WAIT)
    for c in contacts:
        c.im_presence(status="online")
    for c in contacts:
        a.im_wait_presence(sender=c.jid, timeout=WAIT)
    drop_pending(a, settle=0.1)

    assert set_state(a, True) == []
    for c in contacts:
        for k in range(updates):
            c.im_presence(status="%s update %d" % (c.jid, k))
    for c in contacts:
        c.im_sync()   # the router has handled every update of this contact
    a.im_expect_none(lambda e: e.tag == PRESENCE_TAG, QUIET, "presence while inactive")

    got = presences(set_state(a, False))
    print("presence stanzas released on <active/>: %d (sent while inactive: %d)"
          % (len(got), n * updates))
    assert len(got) <= n, "%d presence stanzas for %d contacts" % (len(got), n)
    newest = {c.jid: "%s update %d" % (c.jid, updates - 1) for c in contacts}
    assert {p.get("from"): p.findtext(STATUS) for p in got} == newest
    assert len(got) == n


@pytest.fixture
def restart_stack(stack):
    with running_private_stack(stack, "csirestart") as ps:
        yield ps


def test_router_restart_keeps_the_client_inactive(restart_stack):
    # The frontend resends the state with the session (IPC_RESYNC_INACTIVE): chat states
    # sent after the restart are still held for the inactive client.
    ps = restart_stack
    ua, ub = ps.new_user("ra"), ps.new_user("rb")
    made = []
    try:
        for u in (ua, ub):
            c = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile)
            made.append(c)
            c.login(u.localpart, u.password, resource="r")
            c.presence()
            c.im_sync()
        a, b = made
        set_state(a, True)
        ps.stop_router(allow_error_lines=False)
        ps.start_router()
        # Buffered by the frontend while the router is away, sent once it has both sessions.
        b.message(b.jid, "router is back")
        b.wait_message("router is back", timeout=10)
        b.send(chat_state(a.jid, id_="held"))
        b.im_sync()
        a.im_expect_none(lambda e: e.tag == MESSAGE_TAG, QUIET, "chat state while inactive")
        b.message(a.jid, "after the restart", id="m")
        first = a.im_wait(lambda e: e.tag == MESSAGE_TAG, WAIT)
        second = a.im_wait(lambda e: e.tag == MESSAGE_TAG, WAIT)
        assert (first.get("id"), second.get("id")) == ("held", "m"), (dump(first), dump(second))
    finally:
        for c in made:
            c.close()
