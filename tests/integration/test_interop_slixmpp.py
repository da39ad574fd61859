"""Interop with a real third-party client library: slixmpp (Debian python3-slixmpp)."""

import asyncio

import pytest
import slix_helpers

slixmpp = pytest.importorskip("slixmpp")
from slix_client import RecordingClient  # noqa: E402

TIMEOUT = 20.0


class Client(RecordingClient):
    """Trusts exactly the test certificate (hostname 'localhost' checked by ssl); its
    messages go to an inbox queue."""

    def __init__(self, jid, password, cafile, mech="SCRAM-SHA-256"):
        super().__init__(jid, password, cafile, mech=mech)
        self.inbox = asyncio.Queue()
        self.add_event_handler("message", self.inbox.put_nowait)


def run(coro):
    return slix_helpers.run(coro, TIMEOUT)


def test_slixmpp_chat_over_starttls_scram_sha256(stack, new_user):
    ua, ub = new_user("slixa"), new_user("slixb")

    async def scenario():
        a = Client(ua.jid + "/slix-a", ua.password, stack.cafile)
        b = Client(ub.jid + "/slix-b", ub.password, stack.cafile)
        a.register_plugin("xep_0199")
        a.register_plugin("xep_0030")
        for c in (a, b):
            # force_starttls: the session must be encrypted; never plain.
            c.connect(("127.0.0.1", stack.port), force_starttls=True, disable_starttls=False)
        try:
            await asyncio.gather(a.started, b.started)
            for c, u, res in ((a, ua, "slix-a"), (b, ub, "slix-b")):
                assert c.boundjid.full == "%s/%s" % (u.jid, res), c.boundjid
                assert c["feature_mechanisms"].mech.name == "SCRAM-SHA-256"
                assert c.authenticated
            body = "hello from slixmpp \u2603"
            a.send_message(mto=b.boundjid.full, mbody=body, mtype="chat")
            msg = await asyncio.wait_for(b.inbox.get(), 5)
            assert msg["body"] == body
            assert msg["from"].full == a.boundjid.full
            assert msg["type"] == "chat"

            # Bare-JID delivery, and the reverse direction.
            b.send_message(mto=ua.jid, mbody="reply", mtype="chat")
            msg = await asyncio.wait_for(a.inbox.get(), 5)
            assert msg["body"] == "reply" and msg["from"].full == b.boundjid.full

            # XEP-0199 ping and XEP-0030 disco#info against the server, through slixmpp.
            rtt = await a["xep_0199"].ping(jid="localhost", timeout=5)
            assert rtt is not None and rtt >= 0
            info = await a["xep_0030"].get_info(jid="localhost", timeout=5)
            feats = info["disco_info"]["features"]
            assert "urn:xmpp:ping" in feats and "http://jabber.org/protocol/disco#info" in feats
            assert ("server", "im", None, None) in info["disco_info"]["identities"] or any(
                i[0] == "server" and i[1] == "im" for i in info["disco_info"]["identities"])
        finally:
            for c in (a, b):
                c.disconnect(wait=2.0)
            await asyncio.wait_for(asyncio.gather(a.gone, b.gone), 8)

    run(scenario())
