"""Interop with a real client library (Debian's python3-slixmpp) for the IM semantics:
two users add each other and approve, see each other come and go (also when a connection
is cut without a closing tag), chat with two resources each (bare-JID messages to the
highest priority, carbons to the others), and an offline user gets its messages with a
delay stamp when it logs in again -- the issue's "done when" scenario."""

import asyncio
import time

import pytest
import slix_helpers

slixmpp = pytest.importorskip("slixmpp")
from slix_client import RecordingClient, close_all  # noqa: E402

TIMEOUT = 90.0
STEP = 15.0      # bound of each single wait inside a scenario


class Client(RecordingClient):
    """A slixmpp client that records every interesting event for later waits and does
    not approve subscription requests on its own."""

    def __init__(self, jid, password, cafile, priority=0, carbons=False):
        super().__init__(jid, password, cafile, plugins=("xep_0280", "xep_0203"),
                         record=("presence_available", "presence_unavailable",
                                 "presence_subscribe", "presence_subscribed",
                                 "presence_unsubscribed", "message", "carbon_received",
                                 "carbon_sent", "roster_update"))
        self.priority = priority
        self.carbons = carbons
        self.roster.auto_authorize = None     # None: requests wait for us (False rejects)
        self.roster.auto_subscribe = False

    async def on_session(self):
        await self.get_roster(timeout=STEP)
        if self.carbons:
            await self["xep_0280"].enable(timeout=STEP)
        self.send_presence(ppriority=self.priority)

    async def until(self, cond, timeout=STEP, what="condition"):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError("%s: %s not reached within %.0fs" % (self.boundjid, what, timeout))
            await asyncio.sleep(0.05)

    def sub(self, contact):
        """(subscription, ask) of the contact in this client's roster view."""
        item = self.client_roster[contact]
        return item["subscription"], ("subscribe" if item["pending_out"] else None)


def connect(stack, user, resource, **kw):
    c = Client("%s/%s" % (user.jid, resource), user.password, stack.cafile, **kw)
    c.connect(("127.0.0.1", stack.port), force_starttls=True, disable_starttls=False)
    return c


def run(coro):
    return slix_helpers.run(coro, TIMEOUT)



def from_full(jid):
    return lambda st: st["from"].full == jid


def from_bare(jid):
    return lambda st: st["from"].bare == jid


def test_slixmpp_subscription_handshake_and_presence(stack, new_user):
    ua, ub = new_user("sxa"), new_user("sxb")

    async def scenario():
        a = connect(stack, ua, "laptop")
        b = connect(stack, ub, "phone")
        clients = [a, b]
        try:
            await asyncio.wait_for(asyncio.gather(a.started, b.started), STEP * 2)
            # A asks; B approves and asks back; A approves.
            a.send_presence_subscription(pto=ub.jid)
            await b.wait("presence_subscribe", from_bare(ua.jid), what="A's request")
            await a.until(lambda: a.sub(ub.jid) == ("none", "subscribe"), what="A pending out")
            b.send_presence(pto=ua.jid, ptype="subscribed")
            b.send_presence_subscription(pto=ua.jid)
            await a.wait("presence_subscribed", from_bare(ub.jid), what="B's approval")
            await a.wait("presence_subscribe", from_bare(ub.jid), what="B's request")
            a.send_presence(pto=ub.jid, ptype="subscribed")
            await b.wait("presence_subscribed", from_bare(ua.jid), what="A's approval")
            await a.until(lambda: a.sub(ub.jid) == ("both", None), what="A: both")
            await b.until(lambda: b.sub(ua.jid) == ("both", None), what="B: both")

            # They see each other.
            await a.wait("presence_available", from_full(b.boundjid.full), what="B online")
            await b.wait("presence_available", from_full(a.boundjid.full), what="A online")

            # A second resource of B comes and is cut off without a closing tag.
            b2 = connect(stack, ub, "tablet")
            clients.append(b2)
            await asyncio.wait_for(b2.started, STEP)
            await a.wait("presence_available", from_full(b2.boundjid.full), what="tablet online")
            # The newcomer is told A is online (probe on initial presence).
            await b2.wait("presence_available", from_full(a.boundjid.full), what="A to tablet")
            b2.abort()
            await a.wait("presence_unavailable", from_full(b2.boundjid.full), what="tablet cut off")

            # B's phone leaves properly.
            b.disconnect(wait=2.0)
            await a.wait("presence_unavailable", from_full("%s/phone" % ub.jid), what="phone left")

            # A fresh login of A still has B as a 'both' contact (stored roster).
            a2 = connect(stack, ua, "desk")
            clients.append(a2)
            await asyncio.wait_for(a2.started, STEP)
            assert a2.sub(ub.jid) == ("both", None), a2.client_roster[ub.jid]
        finally:
            await close_all(clients)

    run(scenario())


def test_slixmpp_chat_with_carbons_and_offline_delivery(stack, new_user):
    ua, ub = new_user("sxa"), new_user("sxb")

    async def scenario():
        a_hi = connect(stack, ua, "laptop", priority=5, carbons=True)
        a_lo = connect(stack, ua, "phone", priority=1, carbons=True)
        b_hi = connect(stack, ub, "desktop", priority=5, carbons=True)
        b_lo = connect(stack, ub, "mobile", priority=1, carbons=True)
        clients = [a_hi, a_lo, b_hi, b_lo]
        try:
            await asyncio.wait_for(asyncio.gather(*(c.started for c in clients)), STEP * 2)
            # Each resource's presence (with its priority) has reached the router once the
            # resource gets it back (RFC 6121 4.2.2); only then is "A's best" decided.
            for c in clients:
                await c.wait("presence_available", from_full(c.boundjid.full),
                             what="own presence back")
            b_hi.send_message(mto=ua.jid, mbody="hello A", mtype="chat")
            m = await a_hi.wait("message", lambda s: s["body"] == "hello A", what="to A's best")
            assert m["from"].full == b_hi.boundjid.full
            c = await a_lo.wait("carbon_received",
                                lambda s: s["carbon_received"]["body"] == "hello A", what="carbon")
            assert c["from"].full == ua.jid, "carbon not from the bare JID: %s" % c
            c = await b_lo.wait("carbon_sent",
                                lambda s: s["carbon_sent"]["body"] == "hello A", what="sent carbon")
            assert c["from"].full == ub.jid

            a_hi.send_message(mto=ub.jid, mbody="hello B", mtype="chat")
            await b_hi.wait("message", lambda s: s["body"] == "hello B", what="to B's best")
            await b_lo.wait("carbon_received", lambda s: s["carbon_received"]["body"] == "hello B")
            await a_lo.wait("carbon_sent", lambda s: s["carbon_sent"]["body"] == "hello B")

            # A goes offline entirely; B writes; A gets it on its next login.
            for c in (a_hi, a_lo):
                c.disconnect(wait=2.0)
            await asyncio.wait_for(asyncio.gather(a_hi.gone, a_lo.gone), 10)
            await asyncio.sleep(0.5)          # the router has seen both sessions end
            b_hi.send_message(mto=ua.jid, mbody="while you were away", mtype="chat")
            await asyncio.sleep(0.5)
            a3 = connect(stack, ua, "laptop", priority=5)
            clients.append(a3)
            await asyncio.wait_for(a3.started, STEP)
            m = await a3.wait("message", lambda s: s["body"] == "while you were away",
                              what="offline message")
            assert m["from"].full == b_hi.boundjid.full
            assert m["delay"]["stamp"] is not None, "no XEP-0203 delay: %s" % m
            assert m["delay"]["from"].full == "localhost", m
        finally:
            await close_all(clients)

    run(scenario())
