"""Presence: RFC 6121 section 4 (initial presence broadcast, probes on login, updates,
unavailable on logoff and on disconnect, directed presence, priority)."""

import pytest

from test_im_helpers import (QUIET, WAIT, any_presence_from, befriend, drop_pending, online,
                             presence_pred, subscribe_and_approve)
from xmpp_client import dump

NS = "{jabber:client}"


def relations(login, new_user):
    """User A with contacts in every relation:
       B both, C from (C subscribed to A only), D to (A subscribed to D only),
       E none (in nobody's roster, online). Returns (users, clients) with a1 online."""
    ua, ub, uc, ud, ue = (new_user(p) for p in "abcde")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    c1 = online(login, uc, "c1")
    d1 = online(login, ud, "d1")
    e1 = online(login, ue, "e1")
    befriend(a1, b1)
    subscribe_and_approve(c1, a1)       # C -> A: A 'from', C 'to'
    subscribe_and_approve(a1, d1)       # A -> D: A 'to', D 'from'
    drop_pending(a1, b1, c1, d1, e1)
    return (ua, ub, uc, ud, ue), (a1, b1, c1, d1, e1)


# ------------------------------------------------------- 4.2 initial presence
def test_initial_presence_goes_to_subscribers_and_own_resources(login, new_user):
    (ua, ub, uc, ud, ue), (a1, b1, c1, d1, e1) = relations(login, new_user)
    a2 = login(ua, resource="a2", priority=False)
    assert a2.roster_get().get("type") == "result"
    a2.im_presence(priority=3, show="away", status="new resource")
    for c in (b1, c1, a1):      # 'both', 'from', and A's own other available resource
        p = c.im_wait_presence(sender=a2.jid, timeout=WAIT)
        assert p.findtext(NS + "show") == "away", dump(p)
        assert p.findtext(NS + "status") == "new resource", dump(p)
        assert p.findtext(NS + "priority") == "3", dump(p)
    a2.im_sync()
    for c in (d1, e1):          # 'to' only (D does not see A), nobody
        c.im_expect_none(any_presence_from(ua.jid), QUIET, "presence to a non-subscriber")


def test_initial_presence_reaches_subscribers_on_other_frontends(login, new_user, extra_frontend):
    ua, ub = new_user("a"), new_user("b")
    fe = extra_frontend()
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1", port=fe.port)
    befriend(a1, b1)
    drop_pending(a1, b1)
    a2 = online(login, ua, "a2", status="elsewhere", port=fe.port)
    p = b1.im_wait_presence(sender=a2.jid, timeout=WAIT)
    assert p.findtext(NS + "status") == "elsewhere", dump(p)


# ------------------------------------------------------------- 4.3 probes
def test_login_receives_current_presence_of_contacts(login, new_user):
    ua, ub, uc, ud = (new_user(p) for p in "abcd")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1", priority=1, show="away", status="lunch")
    b2 = online(login, ub, "b2", priority=2, show="dnd", status="meeting")
    c1 = online(login, uc, "c1", status="C is here")
    d1 = online(login, ud, "d1", status="D is here")
    befriend(a1, b1)                    # both
    subscribe_and_approve(c1, a1)       # A 'from' C: A must not get C's presence
    subscribe_and_approve(a1, d1)       # A 'to' D: A gets D's presence
    for c in (b1, b2, c1, d1):
        c.im_sync()

    # A new resource of A becomes available: the server probes A's contacts and gives
    # it the current presence of each of their available resources (RFC 6121 4.2.2, 4.3).
    a2 = online(login, ua, "a2")
    got = {}
    for r in (b1, b2, d1):
        p = a2.im_wait_presence(sender=r.jid, timeout=WAIT)
        got[r.jid] = (p.findtext(NS + "show"), p.findtext(NS + "status"))
    assert got == {b1.jid: ("away", "lunch"), b2.jid: ("dnd", "meeting"),
                   d1.jid: (None, "D is here")}, got
    a2.im_expect_none(any_presence_from(uc.jid), QUIET,
                      "presence of a contact A is not subscribed to")
    # Each resource's presence once (no duplicate answers).
    a2.im_expect_none(lambda e: any_presence_from(ub.jid)(e) and e.get("type") is None,
                      0.3, "a second copy of a contact's presence")


