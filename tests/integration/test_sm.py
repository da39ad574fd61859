"""XEP-0198 stream management (urn:xmpp:sm:3), held by the router: enable, acks both ways,
the failure cases, resumption after a lost connection with nothing lost or doubled, a
waiting session that stays available, and what happens to unacknowledged messages when the
wait runs out (other resources, else offline storage). Raw protocol, plus slixmpp's own
XEP-0198 plugin. Every wait is bounded; nothing asserts how fast the server is.

32-bit wrap-around of the counters (section 4: h is mod 2^32) cannot be driven over the
wire (4 billion stanzas); the unit tests of the router's counter arithmetic cover it."""

import asyncio
from pathlib import Path

import pytest
import slix_helpers
from conftest import REMOTE, running_private_stack
from sm_helpers import (NS_SM, SMSession, auth_only, body, collect_messages, drop,
                        failed_h_too_high, is_sm, messages_until, sm, sm_failed_conditions)
from test_im_helpers import befriend, online
from xmpp_client import (MESSAGE_TAG, NS_CLIENT, PRESENCE_TAG, XMPPClient, dump, q,
                         stanza_error_condition)

NS_DELAY = "urn:xmpp:delay"
WAIT = 5.0
QUIET = 1.5     # how long "the contact sees nothing" is watched after a connection drop
# A session whose client asked for max='2' (or whose router has sm_resume_timeout = 2)
# ends within this bound once its connection is gone.
END_WAIT = 15.0


def sm_online(login, user, resource=None, max=None):
    """A logged-in, available client with resumable stream management enabled."""
    c = login(user, resource=resource)
    s = SMSession()
    el = s.enable(c, max=max)
    assert is_sm(el, "enabled"), "enable refused: %s" % dump(el)
    return c, s


def send_bodies(sender, to, bodies):
    for b in bodies:
        sender.message(to, b)


def bodies(msgs):
    return [body(m) for m in msgs]


def unavailable_from(jid):
    return lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable" \
        and e.get("from") == jid


# ------------------------------------------------------------------ enabling

def test_sm_is_offered_after_authentication(clients, new_user):
    u = new_user("smf")
    c = clients()
    f = c.open_stream()
    assert f.find(sm("sm")) is None, "stream management offered before TLS/SASL: %s" % dump(f)
    f = c.starttls()
    assert f.find(sm("sm")) is None, "stream management offered before SASL: %s" % dump(f)
    assert c.auth(u.localpart, u.password) == "success"
    assert c.features.find(sm("sm")) is not None, \
        "no <sm xmlns='%s'/> in the features after SASL: %s" % (NS_SM, dump(c.features))


def test_enable_gives_a_resumable_session_with_id_and_max(login, new_user):
    u = new_user("sme")
    c1, s1 = sm_online(login, u, "one")
    el = s1.enabled
    assert el.get("id"), "<enabled/> without a resumption id: %s" % dump(el)
    assert el.get("resume") in ("true", "1"), dump(el)
    if not REMOTE:
        assert el.get("max") == "300", "max is not sm_resume_timeout's default: %s" % dump(el)
    else:
        assert int(el.get("max")) > 0, dump(el)
    # The client's max wins when it is smaller (section 3: the server's preference is
    # what it announces; it may lower, never raise, what it keeps).
    c2, s2 = sm_online(login, u, "two", max=60)
    assert s2.enabled.get("max") == "60", dump(s2.enabled)
    assert s2.id != s1.id, "two sessions got the same resumption id %r" % s1.id
    # Stream management changes nothing else: both still work.
    assert c1.ping().get("type") == "result" and c2.ping().get("type") == "result"


