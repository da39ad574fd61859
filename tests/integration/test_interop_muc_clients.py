"""Group chat with real clients on different frontends, as people would use it:

Profanity (Debian's console client, driven in tmux) joins a room on the main frontend and
talks with a slixmpp occupant (python3-slixmpp's xep_0045) logged in on another frontend:
each sees the other join, each reads what the other writes; a fresh Profanity joining
afterwards sees the conversation from the room's history. Against a running stack
(compose), HAProxy spreads the two logins over its frontends. (go-sendxmpp -c and a
Profanity creating a room: test_interop_muc.py, test_interop_profanity.py.)

Skipped (saying so) only when Profanity is not installed."""

import asyncio
import re
import threading
import uuid

import pytest

import profanity_harness as ph

slixmpp = pytest.importorskip("slixmpp")
from slixmpp.plugins.xep_0004 import Form  # noqa: E402
from slix_client import RecordingClient  # noqa: E402

STEP = 20.0
NS_MUC = "http://jabber.org/protocol/muc"


@pytest.fixture
def profanity(stack, tmp_path):
    why = ph.available()
    if why:
        pytest.skip("Profanity: " + why)
    yield from ph.starter(stack, tmp_path)


def token():
    return uuid.uuid4().hex[:8]


def muc_domain(stack):
    return "conference." + stack.domain


class Occupant(RecordingClient):
    """A slixmpp client that joins one room (creating it as an instant room when it is
    new) and records the room's groupchat messages and the nicks present."""

    def __init__(self, user, cafile, room, nick):
        super().__init__(user.jid + "/slix", user.password, cafile,
                         plugins=("xep_0030", "xep_0045"))
        self.room, self.nick = room, nick
        self.messages = []            # (nick, body, delayed)
        self.present = set()
        self.add_event_handler("groupchat_message", self._on_message)
        self.add_event_handler("muc::%s::got_online" % room, self._on_online)
        self.add_event_handler("muc::%s::got_offline" % room, self._on_offline)

    async def on_session(self):
        self.send_presence()
        await self.get_roster(timeout=STEP)
        muc = self["xep_0045"]
        pres, _subject, _occupants, _history = await muc.join_muc_wait(
            self.room, self.nick, maxstanzas=0, timeout=STEP)
        codes = {s.get("code") for s in pres.xml.iter("{%s#user}status" % NS_MUC)}
        if "201" in codes:
            # A new room stays locked until its owner accepts the default
            # configuration (XEP-0045 10.1.2: an empty submitted form).
            form = Form()
            form["type"] = "submit"
            await muc.set_room_config(self.room, form, timeout=STEP)

    def _on_message(self, msg):
        if msg["from"].bare != self.room or not msg["body"]:
            return
        delayed = msg.xml.find("{urn:xmpp:delay}delay") is not None
        self.messages.append((msg["from"].resource, msg["body"], delayed))
        self.changed.set()

    def _on_online(self, pres):
        self.present.add(pres["from"].resource)
        self.changed.set()

    def _on_offline(self, pres):
        self.present.discard(pres["from"].resource)
        self.changed.set()

    async def wait(self, pred, what):
        async def loop():
            while not pred():
                self.changed.clear()
                await self.changed.wait()
        try:
            await asyncio.wait_for(loop(), STEP)
        except asyncio.TimeoutError:
            raise AssertionError("%s: no %s within %.0fs (messages %r, present %r)"
                                 % (self.nick, what, STEP, self.messages, self.present))

    async def say(self, text):
        """Sends a groupchat line (on the client's own loop: run_in)."""
        self.send_message(mto=self.room, mbody=text, mtype="groupchat")


def run_in(loop, coro, timeout=STEP * 2):
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


def profanity_room_line(nick, text):
    """A room window's line: 'HH:MM:SS - nick: text' (Profanity 0.13)."""
    return re.compile(r"\d\d:\d\d:\d\d - %s: %s" % (re.escape(nick), re.escape(text)))


def start_occupant(stack, user, room, nick, port):
    """A slixmpp occupant connected on `port`, living on an event loop in a thread of its
    own (Profanity is driven from the test's thread meanwhile); returns (occupant, loop)."""
    loop = asyncio.new_event_loop()

    def serve():
        loop.run_forever()
        loop.close()
    threading.Thread(target=serve, daemon=True).start()

    async def make():
        occ = Occupant(user, stack.cafile, room, nick)   # binds the running loop
        occ.connect((getattr(stack, "host", "127.0.0.1"), port))
        await asyncio.wait_for(occ.started, STEP)
        return occ
    try:
        return run_in(loop, make()), loop
    except Exception:
        loop.call_soon_threadsafe(loop.stop)
        raise


def stop_occupant(occ, loop):
    """Disconnects the occupant, ends the tasks slixmpp leaves behind, stops its loop."""
    async def bye():
        occ.disconnect()
        await asyncio.sleep(0.2)
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
    try:
        run_in(loop, bye(), timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)


def test_profanity_and_slixmpp_talk_in_a_room(stack, profanity, new_user, extra_frontend):
    """The issue's "done when" on the test stack: a slixmpp user on one frontend creates
    a room, a Profanity user on the other joins it; they see each other and read each
    other's messages; a fresh Profanity that joins later sees both lines in the history."""
    # Against a running stack (compose), HAProxy spreads the two logins over its frontends.
    port2 = stack.port if getattr(stack, "remote", False) else extra_frontend().port
    ua, ub = new_user("mpa"), new_user("mpb")
    room = "talk-%s@%s" % (token(), muc_domain(stack))
    bob, loop = start_occupant(stack, ub, room, "bob", port2)
    try:
        pa = profanity(ua, "term")
        pa.send("/join %s nick alice" % room)
        run_in(loop, bob.wait(lambda: "alice" in bob.present, "alice's presence"))
        t = token()
        hello, reply = "hello from bob %s" % t, "reply from alice %s" % t
        run_in(loop, bob.say(hello))
        pa.wait_for(profanity_room_line("bob", hello), what="bob's message in the room")
        pa.send(reply)
        run_in(loop, bob.wait(lambda: ("alice", reply, False) in bob.messages,
                              "alice's message"))
        # Profanity lists the occupants it saw join: bob among them.
        pa.send("/occupants show")
        pa.wait_for(re.compile(r"\bbob\b"), what="bob among the occupants")

        pa2 = profanity(ua, "second")
        pa2.send("/join %s nick alice2" % room)
        m_hello = pa2.wait_for(hello, what="bob's line from the room's history")
        pa2.wait_for(reply, what="alice's line from the room's history")
        screen = pa2.screen()
        assert m_hello and screen.index(hello) < screen.index(reply), \
            "history out of order:\n%s" % screen
        run_in(loop, bob.wait(lambda: "alice2" in bob.present, "the second Profanity's presence"))
    finally:
        stop_occupant(bob, loop)
