"""Delivery rules for local users: RFC 6121 section 8.5 (8.5.1 no such user,
8.5.2 bare JID with and without resources, 8.5.3 full JID matching or not), for messages
of every type, presence and iq; and that a nonexistent account is not told apart from
an existing one where the RFC gives both the same answer."""

import pytest

from test_im_helpers import (QUIET, WAIT, assert_error, bare, error_condition_of, nonexistent_jid,
                             online)
from xmpp_client import IQ_TAG, MESSAGE_TAG, PRESENCE_TAG, dump, new_id

NS = "{jabber:client}"
TYPES = ["chat", "normal", "headline", "groupchat", "error"]


def send_message(c, to, type_, body, id_=None, omit_type=False):
    """Sends a message of the given type (an error message carries an <error/>)."""
    mid = id_ or new_id("m")
    type_attr = "" if omit_type else " type='%s'" % type_
    extra = ""
    if type_ == "error":
        extra = ("<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                 "</error>")
    c.send("<message to='%s' id='%s'%s><body>%s</body>%s</message>" % (to, mid, type_attr, body, extra))
    return mid


def body_pred(body):
    return lambda e: e.tag == MESSAGE_TAG and e.findtext(NS + "body") == body


def bounce_pred(mid):
    return lambda e: e.get("id") == mid and e.get("type") == "error"


def expect_delivered(c, body, sender, type_):
    m = c.im_wait(body_pred(body), WAIT, "message %r" % body)
    assert m.get("from") == sender, dump(m)
    assert (m.get("type") or "normal") == type_, dump(m)
    return m


def expect_not_delivered(clients, body, duration=QUIET):
    for c in clients:
        c.im_expect_none(body_pred(body), duration, "message %r delivered" % body)


def expect_no_bounce(sender, mid, duration=QUIET):
    sender.im_expect_none(bounce_pred(mid), duration, "error reply to %s" % mid)


def expect_ignored_or_unavailable(sender, mid, duration=QUIET):
    """RFC 6121 "MUST either (a) silently ignore or (b) return service-unavailable"."""
    sender.im_collect(duration)
    errs = sender.im_take(lambda e: e.get("id") == mid)
    assert len(errs) <= 1, [dump(e) for e in errs]
    for e in errs:
        assert_error(e, "service-unavailable")


def login_later(login, user, resource="later"):
    """Logs the user in and makes it available; returns the client (offline messages,
    if any, are pending on it)."""
    return online(login, user, resource, roster=False)


# ------------------------------------------- 8.5.2.1 bare JID, available resources
@pytest.mark.parametrize("type_", ["chat", "normal"])
def test_chat_and_normal_to_bare_jid_reach_most_available_resource(login, new_user, type_):
    ua, us = new_user("a"), new_user("s")
    hi = online(login, ua, "hi", priority=5, roster=False)
    online(login, ua, "lo", priority=1, roster=False)
    neg = online(login, ua, "neg", priority=-1, roster=False)
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid, type_, "to bare " + type_)
    expect_delivered(hi, "to bare " + type_, s.jid, type_)
    expect_not_delivered([neg], "to bare " + type_)
    expect_no_bounce(s, mid, 0.2)


def test_message_without_type_is_normal(login, new_user):
    ua, us = new_user("a"), new_user("s")
    a = online(login, ua, "a", roster=False)
    s = online(login, us, "s", roster=False)
    send_message(s, ua.jid, "normal", "untyped", omit_type=True)
    m = a.im_wait(body_pred("untyped"), WAIT)
    assert m.get("type") in (None, "normal"), dump(m)


def test_headline_to_bare_jid_reaches_all_non_negative(login, new_user):
    ua, us = new_user("a"), new_user("s")
    r5 = online(login, ua, "r5", priority=5, roster=False)
    r0 = online(login, ua, "r0", priority=0, roster=False)
    neg = online(login, ua, "neg", priority=-3, roster=False)
    s = online(login, us, "s", roster=False)
    send_message(s, ua.jid, "headline", "news for all")
    for c in (r5, r0):
        expect_delivered(c, "news for all", s.jid, "headline")
    expect_not_delivered([neg], "news for all")