def test_enable_without_resume_is_not_resumable(login, clients, new_user):
    u = new_user("smn")
    watcher = login(u, resource="watcher")
    c = login(u, resource="plain-sm")
    s = SMSession()
    el = s.enable(c, resume=False)
    assert is_sm(el, "enabled"), dump(el)
    assert el.get("resume") not in ("true", "1"), dump(el)
    assert s.request_ack() == 0
    # Not resumable: a dropped connection ends the session as without stream management.
    drop(c)
    watcher.wait_for(unavailable_from(c.jid), WAIT, "unavailable presence of the dropped resource")
    if el.get("id"):
        c2 = clients()
        auth_only(c2, u)
        r = s.resume(c2)
        assert is_sm(r, "failed"), dump(r)


def test_enable_before_bind_is_refused(clients, new_user):
    u = new_user("smb")
    c = clients()
    auth_only(c, u)
    c.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    el = c.wait_for(lambda e: is_sm(e, "failed") or is_sm(e, "enabled"), WAIT, "<failed/>")
    assert is_sm(el, "failed"), "enable before bind accepted: %s" % dump(el)
    assert sm_failed_conditions(el) == ["unexpected-request"], dump(el)
    # The stream goes on: bind, then enable, work.
    c.bind("after")
    s = SMSession()
    assert is_sm(s.enable(c), "enabled")
    assert c.ping().get("type") == "result"


@pytest.mark.parametrize("when", ["before-tls", "before-sasl"])
@pytest.mark.parametrize("what", ["enable", "resume"])
def test_sm_before_authentication_is_not_authorized(login, clients, new_user, when, what):
    # Nothing of stream management before SASL (XEP-0198 3, 5): not even a guess at a
    # waiting session's id, which stays resumable by its owner.
    u = new_user("smpa")
    owner = login(u, resource="a")
    s = SMSession()
    assert is_sm(s.enable(owner), "enabled")
    drop(owner)
    c = clients()
    c.open_stream()
    if when == "before-sasl":
        c.starttls()
    if what == "enable":
        c.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    else:
        c.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, s.id))
    c.expect_stream_error("not-authorized")
    again = clients()
    auth_only(again, u)
    assert is_sm(s.resume(again), "resumed")


def test_enable_twice_is_refused(login, new_user):
    c, s = sm_online(login, new_user("sm2"))
    el = s.enable(c)
    assert is_sm(el, "failed"), "a second <enable/> accepted: %s" % dump(el)
    assert sm_failed_conditions(el) == ["unexpected-request"], dump(el)
    assert c.ping().get("type") == "result"


@pytest.mark.parametrize("nonza", ["<r xmlns='urn:xmpp:sm:3'/>", "<a xmlns='urn:xmpp:sm:3' h='0'/>"])
def test_ack_elements_before_enable_are_a_stream_error(login, new_user, nonza):
    c = login(new_user("smr"))
    c.send(nonza)
    c.expect_stream_error("unsupported-stanza-type")


# ------------------------------------------------------------------ acks

def test_server_counts_the_stanzas_it_received(login, new_user):
    ua, ub = new_user("smc"), new_user("smc")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    # Four stanzas of three kinds: two messages, an iq, a presence.
    c.message(b.jid, "one")
    c.message(b.jid, "two")
    c.send("<iq type='get' id='smping'><ping xmlns='urn:xmpp:ping'/></iq>")
    c.send("<presence><status>counting</status></presence>")
    assert s.request_ack() == 4
    # Nonzas do not count (section 4): a second request gives the same h.
    assert s.request_ack() == 4
    send_bodies(c, b.jid, ["three", "four", "five"])
    assert s.request_ack() == 7 == s.sent
    assert bodies(messages_until(b, lambda g: len(g) >= 5, WAIT)) == \
        ["one", "two", "three", "four", "five"]


def test_server_requests_acks_and_takes_them(login, new_user):
    ua, ub = new_user("smq"), new_user("smq")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    send_bodies(b, c.jid, ["q%d" % i for i in range(6)])
    got = messages_until(c, lambda g: len(g) >= 6, WAIT)
    assert bodies(got) == ["q%d" % i for i in range(6)]
    # Unacknowledged stanzas make the server ask (after 5, and 1 s after any): the <r/> may
    # have come among the messages already.
    if s.requests == 0:
        s.wait_request(WAIT)
    s.ack()
    # An ack of exactly what was sent is fine: the stream goes on, counters intact.
    assert c.ping().get("type") == "result"
    assert s.request_ack() == s.sent


