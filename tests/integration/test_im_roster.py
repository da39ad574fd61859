"""Rosters: RFC 6121 section 2 (get, set, push to interested resources, delete, errors)
and roster versioning (RFC 6121 2.6 / XEP-0237)."""

import pytest

from test_im_helpers import (QUIET, WAIT, assert_error, bare, befriend, configured_stack,
                             drop_pending, online, presence_pred, wait_roster_state)
from xmpp_client import IQ_TAG, dump, q

NS_ROSTER = "jabber:iq:roster"
NS_ROSTERVER_FEATURE = "urn:xmpp:features:rosterver"
# Well beyond any sensible server-configured limit on a name or a group (RFC 6121 2.3.3
# leaves the limit to the server; the stanza itself stays far below max_stanza_size).
OVERLONG = 10000


def query_of(res):
    query = res.find(q(NS_ROSTER, "query"))
    assert query is not None, "no roster <query/> in %s" % dump(res)
    return query


def assert_push_from_ok(push, user_bare):
    # RFC 6121 2.1.6: a roster push has no 'from', or the user's bare JID as 'from'.
    assert push.get("from") in (None, user_bare), "roster push from %r: %s" % (push.get("from"), dump(push))


def is_push(c, jid=None):
    return lambda e: c.is_roster_push(e, jid)


# ------------------------------------------------------------------------- 2.2 get
def test_roster_get_of_new_account_is_empty(login, new_user):
    c = login(new_user(), resource="r", priority=False)
    res = c.roster_get()
    assert res.get("type") == "result", dump(res)
    assert len(query_of(res)) == 0, "a new account has an empty roster: %s" % dump(res)


def test_roster_set_adds_item_and_get_returns_it(login, new_user):
    a, b, c = new_user(), new_user(), new_user()
    cl = login(a, resource="r", priority=False)
    res = cl.roster_set(b.jid, name="Bob B\u00e9", groups=["Friends", "Work"])
    assert res.get("type") == "result", dump(res)
    assert len(res) == 0, "a roster set result carries no payload (RFC 6121 2.3.2): %s" % dump(res)
    res = cl.roster_set(c.jid)          # no name, no group
    assert res.get("type") == "result", dump(res)
    items = cl.roster()
    assert set(items) == {b.jid, c.jid}, items
    assert items[b.jid] == {"name": "Bob B\u00e9", "subscription": "none", "ask": None,
                            "approved": None, "groups": ["Friends", "Work"]}, items
    assert items[c.jid]["name"] is None and items[c.jid]["groups"] == [], items
    assert items[c.jid]["subscription"] == "none" and items[c.jid]["ask"] is None, items


def test_roster_survives_logout(login, new_user):
    a, b = new_user(), new_user()
    c1 = login(a, resource="first", priority=False)
    assert c1.roster_set(b.jid, name="Kept", groups=["G"]).get("type") == "result"
    c1.end_stream()
    c2 = login(a, resource="second", priority=False)
    items = c2.roster()
    assert items.get(b.jid, {}).get("name") == "Kept" and items[b.jid]["groups"] == ["G"], items


def test_roster_items_are_per_user(login, new_user):
    a, b, x = new_user(), new_user(), new_user()
    ca = login(a, resource="r", priority=False)
    cb = login(b, resource="r", priority=False)
    assert ca.roster_set(x.jid, name="only A's").get("type") == "result"
    assert x.jid not in cb.roster(), "A's roster item appears in B's roster"


# ------------------------------------------------------------- 2.3.2 pushes, 2.1.6
def test_roster_set_is_pushed_to_interested_resources_only(login, new_user):
    a, b = new_user(), new_user()
    # Interested and available; interested but only connected; available but never
    # asked for the roster; connected only.
    setter = online(login, a, "setter")
    interested_connected = online(login, a, "int-conn", available=False)
    available_only = online(login, a, "avail-only", roster=False)
    connected_only = login(a, resource="conn-only", priority=False)
    res = setter.roster_set(b.jid, name="Bob", groups=["Friends"])
    assert res.get("type") == "result", dump(res)
    for c in (setter, interested_connected):
        push, item = c.wait_roster_push(b.jid, timeout=WAIT)
        assert_push_from_ok(push, a.jid)
        assert push.get("to") in (None, c.jid), dump(push)
        assert item == {"name": "Bob", "subscription": "none", "ask": None, "approved": None,
                        "groups": ["Friends"]}, "pushed item: %s" % dump(push)
        assert len(query_of(push)) == 1, "a push carries exactly one item: %s" % dump(push)
    setter.im_sync()
    for c in (available_only, connected_only):
        c.im_sync()
        c.im_expect_none(is_push(c), QUIET, "roster push to a resource that never requested the roster")


