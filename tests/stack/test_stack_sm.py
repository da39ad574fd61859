"""XEP-0198 stream management in the deployment topology (deploy/stack: two frontends behind
HAProxy): the router holds the resumption state, so a client whose frontend was killed
(SIGKILL) or stopped (SIGTERM) resumes through HAProxy on the other frontend with nothing
lost or doubled; 1,000 messages survive 20 cuts at random points; a session whose wait runs
out leaves its unacknowledged messages in offline storage; a router restart keeps connected
sessions resumable and loses the ones that were waiting. Every wait is bounded."""

import random
import time
import uuid

import pytest

from localstack import FRONTEND_TIMEOUT_MS, online
from sm_helpers import (SMSession, auth_only, body, collect_messages, drop, is_sm,
                        messages_until, sm_failed_conditions)
from xmpp_client import NS_CLIENT, PRESENCE_TAG, dump, q

NS_DELAY = "urn:xmpp:delay"
WAIT = 10.0


def sm_online(lstack, clients, user, resource, max=None, **kw):
    c, fe = online(lstack, clients, user, resource, **kw)
    s = SMSession()
    el = s.enable(c, max=max)
    assert is_sm(el, "enabled"), "enable refused: %s" % dump(el)
    return c, s, fe


def resume_via_haproxy(lstack, clients, user, s, h=None):
    """A new connection through HAProxy, SASL, <resume/>; returns (client, frontend)."""
    c = clients()
    auth_only(c, user)
    el = s.resume(c, h=h)
    assert is_sm(el, "resumed"), "resume through HAProxy refused: %s" % dump(el)
    assert el.get("h") == str(s.sent), "server's h %s, client sent %d: %s" \
        % (el.get("h"), s.sent, dump(el))
    return c, lstack.frontend_of(c, user)


def bodies(msgs):
    return [body(m) for m in msgs]


def wait_frontend_serves(lstack, clients, fe, user):
    deadline = time.monotonic() + 20
    while True:
        try:
            online(lstack, clients, user, "probe-" + uuid.uuid4().hex[:6], on=fe)
            return
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("how,when", [("kill", "at-once"), ("kill", "after-timeout"),
                                      ("stop", "at-once")])
def test_resume_on_the_other_frontend_after_losing_one(lstack, clients, how, when):
    # SIGKILL (a crash) or SIGTERM of the client's frontend; the client resumes through
    # HAProxy at once (the router may not have noticed yet) or after the router took the
    # frontend for dead (frontend_timeout): every message exactly once, in order.
    ua, ub = lstack.new_user("smk"), lstack.new_user("smk")
    a, s, fa = sm_online(lstack, clients, ua, "mobile")
    b, fb = online(lstack, clients, ub, "b", not_on=fa)
    msgs = ["k%03d" % i for i in range(40)]
    for m in msgs[:20]:
        b.message(a.jid, m)
    seen = messages_until(a, lambda g: len(g) >= 10, WAIT)   # read, never acknowledged
    try:
        lstack.run(how, fa)
        a.assert_closed(5)
        # Routed while the client has no connection (and, at once, while the router may
        # still believe in the dead frontend): queued, not lost.
        for m in msgs[20:]:
            b.message(a.jid, m)
        b.message(b.jid, "sync")
        b.wait_message("sync", timeout=WAIT)
        if when == "after-timeout":
            time.sleep(FRONTEND_TIMEOUT_MS / 1000 + 1.5)
        a2, fa2 = resume_via_haproxy(lstack, clients, ua, s)
        assert fa2 != fa
        rest = messages_until(a2, lambda g: len(seen) + len(g) >= len(msgs), WAIT)
        assert bodies(seen + rest) == msgs, "after resumption: %s" % bodies(seen + rest)
        assert not collect_messages(a2, 1.5), "messages delivered twice"
        # The session goes on under its full JID, both ways.
        b.message(a2.jid, "on the new frontend")
        assert a2.wait_message("on the new frontend").get("from") == b.jid
        a2.message(b.jid, "from the resumed session")
        assert b.wait_message("from the resumed session").get("from") == a2.jid
        assert s.request_ack() == s.sent
    finally:
        lstack.run("start", fa)
    wait_frontend_serves(lstack, clients, fa, lstack.new_user("smp"))