def test_ack_of_more_than_was_sent_is_a_stream_error(login, new_user):
    ua, ub = new_user("smh"), new_user("smh")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    send_bodies(b, c.jid, ["h0", "h1"])
    messages_until(c, lambda g: len(g) >= 2, WAIT)
    too_high = s.handled + 5
    s.ack(too_high)
    err = c.expect_stream_error("undefined-condition")
    hc = failed_h_too_high(err)
    assert hc is not None, "no <handled-count-too-high xmlns='%s'/>: %s" % (NS_SM, dump(err))
    assert hc.get("h") == str(too_high), dump(err)
    assert int(hc.get("send-count")) == s.handled, dump(err)


# ------------------------------------------------------------------ resumption

def test_resume_redelivers_unacked_messages_once_and_in_order(login, clients, new_user):
    ua, ub = new_user("smx"), new_user("smx")
    c, s = sm_online(login, ua, "phone")
    b = login(ub, resource="b")
    first = ["m%d" % i for i in range(6)]
    send_bodies(b, c.jid, first)
    got = messages_until(c, lambda g: len(g) >= 2, WAIT)
    assert bodies(got) == first[:2]
    acked = s.handled       # everything up to m1 handled and acknowledged
    s.ack()
    rest = messages_until(c, lambda g: len(g) >= 4, WAIT)
    assert bodies(rest) == first[2:]   # seen, but we claim we lost them: resent
    # The client's own stanzas before the drop.
    c.message(b.jid, "from a 1")
    c.message(b.jid, "from a 2")
    old_jid = c.jid
    drop(c)
    # Sent while the session waits: queued by the router.
    later = ["m6", "m7", "m8"]
    send_bodies(b, old_jid, later)
    b.im_sync()

    c2 = clients()
    f = auth_only(c2, ua)
    assert f.find(sm("sm")) is not None
    el = s.resume(c2, h=acked)
    assert is_sm(el, "resumed"), "resume refused: %s" % dump(el)
    assert el.get("previd") == s.id, dump(el)
    assert el.get("h") == str(s.sent), "server's h %s, client sent %d stanzas: %s" \
        % (el.get("h"), s.sent, dump(el))
    again = messages_until(c2, lambda g: len(g) >= 7, WAIT)
    assert bodies(again) == first[2:] + later, "redelivery: %s" % bodies(again)
    assert all(m.get("from") == b.jid for m in again)
    assert not collect_messages(c2, QUIET), "messages delivered twice after resumption"
    # What the client sent before the drop arrived once (b's sync kept them pending).
    for x in ("from a 1", "from a 2"):
        assert b.im_wait_message(body=x, timeout=WAIT).get("from") == c.jid
    b.im_expect_none(lambda e: e.tag == MESSAGE_TAG and (body(e) or "").startswith("from a"),
                     0.5, "a message of a delivered twice")
    # The same session, no bind: same full JID, counters go on.
    assert c2.jid == old_jid
    b.message(old_jid, "after resume")
    assert c2.wait_message("after resume").get("to") in (old_jid, None)
    c2.message(b.jid, "from a 3")
    assert b.wait_message("from a 3").get("from") == old_jid
    assert s.request_ack() == s.sent
    assert c2.ping().get("type") == "result"