def test_roster_push_reaches_resources_on_other_frontends(login, new_user, extra_frontend):
    a, b = new_user(), new_user()
    fe = extra_frontend()
    here = online(login, a, "here")
    there = online(login, a, "there", port=fe.port)
    assert here.roster_set(b.jid, name="x").get("type") == "result"
    for c in (here, there):
        c.wait_roster_push(b.jid, lambda it: it["name"] == "x", timeout=WAIT)


def test_roster_update_changes_name_and_groups(login, new_user):
    a, b = new_user(), new_user()
    c1 = online(login, a, "one")
    c2 = online(login, a, "two")
    assert c1.roster_set(b.jid, name="Old", groups=["A", "B"]).get("type") == "result"
    for c in (c1, c2):
        c.wait_roster_push(b.jid, lambda it: it["name"] == "Old")
    assert c2.roster_set(b.jid, name="New", groups=["B", "C"]).get("type") == "result"
    for c in (c1, c2):
        _, item = c.wait_roster_push(b.jid, lambda it: it["name"] == "New")
        assert item["groups"] == ["B", "C"] and item["subscription"] == "none", item
    # Leaving out every <group/> removes the item from all groups (RFC 6121 2.1.2.4).
    assert c1.roster_set(b.jid, name="New").get("type") == "result"
    _, item = c2.wait_roster_push(b.jid, lambda it: it["groups"] == [])
    assert item["name"] == "New", item
    items = c1.roster()
    assert items[b.jid]["name"] == "New" and items[b.jid]["groups"] == [], items


def test_roster_remove_is_pushed_and_item_is_gone(login, new_user):
    a, b, keep = new_user(), new_user(), new_user()
    c1 = online(login, a, "one")
    c2 = online(login, a, "two")
    quiet = online(login, a, "quiet", roster=False)
    for j in (b.jid, keep.jid):
        assert c1.roster_set(j, name="n").get("type") == "result"
        for c in (c1, c2):
            c.wait_roster_push(j)
    res = c2.roster_set(b.jid, subscription="remove")
    assert res.get("type") == "result", dump(res)
    for c in (c1, c2):
        push, item = c.wait_roster_push(b.jid, lambda it: it["subscription"] == "remove")
        assert_push_from_ok(push, a.jid)
    quiet.im_expect_none(is_push(quiet), QUIET, "roster push to a non-interested resource")
    items = c1.roster()
    assert b.jid not in items and keep.jid in items, items


def test_roster_remove_of_unknown_item_is_item_not_found(login, new_user):
    # RFC 6121 2.5.3: removing an item that is not in the roster -> <item-not-found/>.
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    res = c.roster_set(b.jid, subscription="remove")
    assert_error(res, "item-not-found")
    c.im_expect_none(is_push(c), QUIET, "roster push for a failed removal")


# ------------------------------------------------------------------ 2.3.3 errors
def test_roster_set_with_two_items_is_bad_request(login, new_user):
    a, b, c2 = new_user(), new_user(), new_user()
    c = online(login, a, "r")
    res = c.roster_set(None, raw_item="<item jid='%s'/><item jid='%s'/>" % (b.jid, c2.jid))
    assert_error(res, "bad-request", "modify")
    items = c.roster()
    assert b.jid not in items and c2.jid not in items, "a rejected set changed the roster: %s" % items
    c.im_expect_none(is_push(c), QUIET, "roster push after a rejected set")


