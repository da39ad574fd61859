"""Presence subscriptions: RFC 6121 section 3 and the state tables of its appendix A,
pre-approval (3.4), requests to offline users, and no presence leak to non-contacts."""

import pytest

from test_im_helpers import (QUIET, WAIT, any_presence_from, bare, befriend, drop_pending,
                             online, presence_pred, subscribe_and_approve, wait_roster_state)
from xmpp_client import dump, q

NS_PREAPPROVAL = "urn:xmpp:features:pre-approval"


def subscribe_pred(type_, sender_bare):
    return presence_pred(type_, sender=sender_bare)


# ---------------------------------------------------------------- 3.1 handshake
def test_full_handshake_in_both_directions(login, new_user):
    """A subscribes to B, B approves; B subscribes to A, A approves: 'both' on both sides,
    with a roster push with the right subscription/ask at every step."""
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1", priority=1, status="a1 here")
    a2 = online(login, ua, "a2", priority=0)
    b1 = online(login, ub, "b1", priority=0, show="away", status="b1 status")

    # 3.1.1-3.1.2: outbound request: pushes with subscription none + ask subscribe.
    a1.im_presence(to=ub.jid, type_="subscribe", status="let me see you")
    for c in (a1, a2):
        push, item = c.wait_roster_push(ub.jid, lambda it: it["ask"] == "subscribe")
        assert item["subscription"] == "none", "after subscribe: %s" % dump(push)
    # 3.1.3: the request reaches the contact, stamped with the user's bare JID.
    req = b1.im_wait_presence(type_="subscribe", sender=ua.jid)
    assert req.findtext("{jabber:client}status") == "let me see you", dump(req)

    # 3.1.5: the contact approves.
    b1.im_presence(to=ua.jid, type_="subscribed")
    _, item = b1.wait_roster_push(ua.jid, lambda it: it["subscription"] == "from")
    assert item["ask"] is None, item
    for c in (a1, a2):
        # 3.1.6: the approval and a push with subscription 'to', no ask ...
        c.im_wait_presence(type_="subscribed", sender=ub.jid)
        _, item = c.wait_roster_push(ub.jid, lambda it: it["subscription"] == "to")
        assert item["ask"] is None, item
        # ... and the contact's current presence (3.1.5: from each available resource).
        p = c.im_wait_presence(sender=b1.jid)
        assert p.findtext("{jabber:client}show") == "away", dump(p)
        assert p.findtext("{jabber:client}status") == "b1 status", dump(p)

    # The other direction: B subscribes to A, A (a2) approves.
    b1.im_presence(to=ua.jid, type_="subscribe")
    _, item = b1.wait_roster_push(ua.jid, lambda it: it["ask"] == "subscribe")
    assert item["subscription"] == "from", item
    for c in (a1, a2):       # requests go to every available resource
        c.im_wait_presence(type_="subscribe", sender=ub.jid)
    a2.im_presence(to=ub.jid, type_="subscribed")
    for c in (a1, a2):
        _, item = c.wait_roster_push(ub.jid, lambda it: it["subscription"] == "both")
        assert item["ask"] is None, item
    b1.im_wait_presence(type_="subscribed", sender=ua.jid)
    _, item = b1.wait_roster_push(ua.jid, lambda it: it["subscription"] == "both")
    assert item["ask"] is None, item
    got = {b1.im_wait_presence(sender=r.jid).get("from") for r in (a1, a2)}
    assert got == {a1.jid, a2.jid}

    assert wait_roster_state(a1, ub.jid, "both")["ask"] is None
    assert wait_roster_state(b1, ua.jid, "both")["ask"] is None