def test_resume_on_another_frontend(login, new_user, extra_frontend, stack):
    # The router holds the state: a session enabled on one frontend resumes on another.
    ua, ub = new_user("smf"), new_user("smf")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    send_bodies(b, c.jid, ["f0", "f1", "f2"])
    seen = messages_until(c, lambda g: len(g) >= 1, WAIT)
    drop(c)
    b.message(c.jid, "f3")
    other = extra_frontend()
    c2 = stack.client(other.port)
    try:
        auth_only(c2, ua)
        el = s.resume(c2)
        assert is_sm(el, "resumed"), dump(el)
        rest = messages_until(c2, lambda g: len(seen) + len(g) >= 4, WAIT)
        assert bodies(seen + rest) == ["f0", "f1", "f2", "f3"], bodies(seen + rest)
        assert not collect_messages(c2, QUIET)
        c2.message(b.jid, "from the other frontend")
        assert b.wait_message("from the other frontend").get("from") == c.jid
        c2.end_stream()
    finally:
        c2.close()


def test_resume_on_another_frontend_while_connected_is_a_conflict(login, new_user,
                                                                  extra_frontend, stack):
    ua, ub = new_user("smcf"), new_user("smcf")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    other = extra_frontend()
    c2 = stack.client(other.port)
    try:
        auth_only(c2, ua)
        assert is_sm(s.resume(c2), "resumed")
        c.expect_stream_error("conflict")
        b.message(c.jid, "to the other frontend")
        assert c2.wait_message("to the other frontend").get("from") == b.jid
        c2.end_stream()
    finally:
        c2.close()


def test_resume_after_bind_is_refused(login, new_user):
    u = new_user("smab")
    c, s = sm_online(login, u, "a")
    c2 = login(u, resource="b")
    el = s.resume(c2)
    assert is_sm(el, "failed") and sm_failed_conditions(el) == ["unexpected-request"], dump(el)
    # Neither stream was harmed.
    assert c2.ping().get("type") == "result" and c.ping().get("type") == "result"


def test_stanza_pipelined_after_resume_is_sent_from_the_session(login, clients, new_user):
    # The client does not wait for <resumed/>: a stanza in the same write as <resume/> is
    # handled after the resumption, from the session's full JID.
    ua, ub = new_user("smpl"), new_user("smpl")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    old_jid = c.jid
    drop(c)
    c2 = clients()
    auth_only(c2, ua)
    s.attach(c2)
    c2.send("<resume xmlns='%s' previd='%s' h='%d'/><message to='%s' type='chat' id='pl'>"
            "<body>pipelined</body></message>" % (NS_SM, s.id, s.handled, b.jid))
    el = c2.wait_for(lambda e: is_sm(e, "resumed") or is_sm(e, "failed"), WAIT, "<resumed/>")
    assert is_sm(el, "resumed"), dump(el)
    m = b.wait_message("pipelined")
    assert m.get("from") == old_jid, dump(m)
    assert el.get("h") == str(s.sent), dump(el)


def test_two_resumptions_at_once_leave_one_session(login, clients, new_user):
    ua, ub = new_user("smtw"), new_user("smtw")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    old_jid = c.jid
    drop(c)
    x, y = clients(), clients()
    for cl in (x, y):
        auth_only(cl, ua)
    req = "<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, s.id, s.handled)
    x.send(req)
    y.send(req)
    survivors = []
    for cl in (x, y):
        try:
            el = cl.wait_for(lambda e: is_sm(e, "resumed") or is_sm(e, "failed"), WAIT,
                             "<resumed/> or <failed/>")
        except AssertionError:
            continue     # closed with a stream error (conflict) before answering
        if is_sm(el, "resumed"):
            survivors.append(cl)
    assert survivors, "neither resumption succeeded"
    if len(survivors) == 2:
        # Both resumed in turn: the first is then ended with <conflict/>.
        first, last = survivors
        errs = []
        for cl in survivors:
            try:
                cl.expect_stream_error("conflict", timeout=2)
                errs.append(cl)
            except AssertionError:
                pass
        assert len(errs) == 1, "two live connections for one session"
        survivors = [cl for cl in survivors if cl not in errs]
    live = survivors[0]
    live.jid = old_jid
    b.message(old_jid, "to the survivor")
    assert live.wait_message("to the survivor").get("from") == b.jid
    assert live.ping().get("type") == "result"