def test_roster_set_ignores_subscription_other_than_remove(login, new_user):
    # RFC 6121 2.1.2.5: "in a roster set the server MUST ignore all values of the
    # 'subscription' attribute other than 'remove'" -- the set succeeds and the item's
    # subscription state is what the server knows (none), never what the client claims.
    a, b, x = new_user(), new_user(), new_user()
    c = online(login, a, "r")
    for target, claimed in ((b.jid, "both"), (x.jid, "from")):
        res = c.roster_set(target, name="claimed-" + claimed, subscription=claimed)
        assert res.get("type") == "result", \
            "subscription=%r in a roster set must be ignored, not refused: %s" % (claimed, dump(res))
        _, item = c.wait_roster_push(target)
        assert item["subscription"] == "none" and item["name"] == "claimed-" + claimed, item
    items = c.roster()
    assert items[b.jid]["subscription"] == "none" and items[x.jid]["subscription"] == "none", items


def test_roster_set_ignores_ask_attribute(login, new_user):
    # RFC 6121 2.1.2.2: 'ask' is the server's to set (only through presence); a client
    # that sends it does not create a pending-out state.
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    res = c.roster_set(None, raw_item="<item jid='%s' ask='subscribe'/>" % b.jid)
    if res.get("type") == "result":
        assert c.roster()[b.jid]["ask"] is None, "client-supplied ask='subscribe' was stored"
    else:
        assert_error(res, "bad-request")


def test_roster_set_overlong_name_is_not_acceptable(login, new_user):
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    res = c.roster_set(b.jid, name="n" * OVERLONG)
    assert_error(res, "not-acceptable", "modify")
    assert b.jid not in c.roster()


def test_roster_set_overlong_group_is_not_acceptable(login, new_user):
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    res = c.roster_set(b.jid, name="ok", groups=["fine", "g" * OVERLONG])
    assert_error(res, "not-acceptable", "modify")
    assert b.jid not in c.roster()


def test_roster_set_empty_group_is_not_acceptable(login, new_user):
    # RFC 6121 2.3.3: <group/> with zero-length character data -> <not-acceptable/>.
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    res = c.roster_set(None, raw_item="<item jid='%s'><group/></item>" % b.jid)
    assert_error(res, "not-acceptable", "modify")
    assert b.jid not in c.roster()


def test_roster_set_duplicate_groups_is_bad_request(login, new_user):
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    res = c.roster_set(b.jid, groups=["Friends", "Friends"])
    assert_error(res, "bad-request", "modify")
    assert b.jid not in c.roster()


def test_roster_reasonable_name_and_group_are_accepted(login, new_user):
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    name = "\u00c9milie \u2603 " * 20          # 200 characters, multi-byte
    group = "Gr\u00fcppe " * 20
    assert c.roster_set(b.jid, name=name, groups=[group]).get("type") == "result"
    item = c.roster()[b.jid]
    assert item["name"] == name and item["groups"] == [group], item


def test_roster_set_with_own_jid_is_refused(login, new_user):
    # The user's own bare JID is not a contact. RFC 6121 names no condition for this;
    # not-allowed (as Prosody does) or bad-request are accepted.
    a = new_user()
    c = online(login, a, "r")
    res = c.roster_set(a.jid, name="me")
    assert_error(res, {"not-allowed", "bad-request", "not-acceptable", "forbidden"})
    assert a.jid not in c.roster()


def test_roster_set_with_malformed_jid_is_refused(login, new_user):
    a = new_user()
    c = online(login, a, "r")
    res = c.roster_set("bad@@jid@localhost")
    assert_error(res, {"jid-malformed", "bad-request"})


@pytest.mark.parametrize("kind", ["get", "set"])
def test_roster_of_another_user_is_forbidden(login, new_user, kind):
    # RFC 6121 2.3.3 (and 2.1.5 for gets): only the account's own resources may read or
    # change its roster; addressed to another user's bare JID -> <forbidden/>.
    a, b, x = new_user(), new_user(), new_user()
    ca = online(login, a, "a")
    cb = online(login, b, "b")
    if kind == "get":
        res = ca.im_iq("get", "<query xmlns='jabber:iq:roster'/>", to=b.jid)
    else:
        res = ca.roster_set(x.jid, name="intruder", to=b.jid)
    assert_error(res, "forbidden", "auth")
    assert x.jid not in cb.roster() and x.jid not in ca.roster()
    cb.im_expect_none(lambda e: e.tag == IQ_TAG and e.get("type") in ("get", "set")
                      and (e.get("from") or "").startswith(a.jid), QUIET,
                      "another user's roster iq delivered to the account's resource")


