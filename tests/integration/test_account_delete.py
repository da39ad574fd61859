"""Account deletion (XEP-0077 3.2 in-band removal) and tombstones: contacts are told
(RFC 6121 3.2 / 3.3), every session ends, the data goes, the address stays reserved, and
presence to a deleted address is answered with <gone/>."""

import shlex
import subprocess
import time

import pytest

from conftest import READY_TIMEOUT, REDIS_PREFIX, PrivateStack, free_port, skip_remote, \
    unique_name, wait_port
from test_im_helpers import WAIT, assert_error, bare, befriend, drop_pending, online, \
    subscribe_and_approve, wait_roster_state
from xmpp_client import NS_STANZAS, NS_STREAMS_ERR, dump, q

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


def add_user(stack, jid, password, *flags):
    """Creates an account the way the stack does (xmppctl adduser, or XMPP_ADDUSER_CMD
    against a running stack); returns (exit status, stderr)."""
    if getattr(stack, "remote", False):
        r = subprocess.run(shlex.split(stack._adduser) + list(flags) + [jid, password],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    else:
        r = stack.ctl("adduser", *flags, jid, password)
    return r.returncode, r.stdout + r.stderr


def delete_in_band(stack, login, new_user, extra_frontend):
    """ua (two sessions on two frontends) deletes itself; ub ('both') and uc ('to' ua)
    are online. Checks what every client sees; returns ua."""
    remote = getattr(stack, "remote", False)
    # Against a running stack the balancer spreads consecutive connections over its
    # frontends; here a second frontend is started.
    port2 = None if remote else extra_frontend(frontend_name="fe-del").port
    ua, ub, uc = new_user("del"), new_user("friend"), new_user("fan")
    a1 = online(login, ua, "a1")
    a2 = online(login, ua, "a2", port=port2)
    b1 = online(login, ub, "b1", port=port2)
    c1 = online(login, uc, "c1")
    befriend(a1, b1)                  # both
    subscribe_and_approve(c1, a1)     # c 'to' a; a 'from' c
    # data of every kind the account may hold
    a1.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Deleted</FN></vCard>")
    a1.im_iq("set", "<query xmlns='jabber:iq:private'><n xmlns='x:y'>v</n></query>")
    a1.im_iq("set", "<block xmlns='urn:xmpp:blocking'><item jid='spam@localhost'/></block>")
    drop_pending(a1, a2, b1, c1)

    # XEP-0077 3.2: the result first, then the stream ends; the other session too.
    res = a1.im_iq("set", REMOVE)
    assert res.get("type") == "result", dump(res)
    for c in (a1, a2):
        err = c.expect_stream_error("not-authorized")
        assert "deleted" in (err.findtext(q(NS_STREAMS_ERR, "text")) or "").lower(), dump(err)

    # Each contact's server gets unsubscribe and unsubscribed from the deleted address;
    # the client sees those that change its subscription (RFC 6121 3.2.3 / 3.3.3: the
    # others are not delivered) and a push with subscription none.
    b1.im_wait_presence(type_="unsubscribe", sender=ua.jid, timeout=WAIT)
    for c in (b1, c1):
        c.im_wait_presence(type_="unsubscribed", sender=ua.jid, timeout=WAIT)
        item = wait_roster_state(c, ua.jid, "none")
        assert item["ask"] is None, item

    # The address cannot log in, and is not handed out again.
    probe = stack.client()
    probe.open_stream()
    probe.starttls()
    assert probe.auth_scram(ua.localpart, ua.password) == "not-authorized"
    probe.close()
    status, out = add_user(stack, ua.jid, "a-new-password")
    assert status != 0 and "tombstone" in out, out
    return ua


def test_inband_removal_tells_contacts_and_ends_every_session(stack, login, new_user,
                                                                extra_frontend):
    delete_in_band(stack, login, new_user, extra_frontend)


def test_deleted_account_leaves_only_its_tombstone(stack, login, new_user, extra_frontend):
    if getattr(stack, "remote", False):
        skip_remote("reads Redis")
    ua = delete_in_band(stack, login, new_user, extra_frontend)
    # Nothing of the user is left but the tombstone; the account list forgot it.
    deadline = time.monotonic() + WAIT
    while user_keys(stack, ua.jid) != [tombstone_key(ua.jid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert user_keys(stack, ua.jid) == [tombstone_key(ua.jid)]
    assert ua.jid not in stack.ctl("users").stdout.split()
    assert int(stack.redis.command("GET", tombstone_key(ua.jid))) >= int(time.time()) - 60
    listed = stack.ctl("tombstones")
    assert listed.returncode == 0
    assert any(line.split("\t")[0] == ua.jid for line in listed.stdout.splitlines()), listed.stdout

    # The operator may hand the address out again, knowingly.
    status, out = add_user(stack, ua.jid, "a-new-password", "--ignore-tombstone")
    assert status == 0, out
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


def test_xmppctl_deluser_goes_through_the_router(stack, login, new_user):
    """`xmppctl deluser` is the same procedure: the contact is told, the session ends with
    the administrator's reason, the address is kept."""
    ua, ub = new_user("ctl"), new_user("ctlfriend")
    a1 = online(login, ua, "a1")
    b1 = online(login, ub, "b1")
    befriend(a1, b1)
    drop_pending(a1, b1)
    r = stack.ctl("deluser", ua.jid)
    assert r.returncode == 0 and "deleted" in r.stdout, (r.stdout, r.stderr)
    err = a1.expect_stream_error("not-authorized")
    assert "deleted" in (err.findtext(q(NS_STREAMS_ERR, "text")) or "").lower(), dump(err)
    b1.im_wait_presence(type_="unsubscribed", sender=ua.jid, timeout=WAIT)
    wait_roster_state(b1, ua.jid, "none")
    r = stack.ctl("deluser", ua.jid)
    assert r.returncode == 0, "deleting again finds the tombstone and finishes: %s" % r.stderr
    r = stack.ctl("deluser", "ghost-%s@localhost" % int(time.time() * 1000))
    assert r.returncode == 1 and "no such account" in r.stderr, r.stderr


def test_a_deletion_cut_short_is_finished_by_asking_again(stack, new_user, login):
    """What a deletion that lost Redis after its first step leaves (tombstone written,
    data still there) keeps the account shut, and the next deluser finishes it."""
    if getattr(stack, "remote", False):
        skip_remote("writes Redis")
    u = new_user("cut")
    c = online(login, u, "r")
    c.im_iq("set", "<vCard xmlns='vcard-temp'><FN>Half</FN></vCard>")
    c.close()
    stack.redis.command("SET", tombstone_key(u.jid), str(int(time.time())))
    probe = stack.client()
    probe.open_stream()
    probe.starttls()
    assert probe.auth_scram(u.localpart, u.password) == "not-authorized"
    probe.close()
    assert len(user_keys(stack, u.jid)) > 1
    r = stack.ctl("deluser", u.jid)
    assert r.returncode == 0, r.stderr
    assert user_keys(stack, u.jid) == [tombstone_key(u.jid)]
    assert u.jid not in stack.ctl("users").stdout.split()


def test_deluser_with_the_router_or_redis_down_says_so_and_changes_nothing(stack):
    if getattr(stack, "remote", False):
        skip_remote("stops Redis and the router")
    ps = PrivateStack(stack, unique_name("delpriv"))
    admin = "tcp://127.0.0.1:%d" % free_port()
    ps.env.update(admin_bind=admin, admin_connect=admin, admin_timeout=2000)
    try:
        ps.start_redis()
        u = ps.new_user("downdel")
        # No router: a clear error, and the account is untouched.
        r = ps.ctl("deluser", u.jid)
        assert r.returncode == 1 and "cannot reach the session router" in r.stderr, r.stderr
        ps.start_router()
        ps.start_frontend()
        wait_port(ps.frontend.port, READY_TIMEOUT, ps.frontend.proc, ps.frontend.log)
        ps.wait_login(u)
        # Redis gone: the router says so; nothing was written (nothing could be).
        ps.stop_redis()
        r = ps.ctl("deluser", u.jid)
        assert r.returncode == 1 and "Redis" in r.stderr, r.stderr
    finally:
        problems = ps.stop()
    assert not [p for p in problems if "ERROR" in p.upper() and "redis" not in p.lower()], problems


def test_two_deletions_of_one_account_at_once(stack, login, new_user):
    """Two deletions in flight for one account (an operator retrying, an in-band removal
    racing deluser) share its roster load; both finish and the router carries on. Sent
    back to back on one admin connection, so that both are under way at once."""
    if getattr(stack, "remote", False):
        skip_remote("talks to the router's admin endpoint")
    zmq = pytest.importorskip("zmq")
    for online_too in (False, True):
        u, friend = new_user("twice"), new_user("twicefriend")
        a = online(login, u, "a")
        f = online(login, friend, "f")
        befriend(a, f)
        drop_pending(a, f)
        if not online_too:
            a.close()
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(stack.admin_endpoint)
        try:
            for _ in range(2):
                sock.send_multipart([b"", b"deluser", u.jid.encode()])
            answers = []
            for _ in range(2):
                assert sock.poll(10000), "no answer from the admin endpoint"
                answers.append(sock.recv_multipart()[1:])
        finally:
            sock.close()
            ctx.term()
        assert [a_[0] for a_ in answers] == [b"ok", b"ok"], answers
        wait_roster_state(f, u.jid, "none")
        if online_too:
            a.expect_stream_error("not-authorized")
        assert f.ping().get("type") == "result"
        assert stack.ctl("stats").returncode == 0      # the router is still there