def test_resume_with_unknown_id_fails_and_bind_works(clients, new_user):
    u = new_user("smu")
    c = clients()
    auth_only(c, u)
    s = SMSession()
    el = s.resume(c, h=0, previd="no-such-session-" + u.localpart)
    assert is_sm(el, "failed"), dump(el)
    assert sm_failed_conditions(el) == ["item-not-found"], dump(el)
    c.bind("fresh")
    assert c.ping().get("type") == "result"


def test_resume_by_another_account_is_refused(login, clients, new_user):
    ua, um = new_user("smv"), new_user("smm")
    c, s = sm_online(login, ua, "victim")
    old_jid = c.jid
    drop(c)
    thief = clients()
    auth_only(thief, um)
    other = SMSession()
    other.id, other.jid = s.id, s.jid
    el = other.resume(thief, h=0)
    assert is_sm(el, "failed"), "another account resumed %s: %s" % (old_jid, dump(el))
    assert sm_failed_conditions(el) == ["item-not-found"], dump(el)
    assert thief.bind("mine").split("/")[0] == um.jid
    # The attempt did not spoil the owner's session.
    c2 = clients()
    auth_only(c2, ua)
    assert is_sm(s.resume(c2), "resumed")
    assert c2.ping().get("type") == "result"


def test_resume_with_h_too_high_fails(login, clients, new_user):
    ua, ub = new_user("smt"), new_user("smt")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    send_bodies(b, c.jid, ["t0", "t1"])
    messages_until(c, lambda g: len(g) >= 2, WAIT)
    c.message(b.jid, "sent by a")
    drop(c)
    c2 = clients()
    auth_only(c2, ua)
    el = s.resume(c2, h=s.handled + 10)
    assert is_sm(el, "failed"), dump(el)
    assert "undefined-condition" in sm_failed_conditions(el), dump(el)
    assert el.get("h") == str(s.sent), "failed h should be the server's count: %s" % dump(el)
    hc = failed_h_too_high(el)
    assert hc is not None, dump(el)
    assert hc.get("h") == str(s.handled + 10), dump(el)
    assert int(hc.get("send-count")) >= 2, dump(el)
    c2.bind("again")
    assert c2.ping().get("type") == "result"


def test_resume_while_the_old_connection_is_open_ends_it_with_conflict(login, clients, new_user):
    ua, ub = new_user("smo"), new_user("smo")
    c, s = sm_online(login, ua, "a")
    b = login(ub, resource="b")
    old_jid = c.jid
    c2 = clients()
    auth_only(c2, ua)
    el = s.resume(c2)
    assert is_sm(el, "resumed"), dump(el)
    c.expect_stream_error("conflict")
    b.message(old_jid, "to the new connection")
    assert c2.wait_message("to the new connection").get("from") == b.jid
    c2.message(b.jid, "still me")
    assert b.wait_message("still me").get("from") == old_jid


# ------------------------------------------------------------------ waiting and ending

def test_waiting_session_stays_available_until_a_clean_close(login, clients, new_user):
    ua, ub = new_user("smw"), new_user("smw")
    a = online(login, ua, "a")
    b = online(login, ub, "b")
    befriend(a, b)
    s = SMSession()
    assert is_sm(s.enable(a), "enabled")
    drop(a)
    # The contact sees nothing: the session waits for its client (still available).
    b.im_expect_none(unavailable_from(a.jid), QUIET, "unavailable presence of a waiting session")
    # A resource of the contact that comes online now learns it is available (probe).
    b2 = online(login, ub, "b2")
    b2.im_wait_presence(sender=a.jid, timeout=WAIT)
    b.message(a.jid, "while you were away")
    # To the bare JID too: the waiting resource is the account's only available one.
    b.message(ua.jid, "to your bare JID")
    b.im_sync()
    a2 = clients()
    auth_only(a2, ua)
    assert is_sm(s.resume(a2), "resumed")
    got = messages_until(a2, lambda g: len(g) >= 2, WAIT)
    assert bodies(got) == ["while you were away", "to your bare JID"], bodies(got)
    assert all(m.get("from") == b.jid for m in got)
    # A clean close ends the session: unavailable to the contact, and no resumption.
    a2.end_stream()
    b.im_wait(unavailable_from(a.jid), WAIT, "unavailable presence after </stream:stream>")
    a3 = clients()
    auth_only(a3, ua)
    el = s.resume(a3)
    assert is_sm(el, "failed") and sm_failed_conditions(el) == ["item-not-found"], dump(el)