def test_roster_get_to_own_bare_jid_is_allowed(login, new_user):
    a, b = new_user(), new_user()
    c = online(login, a, "r")
    assert c.roster_set(b.jid, name="x").get("type") == "result"
    res = c.im_iq("get", "<query xmlns='jabber:iq:roster'/>", to=a.jid)
    assert res.get("type") == "result", dump(res)
    assert c.roster_items(query_of(res)).get(b.jid, {}).get("name") == "x", dump(res)


# ------------------------------------------------------- 2.6 / XEP-0237 versioning
def test_roster_versioning_is_advertised(login, new_user):
    # RFC 6121 2.6.1: a server that supports versioning advertises <ver/> in the stream
    # features (those offered after authentication).
    c = login(new_user(), resource="r", priority=False)
    assert c.features.find(q(NS_ROSTERVER_FEATURE, "ver")) is not None, \
        "no <ver xmlns='%s'/> in stream features: %s" % (NS_ROSTERVER_FEATURE, dump(c.features))


def test_roster_result_and_pushes_carry_ver(login, new_user):
    a, b, x = new_user(), new_user(), new_user()
    c = login(a, resource="r", priority=False)
    res = c.roster_get(ver="")
    assert res.get("type") == "result", dump(res)
    v0 = query_of(res).get("ver")
    assert v0 is not None, "a roster result to a versioning client carries 'ver': %s" % dump(res)
    seen = [v0]
    for j in (b.jid, x.jid):
        assert c.roster_set(j).get("type") == "result"
        push, _ = c.wait_roster_push(j)
        v = query_of(push).get("ver")
        assert v is not None and v not in seen, "push ver %r after %r: %s" % (v, seen, dump(push))
        seen.append(v)
    assert c.roster_set(b.jid, subscription="remove").get("type") == "result"
    push, _ = c.wait_roster_push(b.jid, lambda it: it["subscription"] == "remove")
    v = query_of(push).get("ver")
    assert v is not None and v not in seen, "removal push ver %r after %r" % (v, seen)
    seen.append(v)
    res = c.roster_get(ver="")
    assert query_of(res).get("ver") == seen[-1], \
        "full roster ver %r differs from the last push's %r" % (query_of(res).get("ver"), seen[-1])


def test_roster_get_with_current_ver_is_empty_and_changes_come_as_pushes(login, new_user):
    a, b, x = new_user(), new_user(), new_user()
    c1 = online(login, a, "one")
    assert c1.roster_set(b.jid, name="b").get("type") == "result"
    push, _ = c1.wait_roster_push(b.jid)
    current = query_of(push).get("ver")
    assert current, "push without ver: %s" % dump(push)
    c2 = login(a, resource="two", priority=False)
    res = c2.roster_get(ver=current)
    assert res.get("type") == "result", dump(res)
    # RFC 6121 2.6.3: unchanged roster -> an empty IQ result (no <query/>).
    assert res.find(q(NS_ROSTER, "query")) is None and len(res) == 0, \
        "roster unchanged since %r: expected an empty result, got %s" % (current, dump(res))
    # c2 is now an interested resource: later changes reach it as pushes.
    assert c1.roster_set(x.jid, name="x").get("type") == "result"
    push2, item = c2.wait_roster_push(x.jid, timeout=WAIT)
    assert item["name"] == "x", item
    v2 = query_of(push2).get("ver")
    assert v2 and v2 != current, dump(push2)
    res = c2.roster_get(ver=v2)
    assert res.get("type") == "result" and len(res) == 0, dump(res)


def test_roster_get_with_stale_ver_catches_up(login, new_user):
    # RFC 6121 2.6.3: with an outdated ver the server returns the full roster (with the
    # current ver), or an empty result followed by pushes of the changes.
    a, b, x = new_user(), new_user(), new_user()
    c1 = login(a, resource="one", priority=False)
    old = query_of(c1.roster_get(ver="")).get("ver")
    assert old is not None
    for j, n in ((b.jid, "b"), (x.jid, "x")):
        assert c1.roster_set(j, name=n).get("type") == "result"
    c2 = login(a, resource="two", priority=False)
    res = c2.roster_get(ver=old)
    assert res.get("type") == "result", dump(res)
    query = res.find(q(NS_ROSTER, "query"))
    if query is not None:
        items = c2.roster_items(query)
        assert {b.jid, x.jid} <= set(items), dump(res)
        assert query.get("ver") not in (None, old), "stale roster returned with old ver: %s" % dump(res)
    else:
        for j in (b.jid, x.jid):
            c2.wait_roster_push(j, timeout=WAIT)