def test_probe_reflects_latest_presence_update(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1", status="first")
    befriend(a1, b1)
    b1.im_presence(show="xa", status="latest")
    a1.im_wait_presence(sender=b1.jid)          # the update itself
    b1.im_sync()
    a2 = online(login, ua, "a2")
    p = a2.im_wait_presence(sender=b1.jid, timeout=WAIT)
    assert (p.findtext(NS + "show"), p.findtext(NS + "status")) == ("xa", "latest"), dump(p)


def test_no_probe_answer_for_resources_that_left(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    b2 = online(login, ub, "b2")
    befriend(a1, b1)
    b2.end_stream()
    a1.im_wait_presence(type_="unavailable", sender=b2.jid, timeout=WAIT)
    a2 = online(login, ua, "a2")
    a2.im_wait_presence(sender=b1.jid, timeout=WAIT)
    a2.im_expect_none(presence_pred(None, sender=b2.jid), QUIET,
                      "available presence of a resource that has gone offline")


# ---------------------------------------------------------- 4.4 updates, 4.5 leaving
def test_presence_update_is_broadcast(login, new_user):
    (ua, ub, uc, ud, ue), (a1, b1, c1, d1, e1) = relations(login, new_user)
    a1.im_presence(show="dnd", status="busy now", priority=4)
    for c in (b1, c1):
        p = c.im_wait_presence(sender=a1.jid, timeout=WAIT)
        assert p.findtext(NS + "show") == "dnd" and p.findtext(NS + "status") == "busy now", dump(p)
    a1.im_sync()
    for c in (d1, e1):
        c.im_expect_none(any_presence_from(ua.jid), QUIET, "update to a non-subscriber")


@pytest.mark.parametrize("how", ["unavailable-presence", "end-stream", "tcp-close"])
def test_going_offline_reaches_contacts(login, new_user, how):
    (ua, ub, uc, ud, ue), (a1, b1, c1, d1, e1) = relations(login, new_user)
    a2 = online(login, ua, "a2")
    for c in (b1, c1, a1):
        c.im_wait_presence(sender=a2.jid, timeout=WAIT)
    if how == "unavailable-presence":
        a2.im_presence(type_="unavailable", status="gone fishing")
    elif how == "end-stream":
        a2.end_stream()
    else:
        a2.abort()      # TCP close without </stream:stream>
    for c in (b1, c1, a1):
        p = c.im_wait_presence(type_="unavailable", sender=a2.jid, timeout=WAIT)
        if how == "unavailable-presence":
            assert p.findtext(NS + "status") == "gone fishing", dump(p)
    for c in (d1, e1):
        c.im_expect_none(any_presence_from(ua.jid), QUIET, "unavailable to a non-subscriber")


def test_unavailable_resource_gets_no_more_presence(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    a2 = online(login, ua, "a2")
    b1 = online(login, ub, "b1")
    befriend(a1, b1)
    drop_pending(a1, a2, b1)
    a2.im_presence(type_="unavailable")
    a1.im_wait_presence(type_="unavailable", sender=a2.jid, timeout=WAIT)
    b1.im_presence(status="after a2 left")
    a1.im_wait_presence(sender=b1.jid, timeout=WAIT)
    a2.im_expect_none(any_presence_from(ub.jid), QUIET,
                      "contact presence broadcast to a resource that sent unavailable")


# --------------------------------------------------------- 4.6 directed presence
@pytest.mark.parametrize("how", ["end-stream", "tcp-close", "unavailable-presence"])
def test_directed_presence_recipient_gets_unavailable(login, new_user, how):
    """A sends directed presence to X (no subscription either way). When A's resource
    goes offline, X is told (RFC 6121 4.6.3 / 4.5.2)."""
    ua, ux, uo = new_user("a"), new_user("x"), new_user("o")
    a1 = online(login, ua, "a1")
    a_other = online(login, ua, "a-other")
    x1 = online(login, ux, "x1")
    x2 = online(login, ux, "x2")
    o1 = online(login, uo, "o1")                  # a bystander
    drop_pending(a1, a_other, x1, x2, o1)
    a1.im_presence(to=x1.jid, show="chat", status="hi X1")     # to a full JID
    a1.im_presence(to=ux.jid, status="hi X")                     # to the bare JID
    p = x1.im_wait_presence(sender=a1.jid, timeout=WAIT)
    assert p.findtext(NS + "status") == "hi X1", dump(p)
    # The bare-JID one goes to each available resource of X.
    for c in (x1, x2):
        p = c.im_wait_presence(sender=a1.jid, timeout=WAIT)
        assert p.findtext(NS + "status") == "hi X", dump(p)
    if how == "end-stream":
        a1.end_stream()
    elif how == "tcp-close":
        a1.abort()
    else:
        a1.im_presence(type_="unavailable")
    for c in (x1, x2):
        c.im_wait_presence(type_="unavailable", sender=a1.jid, timeout=WAIT)
    o1.im_expect_none(any_presence_from(ua.jid), QUIET, "presence to a bystander")
    # Directed presence from a1 did not make X a subscriber of A's other resource.
    a_other.im_presence(status="not for X")
    a_other.im_sync()
    x1.im_expect_none(presence_pred(None, sender=a_other.jid), QUIET,
                      "broadcast presence reached a directed-presence recipient")


def test_directed_presence_to_nonexistent_user_is_ignored(login, new_user):
    # RFC 6121 8.5.1: presence to a local account that does not exist is silently ignored.
    ua = new_user("a")
    a1 = online(login, ua, "a1")
    ghost = "ghost-%s@localhost" % ua.localpart
    a1.im_presence(to=ghost, status="anyone?")
    a1.im_presence(to=ghost + "/res", type_="unavailable")
    a1.im_sync()
    a1.im_expect_none(lambda e: (e.get("from") or "").startswith(ghost), QUIET,
                      "answer to presence for a nonexistent account")


# ------------------------------------------------------------------ priority
def test_priority_comes_from_presence(login, new_user):
    ua, ub, us = new_user("a"), new_user("b"), new_user("s")
    a_neg = online(login, ua, "neg", priority=-1)
    a_lo = online(login, ua, "lo", priority=1)
    b1 = online(login, ub, "b1")
    s1 = online(login, us, "s1", roster=False)
    befriend(a_neg, b1)
    drop_pending(a_neg, a_lo, b1)
    # A negative priority still receives contacts' presence (RFC 6121 4.7.2.3).
    b1.im_presence(status="for every available resource")
    for c in (a_neg, a_lo):
        c.im_wait_presence(sender=b1.jid, timeout=WAIT)
    # The contact sees the priority each resource declared.
    a_lo.im_presence(priority=7, status="now 7")
    p = b1.im_wait_presence(sender=a_lo.jid, timeout=WAIT)
    assert p.findtext(NS + "priority") == "7", dump(p)
    # A message to the bare JID goes by priority: never to the negative one.
    s1.message(ua.jid, "by priority")
    a_lo.im_wait_message("by priority", sender=s1.jid, timeout=WAIT)
    a_neg.im_presence(priority=9)
    a_neg.im_sync()
    s1.message(ua.jid, "after the change")
    a_neg.im_wait_message("after the change", sender=s1.jid, timeout=WAIT)