def _offline_after_wait(login, clients, new_user, make_client=None, max=None, n_read=3):
    """A's resumable session (max=`max`) gets messages it does not acknowledge, loses its
    connection, gets one more, and its wait runs out: contact B sees it unavailable, and
    A's next login receives every message once, in order, from offline storage."""
    ua, ub = new_user("smz"), new_user("smz")
    a = online(login, ua, "a")
    b = online(login, ub, "b")
    befriend(a, b)
    s = SMSession()
    el = s.enable(a, max=max)
    assert is_sm(el, "enabled"), dump(el)
    sent = ["z%d" % i for i in range(n_read)]
    send_bodies(b, a.jid, sent)
    assert bodies(messages_until(a, lambda g: len(g) >= n_read, WAIT)) == sent
    drop(a)
    b.message(a.jid, "z-late")
    b.im_sync()
    sent.append("z-late")
    b.im_wait(unavailable_from(a.jid), END_WAIT, "unavailable presence when the wait ran out")
    again = clients()
    auth_only(again, ua)
    el = s.resume(again)
    assert is_sm(el, "failed") and sm_failed_conditions(el) == ["item-not-found"], dump(el)
    again.bind("next")
    again.presence()
    got = messages_until(again, lambda g: len(g) >= len(sent), WAIT)
    assert bodies(got) == sent, "offline delivery: %s" % bodies(got)
    for m in got:
        assert m.get("from") == b.jid, dump(m)
        assert len(m.findall(q(NS_DELAY, "delay"))) == 1, "no delay stamp: %s" % dump(m)
    assert not collect_messages(again, QUIET), "offline messages delivered twice"
    return s


def test_wait_runs_out_unacked_messages_go_offline(login, clients, new_user):
    # The client's max (2 s) is below sm_resume_timeout: the session waits 2 s.
    s = _offline_after_wait(login, clients, new_user, max=2)
    assert s.enabled.get("max") == "2", dump(s.enabled)


def test_wait_runs_out_unacked_messages_go_to_another_resource(login, clients, new_user):
    ua, ub = new_user("smy"), new_user("smy")
    other = login(ua, resource="desk")
    c, s = sm_online(login, ua, "phone", max=2)
    b = login(ub, resource="b")
    sent = ["y0", "y1"]
    send_bodies(b, c.jid, sent)
    assert bodies(messages_until(c, lambda g: len(g) >= 2, WAIT)) == sent
    # The other resource gets them only once the session ends.
    drop(c)
    other.wait_for(unavailable_from(c.jid), END_WAIT, "unavailable presence of the phone")
    got = messages_until(other, lambda g: len(g) >= 2, WAIT)
    assert bodies(got) == sent
    assert not collect_messages(other, QUIET)


def test_iq_to_a_session_whose_wait_runs_out_gets_an_error(login, clients, new_user):
    # RFC 6120 8.2.3: every iq get/set gets a response. An iq queued for a waiting session
    # that is never resumed is answered with an error once the session ends.
    ua, ub = new_user("smi"), new_user("smi")
    a, s = sm_online(login, ua, "a", max=2)
    b = login(ub, resource="b")
    drop(a)
    b.send("<iq type='get' id='queued-ping' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % a.jid)
    res = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == "queued-ping",
                     END_WAIT, "the response to an iq queued for a session that expired")
    assert res.get("type") == "error", dump(res)
    assert res.get("from") == a.jid, dump(res)
    assert stanza_error_condition(res)[1] in ("service-unavailable", "recipient-unavailable",
                                              "item-not-found"), dump(res)


