"""Offline messages: XEP-0160 (storage, delivery on the next non-negative available
presence, the per-user cap) with XEP-0203 delay stamps."""

import re
import time
from datetime import datetime, timezone

from test_im_helpers import (QUIET, WAIT, assert_error, configured_stack, online)
from xmpp_client import MESSAGE_TAG, dump, new_id

NS = "{jabber:client}"
NS_DELAY = "urn:xmpp:delay"
STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]00:00)$")


def parse_stamp(stamp):
    """XEP-0082 DateTime in UTC -> POSIX seconds."""
    m = STAMP.match(stamp or "")
    assert m, "delay stamp %r is not an XEP-0082 UTC DateTime" % stamp
    frac = float(m.group(7)) if m.group(7) else 0.0
    dt = datetime(*(int(m.group(i)) for i in range(1, 7)), tzinfo=timezone.utc)
    return dt.timestamp() + frac


def is_body(body):
    return lambda e: e.tag == MESSAGE_TAG and e.findtext(NS + "body") == body


def bodies_received(c, prefix, duration):
    """Reads for `duration` s; returns the bodies (in arrival order) of pending non-error
    messages whose body starts with prefix, removing them from the pending list."""
    c.im_collect(duration)
    got = c.im_take(lambda e: e.tag == MESSAGE_TAG and e.get("type") != "error"
                    and (e.findtext(NS + "body") or "").startswith(prefix))
    return got


def send(c, to, body, type_="chat"):
    mid = new_id("off")
    c.send("<message to='%s' type='%s' id='%s'><body>%s</body>"
           "<x xmlns='urn:example:extra'>kept</x></message>" % (to, type_, mid, body))
    return mid


def test_offline_messages_are_delivered_in_order_with_delay(login, new_user):
    ua, us, ut = new_user("a"), new_user("s"), new_user("t")
    s = online(login, us, "s", roster=False)
    t = online(login, ut, "t", roster=False)
    before = time.time()
    sent = []
    for i in range(6):
        sender = s if i % 2 == 0 else t
        type_ = "chat" if i < 4 else "normal"
        sent.append((sender, send(sender, ua.jid, "offline %d" % i, type_), "offline %d" % i, type_))
        # Two senders' streams are not ordered with respect to each other: let the
        # router take each message before the next is sent, so the order is defined.
        sender.im_sync()
    for c in (s, t):
        c.im_sync()
        c.im_expect_none(lambda e: e.get("type") == "error", 0.2, "error for a stored message")
    after = time.time()

    a = login(ua, resource="phone", priority=False)
    # Not before the account is available (XEP-0160: on the next available presence).
    a.im_expect_none(lambda e: e.tag == MESSAGE_TAG, QUIET, "offline message before presence")
    a.im_presence(priority=0)
    got = [a.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("type") != "error", WAIT,
                     "offline message %d" % i) for i in range(len(sent))]
    assert [m.findtext(NS + "body") for m in got] == [b for _, _, b, _ in sent], \
        "offline messages out of order: %s" % [dump(m) for m in got]
    for m, (sender, mid, body, type_) in zip(got, sent):
        assert m.get("from") == sender.jid and m.get("id") == mid, dump(m)
        assert (m.get("type") or "normal") == type_, dump(m)
        assert m.findtext("{urn:example:extra}x") == "kept", "extension lost: %s" % dump(m)
        delays = m.findall("{%s}delay" % NS_DELAY)
        assert len(delays) == 1, "exactly one XEP-0203 <delay/>: %s" % dump(m)
        assert delays[0].get("from") == "localhost", dump(m)
        stamp = parse_stamp(delays[0].get("stamp"))
        assert before - 2 <= stamp <= after + 2, \
            "stamp %s not within the sending time (%.0f..%.0f)" % (delays[0].get("stamp"), before, after)


def test_offline_messages_are_not_delivered_twice(login, new_user):
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    for i in range(3):
        send(s, ua.jid, "once %d" % i)
    s.im_sync()
    a1 = online(login, ua, "first", roster=False)
    assert [m.findtext(NS + "body") for m in
            [a1.im_wait(is_body("once %d" % i), WAIT) for i in range(3)]] == \
        ["once 0", "once 1", "once 2"]
    # A second resource becoming available meanwhile gets none of them ...
    a2 = online(login, ua, "second", roster=False)
    assert not bodies_received(a2, "once ", QUIET), "offline messages delivered twice"
    # ... nor does a later session.
    a1.end_stream()
    a2.end_stream()
    a3 = online(login, ua, "third", roster=False)
    assert not bodies_received(a3, "once ", QUIET), "offline messages kept after delivery"


def test_offline_messages_wait_for_non_negative_presence(login, new_user):
    # XEP-0160: delivered "when the recipient next sends non-negative available presence".
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    send(s, ua.jid, "for later")
    s.im_sync()
    a = online(login, ua, "neg", priority=-1, roster=False)
    assert not bodies_received(a, "for later", QUIET), \
        "offline message delivered to a negative-priority resource"
    a.im_presence(priority=1)
    m = a.im_wait(is_body("for later"), WAIT)
    assert m.find("{%s}delay" % NS_DELAY) is not None, dump(m)