def test_groupchat_to_bare_jid_is_service_unavailable(login, new_user):
    # 8.5.2.1.1: groupchat to a bare JID is never delivered; the sender gets an error.
    ua, us = new_user("a"), new_user("s")
    a1 = online(login, ua, "a1", roster=False)
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid, "groupchat", "gc to bare")
    err = s.im_wait(bounce_pred(mid), WAIT, "groupchat bounce")
    assert_error(err, "service-unavailable")
    assert err.get("from") == ua.jid, dump(err)
    expect_not_delivered([a1], "gc to bare")


def test_error_message_to_bare_jid_is_ignored(login, new_user):
    ua, us = new_user("a"), new_user("s")
    a1 = online(login, ua, "a1", roster=False)
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid, "error", "error to bare")
    s.im_sync()
    expect_not_delivered([a1], "error to bare")
    expect_no_bounce(s, mid, 0.2)


def test_only_negative_resources_message_is_not_delivered_to_them(login, new_user):
    # 8.5.2.1.1: with only negative-priority resources: stored offline or
    # service-unavailable; never delivered to those resources.
    ua, us = new_user("a"), new_user("s")
    neg = online(login, ua, "neg", priority=-1, roster=False)
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid, "chat", "only negative")
    expect_not_delivered([neg], "only negative")
    expect_ignored_or_unavailable(s, mid, 0.1)


# ---------------------------------------------------- 8.5.3.1 full JID, resource matches
@pytest.mark.parametrize("type_", TYPES)
def test_message_to_online_full_jid_is_delivered_to_that_resource(login, new_user, type_):
    ua, us = new_user("a"), new_user("s")
    target = online(login, ua, "target", priority=-1, roster=False)   # even if negative
    other = online(login, ua, "other", priority=5, roster=False)
    s = online(login, us, "s", roster=False)
    body = "full %s" % type_
    send_message(s, target.jid, type_, body)
    m = expect_delivered(target, body, s.jid, type_)
    assert m.get("to") == target.jid, dump(m)
    expect_not_delivered([other], body, 0.3)


# ------------------------------------------------- 8.5.3.2 full JID, no such resource
def test_chat_to_unknown_resource_goes_to_available_resource(login, new_user):
    # 8.5.3.2.1: a chat to a resource that is not online is treated as if addressed to
    # the bare JID when a non-negative resource exists.
    ua, us = new_user("a"), new_user("s")
    a1 = online(login, ua, "a1", roster=False)
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid + "/gone", "chat", "chat to gone")
    expect_delivered(a1, "chat to gone", s.jid, "chat")
    expect_no_bounce(s, mid, 0.2)


@pytest.mark.parametrize("type_", ["normal", "headline", "groupchat"])
def test_other_types_to_unknown_resource_are_not_redirected(login, new_user, type_):
    # 8.5.3.2.1: normal, groupchat, headline to a full JID with no matching resource:
    # silently ignored or <service-unavailable/>; not handed to another resource.
    ua, us = new_user("a"), new_user("s")
    a1 = online(login, ua, "a1", roster=False)
    s = online(login, us, "s", roster=False)
    body = "%s to gone" % type_
    mid = send_message(s, ua.jid + "/gone", type_, body)
    expect_ignored_or_unavailable(s, mid)
    expect_not_delivered([a1], body, 0.1)


def test_error_to_unknown_resource_is_ignored(login, new_user):
    ua, us = new_user("a"), new_user("s")
    a1 = online(login, ua, "a1", roster=False)
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid + "/gone", "error", "error to gone")
    expect_no_bounce(s, mid)
    expect_not_delivered([a1], "error to gone", 0.1)


def test_iq_to_unknown_resource_is_service_unavailable(login, new_user):
    # 8.5.3.2.3
    ua, us = new_user("a"), new_user("s")
    a1 = online(login, ua, "a1", roster=False)
    s = online(login, us, "s", roster=False)
    res = s.im_iq("get", "<query xmlns='jabber:iq:version'/>", to=ua.jid + "/gone")
    assert_error(res, "service-unavailable")
    assert res.get("from") == ua.jid + "/gone", dump(res)
    a1.im_expect_none(lambda e: e.tag == IQ_TAG and e.get("type") == "get", 0.3, "iq delivered")