def test_1000_messages_through_20_random_cuts(lstack, clients):
    # The client's connection is cut at 20 random points of a stream of 1,000 messages;
    # each time it reconnects through HAProxy (either frontend), resumes with the count it
    # handled and acknowledges; at the end it has every message exactly once, in order.
    seed = int.from_bytes(uuid.uuid4().bytes[:4], "big")
    print("random seed %d" % seed)
    rng = random.Random(seed)
    ua, ub = lstack.new_user("smr"), lstack.new_user("smr")
    a, s, fa = sm_online(lstack, clients, ua, "roaming")
    b, _ = online(lstack, clients, ub, "sender")
    total = 1000
    expected = ["n%04d" % i for i in range(total)]
    cuts = sorted(rng.sample(range(1, total), 20))
    received = []
    sent = 0
    frontends = {fa}
    for end in cuts + [total]:
        for i in range(sent, end):
            b.message(a.jid, expected[i])
        sent = end
        want = len(received) + rng.randint(0, sent - len(received))
        received += messages_until(a, lambda g: len(received) + len(g) >= want, WAIT,
                                   "messages up to %d" % want)
        if end == total:
            break
        if rng.random() < 0.5:
            s.ack()
        drop(a)
        a, fe = resume_via_haproxy(lstack, clients, ua, s)
        frontends.add(fe)
        s.ack()
    received += messages_until(a, lambda g: len(received) + len(g) >= total, WAIT * 3,
                               "the last messages")
    got = bodies(received)
    dups = sorted({x for x in got if got.count(x) > 1})
    assert not dups, "delivered more than once: %s (seed %d)" % (dups[:20], seed)
    assert got == expected, "missing or out of order (seed %d): first difference at %s" \
        % (seed, next((i for i, (x, y) in enumerate(zip(got, expected)) if x != y), len(got)))
    assert not collect_messages(a, 1.5), "extra deliveries after the 1,000th (seed %d)" % seed
    assert s.request_ack() == s.sent
    print("frontends used: %s" % sorted(frontends))


def befriend_raw(a, ua, b, ub):
    """Mutual presence subscription between a and b (RFC 6121 3), with raw presence."""
    for x, ux, y, uy in ((a, ua, b, ub), (b, ub, a, ua)):
        x.send("<presence to='%s' type='subscribe'/>" % uy.jid)
        y.wait_for(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "subscribe"
                   and e.get("from") == ux.jid, WAIT, "subscribe from %s" % ux.jid)
        y.send("<presence to='%s' type='subscribed'/>" % ux.jid)
    token = "here-" + uuid.uuid4().hex[:6]
    a.send("<presence><status>%s</status></presence>" % token)
    b.wait_for(lambda e: e.tag == PRESENCE_TAG and e.get("from") == a.jid
               and e.findtext(q(NS_CLIENT, "status")) == token, WAIT, "a's presence at b")


def test_wait_runs_out_messages_go_offline(lstack, clients):
    ua, ub = lstack.new_user("smo"), lstack.new_user("smo")
    a, fa = online(lstack, clients, ua, "a")
    b, _ = online(lstack, clients, ub, "b", not_on=fa)
    befriend_raw(a, ua, b, ub)
    s = SMSession()
    el = s.enable(a, max=2)
    assert is_sm(el, "enabled") and el.get("max") == "2", dump(el)
    sent = ["o%d" % i for i in range(3)]
    for m in sent:
        b.message(a.jid, m)
    assert bodies(messages_until(a, lambda g: len(g) >= 3, WAIT)) == sent
    drop(a)
    b.message(a.jid, "o-late")
    sent.append("o-late")
    b.wait_for(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "unavailable"
               and e.get("from") == a.jid, 15, "unavailable presence when the wait ran out")
    c = clients()
    auth_only(c, ua)
    el = s.resume(c)
    assert is_sm(el, "failed") and sm_failed_conditions(el) == ["item-not-found"], dump(el)
    c.bind("next")
    c.presence()
    got = messages_until(c, lambda g: len(g) >= len(sent), WAIT)
    assert bodies(got) == sent, bodies(got)
    for m in got:
        assert len(m.findall(q(NS_DELAY, "delay"))) == 1, "no delay stamp: %s" % dump(m)
    assert not collect_messages(c, 1.0)


def test_router_restart_keeps_connected_sm_sessions_and_loses_waiting_ones(lstack, clients):
    ua, uw, ub = lstack.new_user("smc"), lstack.new_user("smw"), lstack.new_user("smb")
    a, s, fa = sm_online(lstack, clients, ua, "connected")
    w, sw, _ = sm_online(lstack, clients, uw, "waiting")
    b, _ = online(lstack, clients, ub, "b")
    for i in range(3):
        b.message(a.jid, "before %d" % i)
    messages_until(a, lambda g: len(g) >= 3, WAIT)
    a.message(b.jid, "a was here")
    assert s.request_ack() == s.sent
    drop(w)
    time.sleep(0.5)
    lstack.run("restart", "router")
    # The connected session is back (resent by its frontend) with its counters.
    b.message(a.jid, "after the restart")
    assert a.wait_message("after the restart", timeout=15).get("from") == b.jid
    assert s.request_ack() == s.sent
    # ... and still resumable, with the same id.
    drop(a)
    a2, _ = resume_via_haproxy(lstack, clients, ua, s)
    b.message(a2.jid, "after resuming")
    assert a2.wait_message("after resuming").get("from") == b.jid
    # The session that was waiting died with the router.
    c = clients()
    auth_only(c, uw)
    el = sw.resume(c)
    assert is_sm(el, "failed") and sm_failed_conditions(el) == ["item-not-found"], dump(el)