def test_offline_delivery_is_per_account(login, new_user):
    ua, ub, us = new_user("a"), new_user("b"), new_user("s")
    s = online(login, us, "s", roster=False)
    send(s, ua.jid, "for A only")
    send(s, ub.jid, "for B only")
    s.im_sync()
    b = online(login, ub, "b", roster=False)
    b.im_wait(is_body("for B only"), WAIT)
    assert not bodies_received(b, "for A", QUIET)
    a = online(login, ua, "a", roster=False)
    a.im_wait(is_body("for A only"), WAIT)
    assert not bodies_received(a, "for B", 0.2)


def test_messages_to_online_user_carry_no_delay(login, new_user):
    ua, us = new_user("a"), new_user("s")
    a = online(login, ua, "a", roster=False)
    s = online(login, us, "s", roster=False)
    send(s, ua.jid, "live")
    m = a.im_wait(is_body("live"), WAIT)
    assert m.find("{%s}delay" % NS_DELAY) is None, "live message with a delay stamp: %s" % dump(m)


def cap_test(login, s_user, a_user, cap, port=None):
    s = online(login, s_user, "s", roster=False, port=port)
    for i in range(cap):
        send(s, a_user.jid, "capped %d" % i)
    s.im_sync()
    s.im_expect_none(lambda e: e.get("type") == "error", 0.3, "error below the cap")
    over = send(s, a_user.jid, "capped over")
    err = s.im_wait(lambda e: e.get("id") == over and e.get("type") == "error", WAIT,
                    "the error for the message over the cap")
    # XEP-0160: a full queue gives service-unavailable (resource-constraint accepted).
    assert_error(err, {"service-unavailable", "resource-constraint"})
    assert err.get("from") == a_user.jid, dump(err)
    a = online(login, a_user, "a", roster=False, port=port)
    got = [a.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("type") != "error", WAIT)
           for _ in range(cap)]
    assert [m.findtext(NS + "body") for m in got] == ["capped %d" % i for i in range(cap)]
    assert not bodies_received(a, "capped over", QUIET), "the refused message was stored"


def test_offline_cap_default_is_100(login, new_user):
    cap_test(login, new_user("s"), new_user("a"), 100)


def test_offline_cap_is_configurable(stack, login):
    with configured_stack(stack, max_offline_messages=3) as ps:
        cap_test(login, ps.new_user("s"), ps.new_user("a"), 3, port=ps.frontend.port)


def test_queue_frees_after_delivery(stack, login):
    with configured_stack(stack, max_offline_messages=2) as ps:
        ua, us = ps.new_user("a"), ps.new_user("s")
        s = online(login, us, "s", roster=False, port=ps.frontend.port)
        for i in range(2):
            send(s, ua.jid, "round1 %d" % i)
        a = online(login, ua, "a", roster=False, port=ps.frontend.port)
        for i in range(2):
            a.im_wait(is_body("round1 %d" % i), WAIT)
        a.end_stream()
        for i in range(2):
            send(s, ua.jid, "round2 %d" % i)
        s.im_sync()
        s.im_expect_none(lambda e: e.get("type") == "error", QUIET,
                         "error although the queue was emptied by delivery")
        a2 = online(login, ua, "a2", roster=False, port=ps.frontend.port)
        for i in range(2):
            a2.im_wait(is_body("round2 %d" % i), WAIT)


def test_offline_cap_holds_for_a_burst(login, new_user):
    """150 messages written at once to an offline user with the default cap of 100: the
    router has them all in flight together, and still stores exactly the first 100 (the
    check and the push are one step in Redis); the other 50 come back as errors."""
    ua, us = new_user("a"), new_user("s")
    s = online(login, us, "s", roster=False)
    cap, extra = 100, 50
    ids = ["burst%d" % i for i in range(cap + extra)]
    s.send("".join("<message to='%s' type='chat' id='%s'><body>burst %d</body></message>"
                   % (ua.jid, mid, i) for i, mid in enumerate(ids)))
    errors = [s.im_wait(lambda e: e.get("type") == "error", WAIT, "an error over the cap")
              for _ in range(extra)]
    for err in errors:
        assert_error(err, {"service-unavailable"})
    assert sorted(e.get("id") for e in errors) == sorted(ids[cap:]), \
        "the refused messages are not the last %d" % extra
    s.im_sync()
    s.im_expect_none(lambda e: e.get("type") == "error", QUIET, "more errors than messages over the cap")
    a = online(login, ua, "a", roster=False)
    got = [a.im_wait(lambda e: e.tag == MESSAGE_TAG and e.get("type") != "error", WAIT,
                     "stored message %d" % i) for i in range(cap)]
    assert [m.findtext(NS + "body") for m in got] == ["burst %d" % i for i in range(cap)]
    assert not bodies_received(a, "burst", QUIET), "more than %d messages were stored" % cap
