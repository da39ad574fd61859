"""Group chat with a real client library (Debian's python3-slixmpp and its xep_0045 and
xep_0249 plugins): two users on different frontends join one room (the first creates it
and accepts the configuration form as the server offers it), see each other's presence,
exchange groupchat messages and a private message; a direct invitation (XEP-0249) goes
from one client to the other and the invitee joins with it; go-sendxmpp (`-c`) says
something in a room."""

import asyncio
import uuid

import pytest
import slix_helpers

slixmpp = pytest.importorskip("slixmpp")
from slix_client import RecordingClient, close_all  # noqa: E402

TIMEOUT = 90.0
STEP = 15.0
MUC_DOMAIN = "conference.localhost"


class Client(RecordingClient):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile,
                         plugins=("xep_0030", "xep_0004", "xep_0045", "xep_0249"),
                         record=("groupchat_message", "groupchat_presence", "message",
                                 "groupchat_direct_invite"))


def connect(stack, user, port):
    c = Client("%s/slix" % user.jid, user.password, stack.cafile)
    c.connect(("127.0.0.1", port), force_starttls=True, disable_starttls=False)
    return c


async def create_room(c, room, nick):
    """Joins (creating the room) and accepts the configuration form as offered."""
    pres, _subject, _occupants, _history = await c["xep_0045"].join_muc_wait(room, nick, timeout=STEP)
    codes = {int(s) for s in pres["muc"]["status_codes"]}
    assert {110, 201} <= codes, str(pres)
    form = await c["xep_0045"].get_room_config(room, timeout=STEP)
    await c["xep_0045"].set_room_config(room, form, timeout=STEP)


def test_two_frontends_one_room(stack, new_user, extra_frontend):
    port2 = extra_frontend(frontend_name="fe-muc").port
    ua, ub = new_user("sma"), new_user("smb")
    room = "slix%s@%s" % (uuid.uuid4().hex[:8], MUC_DOMAIN)

    async def scenario():
        a, b = connect(stack, ua, stack.port), connect(stack, ub, port2)
        try:
            await asyncio.wait_for(asyncio.gather(a.started, b.started), STEP)
            await create_room(a, room, "alice")
            await b["xep_0045"].join_muc_wait(room, "bob", timeout=STEP)
            # Each sees the other (the plugin's roster of the room, and the presence).
            await a.wait("groupchat_presence", lambda p: p["from"].full == room + "/bob",
                         what="bob's presence")
            assert "alice" in b["xep_0045"].get_roster(room)
            assert set(a["xep_0045"].get_roster(room)) >= {"alice", "bob"}
            a.send_message(mto=room, mbody="hello from alice", mtype="groupchat")
            for cl in (a, b):
                m = await cl.wait("groupchat_message",
                                  lambda m: m["body"] == "hello from alice", what="groupchat")
                assert m["from"].full == room + "/alice"
            b.send_message(mto=room, mbody="hi alice", mtype="groupchat")
            await a.wait("groupchat_message", lambda m: m["body"] == "hi alice", what="reply")
            # A private message through the room (XEP-0045 7.5).
            b.send_message(mto=room + "/alice", mbody="just you", mtype="chat")
            pm = await a.wait("message", lambda m: m["body"] == "just you", what="pm")
            assert pm["from"].full == room + "/bob"
        finally:
            await close_all([a, b])

    slix_helpers.run(scenario(), TIMEOUT)


def test_direct_invitation(stack, new_user, extra_frontend):
    port2 = extra_frontend(frontend_name="fe-muc2").port
    ua, ub = new_user("sia"), new_user("sib")
    room = "inv%s@%s" % (uuid.uuid4().hex[:8], MUC_DOMAIN)

    async def scenario():
        a, b = connect(stack, ua, stack.port), connect(stack, ub, port2)
        try:
            await asyncio.wait_for(asyncio.gather(a.started, b.started), STEP)
            await create_room(a, room, "alice")
            a["xep_0249"].send_invitation(ub.jid, room, reason="come talk")
            inv = await b.wait("groupchat_direct_invite", what="direct invitation")
            assert inv["groupchat_invite"]["jid"] == room
            assert inv["from"].bare == ua.jid
            await b["xep_0045"].join_muc_wait(inv["groupchat_invite"]["jid"], "bob", timeout=STEP)
            await a.wait("groupchat_presence", lambda p: p["from"].full == room + "/bob",
                         what="invitee joined")
        finally:
            await close_all([a, b])

    slix_helpers.run(scenario(), TIMEOUT)


def test_go_sendxmpp_sends_to_a_room(stack, new_user, login, tmp_path):
    """go-sendxmpp -c (Debian's package) joins a room and says something in it."""
    import shutil
    import subprocess
    from test_muc import create, groupchat_body, pres_from
    exe = shutil.which("go-sendxmpp")
    if exe is None:
        pytest.skip("go-sendxmpp is not installed (tools/install-deps.sh)")
    ua, ub = new_user("gsa"), new_user("gsb")
    a = login(ua)
    room = "gs%s@%s" % (uuid.uuid4().hex[:8], MUC_DOMAIN)
    create(a, room, "alice")
    r = subprocess.run([exe, "-u", ub.jid, "-p", ub.password, "-j", "127.0.0.1:%d" % stack.port,
                        "-n", "-c", "-a", "sender", "--timeout", "10", room],
                       input="hello from go-sendxmpp\n", capture_output=True, text=True,
                       timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    a.im_wait(pres_from(room + "/sender"), 15, "go-sendxmpp joined")
    m = a.im_wait(groupchat_body(room, "hello from go-sendxmpp"), 15, "its message")
    assert m.get("from") == room + "/sender"