def test_presence_to_unknown_resource_is_ignored(login, new_user):
    # 8.5.3.2.2: available/unavailable presence to a missing resource is dropped.
    ua, us = new_user("a"), new_user("s")
    a1 = online(login, ua, "a1", roster=False)
    s = online(login, us, "s", roster=False)
    s.im_presence(to=ua.jid + "/gone", status="hello gone")
    s.im_presence(to=ua.jid + "/gone", type_="unavailable")
    s.im_sync()
    a1.im_expect_none(lambda e: e.tag == PRESENCE_TAG and (e.get("from") or "") == s.jid, QUIET,
                      "presence for a missing resource delivered to another one")
    s.im_expect_none(lambda e: e.tag == PRESENCE_TAG and e.get("type") == "error", 0.1, "error")


# ---------------------------------------------- 8.5.2.2 bare JID, no resources
@pytest.mark.parametrize("type_", ["chat", "normal"])
def test_chat_and_normal_to_offline_account_are_stored(login, new_user, type_):
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    body = "stored %s" % type_
    mid = send_message(s, ua.jid, type_, body)
    expect_no_bounce(s, mid)
    a = login_later(login, ua)
    expect_delivered(a, body, s.jid, type_)


def test_groupchat_to_offline_account_is_service_unavailable(login, new_user):
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid, "groupchat", "gc offline")
    err = s.im_wait(bounce_pred(mid), WAIT, "groupchat bounce")
    assert_error(err, "service-unavailable")
    a = login_later(login, ua)
    expect_not_delivered([a], "gc offline")


@pytest.mark.parametrize("type_", ["headline", "error"])
def test_headline_and_error_to_offline_account_are_dropped(login, new_user, type_):
    # 8.5.2.2.1: silently ignored -- no error, and not stored for later.
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    body = "%s offline" % type_
    mid = send_message(s, ua.jid, type_, body)
    expect_no_bounce(s, mid)
    a = login_later(login, ua)
    expect_not_delivered([a], body)


def test_chat_to_full_jid_of_offline_account_is_stored(login, new_user):
    # 8.5.3.2.1: chat, no resource at all: offline storage (or service-unavailable; this
    # server stores).
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    mid = send_message(s, ua.jid + "/phone", "chat", "chat to offline full")
    expect_no_bounce(s, mid)
    a = login_later(login, ua)
    expect_delivered(a, "chat to offline full", s.jid, "chat")


@pytest.mark.parametrize("type_", ["normal", "headline", "groupchat", "error"])
def test_other_types_to_full_jid_of_offline_account_are_not_stored(login, new_user, type_):
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    body = "%s to offline full" % type_
    mid = send_message(s, ua.jid + "/phone", type_, body)
    if type_ == "error":
        expect_no_bounce(s, mid)
    else:
        expect_ignored_or_unavailable(s, mid)
    a = login_later(login, ua)
    expect_not_delivered([a], body)


def test_presence_to_offline_account_is_ignored(login, new_user):
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    s.im_presence(to=ua.jid, status="are you there")
    s.im_presence(to=ua.jid, type_="unavailable")
    s.im_sync()
    s.im_expect_none(lambda e: e.tag == PRESENCE_TAG and bare(e.get("from") or "") == ua.jid,
                     QUIET, "answer to presence for an offline account")
    a = login_later(login, ua)
    a.im_expect_none(lambda e: e.tag == PRESENCE_TAG and e.get("from") == s.jid, QUIET,
                     "directed presence stored for an offline account")


def test_iq_to_offline_account_is_answered_by_server(login, new_user):
    # 8.5.2.2.3: the server answers an iq to the bare JID on the account's behalf.
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    res = s.im_iq("get", "<query xmlns='urn:example:nothing'/>", to=ua.jid)
    assert_error(res, "service-unavailable")
    assert res.get("from") == ua.jid, dump(res)


# ---------------------------------------------------------------- 8.5.1 no such user
@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize("full", [False, True], ids=["bare", "full"])
def test_message_to_nonexistent_account(login, new_user, type_, full):
    # 8.5.1: silently ignore or <service-unavailable/> (an error message: ignored).
    us = new_user("s")
    s = online(login, us, "s", roster=False)
    to = nonexistent_jid() + ("/res" if full else "")
    mid = send_message(s, to, type_, "to nobody")
    if type_ == "error":
        expect_no_bounce(s, mid)
    else:
        expect_ignored_or_unavailable(s, mid)
    s.im_expect_none(lambda e: e.tag == MESSAGE_TAG and e.get("type") != "error", 0.1,
                     "a non-error answer")


