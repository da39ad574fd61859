"""Shared helpers of the instant-messaging tests (test_im_*.py): RFC 6121 rosters,
subscriptions and presence driven through the raw client's buffered IM helpers.

This module holds no tests itself; the test_im_*.py files import it.
"""

import time
import uuid
from contextlib import contextmanager

from conftest import READY_TIMEOUT, PrivateStack, unique_name, wait_port
from xmpp_client import (NS_CLIENT, NS_STANZAS, PRESENCE_TAG, dump, q,
                         stanza_error_condition)

DOMAIN = "localhost"
NS_ROSTER = "jabber:iq:roster"
NS_DELAY = "urn:xmpp:delay"
SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
WAIT = 5.0        # bound of every positive wait
QUIET = 0.6       # how long "nothing arrives" is watched


def bare(jid):
    return jid.split("/", 1)[0]


def online(login, user, resource=None, priority=0, roster=True, available=True, show=None,
           status=None, port=None):
    """A logged-in client that (by default) requested the roster (an *interested*
    resource, RFC 6121 2.2) and then sent initial presence (an *available* resource).
    Everything the server sends is kept in the client's pending list."""
    c = login(user, resource=resource, priority=False, port=port)
    if roster:
        res = c.roster_get()
        assert res.get("type") == "result", "roster get failed: %s" % dump(res)
    if available:
        c.im_presence(priority=priority, show=show, status=status)
        c.im_sync()
    return c


def is_presence(el, type_=None, sender=None, bare_sender=None):
    if el.tag != PRESENCE_TAG or el.get("type") != type_:
        return False
    frm = el.get("from") or ""
    if sender is not None and frm != sender:
        return False
    return bare_sender is None or bare(frm) == bare_sender


def presence_pred(type_=None, sender=None, bare_sender=None):
    return lambda e: is_presence(e, type_, sender, bare_sender)


def any_presence_from(bare_jid):
    """Any presence stanza (any type) whose sender is bare_jid or one of its resources."""
    return lambda e: e.tag == PRESENCE_TAG and bare(e.get("from") or "") == bare_jid


def error_from(el):
    """(error type, condition) of an error stanza."""
    return stanza_error_condition(el)


def is_error_reply(el, id_):
    return el.get("type") == "error" and el.get("id") == id_


def wait_roster_state(c, contact, subscription, ask=None, present=True, timeout=WAIT):
    """Polls roster gets until the item for `contact` has the given subscription and ask
    (or is absent when present=False); returns the item. Roster pushes stay pending."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        items = c.roster()
        last = items.get(contact)
        if not present and last is None:
            return None
        if present and last is not None and last["subscription"] == subscription \
                and last["ask"] == ask:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("roster of %s: item %s is %r, expected %s"
                                 % (c.jid, contact, last,
                                    "absent" if not present else
                                    "subscription=%s ask=%s" % (subscription, ask)))
        time.sleep(0.1)


def subscribe_and_approve(requester, contact):
    """requester (client) subscribes to contact's presence; contact (client, available)
    approves. Both must be available and interested. Afterwards the requester has 'to' (or
    'both') and the contact 'from' (or 'both')."""
    r_bare, c_bare = bare(requester.jid), bare(contact.jid)
    requester.im_presence(to=c_bare, type_="subscribe")
    contact.im_wait_presence(type_="subscribe", sender=r_bare, timeout=WAIT)
    contact.im_presence(to=r_bare, type_="subscribed")
    requester.wait_roster_push(c_bare, lambda it: it["subscription"] in ("to", "both")
                               and it["ask"] is None, timeout=WAIT)
    contact.wait_roster_push(r_bare, lambda it: it["subscription"] in ("from", "both"),
                             timeout=WAIT)


def befriend(a, b):
    """Mutual subscription ('both') between the users of clients a and b."""
    subscribe_and_approve(a, b)
    subscribe_and_approve(b, a)
    wait_roster_state(a, bare(b.jid), "both")
    wait_roster_state(b, bare(a.jid), "both")
    for c in (a, b):
        c.im_sync()


def drop_pending(*clients, settle=0.3):
    """Reads for `settle` seconds and forgets everything pending on each client."""
    for c in clients:
        c.im_collect(settle)
        c.im_take(lambda e: True)


def error_condition_of(el):
    """The stanza error condition names of an error stanza (all children in the stanzas
    namespace except <text/>), and the error's type."""
    err = el.find(q(NS_CLIENT, "error"))
    assert err is not None, "error stanza without <error/>: %s" % dump(el)
    conds = [c.tag.split("}", 1)[1] for c in err if c.tag.startswith("{%s}" % NS_STANZAS)]
    return err.get("type"), [c for c in conds if c != "text"]


def assert_error(el, conditions, etype=None):
    """el is an error stanza whose single defined condition is one of `conditions`
    (a string or a collection), and whose error type is `etype` when given."""
    wanted = {conditions} if isinstance(conditions, str) else set(conditions)
    assert el.get("type") == "error", "expected an error, got %s" % dump(el)
    t, conds = error_condition_of(el)
    assert len(conds) == 1 and conds[0] in wanted, \
        "error condition %s, expected one of %s: %s" % (conds, sorted(wanted), dump(el))
    if etype is not None:
        assert t == etype, "error type %r, expected %r: %s" % (t, etype, dump(el))


def nonexistent_jid(prefix="nobody"):
    return "%s%s@%s" % (prefix, uuid.uuid4().hex[:12], DOMAIN)


@contextmanager
def configured_stack(stack, **overrides):
    """A private Redis + session-router + c2s-frontend whose config keys `overrides` are
    set through XMPP_* for both processes (e.g. max_roster_items=3). Yields the
    PrivateStack (frontend port: .frontend.port; users: .new_user())."""
    if getattr(stack, "remote", False):
        import pytest
        pytest.skip("needs its own router with config keys %s; the target is a running stack"
                    % sorted(overrides))
    ps = PrivateStack(stack, unique_name("imcfg"))
    ps.env.update({k: str(v) for k, v in overrides.items()})
    try:
        ps.start_redis()
        ps.start_router()
        ps.start_frontend()
        ps.probe = ps.new_user("probe")
        wait_port(ps.frontend.port, READY_TIMEOUT, ps.frontend.proc, ps.frontend.log)
        ps.wait_login(ps.probe)
    except BaseException:
        print("\n".join(ps.stop()))
        raise
    try:
        yield ps
    finally:
        problems = ps.stop()
    assert not problems, "\n".join(problems)