def test_account_deleted_while_its_session_waits(stack, login, clients, new_user):
    if getattr(stack, "remote", False):
        pytest.skip("needs xmppctl of the local stack")
    u = new_user("smd")
    c, s = sm_online(login, u, "a")
    drop(c)
    r = stack.ctl("deluser", u.jid)
    assert r.returncode == 0, r.stderr
    # The waiting session ended with the account: nothing to resume, and no login either.
    c2 = clients()
    c2.open_stream()
    c2.starttls()
    assert c2.auth(u.localpart, u.password) != "success"
    other = new_user("smd")
    c3 = clients()
    auth_only(c3, other)
    thief = SMSession()
    thief.id, thief.jid = s.id, s.jid
    el = thief.resume(c3)
    assert is_sm(el, "failed") and sm_failed_conditions(el) == ["item-not-found"], dump(el)


def private_clients(ps):
    made = []

    def make():
        c = XMPPClient(ps.frontend.port, cafile=ps.stack.cafile)
        made.append(c)
        return c
    return make, made


def private_login(make):
    def do(user, resource=None, priority=None, port=None):
        c = make()
        c.login(user.localpart, user.password, resource=resource)
        if priority is not False:
            c.presence(priority)
            c.im_sync()
        return c
    return do


def test_router_sm_resume_timeout_bounds_the_wait(stack):
    with running_private_stack(stack, "smto", router_env={"sm_resume_timeout": 2}) as ps:
        make, made = private_clients(ps)
        try:
            plogin = private_login(make)
            # The client asks for more than the router keeps: the router's value wins.
            c, s = sm_online(plogin, ps.new_user("smp"), "a", max=600)
            assert s.enabled.get("max") == "2", dump(s.enabled)
            s2 = _offline_after_wait(plogin, lambda: make(), lambda p: ps.new_user(p))
            assert s2.enabled.get("max") == "2", dump(s2.enabled)
        finally:
            for c in made:
                c.close()


def test_queue_past_sm_max_unacked_ends_the_session(stack):
    with running_private_stack(stack, "smmax", router_env={"sm_max_unacked": 10}) as ps:
        make, made = private_clients(ps)
        try:
            plogin = private_login(make)
            ua, ub = ps.new_user("smk"), ps.new_user("smk")
            a = online(plogin, ua, "a")
            b = online(plogin, ub, "b")
            befriend(a, b)
            s = SMSession()
            assert is_sm(s.enable(a), "enabled")
            drop(a)
            b.im_expect_none(unavailable_from(a.jid), QUIET, "unavailable of a waiting session")
            sent = ["k%02d" % i for i in range(14)]
            send_bodies(b, a.jid, sent)
            # More than 10 unacknowledged (its lowest value): the session ends long before
            # sm_resume_timeout.
            b.im_wait(unavailable_from(a.jid), END_WAIT, "unavailable once the queue overflowed")
            b.im_sync()
            errors = b.im_take(lambda e: e.tag == MESSAGE_TAG and e.get("type") == "error")
            for e in errors:
                assert stanza_error_condition(e) == ("wait", "resource-constraint"), dump(e)
            bounced = [body(e) for e in errors]
            again = make()
            auth_only(again, ua)
            el = s.resume(again)
            assert is_sm(el, "failed"), dump(el)
            again.bind("next")
            again.presence()
            # The 10 queued ones are handed on (offline storage), in order, once; each one
            # past the queue is either bounced to its sender (resource-constraint, wait) or
            # stored too: never both, never silently lost.
            got = messages_until(again, lambda g: len(g) >= len(sent) - len(bounced), WAIT)
            got += collect_messages(again, QUIET)
            assert bodies(got)[:10] == sent[:10], bodies(got)
            assert sorted(bodies(got) + bounced) == sent, \
                "stored %s, bounced %s, sent %s" % (bodies(got), bounced, sent)
            assert bodies(got) == [x for x in sent if x not in bounced]
        finally:
            for c in made:
                c.close()