def test_unsubscribe_and_unsubscribed(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    a2 = online(login, ua, "a2")
    b1 = online(login, ub, "b1")
    befriend(a1, b1)
    drop_pending(a1, a2, b1)

    # 3.3: A unsubscribes from B's presence: A 'from', B 'to'.
    a1.im_presence(to=ub.jid, type_="unsubscribe")
    for c in (a1, a2):
        c.wait_roster_push(ub.jid, lambda it: it["subscription"] == "from" and it["ask"] is None)
    b1.im_wait_presence(type_="unsubscribe", sender=ua.jid)
    b1.wait_roster_push(ua.jid, lambda it: it["subscription"] == "to")
    # 3.3.3: B's server sends unavailable from B's available resources to A.
    for c in (a1, a2):
        c.im_wait_presence(type_="unavailable", sender=b1.jid)

    # 3.2: A cancels B's subscription to A: both 'none'. A's resources first send
    # unavailable presence to B (3.2.2).
    a2.im_presence(to=ub.jid, type_="unsubscribed")
    for c in (a1, a2):
        c.wait_roster_push(ub.jid, lambda it: it["subscription"] == "none")
    for r in (a1, a2):
        b1.im_wait_presence(type_="unavailable", sender=r.jid)
    b1.im_wait_presence(type_="unsubscribed", sender=ua.jid)
    b1.wait_roster_push(ua.jid, lambda it: it["subscription"] == "none")
    wait_roster_state(a1, ub.jid, "none")
    wait_roster_state(b1, ua.jid, "none")

    # Neither sees the other's presence any more.
    a1.im_presence(show="dnd")
    b1.im_presence(show="xa")
    a1.im_sync()
    b1.im_sync()
    b1.im_expect_none(presence_pred(None, bare_sender=ua.jid), QUIET, "presence after unsubscription")
    a1.im_expect_none(presence_pred(None, bare_sender=ub.jid), QUIET, "presence after unsubscription")


def test_subscription_stanzas_are_stamped_with_bare_jid(login, new_user):
    # RFC 6121 3.1.2: the user's server stamps the bare JID, whatever 'from' the client put.
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    a1.send("<presence to='%s' type='subscribe' from='%s'/>" % (ub.jid, a1.jid))
    p = b1.im_wait_presence(type_="subscribe", bare_sender=ua.jid)
    assert p.get("from") == ua.jid, "subscription request not stamped with the bare JID: %s" % dump(p)


def test_subscribe_to_full_jid_is_handled_as_bare(login, new_user):
    # RFC 6121 3.1.1: the request is addressed to the bare JID; one sent to a full JID
    # is still a request for the account's presence.
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    a1.im_presence(to=b1.jid, type_="subscribe")
    b1.im_wait_presence(type_="subscribe", sender=ua.jid)
    a1.wait_roster_push(ub.jid, lambda it: it["ask"] == "subscribe")
    wait_roster_state(a1, ub.jid, "none", ask="subscribe")


def test_resubscribe_when_already_subscribed_is_auto_approved(login, new_user):
    # RFC 6121 3.1.3 (A.3.1 rows From/Both): the contact's server answers 'subscribed' on
    # the contact's behalf and does not bother the contact.
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    subscribe_and_approve(a1, b1)
    drop_pending(a1, b1)
    a1.im_presence(to=ub.jid, type_="subscribe")
    a1.im_sync()
    b1.im_expect_none(presence_pred("subscribe", sender=ua.jid), QUIET,
                      "subscribe delivered although A is already subscribed")
    wait_roster_state(a1, ub.jid, "to")
    wait_roster_state(b1, ua.jid, "from")


# ------------------------------------------------------- 3.1.3 offline contact
def test_subscription_request_to_offline_user_is_delivered_on_initial_presence(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    a1.im_presence(to=ub.jid, type_="subscribe", status="first")
    a1.im_presence(to=ub.jid, type_="subscribe", status="second")
    a1.wait_roster_push(ub.jid, lambda it: it["ask"] == "subscribe")
    a1.im_sync()

    # B connects and fetches the roster: nothing yet (requests go to available resources).
    b1 = login(ub, resource="b1", priority=False)
    assert b1.roster_get().get("type") == "result"
    b1.im_expect_none(presence_pred("subscribe", sender=ua.jid), QUIET,
                      "subscription request before initial presence")
    b1.im_presence(priority=0)
    b1.im_wait_presence(type_="subscribe", sender=ua.jid, timeout=WAIT)
    # RFC 6121 3.1.3: the server delivers only one of the stored requests.
    b1.im_expect_none(presence_pred("subscribe", sender=ua.jid), QUIET, "a second stored request")

    # Not answered: it is delivered again when B next becomes available ...
    b1.end_stream()
    b2 = online(login, ub, "b2")
    b2.im_wait_presence(type_="subscribe", sender=ua.jid, timeout=WAIT)
    # ... until B answers it.
    b2.im_presence(to=ua.jid, type_="subscribed")
    a1.im_wait_presence(type_="subscribed", sender=ub.jid)
    wait_roster_state(a1, ub.jid, "to")
    b2.end_stream()
    b3 = online(login, ub, "b3")
    b3.im_expect_none(presence_pred("subscribe", sender=ua.jid), QUIET,
                      "an answered subscription request was delivered again")


def test_denied_request_to_offline_user_is_not_redelivered(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    a1.im_presence(to=ub.jid, type_="subscribe")
    a1.wait_roster_push(ub.jid, lambda it: it["ask"] == "subscribe")
    b1 = online(login, ub, "b1")
    b1.im_wait_presence(type_="subscribe", sender=ua.jid, timeout=WAIT)
    b1.im_presence(to=ua.jid, type_="unsubscribed")
    # 3.2: A learns of the denial; its pending-out state ends.
    a1.im_wait_presence(type_="unsubscribed", sender=ub.jid)
    a1.wait_roster_push(ub.jid, lambda it: it["ask"] is None and it["subscription"] == "none")
    b1.end_stream()
    b2 = online(login, ub, "b2")
    b2.im_expect_none(presence_pred("subscribe", sender=ua.jid), QUIET,
                      "a denied subscription request was delivered again")


# --------------------------------------------------------------- 3.4 pre-approval
def test_pre_approval_is_advertised(login, new_user):
    # RFC 6121 3.4.1: <sub xmlns='urn:xmpp:features:pre-approval'/> in the stream
    # features (those after authentication, where bind is offered).
    c = login(new_user(), resource="r", priority=False)
    assert c.features.find(q(NS_PREAPPROVAL, "sub")) is not None, \
        "pre-approval not advertised: %s" % dump(c.features)


def test_pre_approved_subscription_is_answered_automatically(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1", status="here")
    a2 = online(login, ua, "a2")
    b1 = online(login, ub, "b1")
    # 3.4.2: A pre-approves B (no item yet): item with state None and approved='true';
    # the 'subscribed' is not routed to B.
    a1.im_presence(to=ub.jid, type_="subscribed")
    for c in (a1, a2):
        _, item = c.wait_roster_push(ub.jid, lambda it: it["approved"] == "true")
        assert item["subscription"] == "none" and item["ask"] is None, item
    a1.im_sync()
    b1.im_expect_none(presence_pred("subscribed", sender=ua.jid), QUIET,
                      "a pre-approval was routed to the contact")
    # 3.4.3: B's request is approved by A's server; A's resources are not asked.
    b1.im_presence(to=ua.jid, type_="subscribe")
    b1.im_wait_presence(type_="subscribed", sender=ua.jid, timeout=WAIT)
    b1.wait_roster_push(ua.jid, lambda it: it["subscription"] == "to" and it["ask"] is None)
    for c in (a1, a2):
        c.wait_roster_push(ub.jid, lambda it: it["subscription"] == "from")
    b1.im_sync()
    for c in (a1, a2):
        c.im_expect_none(presence_pred("subscribe", sender=ub.jid), QUIET,
                         "a pre-approved request was delivered to the user")
    # B now has A's presence.
    p = b1.im_wait_presence(sender=a1.jid, timeout=WAIT)
    assert p.findtext("{jabber:client}status") == "here", dump(p)
    wait_roster_state(a1, ub.jid, "from")
    wait_roster_state(b1, ua.jid, "to")


def test_pre_approval_cancelled_by_unsubscribed(login, new_user):
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    a1.im_presence(to=ub.jid, type_="subscribed")
    a1.wait_roster_push(ub.jid, lambda it: it["approved"] == "true")
    # RFC 6121 3.2.2: 'unsubscribed' while pre-approved removes the pre-approval and is
    # not routed to the contact.
    a1.im_presence(to=ub.jid, type_="unsubscribed")
    a1.wait_roster_push(ub.jid, lambda it: it["approved"] is None)
    a1.im_sync()
    b1.im_expect_none(any_presence_from(ua.jid), QUIET, "pre-approval traffic reached the contact")
    b1.im_presence(to=ua.jid, type_="subscribe")
    a1.im_wait_presence(type_="subscribe", sender=ub.jid, timeout=WAIT)
    b1.im_expect_none(presence_pred("subscribed", sender=ua.jid), QUIET,
                      "a cancelled pre-approval still approved the request")


def test_pre_approval_of_existing_pending_out_item(login, new_user):
    # 3.4.2: pre-approval is also noted for an item in state "None + Pending Out".
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    a1.im_presence(to=ub.jid, type_="subscribe")
    b1.im_wait_presence(type_="subscribe", sender=ua.jid)
    a1.im_presence(to=ub.jid, type_="subscribed")
    _, item = a1.wait_roster_push(ub.jid, lambda it: it["approved"] == "true")
    assert item["ask"] == "subscribe" and item["subscription"] == "none", item
    # B approves A, then asks: A's server answers for A.
    b1.im_presence(to=ua.jid, type_="subscribed")
    b1.im_presence(to=ua.jid, type_="subscribe")
    b1.im_wait_presence(type_="subscribed", sender=ua.jid, timeout=WAIT)
    wait_roster_state(a1, ub.jid, "both")
    wait_roster_state(b1, ua.jid, "both")


# -------------------------------------------------- appendix A: the state tables
# States from user A's point of view towards contact B (RFC 6121 A.1). B is always in
# the mirrored state. Each is reached by a sequence of (sender, type) subscription stanzas
# from both rosters holding the other as an item with state None.
SETUP = {
    "None": [],
    "None+PendingOut": [("A", "subscribe")],
    "None+PendingIn": [("B", "subscribe")],
    "None+PendingOutIn": [("A", "subscribe"), ("B", "subscribe")],
    "To": [("A", "subscribe"), ("B", "subscribed")],
    "To+PendingIn": [("A", "subscribe"), ("B", "subscribed"), ("B", "subscribe")],
    "From": [("B", "subscribe"), ("A", "subscribed")],
    "From+PendingOut": [("B", "subscribe"), ("A", "subscribed"), ("A", "subscribe")],
    "Both": [("A", "subscribe"), ("B", "subscribed"), ("B", "subscribe"), ("A", "subscribed")],
}
MIRROR = {"None": "None", "None+PendingOut": "None+PendingIn", "None+PendingIn": "None+PendingOut",
          "None+PendingOutIn": "None+PendingOutIn", "To": "From", "To+PendingIn": "From+PendingOut",
          "From": "To", "From+PendingOut": "To+PendingIn", "Both": "Both"}
# What a roster item shows of a state: (subscription, ask). "Pending In" is not visible.
VISIBLE = {"None": ("none", None), "None+PendingOut": ("none", "subscribe"),
           "None+PendingIn": ("none", None), "None+PendingOutIn": ("none", "subscribe"),
           "To": ("to", None), "To+PendingIn": ("to", None), "From": ("from", None),
           "From+PendingOut": ("from", "subscribe"), "Both": ("both", None)}
STATES = list(SETUP)

# Outbound stanza from A: A's new state (A.2.1-A.2.4). For 'subscribed' in None,
# None+PendingOut and To it is a pre-approval (3.4): state unchanged, approved='true'.
OUTBOUND = {
    "subscribe": {"None": "None+PendingOut", "None+PendingOut": "None+PendingOut",
                  "None+PendingIn": "None+PendingOutIn", "None+PendingOutIn": "None+PendingOutIn",
                  "To": "To", "To+PendingIn": "To+PendingIn", "From": "From+PendingOut",
                  "From+PendingOut": "From+PendingOut", "Both": "Both"},
    "subscribed": {"None": "None", "None+PendingOut": "None+PendingOut", "None+PendingIn": "From",
                   "None+PendingOutIn": "From+PendingOut", "To": "To", "To+PendingIn": "Both",
                   "From": "From", "From+PendingOut": "From+PendingOut", "Both": "Both"},
    "unsubscribe": {"None": "None", "None+PendingOut": "None", "None+PendingIn": "None+PendingIn",
                    "None+PendingOutIn": "None+PendingIn", "To": "None", "To+PendingIn": "None+PendingIn",
                    "From": "From", "From+PendingOut": "From", "Both": "From"},
    "unsubscribed": {"None": "None", "None+PendingOut": "None+PendingOut", "None+PendingIn": "None",
                     "None+PendingOutIn": "None+PendingOut", "To": "To", "To+PendingIn": "To",
                     "From": "None", "From+PendingOut": "None+PendingOut", "Both": "To"},
}
# Inbound at B (A.3.1-A.3.4), keyed by B's state: (deliver to B?, B's new state).
INBOUND = {
    "subscribe": {"None": (True, "None+PendingIn"), "None+PendingOut": (True, "None+PendingOutIn"),
                  "None+PendingIn": (False, "None+PendingIn"),
                  "None+PendingOutIn": (False, "None+PendingOutIn"),
                  "To": (True, "To+PendingIn"), "To+PendingIn": (False, "To+PendingIn"),
                  "From": (False, "From"), "From+PendingOut": (False, "From+PendingOut"),
                  "Both": (False, "Both")},
    "subscribed": {"None": (False, "None"), "None+PendingOut": (True, "To"),
                   "None+PendingIn": (False, "None+PendingIn"),
                   "None+PendingOutIn": (True, "To+PendingIn"), "To": (False, "To"),
                   "To+PendingIn": (False, "To+PendingIn"), "From": (False, "From"),
                   "From+PendingOut": (True, "Both"), "Both": (False, "Both")},
    "unsubscribe": {"None": (False, "None"), "None+PendingOut": (False, "None+PendingOut"),
                    "None+PendingIn": (True, "None"), "None+PendingOutIn": (True, "None+PendingOut"),
                    "To": (False, "To"), "To+PendingIn": (True, "To"), "From": (True, "None"),
                    "From+PendingOut": (True, "None+PendingOut"), "Both": (True, "To")},
    "unsubscribed": {"None": (False, "None"), "None+PendingOut": (True, "None"),
                     "None+PendingIn": (False, "None+PendingIn"),
                     "None+PendingOutIn": (True, "None+PendingIn"), "To": (True, "None"),
                     "To+PendingIn": (True, "None+PendingIn"), "From": (False, "From"),
                     "From+PendingOut": (True, "From"), "Both": (True, "From")},
}
PREAPPROVAL_STATES = {"None", "None+PendingOut", "To"}


def _check_tables_consistent():
    # The two tables must agree: after the stanza, B's state mirrors A's. (When the
    # stanza is not routed B is unchanged, which the inbound table also yields.)
    for t, rows in OUTBOUND.items():
        for s, a_new in rows.items():
            _, b_new = INBOUND[t][MIRROR[s]]
            assert MIRROR[a_new] == b_new, (t, s, a_new, b_new)


_check_tables_consistent()


def reach_state(ca, cb, ua, ub, state):
    """Puts the pair into `state` (A's view) and checks both rosters show it."""
    assert ca.roster_set(ub.jid).get("type") == "result"
    assert cb.roster_set(ua.jid).get("type") == "result"
    clients = {"A": (ca, ub.jid), "B": (cb, ua.jid)}
    for who, type_ in SETUP[state]:
        c, to = clients[who]
        c.im_presence(to=to, type_=type_)
        other = cb if who == "A" else ca
        if type_ == "subscribe":
            other.im_wait_presence(type_="subscribe", sender=bare(c.jid), timeout=WAIT)
        else:
            other.im_wait_presence(type_="subscribed", sender=bare(c.jid), timeout=WAIT)
    sub, ask = VISIBLE[state]
    wait_roster_state(ca, ub.jid, sub, ask)
    sub, ask = VISIBLE[MIRROR[state]]
    wait_roster_state(cb, ua.jid, sub, ask)
    drop_pending(ca, cb)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("stanza", ["subscribe", "subscribed", "unsubscribe", "unsubscribed"])
def test_state_table(login, new_user, stanza, state):
    """A (state `state` towards B) sends `stanza` to B: the new states on both sides and
    whether B is given the stanza follow RFC 6121 appendix A (A.2 outbound at A's
    server, A.3 inbound at B's)."""
    ua, ub = new_user("ta"), new_user("tb")
    ca = online(login, ua, "a")
    cb = online(login, ub, "b")
    reach_state(ca, cb, ua, ub, state)

    ca.im_presence(to=ub.jid, type_=stanza)
    a_new = OUTBOUND[stanza][state]
    deliver, b_new = INBOUND[stanza][MIRROR[state]]
    assert MIRROR[a_new] == b_new

    if deliver:
        p = cb.im_wait_presence(type_=stanza, sender=ua.jid, timeout=WAIT)
        assert p.get("to") in (None, ub.jid, cb.jid), dump(p)
    sub, ask = VISIBLE[a_new]
    item = wait_roster_state(ca, ub.jid, sub, ask)
    if stanza == "subscribed" and state in PREAPPROVAL_STATES:
        assert item["approved"] == "true", \
            "'subscribed' in state %s is a pre-approval (RFC 6121 3.4.2): %s" % (state, item)
    sub, ask = VISIBLE[b_new]
    wait_roster_state(cb, ua.jid, sub, ask)
    # A roster push for every visible change (RFC 6121 3.x: "roster push").
    if VISIBLE[a_new] != VISIBLE[state]:
        ca.wait_roster_push(ub.jid, lambda it: (it["subscription"], it["ask"]) == VISIBLE[a_new])
    if stanza == "subscribed" and state in PREAPPROVAL_STATES:
        ca.wait_roster_push(ub.jid, lambda it: it["approved"] == "true")
    if VISIBLE[b_new] != VISIBLE[MIRROR[state]]:
        cb.wait_roster_push(ua.jid, lambda it: (it["subscription"], it["ask"]) == VISIBLE[b_new])
    if not deliver:
        ca.im_sync()
        cb.im_expect_none(presence_pred(stanza, bare_sender=ua.jid), QUIET,
                          "'%s' delivered to B in state %s (RFC 6121 A.3: not delivered)"
                          % (stanza, MIRROR[state]))
    # The auto-reply of A.3.1 ('subscribed' for From/Both) is not delivered to A in the
    # matching To/Both states either (A.3.2), and a server-side answer never appears
    # as an error.
    ca.im_expect_none(lambda e: e.get("type") == "error", 0.2, "error stanza")


# ------------------------------------------------------------- no presence leak
def test_no_presence_leak_to_non_contacts(login, new_user):
    ua, ub, uc, ud = new_user("a"), new_user("b"), new_user("c"), new_user("d")
    a1 = online(login, ua, "a1")
    a2 = online(login, ua, "a2")
    b1 = online(login, ub, "b1")      # mutual contact
    c1 = online(login, uc, "c1")      # asked, never approved (None + Pending Out)
    d1 = online(login, ud, "d1")      # in A's roster only (None), knows nothing
    befriend(a1, b1)
    c1.im_presence(to=ua.jid, type_="subscribe")
    a1.im_wait_presence(type_="subscribe", sender=uc.jid)
    assert a1.roster_set(ud.jid, name="D").get("type") == "result"
    drop_pending(a1, a2, b1, c1, d1)

    a1.im_presence(show="chat", status="update 1")
    a2.im_presence(type_="unavailable")
    b1.im_wait_presence(sender=a1.jid)
    b1.im_wait_presence(type_="unavailable", sender=a2.jid)
    for c in (a1, a2):
        c.im_sync()
    for c in (c1, d1):
        c.im_expect_none(any_presence_from(ua.jid), QUIET, "presence leaked to a non-subscriber")
    # A probe from a non-subscriber (RFC 6121 4.3.2) reveals nothing either; at most an
    # 'unsubscribed' answer.
    d1.im_presence(to=ua.jid, type_="probe")
    d1.im_sync()
    d1.im_expect_none(lambda e: any_presence_from(ua.jid)(e)
                      and e.get("type") not in ("unsubscribed", "error"),
                      QUIET, "presence revealed to a probe from a non-subscriber")


def test_subscription_requests_go_to_available_not_merely_interested(login, new_user):
    # RFC 6121 2.2 (implementation note) and 3.1.3: subscription requests go to available
    # resources; the roster pushes of the state changes go to interested resources.
    ua, ub = new_user("a"), new_user("b")
    b_avail = online(login, ub, "avail")                       # interested and available
    b_conn = online(login, ub, "conn", available=False)        # interested, only connected
    a1 = online(login, ua, "a1")
    a1.im_presence(to=ub.jid, type_="subscribe")
    b_avail.im_wait_presence(type_="subscribe", sender=ua.jid, timeout=WAIT)
    b_avail.im_sync()
    b_conn.im_expect_none(presence_pred("subscribe", sender=ua.jid), QUIET,
                          "subscription request to a resource that is not available")
    b_avail.im_presence(to=ua.jid, type_="subscribed")
    for c in (b_avail, b_conn):
        c.wait_roster_push(ua.jid, lambda it: it["subscription"] == "from")