def test_roster_get_without_ver_gets_full_roster(login, new_user):
    a, b = new_user(), new_user()
    c = login(a, resource="r", priority=False)
    assert c.roster_set(b.jid).get("type") == "result"
    res = c.roster_get()
    assert b.jid in c.roster_items(query_of(res)), dump(res)


# --------------------------------------------------------------- max_roster_items
def test_max_roster_items_limits_the_roster(stack, login, new_user):
    with configured_stack(stack, max_roster_items=3) as ps:
        a = ps.new_user("lim")
        contacts = [ps.new_user("c") for _ in range(5)]
        c = online(login, a, "r", port=ps.frontend.port)
        for u in contacts[:3]:
            assert c.roster_set(u.jid).get("type") == "result"
        res = c.roster_set(contacts[3].jid, name="one too many")
        # The roster is full. RFC 6121 names no condition for a size limit:
        # not-allowed or resource-constraint are accepted.
        assert_error(res, {"not-allowed", "resource-constraint", "policy-violation"})
        items = c.roster()
        assert len(items) == 3 and contacts[3].jid not in items, items
        # Updating an existing item still works at the limit ...
        res = c.roster_set(contacts[0].jid, name="renamed")
        assert res.get("type") == "result", dump(res)
        # ... and removing one frees a place.
        assert c.roster_set(contacts[1].jid, subscription="remove").get("type") == "result"
        assert c.roster_set(contacts[4].jid).get("type") == "result"
        assert set(c.roster()) == {contacts[0].jid, contacts[2].jid, contacts[4].jid}


def test_default_max_roster_items_allows_many(login, new_user):
    # The default (1000) is far above what this test adds.
    a = new_user()
    c = login(a, resource="r", priority=False)
    jids = ["contact%d-%s" % (i, bare(a.jid)) for i in range(30)]
    for j in jids:
        res = c.roster_set(j)
        assert res.get("type") == "result", dump(res)
    assert set(jids) <= set(c.roster())


# ------------------------------------------------ 2.5.2 removal cancels subscriptions
def test_roster_remove_cancels_subscriptions_both_ways(login, new_user):
    # RFC 6121 2.5.2: removing a contact with subscription 'both' makes the user's server
    # send 'unsubscribe' and 'unsubscribed' to the contact, whose state becomes 'none';
    # neither sees the other's presence any more.
    ua, ub = new_user("a"), new_user("b")
    a1 = online(login, ua, "a1")
    a2 = online(login, ua, "a2")
    b1 = online(login, ub, "b1")
    befriend(a1, b1)
    drop_pending(a1, a2, b1)
    res = a1.roster_set(ub.jid, subscription="remove")
    assert res.get("type") == "result", dump(res)
    for c in (a1, a2):
        c.wait_roster_push(ub.jid, lambda it: it["subscription"] == "remove")
    for t in ("unsubscribe", "unsubscribed"):
        b1.im_wait_presence(type_=t, sender=ua.jid, timeout=WAIT)
    for r in (a1, a2):
        b1.im_wait_presence(type_="unavailable", sender=r.jid, timeout=WAIT)
    a1.im_wait_presence(type_="unavailable", sender=b1.jid, timeout=WAIT)
    b1.wait_roster_push(ua.jid, lambda it: it["subscription"] == "none" and it["ask"] is None)
    wait_roster_state(b1, ua.jid, "none")
    assert ub.jid not in a1.roster()
    b1.im_presence(status="B after removal")
    a1.im_presence(status="A after removal")
    for c in (a1, b1):
        c.im_sync()
    a1.im_expect_none(presence_pred(None, bare_sender=ub.jid), QUIET, "presence after removal")
    b1.im_expect_none(presence_pred(None, bare_sender=ua.jid), QUIET, "presence after removal")