# ------------------------------------------------------------------ slixmpp

slixmpp = pytest.importorskip("slixmpp")


class SlixClient(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        self.register_plugin("xep_0198")
        self["xep_0198"].window = 2     # an <r/> after every 2 stanzas sent
        self["xep_0198"].window_counter = 2
        self.started = self.loop.create_future()
        self.resumed = self.loop.create_future()
        self.enabled = self.loop.create_future()
        self.inbox = asyncio.Queue()
        self.acked = []
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("session_resumed", lambda _e: _done(self.resumed, True))
        self.add_event_handler("sm_enabled", lambda e: _done(self.enabled, e))
        self.add_event_handler("stanza_acked", lambda st: self.acked.append(st))
        self.add_event_handler("message", lambda m: self.inbox.put_nowait(m))
        self.add_event_handler("sm_failed", lambda e: _fail(self.resumed, "sm_failed %s" % e))

    async def _start(self, _e):
        self.send_presence()
        _done(self.started, True)


def _done(fut, value):
    if not fut.done():
        fut.set_result(value)


def _fail(fut, why):
    if not fut.done():
        fut.set_exception(AssertionError(why))


def test_slixmpp_enables_acks_and_resumes(stack, login, new_user):
    ua, ub = new_user("sms"), new_user("sms")
    b = login(ub, resource="raw")

    async def scenario():
        a = SlixClient(ua.jid + "/slix", ua.password, stack.cafile)
        a.connect((getattr(stack, "host", "127.0.0.1"), stack.port), force_starttls=True,
                  disable_starttls=False)
        try:
            await asyncio.wait_for(asyncio.gather(a.started, a.enabled), 10)
            sm_plugin = a["xep_0198"]
            assert sm_plugin.sm_id, "slixmpp got no resumption id"
            # slixmpp's stanzas are acknowledged by the server (its <r/> after 2).
            for i in range(4):
                a.send_message(mto=ub.jid + "/raw", mbody="slix %d" % i, mtype="chat")
            for i in range(50):
                if len([x for x in a.acked if x.name == "message"]) >= 4:
                    break
                # The last ones may sit inside slixmpp's window; its request_ack() writes
                # at once, before its queue: ask again every 0.5 s.
                if i % 5 == 4:
                    sm_plugin.request_ack()
                await asyncio.sleep(0.1)
            assert len([x for x in a.acked if x.name == "message"]) >= 4, a.acked
            # Messages to slixmpp are counted by it (the server asks, slixmpp answers).
            b.message(a.boundjid.full, "to slix 1")
            m = await asyncio.wait_for(a.inbox.get(), 5)
            assert m["body"] == "to slix 1"
            full = a.boundjid.full
            # The connection is lost; a message arrives meanwhile; slixmpp resumes.
            handled = sm_plugin.handled
            a.abort()
            await asyncio.sleep(0.3)
            b.message(full, "while slix was away")
            a.connect((getattr(stack, "host", "127.0.0.1"), stack.port), force_starttls=True,
                      disable_starttls=False)
            await asyncio.wait_for(a.resumed, 10)
            m = await asyncio.wait_for(a.inbox.get(), 5)
            assert m["body"] == "while slix was away"
            assert a.boundjid.full == full
            assert sm_plugin.handled == (handled + 1) % 2 ** 32
            a.send_message(mto=ub.jid + "/raw", mbody="after resume", mtype="chat")
        finally:
            a.disconnect(wait=2.0)
            await asyncio.sleep(0.5)

    slix_helpers.run(scenario(), 40)
    got = messages_until(b, lambda g: len(g) >= 5, WAIT)
    assert bodies(got) == ["slix 0", "slix 1", "slix 2", "slix 3", "after resume"], bodies(got)
    assert not [m for m in collect_messages(b, 0.5) if body(m).startswith("slix")]