@pytest.mark.parametrize("full", [False, True], ids=["bare", "full"])
def test_iq_to_nonexistent_account_is_service_unavailable(login, new_user, full):
    us = new_user("s")
    s = online(login, us, "s", roster=False)
    to = nonexistent_jid() + ("/res" if full else "")
    for payload in ("<ping xmlns='urn:xmpp:ping'/>", "<query xmlns='jabber:iq:version'/>",
                    "<vCard xmlns='vcard-temp'/>"):
        res = s.im_iq("get", payload, to=to)
        assert_error(res, "service-unavailable")
        assert res.get("from") == to, dump(res)


@pytest.mark.parametrize("ptype", [None, "unavailable", "subscribe", "subscribed",
                                   "unsubscribe", "unsubscribed", "probe"])
@pytest.mark.parametrize("full", [False, True], ids=["bare", "full"])
def test_presence_to_nonexistent_account_is_ignored(login, new_user, ptype, full):
    # 8.5.1: presence of every type is silently ignored; a probe may instead be answered
    # with 'unsubscribed'.
    us = new_user("s")
    s = online(login, us, "s")
    target = nonexistent_jid()
    s.im_presence(to=target + ("/res" if full else ""), type_=ptype, id="p-" + str(ptype))
    s.im_sync()
    s.im_collect(QUIET)
    answers = s.im_take(lambda e: e.tag == PRESENCE_TAG and bare(e.get("from") or "") == target)
    if ptype == "probe":
        assert all(e.get("type") == "unsubscribed" for e in answers), [dump(e) for e in answers]
    else:
        assert not answers, "answer to %s presence for a nonexistent account: %s" \
            % (ptype, [dump(e) for e in answers])


# --------------------------------------------------- existing vs nonexistent: no leak
def normalized_error(el, to):
    """What an iq error reveals, with the addressed JID abstracted away."""
    t, conds = error_condition_of(el)
    return (el.get("type"), el.get("from") == to, t, tuple(conds), el.get("to") is not None)


@pytest.mark.parametrize("full", [False, True], ids=["bare", "full"])
def test_iq_answer_does_not_reveal_whether_account_exists(login, new_user, full):
    # RFC 6121 8.5.1 / 8.5.2.2.3 / 8.5.3.2.3 give an unhandled iq the same
    # <service-unavailable/> whether or not the account exists: the answers must match.
    us, offline_user = new_user("s"), new_user("off")
    s = online(login, us, "s", roster=False)
    suffix = "/res" if full else ""
    existing, missing = offline_user.jid + suffix, nonexistent_jid() + suffix
    payloads = ["<query xmlns='urn:example:unknown'/>"]
    if full:
        # To a full JID nothing answers on the resource's behalf: even a ping is refused.
        payloads.append("<ping xmlns='urn:xmpp:ping'/>")
    for payload in payloads:
        r1 = s.im_iq("get", payload, to=existing)
        r2 = s.im_iq("get", payload, to=missing)
        assert_error(r1, "service-unavailable")
        assert normalized_error(r1, existing) == normalized_error(r2, missing), \
            "existing: %s / nonexistent: %s" % (dump(r1), dump(r2))


def test_presence_answer_does_not_reveal_whether_account_exists(login, new_user):
    # Available/unavailable presence to an existing account without resources and to
    # a nonexistent one are both silently ignored (8.5.2.2.2, 8.5.1).
    us, offline_user = new_user("s"), new_user("off")
    s = online(login, us, "s")
    missing = nonexistent_jid()
    for to in (offline_user.jid, missing, offline_user.jid + "/r", missing + "/r"):
        s.im_presence(to=to, status="hello")
        s.im_presence(to=to, type_="unavailable")
    s.im_sync()
    s.im_expect_none(lambda e: e.tag == PRESENCE_TAG and bare(e.get("from") or "")
                     in (offline_user.jid, missing), QUIET, "answer to directed presence")
